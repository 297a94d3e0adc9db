// The local stack: PostgreSQL 15 with the Supabase bootstrap and our migrations, and the functions
// gateway (with the pg_net worker). `npm start` runs it in the foreground; `npm run stack -- <cmd>`
// manages it in the background.
//
//   start   foreground: bring everything up, print URLs and keys, log requests; Ctrl-C stops all
//   up      the same, in the background (gateway log in .stack/gateway.log)
//   down    stop the gateway (however it was started) and the database
//   status  what is running, and where
//   reset   down, delete the local database, up again (bootstrap + migrations + seed)
//   env     dotenv lines for a shell or a test: URLs, keys, every provider setting, the fakes' URLs
//   token   a signed user session token: token --user <uuid> [--role …] [--expires 1h] [--email …]
//
// The fake Twilio and the fake Stripe (scripts/fakes) run beside the gateway, on free loopback
// ports: their URLs are in .stack/fakes.env, the gateway's second env file (TWILIO_API_BASE,
// STRIPE_API_BASE); the fake Stripe POSTs its events to the stack's stripe-webhook function.
// Ports: [api] port and [db] port of supabase/config.toml; STACK_API_PORT / STACK_DB_PORT override
// them. The gateway's pid is in .stack/gateway.pid whichever command started it.
import { join } from "node:path";
import { type Cluster, clusterAt, psqlWithSecrets, resolveHome, stopCluster } from "./local-supabase/cluster.ts";
import { FUNCTIONS_ENV_FILE, loadOrCreateFunctionsEnv, toDotenv } from "./local-supabase/local-config.ts";
import {
  loadOrCreateStackKeys,
  mintUserSessionToken,
  parseTokenArgs,
  type StackKeys,
  TOKEN_USAGE,
  UsageError,
} from "./local-supabase/keys.ts";
import { configuredPorts, waitForPort } from "./local-supabase/ports.ts";
import { ensureStackDatabase, runningPort, wipeStackDatabase } from "./local-supabase/stack-db.ts";
import {
  type GatewayLaunch,
  runningGatewayPid,
  spawnGateway,
  stopGatewayGroup,
} from "./local-supabase/gateway/spawn.ts";
import { createShutdown } from "./lib/shutdown.ts";
import { composeStackEnv, FAKES_ENV_FILE_NAME, platformEnv, stackStateDir } from "./local-supabase/stack-env.ts";
import { freePort } from "./local-supabase/cluster.ts";
import { parseDotenv } from "./local-supabase/gateway/config.ts";
import { startTwilioFake, twilioFakeAccount } from "./fakes/twilio.ts";
import { startStripeFake, stripeFakeAccount } from "./fakes/stripe.ts";
import { runningFakePid, spawnStripeFakeDetached, spawnTwilioFakeDetached, stopBackgroundFake } from "./fakes/background.ts";

// STACK_STATE_DIR: another stack's state (e.g. the test runner's, for `token`).
const STATE_DIR = stackStateDir();
const GATEWAY_PID_FILE = join(STATE_DIR, "gateway.pid");
const GATEWAY_LOG_FILE = join(STATE_DIR, "gateway.log");
// The fakes' URLs (TWILIO_API_BASE, STRIPE_API_BASE), written at each start: the gateway's second
// env file, so supabase/functions/.env stays the user's. The background fakes' pids and logs (`stack up`).
const FAKES_ENV_FILE = join(STATE_DIR, FAKES_ENV_FILE_NAME);
const TWILIO_FAKE_PID_FILE = join(STATE_DIR, "twilio-fake.pid");
const TWILIO_FAKE_LOG_FILE = join(STATE_DIR, "twilio-fake.log");
const STRIPE_FAKE_PID_FILE = join(STATE_DIR, "stripe-fake.pid");
const STRIPE_FAKE_LOG_FILE = join(STATE_DIR, "stripe-fake.log");
// Set from config.toml (and the overrides) before any command runs.
let API_PORT: number;
let DB_PORT: number;

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
  return platformEnv(s.apiUrl, s.cluster.url, s.keys);
}

/** Database up: initialised completely (or redone), migrated; seeded the first time only. */
async function databaseUp(s: Stack): Promise<void> {
  await ensureStackDatabase(s.cluster, { portSetting: "STACK_DB_PORT" });
  await vaultSecretsUp(s);
}

/**
 * The Vault secrets scheduled jobs call functions with (README, "Deploying"), as an operator creates
 * them on a hosted project: this stack's functions URL and its secret key (billing-sync's 04:00 run).
 * Set at every start: the ports and the keys may have changed.
 */
