// The local functions gateway: http://<GATEWAY_HOST>:<GATEWAY_PORT>/functions/v1/<name>, emulating
// Supabase's edge gateway + edge runtime for supabase/functions/<name>/index.ts files, unmodified.
//
//   deno run -A scripts/local-supabase/gateway/main.ts [--functions <dir>=<config.toml>]... [--env-file <path>]... \
//     [--no-net-worker]
//
// Defaults: --functions supabase/functions=supabase/config.toml, and --env-file
// supabase/functions/.env when it exists (later env files win). Read from the gateway's env:
// GATEWAY_HOST (127.0.0.1), GATEWAY_PORT (54321), SUPABASE_URL (http://HOST:PORT), SUPABASE_DB_URL,
// SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET (legacy), SUPABASE_PUBLISHABLE_KEY,
// SUPABASE_SECRET_KEY, SUPABASE_JWKS (public keys; served at /auth/v1/.well-known/jwks.json),
// FUNCTIONS_PUBLIC_URL (the public base URL providers call and sign; default ${SUPABASE_URL}/functions/v1).
//
// Each function runs in its own long-lived Deno process (scripts/local-supabase/gateway/worker.ts) with only its
// env files' values and the platform's SUPABASE_* values. Prints `gateway ready http://HOST:PORT`
// once every worker has started, then one line per request on stdout; worker output goes to stderr.
import {
  buildWorkerEnv,
  discoverFunctions,
  type FunctionSource,
  type FunctionSpec,
  loadEnvFiles,
  parseGatewayArgs,
} from "./config.ts";
import { assertPublicJwks, checkJwt, createJwtVerifier } from "./auth.ts";
import type { JSONWebKeySet } from "jose";
import { FunctionWorker } from "./supervisor.ts";
import { WorkerProxy, WorkerUnreachable, worthBuffering } from "./proxy.ts";
import { type NetWorker, startNetWorker } from "../pg_net/worker.ts";

export interface GatewayOptions {
  hostname?: string;
  /** 0 picks a free port. */
  port?: number;
  functionSources: FunctionSource[];
  envFiles?: string[];
  /** Run the local pg_net executor against dbUrl (default true). */
  netWorker?: boolean;
  supabaseUrl?: string;
  dbUrl?: string;
  anonKey?: string;
  serviceRoleKey?: string;
  /** Legacy HS256 JWT secret: verify_jwt only, never passed to functions. */
  jwtSecret?: string;
  /** The project's JWKS (public keys): verify_jwt for ES256/RS256, served, passed to functions. */
  jwks?: JSONWebKeySet;
  publishableKey?: string;
  secretKey?: string;
  functionsPublicUrl?: string;
  /** One line per request. Default: stdout. */
  requestLog?: (line: string) => void;
  /** Workers' output and the gateway's own messages. Default: stderr. */
  log?: (line: string) => void;
}

export interface Gateway {
  /** http://HOST:PORT (no trailing slash). */
  url: string;
  functions: ReadonlyMap<string, FunctionWorker>;
  close(): Promise<void>;
}

const FUNCTIONS_PREFIX = "/functions/v1/";
/** Where GoTrue publishes the project's JWKS; functions and clients fetch it from here. */
const JWKS_PATH = "/auth/v1/.well-known/jwks.json";

function jsonError(status: number, body: Record<string, unknown>, requestId: string, extra: HeadersInit = {}) {
  const headers = new Headers(extra);
  headers.set("x-request-id", requestId);
  return Response.json({ ...body, request_id: requestId }, { status, headers });
}

/** Keeps a client's request id when it is a sane token, so logs on both sides correlate. */
function requestIdFrom(headers: Headers): string {
  const given = headers.get("x-request-id");
  return given && /^[\x21-\x7e]{1,200}$/.test(given) ? given : crypto.randomUUID();
}

