// voice-inbound's hand-built TwiML: byte-for-byte what the SDK's VoiceResponse gives (the SDK is a
// test-only import here: its module graph is too big for a function), and well-formed when parsed.
import assert from "node:assert/strict";
import VoiceResponse from "twilio/lib/twiml/VoiceResponse.js";
import { dialTwiml, emptyTwiml, sayThenHangupTwiml } from "../../../supabase/functions/voice-inbound/twiml.ts";
import { MISSED_CALL_MESSAGES } from "../../../supabase/functions/voice-inbound/handler.ts";
import { parseTwiml } from "./_twiml.ts";

const ACTION = "https://abcdefghijklmnopqrst.supabase.co/functions/v1/voice-inbound?a=1&b=\"2\"<3>";

Deno.test("twiml: <Dial> equals the SDK's VoiceResponse output and parses with its attributes", () => {
  const ours = dialTwiml({ to: "+15145550100", callerId: "+15145550199", action: ACTION, timeoutSeconds: 20 });
  const sdk = new VoiceResponse();
  sdk.dial({ answerOnBridge: true, timeout: 20, callerId: "+15145550199", action: ACTION, method: "POST" }).number("+15145550100");
  assert.equal(ours, sdk.toString());
  const root = parseTwiml(ours);
  assert.equal(root.name, "Response");
  const [dial] = root.children;
  assert.deepEqual(dial.attributes, { answerOnBridge: "true", timeout: "20", callerId: "+15145550199", action: ACTION, method: "POST" });
  assert.deepEqual(dial.children.map((c) => [c.name, c.text]), [["Number", "+15145550100"]]);
});

Deno.test("twiml: bilingual <Say> + <Hangup> equals the SDK's, text with markup characters escaped", () => {
  const messages = [...MISSED_CALL_MESSAGES, { language: "en-US", text: "a < b & c > d \"e\" 'f'" }];
  const ours = sayThenHangupTwiml(messages);
  const sdk = new VoiceResponse();
  for (const m of messages) sdk.say({ language: m.language as "fr-CA" }, m.text);
  sdk.hangup();
  assert.equal(ours, sdk.toString());
  const root = parseTwiml(ours);
  assert.deepEqual(root.children.map((c) => [c.name, c.attributes.language ?? null]), [
    ["Say", "fr-CA"], ["Say", "en-US"], ["Say", "en-US"], ["Hangup", null],
  ]);
  assert.equal(root.children[2].text, messages[2].text);
  assert.equal(emptyTwiml(), new VoiceResponse().toString());
});

Deno.test("twiml: the parser used by the tests refuses XML that is not well-formed", () => {
  assert.throws(() => parseTwiml("<Response><Dial></Response>"), /well-formed/);
  assert.throws(() => parseTwiml("<Response><Say>a & b</Say></Response>"), /well-formed/);
});
