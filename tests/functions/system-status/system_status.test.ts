// system-status through a real gateway and worker, against the real database: what the service, a
// tenant admin and anyone else get; each of the 17 settings present, missing or malformed (with its
// reason, never its value: every response body and every log line is scanned for every secret);
// 503 `down` when the database does not answer. Each test runs a gateway of its own
// (status_gateway.ts) so its settings reach no other function.
import assert from "node:assert/strict";
import { generateLocalProviderSettings } from "../../../scripts/local-supabase/local-config.ts";
import { freePort } from "../../../scripts/local-supabase/cluster.ts";
import { env, mintUserToken, withDb } from "../../_helpers.ts";
import { SEED_SETTINGS } from "../../../supabase/functions/system-status/settings.ts";
import { leakedFragment, type OwnGateway, secretValues, startOwnGateway } from "./status_gateway.ts";

const CHECKS = ["billing_sync", "cron", "database", "database_size", "settings", "sms", "stripe_webhooks"];
const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

interface Exchange {
  status: number;
  text: string;
  body: Record<string, unknown>;
}

async function get(gateway: OwnGateway, headers: Record<string, string> = {}, rest = ""): Promise<Exchange> {
  const res = await fetch(gateway.functionUrl("system-status", rest), { headers });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}

const service = () => ({ apikey: env.secretKey, authorization: `Bearer ${env.secretKey}` });
const user = (token: string) => ({ authorization: `Bearer ${token}`, apikey: env.publishableKey });

/** No fragment of any secret in any of `texts` (responses) nor in the gateway's logs. */
async function assertNoSecrets(gateway: OwnGateway, settings: Record<string, string>, texts: string[]) {
  await gateway.close(); // flushes the worker's output into gateway.logs
  const everything = [...texts, ...gateway.logs].join("\n");
  for (const value of secretValues(settings)) {
    const fragment = leakedFragment(everything, value);
    assert.equal(fragment, undefined, `a fragment of a secret leaked: ${fragment}`);
  }
}

/** A bare liveness answer: exactly {status}, naming no setting. */
function assertBare(exchange: Exchange, expected: string) {
  assert.deepEqual(exchange.body, { status: expected }, exchange.text);
  for (const { name } of SEED_SETTINGS) assert.ok(!exchange.text.includes(name));
}

