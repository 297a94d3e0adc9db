// db-status through a gateway of its own and the real database: the service gets each section
// compared with the manifest this code was deployed with; nobody else gets anything; it writes
// nothing; an unreachable database is a quick 503.
import assert from "node:assert/strict";
import { generateLocalProviderSettings } from "../../../scripts/local-supabase/local-config.ts";
import { freePort } from "../../../scripts/local-supabase/cluster.ts";
import { env, mintUserToken, withDb } from "../../_helpers.ts";
import { SCHEMA_MANIFEST } from "../../../supabase/functions/_shared/schema-manifest.generated.ts";
import { leakedFragment, secretValues, startOwnGateway } from "../system-status/status_gateway.ts";

const service = () => ({ apikey: env.secretKey, authorization: `Bearer ${env.secretKey}` });

Deno.test("db-status: the service gets schemas, tables, RLS, migrations, cron jobs and Vault names compared with the manifest", async (t) => {
  const settings = generateLocalProviderSettings();
  const gateway = await startOwnGateway({ functions: ["db-status"], settings });
  const texts: string[] = [];
  try {
    await t.step("200 with every section; the migrations, tables and schemas are the manifest's", async () => {
      const res = await fetch(gateway.functionUrl("db-status"), { headers: service() });
      const text = await res.text();
      texts.push(text);
      assert.equal(res.status, 200, text);
      const body = JSON.parse(text);
      for (const section of ["schemas", "tables", "rls", "migrations", "cron", "vault"]) {
        assert.ok(["ok", "fail"].includes(body[section]?.status), `${section}: ${JSON.stringify(body[section])}`);
      }
      assert.equal(body.status, ["schemas", "tables", "rls", "migrations", "cron", "vault"].some((s) => body[s].status === "fail")
        ? "degraded"
        : "ok");
      assert.equal(body.migrations.status, "ok", JSON.stringify(body.migrations));
      assert.equal(body.migrations.deployed, SCHEMA_MANIFEST.migrations.length);
      assert.equal(body.migrations.applied, SCHEMA_MANIFEST.migrations.length);
      assert.deepEqual(body.migrations.last_applied, SCHEMA_MANIFEST.migrations.at(-1));
      assert.equal(body.tables.status, "ok", JSON.stringify(body.tables));
      assert.equal(body.rls.status, "ok", JSON.stringify(body.rls.without_rls));
      assert.equal(body.rls.tables.length, SCHEMA_MANIFEST.publicTables.length);
      assert.equal(body.schemas.status, "ok");
      assert.deepEqual(body.cron.missing, []);
      assert.deepEqual(body.cron.schedule_differs, []);
      assert.ok(typeof body.extensions.pg_cron === "string");
      // The Vault secrets the scheduled calls read, by name (the test stack may or may not hold them).
      assert.deepEqual([...body.vault.present, ...body.vault.missing].sort(), ["functions_url", "service_secret_key"]);
      assert.equal(body.vault.status, body.vault.missing.length ? "fail" : "ok");
    });

    await t.step("it writes nothing (same row counts and audit trail before and after)", async () => {
      const counts = () =>
        withDb((sql) =>
          sql`select (select count(*) from public.system_audit_logs)::int as audit,
                     (select count(*) from private.system_status_history)::int as history,
                     (select count(*) from cron.job)::int as jobs`
        );
      const before = await counts();
      const res = await fetch(gateway.functionUrl("db-status"), { headers: service() });
      texts.push(await res.text());
      assert.deepEqual(await counts(), before);
    });

    await t.step("nobody: 401; a user session, even a tenant owner's: 403; wrong method: 405", async () => {
      const nobody = await fetch(gateway.functionUrl("db-status"), { headers: { apikey: env.publishableKey } });
      texts.push(await nobody.text());
      assert.equal(nobody.status, 401);
      const userId = await withDb(async (sql) => {
        const id = crypto.randomUUID();
        await sql`insert into auth.users (id, aud, role, email, created_at, updated_at)
                  values (${id}, 'authenticated', 'authenticated', ${`db-status-${id}@example.test`}, now(), now())`;
        const [{ id: tenant }] = await sql`insert into public.tenants (name) values (${"db-status " + id}) returning id`;
        await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant}, ${id}, 'owner')`;
        return id;
      });
      const owner = await fetch(gateway.functionUrl("db-status"), {
        headers: { authorization: `Bearer ${await mintUserToken(userId)}`, apikey: env.publishableKey },
      });
      const ownerText = await owner.text();
      texts.push(ownerText);
      assert.equal(owner.status, 403, ownerText);
      assert.ok(!ownerText.includes("migrations"));
      const post = await fetch(gateway.functionUrl("db-status"), { method: "POST", headers: service() });
      texts.push(await post.text());
      assert.equal(post.status, 405);
    });
  } finally {
    await gateway.close();
    const everything = [...texts, ...gateway.logs].join("\n");
    for (const value of secretValues(settings)) assert.equal(leakedFragment(everything, value), undefined);
  }
});

Deno.test("db-status: an unreachable database is a 503 down within 3 s", async () => {
  const gateway = await startOwnGateway({
    functions: ["db-status"],
    settings: generateLocalProviderSettings(),
    dbUrl: `postgresql://postgres:postgres@127.0.0.1:${freePort()}/postgres`,
  });
  try {
    const started = performance.now();
    const res = await fetch(gateway.functionUrl("db-status"), { headers: service() });
    const body = await res.json();
    assert.equal(res.status, 503);
    assert.ok(performance.now() - started < 3000);
    assert.deepEqual(body, { status: "down", database: { reachable: false, error: "unreachable", code: "ECONNREFUSED" } });
  } finally {
    await gateway.close();
  }
});
