// The fake Twilio (scripts/fakes/twilio.ts): Twilio's JSON and error bodies, signed status callbacks
// (in order, on demand out of order and twice), signed inbound webhooks; and the test runner really
// starts one and gives the functions its URL.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { validateRequest } from "twilio/lib/webhooks/webhooks.js";
import { parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { startTwilioFake, type TwilioFake, type TwilioMessage } from "../../scripts/fakes/twilio.ts";
import { type EchoReply, functionUrl } from "../_helpers.ts";

// Obviously fake credentials of the right shapes.
const ACCOUNT_SID = `AC${"0a".repeat(16)}`;
const AUTH_TOKEN = "f".repeat(32);
const SERVICE_SID = `MG${"1b".repeat(16)}`;
const TWILIO_NUMBER = "+15145550199";
const WORKER = "+15145550142";

interface Received {
  url: string;
  headers: Headers;
  params: Record<string, string>;
}

/** A webhook receiver on loopback that records what the fake posts. */
function receiver() {
  const received: Received[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    received.push({ url: req.url, headers: req.headers, params: Object.fromEntries(new URLSearchParams(await req.text())) });
    return new Response("<Response/>", { headers: { "content-type": "text/xml" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/functions/v1/sms-status?tenant=a`, received, close: () => server.shutdown() };
}

async function withFake(fn: (fake: TwilioFake, hook: ReturnType<typeof receiver>) => Promise<void>) {
  const fake = startTwilioFake({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, messagingServiceSid: SERVICE_SID, phoneNumber: TWILIO_NUMBER });
  const hook = receiver();
  try {
    await fn(fake, hook);
  } finally {
    await fake.close();
    await hook.close();
  }
}

function send(fake: TwilioFake, form: Record<string, string>, auth = `${ACCOUNT_SID}:${AUTH_TOKEN}`, sid = ACCOUNT_SID) {
  return fetch(`${fake.url}/2010-04-01/Accounts/${sid}/Messages.json`, {
    method: "POST",
    headers: { authorization: `Basic ${btoa(auth)}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
}

async function twilioError(res: Response, status: number, code: number) {
  const body = await res.json();
  assert.equal(res.status, status);
  assert.deepEqual(body, { code, message: body.message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
  assert.equal(typeof body.message, "string");
  return body;
}

/** Checks every received webhook with the SDK's own validator, on the exact URL called. */
function assertSigned(r: Received) {
  const signature = r.headers.get("x-twilio-signature") ?? "";
  assert.ok(validateRequest(AUTH_TOKEN, signature, r.url, r.params), `bad signature for ${JSON.stringify(r.params)}`);
  assert.equal(r.headers.get("content-type"), "application/x-www-form-urlencoded");
  assert.equal(r.headers.get("user-agent"), "TwilioProxy/1.1");
  assert.ok(r.headers.get("i-twilio-idempotency-token"));
}

Deno.test("twilio fake: create via the Messaging Service → 201 with Twilio's Message JSON; fetch by SID", async () => {
  await withFake(async (fake) => {
    const res = await send(fake, { To: WORKER, Body: "Alerte: évacuez le site", MessagingServiceSid: SERVICE_SID });
    const m: TwilioMessage = await res.json();
    assert.equal(res.status, 201);
    assert.match(m.sid, /^SM[0-9a-f]{32}$/);
    assert.equal(m.account_sid, ACCOUNT_SID);
    assert.equal(m.messaging_service_sid, SERVICE_SID);
    assert.equal(m.status, "accepted");
    assert.equal(m.direction, "outbound-api");
    assert.equal(m.api_version, "2010-04-01");
    assert.equal(m.to, WORKER);
    assert.equal(m.from, null, "a Messaging Service picks the sender later");
    assert.equal(m.num_segments, "0");
    assert.equal(m.error_code, null);
    assert.equal(m.uri, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${m.sid}.json`);
    assert.match(m.date_created, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);

    const viaFrom: TwilioMessage = await (await send(fake, { To: WORKER, Body: "x", From: TWILIO_NUMBER })).json();
    assert.equal(viaFrom.status, "queued");
    assert.equal(viaFrom.from, TWILIO_NUMBER);
    assert.equal(viaFrom.num_segments, "1");

    const got = await fetch(`${fake.url}${m.uri}`, { headers: { authorization: `Basic ${btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`)}` } });
    assert.equal(got.status, 200);
    assert.equal((await got.json()).sid, m.sid);
    const missing = await fetch(`${fake.url}/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/SM${"0".repeat(32)}.json`, {
      headers: { authorization: `Basic ${btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`)}` },
    });
    await twilioError(missing, 404, 20404);
    assert.deepEqual(fake.calls, { create: 2, fetch: 2 });
  });
});

Deno.test("twilio fake: wrong credentials or another account's path → 401 with error 20003, nothing created", async () => {
  await withFake(async (fake) => {
    const form = { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID };
    await twilioError(await send(fake, form, `${ACCOUNT_SID}:${"e".repeat(32)}`), 401, 20003);
    await twilioError(await send(fake, form, `${ACCOUNT_SID}:${AUTH_TOKEN}`, `AC${"9".repeat(32)}`), 401, 20003);
    const noAuth = await fetch(`${fake.url}/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`, { method: "POST", body: new URLSearchParams(form) });
    await twilioError(noAuth, 401, 20003);
    assert.equal(fake.messages.size, 0);
  });
});

Deno.test("twilio fake: 21211 invalid To, 21602 no Body, 21610 opted out (by an inbound STOP), scripted 20429 with Retry-After", async () => {
  await withFake(async (fake, hook) => {
    await twilioError(await send(fake, { To: "514-555-0142", Body: "x", MessagingServiceSid: SERVICE_SID }), 400, 21211);
    await twilioError(await send(fake, { To: WORKER, Body: "", MessagingServiceSid: SERVICE_SID }), 400, 21602);

    await fake.postInboundSms(hook.url, { from: WORKER, body: " stop " });
    await twilioError(await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID }), 400, 21610);
    await fake.postInboundSms(hook.url, { from: WORKER, body: "START" });
    assert.equal((await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID })).status, 201);

    fake.script({ reject: 20429, retryAfterSeconds: 3 });
    const limited = await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID });
    assert.equal(limited.headers.get("retry-after"), "3");
    await twilioError(limited, 429, 20429);
    assert.equal((await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID })).status, 201, "one create per outcome");
    assert.equal(fake.messages.size, 2);

    // Bounded: a body over 64 KiB is refused before it is parsed.
    const huge = await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID, Padding: "p".repeat(70_000) });
    assert.equal((await twilioError(huge, 400, 21617)).message, "Request too large");
    assert.equal(fake.messages.size, 2);
  });
});

Deno.test("twilio fake: status callbacks arrive signed, in order, with Twilio's fields", async () => {
  await withFake(async (fake, hook) => {
    const m: TwilioMessage = await (await send(fake, {
      To: WORKER,
      Body: "x",
      MessagingServiceSid: SERVICE_SID,
      StatusCallback: hook.url,
    })).json();
    await fake.settled();
    assert.deepEqual(hook.received.map((r) => r.params.MessageStatus), ["queued", "sending", "sent", "delivered"]);
    for (const r of hook.received) {
      assertSigned(r);
      assert.equal(r.url, hook.url, "the exact StatusCallback URL, query included");
      assert.equal(r.params.MessageSid, m.sid);
      assert.equal(r.params.SmsSid, m.sid);
      assert.equal(r.params.SmsStatus, r.params.MessageStatus);
      assert.equal(r.params.AccountSid, ACCOUNT_SID);
      assert.equal(r.params.MessagingServiceSid, SERVICE_SID);
      assert.equal(r.params.From, TWILIO_NUMBER);
      assert.equal(r.params.To, WORKER);
      assert.equal(r.params.ApiVersion, "2010-04-01");
      assert.equal(r.params.ErrorCode, undefined);
    }
    assert.equal(fake.callbacksSent.length, 4);
    assert.ok(fake.callbacksSent.every((c) => c.status === 200));
    assert.equal(fake.messages.get(m.sid)?.status, "delivered");
  });
});

Deno.test("twilio fake: scripted 30003 ends undelivered with ErrorCode; on demand: out of order and duplicated", async () => {
  await withFake(async (fake, hook) => {
    fake.script({ fail: "undelivered", errorCode: 30003 });
    const failed: TwilioMessage = await (await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID, StatusCallback: hook.url })).json();
    await fake.settled();
    const last = hook.received.at(-1)!;
    assert.deepEqual([last.params.MessageStatus, last.params.ErrorCode], ["undelivered", "30003"]);
    assert.equal(fake.messages.get(failed.sid)?.error_code, 30003);

    hook.received.length = 0;
    fake.script({ callbacks: "none" });
    const m: TwilioMessage = await (await send(fake, { To: WORKER, Body: "x", MessagingServiceSid: SERVICE_SID, StatusCallback: hook.url })).json();
    await fake.settled();
    assert.equal(hook.received.length, 0, "no automatic callbacks when scripted so");
    for (const s of ["delivered", "sent", "delivered", "queued"] as const) await fake.sendStatusCallback(m.sid, s);
    await fake.sendStatusCallback(m.sid, "failed", { errorCode: 30003 });
    assert.deepEqual(hook.received.map((r) => r.params.MessageStatus), ["delivered", "sent", "delivered", "queued", "failed"]);
    assert.equal(hook.received.at(-1)!.params.ErrorCode, "30003");
    hook.received.forEach(assertSigned);
  });
});

Deno.test("twilio fake: inbound SMS and calls are posted signed with Twilio's webhook fields", async () => {
  await withFake(async (fake, hook) => {
    await fake.postInboundSms(hook.url, { from: WORKER, body: "Arrêt !", optOutType: "STOP" });
    const sms = hook.received[0];
    assertSigned(sms);
    assert.equal(sms.params.Body, "Arrêt !");
    assert.equal(sms.params.OptOutType, "STOP");
    assert.equal(sms.params.To, TWILIO_NUMBER);
    assert.equal(sms.params.From, WORKER);
    assert.match(sms.params.MessageSid, /^SM[0-9a-f]{32}$/);
    assert.equal(sms.params.SmsSid, sms.params.MessageSid);
    assert.equal(sms.params.AccountSid, ACCOUNT_SID);
    assert.equal(sms.params.MessagingServiceSid, SERVICE_SID);
    assert.equal(sms.params.NumMedia, "0");
    assert.equal(sms.params.NumSegments, "1");
    assert.ok(fake.optedOut.has(WORKER), "OptOutType=STOP puts the sender on Twilio's list");

    await fake.postInboundCall(hook.url, { from: WORKER });
    const call = hook.received[1];
    assertSigned(call);
    assert.match(call.params.CallSid, /^CA[0-9a-f]{32}$/);
    assert.deepEqual(
      [call.params.From, call.params.To, call.params.Direction, call.params.CallStatus, call.params.ApiVersion, call.params.AccountSid],
      [WORKER, TWILIO_NUMBER, "inbound", "ringing", "2010-04-01", ACCOUNT_SID],
    );

    // A retry carries the same idempotency token; a tampered parameter no longer validates.
    const first = await fake.postSignedForm(hook.url, { CallSid: call.params.CallSid, DialCallStatus: "no-answer" });
    await fake.postSignedForm(hook.url, first.params, { idempotencyToken: first.idempotencyToken });
    const [a, b] = hook.received.slice(2);
    assert.equal(a.headers.get("i-twilio-idempotency-token"), b.headers.get("i-twilio-idempotency-token"));
    assert.ok(!validateRequest(AUTH_TOKEN, first.signature, hook.url, { ...first.params, DialCallStatus: "completed" }));
  });
});

Deno.test("twilio fake: the test runner runs one with the functions' Twilio settings and gives them its URL", async () => {
  const base = Deno.env.get("TWILIO_API_BASE");
  assert.ok(base, "the runner sets TWILIO_API_BASE");
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  const settings = parseDotenv(await Deno.readTextFile(fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url))));
  const res = await fetch(`${base}/2010-04-01/Accounts/${settings.TWILIO_ACCOUNT_SID}/Messages.json`, {
    method: "POST",
    headers: { authorization: `Basic ${btoa(`${settings.TWILIO_ACCOUNT_SID}:${settings.TWILIO_AUTH_TOKEN}`)}` },
    body: new URLSearchParams({ To: WORKER, Body: "runner", MessagingServiceSid: settings.TWILIO_MESSAGING_SERVICE_SID }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal((await res.json()).messaging_service_sid, settings.TWILIO_MESSAGING_SERVICE_SID);

  const echoed = await fetch(functionUrl("echo-public"));
  const seen = (await echoed.json() as EchoReply).env;
  assert.ok(seen.names.includes("TWILIO_API_BASE"), "the functions' env has TWILIO_API_BASE");
});
