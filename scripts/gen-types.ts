// `npm run gen:types`: regenerates supabase/functions/_shared/database.types.ts and
// supabase/functions/_shared/schema-manifest.generated.ts (what db-status compares a live database
// with) from the migrations, on a throwaway cluster (the test suite fails when either drifts).
import { createThrowawayCluster } from "./local-supabase/cluster.ts";
import { DB_TYPES_FILE, generateDbTypes } from "./lib/db-types.ts";
import { generateSchemaManifest, SCHEMA_MANIFEST_FILE } from "./lib/schema-manifest.ts";
import { createShutdown } from "./lib/shutdown.ts";

const shutdown = createShutdown();
shutdown.trapSignals({ onSignal: () => console.error("interrupted: removing the throwaway cluster") });
try {
  const { cluster } = await createThrowawayCluster({ prefix: "csecur360-types-", defer: shutdown.defer });
  await Deno.writeTextFile(DB_TYPES_FILE, await generateDbTypes(cluster.url));
  console.log(`wrote ${DB_TYPES_FILE}`);
  await Deno.writeTextFile(SCHEMA_MANIFEST_FILE, await generateSchemaManifest(cluster.url));
  console.log(`wrote ${SCHEMA_MANIFEST_FILE}`);
} catch (e) {
  // Interrupted: what failed is only the work cut short; the signal handler exits.
  if (!shutdown.interrupted) {
    console.error(`gen:types: ${e instanceof Error ? e.message : e}`);
    Deno.exitCode = 1;
  }
} finally {
  await shutdown.run();
}
