// auth.uid() / auth.role() follow the claims of the CURRENT transaction, as on Supabase where each
// request runs in its own transaction on a pooled connection: claims set with is_local = true in
// one transaction are gone in the next one on the same connection, and the next request's claims
// are its own. (The pgTAP file foundation_auth_claims.sql models this with savepoints; this test
// uses real transactions.)
import assert from "node:assert/strict";
import postgres from "postgres";
import { env } from "../_helpers.ts";

const USER_A = "a0000000-0000-4000-8000-00000000000a";
const USER_B = "b0000000-0000-4000-8000-00000000000b";

Deno.test("auth: per-transaction claims on one pooled connection (set local role + request.jwt.claims)", async () => {
  // max: 1 — every transaction below runs on the same server connection, like a pooler would reuse it.
  const sql = postgres(env.dbUrl, { max: 1, prepare: false, onnotice: () => {} });
  try {
    // An anon request's JWT (the anon key) has no `sub`.
    const asUser = (sub: string | null, role: string) =>
      sql.begin(async (tx) => {
        const claims = sub ? { sub, role } : { role };
        await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
        await tx.unsafe(`set local role ${role === "anon" ? "anon" : "authenticated"}`);
        const [row] = await tx`select auth.uid()::text as uid, auth.role() as role, current_user as db_role,
                                      pg_backend_pid() as pid`;
        return row;
      });

    const first = await asUser(USER_A, "authenticated");
    assert.deepEqual([first.uid, first.role, first.db_role], [USER_A, "authenticated", "authenticated"]);

    const [between] = await sql`select auth.uid() as uid, auth.role() as role, current_user as db_role,
                                       pg_backend_pid() as pid`;
    assert.equal(between.pid, first.pid, "same server connection");
    assert.deepEqual([between.uid, between.role, between.db_role], [null, null, "postgres"],
      "after commit, neither the claims nor the role leak into the next transaction");

    const second = await asUser(USER_B, "authenticated");
    assert.equal(second.pid, first.pid);
    assert.deepEqual([second.uid, second.role], [USER_B, "authenticated"], "the next request sees only its own claims");

    const anon = await asUser(null, "anon");
    assert.deepEqual([anon.uid, anon.role, anon.db_role], [null, "anon", "anon"], "an anon request has no uid");

    // A transaction that fails still leaves nothing behind.
    await assert.rejects(sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: USER_A, role: "authenticated" })}, true)`;
      await tx`select 1 / 0`;
    }));
    const [afterRollback] = await sql`select auth.uid() as uid`;
    assert.equal(afterRollback.uid, null, "claims of a rolled-back transaction are gone");
  } finally {
    await sql.end();
  }
});
