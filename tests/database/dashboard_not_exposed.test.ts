// The dashboard views are for the Supabase dashboard (SQL editor, table editor), not the Data API:
// PostgREST serves only the schemas of [api] schemas in supabase/config.toml.
import assert from "node:assert/strict";
import { parse } from "smol-toml";

Deno.test("config.toml exposes only public through the Data API (not dashboard, not private)", async () => {
  const config = parse(await Deno.readTextFile(new URL("../../supabase/config.toml", import.meta.url))) as {
    api: { schemas: string[]; extra_search_path: string[] };
  };
  assert.deepEqual(config.api.schemas, ["public"]);
  assert.ok(!config.api.extra_search_path.includes("dashboard"));
});
