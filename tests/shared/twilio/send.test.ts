// send.ts, the outbound SMS path, against a fake Twilio of its own (scripted errors) and the real
// database: reserve → send with StatusCallback → record; 21610 revokes consent; 20429 is retried
// (Retry-After honoured, bounded); 21211 is recorded and returned; a replayed key sends nothing.
import assert from "node:assert/strict";
import { SettingsSource } from "../../../supabase/functions/_shared/env.ts";
import { sendSms } from "../../../supabase/functions/_shared/twilio/send.ts";
import { TwilioClient } from "../../../supabase/functions/_shared/twilio/client.ts";
import { startTwilioFake, type TwilioFake } from "../../../scripts/fakes/twilio.ts";
import { type Sql, withDb } from "../../_helpers.ts";

const ACCOUNT_SID = `AC${"5e".repeat(16)}`;
const AUTH_TOKEN = "d".repeat(32);
const SERVICE_SID = `MG${"5e".repeat(16)}`;
// The seed's Twilio number (tests/database/settings_consistency.test.ts holds every outbound row to it).
const TWILIO_NUMBER = "+15145550199";
const PUBLIC_BASE = "https://functions.example.test/functions/v1";

const source = new SettingsSource((name) =>
  ({ TWILIO_PHONE_NUMBER: TWILIO_NUMBER, FUNCTIONS_PUBLIC_URL: PUBLIC_BASE, SUPABASE_URL: "http://127.0.0.1:1" } as Record<string, string>)[name]
);

async function withSetup(fn: (ctx: { fake: TwilioFake; sql: Sql; client: TwilioClient; worker: (phone: string) => Promise<string> }) => Promise<void>) {
  const fake = startTwilioFake({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, messagingServiceSid: SERVICE_SID, phoneNumber: TWILIO_NUMBER });
  const client = new TwilioClient({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, messagingServiceSid: SERVICE_SID, apiBase: fake.url });
  try {
    await withDb(async (sql) => {
      const [{ id: tenant }] = await sql`insert into public.tenants (name) values ('Send test') returning id`;
      const worker = async (phone: string) => {
        const [{ id }] = await sql`
          insert into public.workers (tenant_id, full_name, phone, sms_consent, phone_verified)
          values (${tenant}, 'Send test', ${phone}, true, true) returning id`;
        return id as string;
      };
      // A fresh tenant per test (rows stay: the audit trail is append-only).
      await fn({ fake, sql, client, worker });
    });
  } finally {
    await fake.close();
  }
}

Deno.test("send: reserve → Messaging Service with StatusCallback = public sms-status → MessageSid recorded", async () => {
  await withSetup(async ({ fake, sql, client, worker }) => {
    fake.script({ callbacks: "none" });
    const workerId = await worker("+15145550171");
    const result = await sendSms({ worker_id: workerId, body: "Test d'envoi" }, { sql, client, source });
    assert.equal(result.duplicate, false);
    assert.equal(result.messages.length, 1);
    const [m] = result.messages;
    assert.equal(m.outcome, "sent");
    assert.match(m.message_sid ?? "", /^SM[0-9a-f]{32}$/);
    const create = fake.requests.find((r) => r.method === "POST")!;
    assert.equal(create.params.StatusCallback, `${PUBLIC_BASE}/sms-status`);
    assert.equal(create.params.MessagingServiceSid, SERVICE_SID);
    assert.equal(create.params.To, "+15145550171");
    const [row] = await sql`select provider_message_id, from_number, status from public.sms_alerts where id = ${m.alert_id}`;
    assert.equal(row.provider_message_id, m.message_sid);
    assert.equal(row.from_number, TWILIO_NUMBER);
  });
});

Deno.test("send: 21610 → recorded failed, consent revoked (carrier proof row), typed result without the token", async () => {
  await withSetup(async ({ fake, sql, client, worker }) => {
    fake.script({ reject: 21610 });
    const workerId = await worker("+15145550172");
    const result = await sendSms({ worker_id: workerId, body: "Alerte" }, { sql, client, source });
    const [m] = result.messages;
    assert.equal(m.outcome, "failed");
    assert.equal(m.error?.code, 21610);
    assert.equal(m.attempts, 1);
    assert.ok(!JSON.stringify(result).includes(AUTH_TOKEN));
    const [row] = await sql`select status, error_code from public.sms_alerts where id = ${m.alert_id}`;
    assert.deepEqual({ ...row }, { status: "failed", error_code: 21610 });
    const [w] = await sql`select sms_consent from public.workers where id = ${workerId}`;
    assert.equal(w.sms_consent, false);
    const proofs = await sql`select source from public.sms_consent_events where worker_id = ${workerId}`;
    assert.deepEqual(proofs.map((p) => p.source), ["carrier_error"]);
    const audit = await sql`select details from public.system_audit_logs where action = 'sms_send_failed' and target = ${"sms_alerts:" + m.alert_id}`;
    assert.equal(audit.length, 1);
    assert.match(audit[0].details.error, /^21610/);
  });
});

