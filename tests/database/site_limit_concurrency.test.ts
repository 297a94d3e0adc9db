// The site limit (private.enforce_site_entitlement, migration 20261128030200) under concurrency:
// two transactions racing for a tenant's last allowed site must not both pass. pgTAP runs in one
// session and cannot show this; here each transaction has its own connection, on the real database.
// The rule itself (per status, grace, errors, RLS) is in supabase/tests/billing_entitlements.sql.
import assert from "node:assert/strict";
import postgres from "postgres";
import { asUser, createDb } from "../../supabase/functions/_shared/db.ts";
import { env } from "../_helpers.ts";

interface Tenant {
  id: string;
  admin: string;
}

/** A tenant (with an admin) whose entitlement is `1 + addOns` sites: none → no subscription. */
async function withTenant(sql: postgres.Sql, addOns: number | null, fn: (t: Tenant) => Promise<void>) {
  const tag = crypto.randomUUID().replaceAll("-", "");
  const admin = crypto.randomUUID();
  const [{ id }] = await sql`insert into public.tenants (name) values (${"site limit " + tag}) returning id::text`;
  await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values (${admin}, 'authenticated', 'authenticated', ${`site-limit-${tag}@example.test`}, now(),
                    '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
  await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${id}, ${admin}, 'admin')`;
  if (addOns !== null) {
    const [{ id: customer }] = await sql`
      insert into public.customers (tenant_id, stripe_customer_id) values (${id}, ${"cus_Limit" + tag}) returning id`;
    const [{ id: sub }] = await sql`
      insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at)
      values (${id}, ${customer}, ${"sub_Limit" + tag}, 'active', 'month', now()) returning id`;
    await sql`insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
              values (${id}, ${sub}, ${"si_LimitPlan" + tag}, 'price_LimitPlan', 1, 'plan'),
                     (${id}, ${sub}, ${"si_LimitAddon" + tag}, 'price_LimitAddonSite', ${addOns}, 'addon_site')`;
  }
  try {
    await fn({ id, admin });
  } finally {
    // Billing rows keep a tenant (on delete restrict): remove them first. Audit rows stay (append-only).
    await sql`delete from public.subscriptions where tenant_id = ${id}`;
    await sql`delete from public.customers where tenant_id = ${id}`;
    await sql`delete from public.tenants where id = ${id}`;
    await sql`delete from auth.users where id = ${admin}`;
  }
}

const siteCount = async (sql: postgres.Sql, tenant: string) =>
  (await sql`select count(*)::int as n from public.sites where tenant_id = ${tenant}`)[0].n as number;

const isLimitError = (e: unknown) => e instanceof postgres.PostgresError && e.code === "PT402";

Deno.test("site limit: a second transaction waits for the first and is refused once it commits (1 allowed, 2 racing)", async () => {
  const sql = createDb(env.dbUrl, { max: 3 });
  try {
    await withTenant(sql, null, async ({ id }) => {
      const first = await sql.reserve();
      const second = await sql.reserve();
      try {
        await first`begin`;
        await first`insert into public.sites (tenant_id, name) values (${id}, 'first')`;
        await second`begin`;
        const [{ pid }] = await second`select pg_backend_pid() as pid`;
        // The second insert must block on the tenant lock the first transaction holds.
        let settled: "pending" | "ok" | unknown = "pending";
        const racing = second`insert into public.sites (tenant_id, name) values (${id}, 'second')`.then(
          () => (settled = "ok"),
          (e) => (settled = e),
        );
        const deadline = Date.now() + 5_000;
        let waiting = false;
        while (!waiting && Date.now() < deadline) {
          const [row] = await sql`
            select count(*)::int as n from pg_catalog.pg_stat_activity where pid = ${pid} and wait_event_type = 'Lock'`;
          waiting = row.n > 0;
          if (!waiting) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(waiting, "the second insert waits on a lock while the first transaction is open");
        assert.equal(settled, "pending");
        await first`commit`;
        await racing;
        assert.ok(isLimitError(settled), `the second insert is refused with PT402 once the first commits (got ${String(settled)})`);
        await second`rollback`;
      } finally {
        // After a failed assertion, end whatever is still open (a no-op otherwise).
        await first`rollback`.catch(() => {});
        await second`rollback`.catch(() => {});
        first.release();
        second.release();
      }
      assert.equal(await siteCount(sql, id), 1, "exactly one site");
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
});

Deno.test("site limit: 8 admins' transactions at once for a tenant allowed 3 sites → exactly 3 created, 5 refused (PT402)", async () => {
  const sql = createDb(env.dbUrl, { max: 10 });
  try {
    await withTenant(sql, 2, async ({ id, admin }) => {
      const claims = { sub: admin, role: "authenticated", aud: "authenticated" };
      // Each transaction stays open a little after its insert (as a request doing more work would),
      // so that without the per-tenant lock all eight would count before any commits.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          asUser(claims, async (tx) => {
            await tx`insert into public.sites (tenant_id, name) values (${id}, ${"burst " + i})`;
            await tx`select pg_sleep(0.1)`;
          }, sql)),
      );
      const created = outcomes.filter((o) => o.status === "fulfilled").length;
      const refused = outcomes.filter((o) => o.status === "rejected" && isLimitError(o.reason)).length;
      assert.deepEqual({ created, refused }, { created: 3, refused: 5 }, JSON.stringify(outcomes.map((o) => o.status)));
      assert.equal(await siteCount(sql, id), 3);
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
});
