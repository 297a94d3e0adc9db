// `npm test`: every test, on a throwaway cluster and free ports (never `npm start`'s data).
//
// Stages: database (bootstrap + `supabase migration up` + seed) · advisors · lint · pgTAP ·
// deno check · gateway · deno test. Each stage prints its result; the run ends with one line
// `N passed, N failed` (pgTAP assertions + Deno tests; a failed check stage counts as one failure)
// and exits non-zero on any failure. The cluster and every process are cleaned up on success,
// failure and Ctrl-C.
import { join, relative } from "node:path";
import { mkdtemp } from "node:fs/promises";
import {
  type Cluster,
  clusterAt,
  freePort,
  initCluster,
  prepareDatabase,
  psql,
  psqlFile,
  REPO_ROOT,
  run,
  startCluster,
  stopCluster,
  supabaseCli,
} from "./local-supabase/cluster.ts";
import { gatewayDenoArgs } from "./local-supabase/local-config.ts";
import { loadOrCreateStackKeys } from "./local-supabase/keys.ts";

const started = performance.now();
let passed = 0;
let failed = 0;
const cleanups: (() => Promise<void>)[] = [];

function report(stage: string, ok: boolean, detail: string): void {
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`[${ok ? "PASS" : "FAIL"}] ${stage.padEnd(10)} ${detail}  (t=${secs}s)`);
}

/** Registers an undo step; once cleanup has begun (Ctrl-C), the step runs at once instead. */
function onCleanup(step: () => Promise<void>): void {
  if (cleaning) void step().catch((e) => console.error(`cleanup: ${e}`));
  else cleanups.push(step);
}

/** Runs the undo steps in reverse order, once, however many callers ask for it. */
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) await cleanups.pop()!().catch((e) => console.error(`cleanup: ${e}`));
  })();
  return cleaning;
}

let interrupted = false;
const onSignal = () => {
  if (interrupted) return;
  interrupted = true;
  failed++;
  console.log("\ninterrupted: cleaning up…");
  // The run's own flow normally ends by itself once its children are gone; if something still
  // blocks it a few seconds after cleanup, end here.
  void cleanup().then(() =>
    setTimeout(() => {
      console.log(`${passed} passed, ${failed} failed`);
      Deno.exit(130);
    }, 5000)
  );
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

/** Runs a check stage that passes when the command exits 0; failures count once. */
async function checkStage(stage: string, fn: () => Promise<string>, okDetail: (out: string) => string) {
  if (interrupted) return false;
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
  const home = await mkdtemp("/tmp/csecur360-test-");
  if (Deno.uid() === 0) await run(["chown", "postgres:postgres", home]);
  onCleanup(() => run(["rm", "-rf", home]).then(() => {}));
  const cluster = clusterAt(home, freePort());
  const ready = await checkStage("database", async () => {
    await initCluster(cluster, { durable: false });
    await startCluster(cluster);
    onCleanup(() => stopCluster(cluster));
    return (await prepareDatabase(cluster, { seed: true })).join("; ");
  }, (out) => out);
  if (!ready) return;

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

  if (interrupted) return;
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
    () => run([Deno.execPath(), "check", "--quiet", "--config", join(REPO_ROOT, "deno.json"), ...tsFiles]),
    () => `deno check: ${tsFiles.length} files type-check`,
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
  const gatewayLog = join(home, "gateway.log");
  const gatewayUp = await checkStage("gateway", () => startGateway(env, apiPort, gatewayLog), (out) => out);
  if (!gatewayUp) return;

  if (interrupted) return;
  // ---- deno test --------------------------------------------------------------------------
  const denoTests = await filesUnder(join(REPO_ROOT, "tests"), /\.test\.ts$/);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--quiet", "--reporter=tap", "--config", join(REPO_ROOT, "deno.json"), ...denoTests],
    cwd: REPO_ROOT,
    // The keys file (private signing key) only for the tests' token minting, never the gateway.
    env: { ...env, LOCAL_STACK_KEYS_FILE: keys.file, NO_COLOR: "1" },
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

/** Starts the gateway with the project's functions and the test fixtures; resolves when ready. */
async function startGateway(env: Record<string, string>, port: number, logFile: string): Promise<string> {
  const log = await Deno.open(logFile, { create: true, write: true, truncate: true });
  // setsid: the gateway leads its own process group, so cleanup can signal it with its workers.
  const child = new Deno.Command("setsid", {
    args: [
      Deno.execPath(),
      ...gatewayDenoArgs([
        "--functions", "supabase/functions=supabase/config.toml",
        "--functions", "tests/fixtures/functions=tests/fixtures/functions/config.toml",
        "--env-file", "tests/fixtures/functions/.env.test",
      ]),
    ],
    cwd: REPO_ROOT,
    env: { ...env, GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: String(port) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stopGateway = async () => {
    const signalGroup = (sig: Deno.Signal) => {
      try {
        Deno.kill(-child.pid, sig);
      } catch { /* already gone */ }
    };
    signalGroup("SIGTERM");
    const stopped = await Promise.race([
      child.status.then(() => true),
      new Promise<boolean>((res) => setTimeout(() => res(false), 10_000)),
    ]);
    if (!stopped) console.log("    gateway did not stop within 10 s of SIGTERM: killed");
    signalGroup("SIGKILL"); // whatever is left of the group (workers), in every case
    await child.status;
    await pumps;
  };
  // Copy both streams to the log; resolve on the ready line.
  let readyResolve!: (line: string) => void;
  const readyLine = new Promise<string>((res) => (readyResolve = res));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of stream) {
      await log.write(chunk);
      buffer += decoder.decode(chunk, { stream: true });
      const m = buffer.match(/gateway ready (\S+)/);
      if (m) readyResolve(m[0]);
      if (buffer.length > 4096) buffer = buffer.slice(-1024);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => log.close());
  onCleanup(stopGateway);
  // Neither of these may reject after the race is decided (an unhandled rejection would kill the run).
  const exited = child.status.then((s) => `gateway exited with code ${s.code} before it was ready; log: ${logFile}`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<string>((res) => {
    timer = setTimeout(() => res(`gateway not ready after 90 s; log: ${logFile}`), 90_000);
  });
  const first = await Promise.race([readyLine.then((line) => ({ ready: line })), exited, timedOut]);
  clearTimeout(timer);
  if (typeof first === "string") {
    const tail = (await Deno.readTextFile(logFile).catch(() => "")).split("\n").slice(-30).join("\n");
    throw new Error(`${first}\n${tail}`);
  }
  return first.ready;
}

try {
  await main();
} catch (e) {
  failed++;
  console.log(`[FAIL] runner: ${e instanceof Error ? e.stack : e}`);
} finally {
  await cleanup();
}
console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)}s`);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(interrupted ? 130 : failed > 0 || passed === 0 ? 1 : 0);
