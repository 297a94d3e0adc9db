// Fake Stripe for the local stack and the tests (loopback only). The real `stripe` SDK talks to it
// (host/port/protocol from STRIPE_API_BASE): form-encoded requests in bracket notation, Stripe's
// JSON objects at API version 2026-10-28.endive (the version stripe@23.1.0 pins), Stripe's error
// bodies, idempotency keys, list pagination. It also plays Stripe's webhook sender: every change
// creates an event (GET /v1/events) which is signed (`Stripe-Signature: t=…,v1=…` per secret) and
// POSTed to the configured endpoint, retried on non-2xx; control endpoints deliver chosen events
// again, duplicated, reversed, shuffled, tampered, expired or rendered at a 2020-era API version.
//
// API (`Authorization: Bearer <STRIPE_SECRET_KEY>`):
//   customers          POST/GET /v1/customers, GET/POST/DELETE /v1/customers/:id
//   subscriptions      POST/GET /v1/subscriptions, GET/POST/DELETE /v1/subscriptions/:id
//   invoices           POST/GET /v1/invoices, GET/POST/DELETE /v1/invoices/:id, GET …/lines,
//                      POST …/finalize | pay | void | mark_uncollectible | send
//   invoice payments   GET /v1/invoice_payments, GET /v1/invoice_payments/:id
//   prices, products   GET/POST /v1/prices, GET /v1/prices/:id, GET/POST /v1/products(/:id)
//   checkout           POST/GET /v1/checkout/sessions, GET …/:id, GET …/:id/line_items, POST …/:id/expire
//   billing portal     POST /v1/billing_portal/sessions
//   events             GET /v1/events, GET /v1/events/:id
// Control (no key, loopback only): /_fake/… — see scripts/fakes/README.md and stripe-control.ts.
//
// Standalone (the stack's `npm start` / `stack up`):
//   deno run -A scripts/fakes/stripe.ts --env-file supabase/functions/.env --port <port> [--webhook-url <url>]
//
// deno-lint-ignore-file no-explicit-any
import {
  arr,
  bool,
  int,
  invalid,
  mergeMetadata,
  missing,
  obj,
  onlyKnown,
  type Params,
  parseStripeParams,
  rangeFilter,
  str,
  StripeFakeError,
} from "./stripe-params.ts";

/** The version stripe@23.1.0 pins (`Stripe.API_VERSION`); objects are rendered at it by default. */
export const STRIPE_API_VERSION = "2026-10-28.endive";
/** A version before 2025-03-31.basil: periods on the subscription, invoice.subscription/paid/charge/payment_intent. */
export const STRIPE_LEGACY_API_VERSION = "2020-08-27";
/** Shapes changed at basil; any version sorting before it is rendered the old way. */
export const isLegacyApiVersion = (v: string) => v < "2025-03-31";

export interface StripeFakePrices {
  monthly: string;
  annual: string;
  addonSiteMonthly: string;
  addonSiteAnnual: string;
}

export interface StripeFakeOptions {
  /** 0 or absent: a free port. Always 127.0.0.1. */
  port?: number;
  /** The only API key accepted (the functions' STRIPE_SECRET_KEY). */
  secretKey: string;
  /** The four configured prices, seeded at start (and after a reset). */
  prices: StripeFakePrices;
  /** Where events are POSTed (the stripe-webhook function); none: events are only listed. */
  webhookUrl?: string;
  /** Signing secrets of the endpoint (each gives a v1 signature, as Stripe does while rolling). */
  webhookSecrets?: string[];
  /** API version the endpoint renders events at (default: STRIPE_API_VERSION). */
  webhookApiVersion?: string;
  /** One line per request (never a secret); default: silent. */
  log?: (line: string) => void;
}

export interface StripeFake {
  url: string;
  /** Resolves once every automatic delivery (and its retries) started so far is over. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 256 * 1024;
const WEBHOOK_TIMEOUT_MS = 30_000;
const MAX_LOG = 10_000;
const TEST_CARDS = {
  success: "4242424242424242",
  declined: "4000000000000002",
  threeDSecure: "4000002500003155",
} as const;

const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
function randomId(prefix: string, length = 24): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return `${prefix}_${Array.from(bytes, (b) => ALNUM[b % ALNUM.length]).join("")}`;
}
const nowSeconds = () => Math.floor(Date.now() / 1000);
const clone = <T>(v: T): T => structuredClone(v);

/** `start` + one interval, in UTC calendar terms (Jan 31 + 1 month = Feb 28/29, as Stripe does). */
function addInterval(start: number, interval: string, count = 1): number {
  const d = new Date(start * 1000);
  const day = d.getUTCDate();
  if (interval === "day") return start + 86400 * count;
  if (interval === "week") return start + 7 * 86400 * count;
  const months = interval === "year" ? 12 * count : count;
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()));
  const last = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, last));
  return Math.floor(target.getTime() / 1000);
}

async function hmacHex(secret: string, payload: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(payload));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `Stripe-Signature` as Stripe sends it: `t=<unix>,v1=<hex>[,v1=<hex>…]`, one v1 per secret. */
export async function stripeSignatureHeader(body: string, secrets: string[], timestamp = nowSeconds()): Promise<string> {
  const sigs = await Promise.all(secrets.map((s) => hmacHex(s, `${timestamp}.${body}`)));
  return [`t=${timestamp}`, ...sigs.map((s) => `v1=${s}`)].join(",");
}

// Tax Stripe Tax would compute for a Canadian address (exclusive): QC GST+QST, ON HST, else GST.
function taxRateFor(address: any): { rate: number; label: string } {
  if (!address || address.country !== "CA") return { rate: 0, label: "none" };
  if (address.state === "QC") return { rate: 0.14975, label: "GST + QST" };
  if (["ON"].includes(address.state)) return { rate: 0.13, label: "HST" };
  if (["NB", "NL", "NS", "PE"].includes(address.state)) return { rate: 0.15, label: "HST" };
  return { rate: 0.05, label: "GST" };
}

const DEFAULT_ADDRESS = { city: "Montréal", country: "CA", line1: "100 rue Fictive", line2: null, postal_code: "H2X 1Y4", state: "QC" };

interface Endpoint {
  url?: string;
  secrets: string[];
  apiVersion: string;
  /** Deliver each new event automatically (default true when a URL is set). */
  autoDeliver: boolean;
  /** Retries after a non-2xx (or no answer), with delays retryDelayMs × 2^n. */
  retries: number;
  retryDelayMs: number;
}

export interface DeliveryAttempt {
  event_id: string | null;
  type: string | null;
  url: string;
  attempt: number;
  api_version: string | null;
  signature: string | null;
  /** The receiver's status (0: no answer). */
  status: number;
  response_body: string;
  at: number;
  automatic: boolean;
}

interface Limiter {
  remaining: number;
  status: number;
  retryAfter?: number;
  route?: string;
}

interface IdempotentResult {
  fingerprint: string;
  status: number;
  body: string;
}

interface PendingAuth {
  subscription: string;
  invoice: string;
  customerCreated: boolean;
}

const SESSION_PARAMS = [
  "mode", "line_items", "success_url", "cancel_url", "client_reference_id", "metadata", "customer", "customer_email",
  "customer_creation", "customer_update", "automatic_tax", "tax_id_collection", "billing_address_collection",
  "subscription_data", "allow_promotion_codes", "locale", "payment_method_types", "expand", "ui_mode", "return_url",
  "consent_collection", "custom_text", "phone_number_collection", "discounts", "expires_at", "payment_method_collection",
  "saved_payment_method_options", "invoice_creation", "currency", "name_collection", "adaptive_pricing", "origin_context",
  "branding_settings", "permissions", "optional_items", "payment_method_configuration", "payment_method_options",
  "redirect_on_completion", "custom_fields", "excluded_payment_method_types", "wallet_options",
  "shipping_address_collection", "submit_type", "payment_intent_data", "setup_intent_data",
] as const;

