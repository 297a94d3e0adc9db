// Keeps one function's worker process alive: spawns scripts/local-supabase/gateway/worker.ts with the function's
// own environment only, learns its loopback port, forwards its output to the log, and restarts it
// (with backoff) when it dies.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FunctionSpec } from "./config.ts";
import { LISTENING_MARKER } from "./worker.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..", "..");
/** Workers resolve bare specifiers through the root deno.json (its import map), as deployed code does. */
const DENO_CONFIG = join(REPO_ROOT, "deno.json");
const WORKER_SCRIPT = join(HERE, "worker.ts");

/** A first start may download npm packages into the cache; later starts take well under a second. */
const START_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 3_000;
const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5_000;
/** A worker that stayed up this long is healthy again: its next crash restarts it quickly. */
const HEALTHY_AFTER_MS = 30_000;

export type WorkerState = "starting" | "up" | "down" | "stopped";

export class FunctionWorker {
  state: WorkerState = "starting";
  /** Loopback port of the running worker; undefined while it is not up. */
  port: number | undefined;
  restarts = 0;
  #child: Deno.ChildProcess | undefined;
  #backoffMs = MIN_BACKOFF_MS;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #firstStart: Promise<boolean>;
  #resolveFirstStart!: (up: boolean) => void;

  constructor(
    readonly spec: FunctionSpec,
    private readonly env: Record<string, string>,
    private readonly log: (line: string) => void,
  ) {
    this.#firstStart = new Promise((r) => this.#resolveFirstStart = r);
  }

  /** Starts the worker; resolves true once it listens, false if its first start failed. */
  start(): Promise<boolean> {
    this.#spawn();
    return this.#firstStart;
  }

  #spawn() {
    this.state = "starting";
    this.port = undefined;
    const nonce = crypto.randomUUID();
    const startedAt = Date.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "--config",
        DENO_CONFIG,
        WORKER_SCRIPT,
        this.spec.entrypoint,
        nonce,
        this.spec.name,
      ],
      cwd: REPO_ROOT,
      env: this.env,
      clearEnv: true, // the function sees its own env, never the gateway's (JWT secret, DB password...)
      stdin: "piped", // never written: its closing tells the worker that the gateway is gone
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;

    const startTimer = setTimeout(() => {
      this.log(`[${this.spec.name}] worker did not listen within ${START_TIMEOUT_MS} ms; killing it`);
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, START_TIMEOUT_MS);

    const prefix = `[${this.spec.name}] `;
    forEachLine(child.stdout, (line) => {
      // Not startsWith: the function may have written to stdout without a newline before it.
      const marker = line.indexOf(`${LISTENING_MARKER} ${nonce} `);
      if (marker >= 0) {
        if (marker > 0) this.log(prefix + line.slice(0, marker));
        clearTimeout(startTimer);
        this.port = Number(line.slice(marker + LISTENING_MARKER.length + nonce.length + 2));
        this.state = "up";
        this.log(`${prefix}worker up (pid ${child.pid}, port ${this.port})`);
        this.#resolveFirstStart(true);
      } else {
        this.log(prefix + line);
      }
    });
    forEachLine(child.stderr, (line) => this.log(prefix + line));

    child.status.then((status) => {
      clearTimeout(startTimer);
      try {
        child.stdin.close();
      } catch { /* already closed */ }
      if (this.#child === child) this.#child = undefined;
      this.port = undefined;
      if (this.#stopping) {
        this.state = "stopped";
        return;
      }
      this.state = "down";
      this.#resolveFirstStart(false); // no-op once the first start succeeded
      if (Date.now() - startedAt > HEALTHY_AFTER_MS) this.#backoffMs = MIN_BACKOFF_MS;
      const delay = this.#backoffMs;
      this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
      this.log(
        `${prefix}worker exited (code ${status.code}${
          status.signal ? `, ${status.signal}` : ""
        }); restarting in ${delay} ms`,
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

/** Calls `onLine` for each line of a child's output stream, until it closes. */
function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): void {
  (async () => {
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
