// A typed client of the fake Stripe's control endpoints (/_fake/…), for tests and scripts that run
// in another process than the fake (the test runner and the stack start it; its URL is
// STRIPE_API_BASE). Reach the Stripe API itself with the real SDK
// (supabase/functions/_shared/stripe/client.ts: createStripeClient(key, STRIPE_API_BASE)).
//
//   const fake = new StripeFakeControl(Deno.env.get("STRIPE_API_BASE")!);
//   const { session } = await fake.completeCheckout(sessionId, { card: "4242424242424242" });
//   await fake.settled();
import type { DeliveryAttempt } from "./stripe.ts";

/** A Stripe object or event as JSON (the fake's answers are Stripe's shapes, not typed here). */
// deno-lint-ignore no-explicit-any
export type StripeJson = Record<string, any>;

export type { DeliveryAttempt };

export const TEST_CARDS = {
  success: "4242424242424242",
  declined: "4000000000000002",
  threeDSecure: "4000002500003155",
} as const;

export interface DeliverOptions {
  /** Events to (re)deliver, in this order unless `order` says otherwise. */
  event_ids?: string[];
  /** Default: the configured endpoint's URL. */
  url?: string;
  /** Signing secrets (one v1 each); default: the endpoint's. */
  secrets?: string[];
  /** Render the events at this version (e.g. "2020-08-27"); default: the endpoint's. */
  api_version?: string;
  order?: "as_given" | "reverse" | "shuffle";
  /** Send each event this many extra times. */
  duplicates?: number;
  /** Retries after a non-2xx (default 0), delays retry_delay_ms × 2^n. */
  retries?: number;
  retry_delay_ms?: number;
  /** Signature timestamp `t` (unix seconds); default now (an old one makes an expired signature). */
  timestamp?: number;
  /** Change the body after signing (a tampered delivery). */
  tamper?: boolean;
  /** No Stripe-Signature header at all. */
  sign?: false;
  /** This exact Stripe-Signature header instead of a computed one. */
  signature?: string;
  /** Post this raw body (signed unless sign=false) instead of events: malformed-body tests. */
  raw_body?: string;
  headers?: Record<string, string>;
  /** Parallel posts (default 1: one after the other). */
  concurrency?: number;
}

export interface EmitOptions {
  type: string;
  /** Snapshot of this stored object (current state) … */
  object_id?: string;
  /** … or this object as given. */
  object?: Record<string, unknown>;
  /** Deep-merged into the snapshot (e.g. { status: "past_due" }). */
  set?: Record<string, unknown>;
  previous_attributes?: Record<string, unknown>;
  /** Event `created` (unix seconds); default now. */
  created?: number;
  /** Deliver it to the endpoint automatically (default false: deliver() it yourself). */
  deliver?: boolean;
  /** Listed as not delivered (pending_webhooks 1, `delivery_success=false`). */
  undelivered?: boolean;
}

