// The local pg_net worker (scripts/local-supabase/pg_net/worker.ts, run by the gateway): requests queued by
// net.http_* are sent only once their transaction commits, exactly once, and their outcome is
// recorded in net._http_response, as pg_net does. Counted on a real HTTP server started here.
import assert from "node:assert/strict";
import { delay, type Sql, startHitServer, waitFor, withDb } from "../_helpers.ts";

/** Longer than the worker's safety-net poll (1 s): time enough for a stray send to show up. */
const GRACE_MS = 2_500;

interface ResponseRow {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean | null;
  error_msg: string | null;
}

function responseRow(sql: Sql, id: string) {
  return async () => {
    const rows = await sql<ResponseRow[]>`
      select id::text, status_code, content_type, headers, content, timed_out, error_msg
        from net._http_response where id = ${id}::bigint`;
    return rows[0];
  };
}

async function cleanup(sql: Sql, ids: string[]) {
  if (!ids.length) return;
  await sql`delete from net.http_request_queue where id = any(${ids}::bigint[])`;
  await sql`delete from net._http_response where id = any(${ids}::bigint[])`;
}

class Rollback extends Error {}

Deno.test("net: a request queued in a transaction that rolls back is never sent", async () => {
  const server = await startHitServer();
  const ids: string[] = [];
  try {
    await withDb(async (sql) => {
      try {
        const token = crypto.randomUUID();
        await assert.rejects(
          sql.begin(async (tx) => {
            const [{ id }] =
              await tx`select net.http_post(${`${server.url}/rolled-back/${token}`}, '{"n": 1}'::jsonb)::text as id`;
            ids.push(id);
            throw new Rollback();
          }),
          Rollback,
        );
        // A committed request queued after it, to know the worker has gone past the rolled-back id.
        const [{ id: later }] = await sql`select net.http_get(${`${server.url}/committed/${token}`})::text as id`;
        ids.push(later);
        await waitFor("the committed request", responseRow(sql, later));
        await delay(GRACE_MS);
        assert.equal(server.hitsFor(`/rolled-back/${token}`).length, 0, "the rolled-back request was sent");
        assert.equal(server.hitsFor(`/committed/${token}`).length, 1);
        assert.equal(await responseRow(sql, ids[0])(), undefined, "a response was recorded for a rolled-back request");
      } finally {
        await cleanup(sql, ids);
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("net: a committed http_post is sent exactly once and its response recorded", async () => {
  const server = await startHitServer((hit) =>
    Response.json({ received: new TextDecoder().decode(hit.body) }, {
      status: 201,
      headers: { "x-hit-server": "yes" },
    })
  );
  const ids: string[] = [];
  try {
    await withDb(async (sql) => {
      try {
        const path = `/committed-post/${crypto.randomUUID()}`;
        const id = await sql.begin(async (tx) => {
          const [{ id }] = await tx`
          select net.http_post(
            url := ${server.url + path},
            body := '{"phone": "+15145550142", "n": 1}'::jsonb,
            params := '{"tenant": "t 1"}'::jsonb,
            headers := '{"Content-Type": "application/json", "X-Api-Key": "test-key-123"}'::jsonb
          )::text as id`;
          // Not before commit: PostgreSQL delivers the NOTIFY at commit; the poll cannot see it either.
          await delay(1_500);
          assert.equal(server.hitsFor(path).length, 0, "sent before its transaction committed");
          return id as string;
        });
        ids.push(id);
        const row = await waitFor("the recorded response", responseRow(sql, id));
        await delay(GRACE_MS);
        const hits = server.hitsFor(path);
        assert.equal(hits.length, 1, `sent ${hits.length} times`);
        assert.equal(hits[0].method, "POST");
        assert.equal(hits[0].query, "?tenant=t%201");
        assert.equal(hits[0].headers.get("x-api-key"), "test-key-123");
        assert.equal(hits[0].headers.get("content-type"), "application/json");
        assert.deepEqual(JSON.parse(new TextDecoder().decode(hits[0].body)), { phone: "+15145550142", n: 1 });

        assert.equal(row.status_code, 201);
        assert.match(row.content_type ?? "", /^application\/json/);
        assert.equal(row.headers?.["x-hit-server"], "yes");
        assert.deepEqual(JSON.parse(row.content ?? ""), { received: '{"n": 1, "phone": "+15145550142"}' });
        assert.equal(row.timed_out, false);
        assert.equal(row.error_msg, null);
        const [{ queued }] =
          await sql`select count(*)::int as queued from net.http_request_queue where id = ${id}::bigint`;
        assert.equal(queued, 0, "the request is no longer queued");
      } finally {
        await cleanup(sql, ids);
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("net: a request that exceeds timeout_milliseconds is recorded as timed out", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const server = await startHitServer(async () => {
    await Promise.race([released, delay(5_000)]);
    return new Response("too late");
  });
  try {
    await withDb(async (sql) => {
      const [{ id }] = await sql`
        select net.http_get(${`${server.url}/slow/${crypto.randomUUID()}`}, timeout_milliseconds := 300)::text as id`;
      try {
        const row = await waitFor("the timed-out response", responseRow(sql, id), { timeoutMs: 8_000 });
        assert.equal(row.timed_out, true);
        assert.equal(row.status_code, null);
        assert.match(row.error_msg ?? "", /Timeout of 300 ms/);
      } finally {
        await cleanup(sql, [id]);
      }
    });
  } finally {
    release();
    await server.close();
  }
});

Deno.test("net: an unreachable URL is recorded with its error", async () => {
  // A port we just closed: nothing listens there.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  await withDb(async (sql) => {
    const [{ id }] = await sql`select net.http_delete(${`http://127.0.0.1:${port}/gone`})::text as id`;
    try {
      const row = await waitFor("the failed response", responseRow(sql, id));
      assert.equal(row.status_code, null);
      assert.equal(row.timed_out, false);
      assert.ok(row.error_msg, "an error message is recorded");
    } finally {
      await cleanup(sql, [id]);
    }
  });
});

Deno.test("net: http_delete sends its body, and a lower-case method queued directly is sent as pg_net does", async () => {
  const server = await startHitServer();
  const ids: string[] = [];
  try {
    await withDb(async (sql) => {
      try {
        const token = crypto.randomUUID();
        const [{ id: deleteId }] = await sql`
          select net.http_delete(${`${server.url}/delete/${token}`}, body := '{"site": 3}'::jsonb)::text as id`;
        ids.push(deleteId);
        // net.http_method is a text domain that accepts any case (pg_net 0.12+).
        const [{ id: rawId }] = await sql`
          insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
          values ('get', ${`${server.url}/raw/${token}`}, null, 5000) returning id::text as id`;
        ids.push(rawId);
        await waitFor("both responses", async () => (await responseRow(sql, deleteId)()) && (await responseRow(sql, rawId)()));
        const [deleted] = server.hitsFor(`/delete/${token}`);
        assert.equal(deleted.method, "DELETE");
        assert.deepEqual(JSON.parse(new TextDecoder().decode(deleted.body)), { site: 3 });
        assert.equal(server.hitsFor(`/raw/${token}`)[0]?.method, "GET");
      } finally {
        await cleanup(sql, ids);
      }
    });
  } finally {
    await server.close();
  }
});
