// sms-status through the gateway: signed status callbacks (the fake Twilio posts them exactly as
// Twilio does), shuffled and repeated, against the real database. Outbound messages and their
// workers are created here (+1 514 555 018x) and removed with their tenant.
import assert from "node:assert/strict";
import { functionUrl, type Sql, withDb } from "../../_helpers.ts";
import { fixtureSettings, randomSid, signedRequest, withTwilioFake } from "../twilio_helpers.ts";
import type { TwilioFake } from "../../../scripts/fakes/twilio.ts";

const URL_STATUS = functionUrl("sms-status");
const EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

interface World {
  sql: Sql;
  fake: TwilioFake;
  /** An outbound message (queued, with its SID) to a new worker. */
  outbound(phone: string): Promise<{ sid: string; worker: string }>;
  callback(sid: string, status: string, extra?: Record<string, string>): Promise<{ status: number; body: string }>;
}

async function withWorld(fn: (w: World) => Promise<void>) {
  await withDb(async (sql) => {
    const [{ tenant }] = await sql`insert into public.tenants (name) values ('sms-status test') returning id as tenant`;
    try {
      await withTwilioFake((fake) =>
        fn({
          sql,
          fake,
          async outbound(phone) {
            const [{ id: worker }] = await sql`insert into public.workers (tenant_id, full_name, phone, sms_consent, phone_verified)
              values (${tenant}, 'Travailleur test', ${phone}, true, true)
              on conflict (tenant_id, phone) do update set sms_consent = true returning id`;
            const sid = randomSid();
            await sql`insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id)
              values (${tenant}, ${worker}, 'outbound', ${fixtureSettings.TWILIO_PHONE_NUMBER}, ${phone}, 'Alerte test', 'queued', ${sid})`;
            return { sid, worker };
          },
          async callback(sid, status, extra = {}) {
            const sent = await fake.postSignedForm(URL_STATUS, {
              MessageSid: sid,
              SmsSid: sid,
              MessageStatus: status,
              SmsStatus: status,
              AccountSid: fixtureSettings.TWILIO_ACCOUNT_SID,
              MessagingServiceSid: fixtureSettings.TWILIO_MESSAGING_SERVICE_SID,
              To: "+15145550180",
              ApiVersion: "2010-04-01",
              ...extra,
            });
            return { status: sent.status, body: sent.responseBody };
          },
        })
      );
    } finally {
      await sql`delete from public.tenants where id = ${tenant}`;
    }
  });
}

async function alertOf(sql: Sql, sid: string) {
  const [row] = await sql`select status, error_code, sent_at is not null as sent, delivered_at is not null as delivered
    from public.sms_alerts where provider_message_id = ${sid}`;
  return { ...row };
}

// Fixed orders (tests never depend on chance): in order, reversed, shuffled, with duplicates.
const DELIVERED_ORDERS = [
  ["queued", "sending", "sent", "delivered"],
  ["delivered", "sent", "sending", "queued"],
  ["sent", "delivered", "queued", "delivered", "sending", "sent"],
  ["delivered", "delivered", "sent"],
  ["sending", "read", "delivered", "sent"],
];

Deno.test("sms-status (gateway): shuffled and repeated callbacks end in the highest status, timestamps set", async () => {
  await withWorld(async ({ sql, outbound, callback }) => {
    for (const order of DELIVERED_ORDERS) {
      const { sid } = await outbound("+15145550181");
      for (const status of order) {
        const res = await callback(sid, status);
        assert.equal(res.status, 200);
        assert.equal(res.body, EMPTY);
      }
      const expected = order.includes("read") ? "read" : "delivered";
      assert.deepEqual(await alertOf(sql, sid), { status: expected, error_code: null, sent: true, delivered: true }, order.join(","));
    }
  });
});

Deno.test("sms-status (gateway): a failure keeps its error code; a late 'sent' does not undo it; the audit row carries details.error", async () => {
  await withWorld(async ({ sql, outbound, callback }) => {
    const { sid } = await outbound("+15145550182");
    await callback(sid, "sent");
    await callback(sid, "undelivered", { ErrorCode: "30003", ErrorMessage: "Unreachable destination handset" });
    await callback(sid, "sending");
    await callback(sid, "sent");
    assert.deepEqual(await alertOf(sql, sid), { status: "undelivered", error_code: 30003, sent: true, delivered: false });
    const errors = await sql`select details from public.system_audit_logs where area = 'twilio' and target = ${sid} and details ->> 'error' is not null`;
    assert.equal(errors.length, 1);
  });
});

