// Benchmark of the Stripe webhook:
//   npm run bench -- stripe [--events=N] [--rounds=R] [--connections=C] [--seconds=S] [--seed=K] [--no-prelink] [--profile]
//
// On a throwaway DURABLE cluster (fsync and synchronous_commit on, printed), in one run:
//   1. per round, N/8 tenants (500 by default) and ONE signed, realistic event stream made by the
//      fake Stripe (scripts/bench/stripe-stream.ts): each tenant's customer, checkout paid with
//      4242…, some same-second subscription updates; 8 event types at API version 2026-10-28.endive,
//      about N events (4,000 by default) plus ~2 % duplicates, in a seeded delivery order. Each
//      customer is linked to its tenant beforehand, as billing-checkout does
//      (private.link_stripe_customer); --no-prelink leaves the tying to the events.
//   2. ours: the stream POSTed at C connections (16) to `stripe-webhook` through the functions
//      gateway (nginx → gateway → the function's worker → private.apply_stripe_event), its settings
//      pointing at the fake Stripe for the fetches it still makes (same-second conflicts that the
//      object's state cannot order, partial payments).
//   3. the peer: the same stream, same order, same concurrency, to @supabase/stripe-sync-engine
//      0.48.5 behind a minimal Node server (scripts/bench/stripe-peer-server.mjs) with its own
//      database on the same cluster (its migrations, schema `stripe`), configured not to call the
//      Stripe API (revalidateObjectsViaStripeApi [], autoExpandLists false, backfillRelatedEntities
//      false); the calls it makes anyway go to the fake and are counted.
//   4. `pgbench -N` at the same concurrency for S seconds (default 10), on the same cluster.
// A small warm-up stream goes to both first (unmeasured). R rounds (default 1) each take a fresh
// stream, the phases' order rotating; the report gives medians and the median of per-round ratios.
// Between phases: a checkpoint and no autovacuum running. Each system's deliveries are signed (the
// fake's stripeSignatureHeader) just before its phase. Client: a fetch pool in this process, each
// connection taking the next delivery of the stream; latency = request sent → answer read.
//
// Printed: events/s, p50/p99/max of both, pgbench tps and latencies, the ratios (targets: ours >= 2x
// the peer's events/s with a lower p99, ours >= 0.5x pgbench -N), Stripe API calls of each, CPU per
// event by process (from /proc). --profile: our SQL functions' own time (track_functions).
// Verified (any failure exits non-zero): bad signatures are refused (400) by both; every delivery
// answered 2xx; ours: one billing_events row per distinct event, every one applied (none parked,
// failed or waiting), as many `duplicate` answers as duplicates sent, customers tied to their
// tenants, and subscriptions (with items) / invoices equal to the fake's final state; the peer: as
// many customers, subscriptions, invoices, checkout sessions and invoice payments as the streams
// have (how many of its rows hold another state than Stripe's is printed, not judged: #268).
import { join } from "node:path";
import { createThrowawayCluster, type Cluster, freePort, psql, REPO_ROOT, run } from "../local-supabase/cluster.ts";
import { toDotenv } from "../local-supabase/local-config.ts";
import { spawnGateway } from "../local-supabase/gateway/spawn.ts";
import { loadOrCreateStackKeys } from "../local-supabase/keys.ts";
import { createShutdown } from "../lib/shutdown.ts";
import { STRIPE_API_VERSION, stripeSignatureHeader, type StripeFakePrices } from "../fakes/stripe.ts";
import { StripeFakeControl, type StripeJson } from "../fakes/stripe-control.ts";
import { cpuTicksWithReaped, spawnLogged, stopChild, waitForLog } from "./processes.ts";
import { CLOCK_TICKS_PER_SECOND, pgbench, type PgbenchResult, processTree } from "./system.ts";
import { intOption, median, percentile, sleep, withDeadline } from "./stats.ts";
import { generateStream, type GeneratedStream, listAll, type StreamEvent } from "./stripe-stream.ts";

const EVENTS_PER_CUSTOMER = 8;
const RUN_DEADLINE_MS = 45 * 60_000;
const TARGET_VS_PEER = 2.0;
const TARGET_VS_PGBENCH = 0.5;
const PEER_SERVER = join(REPO_ROOT, "scripts", "bench", "stripe-peer-server.mjs");
const PEER_READY = /@@peer-listening (\d+)/;
const PEER_DB = "stripe_sync";
const PGBENCH_DB = "bench_pgbench";

interface PhaseResult {
  name: string;
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  statuses: Record<number, number>;
  /** Our answers' `outcome` (applied, duplicate, …). */
  outcomes: Record<string, number>;
  /** Stripe API calls the system made during the phase, by route. */
  stripeCalls: Record<string, number>;
  /** CPU microseconds per request, by role. */
  cpuUs: Record<string, number>;
  failures: string[];
}

