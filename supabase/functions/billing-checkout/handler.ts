// billing-checkout: a Stripe Checkout Session (subscription mode) for a tenant admin: the monthly
// or annual plan plus N "Site additionnel" add-ons, with automatic tax; the answer holds the
// Checkout URL the web app sends the browser to. verify_jwt is on (a user session); the caller is
// identified again here (_shared/auth.ts) and the tenant read as that user (RLS), see
// _shared/billing/session.ts: nobody 401, the service 403, a plain member 403, another tenant 404.
//
// Input (JSON, ≤ 8 KiB, unknown fields refused): { tenant_id?, plan: "monthly" | "annual",
// additional_sites: 0..100 (default 0), success_url?, cancel_url? }. tenant_id may be left out by
// someone who administers exactly one tenant. The URLs must be under APP_URL (no open redirect);
// by default ${APP_URL}/billing?checkout=success&session_id={CHECKOUT_SESSION_ID} and
// ${APP_URL}/billing?checkout=canceled.
//
// What Stripe gets (Stripe's docs: "Collect taxes" for Checkout, "Collect customer tax IDs"):
//   * mode subscription; line_items: the plan price (STRIPE_PRICE_MONTHLY | _ANNUAL) × 1, and, when
//     N > 0, the add-on price of the SAME interval (STRIPE_PRICE_ADDON_SITE_MONTHLY | _ANNUAL) × N;
//   * customer: the tenant's one Stripe customer (customers row), created first when it has none:
//     metadata.tenant_id, name = the tenant's, idempotency key derived from the tenant (a retry, or
//     two admins clicking at once, get the same customer), linked by private.link_stripe_customer;
//   * automatic_tax.enabled, billing_address_collection "required" (Quebec's GST/QST depend on the
//     province: a full address), customer_update { address: "auto", name: "auto" } (an existing
//     customer's address is not updated from Checkout unless asked, and Stripe Tax needs it; the
//     name because tax_id_collection saves the business name), tax_id_collection (GST/QST numbers
//     of business customers on the invoices);
//   * client_reference_id = tenant id, metadata.tenant_id (session and subscription_data), locale fr.
// A tenant with a live subscription (active, trialing, past_due, unpaid, paused) gets 409: plan
// and add-on changes go through billing-portal, not a second subscription.
//
// Answer 200: { url, session_id, tenant_id, customer, plan, additional_sites, expires_at }.
// Audited (area billing): checkout_session_created (target the session id; plan, add-ons, customer,
// never the URL), or checkout_session_failed with details.error; customer_linked for a new customer.
// Stripe's failures: 502 (unreachable, rate limited, or refused: our settings), 409 customer_missing.
import { z } from "zod";
import { settings } from "../_shared/env.ts";
import { handle, HttpError, readJson, requireMethod } from "../_shared/http.ts";
import {
  corsHeaders,
  isStripeError,
  linkCustomer,
  recordBillingSession,
  STRIPE_LOCALE,
  stripeErrorSummary,
  stripeHttpError,
  tenantForBilling,
  billingUser,
  urlField,
  urlUnderApp,
  UUID,
  withHeaders,
  zodError,
} from "../_shared/billing/session.ts";
import { type Stripe, stripeClient } from "../_shared/stripe/client.ts";

export const MAX_ADDITIONAL_SITES = 100;
const REQUEST_LIMIT = 8 * 1024;

const schema = z.strictObject({
  tenant_id: UUID.optional(),
  plan: z.enum(["monthly", "annual"], { error: 'must be "monthly" or "annual"' }),
  additional_sites: z.number().int("must be a whole number").min(0, "must be 0 or more")
    .max(MAX_ADDITIONAL_SITES, `must be at most ${MAX_ADDITIONAL_SITES}`).default(0),
  success_url: urlField.optional(),
  cancel_url: urlField.optional(),
});

export interface CheckoutRequest {
  tenant_id?: string;
  plan: "monthly" | "annual";
  additional_sites: number;
  success_url: string;
  cancel_url: string;
}

/** The validated request (URLs checked against APP_URL, defaults filled in), or a 400. */
export function parseCheckoutRequest(input: unknown, appUrl: string): CheckoutRequest {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw zodError(parsed.error);
  const p = parsed.data;
  return {
    tenant_id: p.tenant_id?.toLowerCase(),
    plan: p.plan,
    additional_sites: p.additional_sites,
    success_url: p.success_url === undefined
      ? `${appUrl}/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}`
      : urlUnderApp(p.success_url, appUrl, "success_url"),
    cancel_url: p.cancel_url === undefined ? `${appUrl}/billing?checkout=canceled` : urlUnderApp(p.cancel_url, appUrl, "cancel_url"),
  };
}

