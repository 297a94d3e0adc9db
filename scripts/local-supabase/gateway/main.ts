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
// FUNCTIONS_PUBLIC_URL (the public base URL providers call and sign; default ${SUPABASE_URL}/functions/v1),
// GATEWAY_REQUEST_TIMEOUT_MS (150000), GATEWAY_MEMORY_LIMIT_MB (256).
//
// Processes: nginx listens and routes each function's requests to that function's own long-lived
// Deno process (worker.ts: verify_jwt, then the function), which has only its env files' values and
// the platform's SUPABASE_* values. This process supervises the workers and nginx, runs the pg_net
// worker, and answers what needs the workers' state (its "control server", reached by nginx only).
// Prints `gateway ready http://HOST:PORT` once every worker has started, then nginx writes one line
// per request on stdout; worker output and nginx's errors go to stderr.
import {
  buildWorkerEnv,
  discoverFunctions,
  type FunctionSource,
  type FunctionSpec,
  loadEnvFiles,
  parseGatewayArgs,
} from "./config.ts";
import { assertPublicJwks } from "./auth.ts";
import type { JSONWebKeySet } from "jose";
import { forEachLine, FunctionWorker, START_TIMEOUT_MS } from "./supervisor.ts";
import { WorkerProxy, WorkerTimeout, WorkerUnreachable, worthBuffering } from "./proxy.ts";
import {
  FUNCTION_NAME,
  type NginxSettings,
  spawnNginx,
  TIMEOUT_BODY,
  waitForListen,
  writeNginxConfig,
} from "./nginx.ts";
import { type NetWorker, startNetWorker } from "../pg_net/worker.ts";

/** Where GoTrue publishes the project's JWKS; functions and clients fetch it from here. */
export const JWKS_PATH = "/auth/v1/.well-known/jwks.json";

/** Hosted limits (Supabase docs, "functions/limits"): request idle timeout and worker memory. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 150_000;
export const DEFAULT_MEMORY_LIMIT_MB = 256;

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
  /** Legacy HS256 JWT secret: verify_jwt only (in the workers' wrapper), never passed to functions. */
  jwtSecret?: string;
  /** The project's JWKS (public keys): verify_jwt for ES256/RS256, served, passed to functions. */
  jwks?: JSONWebKeySet;
  publishableKey?: string;
  secretKey?: string;
  functionsPublicUrl?: string;
  /** A function that sends nothing for this long gets 504 (hosted: 150 s). */
  requestTimeoutMs?: number;
  /** Each worker's heap + external memory limit; over it the worker ends and the request gets 546 (hosted: 256). */
  memoryLimitMb?: number;
  /** One line per request. Default: nginx writes them to this process's stdout. */
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

/**
 * The hosted runtime's answers when a worker cannot serve (supabase/cli
 * apps/cli-go/internal/functions/serve/templates/main.ts): status, code and message as there.
 */
export const HOSTED_ERRORS = {
  BOOT_ERROR: { status: 503, message: "Worker failed to boot (please check logs)" },
  WORKER_ERROR: { status: 500, message: "Function exited due to an error (please check logs)" },
  WORKER_LIMIT: { status: 546, message: "Worker failed to respond due to a resource limit (please check logs)" },
} as const;

function hostedError(code: keyof typeof HOSTED_ERRORS, requestId: string): Response {
  const { status, message } = HOSTED_ERRORS[code];
  return Response.json({ code, message }, { status, headers: { "x-request-id": requestId } });
}