Deno.test("send: 20429 then success → retried after Retry-After, one message, MessageSid recorded", async () => {
  await withSetup(async ({ fake, sql, client, worker }) => {
    fake.script({ reject: 20429, retryAfterSeconds: 2 }, { callbacks: "none" });
    const workerId = await worker("+15145550173");
    const waits: number[] = [];
    const result = await sendSms({ worker_id: workerId, body: "Alerte" }, {
      sql, client, source, sleep: (ms) => (waits.push(ms), Promise.resolve()),
    });
    const [m] = result.messages;
    assert.equal(m.outcome, "sent");
    assert.equal(m.attempts, 2);
    assert.deepEqual(waits, [2000]);
    assert.equal(fake.calls.create, 2);
    assert.equal(fake.messages.size, 1);
    const [row] = await sql`select provider_message_id from public.sms_alerts where id = ${m.alert_id}`;
    assert.equal(row.provider_message_id, m.message_sid);
  });
});

Deno.test("send: 20429 forever → bounded (≤ 3 attempts, waits within the budget), then recorded failed", async () => {
  await withSetup(async ({ fake, sql, client, worker }) => {
    fake.script({ reject: 20429, retryAfterSeconds: 1 }, { reject: 20429, retryAfterSeconds: 1 }, { reject: 20429, retryAfterSeconds: 1 });
    const workerId = await worker("+15145550174");
    const waits: number[] = [];
    const result = await sendSms({ worker_id: workerId, body: "Alerte" }, {
      sql, client, source, sleep: (ms) => (waits.push(ms), Promise.resolve()),
    });
    const [m] = result.messages;
    assert.equal(m.outcome, "failed");
    assert.equal(m.error?.code, 20429);
    assert.equal(m.attempts, 3);
    assert.deepEqual(waits, [1000, 1000]);
    assert.equal(fake.calls.create, 3);
    // A Retry-After longer than the budget is not waited for.
    fake.script({ reject: 20429, retryAfterSeconds: 60 });
    const waits2: number[] = [];
    const again = await sendSms({ worker_id: workerId, body: "Alerte 2" }, {
      sql, client, source, sleep: (ms) => (waits2.push(ms), Promise.resolve()),
    });
    assert.equal(again.messages[0].outcome, "failed");
    assert.deepEqual(waits2, []);
  });
});

Deno.test("send: 21211 → recorded failed with details.error, returned typed; a bare number (service)", async () => {
  await withSetup(async ({ fake, sql, client }) => {
    fake.script({ reject: 21211 });
    const result = await sendSms({ to: "+15145550175", body: "Test" }, { sql, client, source });
    const [m] = result.messages;
    assert.equal(m.outcome, "failed");
    assert.equal(m.error?.code, 21211);
    assert.equal(m.error?.http_status, 400);
    const [row] = await sql`select status, error_code, worker_id from public.sms_alerts where id = ${m.alert_id}`;
    assert.deepEqual({ ...row }, { status: "failed", error_code: 21211, worker_id: null });
  });
});

Deno.test("send: a replayed idempotency key sends nothing and returns the first MessageSid", async () => {
  await withSetup(async ({ fake, sql, client, worker }) => {
    fake.script({ callbacks: "none" });
    const workerId = await worker("+15145550176");
    const key = `send-test-${crypto.randomUUID()}`;
    const first = await sendSms({ worker_id: workerId, body: "Une fois", idempotency_key: key }, { sql, client, source });
    const second = await sendSms({ worker_id: workerId, body: "Une fois", idempotency_key: key }, { sql, client, source });
    assert.equal(second.duplicate, true);
    assert.equal(second.messages[0].message_sid, first.messages[0].message_sid);
    assert.equal(fake.calls.create, 1);
  });
});
