// `npm run ops -- billing sync` against the runner's stack: the real billing-sync function through
// the gateway, called by the command as the service, the runner's fake Stripe (seeded, rate-limited
// and counted through its control endpoints), the real database.
//
// The fake is shared with the other test files: each test here resets it first (as
// tests/functions/billing-sync/ does). Rows of the seed and of other tests are not in the fake, so a
// full run finds them missing: their mark is undone at the end.
import assert from "node:assert/strict";
import { StripeFakeControl } from "../../scripts/fakes/stripe-control.ts";
import { delay, env, type Sql, withDb } from "../_helpers.ts";
import { fixtureSettings as billingSettings } from "../functions/billing_helpers.ts";
import { hostedValues, ops, opsJson, STACK_TRACE, withEnvFile } from "./_ops.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const SECRETS = [env.secretKey, env.serviceRoleKey, billingSettings.STRIPE_SECRET_KEY, ...billingSettings.STRIPE_WEBHOOK_SECRET.split(",")];

function assertNoSecret(run: { stdout: string; stderr: string }) {
  for (const secret of SECRETS) assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), "no secret in the output");
}

function fake(): StripeFakeControl {
  const base = Deno.env.get("STRIPE_API_BASE");
  assert.ok(base, "the runner sets STRIPE_API_BASE");
  return new StripeFakeControl(base);
}

async function newTenants(sql: Sql, n: number): Promise<string[]> {
  const rows = await sql`insert into public.tenants (name)
                         select 'ops billing sync ' || ${crypto.randomUUID()} || ' ' || g from generate_series(1, ${n}) as g returning id::text`;
  return rows.map((r) => r.id as string);
}

/** Our rows of the tenants, their subscriptions and invoices removed; the missing marks full runs put on other rows undone. */
async function cleanUp(sql: Sql, tenants: string[]) {
  await sql`delete from public.invoices where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.subscriptions where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.customers where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.tenants where id = any(${tenants}::uuid[])`;
  await sql`update public.customers set stripe_missing_since = null where stripe_missing_since is not null`;
  await sql`update public.subscriptions set stripe_missing_since = null where stripe_missing_since is not null`;
  await sql`update public.invoices set stripe_missing_since = null where stripe_missing_since is not null`;
}

/** Three tenants with a subscription and a paid invoice each, in the fake Stripe and (after a first full sync) in our tables. */
async function withSyncedTenants(fn: (sql: Sql, seeded: { customers: string[]; subscriptions: string[]; invoices: string[] }, tenants: string[]) => Promise<void>) {
  const stripe = fake();
  await stripe.reset();
  await withDb(async (sql) => {
    const tenants = await newTenants(sql, 3);
    try {
      const seeded = await stripe.seedSubscriptions({ count: 3, tenant_ids: tenants });
      await fn(sql, seeded, tenants);
    } finally {
      await stripe.rateLimit(0);
      await cleanUp(sql, tenants);
      await stripe.reset();
    }
  });
}

async function runCount(): Promise<number> {
  const [{ n }] = await withDb((sql) => sql`select count(*)::int as n from private.billing_sync_runs`);
  return n;
}

