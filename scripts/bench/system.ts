// What the benchmarks that load the stack share: `pgbench -N` as the baseline, and the CPU time of
// processes read from /proc (to say where the time goes).
import { join } from "node:path";
import { run } from "../local-supabase/cluster.ts";
import { percentile } from "./stats.ts";

/** Linux USER_HZ: /proc reports CPU time in these ticks. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface PgbenchResult {
  /** Transactions per second, without the initial connection time. */
  rps: number;
  /** Latencies (ms) from its per-transaction log; NaN when not logged. */
  p50: number;
  p99: number;
  requests: number;
}

/**
 * `pgbench -N` (Debian's pgbench: the TPC-B-like script without the updates of the small tables),
 * or the custom `script` file with `define`d variables (-D), at `clients` connections for
 * `seconds`; with `log`, latencies from its per-transaction log. Throws on unexpected output or
 * any failed transaction. The -N tables come from `pgbench -i`.
 */
export async function pgbench(
  url: string,
  opts: { clients: number; seconds: number; logDir: string; log: boolean; script?: string; define?: Record<string, string> },
): Promise<PgbenchResult> {
  const prefix = join(opts.logDir, `pgbench-${crypto.randomUUID().slice(0, 8)}`);
  const out = await run([
    "pgbench", "-n", ...(opts.script ? ["-f", opts.script] : ["-N"]),
    ...Object.entries(opts.define ?? {}).flatMap(([k, v]) => ["-D", `${k}=${v}`]),
    "-c", String(opts.clients), "-j", "2", "-T", String(opts.seconds),
    ...(opts.log ? ["-l", `--log-prefix=${prefix}`] : []),
    url,
  ]);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1]);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(tps) || failed > 0) throw new Error(`pgbench: unexpected output:\n${out}`);
  const latencies: number[] = [];
  if (opts.log) {
    for await (const e of Deno.readDir(opts.logDir)) {
      if (!join(opts.logDir, e.name).startsWith(prefix)) continue;
      const text = await Deno.readTextFile(join(opts.logDir, e.name));
      for (const line of text.split("\n")) {
        const us = Number(line.split(" ")[2]);
        if (line && Number.isFinite(us)) latencies.push(us / 1000);
      }
      await Deno.remove(join(opts.logDir, e.name));
    }
  }
  latencies.sort((a, b) => a - b);
  return { rps: tps, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), requests: processed };
}

/** utime + stime of a process, in clock ticks (0 once it is gone). */
export async function cpuTicks(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** utime + stime of every process in `pids`, in clock ticks. */
export async function cpuTicksOf(pids: number[]): Promise<number> {
  return (await Promise.all(pids.map(cpuTicks))).reduce((a, b) => a + b, 0);
}

/** The process and all its descendants. */
export async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  const tasks = await Array.fromAsync(Deno.readDir(`/proc/${pid}/task`)).catch(() => []);
  for (const task of tasks) {
    const children = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`).catch(() => "");
    for (const child of children.split(" ").filter(Boolean)) out.push(...await processTree(Number(child)));
  }
  return out;
}
