// What `npm run ops -- billing …` reads from the database (as the target's SUPABASE_DB_URL role,
// `postgres`: it reads every tenant, as the dashboard does), and how it shows it. Shared by the
// billing commands (checkout-test, status; billing sync can reuse the row readers).
import type postgres from "postgres";
import type { Cell } from "./output.ts";

/**
 * The Stripe customer an event is about, for events whose `stripe_customer_id` the webhook did not
 * fill (a failed event keeps it null): the object's own id for a customer, else its `customer`.
 */
export const EVENT_CUSTOMER_SQL = `coalesce(e.stripe_customer_id,
  case when e.payload -> 'data' -> 'object' ->> 'object' = 'customer' then e.object_id
       else e.payload -> 'data' -> 'object' ->> 'customer' end)`;

export interface CustomerRow {
  stripe_customer_id: string;
  email: string | null;
  livemode: boolean;
  created_at: Date;
  deleted_at: Date | null;
}

export interface SubscriptionItemRow {
  stripe_subscription_item_id: string;
  stripe_price_id: string;
  kind: "plan" | "addon_site" | "other";
  quantity: number;
}

export interface SubscriptionRow {
  stripe_subscription_id: string;
  status: string;
  plan_interval: "month" | "year";
  current_period_start: Date | null;
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  past_due_since: Date | null;
  created_at: Date;
  items: SubscriptionItemRow[];
  /** The "Site additionnel" quantity (addon_site items). */
  addon_sites: number;
}

export interface InvoiceRow {
  stripe_invoice_id: string;
  stripe_subscription_id: string | null;
  status: string;
  currency: string;
  subtotal_cents: number;
  tax_cents: number;
  total_cents: number;
  amount_paid_cents: number;
  paid_at: Date | null;
  created_at: Date;
}

export interface BillingEventRow {
  stripe_event_id: string;
  type: string;
  outcome: string | null;
  result: string | null;
  error: string | null;
  attempts: number;
  created: Date;
  received_at: Date;
}

export interface EntitlementRow {
  entitled: boolean;
  subscription_status: string | null;
  included_sites: number;
  additional_sites: number;
  allowed_sites: number;
  used_sites: number;
  available_sites: number;
  grace_until: Date | null;
}

export interface TenantBilling {
  customer: CustomerRow | null;
  subscriptions: SubscriptionRow[];
  invoices: InvoiceRow[];
  entitlement: EntitlementRow | null;
}

/** A tenant's customers / subscriptions (with items) / invoices rows and its entitlement, newest first. */
export async function tenantBilling(sql: postgres.Sql, tenantId: string): Promise<TenantBilling> {
  const [customer] = await sql<CustomerRow[]>`
    select stripe_customer_id, email, livemode, created_at, deleted_at from public.customers where tenant_id = ${tenantId}`;
  const subscriptions = await sql<SubscriptionRow[]>`
    select s.stripe_subscription_id, s.status, s.plan_interval, s.current_period_start, s.current_period_end,
           s.cancel_at_period_end, s.past_due_since, s.created_at,
           coalesce((select jsonb_agg(jsonb_build_object(
                              'stripe_subscription_item_id', i.stripe_subscription_item_id,
                              'stripe_price_id', i.stripe_price_id, 'kind', i.kind, 'quantity', i.quantity)
                            order by i.kind = 'plan' desc, i.kind, i.stripe_subscription_item_id)
                       from public.subscription_items as i where i.subscription_id = s.id), '[]'::jsonb) as items,
           coalesce((select sum(i.quantity) from public.subscription_items as i
                      where i.subscription_id = s.id and i.kind = 'addon_site'), 0)::int as addon_sites
      from public.subscriptions as s
     where s.tenant_id = ${tenantId}
     order by s.created_at desc, s.stripe_subscription_id`;
  const invoices = await sql<InvoiceRow[]>`
    select stripe_invoice_id, stripe_subscription_id, status, currency, subtotal_cents::float8 as subtotal_cents,
           tax_cents::float8 as tax_cents, total_cents::float8 as total_cents, amount_paid_cents::float8 as amount_paid_cents,
           paid_at, created_at
      from public.invoices where tenant_id = ${tenantId}
     order by created_at desc, stripe_invoice_id`;
  const [entitlement] = await sql<EntitlementRow[]>`
    select entitled, subscription_status, included_sites, additional_sites, allowed_sites, used_sites, available_sites, grace_until
      from public.billing_entitlements where tenant_id = ${tenantId}`;
  return { customer: customer ?? null, subscriptions: [...subscriptions], invoices: [...invoices], entitlement: entitlement ?? null };
}

