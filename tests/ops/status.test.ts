// `npm run ops -- status | db-status | alerts list|ack` against the runner's stack: the real
// system-status and db-status functions through the gateway (secret API key), the real
// public.system_alerts and private.ack_system_alert; exit codes 0/1/2 (status), 64 (usage).
import assert from "node:assert/strict";
import { env, withDb } from "../_helpers.ts";
import { fixtureSettings as billingSettings } from "../functions/billing_helpers.ts";
import { EXIT } from "../../scripts/ops/command.ts";
import { failingChecks, settingCell, STATUS_EXIT } from "../../scripts/ops/status.ts";
import { freePort } from "../../scripts/local-supabase/cluster.ts";
import { hostedValues, ops, opsJson, STACK_TRACE, withEnvFile } from "./_ops.ts";
import { startOwnGateway } from "../functions/system-status/status_gateway.ts";
import { generateLocalProviderSettings } from "../../scripts/local-supabase/local-config.ts";

const SECRETS = [
  env.secretKey,
  env.serviceRoleKey,
  billingSettings.STRIPE_SECRET_KEY,
  ...billingSettings.STRIPE_WEBHOOK_SECRET.split(","),
].filter((s) => s && s.length >= 8);

function assertNoSecret(run: { stdout: string; stderr: string }) {
  for (const secret of SECRETS) {
    assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), `a secret (${secret.slice(0, 6)}…) is in the output`);
  }
}

Deno.test("ops status --json: the function's answer, exit code from its status (0 ok, 1 degraded)", async () => {
  const { code, json, stderr } = await opsJson(["status"]);
  assertNoSecret({ stdout: JSON.stringify(json), stderr });
  assert.ok(json.status === "ok" || json.status === "degraded", `status ${json.status}: ${stderr}`);
  assert.equal(code, STATUS_EXIT[json.status as "ok" | "degraded"], stderr);
  assert.equal(json.ok, json.status === "ok");
  assert.equal(json.http_status, 200);
  const checks = json.checks as Record<string, { status: string }>;
  for (const name of ["settings", "database", "cron", "sms", "stripe_webhooks", "billing_sync", "database_size"]) {
    assert.ok(checks[name]?.status, `check ${name}`);
  }
  const settings = json.settings as { name: string; status: string }[];
  assert.ok(settings.length > 0);
  for (const s of settings) assert.match(s.status, /^(ok|missing|malformed)$/);
  assert.ok(Array.isArray(json.open_alerts));
});

Deno.test("ops status (human): every setting, every check, the cron jobs; no secret value; no escape sequence when piped", async () => {
  const run = await ops(["status"]);
  assert.ok(run.code === STATUS_EXIT.ok || run.code === STATUS_EXIT.degraded, run.stderr);
  assertNoSecret(run);
  assert.doesNotMatch(run.stdout, STACK_TRACE);
  assert.ok(!run.stdout.includes("\u001b["), "no escape sequence when piped");
  assert.match(run.stdout, /^System status: (ok|degraded) \(/m);
  assert.match(run.stdout, /^STRIPE_WEBHOOK_SECRET\s+(ok|missing|malformed)/m);
  assert.match(run.stdout, /^SUPABASE_SECRET_KEYS?\s+(ok|missing|malformed)/m);
  for (const check of ["settings", "database", "cron", "sms \\(24 h\\)", "stripe webhooks \\(24 h\\)", "billing sync", "database size"]) {
    assert.match(run.stdout, new RegExp(`^${check}\\s+(ok|fail|unknown)\\s`, "m"), check);
  }
  assert.match(run.stdout, /^Open alerts: \d+$/m);
});

Deno.test("ops status: an optional setting left unset shows `unset`, not a red `missing`; a required or seed one stays `missing`", () => {
  assert.deepEqual(settingCell({ name: "TWILIO_ADVANCED_OPT_OUT", status: "missing", optional: true, seed: false, reason: "is not set" }), {
    status: "unset",
    reason: "optional: not set, the default applies",
  });
  assert.deepEqual(settingCell({ name: "SUPABASE_DB_URL", status: "missing", optional: false, seed: false, reason: "is not set" }), {
    status: "missing",
    reason: "is not set",
  });
  assert.deepEqual(settingCell({ name: "OWNER_MOBILE", status: "missing", optional: true, seed: true, reason: "is not set" }), {
    status: "missing",
    reason: "is not set",
  });
  assert.equal(settingCell({ name: "CRON_SECRET", status: "malformed", optional: true, seed: false, reason: "too short" }).status, "malformed");
  assert.deepEqual(failingChecks({ sms: { status: "fail" }, cron: { status: "ok" }, billing_sync: { status: "unknown" }, stripe_webhooks: { status: "fail" } }), [
    "sms",
    "stripe_webhooks",
  ]);
});

Deno.test("ops status (human) on the stack: unset optional settings as `unset`; stderr names the failing checks", async () => {
  const { json } = await opsJson(["status"]);
  const run = await ops(["status"]);
  const settings = json.settings as { name: string; status: string; optional: boolean; seed: boolean }[];
  const unset = settings.filter((s) => s.status === "missing" && s.optional && !s.seed);
  assert.ok(unset.length > 0, "the test stack leaves some optional setting unset (e.g. TWILIO_ADVANCED_OPT_OUT)");
  for (const s of unset) assert.match(run.stdout, new RegExp(`^${s.name}\\s+unset\\s+optional: not set`, "m"), s.name);
  assert.doesNotMatch(run.stdout, /^\S+\s+missing\s/m, "no setting of the test stack is really missing");
  // Other test files change the stack's SMS and Stripe rows meanwhile: judge this run's own output.
  if (run.code === STATUS_EXIT.ok) {
    assert.equal(run.stderr.trim(), "");
  } else {
    assert.equal(run.code, STATUS_EXIT.degraded, run.stderr);
    const m = /^ops status: degraded: failing checks: ([a-z_]+(?:, [a-z_]+)*)$/.exec(run.stderr.trim());
    assert.ok(m, `one line naming the failing checks: ${run.stderr}`);
    const known = ["settings", "database", "cron", "sms", "stripe_webhooks", "billing_sync", "database_size"];
    for (const name of m[1].split(", ")) assert.ok(known.includes(name), name);
    assert.match(run.stdout, new RegExp(`^${m[1].split(", ")[0].replace("_", " ")}[^\\n]*\\sfail\\s`, "m"));
  }
});

Deno.test("ops status: an unreachable function is down, exit 2, one line", async () => {
  const closed = await freePort(); // nothing listens there
  const values = { ...hostedValues(), SUPABASE_URL: `http://127.0.0.1:${closed}` };
  await withEnvFile(values, async (file) => {
    const run = await ops(["--env-file", file, "status"]);
    assert.equal(run.code, STATUS_EXIT.down, run.stderr);
    assert.equal(run.stdout, "");
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`^ops status: down: cannot reach http://127\\.0\\.0\\.1:${closed}/functions/v1/system-status`));
    const json = await opsJson(["--env-file", file, "status"]);
    assert.equal(json.code, STATUS_EXIT.down);
    assert.equal(json.json.status, "down");
  });
});

