// SMS keywords: opt-out, opt-in and help, recognised as a whole message.
//
// Twilio's defaults (docs "Advanced Opt-Out"; help center "default opt-out keywords"):
//   opt-out STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT, opt-in START YES UNSTOP,
//   help HELP INFO; whole message, any case ("OPT OUT" with a space is not one, nor a sentence
//   that contains STOP). Canadian practice (CWTA) adds the French ARRET (ARRÊT) and AIDE, which
//   Twilio does not know. With Advanced Opt-Out, Twilio sends OptOutType = STOP | START | HELP
//   with the webhook: it decided, so it wins over our reading of the body.
export type KeywordKind = "opt_out" | "opt_in" | "help";

export interface KeywordMatch {
  kind: KeywordKind | null;
  /** The normalised keyword (ARRET, STOP…), or OptOutType's value when the body is not one; null for no keyword. */
  keyword: string | null;
  /** Which language the keyword says: fr for ARRET/AIDE, en for the English ones, null when it does not tell (INFO, none). */
  language: "fr" | "en" | null;
}

const KEYWORDS: Record<string, { kind: KeywordKind; language: "fr" | "en" | null }> = {
  STOP: { kind: "opt_out", language: "en" },
  STOPALL: { kind: "opt_out", language: "en" },
  UNSUBSCRIBE: { kind: "opt_out", language: "en" },
  CANCEL: { kind: "opt_out", language: "en" },
  END: { kind: "opt_out", language: "en" },
  QUIT: { kind: "opt_out", language: "en" },
  REVOKE: { kind: "opt_out", language: "en" },
  OPTOUT: { kind: "opt_out", language: "en" },
  ARRET: { kind: "opt_out", language: "fr" },
  START: { kind: "opt_in", language: "en" },
  YES: { kind: "opt_in", language: "en" },
  UNSTOP: { kind: "opt_in", language: "en" },
  HELP: { kind: "help", language: "en" },
  INFO: { kind: "help", language: null },
  AIDE: { kind: "help", language: "fr" },
};

export const OPT_OUT_KEYWORDS = Object.keys(KEYWORDS).filter((k) => KEYWORDS[k].kind === "opt_out");
export const OPT_IN_KEYWORDS = Object.keys(KEYWORDS).filter((k) => KEYWORDS[k].kind === "opt_in");
export const HELP_KEYWORDS = Object.keys(KEYWORDS).filter((k) => KEYWORDS[k].kind === "help");

/**
 * The keywords Twilio's default opt-out handling answers by itself on long codes (the English
 * ones: its fixed STOP/START/HELP replies), while still calling our webhook. A TwiML reply of ours
 * to one of them would be a second answer (docs "Advanced Opt-Out": "By default, Twilio handles
 * standard English-language reply messages … for long code numbers"). ARRET and AIDE are not
 * among them: nobody but us answers those unless Advanced Opt-Out is configured for them.
 */
export const TWILIO_DEFAULT_KEYWORDS: ReadonlySet<string> = new Set(
  Object.keys(KEYWORDS).filter((k) => k !== "ARRET" && k !== "AIDE"),
);

const OPT_OUT_TYPES: Record<string, KeywordKind> = { STOP: "opt_out", START: "opt_in", HELP: "help" };

// Leading/trailing punctuation, symbols (emoji included), separators, whitespace and controls.
const EDGES = /^[\p{P}\p{S}\p{Z}\p{C}\s]+|[\p{P}\p{S}\p{Z}\p{C}\s]+$/gu;

/** "  Arrêt ! " → "ARRET": accents stripped (NFD, marks removed), upper case, edges trimmed. */
export function normalizeBody(body: string): string {
  return body
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .toUpperCase()
    .replace(EDGES, "");
}

/** Classifies an inbound SMS; `optOutType` is Twilio's OptOutType parameter when present. */
export function classifyInbound(body: string, optOutType?: string | null): KeywordMatch {
  const normalized = normalizeBody(body ?? "");
  const own = Object.hasOwn(KEYWORDS, normalized) ? KEYWORDS[normalized] : null;
  const twilioKind = optOutType ? OPT_OUT_TYPES[optOutType.trim().toUpperCase()] : undefined;
  if (twilioKind) {
    // Twilio decided (its keyword list may be customised); keep our keyword and language when ours agrees.
    if (own && own.kind === twilioKind) return { kind: twilioKind, keyword: normalized, language: own.language };
    return { kind: twilioKind, keyword: optOutType!.trim().toUpperCase(), language: null };
  }
  if (!own) return { kind: null, keyword: null, language: null };
  return { kind: own.kind, keyword: normalized, language: own.language };
}