export class StripeFakeControl {
  constructor(readonly baseUrl: string) {}

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`fake Stripe ${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** Forgets every object, event, call count, limiter and delivery; seeds the four prices again. */
  reset() {
    return this.#call<{ reset: true }>("POST", "/_fake/reset");
  }
  /** API calls so far by route ("GET /v1/subscriptions": n). */
  calls() {
    return this.#call<{ calls: Record<string, number>; total: number }>("GET", "/_fake/calls");
  }
  resetCalls() {
    return this.#call<{ reset: true }>("POST", "/_fake/calls/reset");
  }
  /** The next `count` API calls (of `route` only, e.g. "GET /v1/subscriptions") answer 429; count 0 clears. */
  rateLimit(count: number, opts: { retry_after?: number; route?: string } = {}) {
    return this.#call("POST", "/_fake/rate_limit", { count, ...opts });
  }
  /** The next `count` API calls answer `status` (5xx) with an api_error. */
  failNext(count: number, opts: { status?: number; route?: string } = {}) {
    return this.#call("POST", "/_fake/failures", { count, ...opts });
  }
  webhookEndpoint(config: { url?: string; secrets?: string[]; api_version?: string; auto_deliver?: boolean; retries?: number; retry_delay_ms?: number } = {}) {
    return this.#call<{ url: string | null; secrets: number; api_version: string; auto_deliver: boolean; retries: number; retry_delay_ms: number }>(
      "POST",
      "/_fake/webhook_endpoint",
      config,
    );
  }
  /** Waits until every automatic delivery (and retry) started so far is over. */
  settled(timeoutMs = 30_000) {
    return this.#call<{ settled: boolean; pending: number }>("GET", `/_fake/webhooks/settled?timeout_ms=${timeoutMs}`);
  }
  deliveries(eventId?: string) {
    return this.#call<{ deliveries: DeliveryAttempt[] }>("GET", `/_fake/webhooks/deliveries${eventId ? `?event_id=${eventId}` : ""}`)
      .then((r) => r.deliveries);
  }
  deliver(opts: DeliverOptions) {
    return this.#call<{ deliveries: DeliveryAttempt[] }>("POST", "/_fake/webhooks/deliver", opts).then((r) => r.deliveries);
  }
  /** A new event (stored, listed by GET /v1/events) about an object; not delivered unless asked. */
  emit(opts: EmitOptions) {
    return this.#call<StripeJson>("POST", "/_fake/events", opts);
  }
  object<T = StripeJson>(id: string) {
    return this.#call<T>("GET", `/_fake/objects/${encodeURIComponent(id)}`);
  }
  /** Changes a stored object behind everyone's back (drift), optionally emitting an event about it. */
  mutate(id: string, set: Record<string, unknown>, opts: { emit?: string; created?: number; deliver?: boolean } = {}) {
    return this.#call<{ object: StripeJson; event: StripeJson | null }>("POST", `/_fake/objects/${encodeURIComponent(id)}`, { set, ...opts });
  }
  /** Removes an object from the fake (as if it never existed in Stripe). */
  remove(id: string) {
    return this.#call("DELETE", `/_fake/objects/${encodeURIComponent(id)}`);
  }
  /** `count` customers with one subscription each (and a paid invoice unless with_invoices=false), no events unless asked. */
  seedSubscriptions(opts: {
    count: number;
    status?: string;
    interval?: "month" | "year";
    addon_quantity?: number;
    with_invoices?: boolean;
    tenant_ids?: string[];
    metadata?: Record<string, string>;
    events?: boolean;
  }) {
    return this.#call<{ customers: string[]; subscriptions: string[]; invoices: string[] }>("POST", "/_fake/seed/subscriptions", opts);
  }
  /** The card the customer's future payments use (renewals, POST /v1/invoices/:id/pay). */
  setCard(customerId: string, card: string) {
    return this.#call("POST", `/_fake/customers/${encodeURIComponent(customerId)}/card`, { card });
  }
  /** Pays a Checkout Session with a test card: 4242… succeeds, 4000…0002 is declined (throws, 402), 4000 0025 0000 3155 needs 3-D Secure. */
  completeCheckout(sessionId: string, input: { card?: string; email?: string; name?: string; address?: Record<string, string> } = {}) {
    return this.#call<{ outcome: "succeeded" | "requires_action"; session: StripeJson }>(
      "POST",
      `/_fake/checkout/sessions/${encodeURIComponent(sessionId)}/complete`,
      input,
    );
  }
  /** Completes (or fails) the 3-D Secure step of a session's payment. */
  authenticateCheckout(sessionId: string, result: "succeed" | "fail" = "succeed") {
    return this.#call<{ outcome: string; session: StripeJson }>(
      "POST",
      `/_fake/checkout/sessions/${encodeURIComponent(sessionId)}/authenticate`,
      { result },
    );
  }
  /** Starts the subscription's next period: items move on, a draft invoice bills it. */
  renewSubscription(subscriptionId: string) {
    return this.#call<{ subscription: StripeJson; invoice: StripeJson }>(
      "POST",
      `/_fake/subscriptions/${encodeURIComponent(subscriptionId)}/renew`,
    );
  }
  /** A failed payment attempt on an open invoice (invoice.payment_failed; an active subscription goes past_due). */
  failInvoicePayment(invoiceId: string) {
    return this.#call("POST", `/_fake/invoices/${encodeURIComponent(invoiceId)}/payment_failed`);
  }
}