/** The prices of a plan: the plan and the add-on of the same interval (never mixed). */
export function pricesFor(plan: CheckoutRequest["plan"]): { plan: string; addon: string; interval: "month" | "year" } {
  const s = settings("STRIPE_PRICE_MONTHLY", "STRIPE_PRICE_ANNUAL", "STRIPE_PRICE_ADDON_SITE_MONTHLY", "STRIPE_PRICE_ADDON_SITE_ANNUAL");
  return plan === "monthly"
    ? { plan: s.STRIPE_PRICE_MONTHLY, addon: s.STRIPE_PRICE_ADDON_SITE_MONTHLY, interval: "month" }
    : { plan: s.STRIPE_PRICE_ANNUAL, addon: s.STRIPE_PRICE_ADDON_SITE_ANNUAL, interval: "year" };
}

/** Idempotency key of the customer creation: the tenant and what is sent (a renamed tenant sends other params). */
async function customerIdempotencyKey(tenantId: string, params: Stripe.CustomerCreateParams): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(params))));
  const hex = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return `c-secur360:customer:${tenantId}:${hex}`;
}

export const handler = handle(async (req) => {
  const { APP_URL } = settings("APP_URL");
  const cors = corsHeaders(req, APP_URL);
  if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: cors });
  return withHeaders(await checkout(req, APP_URL), cors);
});

async function checkout(req: Request, appUrl: string): Promise<Response> {
  requireMethod(req, "POST");
  const claims = await billingUser(req);
  const request = parseCheckoutRequest(await readJson(req, { limit: REQUEST_LIMIT }), appUrl);
  const prices = pricesFor(request.plan);
  const stripe = stripeClient();
  const tenant = await tenantForBilling(claims, request.tenant_id);
  if (tenant.subscription) {
    throw new HttpError(
      409,
      "already_subscribed",
      `this tenant already has a subscription (${tenant.subscription.status}): change the plan or the number of sites in the billing portal (billing-portal)`,
      { details: { subscription_status: tenant.subscription.status } },
    );
  }

  const audit = { tenant_id: tenant.id, actor: claims.sub };
  let customer = tenant.stripeCustomerId;
  let customerCreated = false;
  try {
    if (customer === null) {
      const params: Stripe.CustomerCreateParams = {
        name: tenant.name,
        metadata: { tenant_id: tenant.id },
        preferred_locales: [STRIPE_LOCALE],
      };
      const created = await stripe.customers.create(params, { idempotencyKey: await customerIdempotencyKey(tenant.id, params) });
      customer = await linkCustomer({ ...audit, stripe_customer_id: created.id, livemode: created.livemode });
      customerCreated = customer === created.id;
    }
    const lineItems: Stripe.Checkout.SessionCreateParams.LineItem[] = [{ price: prices.plan, quantity: 1 }];
    if (request.additional_sites > 0) lineItems.push({ price: prices.addon, quantity: request.additional_sites });
    const metadata = { tenant_id: tenant.id };
    const session = await stripe.checkout.sessions.create({
      mode: "subscription",
      customer,
      client_reference_id: tenant.id,
      metadata: { ...metadata, plan: request.plan, additional_sites: String(request.additional_sites) },
      subscription_data: { metadata },
      line_items: lineItems,
      automatic_tax: { enabled: true },
      billing_address_collection: "required",
      customer_update: { address: "auto", name: "auto" },
      tax_id_collection: { enabled: true },
      locale: STRIPE_LOCALE,
      success_url: request.success_url,
      cancel_url: request.cancel_url,
    });
    await recordBillingSession({
      ...audit,
      action: "checkout_session_created",
      target: session.id,
      details: {
        plan: request.plan,
        interval: prices.interval,
        additional_sites: request.additional_sites,
        prices: lineItems.map((i) => i.price),
        stripe_customer_id: customer,
        customer_created: customerCreated,
        livemode: session.livemode,
        expires_at: session.expires_at,
      },
    });
    return Response.json({
      url: session.url,
      session_id: session.id,
      tenant_id: tenant.id,
      customer,
      plan: request.plan,
      additional_sites: request.additional_sites,
      expires_at: session.expires_at,
    });
  } catch (error) {
    if (!isStripeError(error)) throw error;
    const stripeError = stripeErrorSummary(error);
    await recordBillingSession({
      ...audit,
      action: "checkout_session_failed",
      target: customer,
      details: {
        plan: request.plan,
        additional_sites: request.additional_sites,
        stripe_customer_id: customer,
        stripe: stripeError,
        error: `${stripeError.type}${stripeError.code ? ` ${stripeError.code}` : ""}: ${stripeError.message}`,
      },
    });
    throw stripeHttpError(error, tenant.stripeCustomerId);
  }
}
