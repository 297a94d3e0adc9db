// The manifest db-status compares a live database with (supabase/functions/_shared/
// schema-manifest.generated.ts) must be what the migrations build: regenerated here from the test
// database (migrated like any other) and compared with the committed file, and its migration list
// must be exactly the files of supabase/migrations.
import assert from "node:assert/strict";
import { generateSchemaManifest, SCHEMA_MANIFEST_FILE } from "../../scripts/lib/schema-manifest.ts";
import { SCHEMA_MANIFEST } from "../../supabase/functions/_shared/schema-manifest.generated.ts";

Deno.test("schema-manifest.generated.ts matches the migrations (run `npm run gen:types` after adding one)", async () => {
  const dbUrl = Deno.env.get("SUPABASE_DB_URL");
  assert.ok(dbUrl, "SUPABASE_DB_URL must be set (npm test sets it)");
  const fresh = (await generateSchemaManifest(dbUrl)).split("\n");
  const committed = (await Deno.readTextFile(SCHEMA_MANIFEST_FILE).catch(() => "")).split("\n");
  const at = fresh.findIndex((line, i) => line !== committed[i]);
  assert.ok(
    fresh.length === committed.length && at < 0,
    `the schema manifest drifted at line ${at + 1}: committed ${JSON.stringify(committed[at])}, ` +
      `migrations give ${JSON.stringify(fresh[at])} — run \`npm run gen:types\``,
  );
});

Deno.test("the manifest lists exactly the migration files, in order", async () => {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL("../../supabase/migrations", import.meta.url))) {
    if (entry.isFile && entry.name.endsWith(".sql")) files.push(entry.name);
  }
  assert.deepEqual(
    SCHEMA_MANIFEST.migrations.map((m) => `${m.version}_${m.name}.sql`),
    files.sort(),
    "run `npm run gen:types` after adding a migration",
  );
});
