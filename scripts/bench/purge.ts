// Benchmark of the SMS retention purge (`npm run bench -- purge [--rows=N]`).
//
// On a throwaway DURABLE cluster (fsync on, as in production) with all migrations applied, it
// loads N expired + N live sms_alerts rows (default N = 1 000 000), then measures on identical,
// freshly loaded and vacuumed tables:
//   (a) one plain `DELETE FROM sms_alerts WHERE created_at < cutoff`;
//   (b) our purge, private.purge_expired_sms(cutoff, 10000).
// During each, another connection inserts one SMS row every ~10 ms and records how long each
// insert (autocommit, so including its WAL flush) took. Timings on a shared 2-core machine vary
// by +-10 % from one run to the next, so it runs R rounds (default 3, `--rounds=R`), alternating
// which variant goes first, and compares medians. It prints purge time / plain DELETE time
// (target <= 1.0) and the inserter's longest wait during each variant over all rounds (target
// <= 100 ms), with the raw figures. The cluster is stopped and removed at the end, on error and on Ctrl-C; the whole run is
// bounded by a deadline.
import postgres from "postgres";
import { type Cluster, createThrowawayCluster, run } from "../local-supabase/cluster.ts";
import { createShutdown } from "../lib/shutdown.ts";
import { intOption, median, percentile, sleep, withDeadline } from "./stats.ts";

const PURGE_BATCH_SIZE = 10_000;
const INSERT_INTERVAL_MS = 10;
/** The inserter runs this long before and after each deletion, so the window covers all of it. */
const QUIET_MARGIN_MS = 1_000;
const RUN_DEADLINE_MS = 20 * 60_000;
const TARGET_TIME_RATIO = 1.0;
const TARGET_MAX_WAIT_MS = 100;

interface InserterStats {
  inserts: number;
  p50: number;
  p99: number;
  max: number;
}

interface VariantResult {
  name: string;
  deleteMs: number;
  deleted: number;
  inserter: InserterStats;
}

/**
 * One SMS insert every INSERT_INTERVAL_MS on its own connection, as the edge functions do while
 * the purge runs. A slow insert delays the next one (no pile-up), so each latency is one wait.
 */
function startInserter(url: string, tenantId: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const latencies: number[] = [];
  let running = true;
  const insertOne = () =>
    sql`insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status)
        values (${tenantId}, 'outbound', '+15145550100', '+15145550101',
                'Alerte: évacuation du chantier (bench)', 'queued')`;
  const ready = insertOne(); // connect and warm up before measuring
  const loop = (async () => {
    await ready;
    let next = performance.now();
    while (running) {
      const started = performance.now();
      await insertOne();
      latencies.push(performance.now() - started);
      next += INSERT_INTERVAL_MS;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      else next = performance.now();
    }
  })();
  return {
    ready,
    async stop(): Promise<InserterStats> {
      running = false;
      await loop.finally(() => sql.end({ timeout: 5 }));
      const sorted = [...latencies].sort((a, b) => a - b);
      return {
        inserts: sorted.length,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        max: sorted.at(-1) ?? NaN,
      };
    },
  };
}

/**
 * Empties sms_alerts and loads `rows` expired rows then `rows` live ones, in time order as they
 * would have arrived (expired rows first in the heap), 170 days on each side of the cut-off.
 * VACUUM ANALYZE + CHECKPOINT: both variants start from the same settled state.
 */
async function loadTable(c: Cluster, sql: postgres.Sql, rows: number, cutoff: Date, tenantId: string) {
  const stepSeconds = (170 * 86_400) / rows;
  await sql`truncate public.sms_alerts restart identity`;
  await sql`
    insert into public.sms_alerts
      (tenant_id, direction, from_number, to_number, body, status, provider_message_id,
       created_at, updated_at, sent_at, delivered_at)
    select ${tenantId}, 'outbound', '+15145550100', '+151455501' || lpad((i % 100)::text, 2, '0'),
           'Alerte sécurité C-Secur360: rassemblement au point B, chantier fermé jusqu''à 14 h. Répondez ARRÊT pour vous désabonner.',
           'delivered', 'SM' || md5(i::text), t.created_at, t.created_at, t.created_at,
           t.created_at + interval '3 seconds'
    from generate_series(1, ${2 * rows}::integer) as i,
         lateral (select ${cutoff}::timestamptz
                         + make_interval(secs => (i - ${rows}::integer - 1) * ${stepSeconds}::float8)
                         + case when i <= ${rows}::integer then interval '0' else interval '1 second' end
                  as created_at) as t`;
  await sql`vacuum (analyze) public.sms_alerts`;
  // CHECKPOINT needs superuser (or pg_checkpoint), which postgres does not have, here as on hosted.
  await run(["psql", c.adminUrl, "-XAtqc", "checkpoint"]);
  const [{ expired, live }] = await sql`
    select count(*) filter (where created_at < ${cutoff}) as expired,
           count(*) filter (where created_at >= ${cutoff}) as live
    from public.sms_alerts`;
  if (Number(expired) !== rows || Number(live) !== rows) {
    throw new Error(`load: expected ${rows} expired + ${rows} live rows, got ${expired} + ${live}`);
  }
}

