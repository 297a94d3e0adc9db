// What the billing-checkout and billing-portal tests share: the functions' settings
// (tests/fixtures/functions/.env.test), the runner's fake Stripe (STRIPE_API_BASE) reached with the
// real SDK and its control endpoints, and a tenant of their own per test (users with roles,
// optionally a Stripe customer and a subscription), removed afterwards.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { StripeFakeControl } from "../../scripts/fakes/stripe-control.ts";
import { createStripeClient, type Stripe } from "../../supabase/functions/_shared/stripe/client.ts";
import { env, mintUserToken, type Sql, withDb } from "../_helpers.ts";

export const fixtureSettings = parseDotenv(
  await Deno.readTextFile(fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url))),
);
export const APP_URL = fixtureSettings.APP_URL;

function stripeBase(): string {
  const base = Deno.env.get("STRIPE_API_BASE");
  assert.ok(base, "the runner sets STRIPE_API_BASE (its fake Stripe)");
  return base;
}

/** The runner's fake Stripe through the real SDK (no retries: what it holds, as is). */
export function fakeStripe(): Stripe {
  return createStripeClient(fixtureSettings.STRIPE_SECRET_KEY, stripeBase(), { maxNetworkRetries: 0 });
}

export function fakeControl(): StripeFakeControl {
  return new StripeFakeControl(stripeBase());
}

/** API calls the fake received for `route` (e.g. "POST /v1/customers") so far. */
export async function callsTo(route: string): Promise<number> {
  return (await fakeControl().calls()).calls[route] ?? 0;
}

/** The fake's customers whose metadata.tenant_id is `tenantId`. */
export async function fakeCustomersOf(tenantId: string): Promise<Stripe.Customer[]> {
  const found: Stripe.Customer[] = [];
  for await (const c of fakeStripe().customers.list({ limit: 100 })) {
    if (c.metadata?.tenant_id === tenantId) found.push(c);
  }
  return found;
}

export interface TenantFixture {
  sql: Sql;
  id: string;
  name: string;
  /** A user with this role in the tenant (null: no membership), and their session token. */
  user(role: "owner" | "admin" | "member" | null): Promise<{ id: string; token: string }>;
  /** A customers row for a customer created in the fake (or `stripeCustomerId` as given). */
  customer(stripeCustomerId?: string): Promise<string>;
  /** A subscriptions row with that status (needs customer() first). */
  subscription(status: string): Promise<void>;
  /** Adds an existing user as a member of this tenant. */
  addMember(userId: string, role: "owner" | "admin" | "member"): Promise<void>;
}

let counter = 0;

export async function withTenant(fn: (t: TenantFixture) => Promise<void>): Promise<void> {
  await withDb(async (sql) => {
    const name = `Billing test ${++counter} ${crypto.randomUUID().slice(0, 8)}`;
    const [{ id }] = await sql`insert into public.tenants (name) values (${name}) returning id::text`;
    const users: string[] = [];
    let customerId: string | undefined;
    const t: TenantFixture = {
      sql,
      id,
      name,
      async user(role) {
        const uid = crypto.randomUUID();
        await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                  values (${uid}, 'authenticated', 'authenticated', ${`billing-${uid}@example.test`}, now(),
                          '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
        users.push(uid);
        if (role) await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${id}, ${uid}, ${role})`;
        return { id: uid, token: await mintUserToken(uid) };
      },
      async customer(stripeCustomerId) {
        const cus = stripeCustomerId ?? (await fakeStripe().customers.create({ name, metadata: { tenant_id: id } })).id;
        const [row] = await sql`insert into public.customers (tenant_id, stripe_customer_id) values (${id}, ${cus}) returning id::text`;
        customerId = row.id;
        return cus;
      },
      async subscription(status) {
        assert.ok(customerId, "customer() first");
        await sql`insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at)
                  values (${id}, ${customerId}, ${"sub_Billing" + crypto.randomUUID().replaceAll("-", "")}, ${status}, 'month', now())`;
      },
      async addMember(userId, role) {
        await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${id}, ${userId}, ${role})`;
      },
    };
    try {
      await fn(t);
    } finally {
      // Billing rows keep a tenant (on delete restrict): removed first, once the fake Stripe's events
      // (stripe-webhook writes subscriptions and invoices) are all in. Audit rows stay (append-only).
      await fakeControl().settled();
      await sql`delete from public.invoices where tenant_id = ${id}`;
      await sql`delete from public.subscriptions where tenant_id = ${id}`;
      await sql`delete from public.customers where tenant_id = ${id}`;
      await sql`delete from public.tenants where id = ${id}`;
      for (const uid of users) await sql`delete from auth.users where id = ${uid} and not exists (select from public.tenant_members where user_id = ${uid})`;
    }
  });
}

/** POST a JSON body (a string is sent as is) with these headers. */
export function post(url: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export const asUserToken = (token: string) => ({ authorization: `Bearer ${token}`, apikey: env.publishableKey });

/** The JSON answer; asserts that no key or secret ever appears in a response. */
// deno-lint-ignore no-explicit-any
export async function json(res: Response): Promise<Record<string, any>> {
  const text = await res.text();
  for (const secret of [env.secretKey, fixtureSettings.STRIPE_SECRET_KEY, env.serviceRoleKey]) {
    assert.ok(!text.includes(secret), "no key in a response");
  }
  return JSON.parse(text);
}

/** The billing audit rows of a tenant, oldest first. */
export async function billingAudit(sql: Sql, tenantId: string) {
  // deno-lint-ignore no-explicit-any
  const rows = await sql<{ action: string; actor: string | null; target: string | null; details: Record<string, any> }[]>`
    select action, actor, target, details from public.system_audit_logs
     where area = 'billing' and tenant_id = ${tenantId} order by id`;
  return rows.map((r) => ({ ...r }));
}
