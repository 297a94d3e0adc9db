// _shared/twilio/replies.ts: the length rule written at the top of replies.ts.
import assert from "node:assert/strict";
import { confirmationReply, helpReply, helpReplyParts, keywordReply } from "../../../supabase/functions/_shared/twilio/replies.ts";
import { countSegments } from "../../../supabase/functions/_shared/twilio/segments.ts";

// The longest E.164 number (15 digits) and a fictional local one.
const NUMBERS = ["+15145550100", "+999999999999999"];

function assertOneSegmentPart(text: string, label: string) {
  const count = countSegments(text);
  assert.ok(Array.from(text).length <= 160, `${label}: ${Array.from(text).length} characters`);
  assert.equal(count.encoding, "GSM-7", `${label}: not GSM-7, would be UCS-2 (70 a segment)`);
  assert.equal(count.segments, 1, `${label}: ${count.segments} segments`);
}

Deno.test("replies: HELP is French first, then English, each part one GSM-7 segment, with the contact number", () => {
  for (const number of NUMBERS) {
    const { fr, en } = helpReplyParts(number);
    assertOneSegmentPart(fr, `help fr ${number}`);
    assertOneSegmentPart(en, `help en ${number}`);
    assert.ok(fr.includes(number) && en.includes(number));
    assert.match(fr, /ARRET/);
    assert.match(en, /STOP/);
    const whole = helpReply(number);
    assert.equal(whole, `${fr}\n${en}`);
    assert.ok(whole.indexOf(fr) === 0, "French first");
    const count = countSegments(whole);
    assert.equal(count.encoding, "GSM-7");
    assert.ok(count.segments <= 2, `bilingual help is ${count.segments} segments`);
  }
});

Deno.test("replies: STOP/START confirmations in both languages, one GSM-7 segment each", () => {
  for (const number of NUMBERS) {
    for (const kind of ["opt_out", "opt_in"] as const) {
      for (const language of ["fr", "en"] as const) {
        assertOneSegmentPart(confirmationReply(kind, language, number), `${kind} ${language}`);
      }
    }
  }
  assert.match(confirmationReply("opt_out", "fr", NUMBERS[0]), /ne recevrez plus/);
  assert.match(confirmationReply("opt_out", "en", NUMBERS[0]), /no longer receive/);
  assert.match(confirmationReply("opt_in", "fr", NUMBERS[0]), /de nouveau/);
  assert.match(confirmationReply("opt_in", "en", NUMBERS[0]), /again/);
});

Deno.test("replies: keywordReply picks help (bilingual) or the confirmation in the language, French by default", () => {
  const contactNumber = NUMBERS[0];
  assert.equal(keywordReply("help", { language: "en", contactNumber }), helpReply(contactNumber));
  assert.equal(keywordReply("opt_out", { language: "en", contactNumber }), confirmationReply("opt_out", "en", contactNumber));
  assert.equal(keywordReply("opt_out", { language: null, contactNumber }), confirmationReply("opt_out", "fr", contactNumber));
  assert.equal(keywordReply("opt_in", { contactNumber }), confirmationReply("opt_in", "fr", contactNumber));
});
