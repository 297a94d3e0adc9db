// The database `npm start` keeps between runs (.stack/db). Initialising it (initdb, bootstrap,
// migrations, seed) either finishes or is redone: a marker file is written once all of it has
// succeeded, and a data directory without the marker (a first start that failed or was stopped
// half-way) is wiped and initialised again on the next start, which says so. Without this, the
// next start would see an existing cluster, skip the seed, and leave the database unseeded forever.
import { join } from "node:path";
import {
  type Cluster,
  exists,
  initCluster,
  isRunning,
  prepareDatabase,
  run,
  startCluster,
  stopCluster,
} from "./cluster.ts";
import { waitForPort } from "./ports.ts";

/** Written in the cluster's home once bootstrap, migrations and seed have all succeeded. */
export function initialisedMarker(c: Cluster): string {
  return join(c.home, "initialised");
}

/** The port the cluster in `c.dataDir` runs on (from postmaster.pid), or null when it is not running. */
export async function runningPort(c: Cluster): Promise<number | null> {
  let lines: string[];
  try {
    lines = (await Deno.readTextFile(join(c.dataDir, "postmaster.pid"))).split("\n");
  } catch {
    return null; // not running (or not readable: then pg_ctl will say so)
  }
  const pid = Number(lines[0]);
  try {
    Deno.kill(pid, "SIGCONT"); // is that postmaster still alive?
  } catch {
    return null; // stale file from a crash; postgres removes it on start
  }
  return Number(lines[3]) || null;
}

/** Stops the cluster and deletes its data and marker (the home itself stays). */
export async function wipeStackDatabase(c: Cluster): Promise<void> {
  await stopCluster(c);
  if (await runningPort(c) !== null) throw new Error(`the database in ${c.dataDir} did not stop; not deleting it`);
  await Deno.remove(initialisedMarker(c)).catch(() => {});
  if (await exists(c.dataDir)) await run(["rm", "-rf", c.dataDir], { asServerUser: true });
}

/**
 * Brings the stack's database up: initialised completely (redone if an earlier initialisation did
 * not finish), running on `c.port`, with new migrations applied. `portSetting` names the setting that
 * moves the port, for errors.
 */
export async function ensureStackDatabase(
  c: Cluster,
  opts: { log?: (line: string) => void; portSetting?: string } = {},
): Promise<void> {
  const log = opts.log ?? ((line: string) => console.log(line));
  if (await exists(c.dataDir) && !(await exists(initialisedMarker(c)))) {
    log(
      `  db: the local database in ${c.dataDir} was never fully initialised (an earlier first start ` +
        `stopped before bootstrap, migrations and seed were all done): deleting it and initialising it again`,
    );
    await wipeStackDatabase(c);
  }
  const fresh = await initCluster(c, { durable: true });
  const port = await runningPort(c);
  if (port !== null && port !== c.port) {
    throw new Error(`the local database already runs on port ${port}, not ${c.port}: \`npm run stack -- down\` first`);
  }
  if (port === null) {
    await waitForPort(c.port, "database", { override: opts.portSetting, log });
    await startCluster(c);
  } else if (!(await isRunning(c))) {
    throw new Error(`the local database (pid file in ${c.dataDir}) does not answer on port ${c.port}`);
  }
  for (const step of await prepareDatabase(c, { seed: fresh })) log(`  db: ${step}`);
  if (fresh) {
    await Deno.writeTextFile(
      initialisedMarker(c),
      `bootstrap, migrations and seed done ${new Date().toISOString()}\n`,
    );
  }
}
