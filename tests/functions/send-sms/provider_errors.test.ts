// send-sms's handler in this process against a fake Twilio of its own (scripted provider errors,
// which the runner's shared fake cannot be told to produce) and the real database: Twilio's refusal
// of a single recipient → 422 with its code, of one site worker → 200 with that message failed;
// rate limit exhausted → 502 JSON. The SQL records and audits every outcome.
import assert from "node:assert/strict";
import { startTwilioFake, twilioFakeAccount } from "../../../scripts/fakes/twilio.ts";
import { closeDb } from "../../../supabase/functions/_shared/db.ts";
import { env, mintUserToken, type Sql, withDb } from "../../_helpers.ts";
import { fixtureSettings } from "../twilio_helpers.ts";

// Deno runs every test file in one process: the settings are set for this test only, then restored
// (the other function tests need the runner's TWILIO_API_BASE).
function setEnv(values: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(values)) Deno.env.set(k, v);
  return () => {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  };
}
const { handler } = await import("../../../supabase/functions/send-sms/handler.ts");

const URL_ = "http://127.0.0.1:9/send-sms";

async function setup(sql: Sql) {
  const [{ id: tenant }] = await sql`insert into public.tenants (name) values (${"send-sms errors " + crypto.randomUUID()}) returning id`;
  const userId = crypto.randomUUID();
  await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values (${userId}, 'authenticated', 'authenticated', ${`send-sms-${userId}@example.test`}, now(),
                    '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
  await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant}, ${userId}, 'admin')`;
  const worker = async (phone: string, site: string | null = null) => {
    const [{ id }] = await sql`insert into public.workers (tenant_id, site_id, full_name, phone, sms_consent, phone_verified)
                               values (${tenant}, ${site}, 'Send-sms errors', ${phone}, true, true) returning id`;
    return id as string;
  };
  return { tenant, token: await mintUserToken(userId), worker };
}

function post(body: unknown, token: string) {
  return handler(new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  }));
}

Deno.test({
  name: "send-sms handler: scripted 21610 → 422 with Twilio's code (one worker), 200 per-message (site); 20429 forever → 502",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fake = startTwilioFake(twilioFakeAccount(fixtureSettings));
    const restore = setEnv({
      ...Object.fromEntries(
        ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_PHONE_NUMBER", "OWNER_MOBILE"]
          .map((k) => [k, fixtureSettings[k]]),
      ),
      TWILIO_API_BASE: fake.url,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: env.secretKey }),
      SUPABASE_JWKS: JSON.stringify({ keys: env.jwks.keys.map(({ d: _d, ...pub }) => pub) }),
    });
    try {
      await withDb(async (sql) => {
        const { tenant, token, worker } = await setup(sql);
        // One worker, refused as unsubscribed: 422, failed row, consent revoked by the SQL.
        const w1 = await worker("+15145550198");
        fake.script({ reject: 21610 });
        let res = await post({ worker_id: w1, body: "Alerte" }, token);
        let out = await res.json();
        assert.equal(res.status, 422, JSON.stringify(out));
        assert.equal(out.twilio_code, 21610);
        assert.equal(out.messages[0].status, "failed");
        assert.equal(out.messages[0].error.code, 21610);
        assert.ok(!JSON.stringify(out).includes(fixtureSettings.TWILIO_AUTH_TOKEN));
        const [w] = await sql`select sms_consent from public.workers where id = ${w1}`;
        assert.equal(w.sms_consent, false);

        // A site: one refused, one sent → 200 with each outcome.
        const [{ id: site }] = await sql`insert into public.sites (tenant_id, name) values (${tenant}, 'Errors') returning id`;
        const a = await worker("+15145550187", site);
        const b = await worker("+15145550188", site);
        fake.script({ reject: 21610 });
        res = await post({ site_id: site, body: "Alerte chantier" }, token);
        out = await res.json();
        assert.equal(res.status, 200, JSON.stringify(out));
        const byWorker = Object.fromEntries(out.messages.map((m: { worker_id: string }) => [m.worker_id, m]));
        const [first, second] = [a, b].sort();
        assert.equal(byWorker[first].status, "failed");
        assert.equal(byWorker[first].error.code, 21610);
        assert.match(byWorker[second].message_sid, /^SM/);

        // Rate limited on every try: 502 JSON, the row recorded failed.
        const w3 = await worker("+15145550189");
        fake.script({ reject: 20429, retryAfterSeconds: 0 }, { reject: 20429, retryAfterSeconds: 0 }, { reject: 20429, retryAfterSeconds: 0 });
        res = await post({ worker_id: w3, body: "Alerte" }, token);
        out = await res.json();
        assert.equal(res.status, 502, JSON.stringify(out));
        assert.equal(out.error, "provider_unavailable");
        const [row] = await sql`select status, error_code from public.sms_alerts where worker_id = ${w3}`;
        assert.deepEqual({ ...row }, { status: "failed", error_code: 20429 });
      });
    } finally {
      restore();
      await closeDb();
      await fake.close();
    }
  },
});