async function tenantUser(role: "owner" | "admin" | "member" | null): Promise<string> {
  return await withDb(async (sql) => {
    const id = crypto.randomUUID();
    await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
              values (${id}, 'authenticated', 'authenticated', ${`status-${id}@example.test`}, now(),
                      '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
    if (role) {
      const [{ id: tenant }] = await sql`insert into public.tenants (name) values (${"status " + id}) returning id`;
      await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant}, ${id}, ${role})`;
    }
    return await mintUserToken(id);
  });
}

async function lastMigrationOnDisk(): Promise<string> {
  const versions: string[] = [];
  for await (const entry of Deno.readDir(new URL("../../../supabase/migrations", import.meta.url))) {
    const m = /^(\d+)_.*\.sql$/.exec(entry.name);
    if (m) versions.push(m[1]);
  }
  return versions.sort().at(-1)!;
}

Deno.test("system-status: every setting present: the service and a tenant admin get every check; others get {status}; no secret anywhere", async (t) => {
  const settings = { ...generateLocalProviderSettings(), DB_SIZE_QUOTA_MB: "500" };
  const gateway = await startOwnGateway({ functions: ["system-status"], settings });
  const texts: string[] = [];
  try {
    await t.step("the service (secret key): 200, every check, the 17 settings ok, recorded", async () => {
      const before = await withDb((sql) => sql`select count(*)::int as n from private.system_status_history where caller = 'service'`);
      const r = await get(gateway, service());
      texts.push(r.text);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.status === "ok" || r.body.status === "degraded", r.text);
      assert.equal(r.body.caller, "service");
      const checks = r.body.checks as Record<string, { status: string; [k: string]: unknown }>;
      assert.deepEqual(Object.keys(checks).sort(), CHECKS);
      // Overall = degraded exactly when a check failed (the shared test database may hold failures).
      assert.equal(r.body.status, Object.values(checks).some((c) => c.status === "fail") ? "degraded" : "ok");
      const list = r.body.settings as { name: string; status: string; seed: boolean; reason?: string; seed_name?: string }[];
      assert.deepEqual(list.filter((s) => s.seed).map((s) => s.name), SEED_SETTINGS.map((s) => s.name));
      for (const s of list.filter((s) => s.seed)) assert.equal(s.status, "ok", `${s.name}: ${s.reason}`);
      assert.equal(list.find((s) => s.name === "SUPABASE_PUBLISHABLE_KEYS")?.seed_name, "NEXT_PUBLIC_SUPABASE_ANON_KEY");
      assert.equal(checks.settings.status, "ok");
      assert.equal(checks.settings.seed_ok, 17);
      assert.equal(checks.database.reachable, true);
      assert.equal((checks.database.last_migration as { version: string }).version, await lastMigrationOnDisk());
      assert.equal(checks.database_size.quota_bytes, 500 * 1024 * 1024);
      assert.ok(Array.isArray(checks.cron.jobs));
      assert.ok(Array.isArray(r.body.open_alerts));
      assert.equal((r.body.thresholds as Record<string, number>).sms_delivery_rate_above, 0.95);
      const after = await withDb((sql) => sql`select count(*)::int as n from private.system_status_history where caller = 'service'`);
      assert.equal(after[0].n, before[0].n + 1, "one history row per evaluation");
    });

    await t.step("the legacy service_role key is the service too", async () => {
      const r = await get(gateway, { apikey: env.serviceRoleKey, authorization: `Bearer ${env.serviceRoleKey}` });
      texts.push(r.text);
      assert.equal(r.body.caller, "service", r.text);
    });

    await t.step("a tenant admin's and an owner's session: the full answer", async () => {
      for (const role of ["admin", "owner"] as const) {
        const r = await get(gateway, user(await tenantUser(role)));
        texts.push(r.text);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.caller, "admin");
        assert.equal((r.body.settings as unknown[]).length > 17, true);
      }
    });

    await t.step("anyone else: {status} only, naming no setting", async () => {
      const overall = (await get(gateway, service())).body.status as string;
      const others: Record<string, Record<string, string>> = {
        "no credential": {},
        "the publishable key": { apikey: env.publishableKey },
        "the legacy anon key": { apikey: env.anonKey, authorization: `Bearer ${env.anonKey}` },
        "a plain member": user(await tenantUser("member")),
        "a user of no tenant": user(await tenantUser(null)),
        "a forged token": { authorization: "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" },
        "a wrong secret key": { apikey: `sb_secret_${hex(16)}` },
      };
      for (const [who, headers] of Object.entries(others)) {
        const r = await get(gateway, headers);
        texts.push(r.text);
        assert.equal(r.status, 200, `${who}: ${r.text}`);
        assertBare(r, overall);
      }
    });

    await t.step("HEAD (an uptime monitor, the guide's `curl -I`): GET's 200, no body, with or without a credential", async () => {
      for (const headers of [{}, service()]) {
        const head = await fetch(gateway.functionUrl("system-status"), { method: "HEAD", headers });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("cache-control"), "no-store");
        assert.equal(await head.text(), "");
      }
    });

    await t.step("wrong method or path: a JSON 405 / 404, not a status", async () => {
      const put = await fetch(gateway.functionUrl("system-status"), { method: "PUT", headers: service() });
      assert.equal(put.status, 405);
      assert.equal((await put.json()).error, "method_not_allowed");
      assert.equal(put.headers.get("allow"), "GET, HEAD, POST");
      const nope = await get(gateway, service(), "/nope");
      assert.equal(nope.status, 404);
      assert.equal(nope.body.error, "not_found");
    });

    await t.step("p99 under 100 ms (100 sequential requests of the service, local stack)", async () => {
      const times: number[] = [];
      for (let i = 0; i < 100; i++) {
        const started = performance.now();
        const res = await fetch(gateway.functionUrl("system-status"), { headers: service() });
        await res.arrayBuffer();
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      const p99 = times[98];
      console.log(`system-status latency: p50 ${times[49].toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
      assert.ok(p99 < 100, `p99 ${p99.toFixed(1)} ms`);
    });
  } finally {
    await assertNoSecrets(gateway, settings, texts);
  }
});

