// The local stack: PostgreSQL 15 with the Supabase bootstrap and our migrations, and the functions
// gateway (with the pg_net worker). `npm start` runs it in the foreground; `npm run stack -- <cmd>`
// manages it in the background.
//
//   start   foreground: bring everything up, print URLs and keys, log requests; Ctrl-C stops all
//   up      the same, in the background (gateway log in .stack/gateway.log)
//   down    stop the gateway and the database
//   status  what is running, and where
//   reset   down, delete the local database, up again (bootstrap + migrations + seed)
//   env     dotenv lines for a shell or a test: URLs, keys, and every provider setting
//   token   a signed user session token: token --user <uuid> [--role …] [--expires 1h] [--email …]
import { join } from "node:path";
import {
  type Cluster,
  clusterAt,
  exists,
  initCluster,
  isRunning,
  prepareDatabase,
  REPO_ROOT,
  resolveHome,
  run,
  startCluster,
  stopCluster,
} from "./local-supabase/cluster.ts";
import { gatewayDenoArgs, loadOrCreateFunctionsEnv, toDotenv } from "./local-supabase/local-config.ts";
import {
  loadOrCreateStackKeys,
  mintUserSessionToken,
  parseTokenArgs,
  type StackKeys,
  TOKEN_USAGE,
  UsageError,
} from "./local-supabase/keys.ts";

// STACK_STATE_DIR: another stack's state (e.g. the test runner's, for `token`).
const STATE_DIR = Deno.env.get("STACK_STATE_DIR") || join(REPO_ROOT, ".stack");
const GATEWAY_PID_FILE = join(STATE_DIR, "gateway.pid");
const GATEWAY_LOG_FILE = join(STATE_DIR, "gateway.log");
// Ports from supabase/config.toml ([api] port, [db] port), as `supabase start` would use.
const API_PORT = Number(Deno.env.get("STACK_API_PORT") ?? 54321);
const DB_PORT = Number(Deno.env.get("STACK_DB_PORT") ?? 54322);

interface Stack {
  cluster: Cluster;
  keys: StackKeys;
  apiUrl: string;
}

async function describe(): Promise<Stack> {
  await Deno.mkdir(STATE_DIR, { recursive: true });
  const home = await resolveHome(join(STATE_DIR, "db"));
  const cluster = clusterAt(home, DB_PORT);
  const keys = await loadOrCreateStackKeys(STATE_DIR);
  return { cluster, keys, apiUrl: `http://127.0.0.1:${API_PORT}` };
}

function stackEnv(s: Stack): Record<string, string> {
  return {
    SUPABASE_URL: s.apiUrl,
    SUPABASE_DB_URL: s.cluster.url,
    SUPABASE_PUBLISHABLE_KEY: s.keys.publishableKey,
    SUPABASE_SECRET_KEY: s.keys.secretKey,
    SUPABASE_JWKS: JSON.stringify(s.keys.jwks),
    // Legacy JWT-based keys (hosted retires them by the end of 2026) and their secret.
    SUPABASE_ANON_KEY: s.keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: s.keys.serviceRoleKey,
    SUPABASE_JWT_SECRET: s.keys.legacyJwtSecret,
    FUNCTIONS_URL: `${s.apiUrl}/functions/v1`,
  };
}

async function portIsFree(port: number): Promise<boolean> {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function gatewayPid(): Promise<number | null> {
  try {
    const pid = Number((await Deno.readTextFile(GATEWAY_PID_FILE)).trim());
    return pid > 0 && pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Database up, bootstrapped and migrated; seeded the first time only (a restart keeps the data). */
async function databaseUp(s: Stack): Promise<void> {
  const fresh = await initCluster(s.cluster, { durable: true });
  if (!(await isRunning(s.cluster))) {
    if (!(await portIsFree(DB_PORT))) {
      throw new Error(`port ${DB_PORT} is taken by another program (set STACK_DB_PORT to use another one)`);
    }
    await startCluster(s.cluster);
  }
  for (const step of await prepareDatabase(s.cluster, { seed: fresh })) console.log(`  db: ${step}`);
}

function gatewayEnv(s: Stack): Record<string, string> {
  return { ...stackEnv(s), GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: String(API_PORT) };
}

function foregroundGateway(s: Stack): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: gatewayDenoArgs(),
    cwd: REPO_ROOT,
    env: gatewayEnv(s),
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  });
}

function banner(s: Stack): void {
  const e = stackEnv(s);
  console.log(`
C-Secur360 local stack is up.
  Functions   ${e.FUNCTIONS_URL}/<name>
  Database    ${e.SUPABASE_DB_URL}
  JWKS        ${e.SUPABASE_URL}/auth/v1/.well-known/jwks.json
  Publishable ${e.SUPABASE_PUBLISHABLE_KEY}
  Secret      ${e.SUPABASE_SECRET_KEY}
  User token  npm run stack -- token --user <uuid>
  Legacy anon key          ${e.SUPABASE_ANON_KEY}
  Legacy service_role key  ${e.SUPABASE_SERVICE_ROLE_KEY}
  Legacy JWT secret        ${e.SUPABASE_JWT_SECRET}
  Settings    supabase/functions/.env   (npm run stack -- env prints everything)
`);
}

