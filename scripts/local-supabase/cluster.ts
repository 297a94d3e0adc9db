// A local PostgreSQL 15 cluster with what hosted Supabase preloads (pg_cron), managed with the
// Debian binaries. initdb and postgres refuse to run as root, so as root every server command runs
// as Debian's `postgres` account, and the data directory is placed where that account can reach it.
//
// Roles as on hosted Supabase: the cluster's superuser is `supabase_admin` (initdb -U); the
// database role `postgres` is NOT a superuser (bootstrap.sql creates it as Supabase's
// demote-postgres migration leaves it). Migrations, the seed, pg_cron jobs, tests and the
// functions (SUPABASE_DB_URL) run as `postgres`; only what Supabase itself runs as supabase_admin
// on a hosted project (bootstrap, pg_net's SQL, superuser-only extensions) uses the admin URL.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { waitForPort } from "./ports.ts";

export const PG_BIN = "/usr/lib/postgresql/15/bin";
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BOOTSTRAP_SQL = join(REPO_ROOT, "scripts", "local-supabase", "bootstrap.sql");
export const PG_NET_SQL = join(REPO_ROOT, "scripts", "local-supabase", "pg_net", "pg_net.sql");
// Local-only passwords of `postgres` and `supabase_admin`, the ones `supabase start` uses.
const LOCAL_PASSWORD = "postgres";
export const SUPERUSER = "supabase_admin";

export interface Cluster {
  /** Folder holding data/, the server log and the unix socket. */
  home: string;
  dataDir: string;
  port: number;
  /** postgresql://postgres:postgres@127.0.0.1:<port>/postgres: what SUPABASE_DB_URL is (non-superuser). */
  url: string;
  /** The superuser `supabase_admin`: only for the bootstrap and superuser-only steps, never for the project. */
  adminUrl: string;
  logFile: string;
}

const isRoot = () => Deno.uid() === 0;

/** Runs a command, as the `postgres` account when we are root; throws with its output on failure. */
export async function run(
  cmd: string[],
  opts: { asServerUser?: boolean; env?: Record<string, string>; quiet?: boolean; stdin?: string } = {},
): Promise<string> {
  const argv = opts.asServerUser && isRoot() ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { PGSSLMODE: "disable", ...opts.env },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed (exit ${out.code}):\n${text.trim()}`);
  }
  return text;
}

/** True when the `postgres` account can create files in `dir` (always true when not root). */
async function serverUserCanUse(dir: string): Promise<boolean> {
  if (!isRoot()) return true;
  const r = await new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", "test", "-w", dir, "-a", "-x", dir],
    stdout: "null",
    stderr: "null",
  }).output();
  return r.success;
}

/**
 * Picks the cluster's home for a project-local folder (e.g. `.stack/db`). When the server account
 * cannot reach it (a clone under root's 0700 home), the home lives under /var/tmp, keyed by the
 * folder's path, and `localDir` becomes a link to it, so the data still belongs to this checkout.
 */
export async function resolveHome(localDir: string): Promise<string> {
  try {
    const real = await Deno.realPath(localDir);
    return real;
  } catch { /* not created yet */ }
  await Deno.mkdir(dirname(localDir), { recursive: true });
  await Deno.mkdir(localDir, { recursive: true });
  if (isRoot()) await run(["chown", "postgres:postgres", localDir]);
  if (await serverUserCanUse(localDir)) return localDir;
  await Deno.remove(localDir);
  const key = createHash("sha256").update(resolve(localDir)).digest("hex").slice(0, 12);
  const external = `/var/tmp/c-secur360-${key}`;
  await Deno.mkdir(external, { recursive: true, mode: 0o700 });
  await run(["chown", "postgres:postgres", external]);
  await Deno.symlink(external, localDir);
  return external;
}

export function clusterAt(home: string, port: number): Cluster {
  return {
    home,
    dataDir: join(home, "data"),
    port,
    url: `postgresql://postgres:${LOCAL_PASSWORD}@127.0.0.1:${port}/postgres`,
    adminUrl: `postgresql://${SUPERUSER}:${LOCAL_PASSWORD}@127.0.0.1:${port}/postgres`,
    logFile: join(home, "postgres.log"),
  };
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Creates the cluster's data directory (initdb) with Supabase-like settings. Idempotent. */
export async function initCluster(c: Cluster, opts: { durable: boolean }): Promise<boolean> {
  if (await exists(join(c.dataDir, "PG_VERSION"))) return false;
  if (isRoot()) await run(["chown", "postgres:postgres", c.home]);
  const pwFile = join(c.home, ".pwfile");
  await Deno.writeTextFile(pwFile, LOCAL_PASSWORD + "\n", { mode: 0o600 });
  if (isRoot()) await run(["chown", "postgres:postgres", pwFile]);
  try {
    await run([
      join(PG_BIN, "initdb"),
      "-D", c.dataDir,
      "-U", SUPERUSER, // the bootstrap superuser, as on hosted Supabase; bootstrap.sql creates `postgres`
      "--auth-local=trust", // unix socket: only reachable by the server account
      "--auth-host=scram-sha-256", // TCP: password, like a hosted project
      `--pwfile=${pwFile}`,
      "-E", "UTF8",
      "--locale=C.UTF-8",
    ], { asServerUser: true });
  } finally {
    await Deno.remove(pwFile).catch(() => {});
  }
  const settings = [
    "# C-Secur360 local stack (scripts/local-supabase/cluster.ts)",
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${c.home}'`,
    // pg_cron as on hosted Supabase: preloaded, jobs in the postgres database, in UTC; jobs run
    // in background workers so they need no password.
    "shared_preload_libraries = 'pg_cron'",
    "cron.database_name = 'postgres'",
    "cron.use_background_workers = on",
    "max_worker_processes = 32",
    "timezone = 'UTC'",
    "log_timezone = 'UTC'",
    "max_connections = 200",
    "shared_buffers = '256MB'",
    "password_encryption = 'scram-sha-256'",
    // Hosted Supabase's global statement timeout (platform defaults: 2 min); the API roles get
    // shorter per-role ones from bootstrap.sql.
    "statement_timeout = '2min'",
    // A throwaway test cluster trades durability for speed; `npm start`'s cluster keeps fsync.
    ...(opts.durable ? [] : ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]),
  ];
  const conf = join(c.dataDir, "postgresql.conf");
  await Deno.writeTextFile(conf, "\n" + settings.join("\n") + "\n", { append: true });
  return true;
}

