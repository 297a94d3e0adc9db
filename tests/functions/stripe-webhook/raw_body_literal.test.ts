// stripe-webhook sends the raw body Stripe signed to SQL as a literal (db.ts jsonTextLiteral), not
// a re-serialised copy: the server must read exactly the JSON the text holds, whatever it contains
// (quotes, backslashes and escapes, accents and emoji, pretty-printing), and a NUL is refused here.
import assert from "node:assert/strict";
import { withDb } from "../../_helpers.ts";
import { jsonTextLiteral } from "../../../supabase/functions/_shared/db.ts";

const TEXTS = [
  `{"a": "it's", "b": "O'Brien \\\\ C:\\\\dir", "c": "\\"quoted\\"", "d": "\\u00e9\\n\\t\\\\'"}`,
  JSON.stringify({ city: "Montréal", note: "Ça coûte 50 $ — 😀", nested: { list: [1, 2.5, -3e2, null, true] } }, null, 2),
  `{"id": "evt_x", "big": 12345678901234567890, "backslash_quote": "\\\\'; drop table x; --"}`,
  `  {"spaces": "around"}\r\n`,
];

Deno.test("jsonTextLiteral: PostgreSQL reads the very JSON the raw text holds", async () => {
  await withDb(async (sql) => {
    for (const text of TEXTS) {
      // The reference: the same text as a bound text parameter (no literal escaping involved).
      const [row] = await sql.unsafe<{ same: boolean; literal: string }[]>(
        `select ${jsonTextLiteral(text)}::jsonb = ($1::text)::jsonb as same, (${jsonTextLiteral(text)}::jsonb)::text as literal`,
        [text],
      );
      assert.equal(row.same, true, text);
    }
    const [big] = await sql.unsafe<{ v: string }[]>(`select (${jsonTextLiteral(TEXTS[2])}::jsonb ->> 'big') as v`);
    assert.equal(big.v, "12345678901234567890", "numbers kept exactly (no JavaScript rounding)");
  });
  assert.throws(() => jsonTextLiteral('{"a": "\u0000"}'), /NUL/);
});