const hex = (bytes: number) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

/** Signatures older than this are made again before sending (Stripe's tolerance is 300 s). */
const RESIGN_AFTER_MS = 240_000;

/**
 * Posts the stream with `connections` concurrent clients. Every delivery is signed just before the
 * phase starts (so that signing is not part of either system's load), and again if the phase has
 * been running so long that the signature would be near Stripe's 300 s tolerance.
 */
async function postStream(url: string, events: StreamEvent[], secret: string, connections: number) {
  const latencies: number[] = new Array(events.length);
  const statuses: Record<number, number> = {};
  const outcomes: Record<string, number> = {};
  const failures: string[] = [];
  const signedAt = Date.now();
  const signatures = await Promise.all(events.map((e) => stripeSignatureHeader(e.body, [secret])));
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < events.length) {
      const i = next++;
      const e = events[i];
      const signature = Date.now() - signedAt < RESIGN_AFTER_MS ? signatures[i] : await stripeSignatureHeader(e.body, [secret]);
      const t0 = performance.now();
      let status = 0;
      let text = "";
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": signature,
          },
          body: e.body,
        });
        status = res.status;
        text = await res.text();
      } catch (error) {
        text = error instanceof Error ? error.message : String(error);
      }
      latencies[i] = performance.now() - t0;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status < 200 || status > 299) {
        if (failures.length < 10) failures.push(`${e.id} (${e.type}): ${status} ${text.slice(0, 300)}`);
        continue;
      }
      try {
        const outcome = JSON.parse(text).outcome;
        if (typeof outcome === "string") outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      } catch { /* the peer answers {received: true} */ }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: events.length,
    seconds,
    rps: events.length / seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
    statuses,
    outcomes,
    failures,
  };
}

/** `n` POSTs with a wrong signature: both systems must answer 400 (and it warms their HTTP path up). */
async function badSignatures(url: string, body: string, n: number, connections: number): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  let next = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next++ < n) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": await stripeSignatureHeader(body, ["whsec_notTheEndpointsSecret"]) },
        body,
      });
      await res.body?.cancel();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    }
  }));
  return statuses;
}

async function postmasterPid(cluster: Cluster): Promise<number> {
  return Number((await Deno.readTextFile(join(cluster.dataDir, "postmaster.pid"))).split("\n")[0]);
}

/**
 * Runs `work` while measuring the CPU of each role: the processes `pids()` names at the start and at
 * the end (a process tree), and what they reaped in between (PostgreSQL backends of short connections).
 */
async function withCpu<T extends { requests: number }>(
  roles: Record<string, () => Promise<number[]>>,
  work: () => Promise<T>,
): Promise<T & { cpuUs: Record<string, number> }> {
  const snapshot = async () => {
    const out: Record<string, Map<number, number>> = {};
    for (const [role, pids] of Object.entries(roles)) {
      out[role] = new Map(await Promise.all((await pids()).map(async (p) => [p, await cpuTicksWithReaped(p)] as [number, number])));
    }
    return out;
  };
  const before = await snapshot();
  const result = await work();
  const after = await snapshot();
  const cpuUs: Record<string, number> = {};
  for (const role of Object.keys(roles)) {
    let ticks = 0;
    for (const [pid, t] of after[role]) ticks += t - (before[role].get(pid) ?? 0);
    cpuUs[role] = ticks / CLOCK_TICKS_PER_SECOND * 1e6 / result.requests;
  }
  return { ...result, cpuUs };
}

/** The pids of the trees rooted at `roots`, without those of the trees rooted at `except`. */
async function treesOf(roots: number[], except: number[] = []): Promise<number[]> {
  const skip = new Set((await Promise.all(except.map(processTree))).flat());
  return (await Promise.all(roots.map(processTree))).flat().filter((p) => !skip.has(p));
}

/** What the streams of the run add up to (the warm-up's and every round's). */
interface Totals {
  customers: number;
  unique: number;
  duplicates: number;
  /** Our answers `outcome: duplicate`, over every phase of ours. */
  duplicateAnswers: number;
  /** Stripe customer → tenant. */
  tenantOf: Map<string, string>;
}

interface Expected {
  subscriptions: Map<string, { status: string; cancel_at_period_end: boolean; items: Record<string, number> }>;
  invoices: Map<string, { status: string; amount_paid: number; total: number }>;
}

/** Stripe's final state, as the fake has it once the streams were made. */
async function expectedState(apiBase: string, secretKey: string): Promise<Expected> {
  const subs = await listAll(apiBase, secretKey, "/v1/subscriptions", { status: "all" });
  const invoices = await listAll(apiBase, secretKey, "/v1/invoices");
  return {
    subscriptions: new Map(subs.map((s: StripeJson) => [s.id, {
      status: s.status,
      cancel_at_period_end: s.cancel_at_period_end,
      items: Object.fromEntries(s.items.data.map((i: StripeJson) => [i.id, i.quantity])),
    }])),
    invoices: new Map(invoices.map((i: StripeJson) => [i.id, { status: i.status, amount_paid: i.amount_paid, total: i.total }])),
  };
}