/** Events received since `since` about this customer (or with one of `objectIds` as their object), in Stripe's order. */
export async function billingEventsSince(
  sql: postgres.Sql,
  since: Date,
  customer: string | null,
  objectIds: string[],
): Promise<BillingEventRow[]> {
  const rows = await sql<BillingEventRow[]>`
    select e.stripe_event_id, e.type, e.outcome, e.result, e.error, e.attempts, e.created, e.received_at
      from public.billing_events as e
     where e.received_at >= ${since}
       and (e.object_id = any(${objectIds}::text[])
            or (${customer}::text is not null and ${sql.unsafe(EVENT_CUSTOMER_SQL)} = ${customer}))
     order by e.created, e.received_at, e.stripe_event_id`;
  return [...rows];
}

// ---- showing them -------------------------------------------------------------------------------

/** "2026-11-25 17:04:10" (UTC), or null. */
export function when(d: Date | string | null | undefined): string | null {
  if (d === null || d === undefined) return null;
  return new Date(d).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

/** "2026-11-25" (UTC). */
export function day(d: Date | string | null | undefined): string | null {
  return when(d)?.slice(0, 10) ?? null;
}

/** 22880, "cad" → "228.80 CAD". */
export function money(cents: number | null | undefined, currency: string): string | null {
  if (cents === null || cents === undefined) return null;
  return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

export const PLAN_OF_INTERVAL: Record<string, string> = { month: "monthly", year: "annual" };

/** "plan ×1 · site add-on ×2" (the price ids are in --json). */
export function describeItems(items: SubscriptionItemRow[]): string {
  const label = { plan: "plan", addon_site: "site add-on", other: "other price" } as const;
  return items.map((i) => `${label[i.kind] ?? i.kind} ×${i.quantity}`).join(" · ") || "no items";
}

export function customerRows(c: CustomerRow | null): Cell[][] {
  return c ? [[c.stripe_customer_id, c.email, c.livemode ? "live" : "test", when(c.created_at), c.deleted_at ? `deleted ${when(c.deleted_at)}` : "no"]] : [];
}
export const CUSTOMER_HEAD = ["Stripe customer", "E-mail", "Mode", "Created (UTC)", "Deleted"];

export function subscriptionRows(subs: SubscriptionRow[]): Cell[][] {
  return subs.map((s) => [
    s.stripe_subscription_id,
    s.status,
    s.plan_interval,
    s.current_period_start ? `${day(s.current_period_start)} → ${day(s.current_period_end)}` : null,
    describeItems(s.items),
    s.addon_sites,
  ]);
}
export const SUBSCRIPTION_HEAD = ["Subscription", "Status", "Interval", "Period", "Items", "Add-on sites"];

export function invoiceRows(invoices: InvoiceRow[]): Cell[][] {
  return invoices.map((i) => [
    i.stripe_invoice_id,
    i.status,
    money(i.total_cents, i.currency),
    money(i.tax_cents, i.currency),
    money(i.amount_paid_cents, i.currency),
    when(i.paid_at),
  ]);
}
export const INVOICE_HEAD = ["Invoice", "Status", "Total", "Tax", "Paid", "Paid at (UTC)"];

export function eventRows(events: BillingEventRow[]): Cell[][] {
  return events.map((e) => [e.type, e.outcome, e.result, e.error ? e.error.split("\n")[0].slice(0, 120) : null, when(e.received_at)]);
}
export const EVENT_HEAD = ["Event", "Outcome", "Result", "Error", "Received (UTC)"];

/** "2 allowed (1 included + 1 add-on) · 0 used · 2 available" */
export function describeEntitlement(e: EntitlementRow | null): string | null {
  if (!e) return null;
  return `${e.allowed_sites} allowed (${e.included_sites} included + ${e.additional_sites} add-on) · ${e.used_sites} used · ` +
    `${e.available_sites} available${e.entitled ? "" : " · not entitled (no active subscription)"}` +
    (e.grace_until ? ` · past due: grace until ${when(e.grace_until)}` : "");
}