Deno.test({
  name: "ops billing sync: a row altered and one deleted in our tables → changed / created in the drift table, repaired; exit 0",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withSyncedTenants(async (sql, seeded) => {
      const first = await opsJson(["billing", "sync", "--restart"]);
      const f = first.json as Json;
      assert.equal(first.code, 0, `${first.stderr}\n${first.stdout}`);
      assert.deepEqual([f.status, f.drift.subscriptions.created, f.drift.invoices.created], ["complete", 3, 3]);

      // Rows hold the Date of the first run's pages as their watermark (one-second resolution):
      // the drift is made seconds later, so that the next run's copy is unambiguously newer.
      await delay(3000);
      const [altered] = seeded.subscriptions;
      const [deleted] = seeded.invoices;
      await sql`update public.subscriptions set status = 'past_due' where stripe_subscription_id = ${altered}`;
      await sql`delete from public.invoices where stripe_invoice_id = ${deleted}`;

      const run = await ops(["billing", "sync"]);
      assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
      assert.equal(run.stderr, "");
      assertNoSecret(run);
      assert.match(run.stdout, /^billing-sync: complete$/m);
      assert.match(run.stdout, /^Run\s+[0-9a-f-]{36} · started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m);
      assert.match(run.stdout, /^Scope\s+full \(every customer, subscription and invoice\)$/m);
      assert.match(run.stdout, /^Status\s+complete$/m);
      assert.match(run.stdout, /^Invocations\s+1 by this command · 4 pages$/m);
      assert.match(run.stdout, /^API calls\s+4$/m, "events, customers, subscriptions, invoices: one page each");
      assert.match(run.stdout, /^Duration\s+\d+\.\d s$/m);
      assert.match(run.stdout, /^Table\s+Seen\s+Created\s+Changed\s+Missing\s+Unchanged\s+Stale\s+Skipped\s+Failed$/m);
      // Seen, created, changed, missing (the seed's rows, not in the fake), unchanged…
      assert.match(run.stdout, /^customers\s+3\s+0\s+0\s+\d+\s+3\s+0\s+0\s+0$/m);
      assert.match(run.stdout, /^subscriptions\s+3\s+0\s+1\s+\d+\s+2\s+0\s+0\s+0$/m);
      assert.match(run.stdout, /^invoices\s+3\s+1\s+0\s+\d+\s+2\s+0\s+0\s+0$/m);
      assert.doesNotMatch(run.stdout, /^Invocations$/m, "one invocation: no invocation table");

      // Repaired, and reported in the audit trail as the schedule's runs are.
      const [fixed] = await sql`
        select (select status from public.subscriptions where stripe_subscription_id = ${altered}) as status,
               (select status from public.invoices where stripe_invoice_id = ${deleted}) as invoice`;
      assert.deepEqual({ ...fixed }, { status: "active", invoice: "paid" });
      const runId = /^Run\s+([0-9a-f-]{36})/m.exec(run.stdout)![1];
      const [audit] = await sql`select actor, details from public.system_audit_logs
                                 where area = 'billing' and action = 'billing_sync' and target = ${"billing_sync_runs:" + runId}`;
      assert.match(audit.actor, /^service:/, "called as the service (the secret key)");
      assert.equal(audit.details.status, "complete");
      assert.equal(audit.details.drift.subscriptions.changed, 1);
    }),
});

Deno.test({
  name: "ops billing sync --json --max-pages 1 (--env-file): the run followed over several invocations to complete; the JSON shape; API calls as the fake counted",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withSyncedTenants(async () => {
      await fake().resetCalls();
      const run = await withEnvFile(hostedValues(), (file) => opsJson(["--env-file", file, "billing", "sync", "--restart", "--max-pages", "1"]));
      const j = run.json as Json;
      assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
      assert.equal(run.stderr, "");
      assertNoSecret(run);
      assert.deepEqual(Object.keys(j), [
        "ok", "target", "run_id", "status", "scope", "tenant_id", "phase", "stop_reason", "error", "drift", "api_calls", "rate_limited",
        "events_seen", "events_replayed", "pages", "run_invocations", "started_at", "finished_at", "duration_seconds", "invocations", "refusal",
      ]);
      assert.equal(j.ok, true);
      assert.equal(j.target.kind, "env-file");
      assert.deepEqual([j.status, j.scope, j.tenant_id, j.stop_reason, j.error, j.refusal], ["complete", "full", null, null, null, null]);
      assert.match(j.run_id, /^[0-9a-f-]{36}$/);
      // One page per invocation: events, customers, subscriptions, invoices.
      assert.equal(j.pages, 4);
      assert.ok(j.invocations.length >= 4, JSON.stringify(j.invocations));
      assert.equal(j.run_invocations, j.invocations.length, "every invocation of the run was this command's");
      assert.deepEqual(j.invocations.map((i: Json) => i.n), j.invocations.map((_: Json, k: number) => k + 1));
      assert.equal(j.invocations[0].outcome, "started");
      assert.ok(j.invocations.slice(1).every((i: Json) => i.outcome === "resumed"), JSON.stringify(j.invocations));
      assert.ok(j.invocations.slice(0, -1).every((i: Json) => i.status === "incomplete" && i.stop_reason === "page_budget"));
      assert.deepEqual([j.invocations.at(-1).status, j.invocations.at(-1).stop_reason], ["complete", null]);
      assert.ok(j.invocations.every((i: Json) => i.http_status === 200 && typeof i.seconds === "number" && /^[0-9a-f]+$/.test(i.request_id)));
      assert.deepEqual(Object.keys(j.drift), ["customers", "subscriptions", "invoices"]);
      assert.deepEqual(Object.keys(j.drift.customers).slice(0, 8), ["created", "changed", "missing", "seen", "unchanged", "stale", "skipped", "failed"]);
      for (const table of ["customers", "subscriptions", "invoices"]) {
        assert.deepEqual([j.drift[table].seen, j.drift[table].changed], [3, 0], table);
      }
      const calls = await fake().calls();
      assert.equal(j.api_calls, calls.total, `the run's API calls are the fake's count: ${JSON.stringify(calls.calls)}`);
      assert.equal(typeof j.duration_seconds, "number");
    }),
});