Deno.test("ops status / db-status: the functions answer but the database does not: down (2 / 1), one clear line, no zero counts", async () => {
  const closed = `postgresql://postgres:postgres@127.0.0.1:${freePort()}/postgres`;
  const gateway = await startOwnGateway({ functions: ["system-status", "db-status"], settings: generateLocalProviderSettings(), dbUrl: closed });
  try {
    await withEnvFile({ ...hostedValues(), SUPABASE_URL: gateway.url }, async (file) => {
      const run = await ops(["--env-file", file, "status"]);
      assert.equal(run.code, STATUS_EXIT.down, run.stderr);
      assert.match(run.stdout, /^System status: down \(/m);
      assert.match(run.stdout, /^database\s+down\s+does not answer: unreachable \(ECONNREFUSED\)$/m);
      assert.match(run.stdout, /^settings\s+ok\s/m, "the settings are still judged");
      assert.doesNotMatch(run.stdout, /0 jobs|0 sent|Open alerts: 0/, "no count the database did not give");
      assert.match(run.stdout, /open alerts: unknown while the database does not answer/);
      assert.equal(run.stderr.trim(), "ops status: down: the database does not answer: unreachable (ECONNREFUSED)");

      const db = await ops(["--env-file", file, "db-status"]);
      assert.equal(db.code, EXIT.failed, db.stderr);
      assert.equal(db.stdout, "");
      assert.equal(db.stderr.trim(), "ops db-status: down: the database does not answer: unreachable (ECONNREFUSED)");
      const json = await opsJson(["--env-file", file, "db-status"]);
      assert.equal(json.code, EXIT.failed);
      assert.equal(json.json.http_status, 503);
      assert.equal(json.json.status, "down");
    });
  } finally {
    await gateway.close();
  }
});

Deno.test("ops db-status: schemas, tables, RLS, migrations ok on the test stack; exit 0 only when every section is ok", async () => {
  const run = await ops(["db-status"]);
  assert.match(run.stdout, /^Database status: (ok|degraded) /m);
  for (const s of ["schemas", "tables", "rls", "migrations"]) assert.match(run.stdout, new RegExp(`^${s}\\s+ok\\s`, "m"), s);
  for (const s of ["cron", "vault"]) assert.match(run.stdout, new RegExp(`^${s}\\s+(ok|fail)\\s`, "m"), s);
  assert.match(run.stdout, /without RLS: none/);
  assertNoSecret(run);
  const { code, json } = await opsJson(["db-status"]);
  assert.equal(json.http_status, 200);
  assert.deepEqual((json.rls as { without_rls: string[] }).without_rls, []);
  const sections = ["schemas", "tables", "rls", "migrations", "cron", "vault"].map((s) => (json[s] as { status: string }).status);
  // The test stack holds no Vault secrets for the scheduled evaluation (so its job is inactive):
  // then degraded and exit 1; with them, ok and 0.
  const allOk = sections.every((s) => s === "ok");
  assert.equal(json.status, allOk ? "ok" : "degraded");
  assert.equal(code, allOk ? EXIT.ok : EXIT.failed, run.stderr);
  assert.equal(run.code, code);
  if (!allOk) assert.match(run.stderr, /^ops db-status: database degraded: /m);
});

Deno.test("ops alerts list / ack: an open alert is listed, acked (audited, once), then listed as acked; --all", async () => {
  const subject = `ops-test-${crypto.randomUUID()}`;
  const [{ id }] = await withDb((sql) =>
    sql`insert into public.system_alerts (kind, subject, details) values ('cron_job_failed', ${subject}, '{"job": "test"}') returning id::text as id`
  );
  try {
    const listed = await opsJson(["alerts", "list"]);
    assert.equal(listed.code, EXIT.ok, listed.stderr);
    const mine = (listed.json.alerts as { id: string; state: string; subject: string }[]).find((a) => a.id === id);
    assert.equal(mine?.state, "open");

    const human = await ops(["alerts", "list"]);
    assert.match(human.stdout, new RegExp(`^${id}\\s+cron_job_failed\\s+${subject}\\s+open\\s`, "m"));
    // ops status lists it too, with its own state (open), not a check verdict.
    const status = await ops(["status"]);
    assert.match(status.stdout, new RegExp(`^${id}\\s+cron_job_failed\\s+${subject}\\s+open\\s`, "m"), status.stdout);

    const acked = await opsJson(["alerts", "ack", id, "--actor", "operateur.garde"]);
    assert.equal(acked.code, EXIT.ok, acked.stderr);
    assert.equal(acked.json.acked, 1);
    const [row] = await withDb((sql) => sql`select state, acked_by from public.system_alerts where id = ${id}`);
    assert.deepEqual({ ...row }, { state: "acked", acked_by: "operateur.garde" });
    const audit = await withDb((sql) =>
      sql`select actor from public.system_audit_logs where action = 'alert_acked' and target = ${"system_alerts:" + id}`
    );
    assert.deepEqual(audit.map((r) => r.actor), ["operateur.garde"]);

    const again = await ops(["alerts", "ack", id]);
    assert.equal(again.code, EXIT.failed);
    assert.match(again.stderr, new RegExp(`alert ${id} is acked, not open`));

    await withDb((sql) => sql`update public.system_alerts set state = 'cleared', cleared_at = now() where id = ${id}`);
    const open = await opsJson(["alerts", "list"]);
    assert.ok(!(open.json.alerts as { id: string }[]).some((a) => a.id === id), "cleared: not listed without --all");
    const all = await opsJson(["alerts", "list", "--all", "--limit", "1000"]);
    assert.equal(all.json.all, true);
    assert.ok((all.json.alerts as { id: string }[]).some((a) => a.id === id), "--all lists cleared alerts");

    const none = await ops(["alerts", "ack", "999999999999"]);
    assert.equal(none.code, EXIT.failed);
    assert.match(none.stderr, /no alert 999999999999/);
  } finally {
    await withDb((sql) => sql`delete from public.system_alerts where id = ${id}`);
  }
});

Deno.test("ops alerts ack <kind>: every open alert of that kind", async () => {
  const subjects = [`ops-test-a-${crypto.randomUUID()}`, `ops-test-b-${crypto.randomUUID()}`];
  const ids = await withDb(async (sql) =>
    (await sql`insert into public.system_alerts (kind, subject) select 'cron_job_failed', unnest(${subjects}::text[]) returning id::text as id`)
      .map((r) => r.id as string)
  );
  try {
    const run = await opsJson(["alerts", "ack", "cron_job_failed"]);
    assert.equal(run.code, EXIT.ok, run.stderr);
    const states = await withDb((sql) => sql`select state from public.system_alerts where id = any(${ids}::bigint[])`);
    assert.deepEqual(states.map((r) => r.state), ["acked", "acked"]);
  } finally {
    await withDb((sql) => sql`delete from public.system_alerts where id = any(${ids}::bigint[])`);
  }
});

Deno.test("ops status / db-status / alerts: bad arguments are usage errors (64), nothing read", async () => {
  for (const args of [["alerts", "ack", "nonsense"], ["alerts", "ack"], ["alerts", "list", "--limit", "0"], ["status", "--bogus"], ["db-status", "--bogus"]]) {
    const run = await ops(args);
    assert.equal(run.code, EXIT.usage, `${args.join(" ")}: ${run.stderr}`);
    assert.equal(run.stdout, "");
    assert.doesNotMatch(run.stderr, STACK_TRACE);
  }
});
