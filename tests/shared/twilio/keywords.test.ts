// _shared/twilio/keywords.ts: every keyword in both languages, with accents, case, spaces and
// punctuation; sentences and near-misses that are not keywords; OptOutType wins.
import assert from "node:assert/strict";
import {
  classifyInbound,
  HELP_KEYWORDS,
  normalizeBody,
  OPT_IN_KEYWORDS,
  OPT_OUT_KEYWORDS,
  TWILIO_DEFAULT_KEYWORDS,
} from "../../../supabase/functions/_shared/twilio/keywords.ts";

Deno.test("keywords: the lists are Twilio's defaults plus ARRET and AIDE", () => {
  assert.deepEqual(OPT_OUT_KEYWORDS.toSorted(), ["ARRET", "CANCEL", "END", "OPTOUT", "QUIT", "REVOKE", "STOP", "STOPALL", "UNSUBSCRIBE"]);
  assert.deepEqual(OPT_IN_KEYWORDS.toSorted(), ["START", "UNSTOP", "YES"]);
  assert.deepEqual(HELP_KEYWORDS.toSorted(), ["AIDE", "HELP", "INFO"]);
});

Deno.test("keywords: normalisation strips accents, case, surrounding punctuation and whitespace", () => {
  assert.equal(normalizeBody("  Arrêt ! "), "ARRET");
  assert.equal(normalizeBody("«ARRÊT»"), "ARRET");
  assert.equal(normalizeBody("\u00a0aide?\n"), "AIDE");
  assert.equal(normalizeBody("stop."), "STOP");
  assert.equal(normalizeBody("...Stop!!! 🛑"), "STOP");
  assert.equal(normalizeBody("\u200bSTOP\u200b"), "STOP"); // zero-width space (a format character)
  assert.equal(normalizeBody("Arre\u0302t"), "ARRET"); // decomposed accent
  assert.equal(normalizeBody("opt out"), "OPT OUT"); // inner space kept
  assert.equal(normalizeBody(""), "");
});

Deno.test("keywords: every keyword, any case, accents, spaces, punctuation", () => {
  const kinds = { opt_out: OPT_OUT_KEYWORDS, opt_in: OPT_IN_KEYWORDS, help: HELP_KEYWORDS } as const;
  for (const [kind, words] of Object.entries(kinds)) {
    for (const word of words) {
      for (const body of [word, word.toLowerCase(), ` ${word[0]}${word.slice(1).toLowerCase()} `, `${word}!`, `"${word}."`, `\t${word}\r\n`]) {
        const m = classifyInbound(body);
        assert.equal(m.kind, kind, JSON.stringify(body));
        assert.equal(m.keyword, word, JSON.stringify(body));
      }
    }
  }
  assert.deepEqual(classifyInbound("  Arrêt ! "), { kind: "opt_out", keyword: "ARRET", language: "fr" });
  assert.deepEqual(classifyInbound("arrêt"), { kind: "opt_out", keyword: "ARRET", language: "fr" });
  assert.deepEqual(classifyInbound("ARRÊT."), { kind: "opt_out", keyword: "ARRET", language: "fr" });
  assert.deepEqual(classifyInbound("Aide"), { kind: "help", keyword: "AIDE", language: "fr" });
  assert.deepEqual(classifyInbound("info"), { kind: "help", keyword: "INFO", language: null });
  assert.deepEqual(classifyInbound("Stop"), { kind: "opt_out", keyword: "STOP", language: "en" });
  assert.deepEqual(classifyInbound("yes!"), { kind: "opt_in", keyword: "YES", language: "en" });
});

Deno.test("keywords: sentences and near-misses are not keywords", () => {
  for (const body of [
    "OPT OUT",
    "opt-out",
    "Please stop",
    "STOP sending me messages",
    "Je veux arrêter",
    "arrêtez",
    "STOP STOP",
    "S T O P",
    "STOPP",
    "HELP ME",
    "yes please",
    "stop1",
    "",
    "   ",
    "!!!",
  ]) {
    assert.deepEqual(classifyInbound(body), { kind: null, keyword: null, language: null }, JSON.stringify(body));
  }
});

Deno.test("keywords: Twilio's OptOutType wins over the body", () => {
  // Advanced Opt-Out with a custom keyword Twilio recognised and we do not.
  assert.deepEqual(classifyInbound("DESABONNER", "STOP"), { kind: "opt_out", keyword: "STOP", language: null });
  // The body says HELP, Twilio says START (custom list): Twilio decides.
  assert.deepEqual(classifyInbound("help", "START"), { kind: "opt_in", keyword: "START", language: null });
  // They agree: our keyword and language are kept.
  assert.deepEqual(classifyInbound("Arrêt", "STOP"), { kind: "opt_out", keyword: "ARRET", language: "fr" });
  assert.deepEqual(classifyInbound("aide", "help"), { kind: "help", keyword: "AIDE", language: "fr" });
  // An unknown or empty OptOutType is ignored.
  assert.deepEqual(classifyInbound("STOP", "SOMETHING"), { kind: "opt_out", keyword: "STOP", language: "en" });
  assert.deepEqual(classifyInbound("bonjour", ""), { kind: null, keyword: null, language: null });
});

Deno.test("keywords: the ones Twilio's default handling answers itself are exactly its documented English list", () => {
  // docs "Advanced Opt-Out" / help center "default opt-out keywords"; see ../shared/reference/providers.md.
  assert.deepEqual(
    [...TWILIO_DEFAULT_KEYWORDS].sort(),
    ["CANCEL", "END", "HELP", "INFO", "OPTOUT", "QUIT", "REVOKE", "START", "STOP", "STOPALL", "UNSTOP", "UNSUBSCRIBE", "YES"],
  );
  // Nobody but us answers the French ones.
  assert.equal(TWILIO_DEFAULT_KEYWORDS.has("ARRET"), false);
  assert.equal(TWILIO_DEFAULT_KEYWORDS.has("AIDE"), false);
});
