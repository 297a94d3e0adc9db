// sms-status's handler without a network: everything refused before the database is reached.
// (Accepted callbacks, which write, are tested through the gateway: sms_status.test.ts.)
import assert from "node:assert/strict";
import { AUTH_TOKEN, randomSid, signedRequest } from "../twilio_helpers.ts";

Deno.env.set("TWILIO_AUTH_TOKEN", AUTH_TOKEN);
const { handler } = await import("../../../supabase/functions/sms-status/handler.ts");

const PUBLIC_URL = `${Deno.env.get("SUPABASE_URL")!.replace(/\/+$/, "")}/functions/v1/sms-status`;
const INTERNAL_URL = "http://127.0.0.1:9/sms-status";

async function errorOf(res: Response) {
  const body = await res.json();
  return { status: res.status, error: body.error };
}

Deno.test("sms-status handler: wrong method 405, wrong content type 415, over 1 MiB 413", async () => {
  assert.deepEqual(await errorOf(await handler(new Request(INTERNAL_URL, { method: "PUT", body: "x" }))), { status: 405, error: "method_not_allowed" });
  const json = new Request(INTERNAL_URL, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.deepEqual(await errorOf(await handler(json)), { status: 415, error: "unsupported_media_type" });
  const big = await signedRequest(INTERNAL_URL, {}, { signedUrl: PUBLIC_URL, body: "a=" + "b".repeat(1024 * 1024) });
  assert.deepEqual(await errorOf(await handler(big)), { status: 413, error: "payload_too_large" });
});

Deno.test("sms-status handler: unsigned or tampered → 403", async () => {
  const p = { MessageSid: randomSid(), MessageStatus: "delivered" };
  const tampered = await signedRequest(INTERNAL_URL, { ...p, MessageStatus: "failed" }, { signedUrl: PUBLIC_URL, signedParams: p });
  assert.deepEqual(await errorOf(await handler(tampered)), { status: 403, error: "invalid_signature" });
  const unsigned = new Request(INTERNAL_URL, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(p) });
  assert.deepEqual(await errorOf(await handler(unsigned)), { status: 403, error: "invalid_signature" });
});

Deno.test("sms-status handler: signed but missing fields, unknown status or non-numeric ErrorCode → 400", async () => {
  const cases: Record<string, string>[] = [
    { MessageStatus: "delivered" },
    { MessageSid: randomSid() },
    { MessageSid: randomSid(), MessageStatus: "exploded" },
    { MessageSid: randomSid(), MessageStatus: "failed", ErrorCode: "30003x" },
    { MessageSid: "not-a-sid", MessageStatus: "sent" },
  ];
  for (const p of cases) {
    const res = await handler(await signedRequest(INTERNAL_URL, p, { signedUrl: PUBLIC_URL }));
    const { status } = await errorOf(res);
    assert.equal(status, 400, JSON.stringify(p));
  }
});
