// billing-sync's Stripe API calls and time (`npm run bench -- billing-sync [--objects=N] [--rate=R]`).
//
// On a throwaway DURABLE cluster (fsync and synchronous_commit on) with every migration, the
// functions gateway serving the project's functions (billing-sync as deployed, hosted limits) and
// the fake Stripe (scripts/fakes/stripe.ts) holding N customers, each with a subscription (plan +
// add-on) and a paid invoice (default N = 1 050), it calls billing-sync as the service does and
// prints, for each scenario, the API calls the fake counted per list against ceil(n/100) per list
// (one call for an empty list), the ratio (target <= 1.05), the wall time and the function
// worker's CPU time (hosted functions get 2 s of CPU per request):
//   first sync      every row created;
//   second sync     nothing to do (every object unchanged);
//   with a 429      the first subscriptions page answers 429 once (Retry-After: 1);
//   interrupted     the same sync in invocations of 10 pages (max_pages), each resuming the last.
// R (default 10, BILLING_SYNC_RATE_LIMIT) is the client-side limit in requests per second.
// Everything is removed at the end, on error and on Ctrl-C; the run is bounded by a deadline.
import { join } from "node:path";
import { createThrowawayCluster, freePort, psql, REPO_ROOT } from "../local-supabase/cluster.ts";
import { loadOrCreateStackKeys } from "../local-supabase/keys.ts";
import { spawnGateway } from "../local-supabase/gateway/spawn.ts";
import { toDotenv } from "../local-supabase/local-config.ts";
import { startStripeFake } from "../fakes/stripe.ts";
import { StripeFakeControl } from "../fakes/stripe-control.ts";
import { createShutdown } from "../lib/shutdown.ts";
import { intOption, withDeadline } from "./stats.ts";

const RUN_DEADLINE_MS = 20 * 60_000;
const TARGET_RATIO = 1.05;
const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ

