// What the stripe-webhook tests share: the functions' Stripe settings (tests/fixtures/functions/.env.test),
// the runner's fake Stripe (STRIPE_API_BASE: the real SDK for the API, StripeFakeControl for the
// rest; its events go to the gateway's stripe-webhook), and database probes.
import { fileURLToPath } from "node:url";
import { parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { type DeliverOptions, StripeFakeControl, type StripeJson } from "../../scripts/fakes/stripe-control.ts";
import { createStripeClient, type Stripe } from "../../supabase/functions/_shared/stripe/client.ts";
import { functionUrl, type Sql } from "../_helpers.ts";

export const fixtureSettings = parseDotenv(
  await Deno.readTextFile(fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url))),
);
/** The endpoint's two secrets (as while rolling): either verifies. */
export const SECRETS = fixtureSettings.STRIPE_WEBHOOK_SECRET.split(",");
export const PRICES = {
  monthly: fixtureSettings.STRIPE_PRICE_MONTHLY,
  annual: fixtureSettings.STRIPE_PRICE_ANNUAL,
  addonMonthly: fixtureSettings.STRIPE_PRICE_ADDON_SITE_MONTHLY,
  addonAnnual: fixtureSettings.STRIPE_PRICE_ADDON_SITE_ANNUAL,
};
export const LEGACY_VERSION = "2020-08-27";

function apiBase(): string {
  const base = Deno.env.get("STRIPE_API_BASE");
  if (!base) throw new Error("STRIPE_API_BASE is not set: run the tests through the test orchestrator");
  return base;
}

export const fake = () => new StripeFakeControl(apiBase());
/** The real SDK against the fake (no SDK retries: a test sees each answer). */
export const stripe = (): Stripe => createStripeClient(fixtureSettings.STRIPE_SECRET_KEY, apiBase(), { maxNetworkRetries: 0 });
export const webhookUrl = () => functionUrl("stripe-webhook");

export interface Delivered {
  status: number;
  body: Record<string, unknown>;
  event_id: string | null;
}

/** Posts events (or a raw body) to stripe-webhook through the gateway, signed by the fake; the answers. */
export async function deliver(opts: DeliverOptions): Promise<Delivered[]> {
  const attempts = await fake().deliver({ url: webhookUrl(), ...opts });
  return attempts.map((a) => {
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(a.response_body);
    } catch { /* not JSON */ }
    return { status: a.status, body, event_id: a.event_id };
  });
}

/** One event, emitted by the fake (not delivered automatically) then delivered: its answer. */
export async function emitAndDeliver(
  emit: Parameters<StripeFakeControl["emit"]>[0],
  opts: Omit<DeliverOptions, "event_ids"> = {},
): Promise<Delivered & { event: StripeJson }> {
  const event = await fake().emit({ ...emit, deliver: false });
  const [answer] = await deliver({ event_ids: [event.id], ...opts });
  return { ...answer, event };
}

export async function newTenant(sql: Sql, name = "Client Stripe test"): Promise<string> {
  const [t] = await sql<{ id: string }[]>`insert into public.tenants (name) values (${name}) returning id`;
  return t.id;
}

export async function eventRow(sql: Sql, id: string) {
  const [row] = await sql<{ outcome: string | null; result: string | null; processed_at: Date | null; error: string | null; attempts: number }[]>`
    select outcome, result, processed_at, error, attempts from public.billing_events where stripe_event_id = ${id}`;
  return row;
}

export async function subscriptionRow(sql: Sql, stripeId: string) {
  const [row] = await sql<{
    tenant_id: string;
    status: string;
    plan_interval: string;
    current_period_start: Date | null;
    current_period_end: Date | null;
    cancel_at_period_end: boolean;
    stripe_updated_at: Date;
    items: { id: string; price: string; quantity: number; kind: string }[];
  }[]>`
    select s.tenant_id, s.status, s.plan_interval, s.current_period_start, s.current_period_end, s.cancel_at_period_end, s.stripe_updated_at,
           coalesce((select jsonb_agg(jsonb_build_object('id', i.stripe_subscription_item_id, 'price', i.stripe_price_id,
                      'quantity', i.quantity, 'kind', i.kind) order by i.kind, i.stripe_subscription_item_id)
                       from public.subscription_items i where i.subscription_id = s.id), '[]') as items
      from public.subscriptions s where s.stripe_subscription_id = ${stripeId}`;
  return row;
}

export async function invoiceRow(sql: Sql, stripeId: string) {
  const [row] = await sql<{
    tenant_id: string;
    status: string;
    subscription_id: string | null;
    stripe_subscription_id: string | null;
    total_cents: string;
    tax_cents: string;
    amount_paid_cents: string;
    paid_at: Date | null;
    hosted_invoice_url: string | null;
  }[]>`
    select tenant_id, status, subscription_id, stripe_subscription_id, total_cents, tax_cents, amount_paid_cents, paid_at, hosted_invoice_url
      from public.invoices where stripe_invoice_id = ${stripeId}`;
  return row;
}

/** A tenant that went through Checkout with 4242 (its events delivered and settled). */
export async function paidTenant(sql: Sql, opts: { addons?: number; interval?: "month" | "year" } = {}) {
  const tenantId = await newTenant(sql);
  const year = opts.interval === "year";
  const session = await stripe().checkout.sessions.create({
    mode: "subscription",
    customer_email: `admin-${tenantId.slice(0, 8)}@example.test`,
    client_reference_id: tenantId,
    metadata: { tenant_id: tenantId },
    subscription_data: { metadata: { tenant_id: tenantId } },
    automatic_tax: { enabled: true },
    line_items: [
      { price: year ? PRICES.annual : PRICES.monthly, quantity: 1 },
      ...(opts.addons ? [{ price: year ? PRICES.addonAnnual : PRICES.addonMonthly, quantity: opts.addons }] : []),
    ],
    success_url: "http://127.0.0.1:3000/billing/success",
  });
  const done = await fake().completeCheckout(session.id, { card: "4242424242424242" });
  await settled();
  return {
    tenantId,
    sessionId: session.id,
    customerId: done.session.customer as string,
    subscriptionId: done.session.subscription as string,
    invoiceId: done.session.invoice as string,
  };
}

export async function settled(): Promise<void> {
  const r = await fake().settled();
  if (!r.settled) throw new Error(`the fake Stripe still has ${r.pending} deliveries running`);
}
