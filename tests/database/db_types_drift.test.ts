// The committed database types must be what `supabase gen types` produces from the migrations.
import assert from "node:assert/strict";
import { DB_TYPES_FILE, generateDbTypes } from "../../scripts/lib/db-types.ts";

Deno.test("database.types.ts matches the migrations (run `npm run gen:types` after a schema change)", async () => {
  const dbUrl = Deno.env.get("SUPABASE_DB_URL");
  assert.ok(dbUrl, "SUPABASE_DB_URL must be set (npm test sets it)");
  const fresh = (await generateDbTypes(dbUrl)).split("\n");
  const committed = (await Deno.readTextFile(DB_TYPES_FILE).catch(() => "")).split("\n");
  const firstDifference = fresh.findIndex((line, i) => line !== committed[i]);
  const at = firstDifference < 0 ? Math.min(fresh.length, committed.length) : firstDifference;
  assert.ok(
    fresh.length === committed.length && firstDifference < 0,
    `types drifted at line ${at + 1}: committed ${JSON.stringify(committed[at])}, ` +
      `migrations give ${JSON.stringify(fresh[at])} — run \`npm run gen:types\``,
  );
});
