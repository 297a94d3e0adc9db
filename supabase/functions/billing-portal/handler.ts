// billing-portal: a Stripe customer portal session for a tenant admin (invoices, payment method,
// plan and number of additional sites, cancellation, as the portal's configuration allows); the
// answer holds the portal URL. verify_jwt is on (a user session); the caller is identified again
// here and the tenant read as that user (RLS), see _shared/billing/session.ts: nobody 401, the
// service 403, a plain member 403, another tenant 404.
//
// Input (JSON, ≤ 8 KiB, unknown fields refused; an empty body is {}): { tenant_id?, return_url? }.
// return_url must be under APP_URL (no open redirect); by default ${APP_URL}/billing.
// A tenant without a Stripe customer yet (never went through billing-checkout) → 409 no_customer.
//
// Answer 200: { url, session_id, tenant_id, customer }. Audited (area billing):
// portal_session_created (target the portal session id, never its URL: a bearer link to the
// tenant's billing), or portal_session_failed with details.error. Stripe's failures: 502, or
// 409 customer_missing when the stored customer no longer exists in Stripe.
import { z } from "zod";
import { settings } from "../_shared/env.ts";
import { handle, HttpError, parseJson, readText, requireContentType, requireMethod } from "../_shared/http.ts";
import {
  billingUser,
  corsHeaders,
  isStripeError,
  recordBillingSession,
  STRIPE_LOCALE,
  stripeErrorSummary,
  stripeHttpError,
  tenantForBilling,
  urlField,
  urlUnderApp,
  UUID,
  withHeaders,
  zodError,
} from "../_shared/billing/session.ts";
import { stripeClient } from "../_shared/stripe/client.ts";

const REQUEST_LIMIT = 8 * 1024;

const schema = z.strictObject({
  tenant_id: UUID.optional(),
  return_url: urlField.optional(),
});

export interface PortalRequest {
  tenant_id?: string;
  return_url: string;
}

/** The validated request (return_url checked against APP_URL, default filled in), or a 400. */
export function parsePortalRequest(input: unknown, appUrl: string): PortalRequest {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw zodError(parsed.error);
  return {
    tenant_id: parsed.data.tenant_id?.toLowerCase(),
    return_url: parsed.data.return_url === undefined
      ? `${appUrl}/billing`
      : urlUnderApp(parsed.data.return_url, appUrl, "return_url"),
  };
}

/** The JSON body, or {} for an empty one (the portal needs no input). */
async function readOptionalJson(req: Request): Promise<unknown> {
  if (req.headers.get("content-length") === "0" || req.body === null) return {};
  requireContentType(req, "application/json");
  const text = await readText(req, { limit: REQUEST_LIMIT });
  return text.trim() === "" ? {} : parseJson(text);
}

export const handler = handle(async (req) => {
  const { APP_URL } = settings("APP_URL");
  const cors = corsHeaders(req, APP_URL);
  if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: cors });
  return withHeaders(await portal(req, APP_URL), cors);
});

async function portal(req: Request, appUrl: string): Promise<Response> {
  requireMethod(req, "POST");
  const claims = await billingUser(req);
  const request = parsePortalRequest(await readOptionalJson(req), appUrl);
  const stripe = stripeClient();
  const tenant = await tenantForBilling(claims, request.tenant_id);
  const customer = tenant.stripeCustomerId;
  if (customer === null) {
    throw new HttpError(
      409,
      "no_customer",
      "this tenant has no Stripe customer yet: subscribe first (billing-checkout), then manage the subscription in the portal",
    );
  }
  const audit = { tenant_id: tenant.id, actor: claims.sub };
  try {
    const session = await stripe.billingPortal.sessions.create({
      customer,
      return_url: request.return_url,
      locale: STRIPE_LOCALE,
    });
    await recordBillingSession({
      ...audit,
      action: "portal_session_created",
      target: session.id,
      details: { stripe_customer_id: customer, livemode: session.livemode },
    });
    return Response.json({ url: session.url, session_id: session.id, tenant_id: tenant.id, customer });
  } catch (error) {
    if (!isStripeError(error)) throw error;
    const stripeError = stripeErrorSummary(error);
    await recordBillingSession({
      ...audit,
      action: "portal_session_failed",
      target: customer,
      details: {
        stripe_customer_id: customer,
        stripe: stripeError,
        error: `${stripeError.type}${stripeError.code ? ` ${stripeError.code}` : ""}: ${stripeError.message}`,
      },
    });
    throw stripeHttpError(error, customer);
  }
}
