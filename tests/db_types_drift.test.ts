// The committed database types must be what `supabase gen types` produces from the migrations.
import assert from "node:assert/strict";
import { DB_TYPES_FILE, generateDbTypes } from "../scripts/lib/db-types.ts";

Deno.test("database.types.ts matches the migrations (run `npm run gen:types` after a schema change)", async () => {
  const dbUrl = Deno.env.get("SUPABASE_DB_URL");
  assert.ok(dbUrl, "SUPABASE_DB_URL must be set (npm test sets it)");
  const fresh = await generateDbTypes(dbUrl);
  const committed = await Deno.readTextFile(DB_TYPES_FILE).catch(() => "(missing)");
  assert.equal(committed, fresh);
});
