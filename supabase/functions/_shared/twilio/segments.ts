// SMS segments of a body (3GPP TS 23.038 alphabets, as Twilio counts them: docs "What the heck is
// a segment?" and its segment calculator):
//   GSM-7: every character in the basic table or its extension table (which costs 2 septets:
//          escape + character); one segment holds 160 septets, a part of a longer message 153.
//          An escaped character is never split across two parts.
//   UCS-2: any other character forces the whole body to UCS-2 (UTF-16 code units): 70 in one
//          segment, 67 per part; a surrogate pair (emoji) is never split.
export type SmsEncoding = "GSM-7" | "UCS-2";

const GSM7_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION = "\f^{}\\[~]|€";
const BASIC = new Set(GSM7_BASIC);
const EXTENSION = new Set(GSM7_EXTENSION);

export interface SegmentCount {
  encoding: SmsEncoding;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole body. */
  units: number;
  segments: number;
  /** Characters (code points). */
  characters: number;
}

/** Is every character of `text` in the GSM-7 alphabet (basic or extension table)? */
export function isGsm7(text: string): boolean {
  for (const ch of text) if (!BASIC.has(ch) && !EXTENSION.has(ch)) return false;
  return true;
}

/** How many segments `body` is sent as, and in which encoding. An empty body is 0 segments. */
export function countSegments(body: string): SegmentCount {
  const chars = Array.from(body);
  const gsm = isGsm7(body);
  const costs = chars.map((ch) => (gsm ? (EXTENSION.has(ch) ? 2 : 1) : ch.length));
  const units = costs.reduce((a, b) => a + b, 0);
  const single = gsm ? 160 : 70;
  const part = gsm ? 153 : 67;
  let segments = 0;
  if (units > 0 && units <= single) segments = 1;
  else if (units > single) {
    // Pack parts greedily without splitting an escaped character or a surrogate pair.
    let used = part;
    for (const cost of costs) {
      if (used + cost > part) {
        segments++;
        used = 0;
      }
      used += cost;
    }
  }
  return { encoding: gsm ? "GSM-7" : "UCS-2", units, segments, characters: chars.length };
}
