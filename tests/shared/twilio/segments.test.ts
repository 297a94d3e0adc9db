// _shared/twilio/segments.ts: GSM-7 (extension characters count 2) 160/153, UCS-2 70/67.
import assert from "node:assert/strict";
import { countSegments, isGsm7 } from "../../../supabase/functions/_shared/twilio/segments.ts";

Deno.test("segments: GSM-7 single and concatenated limits", () => {
  assert.deepEqual(countSegments(""), { encoding: "GSM-7", units: 0, segments: 0, characters: 0 });
  assert.equal(countSegments("a".repeat(160)).segments, 1);
  assert.equal(countSegments("a".repeat(161)).segments, 2);
  assert.equal(countSegments("a".repeat(306)).segments, 2);
  assert.equal(countSegments("a".repeat(307)).segments, 3);
  // French accents that GSM-7 has (é è à ù ì ò É Ç) keep it GSM-7.
  assert.equal(countSegments("Répondez à été où ÉÇ".repeat(1)).encoding, "GSM-7");
});

Deno.test("segments: extension-table characters count two septets and are not split", () => {
  assert.equal(isGsm7("€[]{}|^~\\"), true);
  assert.deepEqual(countSegments("€".repeat(80)), { encoding: "GSM-7", units: 160, segments: 1, characters: 80 });
  assert.equal(countSegments("€".repeat(81)).segments, 2);
  // 152 septets then a 2-septet €: it goes whole into the second part.
  assert.equal(countSegments("a".repeat(152) + "€" + "a".repeat(10)).segments, 2);
  assert.equal(countSegments("a".repeat(152) + "€".repeat(77)).segments, 3); // 152 | 77 € = 154 > 153
});

Deno.test("segments: one non-GSM character switches the whole body to UCS-2", () => {
  for (const ch of ["ê", "â", "ô", "î", "û", "ç", "œ", "’", "😀"]) assert.equal(isGsm7(ch), false, ch);
  assert.deepEqual(countSegments("ê".repeat(70)), { encoding: "UCS-2", units: 70, segments: 1, characters: 70 });
  assert.equal(countSegments("ê".repeat(71)).segments, 2);
  assert.equal(countSegments("ê".repeat(134)).segments, 2);
  assert.equal(countSegments("ê".repeat(135)).segments, 3);
  assert.equal(countSegments("Arrêt " + "a".repeat(100)).encoding, "UCS-2");
  // An emoji is two UTF-16 units and never split across parts.
  assert.deepEqual(countSegments("😀".repeat(35)), { encoding: "UCS-2", units: 70, segments: 1, characters: 35 });
  // 134 units would fit 2 × 67 if a pair could be split; it cannot: 66 | 33 pairs (66) | 1 pair.
  assert.equal(countSegments("a".repeat(66) + "😀".repeat(34)).segments, 3);
  assert.equal(countSegments("a".repeat(66) + "😀" + "a".repeat(65)).segments, 2); // 66 | 2+65
  assert.equal(countSegments("a".repeat(66) + "😀" + "a".repeat(66)).segments, 3); // 66 | 2+65 | 1
});
