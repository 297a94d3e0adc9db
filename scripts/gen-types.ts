// `npm run gen:types`: regenerates supabase/functions/_shared/database.types.ts from the
// migrations, on a throwaway cluster (the test suite fails when the committed file drifts).
import { mkdtemp } from "node:fs/promises";
import { clusterAt, freePort, initCluster, prepareDatabase, run, startCluster, stopCluster } from "./local-supabase/cluster.ts";
import { DB_TYPES_FILE, generateDbTypes } from "./lib/db-types.ts";

const home = await mkdtemp("/tmp/csecur360-types-");
if (Deno.uid() === 0) await run(["chown", "postgres:postgres", home]);
const cluster = clusterAt(home, freePort());
try {
  await initCluster(cluster, { durable: false });
  await startCluster(cluster);
  await prepareDatabase(cluster, { seed: false });
  await Deno.writeTextFile(DB_TYPES_FILE, await generateDbTypes(cluster.url));
  console.log(`wrote ${DB_TYPES_FILE}`);
} finally {
  await stopCluster(cluster);
  await run(["rm", "-rf", home]);
}
