// voice-inbound through the gateway, with calls posted and signed as Twilio does (the fake's
// postInboundCall / postSignedForm, with the functions' own Twilio settings), the real database,
// and the runner's fake Twilio receiving the missed-call SMS (counted through its message list).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseDotenv } from "../../../scripts/local-supabase/gateway/config.ts";
import { startTwilioFake, type TwilioFake, twilioFakeAccount } from "../../../scripts/fakes/twilio.ts";
import { twilioSignature } from "../../../supabase/functions/_shared/twilio/signature.ts";
import { functionUrl, withDb } from "../../_helpers.ts";
import { parseTwiml } from "./_twiml.ts";

const settings = parseDotenv(await Deno.readTextFile(fileURLToPath(new URL("../../fixtures/functions/.env.test", import.meta.url))));
const OWNER = settings.OWNER_MOBILE;
const OUR_NUMBER = settings.TWILIO_PHONE_NUMBER;
const URL_ = functionUrl("voice-inbound");

function callSid(): string {
  return `CA${crypto.randomUUID().replaceAll("-", "")}`;
}

/** A fake used only to post signed webhooks (the runner's fake, in its own process, receives SMS). */
async function withPoster(fn: (fake: TwilioFake) => Promise<void>) {
  const fake = startTwilioFake(twilioFakeAccount(settings));
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

/** The messages the runner's fake Twilio holds for `to`. */
async function messagesAt(to: string): Promise<{ sid: string; to: string; body: string }[]> {
  const base = Deno.env.get("TWILIO_API_BASE");
  assert.ok(base, "the runner sets TWILIO_API_BASE");
  const res = await fetch(`${base}/2010-04-01/Accounts/${settings.TWILIO_ACCOUNT_SID}/Messages.json?To=${encodeURIComponent(to)}`, {
    headers: { authorization: `Basic ${btoa(`${settings.TWILIO_ACCOUNT_SID}:${settings.TWILIO_AUTH_TOKEN}`)}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).messages;
}

function actionParams(sid: string, from: string, dialStatus: string, duration: string): Record<string, string> {
  return {
    AccountSid: settings.TWILIO_ACCOUNT_SID,
    ApiVersion: "2010-04-01",
    CallSid: sid,
    CallStatus: "in-progress",
    Called: OUR_NUMBER,
    Caller: from,
    Direction: "inbound",
    From: from,
    To: OUR_NUMBER,
    DialCallSid: callSid(),
    DialCallStatus: dialStatus,
    DialCallDuration: duration,
  };
}

async function callRow(sid: string) {
  return await withDb(async (sql) => {
    const [row] = await sql`select from_number, to_number, forwarded_to, status, duration_seconds, ended_at
                              from public.voice_calls where provider_call_sid = ${sid}`;
    const audit = await sql`select actor, target, details from public.system_audit_logs
                             where area = 'twilio' and action = 'voice_forward' and details ->> 'call_sid' = ${sid}`;
    return { row, audit };
  });
}

Deno.test("voice-inbound: a call → voice_calls row (ringing) and <Dial> to OWNER_MOBILE with callerId, timeout, action", async () => {
  await withPoster(async (fake) => {
    const sid = callSid();
    const res = await fake.postInboundCall(URL_, { from: "+15145550181", callSid: sid });
    assert.equal(res.status, 200, res.responseBody);
    const root = parseTwiml(res.responseBody);
    assert.equal(root.name, "Response");
    assert.equal(root.children.length, 1);
    const [dial] = root.children;
    assert.equal(dial.name, "Dial");
    assert.deepEqual(dial.attributes, { answerOnBridge: "true", timeout: "20", callerId: OUR_NUMBER, action: URL_, method: "POST" });
    assert.deepEqual(dial.children.map((c) => [c.name, c.text]), [["Number", OWNER]]);
    const { row, audit } = await callRow(sid);
    assert.deepEqual({ ...row }, {
      from_number: "+15145550181", to_number: OUR_NUMBER, forwarded_to: null, status: "ringing", duration_seconds: null, ended_at: null,
    });
    assert.equal(audit.length, 0);
  });
});

Deno.test("voice-inbound: busy → bilingual <Say> then <Hangup>, one missed-call SMS to OWNER_MOBILE; a retried action → still one", async () => {
  await withPoster(async (fake) => {
    const sid = callSid();
    const from = "+15145550182";
    assert.equal((await fake.postInboundCall(URL_, { from, callSid: sid })).status, 200);
    const params = actionParams(sid, from, "busy", "0");
    const first = await fake.postSignedForm(URL_, params, { idempotencyToken: `${sid}-action` });
    assert.equal(first.status, 200, first.responseBody);
    const root = parseTwiml(first.responseBody);
    assert.deepEqual(root.children.map((c) => [c.name, c.attributes.language ?? null]), [["Say", "fr-CA"], ["Say", "en-US"], ["Hangup", null]]);
    assert.match(root.children[0].text, /rappellerons/);
    assert.match(root.children[1].text, /call you back/);

    const retry = await fake.postSignedForm(URL_, params, { idempotencyToken: `${sid}-action` });
    assert.equal(retry.status, 200);
    assert.equal(retry.responseBody, first.responseBody);

    const sms = (await messagesAt(OWNER)).filter((m) => m.body.includes(from));
    assert.equal(sms.length, 1, "exactly one missed-call SMS at the fake");
    assert.match(sms[0].body, /appel manqué.*\(busy\).*Missed call/);

    const { row, audit } = await callRow(sid);
    assert.equal(row.status, "busy");
    assert.equal(row.forwarded_to, OWNER);
    assert.equal(row.duration_seconds, 0);
    assert.ok(row.ended_at instanceof Date);
    assert.equal(audit.length, 1, "one voice_forward audit row, the retry adds none");
    assert.equal(audit[0].details.dial_status, "busy");
    assert.equal(audit[0].details.call_sid, sid);
    // The SMS went through the normal send path: a reserved sms_alerts row with its MessageSid.
    const alerts = await withDb((sql) => sql`select provider_message_id from public.sms_alerts where provider_message_id = ${sms[0].sid}`);
    assert.equal(alerts.length, 1);
  });
});

Deno.test("voice-inbound: completed → empty <Response/>, duration stored, no SMS", async () => {
  await withPoster(async (fake) => {
    const sid = callSid();
    const from = "+15145550183";
    await fake.postInboundCall(URL_, { from, callSid: sid });
    const res = await fake.postSignedForm(URL_, actionParams(sid, from, "completed", "42"));
    assert.equal(res.status, 200, res.responseBody);
    const root = parseTwiml(res.responseBody);
    assert.deepEqual(root.children, []);
    assert.equal((await messagesAt(OWNER)).filter((m) => m.body.includes(from)).length, 0);
    const { row, audit } = await callRow(sid);
    assert.equal(row.status, "completed");
    assert.equal(row.duration_seconds, 42);
    assert.equal(audit.length, 1);
    assert.equal(audit[0].details.dial_status, "completed");
  });
});

Deno.test("voice-inbound: an anonymous caller is forwarded; no-answer → SMS says the number is withheld", async () => {
  await withPoster(async (fake) => {
    const sid = callSid();
    const res = await fake.postInboundCall(URL_, { from: "anonymous", callSid: sid });
    assert.equal(res.status, 200, res.responseBody);
    assert.equal(parseTwiml(res.responseBody).children[0].name, "Dial");
    const before = (await messagesAt(OWNER)).length;
    const action = await fake.postSignedForm(URL_, actionParams(sid, "anonymous", "no-answer", "0"));
    assert.equal(action.status, 200);
    assert.equal(parseTwiml(action.responseBody).children.length, 3);
    const after = await messagesAt(OWNER);
    assert.equal(after.length, before + 1);
    assert.match(after[0].body, /numéro masqué.*\(no-answer\)/);
    const { row } = await callRow(sid);
    assert.equal(row.from_number, "anonymous");
    assert.equal(row.status, "no-answer");
  });
});

/** POSTs a form signed for `signed` but carrying `sent` (a tampered request when they differ). */
async function postForm(signed: Record<string, string>, sent: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) {
  const signature = await twilioSignature(URL_, signed, settings.TWILIO_AUTH_TOKEN);
  const res = await fetch(URL_, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature, ...headers },
    body: sent,
  });
  return { status: res.status, body: await res.text() };
}

async function rowCount(sid: string): Promise<number> {
  return await withDb(async (sql) => (await sql`select count(*)::int as n from public.voice_calls where provider_call_sid = ${sid}`)[0].n);
}

Deno.test("voice-inbound: tampered parameter, missing or wrong signature → 403, no row", async () => {
  const sid = callSid();
  const params = { CallSid: sid, From: "+15145550184", To: OUR_NUMBER, CallStatus: "ringing" };
  const tampered = await postForm(params, new URLSearchParams({ ...params, From: "+15145550185" }).toString());
  assert.equal(tampered.status, 403);
  assert.equal(JSON.parse(tampered.body).error, "forbidden");
  const unsigned = await fetch(URL_, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(params) });
  assert.equal(unsigned.status, 403);
  await unsigned.body?.cancel();
  assert.equal(await rowCount(sid), 0);
});

Deno.test("voice-inbound: malformed input → 4xx (405, 415, 400, 413), never 5xx, no row", async () => {
  const sid = callSid();
  const get = await fetch(URL_);
  assert.equal(get.status, 405);
  await get.body?.cancel();

  const json = await fetch(URL_, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ CallSid: sid }) });
  assert.equal(json.status, 415);
  await json.body?.cancel();

  for (const missing of ["CallSid", "From", "To"]) {
    const params: Record<string, string> = { CallSid: sid, From: "+15145550186", To: OUR_NUMBER, CallStatus: "ringing" };
    delete params[missing];
    const res = await postForm(params, new URLSearchParams(params).toString());
    assert.equal(res.status, 400, `${missing} missing: ${res.body}`);
  }
  const badDial = { CallSid: sid, From: "+15145550186", To: OUR_NUMBER, DialCallStatus: "exploded" };
  assert.equal((await postForm(badDial, new URLSearchParams(badDial).toString())).status, 400);
  // A control character (U+0000 cannot even be stored in PostgreSQL text): refused, not a 500.
  const nulFrom = { CallSid: sid, From: "+1514\u00005550186", To: OUR_NUMBER, CallStatus: "ringing" };
  assert.equal((await postForm(nulFrom, new URLSearchParams(nulFrom).toString())).status, 400);

  const invalidUtf8 = new Uint8Array([...new TextEncoder().encode(`CallSid=${sid}&From=%2B15145550186&To=`), 0xff, 0xfe]);
  assert.equal((await postForm({}, invalidUtf8)).status, 400);

  const big = `CallSid=${sid}&From=%2B15145550186&To=%2B15145550199&Pad=${"x".repeat(2 * 1024 * 1024)}`;
  assert.equal((await postForm({}, big)).status, 413);

  assert.equal(await rowCount(sid), 0);
});