/** Path and raw query of the request target, untouched (no URL parsing: it would normalise them). */
function splitTarget(url: string): { path: string; query: string | undefined } {
  const afterScheme = url.indexOf("://");
  const slash = url.indexOf("/", afterScheme < 0 ? 0 : afterScheme + 3);
  const target = slash < 0 ? "/" : url.slice(slash);
  const q = target.indexOf("?");
  return q < 0 ? { path: target, query: undefined } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

function freePort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${what} must be a positive integer, got ${value}`);
  return value;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? ((line: string) => console.error(line));
  const hostname = options.hostname ?? "127.0.0.1";
  const requestTimeoutMs = positiveInteger(options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, "request timeout");
  const memoryLimitMb = positiveInteger(options.memoryLimitMb ?? DEFAULT_MEMORY_LIMIT_MB, "memory limit");

  const specs = new Map<string, FunctionSpec>();
  for (const source of options.functionSources) {
    for (const spec of await discoverFunctions(source)) {
      const clash = specs.get(spec.name);
      if (clash) {
        throw new Error(`function "${spec.name}" is defined twice: ${clash.entrypoint} and ${spec.entrypoint}`);
      }
      if (!FUNCTION_NAME.test(spec.name)) {
        throw new Error(`"${spec.name}" is not a valid function name (a letter, then letters, digits, - or _)`);
      }
      specs.set(spec.name, spec);
    }
  }
  const needsJwt = [...specs.values()].some((s) => s.verifyJwt);
  if (options.jwks) assertPublicJwks(options.jwks);
  if (needsJwt && !options.jwtSecret && !options.jwks?.keys.length) {
    throw new Error("SUPABASE_JWKS or SUPABASE_JWT_SECRET is required: some functions have verify_jwt = true");
  }
  const jwksBody = JSON.stringify(options.jwks ?? { keys: [] });
  const dotenv = await loadEnvFiles(options.envFiles ?? []);

  const proxy = new WorkerProxy();
  const workers = new Map<string, FunctionWorker>();
  const shutdown = new AbortController();

  /** Why a worker failed a request it had taken, in the hosted runtime's words. */
  async function workerFailed(worker: FunctionWorker | undefined, requestId: string): Promise<Response> {
    const exit = await worker?.failureOf();
    return hostedError(exit?.reason === "memory" ? "WORKER_LIMIT" : "WORKER_ERROR", requestId);
  }

  // The control server: nginx sends here (a) a request whose worker refused the connection (it is
  // restarting, failed to boot, or nginx raced a restart), as the upstream's backup server, with
  // the same request target and headers; (b) GET /_gateway/worker-failed/<name> when a worker
  // failed a request it had taken (nginx's 502); (c) the JWKS path.
  async function control(req: Request): Promise<Response> {
    const requestId = req.headers.get("x-request-id") ?? crypto.randomUUID();
    const { path, query } = splitTarget(req.url);
    try {
      if (path === JWKS_PATH) {
        if (req.method !== "GET" && req.method !== "HEAD") {
          return Response.json({ code: "NOT_FOUND", message: "Only /functions/v1/<name> is served here", request_id: requestId }, {
            status: 404,
            headers: { "x-request-id": requestId },
          });
        }
        return new Response(req.method === "HEAD" ? null : jwksBody, {
          headers: { "content-type": "application/json", "x-request-id": requestId },
        });
      }
      const failed = /^\/_gateway\/worker-failed\/([^/]+)$/.exec(path);
      if (failed) return await workerFailed(workers.get(failed[1]), requestId);
      const name = path.split("/")[1] ?? "";
      const worker = workers.get(name);
      if (!worker) {
        return Response.json({ code: "NOT_FOUND", message: "Requested function was not found", request_id: requestId }, {
          status: 404,
          headers: { "x-request-id": requestId },
        });
      }
      // A crashed worker boots again for this request, as the hosted runtime boots a new worker;
      // one whose boot failed answers BOOT_ERROR until its code changes (restarts in the background).
      if (worker.state === "down") worker.restartNow();
      if (!(await worker.whenUp(START_TIMEOUT_MS)) || worker.port === undefined) {
        return hostedError("BOOT_ERROR", requestId);
      }
      const bufferedBody = req.body && worthBuffering(req.headers)
        ? new Uint8Array(await req.arrayBuffer())
        : undefined;
      const forward = (port: number) =>
        proxy.forward({
          port,
          method: req.method,
          target: `${path}${query === undefined ? "" : `?${query}`}`,
          headers: req.headers,
          extraHeaders: {},
          body: bufferedBody ? null : req.body,
          bufferedBody,
          signal: shutdown.signal,
          timeoutMs: requestTimeoutMs,
        });
      try {
        try {
          return await forward(worker.port);
        } catch (error) {
          // The worker died a moment ago and its exit is not seen yet: nothing reached it, so once
          // it is back this request can go to the new one.
          if (!(error instanceof WorkerUnreachable && error.refused && (bufferedBody || !req.body))) throw error;
          await worker.failureOf();
          worker.restartNow();
          if (!(await worker.whenUp(START_TIMEOUT_MS)) || worker.port === undefined) {
            return hostedError("BOOT_ERROR", requestId);
          }
          return await forward(worker.port);
        }
      } catch (error) {
        if (error instanceof WorkerTimeout) {
          return Response.json(TIMEOUT_BODY, { status: 504, headers: { "x-request-id": requestId } });
        }
        if (!(error instanceof WorkerUnreachable)) throw error;
        log(`[gateway] request ${requestId} to ${name}: worker unreachable: ${error.message}`);
        return await workerFailed(worker, requestId);
      }
    } catch (error) {
      log(`[gateway] request ${requestId} failed: ${(error as Error).stack ?? error}`);
      return Response.json({ error: "gateway_error", request_id: requestId }, {
        status: 500,
        headers: { "x-request-id": requestId },
      });
    }
  }

  let controlListening!: (addr: Deno.NetAddr) => void;
  const controlListened = new Promise<Deno.NetAddr>((r) => controlListening = r);
  const controlServer = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: shutdown.signal,
    onListen: (addr) => controlListening(addr as Deno.NetAddr),
  }, control);
  const controlPort = (await controlListened).port;

  const port = options.port === 0 ? freePort(hostname) : options.port ?? 54321;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
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

  const runDir = await Deno.makeTempDir({ prefix: "c-secur360-gateway-" });
  // nginx's worker process (an unprivileged user when we are root) keeps large request bodies in
  // temp folders under it. It holds no secret: the config has ports and paths only.
  await Deno.chmod(runDir, 0o755);
  let nginx: Deno.ChildProcess | undefined;
  let nginxOutput: Promise<unknown> = Promise.resolve();
  const nginxSettings = (): NginxSettings => ({
    hostname,
    port,
    controlPort,
    functions: [...workers.values()].map((w) => ({ name: w.spec.name, port: w.listenPort })),
    requestTimeoutMs,
    runDir,
  });
  /** A worker moved to another port: new config, then nginx reloads it gracefully (SIGHUP). */
  const reloadNginx = async () => {
    await writeNginxConfig(nginxSettings());
    try {
      nginx?.kill("SIGHUP");
    } catch { /* stopped */ }
  };

  let netWorker: NetWorker | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      if (nginx) {
        try {
          nginx.kill("SIGTERM");
        } catch { /* already gone */ }
        await nginx.status;
        await nginxOutput;
      }
      shutdown.abort();
      await Promise.all([...workers.values()].map((w) => w.stop()));
      await netWorker?.close();
      await controlServer.finished;
      proxy.close();
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    })();

  try {
    if (options.netWorker ?? true) {
      if (!options.dbUrl) throw new Error("SUPABASE_DB_URL is required for the net worker (or pass --no-net-worker)");
      netWorker = await startNetWorker({ dbUrl: options.dbUrl, log }).catch((error) => {
        throw new Error(`net worker: cannot LISTEN on SUPABASE_DB_URL's database: ${error.message}`);
      });
    }
    for (const spec of specs.values()) {
      workers.set(
        spec.name,
        new FunctionWorker(spec, workerEnv, log, {
          port: freePort("127.0.0.1"),
          memoryLimitMb,
          config: spec.verifyJwt
            ? { verifyJwt: true, legacySecret: options.jwtSecret, jwks: options.jwks }
            : { verifyJwt: false },
          freePort: () => freePort("127.0.0.1"),
          onPortChange: reloadNginx,
        }),
      );
    }
    const started = await Promise.all([...workers.values()].map((w) => w.start()));
    const failed = [...workers.keys()].filter((_, i) => !started[i]);
    if (failed.length) log(`[gateway] WARNING: failed to start (retrying in the background): ${failed.join(", ")}`);

    const configFile = await writeNginxConfig(nginxSettings());
    nginx = spawnNginx(configFile, runDir, !options.requestLog);
    const outputs = [forEachLine(nginx.stderr, (line) => log(`[nginx] ${line}`))];
    if (options.requestLog) outputs.push(forEachLine(nginx.stdout, options.requestLog));
    nginxOutput = Promise.all(outputs);
    const probeHost = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "::1" : hostname;
    await waitForListen(probeHost, port, nginx);
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
  const optionalNumber = (name: string) => env(name) === undefined ? undefined : Number(env(name));
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
      requestTimeoutMs: optionalNumber("GATEWAY_REQUEST_TIMEOUT_MS"),
      memoryLimitMb: optionalNumber("GATEWAY_MEMORY_LIMIT_MB"),
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
