// Benchmark of the webhook path (`npm run bench -- gateway [--rounds=R] [--seconds=S]`).
//
// Every webhook goes client -> gateway -> function worker -> function -> Postgres. On a throwaway
// DURABLE cluster (fsync and synchronous_commit on, as in production) it measures, in one run:
//   - bench-noop   (reads the body, answers JSON)    through the gateway, and served directly;
//   - bench-insert (one autocommitted INSERT of the body) through the gateway, and served directly;
//   - `pgbench -N` (Debian's pgbench) against the same cluster: what Postgres alone sustains.
// "Directly" is the function's own handler on Deno.serve with nothing in front
// (scripts/bench/serve-direct.ts). Load: autocannon (node), 16 connections, a 2 KB JSON body,
// loopback only; each phase has a warm-up, then S seconds (default 10) capped at a request count.
// R rounds (default 3) rotate the phase order; the verdicts use the median of the per-round ratios,
// which stay meaningful on a busy machine where absolute figures drift.
// Targets: insert through the gateway >= 0.85x itself served directly, and >= 0.75x pgbench -N.
// CPU per request of the gateway (main.ts + nginx) and of the function's process is read from /proc.
// autocannon reports latencies in whole milliseconds.
import { join } from "node:path";
import { createThrowawayCluster, freePort, psql, REPO_ROOT, run } from "../local-supabase/cluster.ts";
import { spawnGateway } from "../local-supabase/gateway/spawn.ts";
import { createShutdown } from "../lib/shutdown.ts";
import { DIRECT_READY } from "./serve-direct.ts";
import { intOption, median, withDeadline } from "./stats.ts";
import { CLOCK_TICKS_PER_SECOND, cpuTicksOf, pgbench as runPgbench, processTree } from "./system.ts";
import { spawnLogged, stopChild, waitForLog } from "./processes.ts";

const CONNECTIONS = 16;
const BODY_BYTES = 2048;
const WARMUP_SECONDS = 2;
/** Upper bound on requests per measured second, so that every load run is bounded in count too. */
const MAX_RATE = 100_000;
const RUN_DEADLINE_MS = 30 * 60_000;
const TARGET_VS_DIRECT = 0.85;
const TARGET_VS_PGBENCH = 0.75;
const FUNCTIONS_DIR = join(REPO_ROOT, "scripts", "bench", "functions");
const AUTOCANNON = join(REPO_ROOT, "node_modules", "autocannon", "autocannon.js");

type PhaseName = "noop via gateway" | "noop direct" | "insert via gateway" | "insert direct" | "pgbench -N";
const PHASES: PhaseName[] = ["noop via gateway", "noop direct", "insert via gateway", "insert direct", "pgbench -N"];

interface Measure {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** CPU microseconds per request, by process role (gateway, function). */
  cpuUs: Record<string, number>;
}


/** The gateway's own processes (main.ts and nginx), without the function workers. */
async function gatewayPids(gatewayPid: number, workerPids: number[]): Promise<number[]> {
  const tree = await processTree(gatewayPid);
  const all = new Set(tree);
  for (const w of workerPids) for (const p of await processTree(w)) all.delete(p);
  return [...all];
}

