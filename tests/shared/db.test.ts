// _shared/db.ts against the real database (SUPABASE_DB_URL from the test runner) and the seed:
// asUser runs as `authenticated` with the user's claims so RLS decides; claims never outlive their
// transaction on a pooled connection; a failure rolls everything back and leaves the connection clean.
import assert from "node:assert/strict";
import postgres from "postgres";
import { asService, asUser, callJson, closeDb, createDb, db, jsonLiteral } from "../../supabase/functions/_shared/db.ts";
import { env } from "../_helpers.ts";

// supabase/seed.sql
const BOREAL = "11111111-1111-4111-8111-111111111111";
const LAURENTIDES = "22222222-2222-4222-8222-222222222222";
const JULIE_OWNER_BOREAL = "a1000000-0000-4000-8000-000000000001";
const MARC_MEMBER_BOREAL = "a1000000-0000-4000-8000-000000000002";
const SARAH_ADMIN_LAURENTIDES = "b2000000-0000-4000-8000-000000000001";
const SITE_ROSEMONT = "5a000000-0000-4000-8000-000000000001";

const user = (sub: string) => ({ sub, role: "authenticated", aud: "authenticated" });

/** A pool of ONE connection: every transaction below reuses it, as a pooler would. */
async function withOneConnection<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = createDb(env.dbUrl, { max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

Deno.test("db: inside asUser, RLS decides: a member sees their own tenant only", async () => {
  await withOneConnection(async (sql) => {
    const seen = await asUser(user(MARC_MEMBER_BOREAL), async (tx) => {
      const [who] = await tx`select auth.uid()::text as uid, auth.role() as role, current_user as db_role`;
      const tenants = await tx`select id::text from public.tenants order by id`;
      const sites = await tx`select distinct tenant_id::text from public.sites`;
      return { who, tenants: tenants.map((r) => r.id), sites: sites.map((r) => r.tenant_id) };
    }, sql);
    assert.deepEqual(seen.who, { uid: MARC_MEMBER_BOREAL, role: "authenticated", db_role: "authenticated" });
    assert.deepEqual(seen.tenants, [BOREAL]);
    assert.deepEqual(seen.sites, [BOREAL]);

    const other = await asUser(user(SARAH_ADMIN_LAURENTIDES), (tx) => tx`select id::text from public.tenants`, sql);
    assert.deepEqual(other.map((r) => r.id), [LAURENTIDES]);

    // The service sees both (role postgres, BYPASSRLS).
    const all = await asService((s) => s`select count(*)::int as n from public.tenants`, sql);
    assert.ok(all[0].n >= 2);
  });
});

Deno.test("db: claims and role do not leak into the next transaction on the same pooled connection", async () => {
  await withOneConnection(async (sql) => {
    const probe = (s: postgres.Sql) =>
      s`select auth.uid()::text as uid, current_user as db_role, pg_backend_pid() as pid,
               current_setting('request.jwt.claims', true) as claims`;
    const [first] = await asUser(user(JULIE_OWNER_BOREAL), probe, sql);
    const [between] = await probe(sql);
    assert.equal(between.pid, first.pid, "same server connection");
    assert.equal(first.uid, JULIE_OWNER_BOREAL);
    assert.deepEqual([between.uid, between.db_role, between.claims || null], [null, "postgres", null]);

    const [second] = await asUser(user(SARAH_ADMIN_LAURENTIDES), probe, sql);
    assert.equal(second.pid, first.pid);
    assert.equal(second.uid, SARAH_ADMIN_LAURENTIDES, "the next request sees only its own claims");
  });
});

Deno.test("db: a throw or a SQL error inside asUser rolls back, and the connection stays usable", async () => {
  await withOneConnection(async (sql) => {
    const nameOf = async () => (await sql`select name from public.sites where id = ${SITE_ROSEMONT}`)[0].name;
    const before = await nameOf();

    await assert.rejects(
      asUser(user(JULIE_OWNER_BOREAL), async (tx) => {
        const updated = await tx`update public.sites set name = 'renamed by a failed request' where id = ${SITE_ROSEMONT}`;
        assert.equal(updated.count, 1, "the owner may update it (RLS)");
        throw new Error("handler failed after writing");
      }, sql),
      /handler failed after writing/,
    );
    assert.equal(await nameOf(), before, "a throw rolls back");

    await assert.rejects(
      asUser(user(JULIE_OWNER_BOREAL), async (tx) => {
        await tx`update public.sites set name = 'renamed before a SQL error' where id = ${SITE_ROSEMONT}`;
        await tx`select 1 / 0`;
      }, sql),
      (e: unknown) => e instanceof postgres.PostgresError && e.code === "22012",
    );
    assert.equal(await nameOf(), before, "a SQL error rolls back");

    // A query handed back unawaited (sent together with COMMIT) that fails: rolled back too.
    await assert.rejects(
      asUser(user(JULIE_OWNER_BOREAL), (tx) => tx`update public.sites set name = 'x' where id = ${SITE_ROSEMONT} and 1 / 0 = 1`, sql),
      (e: unknown) => e instanceof postgres.PostgresError && e.code === "22012",
    );

    // RLS refusals are errors too: a member cannot insert a site.
    await assert.rejects(
      asUser(user(MARC_MEMBER_BOREAL), (tx) => tx`insert into public.sites (tenant_id, name) values (${BOREAL}, 'nope')`, sql),
      (e: unknown) => e instanceof postgres.PostgresError && e.code === "42501",
    );

    const [state] = await sql`select current_user as db_role, pg_current_xact_id_if_assigned() as xid,
                                     current_setting('request.jwt.claims', true) as claims`;
    assert.deepEqual([state.db_role, state.xid, state.claims || null], ["postgres", null, null], "nothing left open");
  });
});

Deno.test("db: a query returned unawaited commits with it; an awaited one commits after", async () => {
  await withOneConnection(async (sql) => {
    // A tenant of its own with room for its one included site (the seed's tenants are at their
    // site limit: the database refuses a site beyond the entitlement), and its owner.
    const owner = crypto.randomUUID();
    await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
              values (${owner}, 'authenticated', 'authenticated', ${`db-test-${owner}@example.test`}, now(),
                      '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
    const [{ id: tenant }] = await sql`insert into public.tenants (name) values (${"db test " + owner}) returning id::text`;
    await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant}, ${owner}, 'owner')`;
    try {
      const name = `Site from the db test ${crypto.randomUUID()}`;
      const inserted = await asUser(
        user(owner),
        (tx) => tx`insert into public.sites (tenant_id, name) values (${tenant}, ${name}) returning id::text`,
        sql,
      );
      assert.equal(inserted.length, 1);
      const [persisted] = await sql`select tenant_id::text, name from public.sites where id = ${inserted[0].id}`;
      assert.deepEqual({ ...persisted }, { tenant_id: tenant, name }, "committed");
      const deleted = await asUser(user(owner), async (tx) => {
        const rows = await tx`delete from public.sites where id = ${inserted[0].id} returning id`;
        return rows.length;
      }, sql);
      assert.equal(deleted, 1);
      assert.equal((await sql`select 1 from public.sites where id = ${inserted[0].id}`).length, 0, "committed");
    } finally {
      await sql`delete from public.tenants where id = ${tenant}`;
      await sql`delete from auth.users where id = ${owner}`;
    }
  });
});

Deno.test("db: the claims literal carries quotes, backslashes and any Unicode intact, whatever standard_conforming_strings says", async () => {
  const tricky = {
    ...user(MARC_MEMBER_BOREAL),
    email: "o'brien\\'; drop table public.sites; --@example.com",
    name: "Kevin \"O'Brien\" \\n $$ $x$ \u2028 é 🦺 \u0001",
  };
  for (const conforming of ["on", "off"]) {
    const sql = createDb(env.dbUrl, { max: 1, connection: { standard_conforming_strings: conforming } });
    try {
      const [row] = await asUser(tricky, (tx) => tx`select auth.jwt() as jwt, current_setting('standard_conforming_strings') as scs`, sql);
      assert.equal(row.scs, conforming);
      assert.deepEqual(row.jwt, { ...tricky, role: "authenticated" });
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
  assert.equal(jsonLiteral({ a: "it's" }), `E'{"a":"it''s"}'`);
});

Deno.test("db: asUser refuses claims that are not a user's, before touching the database", async () => {
  const sql = createDb("postgresql://nobody@127.0.0.1:1/none", { max: 1, connect_timeout: 1 });
  try {
    await assert.rejects(asUser({ sub: "" }, () => 1, sql), TypeError);
    await assert.rejects(asUser({ sub: JULIE_OWNER_BOREAL, role: "service_role" }, () => 1, sql), /asService/);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

Deno.test("db: db() is the worker's lazy pool from SUPABASE_DB_URL, with the functions' options", async () => {
  try {
    const [row] = await db()`select current_setting('application_name') as app, current_user as db_role`;
    assert.deepEqual({ ...row }, { app: "c-secur360 edge function", db_role: "postgres" });
    assert.equal(db(), db(), "one pool per worker");
  } finally {
    await closeDb();
  }
});

/**
 * A TCP proxy in front of the database that counts the client's flights: bursts of bytes sent after
 * the server last spoke. One flight = one network round trip's worth of waiting.
 */
async function withFlightCounter<T>(fn: (url: string, flights: () => number, reset: () => void) => Promise<T>): Promise<T> {
  const target = new URL(env.dbUrl);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let flights = 0;
  let serverSpokeLast = true;
  const pipe = async (from: Deno.Conn, to: Deno.Conn, fromClient: boolean) => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf).catch(() => null);
      if (!n) break;
      if (fromClient && serverSpokeLast) flights++;
      serverSpokeLast = !fromClient;
      await to.write(buf.subarray(0, n)).catch(() => {});
    }
    try {
      to.close(); // one side hung up: so does the other
    } catch { /* already closed */ }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port || 5432) });
      conns.push(client, server);
      void pipe(client, server, true);
      void pipe(server, client, false);
    }
  })().catch(() => {});
  const url = new URL(env.dbUrl);
  url.hostname = "127.0.0.1";
  url.port = String((listener.addr as Deno.NetAddr).port);
  try {
    return await fn(url.toString(), () => flights, () => {
      flights = 0;
      serverSpokeLast = true;
    });
  } finally {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await accepting;
  }
}

Deno.test("db: asUser's setup rides along with the first statement (round trips counted at the socket)", async () => {
  await withFlightCounter(async (url, flights, reset) => {
    const sql = createDb(url, { max: 1 });
    try {
      await sql`select 1`; // connected
      const count = async (fn: () => Promise<unknown>) => {
        reset();
        await fn();
        return flights();
      };
      const claims = user(MARC_MEMBER_BOREAL);
      // BEGIN, role + claims, the statement and COMMIT: one flight.
      assert.equal(await count(() => asUser(claims, (tx) => tx`select count(*) from public.sites`, sql)), 1);
      // Awaited inside fn: COMMIT waits for the result, so two.
      assert.equal(await count(() => asUser(claims, async (tx) => await tx`select count(*) from public.sites`, sql)), 2);
      // With a parameter postgres.js (prepare: false) first asks the server for its types: three,
      // where the textbook sql.begin + set_config + set local role sequence takes seven.
      const bySite = (tx: postgres.Sql | postgres.TransactionSql) => tx`select count(*) from public.sites where tenant_id = ${BOREAL}`;
      assert.equal(await count(() => asUser(claims, bySite, sql)), 3);
      assert.equal(
        await count(() =>
          sql.begin(async (tx) => {
            await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
            await tx.unsafe("set local role authenticated");
            return await bySite(tx);
          })
        ),
        7,
      );
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

Deno.test("db: callJson (the webhooks' one statement) is one round trip and passes the JSON a parameter would", async () => {
  await withFlightCounter(async (url, flights, reset) => {
    const sql = createDb(url, { max: 1 });
    try {
      await sql`select 1`; // connected
      // Quotes, backslashes, a newline, accents, a character outside the BMP, nesting, a null.
      const payload = { body: "  Arrêt ! l'\"été\" \\ C:\\n\n☎ 😀", kind: null, n: 1601, nested: { a: [true, "x'y"] } };
      reset();
      const [{ result }] = await callJson(sql, "pg_catalog.to_jsonb", payload);
      assert.equal(flights(), 1);
      reset();
      const [{ r }] = await sql`select pg_catalog.to_jsonb(${sql.json(payload)}::jsonb) as r`;
      assert.equal(flights(), 2, "a parameter costs a second round trip (the reason for callJson)");
      assert.deepEqual(result, r);
      assert.deepEqual(result, payload);
      // The function name is code, never input.
      assert.throws(() => callJson(sql, "pg_catalog.to_jsonb('{}'::jsonb); select 1; --", {}), TypeError);
      assert.throws(() => callJson(sql, "to_jsonb", {}), TypeError);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});
