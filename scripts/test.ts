// `npm test`: every test, on a throwaway cluster and free ports (never `npm start`'s data).
//
// Stages: database (bootstrap + `supabase migration up` + seed) · advisors · lint · pgTAP ·
// deno check + lint · gateway · deno test. Each stage prints its result; the run ends with one line
// `N passed, N failed` (pgTAP assertions + Deno tests; a failed check stage counts as one failure)
// and exits non-zero on any failure. The cluster and every process are cleaned up on success,
// failure and Ctrl-C.
import { join, relative } from "node:path";
import {
  type Cluster,
  createThrowawayCluster,
  freePort,
  psql,
  psqlFile,
  REPO_ROOT,
  run,
  supabaseCli,
} from "./local-supabase/cluster.ts";
import { loadOrCreateStackKeys } from "./local-supabase/keys.ts";
import { spawnGateway } from "./local-supabase/gateway/spawn.ts";
import { parseDotenv } from "./local-supabase/gateway/config.ts";
import { toDotenv } from "./local-supabase/local-config.ts";
import { startTwilioFake, twilioFakeAccount } from "./fakes/twilio.ts";
import { startStripeFake, stripeFakeAccount } from "./fakes/stripe.ts";
import { pauseScheduledCallJobs } from "./local-supabase/scheduled-jobs.ts";
import { createShutdown } from "./lib/shutdown.ts";

const started = performance.now();
let passed = 0;
let failed = 0;

function report(stage: string, ok: boolean, detail: string): void {
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`[${ok ? "PASS" : "FAIL"}] ${stage.padEnd(10)} ${detail}  (t=${secs}s)`);
}

// Every started thing registers its undo step; Ctrl-C runs them at once. The run's own flow
// normally ends by itself once its children are gone; if something still blocks it a few seconds
// after cleanup, end there.
const shutdown = createShutdown();
shutdown.trapSignals({
  onSignal: () => {
    failed++;
    console.log("\ninterrupted: cleaning up…");
  },
  exitCode: 130,
  graceMs: 5000,
  beforeExit: () => console.log(`${passed} passed, ${failed} failed`),
});

/** Runs a check stage that passes when the command exits 0; failures count once. */
async function checkStage(stage: string, fn: () => Promise<string>, okDetail: (out: string) => string) {
  if (shutdown.interrupted) return false;
  try {
    const out = await fn();
    report(stage, true, okDetail(out));
    return true;
  } catch (e) {
    failed++;
    report(stage, false, "");
    console.log(indent(e instanceof Error ? e.message : String(e)));
    return false;
  }
}

const indent = (text: string) => text.trim().split("\n").map((l) => `    ${l}`).join("\n");

/** Counts TAP results: `ok N` / `not ok N` lines at top level (pg_prove --verbose, deno --reporter=tap). */
function countTap(output: string): { ok: number; notOk: number; failures: string[] } {
  let ok = 0;
  let notOk = 0;
  const failures: string[] = [];
  for (const line of output.split("\n")) {
    if (/^(ok)\s+\d+/.test(line)) ok++;
    else if (/^not ok\s+\d+/.test(line)) {
      notOk++;
      failures.push(line);
    }
  }
  return { ok, notOk, failures };
}

async function filesUnder(dir: string, pattern: RegExp): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) await walk(p);
      else if (e.isFile && pattern.test(e.name)) out.push(p);
    }
  }
  await walk(dir).catch(() => {});
  return out.sort();
}

// pgTAP support lives in folders whose name starts with "_" (supabase/tests/_helpers): loaded
// before pg_prove, never run as test files.
const PGTAP_DIR = join(REPO_ROOT, "supabase", "tests");
const isPgTapSupport = (file: string) =>
  relative(PGTAP_DIR, file).split("/").slice(0, -1).some((folder) => folder.startsWith("_"));

async function pgTapTestFiles(): Promise<string[]> {
  return (await filesUnder(PGTAP_DIR, /\.sql$/)).filter((f) => !isPgTapSupport(f));
}

/** Loads the pgTAP helpers (schema `tests`: tests.authenticate_as(), fixtures) into the database. */
async function loadPgTapHelpers(cluster: Cluster): Promise<void> {
  for (const file of (await filesUnder(PGTAP_DIR, /\.sql$/)).filter(isPgTapSupport)) await psqlFile(cluster, file);
}