Deno.test({
  name: "ops billing sync: Stripe answering 429 beyond the invocation's wait → incomplete (rate_limited), exit 1, said why; the next call resumes the run",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withSyncedTenants(async () => {
      const stripe = fake();
      await stripe.rateLimit(1, { route: "GET /v1/subscriptions", retry_after: 600 });
      const run = await opsJson(["billing", "sync", "--restart"]);
      const j = run.json as Json;
      assert.equal(run.code, 1, `${run.stderr}\n${run.stdout}`);
      assertNoSecret(run);
      assert.deepEqual([j.ok, j.status, j.stop_reason, j.phase, j.rate_limited], [false, "incomplete", "rate_limited", "subscriptions", 1]);
      assert.equal(j.invocations.length, 1, "a rate limit is not asked again at once");
      assert.match(j.reason, /^incomplete \(rate_limited\): Stripe kept answering 429/);
      const lines = run.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, run.stderr);
      assert.match(
        lines[0],
        new RegExp(`^ops billing sync: incomplete \\(rate_limited\\): .* the run ${j.run_id} stopped at subscriptions with its checkpoint: run \`npm run ops -- billing sync\` again`),
      );
      assert.doesNotMatch(run.stderr, STACK_TRACE);

      // The limit lifted: the same run goes on from its checkpoint and completes.
      const human = await ops(["billing", "sync"]);
      assert.equal(human.code, 0, `${human.stderr}\n${human.stdout}`);
      assert.match(human.stdout, new RegExp(`^Run\\s+${j.run_id} · `, "m"));
      assert.match(human.stdout, /^Invocations\s+1 by this command \(the run: 2\) · 4 pages$/m);
      assert.match(human.stdout, /^API calls\s+5 \(1 answered 429\)$/m);

      // Shown the same way to a human: the status line and the reason on stderr.
      await stripe.rateLimit(1, { route: "GET /v1/events", retry_after: 600 });
      const again = await ops(["billing", "sync", "--restart"]);
      assert.equal(again.code, 1);
      assert.match(again.stdout, /^billing-sync: incomplete$/m);
      assert.match(again.stdout, /^Status\s+incomplete \(rate_limited, at events\)$/m);
      assert.match(again.stdout, /^1\s+200\s+started\s+0\s+1\s+incomplete \(rate_limited\)\s+\d+\.\d$/m);
      assert.match(again.stderr, /^ops billing sync: incomplete \(rate_limited\)/);
      // Left complete: no open run for the tests that follow (nor the last audit row incomplete).
      await stripe.rateLimit(0);
      assert.equal((await ops(["billing", "sync"])).code, 0);
    }),
});

