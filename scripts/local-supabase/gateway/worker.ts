// One function's long-lived process, as a worker of Supabase's edge runtime: imports the function's
// UNMODIFIED index.ts, captures the handler it gives to Deno.serve, and serves that handler on an
// ephemeral loopback port that it reports to the gateway on stdout.
//
// usage (by the gateway only): deno run -A --config deno.json scripts/local-supabase/gateway/worker.ts \
//   <entrypoint> <nonce> <function name>
import { pathToFileURL } from "node:url";

/** Prefix of the one stdout line telling the gateway where this worker listens. */
export const LISTENING_MARKER = "@@gateway-worker-listening";

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

async function main() {
  const [entrypoint, nonce, name] = Deno.args;
  if (!entrypoint || !nonce || !name) {
    console.error("usage: worker.ts <entrypoint> <nonce> <function name>");
    Deno.exit(2);
  }

  // If the gateway goes away for any reason (even SIGKILL), our stdin pipe closes: leave with it,
  // so that no orphaned worker keeps a port.
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) { /* the gateway never writes */ }
    } catch { /* closed */ }
    Deno.exit(0);
  })();

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
      try {
        const response = await handler(req, info);
        if (!(response instanceof Response)) throw new TypeError("the handler did not return a Response");
        return response;
      } catch (error) {
        const requestId = req.headers.get("x-request-id");
        // The stack goes to the log, never to the client.
        console.error(`request ${requestId} failed:`, error);
        if (options.onError) {
          try {
            return await options.onError(error);
          } catch (again) {
            console.error("onError failed too:", again);
          }
        }
        return internalError(requestId);
      }
    };
    // Whatever address the function asked for, it answers on a loopback port only the gateway uses.
    server = realServe({
      hostname: "127.0.0.1",
      port: 0,
      signal: options.signal,
      onListen: ({ port }: Deno.NetAddr) => console.log(`${LISTENING_MARKER} ${nonce} ${port}`),
    }, guarded);
    return server;
  };

  await import(pathToFileURL(entrypoint).href);
  if (!server) {
    console.error(`${entrypoint} did not call Deno.serve(handler) at top level`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