Deno.test("system-status: missing and malformed settings: each named with its reason, never its value; settings check fails; 200 degraded", async () => {
  const settings: Record<string, string> = {
    ...generateLocalProviderSettings(),
    // Fake and wrong on purpose; built at run time (no live-looking key sits in the source).
    STRIPE_SECRET_KEY: ["pk", "live", `51Status${hex(12)}`].join("_"),
    TWILIO_AUTH_TOKEN: `Status-not-hex-${hex(8)}`,
    STRIPE_PRICE_ANNUAL: `prod_Status${hex(6)}`,
    TWILIO_MESSAGING_SERVICE_SID: `MG${hex(15)}z`,
    APP_URL: `http://app-${hex(4)}.example.test`,
    PUBLIC_CONTACT_NUMBER: "+10005550100",
    DB_SIZE_QUOTA_MB: "lots",
    TWILIO_API_BASE: "https://api.twilio.example.test",
  };
  delete settings.OWNER_MOBILE;
  delete settings.STRIPE_WEBHOOK_SECRET;
  const expected: Record<string, [string, RegExp]> = {
    STRIPE_SECRET_KEY: ["malformed", /publishable key/],
    TWILIO_AUTH_TOKEN: ["malformed", /32 lower-case hexadecimal/],
    STRIPE_PRICE_ANNUAL: ["malformed", /price_/],
    TWILIO_MESSAGING_SERVICE_SID: ["malformed", /MG followed by 32/],
    APP_URL: ["malformed", /https/],
    PUBLIC_CONTACT_NUMBER: ["malformed", /not a valid phone number/],
    OWNER_MOBILE: ["missing", /is not set/],
    STRIPE_WEBHOOK_SECRET: ["missing", /is not set/],
    DB_SIZE_QUOTA_MB: ["malformed", /whole number of megabytes/],
    TWILIO_API_BASE: ["malformed", /loopback/],
  };
  const gateway = await startOwnGateway({ functions: ["system-status"], settings });
  const texts: string[] = [];
  try {
    const r = await get(gateway, service());
    texts.push(r.text);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, "degraded");
    const list = r.body.settings as { name: string; status: string; reason?: string; seed: boolean }[];
    for (const entry of list) {
      const want = expected[entry.name];
      if (want) {
        assert.equal(entry.status, want[0], entry.name);
        assert.match(entry.reason ?? "", want[1], entry.name);
      } else if (entry.seed) {
        assert.equal(entry.status, "ok", `${entry.name}: ${entry.reason}`);
      }
    }
    const check = (r.body.checks as Record<string, { status: string; seed_ok: number; problems: { name: string }[] }>).settings;
    assert.equal(check.status, "fail");
    assert.equal(check.seed_ok, 17 - 8);
    assert.deepEqual(check.problems.map((p) => p.name).sort(), Object.keys(expected).sort());
    // The malformed quota falls back to the default (500 MB) for the size check.
    assert.equal((r.body.checks as Record<string, { quota_bytes: number }>).database_size.quota_bytes, 500 * 1024 * 1024);

    const bare = await get(gateway);
    texts.push(bare.text);
    assertBare(bare, "degraded");
  } finally {
    await assertNoSecrets(gateway, settings, texts);
  }
});

Deno.test("system-status: the database does not answer: 503 down within 3 s, never a 500; only the service sees why", async () => {
  const settings = generateLocalProviderSettings();
  // A port nothing listens on: connections are refused at once.
  const closed = `postgresql://postgres:postgres@127.0.0.1:${freePort()}/postgres`;
  const gateway = await startOwnGateway({ functions: ["system-status"], settings, dbUrl: closed });
  const texts: string[] = [];
  try {
    const started = performance.now();
    const r = await get(gateway, service());
    const elapsed = performance.now() - started;
    texts.push(r.text);
    assert.equal(r.status, 503, r.text);
    assert.ok(elapsed < 3000, `answered in ${elapsed.toFixed(0)} ms`);
    assert.equal(r.body.status, "down");
    const checks = r.body.checks as Record<string, Record<string, unknown>>;
    assert.equal(checks.database.reachable, false);
    assert.equal(checks.database.error, "unreachable");
    assert.equal(checks.settings.status, "ok", "the settings are still judged");
    assert.equal((r.body.settings as unknown[]).length > 17, true);

    for (const headers of [{}, user(await tenantUser("admin"))]) {
      const other = await get(gateway, headers);
      texts.push(other.text);
      assert.equal(other.status, 503);
      assertBare(other, "down");
    }
    // HEAD (an uptime monitor's probe, the guide's `curl -I`): the same 503, no body.
    const head = await fetch(gateway.functionUrl("system-status"), { method: "HEAD" });
    assert.equal(head.status, 503);
    assert.equal(await head.text(), "");
    await gateway.close(); // flushes the worker's output into gateway.logs
    assert.ok(gateway.logs.some((line) => /system-status: database unreachable/.test(line)), "the failure is logged");
  } finally {
    await assertNoSecrets(gateway, { ...settings, SUPABASE_DB_URL: closed }, texts);
  }
});