async function jsonQuery(cluster: Cluster, sqlText: string, db?: string): Promise<StripeJson> {
  const c = db ? { ...cluster, url: cluster.url.replace(/\/postgres$/, `/${db}`) } : cluster;
  return JSON.parse((await psql(c, sqlText)).trim());
}

/** A value as canonical JSON (object keys sorted), so that rows compare whatever their keys' order. */
function canonical(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x && typeof x === "object"
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b)).map(([k, y]) => [k, sort(y)]))
      : x;
  return JSON.stringify(sort(v) ?? null);
}

/** Our rows against the streams and Stripe's final state; returns the problems found. */
async function verifyOurs(cluster: Cluster, totals: Totals, expected: Expected): Promise<string[]> {
  const problems: string[] = [];
  const got = await jsonQuery(cluster, `select json_build_object(
      'customers', (select coalesce(json_object_agg(stripe_customer_id, tenant_id), '{}') from public.customers),
      'subscriptions', (select coalesce(json_object_agg(s.stripe_subscription_id, json_build_object(
          'status', s.status, 'cancel_at_period_end', s.cancel_at_period_end,
          'items', (select coalesce(json_object_agg(si.stripe_subscription_item_id, si.quantity), '{}')
                      from public.subscription_items as si where si.subscription_id = s.id))), '{}')
        from public.subscriptions as s),
      'invoices', (select coalesce(json_object_agg(stripe_invoice_id, json_build_object(
          'status', status, 'amount_paid', amount_paid_cents, 'total', total_cents)), '{}') from public.invoices),
      'events', (select count(*) from public.billing_events),
      'outcomes', (select coalesce(json_object_agg(coalesce(outcome, 'null'), n), '{}')
                     from (select outcome, count(*) as n from public.billing_events group by 1) as x))`);
  const count = (o: StripeJson) => Object.keys(o).length;
  if (count(got.customers) !== totals.customers) problems.push(`customers: ${count(got.customers)} rows, the streams have ${totals.customers}`);
  if (count(got.subscriptions) !== expected.subscriptions.size) {
    problems.push(`subscriptions: ${count(got.subscriptions)} rows, the streams have ${expected.subscriptions.size}`);
  }
  if (count(got.invoices) !== expected.invoices.size) problems.push(`invoices: ${count(got.invoices)} rows, the streams have ${expected.invoices.size}`);
  if (got.events !== totals.unique) problems.push(`billing_events: ${got.events} rows for ${totals.unique} distinct events`);
  const notApplied = Object.entries(got.outcomes).filter(([k]) => k !== "applied");
  if (notApplied.length) problems.push(`billing_events not applied: ${JSON.stringify(Object.fromEntries(notApplied))}`);
  if (totals.duplicateAnswers !== totals.duplicates) {
    problems.push(`${totals.duplicateAnswers} answers "duplicate" for ${totals.duplicates} duplicate deliveries`);
  }
  const wrongTenant = [...totals.tenantOf].filter(([cus, tenant]) => got.customers[cus] !== tenant).length;
  if (wrongTenant) problems.push(`${wrongTenant} customers not tied to their tenant`);
  for (const [label, want, rows] of [["subscriptions", expected.subscriptions, got.subscriptions], ["invoices", expected.invoices, got.invoices]] as const) {
    const wrong = [...want].filter(([id, w]) => canonical(rows[id]) !== canonical(w));
    if (wrong.length) {
      problems.push(`${wrong.length} ${label} differ from Stripe's final state (e.g. ${wrong[0][0]}: ours ${canonical(rows[wrong[0][0]])}, ` +
        `Stripe ${canonical(wrong[0][1])})`);
    }
  }
  return problems;
}