export function startStripeFake(options: StripeFakeOptions): StripeFake {
  const log = options.log ?? (() => {});
  const objects = new Map<string, any>();
  const order = new Map<string, string[]>(); // object type → ids in creation order
  const hidden = new Map<string, any>(); // per-object state Stripe does not show
  const calls = new Map<string, number>();
  const idempotency = new Map<string, IdempotentResult>();
  const deliveries: DeliveryAttempt[] = [];
  const limiters: Limiter[] = [];
  const pending = new Set<Promise<unknown>>();
  let chain: Promise<unknown> = Promise.resolve();
  let baseUrl = "";
  const endpoint: Endpoint = {
    url: options.webhookUrl,
    secrets: options.webhookSecrets ?? [],
    apiVersion: options.webhookApiVersion ?? STRIPE_API_VERSION,
    autoDeliver: true,
    retries: 3,
    retryDelayMs: 500,
  };

  const record = <T>(list: T[], item: T) => {
    if (list.length >= MAX_LOG) list.shift();
    list.push(item);
  };
  function put(o: any): any {
    if (!objects.has(o.id)) {
      const list = order.get(o.object) ?? [];
      list.push(o.id);
      order.set(o.object, list);
    }
    objects.set(o.id, o);
    return o;
  }
  function get(type: string, id: unknown, param?: string, what = type.replace(/^.*\./, "").replaceAll("_", " ")): any {
    if (typeof id !== "string" || id === "") throw invalid(`Missing required param: ${param ?? "id"}.`, param);
    const o = objects.get(id);
    if (!o || o.object !== type || o.deleted) throw missing(what, id, param);
    return o;
  }
  function all(type: string): any[] {
    return (order.get(type) ?? []).map((id) => objects.get(id)).filter((o) => o && !o.deleted);
  }

  // ---- prices ------------------------------------------------------------------------------------
  function seedPrices(): void {
    const planProduct = createProduct({ id: "prod_FakePlanCsecur360", name: "C-Secur360 — forfait" });
    const addonProduct = createProduct({ id: "prod_FakeAddonSite", name: "Site additionnel" });
    createPrice({ id: options.prices.monthly, product: planProduct.id, unit_amount: 14900, interval: "month", nickname: "Mensuel" });
    createPrice({ id: options.prices.annual, product: planProduct.id, unit_amount: 149000, interval: "year", nickname: "Annuel" });
    createPrice({ id: options.prices.addonSiteMonthly, product: addonProduct.id, unit_amount: 5000, interval: "month", nickname: "Site additionnel (mensuel)" });
    createPrice({ id: options.prices.addonSiteAnnual, product: addonProduct.id, unit_amount: 60000, interval: "year", nickname: "Site additionnel (annuel)" });
  }
  function createProduct(p: { id?: string; name: string; metadata?: Record<string, string> }): any {
    return put({
      id: p.id ?? randomId("prod", 14),
      object: "product",
      active: true,
      created: nowSeconds(),
      default_price: null,
      description: null,
      images: [],
      livemode: false,
      marketing_features: [],
      metadata: p.metadata ?? {},
      name: p.name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: null,
      tax_code: null,
      type: "service",
      unit_label: null,
      updated: nowSeconds(),
      url: null,
    });
  }
  function createPrice(p: { id?: string; product: string; unit_amount: number; interval: string; nickname?: string; currency?: string }): any {
    return put({
      id: p.id ?? randomId("price"),
      object: "price",
      active: true,
      billing_scheme: "per_unit",
      created: nowSeconds(),
      currency: p.currency ?? "cad",
      custom_unit_amount: null,
      livemode: false,
      lookup_key: null,
      metadata: {},
      nickname: p.nickname ?? null,
      product: p.product,
      recurring: { interval: p.interval, interval_count: 1, meter: null, trial_period_days: null, usage_type: "licensed" },
      tax_behavior: "exclusive",
      tiers_mode: null,
      transform_quantity: null,
      type: "recurring",
      unit_amount: p.unit_amount,
      unit_amount_decimal: String(p.unit_amount),
    });
  }
  /** The legacy Plan view of a recurring price (subscription items still carry it). */
  function planOf(price: any): any {
    return {
      id: price.id,
      object: "plan",
      active: price.active,
      amount: price.unit_amount,
      amount_decimal: price.unit_amount_decimal,
      billing_scheme: price.billing_scheme,
      created: price.created,
      currency: price.currency,
      interval: price.recurring.interval,
      interval_count: price.recurring.interval_count,
      livemode: false,
      metadata: price.metadata,
      meter: null,
      nickname: price.nickname,
      product: price.product,
      tiers_mode: null,
      transform_usage: null,
      trial_period_days: null,
      usage_type: "licensed",
    };
  }

  // ---- events and webhook delivery ---------------------------------------------------------------
  function emit(type: string, object: any, previous?: Record<string, unknown>, opts: { created?: number; deliver?: boolean } = {}): any {
    const event: any = {
      id: randomId("evt"),
      object: "event",
      api_version: STRIPE_API_VERSION,
      created: opts.created ?? nowSeconds(),
      data: previous ? { object: clone(object), previous_attributes: clone(previous) } : { object: clone(object) },
      livemode: false,
      pending_webhooks: 0,
      request: { id: null, idempotency_key: null },
      type,
    };
    put(event);
    if ((opts.deliver ?? true) && endpoint.url && endpoint.autoDeliver && deliverable(type, endpoint.apiVersion)) {
      event.pending_webhooks = 1;
      const target = { ...endpoint, secrets: [...endpoint.secrets] };
      const run = chain.then(() => deliverWithRetries(event, target, 0, true));
      chain = run.catch(() => {});
      track(run);
    }
    return event;
  }
  function track(p: Promise<unknown>): void {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => {});
  }
  /** Event types introduced by basil do not exist for an endpoint pinned before it. */
  function deliverable(type: string, apiVersion: string): boolean {
    return !(isLegacyApiVersion(apiVersion) && type.startsWith("invoice_payment."));
  }

  async function postWebhook(
    url: string,
    body: string,
    signature: string | null,
    meta: Omit<DeliveryAttempt, "url" | "signature" | "status" | "response_body" | "at">,
    extraHeaders: Record<string, string> = {},
  ): Promise<DeliveryAttempt> {
    let status = 0;
    let responseBody = "";
    try {
      const headers: Record<string, string> = {
        "content-type": "application/json; charset=utf-8",
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "cache-control": "no-cache",
        accept: "*/*; q=0.5, application/xml",
        ...extraHeaders,
      };
      if (signature !== null) headers["stripe-signature"] = signature;
      const res = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
      status = res.status;
      responseBody = (await res.text()).slice(0, 4096);
    } catch (e) {
      responseBody = e instanceof Error ? e.message : String(e);
    }
    const attempt: DeliveryAttempt = { ...meta, url, signature, status, response_body: responseBody, at: Date.now() };
    record(deliveries, attempt);
    log(`stripe fake → POST ${url} ${meta.type ?? "raw"} ${status}`);
    return attempt;
  }

  /** The event as the endpoint's API version shows it, pretty-printed as Stripe sends it. */
  function eventBody(event: any, apiVersion: string): string {
    const rendered = render(clone(event), apiVersion);
    rendered.api_version = apiVersion;
    return JSON.stringify(rendered, null, 2);
  }

  async function deliverWithRetries(event: any, target: Endpoint, attempt: number, automatic: boolean): Promise<void> {
    if (!target.url) return;
    const body = eventBody(event, target.apiVersion);
    const signature = await stripeSignatureHeader(body, target.secrets);
    const res = await postWebhook(target.url, body, signature, {
      event_id: event.id,
      type: event.type,
      attempt: attempt + 1,
      api_version: target.apiVersion,
      automatic,
    });
    if (res.status >= 200 && res.status < 300) {
      event.pending_webhooks = 0;
      return;
    }
    if (attempt < target.retries) {
      const retry = new Promise((r) => setTimeout(r, target.retryDelayMs * 2 ** attempt)).then(() =>
        deliverWithRetries(event, target, attempt + 1, automatic)
      );
      track(retry);
    }
  }

  // ---- rendering ---------------------------------------------------------------------------------
  /** Renders objects (recursively, expanded ones too) at `apiVersion`; the store keeps the current shape. */
  function render(o: any, apiVersion: string): any {
    if (!isLegacyApiVersion(apiVersion)) return o;
    const walk = (v: any): any => {
      if (Array.isArray(v)) return v.map(walk);
      if (typeof v !== "object" || v === null) return v;
      for (const k of Object.keys(v)) v[k] = walk(v[k]);
      if (v.object === "subscription") return legacySubscription(v);
      if (v.object === "invoice") return legacyInvoice(v);
      return v;
    };
    return walk(o);
  }
  function legacySubscription(s: any): any {
    const items = s.items?.data ?? [];
    const first = items[0];
    const out: any = { ...s };
    delete out.billing_mode;
    delete out.billing_schedules;
    out.current_period_start = first?.current_period_start ?? s.start_date;
    out.current_period_end = first?.current_period_end ?? s.start_date;
    out.plan = items.length === 1 ? first.plan : null;
    out.quantity = items.length === 1 ? first.quantity : null;
    out.tax_percent = null;
    out.items = {
      ...s.items,
      data: items.map((i: any) => {
        const { current_period_start: _s, current_period_end: _e, ...rest } = i;
        return rest;
      }),
    };
    return out;
  }
  function legacyInvoice(inv: any): any {
    const h = hidden.get(inv.id) ?? {};
    const out: any = { ...inv };
    delete out.parent;
    delete out.payments;
    delete out.total_taxes;
    delete out.total_pretax_credit_amounts;
    delete out.amount_overpaid;
    out.subscription = inv.parent?.subscription_details?.subscription ?? null;
    out.paid = inv.status === "paid";
    out.paid_out_of_band = Boolean(h.paidOutOfBand);
    out.charge = inv.status === "paid" && !h.paidOutOfBand ? (h.charge ?? null) : null;
    out.payment_intent = h.paymentIntent ?? null;
    out.tax = (inv.total_taxes ?? []).reduce((n: number, t: any) => n + t.amount, 0) || null;
    out.lines = {
      ...inv.lines,
      data: (inv.lines?.data ?? []).map((l: any) => {
        const { parent, pricing, taxes: _t, ...rest } = l;
        return {
          ...rest,
          subscription: parent?.subscription_item_details?.subscription ?? null,
          subscription_item: parent?.subscription_item_details?.subscription_item ?? null,
          price: pricing?.price_details?.price ? objects.get(pricing.price_details.price) ?? null : null,
          type: "subscription",
          proration: false,
        };
      }),
    };
    return out;
  }

  /** Replaces ids by objects along each `expand` path (`data.` walks a list), and includable lists. */
  function expand(o: any, paths: string[]): any {
    for (const path of paths) {
      if (path.split(".").length > 4) throw invalid(`You cannot expand more than 4 levels of a property. Property: ${path}`, "expand");
      expandPath(o, path.split("."), path);
    }
    return o;
  }
  function expandPath(node: any, segs: string[], full: string): void {
    if (typeof node !== "object" || node === null || segs.length === 0) return;
    const [head, ...rest] = segs;
    if (node.object === "list" && head === "data") {
      for (const item of node.data) expandPath(item, rest, full);
      return;
    }
    let value = node[head];
    if (node.object === "checkout.session" && head === "line_items") value = node.line_items = sessionLineItems(node);
    else if (node.object === "invoice" && head === "payments") value = node.payments = invoicePaymentsList(node.id);
    else if (typeof value === "string" && objects.has(value)) {
      const target = objects.get(value);
      value = node[head] = target.deleted ? { id: target.id, object: target.object, deleted: true } : clone(target);
    } else if (value === undefined) {
      throw invalid(`This property cannot be expanded (${full}).`, "expand");
    }
    expandPath(value, rest, full);
  }

  // ---- lists -------------------------------------------------------------------------------------
  function paginate(items: any[], p: Params, url: string): any {
    const limit = int(p, "limit", { min: 1, max: 100 }) ?? 10;
    const after = str(p, "starting_after");
    const before = str(p, "ending_before");
    if (after && before) throw invalid("You may only specify one of these parameters: ending_before, starting_after.", "ending_before");
    // Newest first; same second: the later-created first (the order ids were created in).
    const sorted = [...items].reverse();
    let data: any[];
    let hasMore: boolean;
    if (before) {
      const at = sorted.findIndex((o) => o.id === before);
      if (at < 0) throw invalid(`No such object: '${before}'`, "ending_before");
      const startAt = Math.max(0, at - limit);
      data = sorted.slice(startAt, at);
      hasMore = startAt > 0;
    } else {
      let from = 0;
      if (after) {
        const at = sorted.findIndex((o) => o.id === after);
        if (at < 0) throw invalid(`No such object: '${after}'`, "starting_after");
        from = at + 1;
      }
      data = sorted.slice(from, from + limit);
      hasMore = from + limit < sorted.length;
    }
    return { object: "list", data: data.map(clone), has_more: hasMore, url };
  }
  const LIST_PARAMS = ["limit", "starting_after", "ending_before", "expand"];

  // ---- customers ---------------------------------------------------------------------------------
  function createCustomer(p: Params, opts: { emit?: boolean } = {}): any {
    const c = put({
      id: randomId("cus", 14),
      object: "customer",
      address: p.address ? addressOf(p.address) : null,
      balance: 0,
      created: nowSeconds(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: str(p, "description") ?? null,
      discount: null,
      email: str(p, "email") ?? null,
      invoice_prefix: Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      livemode: false,
      metadata: mergeMetadata({}, p),
      name: str(p, "name") ?? null,
      next_invoice_sequence: 1,
      phone: str(p, "phone") ?? null,
      preferred_locales: (arr(p, "preferred_locales") as string[] | undefined) ?? [],
      shipping: null,
      tax_exempt: str(p, "tax_exempt") ?? "none",
      test_clock: null,
    });
    if (opts.emit ?? true) emit("customer.created", c);
    return c;
  }
  function addressOf(a: unknown): any {
    if (typeof a !== "object" || a === null) throw invalid("Invalid hash", "address");
    const x = a as Record<string, string>;
    return {
      city: x.city ?? null,
      country: x.country ?? null,
      line1: x.line1 ?? null,
      line2: x.line2 ?? null,
      postal_code: x.postal_code ?? null,
      state: x.state ?? null,
    };
  }
  /** Applies `changes` to `o`; emits `<type>` with previous_attributes if anything changed. */
  function change(o: any, changes: Record<string, unknown>, type: string, opts: { created?: number } = {}): boolean {
    const previous: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(changes)) {
      if (JSON.stringify(o[k]) !== JSON.stringify(v)) {
        previous[k] = clone(o[k]);
        o[k] = v;
      }
    }
    if (Object.keys(previous).length === 0) return false;
    emit(type, o, previous, opts);
    return true;
  }
  function updateCustomer(c: any, p: Params): any {
    onlyKnown(p, ["address", "description", "email", "metadata", "name", "phone", "preferred_locales", "tax_exempt", "expand", "invoice_settings", "shipping"]);
    const changes: Record<string, unknown> = {};
    if (p.address !== undefined) changes.address = p.address === "" ? null : addressOf(p.address);
    for (const k of ["description", "email", "name", "phone", "tax_exempt"]) if (p[k] !== undefined) changes[k] = p[k] === "" ? null : p[k];
    if (p.metadata !== undefined) changes.metadata = mergeMetadata(c.metadata, p);
    if (p.preferred_locales !== undefined) changes.preferred_locales = arr(p, "preferred_locales") ?? [];
    change(c, changes, "customer.updated");
    return c;
  }
  function deleteCustomer(c: any): any {
    // Stripe cancels the customer's subscriptions at once.
    for (const s of all("subscription").filter((s) => s.customer === c.id && !["canceled", "incomplete_expired"].includes(s.status))) {
      cancelSubscription(s, {});
    }
    emit("customer.deleted", c);
    c.deleted = true;
    return { id: c.id, object: "customer", deleted: true };
  }

  // ---- subscriptions -----------------------------------------------------------------------------
  function itemFor(subId: string, price: any, quantity: number, start: number, metadata: Record<string, string> = {}): any {
    return {
      id: randomId("si", 14),
      object: "subscription_item",
      billing_thresholds: null,
      created: start,
      current_period_end: addInterval(start, price.recurring.interval, price.recurring.interval_count),
      current_period_start: start,
      discounts: [],
      metadata,
      plan: planOf(price),
      price: clone(price),
      quantity,
      subscription: subId,
      tax_rates: [],
    };
  }
  function lineItemsOf(p: Params, param: string): { price: any; quantity: number; id?: string; deleted?: boolean; metadata?: Record<string, string> }[] {
    const list = arr(p, param) ?? [];
    return list.map((raw, i) => {
      if (typeof raw !== "object" || raw === null) throw invalid("Invalid hash", `${param}[${i}]`);
      const item = raw as Params;
      if (item.price_data !== undefined) throw invalid("The fake Stripe does not support price_data: create the price first.", `${param}[${i}][price_data]`);
      const id = str(item, "id");
      const deleted = bool(item, "deleted");
      const priceId = str(item, "price");
      if (!id && !priceId) throw invalid(`Missing required param: ${param}[${i}][price].`, `${param}[${i}][price]`);
      const price = priceId ? get("price", priceId, `${param}[${i}][price]`) : undefined;
      if (price && price.type !== "recurring") {
        throw invalid(`The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`, `${param}[${i}][price]`);
      }
      const quantity = int(item, "quantity", { min: 0, label: `${param}[${i}][quantity]` });
      return { price, quantity: quantity ?? 1, id, deleted, metadata: item.metadata as Record<string, string> | undefined };
    });
  }
  function newSubscription(
    customer: any,
    items: { price: any; quantity: number }[],
    opts: { status: string; metadata?: Record<string, string>; automaticTax?: boolean; trialDays?: number; start?: number; description?: string | null },
  ): any {
    const start = opts.start ?? nowSeconds();
    const id = randomId("sub");
    const trialEnd = opts.trialDays ? start + opts.trialDays * 86400 : null;
    const s: any = {
      id,
      object: "subscription",
      application: null,
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: Boolean(opts.automaticTax), liability: opts.automaticTax ? { type: "self" } : null },
      billing_cycle_anchor: trialEnd ?? start,
      billing_cycle_anchor_config: null,
      billing_mode: { flexible: null, type: "classic" },
      billing_thresholds: null,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: "charge_automatically",
      created: start,
      currency: items[0]?.price.currency ?? "cad",
      customer: customer.id,
      customer_account: null,
      days_until_due: null,
      default_payment_method: null,
      default_source: null,
      default_tax_rates: [],
      description: opts.description ?? null,
      discounts: [],
      ended_at: null,
      invoice_settings: { account_tax_ids: null, issuer: { type: "self" } },
      items: { object: "list", data: [], has_more: false, total_count: 0, url: `/v1/subscription_items?subscription=${id}` },
      latest_invoice: null,
      livemode: false,
      metadata: opts.metadata ?? {},
      next_pending_invoice_item_invoice: null,
      on_behalf_of: null,
      pause_collection: null,
      payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: "off" },
      pending_invoice_item_interval: null,
      pending_setup_intent: null,
      pending_update: null,
      schedule: null,
      start_date: start,
      status: opts.status,
      test_clock: null,
      transfer_data: null,
      trial_end: trialEnd,
      trial_settings: { end_behavior: { missing_payment_method: "create_invoice" } },
      trial_start: trialEnd ? start : null,
    };
    s.items.data = items.map((i) => itemFor(id, i.price, i.quantity, start));
    s.items.total_count = s.items.data.length;
    if (trialEnd) for (const i of s.items.data) i.current_period_end = trialEnd;
    customer.currency ??= s.currency;
    return put(s);
  }
  function cancelSubscription(s: any, opts: { created?: number }): any {
    const t = nowSeconds();
    const previous = { status: s.status, canceled_at: s.canceled_at, ended_at: s.ended_at };
    s.status = "canceled";
    s.canceled_at = t;
    s.ended_at = t;
    s.cancellation_details = { comment: null, feedback: null, reason: "cancellation_requested" };
    emit("customer.subscription.deleted", s, previous, opts);
    return s;
  }
  function updateSubscription(s: any, p: Params): any {
    onlyKnown(p, [
      "items", "metadata", "cancel_at_period_end", "cancel_at", "pause_collection", "proration_behavior", "description",
      "default_payment_method", "trial_end", "expand", "payment_behavior", "automatic_tax", "collection_method", "days_until_due",
      "cancellation_details", "off_session", "billing_cycle_anchor",
    ]);
    if (["canceled", "incomplete_expired"].includes(s.status)) {
      throw invalid(`A canceled subscription can only update its cancellation_details and metadata.`);
    }
    const changes: Record<string, unknown> = {};
    if (p.metadata !== undefined) changes.metadata = mergeMetadata(s.metadata, p);
    const cape = bool(p, "cancel_at_period_end");
    if (cape !== undefined) {
      changes.cancel_at_period_end = cape;
      changes.cancel_at = cape ? Math.max(...s.items.data.map((i: any) => i.current_period_end)) : null;
      changes.canceled_at = cape ? nowSeconds() : null;
    }
    if (p.description !== undefined) changes.description = p.description === "" ? null : p.description;
    if (p.pause_collection !== undefined) {
      changes.pause_collection = p.pause_collection === "" ? null : { behavior: (p.pause_collection as any).behavior, resumes_at: null };
    }
    if (p.collection_method !== undefined) changes.collection_method = p.collection_method;
    if (p.automatic_tax !== undefined) {
      changes.automatic_tax = { ...s.automatic_tax, enabled: bool(p.automatic_tax as Params, "enabled") ?? s.automatic_tax.enabled };
    }
    if (p.trial_end === "now" && s.status === "trialing") {
      changes.status = "active";
      changes.trial_end = nowSeconds();
    }
    if (p.items !== undefined) {
      const data = clone(s.items.data);
      for (const it of lineItemsOf(p, "items")) {
        if (it.id) {
          const at = data.findIndex((d: any) => d.id === it.id);
          if (at < 0) throw invalid(`No such subscription item: '${it.id}'`, "items");
          if (it.deleted) data.splice(at, 1);
          else {
            if (it.price) {
              data[at].price = clone(it.price);
              data[at].plan = planOf(it.price);
            }
            if ((p.items as any[]).find((x: any) => x.id === it.id)?.quantity !== undefined) data[at].quantity = it.quantity;
          }
        } else {
          const first = data[0];
          const item = itemFor(s.id, it.price, it.quantity, nowSeconds(), it.metadata ?? {});
          if (first) {
            item.current_period_start = first.current_period_start;
            item.current_period_end = first.current_period_end;
          }
          data.push(item);
        }
      }
      if (data.length === 0) throw invalid("A subscription must have at least one active plan.", "items");
      changes.items = { ...s.items, data, total_count: data.length };
    }
    change(s, changes, "customer.subscription.updated");
    return s;
  }

  // ---- invoices ----------------------------------------------------------------------------------
  function invoiceFor(
    customer: any,
    sub: any | null,
    opts: { billingReason: string; automaticTax: boolean; periodStart?: number; periodEnd?: number; items?: any[] },
  ): any {
    const created = nowSeconds();
    const id = randomId("in");
    const items = opts.items ?? sub?.items.data ?? [];
    const lines = items.map((si: any) => {
      const amount = si.price.unit_amount * si.quantity;
      return {
        id: randomId("il"),
        object: "line_item",
        amount,
        currency: si.price.currency,
        description: `${si.quantity} × ${si.price.nickname ?? si.price.id}`,
        discount_amounts: [],
        discountable: true,
        discounts: [],
        invoice: id,
        livemode: false,
        metadata: {},
        parent: sub
          ? {
            invoice_item_details: null,
            subscription_item_details: { invoice_item: null, proration: false, proration_details: { credited_items: null }, subscription: sub.id, subscription_item: si.id },
            type: "subscription_item_details",
          }
          : null,
        period: { end: si.current_period_end, start: si.current_period_start },
        pretax_credit_amounts: [],
        pricing: { price_details: { price: si.price.id, product: si.price.product }, type: "price_details", unit_amount_decimal: si.price.unit_amount_decimal },
        quantity: si.quantity,
        quantity_decimal: String(si.quantity),
        subscription: sub?.id ?? null,
        subtotal: amount,
        taxes: [],
      };
    });
    const subtotal = lines.reduce((n: number, l: any) => n + l.amount, 0);
    const address = customer.address ?? null;
    const { rate } = opts.automaticTax ? taxRateFor(address) : { rate: 0 };
    const tax = Math.round(subtotal * rate);
    const inv: any = {
      id,
      object: "invoice",
      account_country: "CA",
      account_name: "C-Secur360 (fake Stripe)",
      account_tax_ids: null,
      amount_due: subtotal + tax,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: subtotal + tax,
      amount_shipping: 0,
      application: null,
      attempt_count: 0,
      attempted: false,
      auto_advance: true,
      automatic_tax: {
        disabled_reason: null,
        enabled: opts.automaticTax,
        liability: opts.automaticTax ? { type: "self" } : null,
        provider: opts.automaticTax ? "stripe" : null,
        status: opts.automaticTax ? "complete" : null,
      },
      automatically_finalizes_at: created + 3600,
      billing_reason: opts.billingReason,
      collection_method: "charge_automatically",
      created,
      currency: sub?.currency ?? "cad",
      custom_fields: null,
      customer: customer.id,
      customer_account: null,
      customer_address: address,
      customer_email: customer.email,
      customer_name: customer.name,
      customer_phone: customer.phone,
      customer_shipping: null,
      customer_tax_exempt: customer.tax_exempt,
      customer_tax_ids: [],
      default_payment_method: null,
      default_source: null,
      default_tax_rates: [],
      description: null,
      discounts: [],
      due_date: null,
      effective_at: null,
      ending_balance: null,
      footer: null,
      from_invoice: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      issuer: { type: "self" },
      last_finalization_error: null,
      latest_revision: null,
      lines: { object: "list", data: lines, has_more: false, total_count: lines.length, url: `/v1/invoices/${id}/lines` },
      livemode: false,
      metadata: {},
      next_payment_attempt: null,
      number: null,
      on_behalf_of: null,
      parent: sub
        ? { quote_details: null, subscription_details: { metadata: clone(sub.metadata), subscription: sub.id }, type: "subscription_details" }
        : null,
      payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
      period_end: opts.periodEnd ?? created,
      period_start: opts.periodStart ?? created,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      receipt_number: null,
      rendering: null,
      shipping_cost: null,
      shipping_details: null,
      starting_balance: 0,
      statement_descriptor: null,
      status: "draft",
      status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
      subtotal,
      subtotal_excluding_tax: subtotal,
      test_clock: null,
      total: subtotal + tax,
      total_discount_amounts: [],
      total_excluding_tax: subtotal,
      total_pretax_credit_amounts: [],
      total_taxes: tax > 0
        ? [{ amount: tax, tax_behavior: "exclusive", tax_rate_details: { tax_rate: "txr_FakeCanada" }, taxability_reason: "standard_rated", taxable_amount: subtotal, type: "tax_rate_details" }]
        : [],
      webhooks_delivered_at: null,
    };
    hidden.set(id, { paymentIntent: null, charge: null, paidOutOfBand: false });
    if (sub) sub.latest_invoice = id;
    return put(inv);
  }
  function finalizeInvoice(inv: any): any {
    if (inv.status !== "draft") throw invalid(`This invoice is already finalized, you can't re-finalize a non-draft invoice.`);
    const customer = objects.get(inv.customer);
    const t = nowSeconds();
    inv.status = "open";
    inv.number = `${customer?.invoice_prefix ?? "FAKE"}-${String(customer ? customer.next_invoice_sequence++ : 1).padStart(4, "0")}`;
    inv.hosted_invoice_url = `https://invoice.stripe.com/i/acct_FakeCsecur360/test_${inv.id.slice(3)}`;
    inv.invoice_pdf = `https://pay.stripe.com/invoice/acct_FakeCsecur360/test_${inv.id.slice(3)}/pdf`;
    inv.status_transitions.finalized_at = t;
    inv.effective_at = t;
    inv.automatically_finalizes_at = null;
    inv.webhooks_delivered_at = t;
    hidden.get(inv.id).paymentIntent ??= inv.amount_due > 0 ? randomId("pi") : null;
    emit("invoice.finalized", inv);
    if (inv.amount_due === 0) markPaid(inv, { outOfBand: false });
    return inv;
  }
  function markPaid(inv: any, opts: { outOfBand: boolean }): any {
    const t = nowSeconds();
    const h = hidden.get(inv.id);
    inv.status = "paid";
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.attempted = true;
    if (!opts.outOfBand && inv.amount_due > 0) inv.attempt_count += 1;
    inv.status_transitions.paid_at = t;
    inv.next_payment_attempt = null;
    h.paidOutOfBand = opts.outOfBand;
    if (inv.amount_due > 0 && !opts.outOfBand) {
      h.charge = randomId("ch");
      const existing = all("invoice_payment").find((ip) => ip.invoice === inv.id && ip.status === "open");
      const ip = existing ?? put({
        id: randomId("inpay"),
        object: "invoice_payment",
        amount_paid: null,
        amount_requested: inv.amount_due,
        created: t,
        currency: inv.currency,
        invoice: inv.id,
        is_default: true,
        livemode: false,
        payment: { payment_intent: h.paymentIntent ?? (h.paymentIntent = randomId("pi")), type: "payment_intent" },
        status: "open",
        status_transitions: { canceled_at: null, paid_at: null },
      });
      ip.status = "paid";
      ip.amount_paid = inv.amount_due;
      ip.status_transitions.paid_at = t;
      emit("invoice_payment.paid", ip);
    }
    emit("invoice.paid", inv);
    if (!opts.outOfBand) emit("invoice.payment_succeeded", inv);
    return inv;
  }
  /** A payment attempt that needs 3-D Secure: an open invoice payment, the invoice still open. */
  function requireAction(inv: any): void {
    const h = hidden.get(inv.id);
    h.paymentIntent ??= randomId("pi");
    inv.attempted = true;
    inv.attempt_count += 1;
    put({
      id: randomId("inpay"),
      object: "invoice_payment",
      amount_paid: null,
      amount_requested: inv.amount_due,
      created: nowSeconds(),
      currency: inv.currency,
      invoice: inv.id,
      is_default: true,
      livemode: false,
      payment: { payment_intent: h.paymentIntent, type: "payment_intent" },
      status: "open",
      status_transitions: { canceled_at: null, paid_at: null },
    });
    emit("invoice.payment_action_required", inv);
  }
  function failPayment(inv: any): void {
    inv.attempted = true;
    inv.attempt_count += 1;
    inv.next_payment_attempt = nowSeconds() + 3 * 86400;
    emit("invoice.payment_failed", inv);
    const subId = inv.parent?.subscription_details?.subscription;
    const sub = subId ? objects.get(subId) : undefined;
    if (sub && sub.status === "active") change(sub, { status: "past_due" }, "customer.subscription.updated");
  }
  function invoicePaymentsList(invoiceId: string): any {
    const data = all("invoice_payment").filter((ip) => ip.invoice === invoiceId).reverse().map(clone);
    return { object: "list", data, has_more: false, total_count: data.length, url: `/v1/invoice_payments?invoice=${invoiceId}` };
  }
  function cardOf(customerId: string): string {
    return hidden.get(customerId)?.card ?? TEST_CARDS.success;
  }
  function payInvoice(inv: any, p: Params): any {
    if (inv.status === "paid") throw invalid("Invoice is already paid");
    if (inv.status === "draft") finalizeInvoice(inv);
    if (inv.status === "paid") return inv; // a $0 invoice is paid when finalized
    if (inv.status !== "open") throw invalid(`You can only pay an open invoice. This invoice is ${inv.status}.`);
    if (bool(p, "paid_out_of_band")) return markPaid(inv, { outOfBand: true });
    const card = cardOf(inv.customer);
    if (card === TEST_CARDS.declined) {
      failPayment(inv);
      throw new StripeFakeError(402, "card_error", "Your card was declined.", { code: "card_declined", decline_code: "generic_decline" });
    }
    return markPaid(inv, { outOfBand: false });
  }

  // ---- checkout ----------------------------------------------------------------------------------
  function createSession(p: Params): any {
    onlyKnown(p, SESSION_PARAMS);
    const mode = str(p, "mode", { required: true })!;
    if (mode !== "subscription") throw invalid("The fake Stripe supports mode=subscription only.", "mode");
    const items = lineItemsOf(p, "line_items");
    if (items.length === 0) throw invalid("Missing required param: line_items.", "line_items");
    if (items.length > 20) throw invalid("You can only have up to 20 line items.", "line_items");
    items.forEach((it, i) => {
      if (it.quantity < 1) throw invalid("This value must be greater than or equal to 1.", `line_items[${i}][quantity]`);
    });
    const currencies = new Set(items.map((i) => i.price.currency));
    if (currencies.size > 1) throw invalid("All line items must use the same currency.", "line_items");
    const customerId = str(p, "customer");
    const customerEmail = str(p, "customer_email");
    if (customerId && customerEmail) throw invalid("You may only specify one of these parameters: customer, customer_email.", "customer_email");
    const customer = customerId ? get("customer", customerId, "customer") : null;
    if (p.customer_creation !== undefined) {
      throw invalid("`customer_creation` can only be used in `payment` mode.", "customer_creation");
    }
    const customerUpdate = obj(p, "customer_update");
    if (customerUpdate && !customer) throw invalid("`customer_update` can only be used with `customer`.", "customer_update");
    for (const [k, v] of Object.entries(customerUpdate ?? {})) {
      if (!["address", "name", "shipping"].includes(k)) throw invalid(`Received unknown parameter: customer_update[${k}]`, `customer_update[${k}]`);
      if (v !== "auto" && v !== "never") throw invalid(`Invalid customer_update[${k}]: must be one of auto or never`, `customer_update[${k}]`);
    }
    const automaticTax = bool(obj(p, "automatic_tax") ?? {}, "enabled") ?? false;
    if (automaticTax && customer && !customer.address && customerUpdate?.address !== "auto" && customerUpdate?.shipping !== "auto") {
      throw invalid(
        "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid address to the Customer or set either `customer_update[address]` to 'auto' or `customer_update[shipping]` to 'auto' to save the address entered in Checkout to the Customer.",
        "customer_update[address]",
      );
    }
    const taxIdCollection = bool(obj(p, "tax_id_collection") ?? {}, "enabled") ?? false;
    if (taxIdCollection && customer && customerUpdate?.name !== "auto") {
      throw invalid(
        "Tax ID collection requires updating business name on the customer. To enable tax ID collection for an existing customer, please set `customer_update[name]` to `auto`.",
        "customer_update[name]",
      );
    }
    const billingAddressCollection = str(p, "billing_address_collection") ?? "auto";
    if (!["auto", "required"].includes(billingAddressCollection)) {
      throw invalid("Invalid billing_address_collection: must be one of auto or required", "billing_address_collection");
    }
    const clientReferenceId = str(p, "client_reference_id");
    if (clientReferenceId && clientReferenceId.length > 200) throw invalid("client_reference_id is too long (200 characters).", "client_reference_id");
    const subscriptionData = obj(p, "subscription_data") ?? {};
    for (const k of Object.keys(subscriptionData)) {
      if (!["metadata", "trial_period_days", "description", "default_tax_rates", "billing_cycle_anchor", "proration_behavior", "trial_end", "trial_settings", "application_fee_percent", "on_behalf_of", "transfer_data", "invoice_settings", "billing_mode"].includes(k)) {
        throw invalid(`Received unknown parameter: subscription_data[${k}]`, `subscription_data[${k}]`);
      }
    }
    const trialDays = int(subscriptionData, "trial_period_days", { min: 1, max: 730, label: "subscription_data[trial_period_days]" });
    const successUrl = str(p, "success_url");
    const created = nowSeconds();
    const id = randomId("cs_test", 58);
    const subtotal = items.reduce((n, i) => n + i.price.unit_amount * i.quantity, 0);
    const s = put({
      id,
      object: "checkout.session",
      adaptive_pricing: { enabled: false },
      after_expiration: null,
      allow_promotion_codes: bool(p, "allow_promotion_codes") ?? null,
      amount_subtotal: subtotal,
      amount_total: subtotal,
      automatic_tax: { enabled: automaticTax, liability: automaticTax ? { type: "self" } : null, provider: automaticTax ? "stripe" : null, status: automaticTax ? "requires_location_inputs" : null },
      billing_address_collection: billingAddressCollection,
      cancel_url: str(p, "cancel_url") ?? null,
      client_reference_id: clientReferenceId ?? null,
      client_secret: null,
      collected_information: null,
      consent: null,
      consent_collection: null,
      created,
      currency: items[0].price.currency,
      currency_conversion: null,
      custom_fields: [],
      custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
      customer: customer?.id ?? null,
      customer_account: null,
      customer_creation: null,
      customer_details: customer ? { address: customer.address, business_name: null, email: customer.email, individual_name: null, name: customer.name, phone: null, tax_exempt: customer.tax_exempt, tax_ids: [] } : customerEmail ? { address: null, business_name: null, email: customerEmail, individual_name: null, name: null, phone: null, tax_exempt: "none", tax_ids: null } : null,
      customer_email: customerEmail ?? null,
      discounts: [],
      expires_at: int(p, "expires_at") ?? created + 86400,
      integration_identifier: null,
      invoice: null,
      invoice_creation: null,
      livemode: false,
      locale: str(p, "locale") ?? null,
      managed_payments: null,
      metadata: mergeMetadata({}, p),
      mode,
      origin_context: null,
      payment_intent: null,
      payment_link: null,
      payment_method_collection: "always",
      payment_method_configuration_details: null,
      payment_method_options: { card: { request_three_d_secure: "automatic" } },
      payment_method_types: ["card"],
      payment_status: "unpaid",
      permissions: null,
      phone_number_collection: { enabled: false },
      recovered_from: null,
      saved_payment_method_options: null,
      setup_intent: null,
      shipping_address_collection: null,
      shipping_cost: null,
      shipping_options: [],
      status: "open",
      submit_type: null,
      subscription: null,
      success_url: successUrl ?? null,
      tax_id_collection: { enabled: taxIdCollection, required: "never" },
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: str(p, "ui_mode") ?? "hosted",
      url: `${baseUrl}/_fake/checkout/pay/${id}`,
      wallet_options: null,
    });
    hidden.set(id, {
      items: items.map((i) => ({ price: i.price.id, quantity: i.quantity, id: randomId("li") })),
      customerUpdate: customerUpdate ?? {},
      subscriptionMetadata: (subscriptionData.metadata as Record<string, string>) ?? {},
      trialDays,
      description: str(subscriptionData, "description") ?? null,
      pendingAuth: null as PendingAuth | null,
    });
    return s;
  }
  function sessionLineItems(s: any): any {
    const h = hidden.get(s.id);
    const data = h.items.map((i: any) => {
      const price = objects.get(i.price);
      const product = objects.get(price.product);
      const amount = price.unit_amount * i.quantity;
      return {
        id: i.id,
        object: "item",
        amount_discount: 0,
        amount_subtotal: amount,
        amount_tax: 0,
        amount_total: amount,
        currency: price.currency,
        description: product?.name ?? price.nickname,
        price: clone(price),
        quantity: i.quantity,
      };
    });
    return { object: "list", data, has_more: false, url: `/v1/checkout/sessions/${s.id}/line_items` };
  }

  interface CompleteInput {
    card?: string;
    email?: string;
    name?: string;
    address?: any;
  }
  /** The customer paying a session with `input.card`: Stripe's outcome, objects and events. */
  function completeSession(s: any, input: CompleteInput): { outcome: string; session: any } {
    if (s.status !== "open") throw invalid(`This Checkout Session is ${s.status}: it can no longer be completed.`);
    const h = hidden.get(s.id);
    const card = (input.card ?? TEST_CARDS.success).replace(/\s+/g, "");
    if (card === TEST_CARDS.declined) {
      throw new StripeFakeError(402, "card_error", "Your card was declined.", { code: "card_declined", decline_code: "generic_decline" });
    }
    if (![TEST_CARDS.success, TEST_CARDS.threeDSecure].includes(card as any)) {
      throw new StripeFakeError(402, "card_error", "Your card number is incorrect.", { code: "incorrect_number" });
    }
    const address = input.address ? addressOf(input.address) : DEFAULT_ADDRESS;
    let pendingAuth: PendingAuth | null = h.pendingAuth;
    if (!pendingAuth) {
      // Customer: the session's, updated as customer_update asks; else a new one.
      let customer: any;
      let customerCreated = false;
      if (s.customer) {
        customer = objects.get(s.customer);
        const changes: Record<string, unknown> = {};
        if (h.customerUpdate.address === "auto") changes.address = address;
        if (h.customerUpdate.name === "auto" && input.name) changes.name = input.name;
        change(customer, changes, "customer.updated");
      } else {
        customer = createCustomer({
          email: s.customer_email ?? input.email ?? `client-${randomId("x", 8).slice(2).toLowerCase()}@example.test`,
          name: input.name ?? "Client test",
          address,
        } as Params);
        customerCreated = true;
      }
      hidden.set(customer.id, { ...hidden.get(customer.id), card });
      const items = h.items.map((i: any) => ({ price: objects.get(i.price), quantity: i.quantity }));
      const trial = Boolean(h.trialDays);
      const sub = newSubscription(customer, items, {
        status: trial ? "trialing" : "incomplete",
        metadata: clone(h.subscriptionMetadata),
        automaticTax: s.automatic_tax.enabled,
        trialDays: h.trialDays,
        description: h.description,
      });
      emit("customer.subscription.created", sub);
      const inv = invoiceFor(customer, sub, {
        billingReason: "subscription_create",
        automaticTax: s.automatic_tax.enabled,
        items: trial ? sub.items.data.map((i: any) => ({ ...i, quantity: i.quantity, price: { ...i.price, unit_amount: 0 } })) : undefined,
      });
      emit("invoice.created", inv);
      finalizeInvoice(inv);
      pendingAuth = { subscription: sub.id, invoice: inv.id, customerCreated };
      h.pendingAuth = pendingAuth;
      s.customer = customer.id;
      if (inv.status === "paid") return { outcome: "succeeded", session: finishSession(s, sub, inv, address) };
      if (card === TEST_CARDS.threeDSecure) {
        requireAction(inv);
        return { outcome: "requires_action", session: s };
      }
    } else {
      hidden.set(s.customer, { ...hidden.get(s.customer), card });
      if (card === TEST_CARDS.threeDSecure) return { outcome: "requires_action", session: s };
    }
    const inv = objects.get(pendingAuth.invoice);
    const sub = objects.get(pendingAuth.subscription);
    markPaid(inv, { outOfBand: false });
    if (sub.status === "incomplete") change(sub, { status: "active" }, "customer.subscription.updated");
    return { outcome: "succeeded", session: finishSession(s, sub, inv, address) };
  }
  function authenticateSession(s: any, result: "succeed" | "fail"): { outcome: string; session: any } {
    const h = hidden.get(s.id);
    if (s.status !== "open" || !h?.pendingAuth) throw invalid("This Checkout Session has no payment waiting for authentication.");
    const inv = objects.get(h.pendingAuth.invoice);
    const sub = objects.get(h.pendingAuth.subscription);
    if (result === "fail") {
      inv.next_payment_attempt = null;
      emit("invoice.payment_failed", inv);
      return { outcome: "authentication_failed", session: s };
    }
    markPaid(inv, { outOfBand: false });
    if (sub.status === "incomplete") change(sub, { status: "active" }, "customer.subscription.updated");
    return { outcome: "succeeded", session: finishSession(s, sub, inv, null) };
  }
  function finishSession(s: any, sub: any, inv: any, address: any): any {
    const customer = objects.get(sub.customer);
    const tax = inv.total - inv.subtotal;
    s.status = "complete";
    s.payment_status = inv.amount_due === 0 ? "no_payment_required" : "paid";
    s.subscription = sub.id;
    s.invoice = inv.id;
    s.amount_total = inv.total;
    s.total_details = { amount_discount: 0, amount_shipping: 0, amount_tax: tax };
    if (s.automatic_tax.enabled) s.automatic_tax.status = "complete";
    s.customer_details = {
      address: address ?? customer.address,
      business_name: null,
      email: customer.email,
      individual_name: null,
      name: customer.name,
      phone: null,
      tax_exempt: customer.tax_exempt,
      tax_ids: [],
    };
    s.collected_information = { business_name: null, individual_name: null, shipping_details: null };
    emit("checkout.session.completed", s);
    return s;
  }

  // ---- seeding (billing-sync tests) --------------------------------------------------------------
  function seedSubscriptions(p: any): any {
    const count = Number(p.count ?? 1);
    if (!Number.isInteger(count) || count < 1 || count > 20_000) throw invalid("count must be an integer 1..20000", "count");
    const interval = p.interval === "year" ? "year" : "month";
    const plan = objects.get(interval === "year" ? options.prices.annual : options.prices.monthly);
    const addon = objects.get(interval === "year" ? options.prices.addonSiteAnnual : options.prices.addonSiteMonthly);
    const status = String(p.status ?? "active");
    const out = { customers: [] as string[], subscriptions: [] as string[], invoices: [] as string[] };
    const tenantIds: unknown[] = Array.isArray(p.tenant_ids) ? p.tenant_ids : [];
    for (let i = 0; i < count; i++) {
      const tenant = tenantIds[i];
      const metadata: Record<string, string> = tenant ? { tenant_id: String(tenant) } : {};
      const customer = createCustomer({ email: `seed-${i}-${randomId("x", 6).slice(2).toLowerCase()}@example.test`, name: `Client ${i + 1}`, metadata } as Params, {
        emit: Boolean(p.events),
      });
      customer.address = { ...DEFAULT_ADDRESS };
      const items = [{ price: plan, quantity: 1 }];
      const addons = Number(p.addon_quantity ?? 0);
      if (addons > 0) items.push({ price: addon, quantity: addons });
      const sub = newSubscription(customer, items, { status, metadata: { ...metadata, ...(p.metadata ?? {}) }, automaticTax: true });
      if (p.events) emit("customer.subscription.created", sub);
      out.customers.push(customer.id);
      out.subscriptions.push(sub.id);
      if (p.with_invoices !== false) {
        const inv = invoiceFor(customer, sub, { billingReason: "subscription_create", automaticTax: true });
        const t = nowSeconds();
        Object.assign(inv, {
          status: "paid",
          number: `${customer.invoice_prefix}-0001`,
          amount_paid: inv.amount_due,
          amount_remaining: 0,
          attempted: true,
          attempt_count: 1,
          hosted_invoice_url: `https://invoice.stripe.com/i/acct_FakeCsecur360/test_${inv.id.slice(3)}`,
          automatically_finalizes_at: null,
          effective_at: t,
        });
        inv.status_transitions.finalized_at = t;
        inv.status_transitions.paid_at = t;
        hidden.get(inv.id).charge = randomId("ch");
        hidden.get(inv.id).paymentIntent = randomId("pi");
        customer.next_invoice_sequence = 2;
        if (p.events) emit("invoice.paid", inv);
        out.invoices.push(inv.id);
      }
    }
    return out;
  }

  // ---- API routing -------------------------------------------------------------------------------
  type Ctx = { params: Params; match: string[]; version: string; req: Request };
  type RouteFn = (ctx: Ctx) => any;
  const routes: [string, RegExp, string, RouteFn][] = [];
  const route = (method: string, pattern: string, fn: RouteFn) => {
    const re = new RegExp("^" + pattern.replace(/:[a-z_]+/g, "([^/]+)") + "$");
    routes.push([method, re, `${method} ${pattern}`, fn]);
  };

  // customers
  route("POST", "/v1/customers", ({ params }) => {
    onlyKnown(params, ["address", "description", "email", "metadata", "name", "phone", "preferred_locales", "tax_exempt", "expand", "invoice_settings", "shipping", "payment_method", "tax_id_data", "tax"]);
    return createCustomer(params);
  });
  route("GET", "/v1/customers", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "email", "created", "test_clock"]);
    const email = str(params, "email");
    const created = rangeFilter(params, "created");
    return paginate(all("customer").filter((c) => (!email || c.email === email) && (!created || created(c.created))), params, "/v1/customers");
  });
  route("GET", "/v1/customers/:id", ({ match }) => {
    const c = objects.get(match[0]);
    if (c?.object === "customer" && c.deleted) return { id: c.id, object: "customer", deleted: true };
    return get("customer", match[0]);
  });
  route("POST", "/v1/customers/:id", ({ match, params }) => updateCustomer(get("customer", match[0]), params));
  route("DELETE", "/v1/customers/:id", ({ match }) => deleteCustomer(get("customer", match[0])));

  // subscriptions
  route("POST", "/v1/subscriptions", ({ params }) => {
    onlyKnown(params, [
      "customer", "items", "metadata", "trial_period_days", "payment_behavior", "cancel_at_period_end", "automatic_tax",
      "collection_method", "days_until_due", "default_payment_method", "description", "expand", "proration_behavior",
      "billing_cycle_anchor", "off_session", "payment_settings", "currency",
    ]);
    const customer = get("customer", str(params, "customer", { required: true }), "customer");
    const items = lineItemsOf(params, "items");
    if (items.length === 0) throw invalid("Missing required param: items.", "items");
    const trialDays = int(params, "trial_period_days", { min: 0, max: 730 });
    const behavior = str(params, "payment_behavior") ?? "allow_incomplete";
    const automaticTax = bool(obj(params, "automatic_tax") ?? {}, "enabled") ?? false;
    const card = cardOf(customer.id);
    if (behavior === "error_if_incomplete" && card !== TEST_CARDS.success && !trialDays) {
      throw new StripeFakeError(402, "card_error", "Your card was declined.", { code: "card_declined", decline_code: "generic_decline" });
    }
    const incomplete = !trialDays && (behavior === "default_incomplete" || card !== TEST_CARDS.success);
    const sub = newSubscription(customer, items.map((i) => ({ price: i.price, quantity: i.quantity })), {
      status: trialDays ? "trialing" : incomplete ? "incomplete" : "active",
      metadata: mergeMetadata({}, params),
      automaticTax,
      trialDays,
      description: str(params, "description") ?? null,
    });
    sub.cancel_at_period_end = bool(params, "cancel_at_period_end") ?? false;
    emit("customer.subscription.created", sub);
    const inv = invoiceFor(customer, sub, {
      billingReason: "subscription_create",
      automaticTax,
      items: trialDays ? sub.items.data.map((i: any) => ({ ...i, price: { ...i.price, unit_amount: 0 } })) : undefined,
    });
    emit("invoice.created", inv);
    finalizeInvoice(inv);
    if (inv.status === "open") {
      if (behavior === "default_incomplete") {
        /* waits for the client to confirm the payment */
      } else if (card === TEST_CARDS.threeDSecure) requireAction(inv);
      else if (card === TEST_CARDS.declined) failPayment(inv);
      else markPaid(inv, { outOfBand: false });
    }
    return sub;
  });
  route("GET", "/v1/subscriptions", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "customer", "price", "status", "created", "collection_method", "current_period_end", "current_period_start", "test_clock", "automatic_tax"]);
    const customer = str(params, "customer");
    const price = str(params, "price");
    const status = str(params, "status");
    const statuses = ["active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "trialing", "paused", "all", "ended"];
    if (status && !statuses.includes(status)) throw invalid(`Invalid status: must be one of ${statuses.join(", ")}`, "status");
    const created = rangeFilter(params, "created");
    const list = all("subscription").filter((s) =>
      (!customer || s.customer === customer) &&
      (!price || s.items.data.some((i: any) => i.price.id === price)) &&
      (status === "all" ? true : status === "ended" ? ["canceled", "incomplete_expired"].includes(s.status) : status ? s.status === status : s.status !== "canceled") &&
      (!created || created(s.created))
    );
    return paginate(list, params, "/v1/subscriptions");
  });
  route("GET", "/v1/subscriptions/:id", ({ match }) => get("subscription", match[0]));
  route("POST", "/v1/subscriptions/:id", ({ match, params }) => updateSubscription(get("subscription", match[0]), params));
  route("DELETE", "/v1/subscriptions/:id", ({ match, params }) => {
    onlyKnown(params, ["cancellation_details", "invoice_now", "prorate", "expand"]);
    const s = get("subscription", match[0]);
    if (s.status === "canceled") throw invalid(`No such subscription: '${s.id}'`, "id");
    return cancelSubscription(s, {});
  });
  route("GET", "/v1/subscription_items", ({ params }) => {
    const s = get("subscription", str(params, "subscription", { required: true }), "subscription");
    return paginate([...s.items.data].reverse(), params, `/v1/subscription_items`);
  });

  // invoices
  route("POST", "/v1/invoices", ({ params }) => {
    onlyKnown(params, [
      "customer", "subscription", "auto_advance", "collection_method", "days_until_due", "description", "metadata",
      "pending_invoice_items_behavior", "expand", "automatic_tax", "currency", "due_date", "footer",
    ]);
    const customer = get("customer", str(params, "customer", { required: true }), "customer");
    const subId = str(params, "subscription");
    const sub = subId ? get("subscription", subId, "subscription") : null;
    if (sub && sub.customer !== customer.id) throw invalid("The subscription does not belong to this customer.", "subscription");
    // Simplification (documented): an invoice for a subscription bills its items for their current period.
    const inv = invoiceFor(customer, sub, {
      billingReason: sub ? "subscription_cycle" : "manual",
      automaticTax: bool(obj(params, "automatic_tax") ?? {}, "enabled") ?? Boolean(sub?.automatic_tax.enabled),
      periodStart: sub?.items.data[0]?.current_period_start,
      periodEnd: sub?.items.data[0]?.current_period_end,
    });
    inv.auto_advance = bool(params, "auto_advance") ?? false;
    inv.description = str(params, "description") ?? null;
    inv.metadata = mergeMetadata({}, params);
    emit("invoice.created", inv);
    return inv;
  });
  route("GET", "/v1/invoices", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "customer", "subscription", "status", "created", "collection_method", "due_date"]);
    const customer = str(params, "customer");
    const subscription = str(params, "subscription");
    const status = str(params, "status");
    const created = rangeFilter(params, "created");
    const list = all("invoice").filter((i) =>
      (!customer || i.customer === customer) &&
      (!subscription || i.parent?.subscription_details?.subscription === subscription) &&
      (!status || i.status === status) && (!created || created(i.created))
    );
    return paginate(list, params, "/v1/invoices");
  });
  route("GET", "/v1/invoices/:id", ({ match }) => get("invoice", match[0]));
  route("GET", "/v1/invoices/:id/lines", ({ match, params }) => {
    const inv = get("invoice", match[0]);
    return paginate([...inv.lines.data].reverse(), params, `/v1/invoices/${inv.id}/lines`);
  });
  route("POST", "/v1/invoices/:id", ({ match, params }) => {
    onlyKnown(params, ["description", "metadata", "auto_advance", "footer", "expand", "days_until_due", "collection_method"]);
    const inv = get("invoice", match[0]);
    const changes: Record<string, unknown> = {};
    if (params.metadata !== undefined) changes.metadata = mergeMetadata(inv.metadata, params);
    if (params.description !== undefined) {
      if (inv.status !== "draft") throw invalid("You can only update the description of a draft invoice.", "description");
      changes.description = params.description === "" ? null : params.description;
    }
    if (params.auto_advance !== undefined) changes.auto_advance = bool(params, "auto_advance");
    change(inv, changes, "invoice.updated");
    return inv;
  });
  route("DELETE", "/v1/invoices/:id", ({ match }) => {
    const inv = get("invoice", match[0]);
    if (inv.status !== "draft") throw invalid("You can only delete draft invoices.");
    emit("invoice.deleted", inv);
    inv.deleted = true;
    return { id: inv.id, object: "invoice", deleted: true };
  });
  route("POST", "/v1/invoices/:id/finalize", ({ match, params }) => {
    onlyKnown(params, ["auto_advance", "expand"]);
    return finalizeInvoice(get("invoice", match[0]));
  });
  route("POST", "/v1/invoices/:id/pay", ({ match, params }) => {
    onlyKnown(params, ["paid_out_of_band", "payment_method", "source", "off_session", "forgive", "mandate", "expand"]);
    return payInvoice(get("invoice", match[0]), params);
  });
  route("POST", "/v1/invoices/:id/void", ({ match }) => {
    const inv = get("invoice", match[0]);
    if (inv.status !== "open" && inv.status !== "uncollectible") throw invalid(`You can only void an open or uncollectible invoice. This invoice is ${inv.status}.`);
    inv.status = "void";
    inv.status_transitions.voided_at = nowSeconds();
    emit("invoice.voided", inv);
    return inv;
  });
  route("POST", "/v1/invoices/:id/mark_uncollectible", ({ match }) => {
    const inv = get("invoice", match[0]);
    if (inv.status !== "open") throw invalid(`You can only mark an open invoice as uncollectible. This invoice is ${inv.status}.`);
    inv.status = "uncollectible";
    inv.status_transitions.marked_uncollectible_at = nowSeconds();
    emit("invoice.marked_uncollectible", inv);
    return inv;
  });
  route("POST", "/v1/invoices/:id/send", ({ match }) => {
    const inv = get("invoice", match[0]);
    if (inv.status !== "open") throw invalid("You can only send an open invoice.");
    emit("invoice.sent", inv);
    return inv;
  });
  route("GET", "/v1/invoice_payments", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "invoice", "payment", "status"]);
    const invoice = str(params, "invoice");
    const status = str(params, "status");
    return paginate(all("invoice_payment").filter((ip) => (!invoice || ip.invoice === invoice) && (!status || ip.status === status)), params, "/v1/invoice_payments");
  });
  route("GET", "/v1/invoice_payments/:id", ({ match }) => get("invoice_payment", match[0], undefined, "invoice payment"));

  // prices and products
  route("GET", "/v1/prices", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "active", "currency", "product", "type", "recurring", "lookup_keys", "created"]);
    const active = bool(params, "active");
    const product = str(params, "product");
    return paginate(all("price").filter((p) => (active === undefined || p.active === active) && (!product || p.product === product)), params, "/v1/prices");
  });
  route("GET", "/v1/prices/:id", ({ match }) => get("price", match[0]));
  route("POST", "/v1/prices", ({ params }) => {
    onlyKnown(params, ["currency", "unit_amount", "recurring", "product", "product_data", "nickname", "metadata", "lookup_key", "tax_behavior", "active", "expand"]);
    const productId = str(params, "product");
    const productData = obj(params, "product_data");
    const product = productId ? get("product", productId, "product") : productData ? createProduct({ name: str(productData, "name", { required: true })! }) : null;
    if (!product) throw invalid("Missing required param: product.", "product");
    const recurring = obj(params, "recurring");
    if (!recurring) throw invalid("The fake Stripe only creates recurring prices: recurring[interval] is required.", "recurring");
    return createPrice({
      product: product.id,
      unit_amount: int(params, "unit_amount", { required: true, min: 0 })!,
      interval: str(recurring, "interval", { required: true })!,
      nickname: str(params, "nickname"),
      currency: str(params, "currency", { required: true }),
    });
  });
  route("GET", "/v1/products/:id", ({ match }) => get("product", match[0]));
  route("POST", "/v1/products", ({ params }) => {
    onlyKnown(params, ["name", "metadata", "description", "tax_code", "expand", "id"]);
    return createProduct({ id: str(params, "id"), name: str(params, "name", { required: true })!, metadata: mergeMetadata({}, params) });
  });

  // checkout and portal
  route("POST", "/v1/checkout/sessions", ({ params }) => createSession(params));
  route("GET", "/v1/checkout/sessions", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "customer", "subscription", "status", "payment_intent", "payment_link", "created", "customer_details"]);
    const customer = str(params, "customer");
    const subscription = str(params, "subscription");
    const status = str(params, "status");
    return paginate(
      all("checkout.session").filter((s) => (!customer || s.customer === customer) && (!subscription || s.subscription === subscription) && (!status || s.status === status)),
      params,
      "/v1/checkout/sessions",
    );
  });
  route("GET", "/v1/checkout/sessions/:id", ({ match }) => get("checkout.session", match[0], undefined, "checkout.session"));
  route("GET", "/v1/checkout/sessions/:id/line_items", ({ match, params }) => {
    const s = get("checkout.session", match[0], undefined, "checkout.session");
    return paginate([...sessionLineItems(s).data].reverse(), params, `/v1/checkout/sessions/${s.id}/line_items`);
  });
  route("POST", "/v1/checkout/sessions/:id/expire", ({ match }) => {
    const s = get("checkout.session", match[0], undefined, "checkout.session");
    if (s.status !== "open") throw invalid(`Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"${s.status}\".`);
    s.status = "expired";
    s.url = null;
    emit("checkout.session.expired", s);
    return s;
  });
  route("POST", "/v1/billing_portal/sessions", ({ params }) => {
    onlyKnown(params, ["customer", "return_url", "configuration", "locale", "flow_data", "on_behalf_of", "expand", "customer_account"]);
    const customer = get("customer", str(params, "customer", { required: true }), "customer");
    const id = randomId("bps");
    return put({
      id,
      object: "billing_portal.session",
      configuration: str(params, "configuration") ?? "bpc_FakeDefaultConfiguration",
      created: nowSeconds(),
      customer: customer.id,
      customer_account: null,
      flow: null,
      livemode: false,
      locale: str(params, "locale") ?? null,
      on_behalf_of: null,
      return_url: str(params, "return_url") ?? null,
      url: `${baseUrl}/_fake/billing_portal/${id}`,
    });
  });

  // events
  route("GET", "/v1/events", ({ params }) => {
    onlyKnown(params, [...LIST_PARAMS, "type", "types", "created", "delivery_success"]);
    const type = str(params, "type");
    const types = arr(params, "types") as string[] | undefined;
    if (type && types) throw invalid("You may only specify one of these parameters: type, types.", "types");
    const wanted = (t: string) => {
      const match = (pattern: string) => pattern.endsWith(".*") ? t.startsWith(pattern.slice(0, -1)) : t === pattern;
      return (!type || match(type)) && (!types || types.some(match));
    };
    const created = rangeFilter(params, "created");
    const success = bool(params, "delivery_success");
    // Events are kept 30 days, as Stripe lists them.
    const oldest = nowSeconds() - 30 * 86400;
    return paginate(
      all("event").filter((e) =>
        e.created >= oldest && wanted(e.type) && (!created || created(e.created)) &&
        (success === undefined || (e.pending_webhooks === 0) === success)
      ),
      params,
      "/v1/events",
    );
  });
  route("GET", "/v1/events/:id", ({ match }) => get("event", match[0]));

  function stripeError(e: StripeFakeError, requestId: string): Response {
    const body = { error: { ...e.extra, message: e.message, type: e.type, request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}` } };
    if (e.extra.code) (body.error as any).doc_url = `https://stripe.com/docs/error-codes/${String(e.extra.code).replaceAll("_", "-")}`;
    return Response.json(body, { status: e.status, headers: { ...e.headers, "request-id": requestId } });
  }

  async function readBody(req: Request): Promise<string> {
    const bytes = new Uint8Array(await req.arrayBuffer());
    if (bytes.length > MAX_BODY_BYTES) throw invalid("Request too large");
    return new TextDecoder().decode(bytes);
  }

  async function api(req: Request, url: URL): Promise<Response> {
    const requestId = randomId("req", 14);
    const auth = req.headers.get("authorization") ?? "";
    const m = /^(?:Bearer|Basic)\s+(.+)$/i.exec(auth);
    let key = m?.[1] ?? "";
    if (/^Basic/i.test(auth)) {
      try {
        key = atob(key).replace(/:$/, "");
      } catch {
        key = "";
      }
    }
    if (key !== options.secretKey) {
      await req.body?.cancel();
      const message = key
        ? `Invalid API Key provided: ${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`
        : "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').";
      return stripeError(new StripeFakeError(401, "invalid_request_error", message), requestId);
    }
    const found = routes.find(([method, re]) => method === req.method && re.test(url.pathname));
    if (!found) {
      await req.body?.cancel();
      return stripeError(new StripeFakeError(404, "invalid_request_error", `Unrecognized request URL (${req.method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`), requestId);
    }
    const [, re, name, fn] = found;
    calls.set(name, (calls.get(name) ?? 0) + 1);
    const limiter = limiters.find((l) => l.remaining > 0 && (!l.route || l.route === name));
    if (limiter) {
      limiter.remaining--;
      if (limiter.remaining === 0) limiters.splice(limiters.indexOf(limiter), 1);
      await req.body?.cancel();
      if (limiter.status === 429) {
        return stripeError(
          new StripeFakeError(429, "invalid_request_error", "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.", { code: "rate_limit" }, limiter.retryAfter !== undefined ? { "retry-after": String(limiter.retryAfter) } : {}),
          requestId,
        );
      }
      return stripeError(new StripeFakeError(limiter.status, "api_error", "An unknown error occurred (fake Stripe: injected failure)."), requestId);
    }
    const version = req.headers.get("stripe-version") || STRIPE_API_VERSION;
    const text = req.method === "POST" ? await readBody(req) : url.search.slice(1);
    const params = parseStripeParams(text);
    const idemKey = req.method === "POST" ? req.headers.get("idempotency-key") : null;
    const fingerprint = `${req.method} ${url.pathname} ${text}`;
    if (idemKey) {
      const prior = idempotency.get(idemKey);
      if (prior) {
        if (prior.fingerprint !== fingerprint) {
          return stripeError(
            new StripeFakeError(400, "idempotency_error", `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.`),
            requestId,
          );
        }
        return new Response(prior.body, {
          status: prior.status,
          headers: { "content-type": "application/json", "request-id": requestId, "idempotency-key": idemKey, "idempotent-replayed": "true", "stripe-version": version },
        });
      }
    }
    let status = 200;
    let body: string;
    try {
      const expandList = ((arr(params, "expand") ?? []) as string[]);
      delete params.expand;
      const result = clone(fn({ params: expandList.length ? { ...params, expand: expandList } : params, match: re.exec(url.pathname)!.slice(1).map(decodeURIComponent), version, req }));
      body = JSON.stringify(render(expand(result, expandList), version), null, 2);
    } catch (e) {
      if (!(e instanceof StripeFakeError)) throw e;
      const res = stripeError(e, requestId);
      // Stripe saves the outcome of a request that ran (a card decline), not of one refused up front.
      if (idemKey && e.status === 402) idempotency.set(idemKey, { fingerprint, status: e.status, body: await res.clone().text() });
      return res;
    }
    if (idemKey) idempotency.set(idemKey, { fingerprint, status, body });
    status = 200;
    const headers: Record<string, string> = { "content-type": "application/json", "request-id": requestId, "stripe-version": version };
    if (idemKey) headers["idempotency-key"] = idemKey;
    return new Response(body, { status, headers });
  }

  // ---- control -----------------------------------------------------------------------------------
  async function controlBody(req: Request): Promise<any> {
    const text = await readBody(req);
    if (!text) return {};
    const type = (req.headers.get("content-type") ?? "").split(";")[0].trim();
    if (type === "application/x-www-form-urlencoded") return parseStripeParams(text);
    try {
      const v = JSON.parse(text);
      return typeof v === "object" && v !== null ? v : {};
    } catch {
      throw invalid("control endpoints take a JSON object");
    }
  }

  function page(title: string, html: string): Response {
    return new Response(`<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:sans-serif;max-width:40em;margin:2em auto">${html}</body>`, {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  }
  const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  async function deliverManually(o: any): Promise<DeliveryAttempt[]> {
    const url: string | undefined = o.url ?? endpoint.url;
    if (!url) throw invalid("no webhook URL: pass url or configure /_fake/webhook_endpoint", "url");
    const secrets: string[] = o.secrets ?? endpoint.secrets;
    const apiVersion: string = o.api_version ?? endpoint.apiVersion;
    const timestamp: number | undefined = o.timestamp;
    const extraHeaders: Record<string, string> = o.headers ?? {};
    // A raw body (malformed-body tests): signed as given, unless sign=false.
    if (o.raw_body !== undefined) {
      const body = String(o.raw_body);
      const signature = o.sign === false ? null : o.signature ?? await stripeSignatureHeader(body, secrets, timestamp);
      return [await postWebhook(url, body, signature, { event_id: null, type: null, attempt: 1, api_version: null, automatic: false }, extraHeaders)];
    }
    const ids: string[] = o.event_ids ?? [];
    let events = ids.map((id) => get("event", id, "event_ids"));
    if (o.order === "reverse") events.reverse();
    else if (o.order === "shuffle") events = events.map((e) => [Math.random(), e] as const).sort((a, b) => a[0] - b[0]).map(([, e]) => e);
    const duplicates = Number(o.duplicates ?? 0);
    const sequence = events.flatMap((e) => Array.from({ length: 1 + duplicates }, () => e));
    const retries = Number(o.retries ?? 0);
    const retryDelayMs = Number(o.retry_delay_ms ?? 200);
    const out: DeliveryAttempt[] = [];
    const one = async (e: any) => {
      for (let attempt = 0; attempt <= retries; attempt++) {
        let body = eventBody(e, apiVersion);
        const signature = o.sign === false ? null : o.signature ?? await stripeSignatureHeader(body, secrets, timestamp);
        if (o.tamper) body = body.replace(/"livemode": false/, '"livemode": true ');
        const res = await postWebhook(url, body, signature, { event_id: e.id, type: e.type, attempt: attempt + 1, api_version: apiVersion, automatic: false }, extraHeaders);
        out.push(res);
        if (res.status >= 200 && res.status < 300) {
          if (!o.tamper && o.sign !== false) e.pending_webhooks = 0;
          return;
        }
        if (attempt < retries) await new Promise((r) => setTimeout(r, retryDelayMs * 2 ** attempt));
      }
    };
    const concurrency = Math.max(1, Number(o.concurrency ?? 1));
    if (concurrency === 1) for (const e of sequence) await one(e);
    else {
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < sequence.length) await one(sequence[next++]);
      }));
    }
    return out;
  }

  function deepMerge(target: any, patch: any): void {
    for (const [k, v] of Object.entries(patch)) {
      if (v && typeof v === "object" && !Array.isArray(v) && target[k] && typeof target[k] === "object" && !Array.isArray(target[k])) deepMerge(target[k], v);
      else target[k] = v;
    }
  }

  async function control(req: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    const method = req.method;
    const json = (v: unknown, status = 200) => Response.json(v, { status });
    let m: RegExpExecArray | null;
    if (path === "/_fake/reset" && method === "POST") {
      objects.clear();
      order.clear();
      hidden.clear();
      calls.clear();
      idempotency.clear();
      deliveries.length = 0;
      limiters.length = 0;
      seedPrices();
      return json({ reset: true });
    }
    if (path === "/_fake/calls" && method === "GET") {
      const byRoute = Object.fromEntries([...calls.entries()].sort());
      return json({ calls: byRoute, total: [...calls.values()].reduce((a, b) => a + b, 0) });
    }
    if (path === "/_fake/calls/reset" && method === "POST") {
      calls.clear();
      return json({ reset: true });
    }
    if ((path === "/_fake/rate_limit" || path === "/_fake/failures") && method === "POST") {
      const o = await controlBody(req);
      const count = Number(o.count ?? 1);
      if (count === 0) limiters.length = 0;
      else {
        limiters.push({
          remaining: count,
          status: path === "/_fake/rate_limit" ? 429 : Number(o.status ?? 500),
          retryAfter: o.retry_after === undefined ? undefined : Number(o.retry_after),
          route: o.route,
        });
      }
      return json({ pending: limiters.map((l) => ({ ...l })) });
    }
    if (path === "/_fake/webhook_endpoint") {
      if (method === "POST") {
        const o = await controlBody(req);
        if (o.url !== undefined) endpoint.url = o.url || undefined;
        if (o.secrets !== undefined) endpoint.secrets = [...o.secrets];
        if (o.api_version !== undefined) endpoint.apiVersion = o.api_version;
        if (o.auto_deliver !== undefined) endpoint.autoDeliver = Boolean(o.auto_deliver);
        if (o.retries !== undefined) endpoint.retries = Number(o.retries);
        if (o.retry_delay_ms !== undefined) endpoint.retryDelayMs = Number(o.retry_delay_ms);
      }
      return json({ url: endpoint.url ?? null, secrets: endpoint.secrets.length, api_version: endpoint.apiVersion, auto_deliver: endpoint.autoDeliver, retries: endpoint.retries, retry_delay_ms: endpoint.retryDelayMs });
    }
    if (path === "/_fake/webhooks/settled" && method === "GET") {
      const deadline = Date.now() + Number(url.searchParams.get("timeout_ms") ?? 30_000);
      while (pending.size && Date.now() < deadline) await Promise.race([Promise.all([...pending]), new Promise((r) => setTimeout(r, 100))]);
      return json({ settled: pending.size === 0, pending: pending.size });
    }
    if (path === "/_fake/webhooks/deliveries" && method === "GET") {
      const eventId = url.searchParams.get("event_id");
      return json({ deliveries: deliveries.filter((d) => !eventId || d.event_id === eventId) });
    }
    if (path === "/_fake/webhooks/deliver" && method === "POST") {
      return json({ deliveries: await deliverManually(await controlBody(req)) });
    }
    if (path === "/_fake/events" && method === "POST") {
      const o = await controlBody(req);
      if (typeof o.type !== "string" || !/^[a-z_]+(\.[a-z_]+)+$/.test(o.type)) throw invalid("type must be an event type such as customer.subscription.updated", "type");
      let object = o.object;
      if (typeof o.object_id === "string") object = clone(objects.get(o.object_id) ?? (() => {
        throw missing("object", o.object_id, "object_id");
      })());
      if (typeof object !== "object" || object === null) throw invalid("object or object_id is required", "object");
      if (o.set) deepMerge(object, o.set);
      const event = emit(o.type, object, o.previous_attributes, { created: o.created, deliver: o.deliver ?? false });
      if (o.undelivered) event.pending_webhooks = 1;
      return json(event);
    }
    if ((m = /^\/_fake\/objects\/([^/]+)$/.exec(path))) {
      const id = decodeURIComponent(m[1]);
      const o = objects.get(id);
      if (!o) throw missing("object", id);
      if (method === "GET") return json(o);
      if (method === "DELETE") {
        objects.delete(id);
        const list = order.get(o.object);
        if (list) list.splice(list.indexOf(id), 1);
        return json({ id, deleted: true });
      }
      if (method === "POST") {
        const body = await controlBody(req);
        const before = clone(o);
        deepMerge(o, body.set ?? {});
        let event = null;
        if (body.emit) {
          const previous: Record<string, unknown> = {};
          for (const k of Object.keys(body.set ?? {})) previous[k] = before[k];
          event = emit(body.emit, o, previous, { created: body.created, deliver: body.deliver ?? true });
        }
        return json({ object: o, event });
      }
    }
    if (path === "/_fake/seed/subscriptions" && method === "POST") return json(seedSubscriptions(await controlBody(req)));
    if ((m = /^\/_fake\/customers\/([^/]+)\/card$/.exec(path)) && method === "POST") {
      const c = get("customer", decodeURIComponent(m[1]));
      const o = await controlBody(req);
      hidden.set(c.id, { ...hidden.get(c.id), card: String(o.card ?? TEST_CARDS.success).replace(/\s+/g, "") });
      return json({ customer: c.id, card: cardOf(c.id).slice(-4) });
    }
    if ((m = /^\/_fake\/subscriptions\/([^/]+)\/renew$/.exec(path)) && method === "POST") {
      // The next billing period starts: items move on, a draft invoice bills it (then finalize/pay/void… through the API).
      const s = get("subscription", decodeURIComponent(m[1]));
      const data = clone(s.items.data);
      for (const i of data) {
        i.current_period_start = i.current_period_end;
        i.current_period_end = addInterval(i.current_period_end, i.price.recurring.interval, i.price.recurring.interval_count);
      }
      change(s, { items: { ...s.items, data } }, "customer.subscription.updated");
      const inv = invoiceFor(objects.get(s.customer), s, {
        billingReason: "subscription_cycle",
        automaticTax: s.automatic_tax.enabled,
        periodStart: data[0].current_period_start,
        periodEnd: data[0].current_period_end,
      });
      emit("invoice.created", inv);
      return json({ subscription: s, invoice: inv });
    }
    if ((m = /^\/_fake\/invoices\/([^/]+)\/payment_failed$/.exec(path)) && method === "POST") {
      const inv = get("invoice", decodeURIComponent(m[1]));
      if (inv.status !== "open") throw invalid("only an open invoice can fail a payment attempt");
      failPayment(inv);
      return json(inv);
    }
    if ((m = /^\/_fake\/checkout\/sessions\/([^/]+)\/(complete|authenticate)$/.exec(path)) && method === "POST") {
      const s = get("checkout.session", decodeURIComponent(m[1]), undefined, "checkout.session");
      const o = await controlBody(req);
      const result = m[2] === "complete" ? completeSession(s, o) : authenticateSession(s, o.result === "fail" ? "fail" : "succeed");
      return json(result);
    }
    if ((m = /^\/_fake\/checkout\/pay\/([^/]+)$/.exec(path))) {
      // The page Checkout's `url` points at: a test card form posting to the same path.
      const s = objects.get(decodeURIComponent(m[1]));
      if (!s || s.object !== "checkout.session") return page("Checkout", "<p>No such Checkout Session.</p>");
      if (method === "POST") {
        const form = await controlBody(req);
        try {
          const r = form.action === "authenticate"
            ? authenticateSession(s, form.result === "fail" ? "fail" : "succeed")
            : completeSession(s, { card: form.card, email: form.email, name: form.name });
          if (r.outcome === "requires_action") {
            return page("3-D Secure", `<p>Authentication required (3-D Secure).</p><form method="post"><input type="hidden" name="action" value="authenticate"><button name="result" value="succeed">Complete authentication</button> <button name="result" value="fail">Fail authentication</button></form>`);
          }
          if (r.outcome === "succeeded" && s.success_url) {
            return new Response(null, { status: 303, headers: { location: s.success_url.replace("{CHECKOUT_SESSION_ID}", s.id) } });
          }
          return page("Checkout", `<p>${escapeHtml(r.outcome)}</p>`);
        } catch (e) {
          if (e instanceof StripeFakeError) return page("Checkout", `<p>${escapeHtml(e.message)}</p><p><a href="">Try again</a></p>`);
          throw e;
        }
      }
      const lines = sessionLineItems(s).data.map((l: any) => `<li>${escapeHtml(String(l.description))} × ${l.quantity}: ${(l.amount_total / 100).toFixed(2)} ${l.currency.toUpperCase()}</li>`).join("");
      return page(
        "Checkout (fake Stripe)",
        `<h1>Checkout (fake Stripe, test mode)</h1><p>Status: ${escapeHtml(s.status)}</p><ul>${lines}</ul>` +
          (s.status === "open"
            ? `<form method="post"><label>Card <input name="card" value="4242424242424242" size="20"></label> <label>E-mail <input name="email" value="${escapeHtml(s.customer_details?.email ?? "")}"></label> <button>Pay</button></form><p>4242424242424242 succeeds, 4000000000000002 is declined, 4000002500003155 asks for 3-D Secure.</p>`
            : ""),
      );
    }
    if ((m = /^\/_fake\/billing_portal\/([^/]+)$/.exec(path))) {
      const s = objects.get(decodeURIComponent(m[1]));
      if (!s) return page("Billing portal", "<p>No such session.</p>");
      return page("Billing portal (fake Stripe)", `<h1>Billing portal (fake Stripe)</h1><p>Customer ${escapeHtml(s.customer)}</p>${s.return_url ? `<p><a href="${escapeHtml(s.return_url)}">Return</a></p>` : ""}`);
    }
    return stripeError(new StripeFakeError(404, "invalid_request_error", `Unrecognized control URL (${method}: ${path})`), "req_fake");
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/" && req.method === "GET") {
        return Response.json({ fake: "stripe", api_version: STRIPE_API_VERSION, webhook_url: endpoint.url ?? null });
      }
      if (url.pathname.startsWith("/_fake/")) return await control(req, url);
      return await api(req, url);
    } catch (e) {
      if (e instanceof StripeFakeError) return stripeError(e, randomId("req", 14));
      log(`stripe fake: internal error on ${req.method} ${url.pathname}: ${e instanceof Error ? e.stack : e}`);
      return stripeError(new StripeFakeError(500, "api_error", "An unknown error occurred in the fake Stripe."), randomId("req", 14));
    }
  }

  seedPrices();
  const server = Deno.serve({ hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} }, async (req) => {
    const res = await handle(req);
    // Stripe's Date is its clock, the one events' `created` comes from: now, not a cached second.
    res.headers.set("date", new Date().toUTCString());
    log(`stripe fake ← ${req.method} ${new URL(req.url).pathname} ${res.status}`);
    return res;
  });
  baseUrl = `http://127.0.0.1:${server.addr.port}`;

  const fake: StripeFake = {
    url: baseUrl,
    settled: async () => {
      while (pending.size) await Promise.all([...pending]).catch(() => {});
    },
    async close() {
      await server.shutdown();
    },
  };
  return fake;
}

