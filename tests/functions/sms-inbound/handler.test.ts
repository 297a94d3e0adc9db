// sms-inbound's handler without a network: everything refused before the database is reached.
// (Accepted webhooks, which write, are tested through the gateway: sms_inbound.test.ts.)
import assert from "node:assert/strict";
import { AUTH_TOKEN, CONTACT, randomSid, signedRequest } from "../twilio_helpers.ts";

// The handler reads its settings from the process environment at request time.
Deno.env.set("TWILIO_AUTH_TOKEN", AUTH_TOKEN);
Deno.env.set("PUBLIC_CONTACT_NUMBER", CONTACT);
const { handler } = await import("../../../supabase/functions/sms-inbound/handler.ts");

// The public URL the signature covers: ${SUPABASE_URL}/functions/v1/sms-inbound; the handler sees /sms-inbound.
const PUBLIC_URL = `${Deno.env.get("SUPABASE_URL")!.replace(/\/+$/, "")}/functions/v1/sms-inbound`;
const INTERNAL_URL = "http://127.0.0.1:9/sms-inbound";

function params(extra: Record<string, string> = {}) {
  return { MessageSid: randomSid(), From: "+15145550142", To: "+15145550199", Body: "STOP", ...extra };
}

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(!JSON.stringify(body).includes(AUTH_TOKEN));
  return { status: res.status, error: body.error };
}

Deno.test("sms-inbound handler: GET → 405 with Allow: POST", async () => {
  const res = await handler(new Request(INTERNAL_URL));
  assert.equal(res.headers.get("allow"), "POST");
  assert.deepEqual(await errorOf(res), { status: 405, error: "method_not_allowed" });
});

Deno.test("sms-inbound handler: JSON or no content type → 415", async () => {
  for (const type of ["application/json", "text/plain", ""]) {
    const req = new Request(INTERNAL_URL, { method: "POST", headers: type ? { "content-type": type } : {}, body: "{}" });
    if (!type) req.headers.delete("content-type");
    assert.deepEqual(await errorOf(await handler(req)), { status: 415, error: "unsupported_media_type" }, type);
  }
});

Deno.test("sms-inbound handler: a body over 1 MiB → 413 (declared, or streamed without a length)", async () => {
  const big = "Body=" + "a".repeat(1024 * 1024);
  const declared = await signedRequest(INTERNAL_URL, {}, { signedUrl: PUBLIC_URL, body: big });
  assert.deepEqual(await errorOf(await handler(declared)), { status: 413, error: "payload_too_large" });
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 17; i++) c.enqueue(new TextEncoder().encode("a".repeat(64 * 1024)));
      c.close();
    },
  });
  const chunked = await signedRequest(INTERNAL_URL, {}, { signedUrl: PUBLIC_URL, body: stream });
  assert.deepEqual(await errorOf(await handler(chunked)), { status: 413, error: "payload_too_large" });
});

Deno.test("sms-inbound handler: missing, wrong-token, wrong-URL or tampered signature → 403", async () => {
  const p = params();
  const unsigned = new Request(INTERNAL_URL, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(p) });
  assert.deepEqual(await errorOf(await handler(unsigned)), { status: 403, error: "invalid_signature" });
  const wrongToken = await signedRequest(INTERNAL_URL, p, { signedUrl: PUBLIC_URL, token: "0".repeat(32) });
  assert.deepEqual(await errorOf(await handler(wrongToken)), { status: 403, error: "invalid_signature" });
  const wrongUrl = await signedRequest(INTERNAL_URL, p, { signedUrl: PUBLIC_URL.replace("sms-inbound", "sms-status") });
  assert.deepEqual(await errorOf(await handler(wrongUrl)), { status: 403, error: "invalid_signature" });
  const tampered = await signedRequest(INTERNAL_URL, { ...p, Body: "START" }, { signedUrl: PUBLIC_URL, signedParams: p });
  assert.deepEqual(await errorOf(await handler(tampered)), { status: 403, error: "invalid_signature" });
});

Deno.test("sms-inbound handler: invalid UTF-8 → 400", async () => {
  const body = new Uint8Array([...new TextEncoder().encode("Body="), 0xc3, 0x28]);
  const req = await signedRequest(INTERNAL_URL, {}, { signedUrl: PUBLIC_URL, body });
  assert.deepEqual(await errorOf(await handler(req)), { status: 400, error: "bad_request" });
});

Deno.test("sms-inbound handler: signed but without MessageSid, From, To or Body → 400; a malformed MessageSid → 400", async () => {
  for (const name of ["MessageSid", "From", "To", "Body"]) {
    const p: Record<string, string> = params();
    delete p[name];
    const res = await handler(await signedRequest(INTERNAL_URL, p, { signedUrl: PUBLIC_URL }));
    assert.deepEqual(await errorOf(res), { status: 400, error: "missing_parameters" }, name);
  }
  const res = await handler(await signedRequest(INTERNAL_URL, params({ MessageSid: "SM'; drop table x" }), { signedUrl: PUBLIC_URL }));
  assert.deepEqual(await errorOf(res), { status: 400, error: "bad_request" });
});