Deno.test("sms-status (gateway): 21610 revokes the worker's consent with a carrier_error proof row", async () => {
  await withWorld(async ({ sql, outbound, callback }) => {
    const { sid, worker } = await outbound("+15145550183");
    const res = await callback(sid, "failed", { ErrorCode: "21610" });
    assert.equal(res.status, 200);
    const [{ sms_consent }] = await sql`select sms_consent from public.workers where id = ${worker}`;
    assert.equal(sms_consent, false);
    const proofs = await sql`select source, new_consent from public.sms_consent_events where worker_id = ${worker}`;
    assert.deepEqual(proofs.map((p) => ({ ...p })), [{ source: "carrier_error", new_consent: false }]);
    // Repeated: nothing more.
    await callback(sid, "failed", { ErrorCode: "21610" });
    const [{ n }] = await sql`select count(*)::int as n from public.sms_consent_events where worker_id = ${worker}`;
    assert.equal(n, 1);
  });
});

Deno.test("sms-status (gateway): an unknown MessageSid is acknowledged (200), changes nothing, and is audited", async () => {
  await withWorld(async ({ sql, callback }) => {
    const sid = randomSid();
    const [{ n: alertsBefore }] = await sql`select count(*)::int as n from public.sms_alerts`;
    const res = await callback(sid, "delivered");
    assert.equal(res.status, 200);
    assert.equal(res.body, EMPTY);
    const [{ n: alertsAfter }] = await sql`select count(*)::int as n from public.sms_alerts`;
    assert.equal(alertsAfter, alertsBefore);
    const [audit] = await sql`select details from public.system_audit_logs where area = 'twilio' and target = ${sid}`;
    assert.equal(audit.details.unknown, true);
  });
});

Deno.test("sms-status (gateway): malformed or forged callbacks → 4xx, and no row changed or added", async () => {
  await withWorld(async ({ sql, outbound }) => {
    const { sid } = await outbound("+15145550184");
    const p = { MessageSid: sid, MessageStatus: "delivered" };
    const cases: [string, number, () => Request | Promise<Request>][] = [
      ["GET", 405, () => new Request(URL_STATUS)],
      ["JSON", 415, () => new Request(URL_STATUS, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(p) })],
      ["tampered status", 403, () => signedRequest(URL_STATUS, { ...p, MessageStatus: "failed" }, { signedParams: p })],
      ["tampered URL", 403, () => signedRequest(`${URL_STATUS}?x=1`, p, { signedUrl: URL_STATUS })],
      ["wrong token", 403, () => signedRequest(URL_STATUS, p, { token: "0123456789abcdef0123456789abcdef" })],
      ["no MessageStatus", 400, () => signedRequest(URL_STATUS, { MessageSid: sid })],
      ["no MessageSid", 400, () => signedRequest(URL_STATUS, { MessageStatus: "sent" })],
      ["unknown status", 400, () => signedRequest(URL_STATUS, { ...p, MessageStatus: "teleported" })],
      ["bad ErrorCode", 400, () => signedRequest(URL_STATUS, { ...p, MessageStatus: "failed", ErrorCode: "-1" })],
      ["invalid UTF-8", 400, () => signedRequest(URL_STATUS, p, { body: new Uint8Array([0x4d, 0x3d, 0xfe]) })],
      ["over 1 MiB", 413, () => signedRequest(URL_STATUS, { ...p, ErrorMessage: "x".repeat(1024 * 1024 + 1) })],
    ];
    const snapshot = async () => {
      const [row] = await sql`select
        (select count(*)::int from public.system_audit_logs where area = 'twilio') as audits,
        (select status from public.sms_alerts where provider_message_id = ${sid}) as status`;
      return { ...row };
    };
    const before = await snapshot();
    for (const [name, status, make] of cases) {
      const res = await fetch(await make());
      const text = await res.text();
      assert.equal(res.status, status, `${name}: ${text}`);
    }
    assert.deepEqual(await snapshot(), before);
    assert.equal(before.status, "queued");
  });
});