/** The peer's rows: counts must match the streams; how many hold another state than Stripe's is only reported. */
async function verifyPeer(cluster: Cluster, totals: Totals, expected: Expected): Promise<{ problems: string[]; notes: string[] }> {
  const got = await jsonQuery(cluster, `select json_build_object(
      'customers', (select count(*) from stripe.customers),
      'subscriptions', (select coalesce(json_object_agg(s.id, json_build_object('status', s.status::text,
          'cancel_at_period_end', s.cancel_at_period_end,
          'items', (select coalesce(json_object_agg(si.id, si.quantity), '{}') from stripe.subscription_items as si
                     where si.subscription = s.id and not coalesce(si.deleted, false)))), '{}')
        from stripe.subscriptions as s),
      'invoices', (select coalesce(json_object_agg(id, json_build_object('status', status::text, 'amount_paid', amount_paid,
          'total', total)), '{}') from stripe.invoices),
      'checkout_sessions', (select count(*) from stripe.checkout_sessions),
      'invoice_payments', (select count(*) from stripe.invoice_payments))`, PEER_DB);
  const problems: string[] = [];
  const count = (o: StripeJson) => Object.keys(o).length;
  if (got.customers !== totals.customers) problems.push(`customers: ${got.customers} rows, the streams have ${totals.customers}`);
  if (count(got.subscriptions) !== expected.subscriptions.size) {
    problems.push(`subscriptions: ${count(got.subscriptions)} rows, the streams have ${expected.subscriptions.size}`);
  }
  if (count(got.invoices) !== expected.invoices.size) problems.push(`invoices: ${count(got.invoices)} rows, the streams have ${expected.invoices.size}`);
  if (got.checkout_sessions !== totals.customers) problems.push(`checkout_sessions: ${got.checkout_sessions} rows, the streams have ${totals.customers}`);
  if (got.invoice_payments !== totals.customers) problems.push(`invoice_payments: ${got.invoice_payments} rows, the streams have ${totals.customers}`);
  const stale = (want: Map<string, unknown>, rows: StripeJson) => [...want].filter(([id, w]) => canonical(rows[id]) !== canonical(w));
  const staleSubs = stale(expected.subscriptions, got.subscriptions);
  const staleInvoices = stale(expected.invoices, got.invoices);
  const example = (label: string, rows: [string, unknown][], got: StripeJson) =>
    rows.length ? `\n  e.g. ${label} ${rows[0][0]}: peer ${canonical(got[rows[0][0]])}, Stripe ${canonical(rows[0][1])}` : "";
  const notes = [
    `peer rows left in another state than Stripe's final one: ${staleSubs.length}/${expected.subscriptions.size} subscriptions, ` +
    `${staleInvoices.length}/${expected.invoices.size} invoices (its last_synced_at guard drops an event of the same second as the last one applied)` +
    example("subscription", staleSubs, got.subscriptions) + example("invoice", staleInvoices, got.invoices),
  ];
  return { problems, notes };
}

/** A text as a SQL string literal (standard_conforming_strings is on in our clusters). */
const sqlLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;
const fmt = (x: number, d = 1) => Number.isFinite(x) ? x.toFixed(d) : "-";
const medianOf = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));

type PhaseName = "ours" | "peer" | "pgbench";
const PHASES: PhaseName[] = ["ours", "peer", "pgbench"];
/** Customers of the warm-up stream (posted to both systems before the measured rounds, not measured). */
const WARMUP_CUSTOMERS = 16;

