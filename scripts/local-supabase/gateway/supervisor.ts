// Keeps one function's worker process alive: spawns scripts/local-supabase/gateway/worker.ts with the function's
// own environment only, on the loopback port nginx routes the function to, with the heap limit;
// forwards its output to the log; tells why it exited (failed boot, memory limit, crash); and
// restarts it (with backoff) when it dies.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FunctionSpec } from "./config.ts";
import { EXIT_MEMORY_LIMIT, EXIT_PORT_IN_USE, LISTENING_MARKER, type WorkerConfig } from "./worker.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..", "..");
/** Workers resolve bare specifiers through the root deno.json (its import map), as deployed code does. */
const DENO_CONFIG = join(REPO_ROOT, "deno.json");
const WORKER_SCRIPT = join(HERE, "worker.ts");

/** A first start may download npm packages into the cache; later starts take well under a second. */
export const START_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 3_000;
const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5_000;
/** A worker that stayed up this long is healthy again: its next crash restarts it quickly. */
const HEALTHY_AFTER_MS = 30_000;
/** V8's own words when a heap limit (--max-old-space-size) is reached. */
const V8_OUT_OF_MEMORY = /Fatal JavaScript out of memory|JavaScript heap out of memory|Reached heap limit/;

export type WorkerState = "starting" | "up" | "down" | "stopped";

/** Why a worker process ended: it never listened, it went over its memory limit, or it died otherwise. */
export type ExitReason = "boot" | "memory" | "crash" | "stopped";

export interface WorkerExit {
  reason: ExitReason;
  code: number;
  signal: Deno.Signal | null;
  /** Date.now() when the exit was seen. */
  at: number;
}

export interface WorkerOptions {
  /** Loopback port to listen on; a new one is picked if another process took it. */
  port: number;
  /** Heap + external memory limit of the worker (hosted: 256 MB). */
  memoryLimitMb: number;
  /** What the worker's wrapper needs besides the function's env (sent on its stdin, never in its env). */
  config: Omit<WorkerConfig, "memoryLimitMb">;
  /** Called when the worker had to move to another port (nginx must be told). */
  onPortChange?: (port: number) => void | Promise<void>;
  /** An unused loopback port (for onPortChange). */
  freePort?: () => number;
}

export class FunctionWorker {
  state: WorkerState = "starting";
  /** Loopback port of the running worker; undefined while it is not up. */
  port: number | undefined;
  /** The port this function's worker always listens on (nginx's upstream). */
  listenPort: number;
  restarts = 0;
  lastExit: WorkerExit | undefined;
  #child: Deno.ChildProcess | undefined;
  #backoffMs = MIN_BACKOFF_MS;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #firstStart: Promise<boolean>;
  #resolveFirstStart!: (up: boolean) => void;
  /** Settled at the end of every start attempt: true once up, false if that start failed. */
  #startAttempt: Promise<boolean> = Promise.resolve(false);
  #resolveStartAttempt: (up: boolean) => void = () => {};
  #exitWaiters: ((exit: WorkerExit) => void)[] = [];

  constructor(
    readonly spec: FunctionSpec,
    private readonly env: Record<string, string>,
    private readonly log: (line: string) => void,
    private readonly options: WorkerOptions,
  ) {
    this.listenPort = options.port;
    this.#firstStart = new Promise((r) => this.#resolveFirstStart = r);
  }

  /** Starts the worker; resolves true once it listens, false if its first start failed. */
  start(): Promise<boolean> {
    this.#spawn();
    return this.#firstStart;
  }