async function vaultSecretsUp(s: Stack): Promise<void> {
  const secrets: Record<string, string> = { functions_url: `${s.apiUrl}/functions/v1`, service_secret_key: s.keys.secretKey };
  for (const [name, value] of Object.entries(secrets)) {
    if (!/^[A-Za-z0-9_:/.-]+$/.test(value)) throw new Error(`vault secret ${name}: unexpected characters`);
    // The value goes through psql's stdin, not its command line (visible to `ps`, and repeated by
    // run() in an error message). A DO block cannot read psql variables: set_config carries them.
    await psqlWithSecrets(s.cluster, `
      select set_config('c_secur360.vault_name', :'secret_name', false), set_config('c_secur360.vault_value', :'secret_value', false) \\g /dev/null
      do $$ begin
        if exists (select from vault.secrets where name = current_setting('c_secur360.vault_name')) then
          perform vault.update_secret((select id from vault.secrets where name = current_setting('c_secur360.vault_name')),
                                      current_setting('c_secur360.vault_value'));
        else
          perform vault.create_secret(current_setting('c_secur360.vault_value'), current_setting('c_secur360.vault_name'));
        end if;
      end $$;`, { secret_name: name, secret_value: value });
  }
}

/** The stack's gateway: the project's functions with supabase/functions/.env (+ the fakes' URLs), on the [api] port. */
function gatewayLaunch(s: Stack, output: GatewayLaunch["output"]): GatewayLaunch {
  return {
    port: API_PORT,
    env: stackEnv(s),
    functions: [{ dir: "supabase/functions", config: "supabase/config.toml" }],
    envFiles: [FUNCTIONS_ENV_FILE, FAKES_ENV_FILE],
    output,
    pidFile: GATEWAY_PID_FILE,
  };
}

async function writeFakesEnv(twilioUrl: string, stripeUrl: string): Promise<void> {
  await Deno.writeTextFile(FAKES_ENV_FILE, toDotenv({ TWILIO_API_BASE: twilioUrl, STRIPE_API_BASE: stripeUrl }));
}

/** Where the fake Stripe POSTs its events: the stack's own stripe-webhook function. */
function stripeWebhookUrl(): string {
  return `http://127.0.0.1:${API_PORT}/functions/v1/stripe-webhook`;
}

async function fakesEnv(): Promise<Record<string, string>> {
  return parseDotenv(await Deno.readTextFile(FAKES_ENV_FILE).catch(() => ""));
}

async function gatewayPortFree(): Promise<void> {
  await waitForPort(API_PORT, "functions gateway", { override: "STACK_API_PORT" });
}

function banner(s: Stack, twilioUrl?: string, stripeUrl?: string): void {
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
  Fake Twilio ${twilioUrl ?? "(not running)"}   (TWILIO_API_BASE, in .stack/fakes.env)
  Fake Stripe ${stripeUrl ?? "(not running)"}   (STRIPE_API_BASE, in .stack/fakes.env; events → ${stripeWebhookUrl()})
  Settings    supabase/functions/.env   (npm run stack -- env prints everything)
`);
}

async function start(): Promise<void> {
  const running = await runningGatewayPid(GATEWAY_PID_FILE);
  if (running) throw new Error(`the stack already runs (gateway pid ${running}): \`npm run stack -- down\` first`);
  await gatewayPortFree();
  const s = await describe();
  const settings = await loadOrCreateFunctionsEnv();
  const shutdown = createShutdown();
  shutdown.trapSignals({ onSignal: () => console.log("\nstopping…"), exitCode: 0, graceMs: 5_000 });
  shutdown.defer(() => stopCluster(s.cluster));
  let exitCode = 1;
  try {
    await databaseUp(s);
    const twilio = startTwilioFake({ ...twilioFakeAccount(settings), log: (line) => console.log(line) });
    shutdown.defer(() => twilio.close());
    const stripe = startStripeFake({ ...stripeFakeAccount(settings), webhookUrl: stripeWebhookUrl(), log: (line) => console.log(line) });
    shutdown.defer(() => stripe.close());
    await writeFakesEnv(twilio.url, stripe.url);
    const gateway = await spawnGateway(gatewayLaunch(s, "terminal"));
    shutdown.defer(() => gateway.stop());
    await gateway.ready;
    banner(s, twilio.url, stripe.url);
    exitCode = await gateway.exited;
    // 0: stopped on request (`npm run stack -- down` from another shell); otherwise it failed.
    if (!shutdown.started) console.error(`gateway exited (code ${exitCode}); stopping the database`);
  } catch (e) {
    if (!shutdown.interrupted) {
      await shutdown.run();
      throw e;
    }
  }
  await shutdown.run();
  console.log("stopped.");
  Deno.exit(shutdown.interrupted ? 0 : exitCode);
}