export async function main(args: string[]): Promise<void> {
  const targetEvents = intOption(args, "events", 4000, 8);
  const connections = intOption(args, "connections", 16, 1);
  const pgbenchSeconds = intOption(args, "seconds", 10, 2);
  const seed = intOption(args, "seed", 1, 0);
  const rounds = intOption(args, "rounds", 1, 1);
  const profile = args.includes("--profile");
  const prelink = !args.includes("--no-prelink");
  const customers = Math.max(1, Math.round(targetEvents / EVENTS_PER_CUSTOMER));
  const shutdown = createShutdown();
  shutdown.trapSignals({ onSignal: () => console.error("interrupted: removing the benchmark cluster and processes") });
  let failed: string[] = [];

  try {
    const work = async () => {
      const { cluster } = await createThrowawayCluster({
        prefix: "c-secur360-bench-stripe-",
        durable: true,
        defer: (remove) =>
          shutdown.defer(async () => {
            await remove();
            console.log("benchmark cluster removed");
          }),
      });
      const home = cluster.home;
      const show = async (name: string) => (await psql(cluster, `show ${name}`)).trim();
      console.log(`cluster in ${home}, port ${cluster.port}`);
      console.log(`PostgreSQL ${await show("server_version")}: fsync=${await show("fsync")}, ` +
        `synchronous_commit=${await show("synchronous_commit")}, full_page_writes=${await show("full_page_writes")}, ` +
        `wal_level=${await show("wal_level")}, shared_buffers=${await show("shared_buffers")}, max_connections=${await show("max_connections")}`);
      if (await show("fsync") !== "on" || await show("synchronous_commit") !== "on") throw new Error("the cluster is not durable");
      if (profile) {
        await psql(cluster, "alter system set track_functions = 'all'", { asAdmin: true });
        await psql(cluster, "select pg_reload_conf()", { asAdmin: true });
        console.log("--profile: track_functions = all (costs some speed; figures of a profiled run are not comparable)");
      }
      await psql(cluster, `create database ${PEER_DB}`);
      await psql(cluster, `create database ${PGBENCH_DB}`);
      const peerDbUrl = cluster.url.replace(/\/postgres$/, `/${PEER_DB}`);
      const pgbenchUrl = cluster.url.replace(/\/postgres$/, `/${PGBENCH_DB}`);
      console.log(`databases: postgres (ours: migrations applied), ${PEER_DB} (the peer), ${PGBENCH_DB} (pgbench), one cluster`);

      // Settings made for this run (fake values only), shared by the fake, our function and the peer.
      const secretKey = `sk_test_bench${hex(12)}`;
      const webhookSecret = `whsec_bench${hex(16)}`;
      const prices: StripeFakePrices = {
        monthly: "price_bench_plan_monthly",
        annual: "price_bench_plan_annual",
        addonSiteMonthly: "price_bench_addon_site_monthly",
        addonSiteAnnual: "price_bench_addon_site_annual",
      };
      const functionsEnv = join(home, "functions.env");
      await Deno.writeTextFile(functionsEnv, toDotenv({
        STRIPE_SECRET_KEY: secretKey,
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        STRIPE_PRICE_MONTHLY: prices.monthly,
        STRIPE_PRICE_ANNUAL: prices.annual,
        STRIPE_PRICE_ADDON_SITE_MONTHLY: prices.addonSiteMonthly,
        STRIPE_PRICE_ADDON_SITE_ANNUAL: prices.addonSiteAnnual,
        STRIPE_ACCOUNT_COUNTRY: "CA",
      }));

      // The fake Stripe, in its own process (no webhook endpoint: the streams are posted by us).
      const fakeLog = join(home, "stripe-fake.log");
      const fakeChild = spawnLogged([
        Deno.execPath(), "run", "-A", "--quiet", "--config", join(REPO_ROOT, "deno.json"),
        join(REPO_ROOT, "scripts", "fakes", "stripe.ts"), "--env-file", functionsEnv, "--port", String(freePort()),
      ], fakeLog, Deno.env.toObject());
      shutdown.defer(() => stopChild(fakeChild));
      const apiBase = (await waitForLog(fakeLog, /stripe fake listening on (\S+)/, "the fake Stripe", fakeChild))[1];
      const fake = new StripeFakeControl(apiBase);

      // Ours: the project's functions behind the gateway, the fake's URL in a second env file, and
      // the stack's keys (the gateway checks verify_jwt for the project's other functions).
      const fakesEnv = join(home, "fakes.env");
      await Deno.writeTextFile(fakesEnv, toDotenv({ STRIPE_API_BASE: apiBase }));
      const gatewayPort = freePort();
      const gatewayLog = join(home, "gateway.log");
      const keys = await loadOrCreateStackKeys(home);
      const gateway = await spawnGateway({
        port: gatewayPort,
        env: {
          SUPABASE_URL: `http://127.0.0.1:${gatewayPort}`,
          SUPABASE_DB_URL: cluster.url,
          SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
          SUPABASE_SECRET_KEY: keys.secretKey,
          SUPABASE_JWKS: JSON.stringify(keys.jwks),
          SUPABASE_ANON_KEY: keys.anonKey,
          SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
          SUPABASE_JWT_SECRET: keys.legacyJwtSecret,
        },
        functions: [{ dir: "supabase/functions", config: "supabase/config.toml" }],
        envFiles: [functionsEnv, fakesEnv],
        output: { logFile: gatewayLog },
      });
      shutdown.defer(() => gateway.stop());
      await gateway.ready;
      const oursUrl = `http://127.0.0.1:${gatewayPort}/functions/v1/stripe-webhook`;

      // The peer: its migrations, then its server.
      const peerEnv = {
        ...Deno.env.toObject(),
        PEER_DATABASE_URL: peerDbUrl,
        PEER_STRIPE_SECRET_KEY: secretKey,
        PEER_STRIPE_WEBHOOK_SECRET: webhookSecret,
        PEER_STRIPE_API_BASE: apiBase,
        PEER_STRIPE_API_VERSION: STRIPE_API_VERSION,
        PGSSLMODE: "disable",
      };
      const migrated = await new Deno.Command("node", { args: [PEER_SERVER, "migrate"], env: peerEnv, cwd: REPO_ROOT }).output();
      const applied = (await psql({ ...cluster, url: peerDbUrl }, "select count(*) from stripe.migrations").catch(() => "0")).trim();
      if (!migrated.success || Number(applied) < 40) {
        throw new Error(`stripe-sync-engine migrations: ${new TextDecoder().decode(migrated.stderr).slice(-2000)} (${applied} applied)`);
      }
      const peerLog = join(home, "peer.log");
      const peerChild = spawnLogged(["node", PEER_SERVER, "serve", String(freePort())], peerLog, peerEnv);
      shutdown.defer(() => stopChild(peerChild));
      const peerUrl = `http://127.0.0.1:${(await waitForLog(peerLog, PEER_READY, "the peer's server", peerChild))[1]}/`;
      console.log(`ours: stripe-webhook through the gateway, port ${gatewayPort} (log ${gatewayLog})`);
      const nodeVersion = new TextDecoder().decode((await new Deno.Command("node", { args: ["--version"] }).output()).stdout).trim();
      console.log(`peer: @supabase/stripe-sync-engine 0.48.5 on Node ${nodeVersion}, ${applied} migrations applied to ${PEER_DB}, ` +
        `${peerUrl} (log ${peerLog})`);

      // One stream per round (and one for the warm-up): its tenants first, then the stream the fake
      // makes for them; with --no-prelink the events alone tie the customers to the tenants.
      const totals: Totals = { customers: 0, unique: 0, duplicates: 0, duplicateAnswers: 0, tenantOf: new Map() };
      const makeStream = async (label: string, n: number, streamSeed: number) => {
        const tenantIds = (await psql(cluster, `insert into public.tenants (name)
            select 'Client bench ' || g from generate_series(1, ${n}) as g returning id`)).trim().split("\n").filter(Boolean);
        if (tenantIds.length !== n) throw new Error(`expected ${n} tenants, made ${tenantIds.length}`);
        const t = performance.now();
        const stream = await generateStream({ apiBase, secretKey, prices, tenantIds, seed: streamSeed, window: connections });
        totals.customers += stream.customers;
        totals.unique += stream.unique;
        totals.duplicates += stream.duplicates;
        for (const [c, tenant] of stream.tenantOf) totals.tenantOf.set(c, tenant);
        if (prelink) {
          // As billing-checkout does right after creating a tenant's Stripe customer, before its
          // checkout (so before any of its events): private.link_stripe_customer, once per tenant.
          const links = [...stream.tenantOf].map(([customer, tenant]) => ({ tenant_id: tenant, stripe_customer_id: customer, actor: "bench" }));
          const linked = (await psql(cluster, `select count(*) from jsonb_array_elements(${sqlLiteral(JSON.stringify(links))}::jsonb) as l,
              lateral private.link_stripe_customer(l) as r where (r ->> 'linked')::boolean`)).trim();
          if (Number(linked) !== stream.customers) throw new Error(`linked ${linked} customers to their tenants, expected ${stream.customers}`);
        }
        console.log(`${label}: ${n} tenants, stream made by the fake Stripe in ${fmt((performance.now() - t) / 1000)} s: ` +
          `${stream.events.length} deliveries (${stream.unique} events + ${stream.duplicates} duplicates), ` +
          `${stream.sameSecondUpdates} same-second subscription updates, seed ${streamSeed}` +
          (prelink ? "; customers linked beforehand as billing-checkout does" : "; customers tied by the events (--no-prelink)"));
        return stream;
      };

      const gatewayPid = gateway.pid;
      const pg = await postmasterPid(cluster);
      // CPU by role: the systems' own processes, PostgreSQL, the fake Stripe (answering their API
      // calls) and this process (the client: posting; signing is done before each phase).
      // PostgreSQL's share is split: the system's own connections (its pool's backends), and the
      // background processes (WAL writer, checkpointer, autovacuum…, whoever caused their work).
      const backends = async (db?: string) =>
        (await psql(cluster, `select pid from pg_stat_activity where backend_type = 'client backend'
            and pid <> pg_backend_pid()${db ? ` and datname = ${sqlLiteral(db)}` : ""}`, { asAdmin: true }))
          .trim().split("\n").filter(Boolean).map(Number);
      const common = {
        "pg background": async () => treesOf([pg], await backends()),
        fake: () => treesOf([fakeChild.pid]),
        client: () => Promise.resolve([Deno.pid]),
      };
      // Between phases: a checkpoint and no autovacuum running, so that neither's background work
      // lands in the next phase's time and CPU.
      const settle = async () => {
        await psql(cluster, "checkpoint", { asAdmin: true });
        for (let waited = 0; waited < 30_000; waited += 250) {
          const busy = (await psql(cluster, "select count(*) from pg_stat_activity where backend_type = 'autovacuum worker'", { asAdmin: true })).trim();
          if (busy === "0") return;
          await sleep(250);
        }
      };
      let workerPid = 0;
      const post = async (name: "ours" | "peer", stream: GeneratedStream): Promise<PhaseResult> => {
        await fake.resetCalls();
        if (profile && name === "ours") await psql(cluster, "select pg_stat_reset()", { asAdmin: true });
        const roles = name === "ours"
          ? { gateway: () => treesOf([gatewayPid], [workerPid]), function: () => treesOf([workerPid]), postgres: () => backends("postgres"), ...common }
          : { server: () => treesOf([peerChild.pid]), postgres: () => backends(PEER_DB), ...common };
        const r = await withCpu(roles, () => postStream(name === "ours" ? oursUrl : peerUrl, stream.events, webhookSecret, connections));
        const calls = await fake.calls();
        if (name === "ours") totals.duplicateAnswers += r.outcomes.duplicate ?? 0;
        if (profile && name === "ours") {
          // Our SQL functions by their own time (PL/pgSQL and SQL functions that are not inlined).
          await sleep(600); // statistics reach the collector within 500 ms
          const rows = await psql(cluster, `select rpad(schemaname || '.' || funcname, 44) || lpad(calls::text, 8) ||
              lpad(round(self_time::numeric * 1000 / ${stream.events.length})::text, 10) || lpad(round(total_time::numeric * 1000 / ${stream.events.length})::text, 10)
            from pg_stat_user_functions order by self_time desc limit 20`);
          console.log(`--profile: our functions (calls; self and total µs per delivery)\n${rows.trimEnd().split("\n").map((l) => `  ${l}`).join("\n")}`);
        }
        return { name, ...r, stripeCalls: { ...calls.calls, total: calls.total } };
      };
      const problems: string[] = [];
      const notTwoHundred = (r: PhaseResult, label: string) => {
        const bad = r.requests - Object.entries(r.statuses).filter(([s]) => Number(s) >= 200 && Number(s) < 300).reduce((n, [, c]) => n + c, 0);
        if (bad) problems.push(`${r.name} (${label}): ${bad} answers not 2xx: ${r.failures.join(" | ")}`);
      };

      // Warm-up: both refuse a wrong signature, then take a small stream (JIT, pools), unmeasured.
      const warm = await makeStream("warm-up", Math.min(WARMUP_CUSTOMERS, customers), seed + 1_000_000);
      for (const [name, url] of [["ours", oursUrl], ["peer", peerUrl]]) {
        const statuses = await badSignatures(url, warm.events[0].body, 3 * connections, connections);
        if (Object.keys(statuses).join() !== "400") throw new Error(`${name}: a wrong signature was answered ${JSON.stringify(statuses)}, not 400`);
      }
      const workerMatch = [...(await Deno.readTextFile(gatewayLog)).matchAll(/\[stripe-webhook\] worker up \(pid (\d+)/g)].at(-1);
      if (!workerMatch) throw new Error(`no stripe-webhook worker in ${gatewayLog}`);
      workerPid = Number(workerMatch[1]);
      for (const name of ["ours", "peer"] as const) notTwoHundred(await post(name, warm), "warm-up");
      await run(["pgbench", "-i", "-q", "-s", "10", pgbenchUrl]);
      await pgbench(pgbenchUrl, { clients: connections, seconds: 2, logDir: home, log: false });
      console.log("warm-up: both answered 400 to wrong signatures and took the warm-up stream; pgbench tables made (scale 10)");

      const results: Record<PhaseName, (PhaseResult | (PgbenchResult & { cpuUs: Record<string, number> }))[]> = { ours: [], peer: [], pgbench: [] };
      const ours = results.ours as PhaseResult[];
      const peer = results.peer as PhaseResult[];
      const pgb = results.pgbench as (PgbenchResult & { cpuUs: Record<string, number> })[];
      for (let round = 1; round <= rounds; round++) {
        const stream = await makeStream(`round ${round}/${rounds}`, customers, seed + round - 1);
        // The phases' order rotates from round to round (ours first, then peer first, then pgbench first…).
        const order = PHASES.map((_, k) => PHASES[(k + round - 1) % PHASES.length]);
        for (const phase of order) {
          await settle();
          if (phase === "pgbench") {
            // pgbench's backends end with it: the postmaster's tree, with what it reaped, counts them.
            const r = await withCpu({ postgres: () => treesOf([pg]) }, () => pgbench(pgbenchUrl, { clients: connections, seconds: pgbenchSeconds, logDir: home, log: true }));
            pgb.push(r);
            console.log(`  pgbench -N ${fmt(r.rps).padStart(7)} tps, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms (${pgbenchSeconds} s, ${connections} clients)`);
            continue;
          }
          const r = await post(phase, stream);
          notTwoHundred(r, `round ${round}`);
          results[phase].push(r);
          console.log(`  ${phase.padEnd(4)} ${fmt(r.rps).padStart(7)} events/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, max ${fmt(r.max)} ms, ` +
            `${r.requests} requests in ${fmt(r.seconds, 2)} s, answers ${JSON.stringify(r.statuses)}` +
            (Object.keys(r.outcomes).length ? ` ${JSON.stringify(r.outcomes)}` : "") + `, Stripe API calls ${r.stripeCalls.total}`);
        }
      }

      // ---- correctness ----------------------------------------------------------------------------
      const expected = await expectedState(apiBase, secretKey);
      problems.push(...(await verifyOurs(cluster, totals, expected)).map((p) => `ours: ${p}`));
      const peerCheck = await verifyPeer(cluster, totals, expected);
      problems.push(...peerCheck.problems.map((p) => `peer: ${p}`));

      // ---- report (medians over the rounds) -------------------------------------------------------
      const cpu = (rs: { cpuUs: Record<string, number> }[]) => {
        const roles = Object.keys(rs[0].cpuUs);
        const parts = roles.map((k) => `${k} ${fmt(medianOf(rs, (r) => r.cpuUs[k]), 0)}`);
        return `${parts.join(", ")} (total ${fmt(medianOf(rs, (r) => Object.values(r.cpuUs).reduce((a, b) => a + b, 0)), 0)})`;
      };
      const callsText = (r: PhaseResult) =>
        Object.entries(r.stripeCalls).filter(([k]) => k !== "total").map(([k, v]) => `${k} ${v}`).join(", ") || "none";
      const perRound = (rs: { rps: number }[]) => rounds > 1 ? `  [${rs.map((r) => fmt(r.rps)).join(", ")}]` : "";
      const row = (label: string, rs: { rps: number; p50: number; p99: number; max?: number }[], d: number, tail = "") =>
        console.log(`${label.padEnd(40)} ${fmt(medianOf(rs, (r) => r.rps)).padStart(9)} ${fmt(medianOf(rs, (r) => r.p50), d).padStart(8)} ` +
          `${fmt(medianOf(rs, (r) => r.p99), d).padStart(8)} ${fmt(medianOf(rs, (r) => r.max ?? NaN), d).padStart(8)}  ${tail}${perRound(rs)}`);
      console.log(`\n=== Stripe webhook benchmark: ${ours[0].requests} deliveries per round (${customers} customers), ${rounds} round(s), ` +
        `${connections} connections, durable cluster${rounds > 1 ? "; medians over the rounds" : ""} ===`);
      console.log(`${"system".padEnd(40)} ${"events/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"max ms".padStart(8)}  ` +
        `Stripe API calls${rounds > 1 ? " (round 1)  [events/s per round]" : ""}`);
      row("ours: stripe-webhook via the gateway", ours, 1, `${ours[0].stripeCalls.total} (${callsText(ours[0])})`);
      row("peer: stripe-sync-engine 0.48.5 (Node)", peer, 1, `${peer[0].stripeCalls.total} (${callsText(peer[0])})`);
      row("pgbench -N (transactions/s)", pgb, 2);
      console.log(`CPU µs per event  ours: ${cpu(ours)}`);
      console.log(`                  peer: ${cpu(peer)}`);
      console.log(`   per transaction pgbench: postgres ${fmt(medianOf(pgb, (r) => r.cpuUs.postgres), 0)} (all of it, background included)`);
      const ratio = (a: { rps: number }[], b: { rps: number }[]) => median(a.map((r, k) => r.rps / b[k].rps));
      const ratios = (a: { rps: number }[], b: { rps: number }[]) => rounds > 1 ? `  [per round: ${a.map((r, k) => fmt(r.rps / b[k].rps, 2)).join(", ")}]` : "";
      const verdict = (ok: boolean) => ok ? "OK" : "MISSED";
      const vsPeer = ratio(ours, peer);
      const vsPgbench = ratio(ours, pgb);
      const p99Ours = medianOf(ours, (r) => r.p99);
      const p99Peer = medianOf(peer, (r) => r.p99);
      console.log(`ours / peer events/s      ${fmt(vsPeer, 2).padStart(6)}  (target >= ${TARGET_VS_PEER}) ${verdict(vsPeer >= TARGET_VS_PEER)}${ratios(ours, peer)}`);
      console.log(`p99 ours / peer           ${fmt(p99Ours)} / ${fmt(p99Peer)} ms  (target: lower) ${verdict(p99Ours < p99Peer)}`);
      console.log(`ours / pgbench -N         ${fmt(vsPgbench, 2).padStart(6)}  (target >= ${TARGET_VS_PGBENCH}) ${verdict(vsPgbench >= TARGET_VS_PGBENCH)}${ratios(ours, pgb)}`);
      for (const n of peerCheck.notes) console.log(n);
      if (problems.length) {
        console.log(`\nINCORRECT RUN (${problems.length} problem(s)):`);
        for (const p of problems) console.log(`  - ${p}`);
      } else {
        console.log(`correctness (${totals.customers} customers, ${totals.unique} events, ${totals.duplicates} duplicates, warm-up included): ` +
          "every answer 2xx; ours: one ledger row per event, all applied, each duplicate acknowledged as one, rows equal to " +
          "Stripe's final state; peer: row counts match the streams");
      }
      failed = problems;
    };
    await withDeadline(work(), RUN_DEADLINE_MS);
  } finally {
    shutdown.releaseSignals();
    await shutdown.run();
  }
  if (failed.length) throw new Error(`the run was incorrect (${failed.length} problem(s), listed above)`);
}
