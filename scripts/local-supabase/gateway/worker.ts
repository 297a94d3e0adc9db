// One function's long-lived process, as a worker of Supabase's edge runtime: imports the function's
// UNMODIFIED index.ts, captures the handler it gives to Deno.serve, and serves that handler on the
// loopback port nginx routes the function to. Its wrapper does what the hosted runtime does around
// a function: verify_jwt (before the handler runs), a JSON 500 for a handler that throws, and the
// memory limit (heap + external memory; V8's --max-old-space-size, set by the supervisor, stops a
// runaway heap even inside synchronous code).
//
// usage (by the gateway only): deno run -A --config deno.json --v8-flags=--max-old-space-size=<MB> \
//   scripts/local-supabase/gateway/worker.ts <entrypoint> <nonce> <function name> <port>
// and one JSON line (WorkerConfig) on stdin, which then stays open while the gateway lives.
import { pathToFileURL } from "node:url";
import { checkJwt, createJwtVerifier } from "./auth.ts";
import type { JSONWebKeySet } from "jose";

/** Prefix of the one stdout line telling the gateway that this worker listens. */
export const LISTENING_MARKER = "@@gateway-worker-listening";
/** Exit codes the supervisor reads: over the memory limit; the port was taken by another process. */
export const EXIT_MEMORY_LIMIT = 86;
export const EXIT_PORT_IN_USE = 75;
const MEMORY_CHECK_INTERVAL_MS = 100;

/** What the gateway tells its worker (on stdin: the JWT secret must never be in the function's env). */
export interface WorkerConfig {
  verifyJwt: boolean;
  /** Legacy HS256 secret and the project's JWKS (verify_jwt, as auth.ts checks them). */
  legacySecret?: string;
  jwks?: JSONWebKeySet;
  memoryLimitMb: number;
}

type Handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;
interface CapturedOptions {
  onError?: (error: unknown) => Response | Promise<Response>;
  signal?: AbortSignal;
}

/** Deno.serve(handler) | Deno.serve(options, handler) | Deno.serve({ ...options, handler }). */
export function captureServeArgs(args: unknown[]): { handler: Handler; options: CapturedOptions } {
  const [first, second] = args;
  if (typeof first === "function") return { handler: first as Handler, options: {} };
  if (first && typeof first === "object") {
    if (typeof second === "function") return { handler: second as Handler, options: first as CapturedOptions };
    const handler = (first as { handler?: unknown }).handler;
    if (typeof handler === "function") return { handler: handler as Handler, options: first as CapturedOptions };
  }
  throw new TypeError("Deno.serve: no handler function given");
}

function internalError(requestId: string | null): Response {
  return Response.json({ error: "internal_error", request_id: requestId }, {
    status: 500,
    headers: requestId ? { "x-request-id": requestId } : {},
  });
}

/** Reads the config line from stdin, then exits when stdin closes (the gateway is gone, even after SIGKILL). */
async function readConfigThenWatchStdin(exit: (code: number) => never): Promise<WorkerConfig> {
  const reader = Deno.stdin.readable.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) exit(0);
    text += decoder.decode(value, { stream: true });
  }
  (async () => {
    try {
      while (!(await reader.read()).done) { /* the gateway writes nothing more */ }
    } catch { /* closed */ }
    exit(0);
  })();
  return JSON.parse(text.slice(0, text.indexOf("\n")));
}

async function main() {
  const [entrypoint, nonce, name, port] = Deno.args;
  if (!entrypoint || !nonce || !name || !port) {
    console.error("usage: worker.ts <entrypoint> <nonce> <function name> <port>");
    Deno.exit(2);
  }
  // Kept before the function can replace Deno.exit.
  const exit = Deno.exit.bind(Deno) as (code: number) => never;
  const config = await readConfigThenWatchStdin(exit);
  const verifier = config.verifyJwt
    ? createJwtVerifier({ legacySecret: config.legacySecret, jwks: config.jwks })
    : undefined;

  // As the hosted runtime, a worker over its memory limit is ended (the gateway answers 546).
  const limitBytes = config.memoryLimitMb * 1024 * 1024;
  const memoryCheck = setInterval(() => {
    const { heapUsed, external } = Deno.memoryUsage();
    if (heapUsed + external > limitBytes) {
      console.error(
        `memory limit exceeded: heap ${(heapUsed / 2 ** 20).toFixed(0)} MB + external ${
          (external / 2 ** 20).toFixed(0)
        } MB > ${config.memoryLimitMb} MB; ending the worker`,
      );
      exit(EXIT_MEMORY_LIMIT);
    }
  }, MEMORY_CHECK_INTERVAL_MS);
  Deno.unrefTimer(memoryCheck);

  // Hosted Supabase logs a stray rejection or error and keeps the worker; so do we.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error("unhandled rejection:", event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    console.error("uncaught error:", event.error);
  });

  // Supabase's runtime global for background work that outlives the response; here the worker
  // is long-lived anyway, so the promise just runs on (its failure is logged).
  (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime ??= {
    waitUntil(promise: Promise<unknown>) {
      Promise.resolve(promise).catch((error) => console.error("EdgeRuntime.waitUntil task failed:", error));
    },
  };

  const realServe = Deno.serve.bind(Deno) as (...args: unknown[]) => Deno.HttpServer;
  let server: Deno.HttpServer | undefined;
  (Deno as { serve: unknown }).serve = (...args: unknown[]) => {
    if (server) throw new Error("Deno.serve was called twice: a Supabase function serves one handler");
    const { handler, options } = captureServeArgs(args);
    const guarded: Handler = async (req, info) => {
      // nginx always sets it (the client's when sane, else its own). Read only when needed: Deno
      // builds a request's Headers lazily, and most requests never need them here.
      const requestId = () => req.headers.get("x-request-id");
      // verify_jwt, before the function runs; CORS preflights pass without a token (browsers send
      // none), as in the Supabase CLI's runtime.
      if (verifier && req.method !== "OPTIONS") {
        const check = await checkJwt(req.headers.get("authorization"), verifier, requestId() ?? "");
        if (!check.ok) return check.response;
      }
      try {
        const response = await handler(req, info);
        if (!(response instanceof Response)) throw new TypeError("the handler did not return a Response");
        return response;
      } catch (error) {
        // The stack goes to the log, never to the client.
        console.error(`request ${requestId()} failed:`, error);
        if (options.onError) {
          try {
            return await options.onError(error);
          } catch (again) {
            console.error("onError failed too:", again);
          }
        }
        return internalError(requestId());
      }
    };
    // Whatever address the function asked for, it answers on the loopback port nginx uses.
    try {
      server = realServe({
        hostname: "127.0.0.1",
        port: Number(port),
        signal: options.signal,
        onListen: ({ port }: Deno.NetAddr) => console.log(`${LISTENING_MARKER} ${nonce} ${port}`),
      }, guarded);
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) {
        console.error(`port ${port} is taken by another process`);
        exit(EXIT_PORT_IN_USE);
      }
      throw error;
    }
    return server;
  };

  try {
    await import(pathToFileURL(entrypoint).href);
  } catch (error) {
    // The gateway answers 503 BOOT_ERROR meanwhile, as the hosted runtime does.
    console.error(`${entrypoint} failed to boot:`, error);
    exit(1);
  }
  if (!server) {
    console.error(`${entrypoint} did not call Deno.serve(handler) at top level`);
    exit(1);
  }
}

if (import.meta.main) await main();