/** One autocannon run against `url`; throws if any request failed or answered non-2xx. */
async function autocannon(url: string, bodyFile: string, seconds: number): Promise<Omit<Measure, "cpuUs">> {
  const child = new Deno.Command("node", {
    args: [
      AUTOCANNON,
      "--connections", String(CONNECTIONS),
      "--duration", String(seconds),
      "--maxOverallRequests", String(seconds * MAX_RATE),
      "--method", "POST",
      "--headers", "content-type=application/json",
      "--input", bodyFile,
      "--json",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const watchdog = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* done */ }
  }, (seconds + 30) * 1000);
  const out = await child.output();
  clearTimeout(watchdog);
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`autocannon failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  const r = JSON.parse(text);
  const bad = r.errors + r.timeouts + r.non2xx;
  if (bad > 0) {
    throw new Error(`${url}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx answers`);
  }
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total };
}

export async function main(args: string[]): Promise<void> {
  const rounds = intOption(args, "rounds", 3, 1);
  const seconds = intOption(args, "seconds", 10, 2);
  // Once only, whoever asks first (normal end, error, deadline or Ctrl-C).
  const shutdown = createShutdown();
  shutdown.trapSignals({ onSignal: () => console.error("interrupted: removing the benchmark cluster and processes") });

  try {
    const work = async () => {
      // The project's database as a hosted project has it (bootstrap + migrations), durable.
      const { cluster } = await createThrowawayCluster({
        prefix: "c-secur360-bench-gateway-",
        durable: true,
        defer: (remove) =>
          shutdown.defer(async () => {
            await remove();
            console.log("benchmark cluster removed");
          }),
      });
      const home = cluster.home;
      console.log(`cluster in ${home}, port ${cluster.port}`);
      console.log(`PostgreSQL ${(await psql(cluster, "show server_version")).trim()}, ` +
        `fsync=${(await psql(cluster, "show fsync")).trim()}, ` +
        `synchronous_commit=${(await psql(cluster, "show synchronous_commit")).trim()}`);
      await psql(cluster, `create schema bench;
        create table bench.webhook_events (
          id bigint generated always as identity primary key,
          received_at timestamptz not null default now(),
          payload jsonb not null)`);
      await run(["pgbench", "-i", "-q", "-s", "10", cluster.url]);
      console.log("pgbench tables initialised (scale 10)");

      // A 2 KB JSON body, shaped like a provider's event.
      const event: Record<string, unknown> = { id: "evt_bench", type: "bench.event", created: 1_764_000_000, data: {} };
      let i = 0;
      while (JSON.stringify(event).length < BODY_BYTES - 40) (event.data as Record<string, string>)[`field_${i++}`] = "x".repeat(24);
      const body = JSON.stringify(event).padEnd(BODY_BYTES, " ");
      const bodyFile = join(home, "body.json");
      await Deno.writeTextFile(bodyFile, body);
      const emptyEnvFile = join(home, "functions.env");
      await Deno.writeTextFile(emptyEnvFile, "");

      const baseEnv = { ...Deno.env.toObject(), SUPABASE_DB_URL: cluster.url };
      // The gateway, as `npm run stack -- up` runs it (its output appended to a log file).
      const gatewayPort = freePort();
      const gatewayLog = join(home, "gateway.log");
      const gateway = await spawnGateway({
        port: gatewayPort,
        env: { SUPABASE_URL: `http://127.0.0.1:${gatewayPort}`, SUPABASE_DB_URL: cluster.url },
        functions: [{ dir: FUNCTIONS_DIR, config: join(FUNCTIONS_DIR, "config.toml") }],
        envFiles: [emptyEnvFile],
        output: { logFile: gatewayLog },
      });
      shutdown.defer(() => gateway.stop());
      await gateway.ready;
      const workerPid = async (name: string) => {
        const m = (await Deno.readTextFile(gatewayLog)).match(new RegExp(`\\[${name}\\] worker up \\(pid (\\d+)`));
        if (!m) throw new Error(`no worker for ${name} in ${gatewayLog}`);
        return Number(m[1]);
      };
      const gatewayUrl = `http://127.0.0.1:${gatewayPort}/functions/v1`;
      console.log(`gateway up on port ${gatewayPort} (log ${gatewayLog})`);

      const direct = async (name: string) => {
        const port = freePort();
        const logFile = join(home, `${name}-direct.log`);
        const child = spawnLogged([
          Deno.execPath(), "run", "-A", "--quiet", "--config", join(REPO_ROOT, "deno.json"),
          join(REPO_ROOT, "scripts", "bench", "serve-direct.ts"), join(FUNCTIONS_DIR, name, "index.ts"), String(port),
        ], logFile, baseEnv);
        shutdown.defer(() => stopChild(child));
        await waitForLog(logFile, new RegExp(DIRECT_READY), `${name} (direct)`, child);
        return { url: `http://127.0.0.1:${port}/${name}`, pid: child.pid };
      };
      const noopDirect = await direct("bench-noop");
      const insertDirect = await direct("bench-insert");
      console.log("functions served directly, on their own ports");

      const targets: Record<PhaseName, () => Promise<Omit<Measure, "cpuUs">>> = {
        "noop via gateway": () => autocannon(`${gatewayUrl}/bench-noop`, bodyFile, seconds),
        "noop direct": () => autocannon(noopDirect.url, bodyFile, seconds),
        "insert via gateway": () => autocannon(`${gatewayUrl}/bench-insert`, bodyFile, seconds),
        "insert direct": () => autocannon(insertDirect.url, bodyFile, seconds),
        "pgbench -N": () => runPgbench(cluster.url, { clients: CONNECTIONS, seconds, logDir: home, log: true }),
      };
      const warmups: Record<PhaseName, () => Promise<unknown>> = {
        "noop via gateway": () => autocannon(`${gatewayUrl}/bench-noop`, bodyFile, WARMUP_SECONDS),
        "noop direct": () => autocannon(noopDirect.url, bodyFile, WARMUP_SECONDS),
        "insert via gateway": () => autocannon(`${gatewayUrl}/bench-insert`, bodyFile, WARMUP_SECONDS),
        "insert direct": () => autocannon(insertDirect.url, bodyFile, WARMUP_SECONDS),
        "pgbench -N": () => runPgbench(cluster.url, { clients: CONNECTIONS, seconds: WARMUP_SECONDS, logDir: home, log: false }),
      };
      const workers = [await workerPid("bench-noop"), await workerPid("bench-insert")];
      const processes = async (phase: PhaseName): Promise<Record<string, number[]>> => {
        switch (phase) {
          case "noop via gateway":
            return { gateway: await gatewayPids(gateway.pid, workers), function: [workers[0]] };
          case "insert via gateway":
            return { gateway: await gatewayPids(gateway.pid, workers), function: [workers[1]] };
          case "noop direct":
            return { function: [noopDirect.pid] };
          case "insert direct":
            return { function: [insertDirect.pid] };
          default:
            return {};
        }
      };

      const results = new Map<PhaseName, Measure[]>(PHASES.map((p) => [p, []]));
      for (let round = 1; round <= rounds; round++) {
        const order = PHASES.map((_, k) => PHASES[(k + round - 1) % PHASES.length]);
        for (const phase of order) {
          await warmups[phase]();
          const pids = await processes(phase);
          const before = Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, p]) => [k, await cpuTicksOf(p)])));
          const m = await targets[phase]();
          const cpuUs: Record<string, number> = {};
          for (const [role, pid] of Object.entries(pids)) {
            cpuUs[role] = ((await cpuTicksOf(pid)) - before[role]) / CLOCK_TICKS_PER_SECOND * 1e6 / m.requests;
          }
          results.get(phase)!.push({ ...m, cpuUs });
          const cpu = Object.entries(cpuUs).map(([k, v]) => `${k} ${v.toFixed(0)} µs/req`).join(", ");
          console.log(`[round ${round}/${rounds}] ${phase.padEnd(18)} ${m.rps.toFixed(0).padStart(7)} req/s, ` +
            `p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms${cpu ? `, CPU ${cpu}` : ""}`);
        }
      }

      const perRound = (a: PhaseName, b: PhaseName) => results.get(a)!.map((m, k) => m.rps / results.get(b)![k].rps);
      const ratioLine = (label: string, a: PhaseName, b: PhaseName, target?: number) => {
        const ratios = perRound(a, b);
        const med = median(ratios);
        const verdict = target === undefined ? "" : ` (target >= ${target}) ${med >= target ? "OK" : "MISSED"}`;
        console.log(`${label.padEnd(44)} ${med.toFixed(2)}${verdict}  [per round: ${ratios.map((r) => r.toFixed(2)).join(", ")}]`);
      };
      console.log(`\n=== webhook path benchmark: ${CONNECTIONS} connections, ${BODY_BYTES} B JSON body, ` +
        `${seconds} s per phase, ${rounds} round(s), durable cluster ===`);
      console.log(`${"phase".padEnd(20)} ${"req/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}  CPU µs/req (gateway, function)  [req/s per round]`);
      for (const phase of PHASES) {
        const ms = results.get(phase)!;
        const cpu = (role: string) => {
          const v = ms.map((m) => m.cpuUs[role]).filter((x) => x !== undefined);
          return v.length ? median(v).toFixed(0) : "-";
        };
        console.log(`${phase.padEnd(20)} ${median(ms.map((m) => m.rps)).toFixed(0).padStart(8)} ` +
          `${median(ms.map((m) => m.p50)).toFixed(2).padStart(8)} ${median(ms.map((m) => m.p99)).toFixed(2).padStart(8)}  ` +
          `${`${cpu("gateway")}, ${cpu("function")}`.padEnd(30)}  [${ms.map((m) => m.rps.toFixed(0)).join(", ")}]`);
      }
      console.log("ratios (median of per-round ratios of req/s):");
      ratioLine("noop: via gateway / direct", "noop via gateway", "noop direct");
      ratioLine("insert: via gateway / direct", "insert via gateway", "insert direct", TARGET_VS_DIRECT);
      ratioLine("insert via gateway / pgbench -N", "insert via gateway", "pgbench -N", TARGET_VS_PGBENCH);
      ratioLine("insert direct / pgbench -N", "insert direct", "pgbench -N");
    };
    await withDeadline(work(), RUN_DEADLINE_MS);
  } finally {
    shutdown.releaseSignals();
    await shutdown.run();
  }
}