/** utime + stime of a process, in ms (0 once it is gone). */
async function cpuMs(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

const pages = (n: number) => Math.max(1, Math.ceil(n / 100));

interface Scenario {
  name: string;
  calls: Record<string, number>;
  total: number;
  expected: number;
  invocations: number;
  wallMs: number;
  cpuMs: number;
  report: Record<string, unknown>;
}

export async function main(args: string[]): Promise<void> {
  const n = intOption(args, "objects", 1050, 1);
  const rate = intOption(args, "rate", 10, 1);
  if (rate > 50) throw new Error("--rate must be at most 50 (BILLING_SYNC_RATE_LIMIT)");
  const shutdown = createShutdown();
  shutdown.trapSignals({ onSignal: () => console.error("interrupted: removing the benchmark cluster and processes") });

  try {
    const work = async () => {
      const { cluster } = await createThrowawayCluster({
        prefix: "c-secur360-bench-billing-sync-",
        durable: true,
        defer: (remove) =>
          shutdown.defer(async () => {
            await remove();
            console.log("benchmark cluster removed");
          }),
      });
      const home = cluster.home;
      console.log(`cluster in ${home}, port ${cluster.port}; PostgreSQL ${(await psql(cluster, "show server_version")).trim()}, ` +
        `fsync=${(await psql(cluster, "show fsync")).trim()}, synchronous_commit=${(await psql(cluster, "show synchronous_commit")).trim()}`);

      // Obviously fake Stripe settings, built at run time; the fake accepts only this key.
      const settings: Record<string, string> = {
        APP_URL: "http://127.0.0.1:3000",
        STRIPE_SECRET_KEY: ["sk", "test", "benchBillingSync", crypto.randomUUID().replaceAll("-", "").slice(0, 12)].join("_"),
        STRIPE_WEBHOOK_SECRET: "whsec_benchBillingSync0000",
        STRIPE_PRICE_MONTHLY: "price_bench_plan_monthly",
        STRIPE_PRICE_ANNUAL: "price_bench_plan_annual",
        STRIPE_PRICE_ADDON_SITE_MONTHLY: "price_bench_addon_monthly",
        STRIPE_PRICE_ADDON_SITE_ANNUAL: "price_bench_addon_annual",
        STRIPE_ACCOUNT_COUNTRY: "CA",
        BILLING_SYNC_RATE_LIMIT: String(rate),
      };
      const stripe = startStripeFake({
        secretKey: settings.STRIPE_SECRET_KEY,
        prices: {
          monthly: settings.STRIPE_PRICE_MONTHLY,
          annual: settings.STRIPE_PRICE_ANNUAL,
          addonSiteMonthly: settings.STRIPE_PRICE_ADDON_SITE_MONTHLY,
          addonSiteAnnual: settings.STRIPE_PRICE_ADDON_SITE_ANNUAL,
        },
      });
      shutdown.defer(() => stripe.close());
      const fake = new StripeFakeControl(stripe.url);
      const envFile = join(home, "functions.env");
      await Deno.writeTextFile(envFile, toDotenv({ ...settings, STRIPE_API_BASE: stripe.url }));

      const keys = await loadOrCreateStackKeys(home);
      const port = freePort();
      const gatewayLog = join(home, "gateway.log");
      const gateway = await spawnGateway({
        port,
        env: {
          SUPABASE_URL: `http://127.0.0.1:${port}`,
          SUPABASE_DB_URL: cluster.url,
          SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
          SUPABASE_SECRET_KEY: keys.secretKey,
          SUPABASE_JWKS: JSON.stringify(keys.jwks),
        },
        functions: [{ dir: join(REPO_ROOT, "supabase", "functions"), config: join(REPO_ROOT, "supabase", "config.toml") }],
        envFiles: [envFile],
        output: { logFile: gatewayLog },
      });
      shutdown.defer(() => gateway.stop());
      await gateway.ready;
      const workerPid = async () => {
        const m = (await Deno.readTextFile(gatewayLog)).match(/\[billing-sync\] worker up \(pid (\d+)/);
        if (!m) throw new Error(`no billing-sync worker in ${gatewayLog}`);
        return Number(m[1]);
      };
      const url = `http://127.0.0.1:${port}/functions/v1/billing-sync`;
      const call = async (body: Record<string, unknown>) => {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", apikey: keys.secretKey, authorization: `Bearer ${keys.secretKey}` },
          body: JSON.stringify(body),
        });
        const out = await res.json();
        if (res.status !== 200) throw new Error(`billing-sync answered ${res.status}: ${JSON.stringify(out)}`);
        return out as Record<string, unknown> & { status: string; run_id: string };
      };

      // N tenants, and at the fake N customers (tied to them by metadata.tenant_id) with a
      // subscription (plan + 1 add-on) and a paid invoice each.
      const tenants = (await psql(cluster,
        `insert into public.tenants (name) select 'Bench ' || g from generate_series(1, ${n}) as g returning id`))
        .match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];
      if (tenants.length !== n) throw new Error(`made ${tenants.length} tenants, not ${n}`);
      await fake.seedSubscriptions({ count: n, tenant_ids: tenants, addon_quantity: 1 });
      const lists = { events: 0, customers: n, subscriptions: n, invoices: n };
      const expected = Object.values(lists).reduce((sum, k) => sum + pages(k), 0);
      console.log(`fake Stripe: ${n} customers, ${n} subscriptions, ${n} invoices, no undelivered event; ` +
        `client-side limit ${rate} requests/s`);

      const scenario = async (name: string, body: Record<string, unknown>, before?: () => Promise<void>): Promise<Scenario> => {
        await fake.resetCalls();
        await before?.();
        const pid = await workerPid();
        const cpu0 = await cpuMs(pid);
        const t0 = performance.now();
        let report = await call(body);
        let invocations = 1;
        while (report.status === "incomplete") {
          report = await call(body);
          invocations++;
        }
        const wallMs = performance.now() - t0;
        const cpu = (await cpuMs(pid)) - cpu0;
        if (report.status !== "complete") throw new Error(`${name}: the run ended ${report.status}: ${JSON.stringify(report)}`);
        const { calls, total } = await fake.calls();
        return { name, calls, total, expected, invocations, wallMs, cpuMs: cpu, report };
      };

      const results = [
        await scenario("first sync", { restart: true }),
        await scenario("second sync", {}),
        await scenario("with a 429", {}, () => fake.rateLimit(1, { route: "GET /v1/subscriptions", retry_after: 1 }).then(() => {})),
        await scenario("interrupted", { max_pages: 10 }),
      ];

      console.log(`\nbilling-sync, ${n} objects per list (expected: ceil(n/100) calls per list, 1 for an empty list)`);
      console.log(
        "scenario        calls  expected  ratio   invocations  wall s  worker CPU ms  events customers subscriptions invoices",
      );
      for (const r of results) {
        const c = (route: string) => String(r.calls[`GET /v1/${route}`] ?? 0);
        console.log(
          `${r.name.padEnd(14)} ${String(r.total).padStart(6)} ${String(r.expected).padStart(9)} ${(r.total / r.expected).toFixed(3).padStart(6)} ` +
            `${String(r.invocations).padStart(12)} ${(r.wallMs / 1000).toFixed(1).padStart(7)} ${r.cpuMs.toFixed(0).padStart(14)}  ` +
            `${c("events").padStart(6)} ${c("customers").padStart(9)} ${c("subscriptions").padStart(13)} ${c("invoices").padStart(8)}`,
        );
      }
      const first = results[0].report as { drift: Record<string, { created: number }>; api_calls: number };
      console.log(`first sync created ${first.drift.customers.created} customers, ${first.drift.subscriptions.created} subscriptions, ` +
        `${first.drift.invoices.created} invoices; the function counted ${first.api_calls} calls, the fake ${results[0].total}`);
      const worst = Math.max(...results.map((r) => r.total / r.expected));
      console.log(`\nworst ratio ${worst.toFixed(3)} (target <= ${TARGET_RATIO}): ${worst <= TARGET_RATIO ? "PASS" : "FAIL"}`);
      if (worst > TARGET_RATIO) Deno.exitCode = 1;
    };
    await withDeadline(work(), RUN_DEADLINE_MS);
  } finally {
    await shutdown.run();
  }
}
