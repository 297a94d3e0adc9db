// The one way the entry points start the functions gateway (main.ts) as a process: `npm start`
// (output on the terminal), `npm run stack -- up` (detached, output in a log file) and the test
// runner (attached, output in a log file). Every caller names its functions folders and its env
// files: nothing is picked up implicitly.
//
// The gateway runs under `setsid`: it leads its own process group, so stopping it signals its
// workers too, and a terminal's Ctrl-C reaches only the caller, which then stops it in order.
import { isAbsolute, join } from "node:path";
import { REPO_ROOT } from "../cluster.ts";

export interface FunctionsFolder {
  /** Folder of functions, relative to the repository root or absolute. */
  dir: string;
  /** The config.toml whose [functions.<name>] sections apply to it. */
  config: string;
}

export interface GatewayLaunch {
  /** Where it listens (127.0.0.1). */
  port: number;
  /** SUPABASE_URL, SUPABASE_DB_URL, the keys…: the gateway's environment (see its README). */
  env: Record<string, string>;
  functions: FunctionsFolder[];
  /** Dotenv files given to every function, later ones winning (may be empty, never implicit). */
  envFiles: string[];
  /**
   * "terminal": the gateway's output goes to ours and it stops with us. Otherwise its output is
   * appended to `logFile`, and with `detached` it outlives this process (`npm run stack -- up`).
   */
  output: "terminal" | { logFile: string; detached?: boolean };
  /** Written with the gateway's pid once it runs, so `npm run stack -- status|down` find it. */
  pidFile?: string;
  /** Default 90 s. */
  readyTimeoutMs?: number;
}

export interface SpawnedGateway {
  pid: number;
  url: string;
  /** The `gateway ready <url>` line; rejects (with the log's tail) when it exits or times out first. */
  ready: Promise<string>;
  /** Its exit code; never rejects. */
  exited: Promise<number>;
  /** SIGTERM to its process group, SIGKILL to what is left after `graceMs` (10 s); removes the pid file. */
  stop(graceMs?: number): Promise<void>;
}

const MAIN = join(REPO_ROOT, "scripts", "local-supabase", "gateway", "main.ts");
const READY = /gateway ready (\S+)/;

/** The gateway's command line (a `deno run` of main.ts, from the repository root). */
export function gatewayCommand(launch: Pick<GatewayLaunch, "functions" | "envFiles">): string[] {
  const abs = (p: string) => (isAbsolute(p) ? p : join(REPO_ROOT, p));
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--config",
    join(REPO_ROOT, "deno.json"),
    MAIN,
    ...launch.functions.flatMap((f) => ["--functions", `${abs(f.dir)}=${abs(f.config)}`]),
    // Always explicit: main.ts falls back to supabase/functions/.env only when given none.
    ...(launch.envFiles.length ? launch.envFiles.flatMap((f) => ["--env-file", abs(f)]) : ["--env-file", "/dev/null"]),
  ];
}

export function processAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT"); // harmless probe: fails once the process is gone
    return true;
  } catch {
    return false;
  }
}

/** True when `pid` runs this checkout's gateway (a recycled pid does not count). */
function isOurGateway(pid: number): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").includes(MAIN);
  } catch {
    return processAlive(pid); // no /proc: trust the pid
  }
}

