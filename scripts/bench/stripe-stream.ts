// The event stream of `npm run bench -- stripe`, made once by the fake Stripe (scripts/fakes/stripe.ts)
// so that its shapes are the fake's (the same code the tests trust), never re-typed here:
//
//   for each of C customers (one per tenant, as billing-checkout makes them):
//     POST /v1/customers {metadata.tenant_id, address}                   → customer.created
//     POST /v1/checkout/sessions {customer, client_reference_id, metadata.tenant_id,
//          subscription_data.metadata.tenant_id, automatic_tax, plan (+ add-on sites)}
//     pay it with the test card 4242… (/_fake/checkout/sessions/:id/complete)
//                                  → customer.subscription.created, invoice.created, invoice.finalized,
//                                    invoice_payment.paid, invoice.paid, customer.subscription.updated,
//                                    checkout.session.completed (and invoice.payment_succeeded, left out)
//     for some: POST /v1/subscriptions/:id at once (add-on sites changed, or cancel at period end)
//                                  → a second customer.subscription.updated, usually in the same second
//
// That is 8 events per customer (+ the same-second updates). The events are then read back from
// GET /v1/events at API version 2026-10-28.endive (the fake renders them as it renders a webhook:
// the same `render`, pretty-printed as Stripe sends them) and ordered as Stripe would deliver a
// busy hour of checkouts to one endpoint: about `window` customers' checkouts in flight at once,
// each customer's events mostly in order, some pairs swapped (Stripe does not order deliveries),
// and some events delivered twice (at-least-once delivery), a few positions later. The order is
// drawn from a seeded generator: the same seed and size give the same order.
//
// Signing is the fake's own stripeSignatureHeader, at posting time (signatures expire after 300 s).
import { createStripeClient } from "../../supabase/functions/_shared/stripe/client.ts";
import { STRIPE_API_VERSION, type StripeFakePrices } from "../fakes/stripe.ts";
import { type StripeJson, StripeFakeControl, TEST_CARDS } from "../fakes/stripe-control.ts";

/** The event types of the stream (what an endpoint pinned for our webhook receives from a checkout). */
export const STREAM_TYPES = [
  "customer.created",
  "checkout.session.completed",
  "customer.subscription.created",
  "customer.subscription.updated",
  "invoice.created",
  "invoice.finalized",
  "invoice.paid",
  "invoice_payment.paid",
] as const;

export interface StreamEvent {
  id: string;
  type: string;
  created: number;
  /** The Stripe customer the event is about. */
  customer: string;
  /** The body as the endpoint receives it (pretty-printed JSON). */
  body: string;
  /** A second (or later) delivery of an event already in the stream. */
  duplicate: boolean;
}

export interface GeneratedStream {
  events: StreamEvent[];
  customers: number;
  /** Distinct events (deliveries minus duplicates). */
  unique: number;
  duplicates: number;
  /** customer.subscription.updated events sharing their `created` second with another update of the same subscription. */
  sameSecondUpdates: number;
  byType: Record<string, number>;
  /** Customers → tenants, as the stream ties them. */
  tenantOf: Map<string, string>;
}

/** A small seeded generator (mulberry32): the stream's order is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}

/** GET a list of the fake's API (filters in `query`) with pagination, oldest first (lists are newest first). */
export async function listAll(apiBase: string, secretKey: string, path: string, query: Record<string, string> = {}): Promise<StripeJson[]> {
  const out: StripeJson[] = [];
  let after: string | undefined;
  for (;;) {
    const params = new URLSearchParams({ limit: "100", ...query, ...(after ? { starting_after: after } : {}) });
    const res = await fetch(`${apiBase}${path}?${params}`, {
      headers: { authorization: `Bearer ${secretKey}`, "stripe-version": STRIPE_API_VERSION },
    });
    const page = await res.json();
    if (!res.ok) throw new Error(`fake Stripe GET ${path}: ${res.status} ${JSON.stringify(page).slice(0, 300)}`);
    out.push(...page.data);
    if (!page.has_more) break;
    after = page.data.at(-1).id;
  }
  return out.reverse();
}

/**
 * Makes the customers, checkouts and updates in the fake (which must have no webhook endpoint: the
 * events are only stored), then reads the events back and orders them into the stream.
 */