async function start(): Promise<void> {
  if (await gatewayPid()) {
    throw new Error("the stack already runs in the background: `npm run stack -- down` first");
  }
  if (!(await portIsFree(API_PORT))) throw new Error(`port ${API_PORT} is taken (set STACK_API_PORT)`);
  const s = await describe();
  await loadOrCreateFunctionsEnv();
  await databaseUp(s);
  const gateway = foregroundGateway(s).spawn();
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping…");
    try {
      gateway.kill("SIGTERM");
    } catch { /* already gone */ }
    await gateway.status;
    await stopCluster(s.cluster);
    console.log("stopped.");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stopAll);
  Deno.addSignalListener("SIGTERM", stopAll);
  banner(s);
  const status = await gateway.status;
  if (!stopping) {
    console.error(`gateway exited (code ${status.code}); stopping the database`);
    await stopCluster(s.cluster);
    Deno.exit(1);
  }
}

async function up(): Promise<void> {
  const s = await describe();
  await loadOrCreateFunctionsEnv();
  await databaseUp(s);
  if (!(await gatewayPid())) {
    if (!(await portIsFree(API_PORT))) throw new Error(`port ${API_PORT} is taken (set STACK_API_PORT)`);
    // The gateway outlives this command (setsid: its own session and process group, which `down`
    // signals); its output goes to the log file through `sh` redirection.
    const child = new Deno.Command("setsid", {
      args: [
        "sh",
        "-c",
        `log=$1; shift; exec "$@" >>"$log" 2>&1 </dev/null`,
        "sh",
        GATEWAY_LOG_FILE,
        Deno.execPath(),
        ...gatewayDenoArgs(),
      ],
      cwd: REPO_ROOT,
      env: gatewayEnv(s),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    await Deno.writeTextFile(GATEWAY_PID_FILE, String(child.pid));
    if (!(await waitForGateway(s))) {
      throw new Error(`the gateway did not become ready; see ${GATEWAY_LOG_FILE}`);
    }
  }
  banner(s);
}

async function waitForGateway(s: Stack, seconds = 60): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${s.apiUrl}/functions/v1/`, { signal: AbortSignal.timeout(1000) });
      await r.body?.cancel();
      return true;
    } catch { /* not listening yet */ }
    if (!(await gatewayPid())) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function down(): Promise<void> {
  const s = await describe();
  const pid = await gatewayPid();
  if (pid) {
    // setsid made the gateway a process-group leader: signal the whole group (its workers too).
    try {
      Deno.kill(-pid, "SIGTERM");
    } catch { /* gone */ }
    for (let i = 0; i < 50 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (pidAlive(pid)) Deno.kill(-pid, "SIGKILL");
  }
  await Deno.remove(GATEWAY_PID_FILE).catch(() => {});
  await stopCluster(s.cluster);
  console.log("stack stopped.");
}

async function status(): Promise<void> {
  const s = await describe();
  const db = await isRunning(s.cluster);
  const pid = await gatewayPid();
  console.log(`database  ${db ? "running" : "stopped"}  ${s.cluster.url}  (data: ${s.cluster.dataDir})`);
  console.log(`gateway   ${pid ? `running (pid ${pid})` : "stopped"}  ${s.apiUrl}/functions/v1`);
}

async function reset(): Promise<void> {
  await down();
  const s = await describe();
  if (await exists(s.cluster.dataDir)) {
    await run(["rm", "-rf", s.cluster.dataDir], { asServerUser: true });
  }
  console.log("local database deleted; recreating…");
  await up();
}

async function env(): Promise<void> {
  const s = await describe();
  const settings = await loadOrCreateFunctionsEnv();
  Deno.stdout.writeSync(
    new TextEncoder().encode(toDotenv({ ...stackEnv(s), LOCAL_STACK_KEYS_FILE: s.keys.file, ...settings })),
  );
}

/** Prints a user session token signed with the stack's key (there is no GoTrue locally). */
async function token(): Promise<void> {
  let options;
  try {
    options = parseTokenArgs(Deno.args.slice(1));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`stack token: ${error.message}\n${TOKEN_USAGE}`);
    Deno.exit(2);
  }
  const keys = await loadOrCreateStackKeys(STATE_DIR);
  console.log(await mintUserSessionToken(keys.signingKey, { supabaseUrl: `http://127.0.0.1:${API_PORT}`, ...options }));
}

const commands: Record<string, () => Promise<void>> = { start, up, down, status, reset, env, token };
const name = Deno.args[0] ?? "status";
const command = commands[name];
if (!command) {
  console.error(`usage: npm run stack -- <${Object.keys(commands).join("|")}>`);
  Deno.exit(2);
}
try {
  await command();
} catch (e) {
  console.error(`stack ${name}: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