async function main(): Promise<void> {
  // ---- database ---------------------------------------------------------------------------
  let cluster!: Cluster;
  const ready = await checkStage("database", async () => {
    const db = await createThrowawayCluster({ prefix: "csecur360-test-", seed: true, defer: shutdown.defer });
    cluster = db.cluster;
    return db.steps.join("; ");
  }, (out) => out);
  if (!ready) return;
  const home = cluster.home;
  // The jobs that call functions (the 5-minute status evaluation) would fire in the middle of
  // other tests and text OWNER_MOBILE: paused here; their tests run the job's command themselves.
  await pauseScheduledCallJobs(cluster);

  // ---- advisors and lint (Supabase CLI against the URL) ---------------------------------
  await checkStage(
    "advisors",
    () => supabaseCli(["db", "advisors", "--type", "all", "--level", "info", "--fail-on", "warn"], cluster.url),
    (out) => {
      const infos = (out.match(/"level":\s*"INFO"/g) ?? []).length;
      return `no warning or error${infos ? ` (${infos} info-level notes)` : ""}`;
    },
  );
  await checkStage(
    "lint",
    () => supabaseCli(["db", "lint", "--level", "warning", "--fail-on", "warning"], cluster.url),
    () => "plpgsql_check: no schema errors",
  );

  if (shutdown.interrupted) return;
  // ---- pgTAP ------------------------------------------------------------------------------
  const sqlTests = await pgTapTestFiles();
  if (sqlTests.length) {
    // pgTAP is not a trusted extension: the superuser creates it (hosted: supautils), the tests run as postgres.
    await psql(cluster, "create extension if not exists pgtap with schema extensions", { asAdmin: true });
    await loadPgTapHelpers(cluster);
    const r = await new Deno.Command("pg_prove", {
      args: ["--verbose", "--failures", "-d", cluster.url, ...sqlTests.map((f) => relative(REPO_ROOT, f))],
      cwd: REPO_ROOT,
      env: { PGSSLMODE: "disable" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    const tap = countTap(out);
    // A file that dies or misses its plan fails even where every line printed was `ok`.
    const fileFailures = r.success ? 0 : Math.max(0, 1 - tap.notOk);
    passed += tap.ok;
    failed += tap.notOk + fileFailures;
    const ok = r.success && tap.notOk === 0;
    report("pgTAP", ok, `${sqlTests.length} files, ${tap.ok} assertions passed, ${tap.notOk} failed`);
    if (!ok) console.log(indent(out.split("\n").filter((l) => !/^\s*ok\s/.test(l)).join("\n")));
  } else {
    report("pgTAP", true, "no test files");
  }

  // ---- deno check -------------------------------------------------------------------------
  const tsFiles = [
    ...await filesUnder(join(REPO_ROOT, "supabase", "functions"), /\.ts$/),
    ...await filesUnder(join(REPO_ROOT, "scripts"), /\.ts$/),
    ...await filesUnder(join(REPO_ROOT, "tests"), /\.ts$/),
  ];
  await checkStage(
    "check",
    async () => {
      const config = ["--config", join(REPO_ROOT, "deno.json")];
      await run([Deno.execPath(), "check", "--quiet", ...config, ...tsFiles]);
      // deno lint's recommended rules: unused code and imports, unsafe patterns.
      await run([Deno.execPath(), "lint", "--quiet", ...config, ...tsFiles]);
      return "";
    },
    () => `deno check + deno lint: ${tsFiles.length} files type-check and lint clean`,
  );

  // ---- gateway ----------------------------------------------------------------------------
  const apiPort = freePort();
  const keys = await loadOrCreateStackKeys(home);
  const env = {
    SUPABASE_URL: `http://127.0.0.1:${apiPort}`,
    SUPABASE_DB_URL: cluster.url,
    SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
    SUPABASE_SECRET_KEY: keys.secretKey,
    SUPABASE_JWKS: JSON.stringify(keys.jwks),
    SUPABASE_ANON_KEY: keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
    SUPABASE_JWT_SECRET: keys.legacyJwtSecret,
  };
  // The fake Twilio and the fake Stripe, with the functions' own settings; their URLs reach the
  // functions through a second env file (the fixture's stays as written). The fake Stripe POSTs its
  // events to the gateway's stripe-webhook.
  const FIXTURE_ENV_FILE = "tests/fixtures/functions/.env.test";
  const fixtureSettings = parseDotenv(await Deno.readTextFile(join(REPO_ROOT, FIXTURE_ENV_FILE)));
  const twilio = startTwilioFake(twilioFakeAccount(fixtureSettings));
  shutdown.defer(() => twilio.close());
  const stripe = startStripeFake({ ...stripeFakeAccount(fixtureSettings), webhookUrl: `${env.SUPABASE_URL}/functions/v1/stripe-webhook` });
  shutdown.defer(() => stripe.close());
  const fakesEnvFile = join(home, "fakes.env");
  await Deno.writeTextFile(fakesEnvFile, toDotenv({ TWILIO_API_BASE: twilio.url, STRIPE_API_BASE: stripe.url }));
  const gatewayLog = join(home, "gateway.log");
  const gatewayUp = await checkStage("gateway", async () => {
    const gateway = await spawnGateway({
      port: apiPort,
      env,
      functions: [
        { dir: "supabase/functions", config: "supabase/config.toml" },
        { dir: "tests/fixtures/functions", config: "tests/fixtures/functions/config.toml" },
      ],
      envFiles: [FIXTURE_ENV_FILE, fakesEnvFile],
      output: { logFile: gatewayLog },
    });
    shutdown.defer(() => gateway.stop());
    return await gateway.ready;
  }, (out) => out);
  if (!gatewayUp) return;

  if (shutdown.interrupted) return;
  // ---- deno test --------------------------------------------------------------------------
  const denoTests = await filesUnder(join(REPO_ROOT, "tests"), /\.test\.ts$/);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--quiet", "--reporter=tap", "--config", join(REPO_ROOT, "deno.json"), ...denoTests],
    cwd: REPO_ROOT,
    // The keys file (private signing key) only for the tests' token minting, never the gateway.
    env: { ...env, LOCAL_STACK_KEYS_FILE: keys.file, TWILIO_API_BASE: twilio.url, STRIPE_API_BASE: stripe.url, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  const tap = countTap(out);
  const crashed = !r.success && tap.notOk === 0 ? 1 : 0; // e.g. a type error before any test ran
  passed += tap.ok;
  failed += tap.notOk + crashed;
  const ok = r.success && tap.notOk === 0;
  report("deno test", ok, `${denoTests.length} files, ${tap.ok} tests passed, ${tap.notOk} failed`);
  if (!ok) {
    console.log(indent(out));
    console.log(`    gateway log (last lines):`);
    console.log(indent((await Deno.readTextFile(gatewayLog).catch(() => "")).split("\n").slice(-40).join("\n")));
  }
}

try {
  await main();
} catch (e) {
  failed++;
  console.log(`[FAIL] runner: ${e instanceof Error ? e.stack : e}`);
} finally {
  await shutdown.run();
}
console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)}s`);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(shutdown.interrupted ? 130 : failed > 0 || passed === 0 ? 1 : 0);
