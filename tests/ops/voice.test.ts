// `npm run ops -- voice simulate-call` against the runner's stack: the real voice-inbound through
// the gateway (signed as Twilio signs), the real database, the runner's fake Twilio receiving the
// owner's missed-call SMS. Callers: +1 514 555 0106 … 0109 (fictional).
import assert from "node:assert/strict";
import { functionUrl, withDb } from "../_helpers.ts";
import { fixtureSettings, hostedValues, messagesAt, ops, opsJson, withEnvFile } from "./_ops.ts";

const OWNER = fixtureSettings.OWNER_MOBILE;
const OUR_NUMBER = fixtureSettings.TWILIO_PHONE_NUMBER;

async function callRow(sid: string) {
  const [row] = await withDb((sql) =>
    sql`select status, forwarded_to, duration_seconds from public.voice_calls where provider_call_sid = ${sid}`
  );
  return row;
}

Deno.test("ops voice simulate-call: the TwiML forwards to OWNER_MOBILE (Dial, timeout 20, callerId, action); a voice_calls row", async () => {
  const run = await opsJson(["voice", "simulate-call", "--from", "+15145550106"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  const j = run.json;
  assert.deepEqual(Object.keys(j), ["ok", "target", "call_sid", "from", "to", "call", "dial_action", "voice_call", "missed_call_sms"]);
  assert.match(String(j.call_sid), /^CA[0-9a-f]{32}$/);
  assert.equal(j.from, "+15145550106");
  assert.equal(j.to, OUR_NUMBER);
  const call = j.call as { http_status: number; twiml: string; dial: Record<string, unknown> };
  assert.equal(call.http_status, 200);
  assert.deepEqual(call.dial, {
    number: OWNER,
    timeout: "20",
    callerId: OUR_NUMBER,
    action: functionUrl("voice-inbound"),
    method: "POST",
    answerOnBridge: true,
  });
  assert.match(call.twiml, /<Dial answerOnBridge="true" timeout="20"/);
  assert.equal(j.dial_action, null);
  assert.equal(j.missed_call_sms, null);
  assert.deepEqual(j.voice_call, { status: "ringing", forwarded_to: null, duration_seconds: null });
  assert.equal((await callRow(String(j.call_sid))).status, "ringing");

  const human = await ops(["voice", "simulate-call", "--from", "+15145550106"]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^Incoming call CA[0-9a-f]{32}$/m);
  assert.match(human.stdout, new RegExp(`^<Dial> to\\s+\\${OWNER}$`, "m"));
  assert.match(human.stdout, /^Dial options\s+timeout 20 s · callerId \+15145550199 · answerOnBridge$/m);
});

Deno.test("ops voice simulate-call --dial-status no-answer → the bilingual message, hang up, the owner's missed-call SMS", async () => {
  const from = "+15145550107";
  const run = await opsJson(["voice", "simulate-call", "--from", from, "--dial-status", "no-answer"]);
  assert.equal(run.code, 0, run.stderr);
  const j = run.json;
  const action = j.dial_action as { dial_status: string; http_status: number; says: { language: string; text: string }[]; hangup: boolean };
  assert.equal(action.dial_status, "no-answer");
  assert.equal(action.http_status, 200);
  assert.deepEqual(action.says.map((s) => s.language), ["fr-CA", "en-US"]);
  assert.match(action.says[0].text, /^Bonjour, vous avez joint C-Secur360/);
  assert.equal(action.hangup, true);
  assert.deepEqual(j.voice_call, { status: "no-answer", forwarded_to: OWNER, duration_seconds: 0 });
  const sms = j.missed_call_sms as { to: string; body: string; status: string; message_sid: string };
  assert.equal(sms.to, OWNER);
  assert.equal(sms.body, `C-Secur360 : appel manqué de ${from} (no-answer). Missed call from ${from}.`);
  assert.match(sms.message_sid, /^SM[0-9a-f]{32}$/);
  if (sms.status !== "delivered") {
    // Say why: a wait too short, or status callbacks that beat the MessageSid's recording (details.unknown).
    const trail = await withDb((sql) => sql`select action, details from public.system_audit_logs where target = ${sms.message_sid} order by id`);
    assert.fail(`the missed-call SMS ended ${sms.status}, not delivered; audit trail: ${JSON.stringify(trail)}`);
  }
  assert.ok((await messagesAt(OWNER)).some((m) => m.sid === sms.message_sid && m.body === sms.body), "the fake Twilio has the SMS");

  const human = await ops(["voice", "simulate-call", "--from", from, "--dial-status", "busy"]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^Dial ended\s+busy → voice-inbound HTTP 200$/m);
  assert.match(human.stdout, /^<Say> fr-CA\s+Bonjour, vous avez joint C-Secur360/m);
  assert.match(human.stdout, /^<Hangup\/>\s+the call ends$/m);
  assert.match(human.stdout, new RegExp(`^Missed-call SMS\\s+to \\${OWNER} · \\w+ · SM[0-9a-f]{32}$`, "m"));
  assert.match(human.stdout, /^SMS body\s+C-Secur360 : appel manqué de \+15145550107 \(busy\)/m);
});

Deno.test("ops voice simulate-call --dial-status completed --duration 42: no message, no SMS, the call's duration", async () => {
  const from = "+15145550108";
  const before = (await messagesAt(OWNER)).filter((m) => m.body.includes(from)).length;
  const run = await opsJson(["voice", "simulate-call", "--from", from, "--dial-status", "completed", "--duration", "42"]);
  assert.equal(run.code, 0, run.stderr);
  const action = run.json.dial_action as { says: unknown[]; hangup: boolean; twiml: string };
  assert.deepEqual(action.says, []);
  assert.equal(action.hangup, false);
  assert.match(action.twiml, /<Response\/>$/);
  assert.equal(run.json.missed_call_sms, null);
  assert.deepEqual(run.json.voice_call, { status: "completed", forwarded_to: OWNER, duration_seconds: 42 });
  assert.equal((await messagesAt(OWNER)).filter((m) => m.body.includes(from)).length, before);
});

Deno.test("ops voice simulate-call on a target without SUPABASE_DB_URL: the TwiML only; a wrong token → 403, exit 1", async () => {
  const { SUPABASE_DB_URL: _db, ...withoutDb } = hostedValues();
  await withEnvFile(withoutDb, async (file) => {
    const run = await ops(["--env-file", file, "voice", "simulate-call", "--from", "anonymous", "--dial-status", "failed"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^From → To\s+anonymous → \+15145550199$/m);
    assert.match(run.stdout, new RegExp(`^Database\\s+not read: ${file} has no SUPABASE_DB_URL$`, "m"));
  });
  const sid = `CA${crypto.randomUUID().replaceAll("-", "")}`;
  await withEnvFile({ ...hostedValues(), TWILIO_AUTH_TOKEN: "f".repeat(32) }, async (file) => {
    const run = await opsJson(["--env-file", file, "voice", "simulate-call", "--from", "+15145550109", "--call-sid", sid]);
    assert.equal(run.code, 1);
    assert.equal(run.json.ok, false);
    assert.equal((run.json.call as { http_status: number }).http_status, 403);
    assert.match(run.stderr, /^ops voice simulate-call: voice-inbound refused the call: HTTP 403 forbidden/);
  });
  assert.equal(await callRow(sid), undefined, "nothing written");
});