/** Path and raw query of the request target, untouched (no URL parsing: it would normalise them). */
function splitTarget(url: string): { path: string; query: string | undefined } {
  const afterScheme = url.indexOf("://");
  const slash = url.indexOf("/", afterScheme < 0 ? 0 : afterScheme + 3);
  const target = slash < 0 ? "/" : url.slice(slash);
  const q = target.indexOf("?");
  return q < 0 ? { path: target, query: undefined } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? ((line: string) => console.error(line));
  const requestLog = options.requestLog ?? ((line: string) => console.log(line));
  const hostname = options.hostname ?? "127.0.0.1";

  const specs = new Map<string, FunctionSpec>();
  for (const source of options.functionSources) {
    for (const spec of await discoverFunctions(source)) {
      const clash = specs.get(spec.name);
      if (clash) {
        throw new Error(`function "${spec.name}" is defined twice: ${clash.entrypoint} and ${spec.entrypoint}`);
      }
      specs.set(spec.name, spec);
    }
  }
  const needsJwt = [...specs.values()].some((s) => s.verifyJwt);
  if (options.jwks) assertPublicJwks(options.jwks);
  if (needsJwt && !options.jwtSecret && !options.jwks?.keys.length) {
    throw new Error("SUPABASE_JWKS or SUPABASE_JWT_SECRET is required: some functions have verify_jwt = true");
  }
  const verifier = createJwtVerifier({ legacySecret: options.jwtSecret, jwks: options.jwks });
  const jwksBody = JSON.stringify(options.jwks ?? { keys: [] });
  const dotenv = await loadEnvFiles(options.envFiles ?? []);

  const proxy = new WorkerProxy();
  const workers = new Map<string, FunctionWorker>();
  const shutdown = new AbortController();

  async function handle(req: Request): Promise<Response> {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers);
    const { path, query } = splitTarget(req.url);
    let functionName = "-";
    let response: Response;
    try {
      response = await route();
    } catch (error) {
      log(`[gateway] request ${requestId} failed: ${(error as Error).stack ?? error}`);
      response = jsonError(500, { error: "gateway_error" }, requestId);
    }
    const ms = (performance.now() - started).toFixed(1);
    requestLog(
      `${new Date().toISOString()} ${requestId} ${req.method} ${path} ${response.status} ${ms}ms ${functionName}`,
    );
    return response;

    async function route(): Promise<Response> {
      if (path === JWKS_PATH && (req.method === "GET" || req.method === "HEAD")) {
        return new Response(req.method === "HEAD" ? null : jwksBody, {
          headers: { "content-type": "application/json", "x-request-id": requestId },
        });
      }
      if (!path.startsWith(FUNCTIONS_PREFIX)) {
        return jsonError(404, { code: "NOT_FOUND", message: "Only /functions/v1/<name> is served here" }, requestId);
      }
      const rest = path.slice(FUNCTIONS_PREFIX.length);
      const name = rest.split("/", 1)[0];
      const worker = workers.get(name);
      if (!worker) {
        return jsonError(404, { code: "NOT_FOUND", message: "Requested function was not found" }, requestId);
      }
      functionName = name;
      // Like the Supabase CLI's runtime, CORS preflights pass without a JWT (browsers send none).
      if (worker.spec.verifyJwt && req.method !== "OPTIONS") {
        const check = await checkJwt(req.headers.get("authorization"), verifier, requestId);
        if (!check.ok) return check.response;
      }
      // Small sized bodies are read whole first: one write to the worker instead of a JS stream pump.
      const bufferedBody = req.body && worthBuffering(req.headers)
        ? new Uint8Array(await req.arrayBuffer())
        : undefined;
      if (worker.port === undefined) {
        return jsonError(
          503,
          {
            error: "function_unavailable",
            message: `Function "${name}" is ${worker.state === "stopped" ? "stopped" : "restarting"}; retry shortly`,
          },
          requestId,
          { "retry-after": "1" },
        );
      }
      const extraHeaders: Record<string, string> = { "x-request-id": requestId };
      // Behind a tunnel these already say what the provider called: keep them.
      const host = req.headers.get("host");
      if (host !== null && !req.headers.has("x-forwarded-host")) extraHeaders["x-forwarded-host"] = host;
      if (!req.headers.has("x-forwarded-proto")) extraHeaders["x-forwarded-proto"] = "http";
      try {
        // The function sees /<name>/<rest>?<raw query>, as on hosted Supabase.
        const upstream = await proxy.forward({
          port: worker.port,
          method: req.method,
          target: `/${rest}${query === undefined ? "" : `?${query}`}`,
          headers: req.headers,
          extraHeaders,
          body: bufferedBody ? null : req.body,
          bufferedBody,
          // Not req.signal: a client going away cancels the streams instead (Deno.serve's
          // req.signal also fires after every successful response).
          signal: shutdown.signal,
        });
        upstream.headers.set("x-request-id", requestId);
        return upstream;
      } catch (error) {
        if (!(error instanceof WorkerUnreachable)) throw error;
        log(`[gateway] request ${requestId} to ${name}: worker unreachable: ${error.message}`);
        return jsonError(502, {
          error: "function_unreachable",
          message: `Function "${name}" did not answer (its worker stopped or crashed)`,
        }, requestId);
      }
    }
  }

  let listening!: (addr: Deno.NetAddr) => void;
  const listened = new Promise<Deno.NetAddr>((r) => listening = r);
  const server = Deno.serve({
    hostname,
    port: options.port ?? 54321,
    signal: shutdown.signal,
    onListen: (addr) => listening(addr as Deno.NetAddr),
  }, handle);
  const addr = await listened;
  const url = `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`;

  const supabaseUrl = options.supabaseUrl || url;
  const workerEnv = buildWorkerEnv(
    dotenv,
    {
      SUPABASE_URL: supabaseUrl,
      SUPABASE_ANON_KEY: options.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: options.serviceRoleKey,
      SUPABASE_DB_URL: options.dbUrl,
      FUNCTIONS_PUBLIC_URL: options.functionsPublicUrl,
      SUPABASE_PUBLISHABLE_KEY: options.publishableKey,
      SUPABASE_SECRET_KEY: options.secretKey,
      SUPABASE_JWKS: options.jwks ? jwksBody : undefined,
    },
    undefined,
    log,
  );

  let netWorker: NetWorker | undefined;
  const close = async () => {
    shutdown.abort();
    await Promise.all([...workers.values()].map((w) => w.stop()));
    await netWorker?.close();
    await server.finished;
    proxy.close();
  };

  try {
    if (options.netWorker ?? true) {
      if (!options.dbUrl) throw new Error("SUPABASE_DB_URL is required for the net worker (or pass --no-net-worker)");
      netWorker = await startNetWorker({ dbUrl: options.dbUrl, log }).catch((error) => {
        throw new Error(`net worker: cannot LISTEN on SUPABASE_DB_URL's database: ${error.message}`);
      });
    }
    for (const spec of specs.values()) workers.set(spec.name, new FunctionWorker(spec, workerEnv, log));
    const started = await Promise.all([...workers.values()].map((w) => w.start()));
    const failed = [...workers.keys()].filter((_, i) => !started[i]);
    if (failed.length) log(`[gateway] WARNING: failed to start (retrying in the background): ${failed.join(", ")}`);
  } catch (error) {
    await close();
    throw error;
  }
  return { url, functions: workers, close };
}