  /** Resolves true once the worker is up, false if the current start attempt fails (or none is under way). */
  whenUp(timeoutMs = START_TIMEOUT_MS): Promise<boolean> {
    if (this.state === "up") return Promise.resolve(true);
    if (this.state !== "starting") return Promise.resolve(false);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      this.#startAttempt,
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs)),
    ]).finally(() => clearTimeout(timer));
  }

  /**
   * A worker that crashed (after it had served) waits out its backoff before restarting; a request
   * for it restarts it at once, as the hosted runtime boots a new worker for the next request. A
   * worker whose boot failed keeps its backoff (its code must change first).
   */
  restartNow(): void {
    if (this.state !== "down" || this.#stopping || this.lastExit?.reason === "boot") return;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.#spawn();
  }

  /**
   * Why the worker failed a request it had taken: the exit seen in the last `recentMs`, or the
   * next one within `waitMs` (the process may take a moment to end after its connection broke).
   */
  async failureOf(recentMs = 5_000, waitMs = 2_000): Promise<WorkerExit | undefined> {
    if (this.lastExit && Date.now() - this.lastExit.at <= recentMs) return this.lastExit;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = new Promise<WorkerExit>((r) => this.#exitWaiters.push(r));
    const exit = await Promise.race([next, new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), waitMs))]);
    clearTimeout(timer);
    return exit;
  }

  #spawn() {
    this.state = "starting";
    this.port = undefined;
    this.#startAttempt = new Promise((r) => this.#resolveStartAttempt = r);
    const nonce = crypto.randomUUID();
    const startedAt = Date.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "--config",
        DENO_CONFIG,
        // The heap limit; the worker itself watches heap + external memory against the same limit.
        `--v8-flags=--max-old-space-size=${this.options.memoryLimitMb}`,
        WORKER_SCRIPT,
        this.spec.entrypoint,
        nonce,
        this.spec.name,
        String(this.listenPort),
      ],
      cwd: REPO_ROOT,
      env: this.env,
      clearEnv: true, // the function sees its own env, never the gateway's (JWT secret, DB password...)
      stdin: "piped", // one config line, then kept open: its closing tells the worker that the gateway is gone
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const config: WorkerConfig = { ...this.options.config, memoryLimitMb: this.options.memoryLimitMb };
    const writer = child.stdin.getWriter();
    writer.write(new TextEncoder().encode(JSON.stringify(config) + "\n")).catch(() => {});
    writer.releaseLock();

    const startTimer = setTimeout(() => {
      this.log(`[${this.spec.name}] worker did not listen within ${START_TIMEOUT_MS} ms; killing it`);
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, START_TIMEOUT_MS);

    let listened = false;
    let outOfMemory = false;
    const prefix = `[${this.spec.name}] `;
    const stdoutDone = forEachLine(child.stdout, (line) => {
      // Not startsWith: the function may have written to stdout without a newline before it.
      const marker = line.indexOf(`${LISTENING_MARKER} ${nonce} `);
      if (marker >= 0) {
        if (marker > 0) this.log(prefix + line.slice(0, marker));
        clearTimeout(startTimer);
        listened = true;
        this.port = Number(line.slice(marker + LISTENING_MARKER.length + nonce.length + 2));
        this.state = "up";
        this.log(`${prefix}worker up (pid ${child.pid}, port ${this.port})`);
        this.#resolveFirstStart(true);
        this.#resolveStartAttempt(true);
      } else {
        this.log(prefix + line);
      }
    });
    const stderrDone = forEachLine(child.stderr, (line) => {
      if (V8_OUT_OF_MEMORY.test(line)) outOfMemory = true;
      this.log(prefix + line);
    });

    child.status.then(async (status) => {
      clearTimeout(startTimer);
      // The out-of-memory message may still be in the pipe: read it before judging.
      await Promise.race([Promise.all([stdoutDone, stderrDone]), new Promise((r) => setTimeout(r, 1_000))]);
      try {
        child.stdin.close();
      } catch { /* already closed */ }
      if (this.#child === child) this.#child = undefined;
      this.port = undefined;
      const reason: ExitReason = this.#stopping
        ? "stopped"
        : outOfMemory || status.code === EXIT_MEMORY_LIMIT
        ? "memory"
        : listened
        ? "crash"
        : "boot";
      const exit: WorkerExit = { reason, code: status.code, signal: status.signal, at: Date.now() };
      this.lastExit = exit;
      for (const notify of this.#exitWaiters.splice(0)) notify(exit);
      this.#resolveStartAttempt(false);
      if (this.#stopping) {
        this.state = "stopped";
        return;
      }
      this.state = "down";
      this.#resolveFirstStart(false); // no-op once the first start succeeded
      if (status.code === EXIT_PORT_IN_USE && this.options.freePort) {
        // Another process took our port while the worker was down: move, and tell nginx.
        this.listenPort = this.options.freePort();
        this.log(`${prefix}port taken; moving to port ${this.listenPort}`);
        await this.options.onPortChange?.(this.listenPort);
      }
      if (Date.now() - startedAt > HEALTHY_AFTER_MS) this.#backoffMs = MIN_BACKOFF_MS;
      const delay = this.#backoffMs;
      this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
      const why = reason === "memory"
        ? "over its memory limit"
        : reason === "boot"
        ? "failed to boot"
        : "exited";
      this.log(
        `${prefix}worker ${why} (code ${status.code}${status.signal ? `, ${status.signal}` : ""}); restarting in ${delay} ms`,
      );
      this.restarts++;
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        if (!this.#stopping) this.#spawn();
      }, delay);
    });
  }

  /** Stops the worker (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.state = "stopped";
    this.port = undefined;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#resolveFirstStart(false);
    this.#resolveStartAttempt(false);
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((r) => killTimer = setTimeout(() => r("timeout"), STOP_GRACE_MS));
    if ((await Promise.race([child.status, timedOut])) === "timeout") {
      try {
        child.kill("SIGKILL");
      } catch { /* gone meanwhile */ }
      await child.status;
    }
    clearTimeout(killTimer);
  }
}

/** Calls `onLine` for each line of a child's output stream; resolves when the stream closes. */
export function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  return (async () => {
    let pending = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        pending += text;
        let nl;
        while ((nl = pending.indexOf("\n")) >= 0) {
          onLine(pending.slice(0, nl).replace(/\r$/, ""));
          pending = pending.slice(nl + 1);
        }
      }
    } catch { /* the process went away */ }
    if (pending) onLine(pending);
  })();
}