export async function isRunning(c: Cluster): Promise<boolean> {
  const r = await new Deno.Command(join(PG_BIN, "pg_isready"), {
    args: ["-h", "127.0.0.1", "-p", String(c.port), "-q"],
    stdout: "null",
    stderr: "null",
  }).output();
  return r.success;
}

export async function startCluster(c: Cluster): Promise<void> {
  if (await isRunning(c)) return;
  await run([
    join(PG_BIN, "pg_ctl"), "-D", c.dataDir, "-l", c.logFile, "-o", `-p ${c.port}`, "-w", "-t", "60", "start",
  ], { asServerUser: true }).catch(async (e) => {
    const log = await Deno.readTextFile(c.logFile).catch(() => "");
    throw new Error(`${e.message}\n--- ${c.logFile} (last lines)\n${log.split("\n").slice(-15).join("\n")}`);
  });
}

export async function stopCluster(c: Cluster): Promise<void> {
  if (!(await exists(join(c.dataDir, "postmaster.pid")))) return;
  await run([join(PG_BIN, "pg_ctl"), "-D", c.dataDir, "-m", "fast", "-w", "-t", "60", "stop"], {
    asServerUser: true,
  }).catch(() => {});
}

interface PsqlOptions {
  /** Run as the superuser supabase_admin (bootstrap steps only); default: as `postgres`. */
  asAdmin?: boolean;
  /** psql variables (-v name=value), read in the SQL as :'name'. */
  vars?: Record<string, string>;
}

function psqlArgs(c: Cluster, opts: PsqlOptions): string[] {
  const vars = Object.entries(opts.vars ?? {}).flatMap(([k, v]) => ["-v", `${k}=${v}`]);
  return ["psql", opts.asAdmin ? c.adminUrl : c.url, "-v", "ON_ERROR_STOP=1", ...vars, "-q", "-X"];
}

/** Runs a SQL file with psql against the cluster, stopping at the first error. */
export async function psqlFile(c: Cluster, file: string, opts: PsqlOptions = {}): Promise<string> {
  return await run([...psqlArgs(c, opts), "-f", file]);
}

export async function psql(c: Cluster, sqlText: string, opts: PsqlOptions = {}): Promise<string> {
  return await run([...psqlArgs(c, opts), "-At", "-c", sqlText]);
}

/**
 * Like psql(), with secret values: the script and the values go through psql's stdin (psql
 * variables, read in the SQL as :'name'), never its command line, which any local user can read
 * (`ps`) and which run() repeats in its error message.
 */
export async function psqlWithSecrets(c: Cluster, sqlText: string, secrets: Record<string, string>, opts: PsqlOptions = {}): Promise<string> {
  const sets = Object.entries(secrets).map(([name, value]) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`psqlWithSecrets: ${name} is not a psql variable name`);
    if (/[\n\r']/.test(value)) throw new Error(`psqlWithSecrets: the value of ${name} has a quote or a line break`);
    return `\\set ${name} '${value}'`;
  });
  return await run([...psqlArgs(c, opts), "-At", "-f", "-"], { stdin: [...sets, sqlText].join("\n") + "\n" });
}