async function measureVariant(
  c: Cluster,
  sql: postgres.Sql,
  name: string,
  rows: number,
  cutoff: Date,
  tenantId: string,
  deleteExpired: () => Promise<number>,
): Promise<VariantResult> {
  console.log(`[${name}] loading ${rows} expired + ${rows} live rows...`);
  let t = performance.now();
  await loadTable(c, sql, rows, cutoff, tenantId);
  console.log(`[${name}] loaded in ${((performance.now() - t) / 1000).toFixed(1)} s; deleting with inserter running`);
  const inserter = startInserter(c.url, tenantId);
  await inserter.ready;
  await sleep(QUIET_MARGIN_MS);
  t = performance.now();
  const deleted = await deleteExpired();
  const deleteMs = performance.now() - t;
  await sleep(QUIET_MARGIN_MS);
  const stats = await inserter.stop();
  const [{ left }] = await sql`select count(*) as left from public.sms_alerts where created_at < ${cutoff}`;
  if (Number(left) !== 0 || deleted !== rows) {
    throw new Error(`[${name}] deleted ${deleted} rows, ${left} expired rows left (expected ${rows}, 0)`);
  }
  console.log(`[${name}] deleted ${deleted} rows in ${deleteMs.toFixed(0)} ms; inserts: ${stats.inserts}, ` +
    `p50 ${stats.p50.toFixed(1)} ms, p99 ${stats.p99.toFixed(1)} ms, max ${stats.max.toFixed(1)} ms`);
  return { name, deleteMs, deleted, inserter: stats };
}

export async function main(args: string[]): Promise<void> {
  const rows = intOption(args, "rows", 1_000_000, 1_000);
  const rounds = intOption(args, "rounds", 3, 1);
  let sql: postgres.Sql | undefined;

  // Once only, whoever asks first (normal end, error, deadline or Ctrl-C).
  const shutdown = createShutdown();
  shutdown.trapSignals({ onSignal: () => console.error("interrupted: removing the benchmark cluster") });

  try {
    const work = async () => {
      const { cluster, steps } = await createThrowawayCluster({
        prefix: "c-secur360-bench-purge-",
        durable: true,
        defer: (remove) =>
          shutdown.defer(async () => {
            await remove();
            console.log("benchmark cluster removed");
          }),
      });
      shutdown.defer(() => sql?.end({ timeout: 5 }));
      console.log(`cluster in ${cluster.home} (durable: fsync on), port ${cluster.port}`);
      for (const step of steps) console.log(step);
      const version = (await run(["psql", cluster.url, "-XAtc", "show server_version"])).trim();
      console.log(`PostgreSQL ${version}`);

      sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
      const [{ id: tenantId }] = await sql`insert into public.tenants (name) values ('Bench inc.') returning id`;
      // One cut-off for both variants: exactly now() - 180 days at the start of the run.
      const [{ cutoff }] = await sql`select now() - interval '180 days' as cutoff`;

      const deletePlain = async () => {
        const r = await sql!`delete from public.sms_alerts where created_at < ${cutoff}`;
        return r.count;
      };
      const deletePurge = async () => {
        const [{ summary }] = await sql!`
          select private.purge_expired_sms(${cutoff}, ${PURGE_BATCH_SIZE}) as summary`;
        return Number(summary.sms_alerts_deleted);
      };
      const plain: VariantResult[] = [];
      const purge: VariantResult[] = [];
      for (let round = 1; round <= rounds; round++) {
        const runPlain = async () =>
          plain.push(await measureVariant(cluster, sql!, `round ${round} plain DELETE`, rows, cutoff, tenantId, deletePlain));
        const runPurge = async () =>
          purge.push(await measureVariant(cluster, sql!, `round ${round} purge`, rows, cutoff, tenantId, deletePurge));
        if (round % 2 === 1) { await runPlain(); await runPurge(); } else { await runPurge(); await runPlain(); }
      }

      const ms = (v: VariantResult[]) => v.map((r) => r.deleteMs);
      const maxWait = (v: VariantResult[]) => Math.max(...v.map((r) => r.inserter.max));
      const timeRatio = median(ms(purge)) / median(ms(plain));
      const verdict = (ok: boolean) => (ok ? "OK" : "MISSED");
      console.log("\n=== sms_alerts purge benchmark ===");
      console.log(`rows: ${rows} expired + ${rows} live, ${rounds} round(s), batch size ${PURGE_BATCH_SIZE}, ` +
        `one insert every ${INSERT_INTERVAL_MS} ms on another connection, durable cluster`);
      for (const v of [...plain, ...purge]) {
        console.log(`${v.name.padEnd(22)} time ${v.deleteMs.toFixed(0).padStart(6)} ms | inserter: ${v.inserter.inserts} inserts, ` +
          `p50 ${v.inserter.p50.toFixed(1)} ms, p99 ${v.inserter.p99.toFixed(1)} ms, longest wait ${v.inserter.max.toFixed(1)} ms`);
      }
      console.log(`median time: plain DELETE ${median(ms(plain)).toFixed(0)} ms, purge ${median(ms(purge)).toFixed(0)} ms`);
      console.log(`purge time / plain DELETE time = ${timeRatio.toFixed(3)} (medians; target <= ${TARGET_TIME_RATIO}) ` +
        `${verdict(timeRatio <= TARGET_TIME_RATIO)} [per round: ${purge.map((p, i) => (p.deleteMs / plain[i].deleteMs).toFixed(2)).join(", ")}]`);
      console.log(`inserter longest wait: plain DELETE ${maxWait(plain).toFixed(1)} ms, purge ${maxWait(purge).toFixed(1)} ms ` +
        `(target <= ${TARGET_MAX_WAIT_MS} ms) ${verdict(maxWait(purge) <= TARGET_MAX_WAIT_MS)}`);
    };
    await withDeadline(work(), RUN_DEADLINE_MS);
  } finally {
    shutdown.releaseSignals();
    await shutdown.run();
  }
}
