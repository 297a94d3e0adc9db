// docs/data-model.md lists every public table's columns; they must be the database's, exactly.
import assert from "node:assert/strict";
import { withDb } from "../_helpers.ts";

const DOC = new URL("../../docs/data-model.md", import.meta.url);

/** The `- \`table\`: col, col` lines between the columns markers of the page. */
function documentedColumns(markdown: string): Map<string, string[]> {
  const section = /<!-- columns:.*?-->([\s\S]*?)<!-- \/columns -->/.exec(markdown);
  if (!section) throw new Error("docs/data-model.md has no <!-- columns --> … <!-- /columns --> section");
  const tables = new Map<string, string[]>();
  for (const line of section[1].split("\n")) {
    const m = /^- `(\w+)`: (.+)$/.exec(line.trim());
    if (m) tables.set(m[1], m[2].split(",").map((c) => c.trim()));
  }
  return tables;
}

Deno.test("docs/data-model.md lists exactly the columns of every public table, in order", async () => {
  const documented = documentedColumns(await Deno.readTextFile(DOC));
  const actual = await withDb((sql) =>
    sql<{ table: string; columns: string[] }[]>`
      select c.relname as table, array_agg(a.attname::text order by a.attnum) as columns
        from pg_class c
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
       group by c.relname`
  );
  const problems: string[] = [];
  for (const { table, columns } of actual) {
    const listed = documented.get(table);
    if (!listed) problems.push(`table ${table} is not documented`);
    else if (listed.join(",") !== columns.join(",")) {
      problems.push(`${table}: documented ${listed.join(", ")}; database has ${columns.join(", ")}`);
    }
  }
  for (const table of documented.keys()) {
    if (!actual.some((t) => t.table === table)) problems.push(`documented table ${table} does not exist`);
  }
  assert.deepEqual(problems, [], "update docs/data-model.md to match the migrations");
});