export async function generateStream(opts: {
  apiBase: string;
  secretKey: string;
  prices: StripeFakePrices;
  tenantIds: string[];
  seed: number;
  /** Customers whose checkouts are in flight at once in the delivery order. */
  window: number;
  duplicateRate?: number;
  swapRate?: number;
  sameSecondUpdateRate?: number;
}): Promise<GeneratedStream> {
  const rand = seededRandom(opts.seed);
  const stripe = createStripeClient(opts.secretKey, opts.apiBase);
  const control = new StripeFakeControl(opts.apiBase);
  const duplicateRate = opts.duplicateRate ?? 0.02;
  const swapRate = opts.swapRate ?? 0.1;
  const updateRate = opts.sameSecondUpdateRate ?? 0.12;

  // What each customer buys, drawn up front (the generation below runs concurrently).
  const plans = opts.tenantIds.map((tenant, i) => {
    const annual = rand() < 0.3;
    const addons = rand() < 0.4 ? 1 + Math.floor(rand() * 3) : 0;
    const r = rand();
    const update = r < updateRate * 0.75 ? "addon" : r < updateRate ? "cancel" : null;
    return { tenant, i, annual, addons, update };
  });

  // This stream's customers (the fake may hold earlier streams' objects and events too).
  const ours = new Set<string>();
  const since = Math.floor(Date.now() / 1000);
  await pool(plans, 4, async ({ tenant, i, annual, addons, update }) => {
    const customer = await stripe.customers.create({
      email: `client-${i + 1}@example.test`,
      name: `Client bench ${i + 1}`,
      address: { line1: "100 rue Fictive", city: "Montréal", state: "QC", postal_code: "H2X 1Y4", country: "CA" },
      metadata: { tenant_id: tenant },
    });
    ours.add(customer.id);
    const lineItems = [{ price: annual ? opts.prices.annual : opts.prices.monthly, quantity: 1 }];
    if (addons) lineItems.push({ price: annual ? opts.prices.addonSiteAnnual : opts.prices.addonSiteMonthly, quantity: addons });
    const session = await stripe.checkout.sessions.create({
      mode: "subscription",
      customer: customer.id,
      client_reference_id: tenant,
      metadata: { tenant_id: tenant },
      subscription_data: { metadata: { tenant_id: tenant } },
      line_items: lineItems,
      automatic_tax: { enabled: true },
      success_url: "http://127.0.0.1:3000/billing/success",
      cancel_url: "http://127.0.0.1:3000/billing/cancel",
    });
    const done = await control.completeCheckout(session.id, { card: TEST_CARDS.success });
    if (done.outcome !== "succeeded") throw new Error(`checkout ${session.id}: ${done.outcome}`);
    const subId = done.session.subscription as string;
    if (update === "addon") {
      const sub = await stripe.subscriptions.retrieve(subId);
      const addonItem = sub.items.data.find((it) => it.price.id !== lineItems[0].price);
      await stripe.subscriptions.update(subId, {
        items: addonItem
          ? [{ id: addonItem.id, quantity: (addonItem.quantity ?? 1) + 1 }]
          : [{ price: annual ? opts.prices.addonSiteAnnual : opts.prices.addonSiteMonthly, quantity: 1 }],
      });
    } else if (update === "cancel") {
      await stripe.subscriptions.update(subId, { cancel_at_period_end: true });
    }
  });

  // Read back, oldest first, and group by customer.
  const all = await listAll(opts.apiBase, opts.secretKey, "/v1/events", { "created[gte]": String(since) });
  const wanted = new Set<string>(STREAM_TYPES);
  const invoiceCustomer = new Map<string, string>();
  const perCustomer = new Map<string, StreamEvent[]>();
  const tenantOf = new Map<string, string>();
  for (const e of all) {
    const o = e.data.object;
    if (o.object === "invoice") invoiceCustomer.set(o.id, o.customer);
    const customer = o.object === "customer" ? o.id : o.object === "invoice_payment" ? invoiceCustomer.get(o.invoice) : o.customer;
    if (!ours.has(customer)) continue;
    if (o.object === "customer" && o.metadata?.tenant_id) tenantOf.set(o.id, o.metadata.tenant_id);
    if (!wanted.has(e.type)) continue;
    // The body as a webhook delivery carries it: the fake's rendering at the endpoint's version,
    // pretty-printed (what its eventBody() posts; `render` is the identity at the current version).
    const ev: StreamEvent = { id: e.id, type: e.type, created: e.created, customer, body: JSON.stringify(e, null, 2), duplicate: false };
    perCustomer.set(customer, [...(perCustomer.get(customer) ?? []), ev]);
  }
  if (perCustomer.size !== opts.tenantIds.length) {
    throw new Error(`the fake made events for ${perCustomer.size} customers, expected ${opts.tenantIds.length}`);
  }

  let sameSecondUpdates = 0;
  for (const events of perCustomer.values()) {
    const updates = events.filter((e) => e.type === "customer.subscription.updated");
    for (const u of updates) if (updates.some((v) => v !== u && v.created === u.created)) sameSecondUpdates++;
    // Stripe does not order deliveries: swap some neighbours.
    for (let k = 0; k + 1 < events.length; k++) {
      if (rand() < swapRate) [events[k], events[k + 1]] = [events[k + 1], events[k]];
    }
  }

  // About `window` customers in flight: the next delivery comes from one of them at random.
  const queue = [...perCustomer.values()];
  const active: StreamEvent[][] = [];
  const ordered: StreamEvent[] = [];
  while (queue.length || active.length) {
    while (active.length < opts.window && queue.length) active.push(queue.shift()!);
    const k = Math.floor(rand() * active.length);
    ordered.push(active[k].shift()!);
    if (active[k].length === 0) active.splice(k, 1);
  }
  // At-least-once: some events again, 5 to 50 deliveries later.
  const unique = ordered.length;
  const withDuplicates = [...ordered];
  let duplicates = 0;
  for (const e of ordered) {
    if (rand() >= duplicateRate) continue;
    const at = Math.min(withDuplicates.length, withDuplicates.indexOf(e) + 5 + Math.floor(rand() * 46));
    withDuplicates.splice(at, 0, { ...e, duplicate: true });
    duplicates++;
  }
  const byType: Record<string, number> = {};
  for (const e of withDuplicates) byType[e.type] = (byType[e.type] ?? 0) + 1;
  return { events: withDuplicates, customers: perCustomer.size, unique, duplicates, sameSecondUpdates, byType, tenantOf };
}
