// Initialising the `npm start` database either finishes or is redone: a first start that stopped
// after initdb but before the seed must not leave a database the next start never seeds.
// Driven on a throwaway cluster (temp home, free port), never the stack's own.
import assert from "node:assert/strict";
import { createThrowawayCluster, exists, psql, stopCluster } from "../../scripts/local-supabase/cluster.ts";
import { ensureStackDatabase, initialisedMarker } from "../../scripts/local-supabase/stack-db.ts";

Deno.test("stack init: an unfinished first start is wiped and initialised again; a finished one is kept", async () => {
  // What a first start that failed before its seed leaves: bootstrap and migrations, no seed, no marker.
  const db = await createThrowawayCluster({ prefix: "csecur360-stack-init-test-", seed: false });
  const c = db.cluster;
  try {
    await stopCluster(c);
    const lines: string[] = [];
    await ensureStackDatabase(c, { log: (l) => lines.push(l) });
    assert.match(lines.join("\n"), /never fully initialised.*initialising it again/);
    assert.ok(lines.some((l) => /seed\.sql loaded/.test(l)), lines.join("\n"));
    assert.ok(await exists(initialisedMarker(c)), "the completion marker is written");
    assert.ok(Number(await psql(c, "select count(*) from public.tenants")) > 0, "the seed was loaded");

    // Once finished, a restart keeps the data (and does not seed again).
    await psql(c, "insert into public.tenants (name) values ('Kept across restarts')");
    await stopCluster(c);
    lines.length = 0;
    await ensureStackDatabase(c, { log: (l) => lines.push(l) });
    assert.doesNotMatch(lines.join("\n"), /never fully initialised|seed\.sql loaded/);
    assert.equal(
      (await psql(c, "select count(*) from public.tenants where name = 'Kept across restarts'")).trim(),
      "1",
    );
  } finally {
    await db.remove();
  }
});