async function up(): Promise<void> {
  const s = await describe();
  const settings = await loadOrCreateFunctionsEnv();
  await databaseUp(s);
  if (!(await runningGatewayPid(GATEWAY_PID_FILE))) {
    await gatewayPortFree();
    // The fakes' settings are complete before anything starts.
    twilioFakeAccount(settings);
    stripeFakeAccount(settings);
    await stopBackgroundFake(TWILIO_FAKE_PID_FILE);
    await stopBackgroundFake(STRIPE_FAKE_PID_FILE);
    const port = freePort();
    await spawnTwilioFakeDetached({ port, envFile: FUNCTIONS_ENV_FILE, logFile: TWILIO_FAKE_LOG_FILE, pidFile: TWILIO_FAKE_PID_FILE });
    const stripePort = freePort();
    await spawnStripeFakeDetached({
      port: stripePort,
      envFile: FUNCTIONS_ENV_FILE,
      logFile: STRIPE_FAKE_LOG_FILE,
      pidFile: STRIPE_FAKE_PID_FILE,
      webhookUrl: stripeWebhookUrl(),
    }).catch(async (e) => {
      await stopBackgroundFake(TWILIO_FAKE_PID_FILE);
      throw e;
    });
    await writeFakesEnv(`http://127.0.0.1:${port}`, `http://127.0.0.1:${stripePort}`);
    const gateway = await spawnGateway(gatewayLaunch(s, { logFile: GATEWAY_LOG_FILE, detached: true }));
    await gateway.ready.catch(async (e) => {
      await gateway.stop();
      await stopBackgroundFake(TWILIO_FAKE_PID_FILE);
      await stopBackgroundFake(STRIPE_FAKE_PID_FILE);
      throw e;
    });
  }
  const fakes = await fakesEnv();
  banner(
    s,
    (await runningFakePid(TWILIO_FAKE_PID_FILE)) ? fakes.TWILIO_API_BASE : undefined,
    (await runningFakePid(STRIPE_FAKE_PID_FILE)) ? fakes.STRIPE_API_BASE : undefined,
  );
}

async function down(): Promise<void> {
  const s = await describe();
  const pid = await runningGatewayPid(GATEWAY_PID_FILE);
  if (pid) await stopGatewayGroup(pid);
  await Deno.remove(GATEWAY_PID_FILE).catch(() => {});
  await stopBackgroundFake(TWILIO_FAKE_PID_FILE);
  await stopBackgroundFake(STRIPE_FAKE_PID_FILE);
  await stopCluster(s.cluster);
  console.log("stack stopped.");
}

async function status(): Promise<void> {
  const s = await describe();
  const dbPort = await runningPort(s.cluster);
  const pid = await runningGatewayPid(GATEWAY_PID_FILE);
  const db = dbPort === null ? "stopped" : dbPort === DB_PORT ? "running" : `running on port ${dbPort}`;
  console.log(`database  ${db}  ${s.cluster.url}  (data: ${s.cluster.dataDir})`);
  console.log(`gateway   ${pid ? `running (pid ${pid})` : "stopped"}  ${s.apiUrl}/functions/v1`);
  const fakes = await fakesEnv();
  for (const [name, pidFile, url] of [["twilio", TWILIO_FAKE_PID_FILE, fakes.TWILIO_API_BASE], ["stripe", STRIPE_FAKE_PID_FILE, fakes.STRIPE_API_BASE]]) {
    const fakePid = await runningFakePid(pidFile);
    console.log(`${name.padEnd(9)} ${fakePid ? `running (pid ${fakePid})  ${url}` : pid ? `in the gateway's \`npm start\`  ${url}` : "stopped"}`);
  }
}

async function reset(): Promise<void> {
  await down();
  await wipeStackDatabase((await describe()).cluster);
  console.log("local database deleted; recreating…");
  await up();
}

async function env(): Promise<void> {
  const s = await describe();
  const settings = await loadOrCreateFunctionsEnv();
  Deno.stdout.writeSync(
    new TextEncoder().encode(toDotenv(composeStackEnv(stackEnv(s), s.keys, settings, await fakesEnv()))),
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
  ({ api: API_PORT, db: DB_PORT } = await configuredPorts());
  await command();
} catch (e) {
  console.error(`stack ${name}: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
