// Processes a benchmark starts beside the load (a peer's server, a fake): started with their output
// in a log file, awaited by a line in that log, stopped politely; and their CPU with what they reaped
// (system.ts has the rest: pgbench, cpuTicks, processTree).
import { REPO_ROOT } from "../local-supabase/cluster.ts";
import { sleep } from "./stats.ts";

/** Starts `argv` in the background with stdout and stderr appended to `logFile` (as `stack up` runs the gateway). */
export function spawnLogged(argv: string[], logFile: string, env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command("bash", {
    args: ["-c", `log=$1; shift; exec "$@" >>"$log" 2>&1 </dev/null`, "bash", logFile, ...argv],
    cwd: REPO_ROOT,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** The first match of `pattern` in `logFile`, waiting up to 120 s; fails at once if `child` exits first. */
export async function waitForLog(logFile: string, pattern: RegExp, what: string, child: Deno.ChildProcess): Promise<RegExpMatchArray> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(logFile).catch(() => "");
    const m = text.match(pattern);
    if (m) return m;
    if (exited) throw new Error(`${what} exited before it was ready:\n${text.slice(-3000)}`);
    await sleep(100);
  }
  throw new Error(`${what} not ready after 120 s; log: ${logFile}`);
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
export async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 10_000);
  await child.status;
  clearTimeout(timer);
}

/**
 * utime + stime of a process plus cutime + cstime (the CPU of the children it has reaped), in clock
 * ticks (0 once it is gone). Summed over a process tree and differenced per pid, this counts the
 * CPU of children that came and went in between (PostgreSQL backends of short connections) too.
 */
export async function cpuTicksWithReaped(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  } catch {
    return 0;
  }
}