/** The pid recorded in `pidFile` when that gateway still runs; null otherwise. */
export async function runningGatewayPid(pidFile: string): Promise<number | null> {
  try {
    const pid = Number((await Deno.readTextFile(pidFile)).trim());
    return Number.isInteger(pid) && pid > 0 && isOurGateway(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Removes `pidFile` if it still names `pid` (a newer gateway's file is left alone). */
async function forgetPid(pidFile: string | undefined, pid: number): Promise<void> {
  if (!pidFile) return;
  const recorded = await Deno.readTextFile(pidFile).catch(() => "");
  if (Number(recorded.trim()) === pid) await Deno.remove(pidFile).catch(() => {});
}

/** Stops the gateway whose process group `pid` leads: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopGatewayGroup(pid: number, graceMs = 10_000, exited?: Promise<unknown>): Promise<void> {
  const signalGroup = (sig: Deno.Signal) => {
    try {
      Deno.kill(-pid, sig);
    } catch { /* already gone */ }
  };
  signalGroup("SIGTERM");
  const gone = exited ?? (async () => {
    while (processAlive(pid)) await sleep(100);
  })();
  const stopped = await raceTimeout(gone.then(() => true), graceMs, false);
  if (!stopped) console.error(`gateway (pid ${pid}) did not stop within ${graceMs / 1000} s of SIGTERM: killed`);
  signalGroup("SIGKILL"); // whatever is left of the group (workers), in every case
  await gone;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** `promise`'s value, or `onTimeout` after `ms`; the timer never outlives the race. */
async function raceTimeout<T, U>(promise: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<U>((r) => (timer = setTimeout(() => r(onTimeout), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function tail(text: string, lines: number) {
  return text.split("\n").slice(-lines).join("\n");
}

/** Starts the gateway; returns at once (await `ready`). The caller stops it (or registers `stop`). */
export async function spawnGateway(launch: GatewayLaunch): Promise<SpawnedGateway> {
  const cmd = gatewayCommand(launch);
  const env = { ...launch.env, GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: String(launch.port) };
  const url = `http://127.0.0.1:${launch.port}`;
  const terminal = launch.output === "terminal";
  const logFile = launch.output === "terminal" ? undefined : launch.output.logFile;
  const detached = launch.output !== "terminal" && launch.output.detached === true;
  // A log file is appended to: where this run's output starts is where to look for its ready line.
  const logOffset = logFile ? await Deno.stat(logFile).then((s) => s.size, () => 0) : 0;

  const child = new Deno.Command("setsid", {
    // To a file: through `sh` redirection, so the output does not depend on this process living.
    args: logFile ? ["sh", "-c", `log=$1; shift; exec "$@" >>"$log" 2>&1 </dev/null`, "sh", logFile, ...cmd] : cmd,
    cwd: REPO_ROOT,
    env,
    stdin: "null",
    stdout: terminal ? "piped" : "null",
    stderr: terminal ? "piped" : "null",
  }).spawn();
  // setsid execs (the caller is no group leader) and so does sh: the pid is the gateway's.
  const pid = child.pid;
  if (detached) child.unref();
  if (launch.pidFile) await Deno.writeTextFile(launch.pidFile, `${pid}\n`);
  const exited = child.status.then((s) => s.code);
  // A gateway that stops by itself, or is stopped by `stack down`, takes its pid file with it.
  if (!detached) void exited.then(() => forgetPid(launch.pidFile, pid));

  let readyLine: (line: string) => void;
  const sawReady = new Promise<string>((r) => (readyLine = r));
  let output = ""; // the tail of a terminal gateway's output, for errors
  if (terminal) {
    // Copy its output to ours, watching stdout for the ready line.
    const pump = async (stream: ReadableStream<Uint8Array>, to: typeof Deno.stdout, watch: boolean) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        await to.write(chunk).catch(() => {});
        output = (output + decoder.decode(chunk, { stream: true })).slice(-8192);
        const m = watch && output.match(READY);
        if (m) readyLine(m[0]);
      }
    };
    void pump(child.stdout, Deno.stdout, true);
    void pump(child.stderr, Deno.stderr, false);
  }
  const logText = async () =>
    logFile
      ? new TextDecoder().decode((await Deno.readFile(logFile).catch(() => new Uint8Array())).slice(logOffset))
      : output;

  const ready = (async () => {
    const deadline = launch.readyTimeoutMs ?? 90_000;
    let gone = false;
    void exited.then(() => (gone = true));
    if (terminal) {
      const first = await raceTimeout(Promise.race([sawReady, exited.then(() => undefined)]), deadline, null);
      if (typeof first === "string") return first;
      throw new Error(
        first === undefined ? `gateway exited before it was ready` : `gateway not ready after ${deadline / 1000} s`,
      );
    }
    // Output in a file: read this run's part of it until the ready line shows.
    for (let waited = 0;; waited += 200) {
      const m = (await logText()).match(READY);
      if (m) return m[0];
      if (gone) {
        throw new Error(`gateway exited before it was ready; log: ${logFile}\n${tail(await logText(), 30)}`);
      }
      if (waited >= deadline) {
        throw new Error(`gateway not ready after ${deadline / 1000} s; log: ${logFile}\n${tail(await logText(), 30)}`);
      }
      await sleep(200);
    }
  })();
  ready.catch(() => {}); // the caller awaits it; never an unhandled rejection in between

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000) =>
    stopping ??= (async () => {
      await stopGatewayGroup(pid, graceMs, exited); // our child (even detached): its status reaps it
      await forgetPid(launch.pidFile, pid);
    })();
  return { pid, url, ready, exited, stop };
}