function parseJwksEnv(text: string | undefined): JSONWebKeySet | undefined {
  if (text === undefined) return undefined;
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new Error("SUPABASE_JWKS is not valid JSON");
  }
  assertPublicJwks(jwks);
  return jwks;
}

if (import.meta.main) {
  const env = (name: string) => Deno.env.get(name) || undefined;
  let gateway: Gateway;
  try {
    const args = await parseGatewayArgs(Deno.args);
    gateway = await startGateway({
      hostname: env("GATEWAY_HOST") ?? "127.0.0.1",
      port: Number(env("GATEWAY_PORT") ?? 54321),
      functionSources: args.functionSources,
      envFiles: args.envFiles,
      netWorker: args.netWorker,
      supabaseUrl: env("SUPABASE_URL"),
      dbUrl: env("SUPABASE_DB_URL"),
      anonKey: env("SUPABASE_ANON_KEY"),
      serviceRoleKey: env("SUPABASE_SERVICE_ROLE_KEY"),
      jwtSecret: env("SUPABASE_JWT_SECRET"),
      jwks: parseJwksEnv(env("SUPABASE_JWKS")),
      publishableKey: env("SUPABASE_PUBLISHABLE_KEY"),
      secretKey: env("SUPABASE_SECRET_KEY"),
      functionsPublicUrl: env("FUNCTIONS_PUBLIC_URL"),
    });
  } catch (error) {
    console.error(`gateway: ${(error as Error).message}`);
    Deno.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gateway.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  console.log(`gateway ready ${gateway.url}`);
}