/** The fake's account from the functions' settings (the same values the functions use). */
export function stripeFakeAccount(settings: Record<string, string>): Pick<StripeFakeOptions, "secretKey" | "prices" | "webhookSecrets"> {
  const names = [
    "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_MONTHLY", "STRIPE_PRICE_ANNUAL",
    "STRIPE_PRICE_ADDON_SITE_MONTHLY", "STRIPE_PRICE_ADDON_SITE_ANNUAL",
  ];
  const missingNames = names.filter((n) => !settings[n]);
  if (missingNames.length) throw new Error(`stripe fake: the functions' settings lack ${missingNames.join(", ")}`);
  return {
    secretKey: settings.STRIPE_SECRET_KEY,
    webhookSecrets: settings.STRIPE_WEBHOOK_SECRET.split(",").map((s) => s.trim()).filter(Boolean),
    prices: {
      monthly: settings.STRIPE_PRICE_MONTHLY,
      annual: settings.STRIPE_PRICE_ANNUAL,
      addonSiteMonthly: settings.STRIPE_PRICE_ADDON_SITE_MONTHLY,
      addonSiteAnnual: settings.STRIPE_PRICE_ADDON_SITE_ANNUAL,
    },
  };
}

// ---- standalone ---------------------------------------------------------------------------------
if (import.meta.main) {
  const { parseDotenv } = await import("../local-supabase/gateway/config.ts");
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const envFile = arg("--env-file");
  if (!envFile) {
    console.error("usage: deno run -A scripts/fakes/stripe.ts --env-file <functions .env> [--port <port>] [--webhook-url <url>]");
    Deno.exit(2);
  }
  const settings = parseDotenv(await Deno.readTextFile(envFile));
  const fake = startStripeFake({
    ...stripeFakeAccount(settings),
    port: Number(arg("--port") ?? 0),
    webhookUrl: arg("--webhook-url"),
    log: (line) => console.log(line),
  });
  console.log(`stripe fake listening on ${fake.url}`);
  const stop = () => void fake.close().finally(() => Deno.exit(0));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