Deno.test("ops billing sync --tenant: a tenant without a Stripe customer → billing-sync's 404 said, exit 1; with one → that customer only", async () => {
  await withSyncedTenants(async (sql, seeded, tenants) => {
    const [bare] = await newTenants(sql, 1);
    try {
      const refused = await opsJson(["billing", "sync", "--tenant", bare]) as { code: number; stdout: string; stderr: string; json: Json };
      assert.equal(refused.code, 1, `${refused.stderr}\n${refused.stdout}`);
      assert.deepEqual([refused.json.ok, refused.json.status, refused.json.scope, refused.json.tenant_id], [false, null, "tenant", bare]);
      assert.deepEqual(
        [refused.json.refusal.http_status, refused.json.refusal.error],
        [404, "no_billing_customer"],
      );
      assert.equal(
        refused.stderr,
        "ops billing sync: billing-sync answered HTTP 404 no_billing_customer: this tenant has no Stripe customer yet " +
          "(the tenant never went through Checkout: nothing to sync)\n",
      );

      const first = await opsJson(["billing", "sync", "--restart"]);
      assert.equal(first.json.status, "complete", first.stderr);
      await delay(2000);
      await sql`update public.subscriptions set status = 'canceled', canceled_at = now() where tenant_id = ${tenants[1]}`;
      const one = await ops(["billing", "sync", "--tenant", tenants[1]]);
      assert.equal(one.code, 0, `${one.stderr}\n${one.stdout}`);
      assert.match(one.stdout, new RegExp(`^Scope\\s+tenant ${tenants[1]}$`, "m"));
      assert.match(one.stdout, /^subscriptions\s+1\s+0\s+1\s+0\s+0\s/m);
      assert.match(one.stdout, /^Undelivered events\s+—$/m, "a tenant run does not read the events");
      void seeded;
    } finally {
      await cleanUp(sql, [bare]);
    }
  });
});

Deno.test("ops billing sync: bad arguments → the usage line, exit 64, no run; a target without the secret key → its one line, 64", async () => {
  const before = await runCount();
  const cases: [string[], RegExp][] = [
    [["billing", "sync", "--tenant", "nope"], /option '--tenant <uuid>' argument 'nope' is invalid\. not a UUID/],
    [["billing", "sync", "--max-pages", "0"], /option '--max-pages <n>' argument '0' is invalid\. must be a whole number from 1 to 1000000/],
    [["billing", "sync", "--max-invocations", "lots"], /option '--max-invocations <n>' argument 'lots' is invalid/],
    [["billing", "sync", "now"], /too many arguments/],
    [["billing", "sync", "--dry-run"], /unknown option '--dry-run'/],
  ];
  for (const [args, error] of cases) {
    const run = await ops(args);
    assert.equal(run.code, 64, `${args.join(" ")}: exit 64 expected:\n${run.stderr}`);
    assert.equal(run.stdout, "");
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 3, `three lines (error, usage, hint):\n${run.stderr}`);
    assert.match(lines[0], /^ops billing sync: /);
    assert.match(lines[0], error);
    assert.equal(lines[1], "usage: npm run ops -- [--json] [--env-file <file>] billing sync [--tenant <uuid>] [--restart] [--max-pages <n>] [--max-invocations <n>]");
    assert.equal(lines[2], "hint: npm run ops -- billing sync --help");
    assert.doesNotMatch(run.stderr, STACK_TRACE);
  }
  const { SUPABASE_SECRET_KEY: _key, ...noKey } = hostedValues();
  const settings = await withEnvFile(noKey, (file) => ops(["--env-file", file, "billing", "sync"]));
  assert.equal(settings.code, 64, settings.stderr);
  assert.equal(settings.stdout, "");
  assert.match(settings.stderr, /^ops billing sync: --env-file .*: SUPABASE_SECRET_KEY is not set \(the project's secret API key, sb_secret_…\) \(needed by billing sync\)\n$/);
  assert.equal(await runCount(), before, "nothing was called");
});