/** An unused TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Runs the Supabase CLI from node_modules against a database URL. */
export async function supabaseCli(args: string[], dbUrl: string): Promise<string> {
  const bin = join(REPO_ROOT, "node_modules", ".bin", "supabase");
  return await run([bin, ...args, `--remote=${dbUrl}`, "--yes", "--workdir", REPO_ROOT], {
    env: { SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
  });
}

/**
 * A data directory made before `postgres` was demoted (initdb -U postgres) has no supabase_admin
 * password and a superuser `postgres`: everything there was built with powers hosted Supabase
 * does not give. Say so instead of half-applying the bootstrap.
 */
async function refuseSuperuserPostgres(c: Cluster): Promise<void> {
  const superuser = await psql(c, "select rolsuper from pg_roles where rolname = current_user").catch(() => "");
  if (superuser.trim() === "t") {
    throw new Error(
      `the database in ${c.dataDir} was created with \`postgres\` as its superuser, unlike hosted Supabase; ` +
        "recreate it (its data is lost): npm run stack -- reset",
    );
  }
}

/**
 * The local Supabase bootstrap (as supabase_admin), then `supabase migration up` and (optionally)
 * seed.sql as `postgres`, the role hosted Supabase gives the project.
 */
export async function prepareDatabase(c: Cluster, opts: { seed: boolean }): Promise<string[]> {
  const steps: string[] = [];
  await refuseSuperuserPostgres(c);
  await psqlFile(c, BOOTSTRAP_SQL, { asAdmin: true, vars: { postgres_password: LOCAL_PASSWORD } });
  await psqlFile(c, PG_NET_SQL, { asAdmin: true });
  steps.push("bootstrap applied (as supabase_admin)");
  const out = await supabaseCli(["migration", "up"], c.url);
  const applied = [...out.matchAll(/Applying migration (\S+?\.sql)/g)].map((m) => m[1]);
  steps.push(applied.length ? `migrations applied as postgres: ${applied.join(", ")}` : "migrations up to date");
  if (opts.seed) {
    await psqlFile(c, join(REPO_ROOT, "supabase", "seed.sql"));
    steps.push("seed.sql loaded");
  }
  return steps;
}

/** Stops the cluster whose home is `home`, then deletes `home`; a cluster that does not stop is left in place. */
export async function removeCluster(home: string): Promise<void> {
  const c = clusterAt(home, 0); // stopping needs only the data directory
  await stopCluster(c);
  if (await exists(join(c.dataDir, "postmaster.pid"))) {
    throw new Error(`the cluster in ${home} did not stop: its data is left in place`);
  }
  await Deno.remove(home, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

export interface ThrowawayCluster {
  cluster: Cluster;
  /** What prepareDatabase did. */
  steps: string[];
  /** Stops the cluster and deletes its home; once, however often called. Never deletes a running cluster's data. */
  remove(): Promise<void>;
}

/**
 * A cluster for one run (the test suite, type generation, a benchmark, SQL work): a fresh home
 * (a new temp folder unless `home` names a new or empty one) reachable by the
 * server account, a free port unless given, initdb, start, then the bootstrap, the migrations and
 * (when `seed`) seed.sql. `defer` receives `remove` before anything is created, so an interrupt
 * mid-way still cleans up; without it, a failure removes what was made before it is rethrown.
 */
export async function createThrowawayCluster(opts: {
  prefix?: string;
  home?: string;
  port?: number;
  durable?: boolean;
  seed?: boolean;
  defer?: (remove: () => Promise<void>) => void;
} = {}): Promise<ThrowawayCluster> {
  // A given port may be someone else's cluster: never bootstrap over it.
  if (opts.port) await waitForPort(opts.port, "database");
  let home: string;
  if (opts.home) {
    // It gets deleted on failure and by remove(): only a new or empty folder will do.
    home = resolve(opts.home);
    await Deno.mkdir(home, { recursive: true });
    for await (const _ of Deno.readDir(home)) throw new Error(`${home} is not empty (a cluster already there?)`);
  } else {
    home = await Deno.makeTempDir({ dir: "/tmp", prefix: opts.prefix ?? "csecur360-" });
  }
  if (isRoot()) await run(["chown", "postgres:postgres", home]);
  const cluster = clusterAt(home, opts.port ?? freePort());
  let removing: Promise<void> | undefined;
  const remove = () => removing ??= removeCluster(home);
  opts.defer?.(remove);
  try {
    await initCluster(cluster, { durable: opts.durable ?? false });
    await startCluster(cluster);
    const steps = await prepareDatabase(cluster, { seed: opts.seed ?? false });
    return { cluster, steps, remove };
  } catch (e) {
    if (!opts.defer) await remove().catch(() => {});
    throw e;
  }
}
