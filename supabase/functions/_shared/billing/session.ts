// What billing-checkout and billing-portal share: who may open a billing session for which tenant
// (decided by the database, as the user), where Stripe may send the browser back to (under
// APP_URL only: no open redirect), Stripe's errors as clear JSON, the audit rows, and CORS for
// the web app (APP_URL's origin).
//
// Caller rules, the same as send-sms: a user session is required (nobody → 401; the service key →
// 403: a billing session is opened for a signed-in tenant admin, who is the customer's contact).
// The tenant is read AS the user (asUser, RLS): a tenant the user cannot see at all (another
// tenant's, or none) → 404, as RLS hides it; one they belong to as a plain member → 403; only
// owners and admins (private.admin_tenant_ids(), the billing tables' policies) get a session.
import { z } from "zod";
import { callerOf } from "../auth.ts";
import { asService, asUser, type UserClaims } from "../db.ts";
import { HttpError } from "../http.ts";
import { Stripe } from "../stripe/client.ts";
import { priceKinds } from "../stripe/objects.ts";

export const UUID = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a UUID");

/** Checkout and the portal in French (the product's first language; Stripe also knows fr-CA). */
export const STRIPE_LOCALE = "fr" as const;

/** Subscriptions that must be changed in the portal rather than by a second checkout. */
export const LIVE_SUBSCRIPTION_STATUSES = ["active", "trialing", "past_due", "unpaid", "paused"] as const;

export function badRequest(message: string, field?: string): HttpError {
  return new HttpError(400, "bad_request", message, field ? { details: { field } } : {});
}

/** A zod failure as a 400 naming the field (unknown fields listed), never zod's own dump. */
export function zodError(error: z.ZodError): HttpError {
  const issue = error.issues[0];
  if (issue.code === "unrecognized_keys") return badRequest(`unknown field(s): ${issue.keys.join(", ")}`, issue.keys[0]);
  const field = issue.path.length ? String(issue.path[0]) : undefined;
  if (!field) return badRequest("the body must be a JSON object");
  if (issue.code === "invalid_type") return badRequest(`${field} must be a ${issue.expected}`, field);
  return badRequest(`${field} ${issue.message}`, field);
}

// ---- caller and tenant ---------------------------------------------------------------------------

/** The signed-in user's claims, as asUser wants them; 401 for nobody, 403 for the service. */
export async function billingUser(req: Request): Promise<UserClaims & { sub: string }> {
  const caller = await callerOf(req);
  if (caller.kind === "nobody") throw new HttpError(401, "unauthorized", "a user session is required");
  if (caller.kind === "service") {
    throw new HttpError(403, "forbidden", "billing sessions are opened for a signed-in owner or admin of the tenant, not the service");
  }
  return { ...caller.claims, sub: caller.userId, role: "authenticated" };
}

export interface BillingTenant {
  id: string;
  name: string;
  /** customers.stripe_customer_id, or null before the first checkout. */
  stripeCustomerId: string | null;
  /** The tenant's live subscription (LIVE_SUBSCRIPTION_STATUSES), if any. */
  subscription: { id: string; status: string } | null;
}

interface TenantRow {
  id: string;
  name: string;
  is_admin: boolean;
  stripe_customer_id: string | null;
  subscription: { id: string; status: string } | null;
}

/**
 * The tenant the user opens a billing session for, read as the user (RLS decides) in one
 * statement: `tenantId`, or, without it, the one tenant they administer.
 */
export async function tenantForBilling(claims: UserClaims, tenantId: string | undefined): Promise<BillingTenant> {
  // Without RLS, the customers/subscriptions sub-selects would show any tenant's billing: they
  // run as the user, and only an owner/admin of the tenant passes their policies.
  const rows = await asUser(claims, (sql) =>
    sql<TenantRow[]>`
      select t.id::text, t.name,
             t.id in (select private.admin_tenant_ids()) as is_admin,
             (select c.stripe_customer_id from public.customers as c where c.tenant_id = t.id) as stripe_customer_id,
             (select json_build_object('id', s.stripe_subscription_id, 'status', s.status)
                from public.subscriptions as s
               where s.tenant_id = t.id and s.status = any(${LIVE_SUBSCRIPTION_STATUSES as unknown as string[]})
               order by s.stripe_updated_at desc limit 1) as subscription
        from public.tenants as t
       where ${tenantId ?? null}::uuid is null or t.id = ${tenantId ?? null}::uuid
       order by t.id`
  );
  let row: TenantRow | undefined;
  if (tenantId !== undefined) {
    row = rows[0];
    if (!row) throw new HttpError(404, "not_found", "tenant not found");
  } else {
    const admin = rows.filter((r) => r.is_admin);
    if (admin.length > 1) {
      throw badRequest("tenant_id is required: you are an owner or admin of several tenants", "tenant_id");
    }
    row = admin[0] ?? rows[0];
    if (!row) throw new HttpError(404, "not_found", "you belong to no tenant");
  }
  if (!row.is_admin) throw new HttpError(403, "forbidden", "only an owner or admin of the tenant may manage its billing");
  return { id: row.id, name: row.name, stripeCustomerId: row.stripe_customer_id, subscription: row.subscription };
}

// ---- return URLs ---------------------------------------------------------------------------------

const CHECKOUT_SESSION_ID = "{CHECKOUT_SESSION_ID}";

/**
 * `raw` if it is an absolute URL under APP_URL (same scheme, host and port; APP_URL's path as a
 * prefix; no credentials), normalised as the WHATWG parser reads it (what is checked is what is
 * sent); else a 400. Stripe's `{CHECKOUT_SESSION_ID}` placeholder survives the normalisation.
 */
export function urlUnderApp(raw: string, appUrl: string, field: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest(`${field} must be an absolute URL under APP_URL (${appUrl})`, field);
  }
  const base = new URL(appUrl);
  const prefix = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
  const under = url.origin === base.origin && (url.pathname === base.pathname || url.pathname.startsWith(prefix));
  if (!under || url.username !== "" || url.password !== "") {
    throw badRequest(`${field} must be under APP_URL (${appUrl})`, field);
  }
  return url.href.replaceAll("%7BCHECKOUT_SESSION_ID%7D", CHECKOUT_SESSION_ID);
}

/** A URL field of a request body: a string of at most 2048 characters (checked by urlUnderApp). */
export const urlField = z.string().min(1, "must not be empty").max(2048, "must be at most 2048 characters");

// ---- CORS ----------------------------------------------------------------------------------------

const CORS_HEADERS = {
  "access-control-allow-methods": "POST, OPTIONS",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
  "access-control-max-age": "600",
  vary: "Origin",
};

/** The web app (APP_URL's origin) may call these functions from the browser; nobody else. */
export function corsHeaders(req: Request, appUrl: string): Record<string, string> {
  const origin = req.headers.get("origin");
  return origin !== null && origin === new URL(appUrl).origin
    ? { ...CORS_HEADERS, "access-control-allow-origin": origin }
    : { vary: "Origin" };
}

/** Adds headers to a response (a copy when its headers are immutable). */
export function withHeaders(res: Response, headers: Record<string, string>): Response {
  const out = new Response(res.body, res);
  for (const [k, v] of Object.entries(headers)) out.headers.set(k, v);
  return out;
}

// ---- Stripe errors ---------------------------------------------------------------------------------

/** What Stripe said, safe to log and return: type, code, param, request id, message (never a key). */
export function stripeErrorSummary(error: InstanceType<typeof Stripe.errors.StripeError>): Record<string, unknown> {
  const authLike = error.type === "StripeAuthenticationError" || error.type === "StripePermissionError";
  return {
    type: error.type,
    code: error.code ?? null,
    param: error.param ?? null,
    status: error.statusCode ?? null,
    request_id: error.requestId ?? null,
    // Stripe's authentication messages quote part of the key: not shown.
    message: authLike ? "Stripe refused our API key" : error.message,
  };
}

export function isStripeError(error: unknown): error is InstanceType<typeof Stripe.errors.StripeError> {
  return error instanceof Stripe.errors.StripeError;
}

/**
 * A Stripe failure as the client's answer: 409 when the tenant's stored customer no longer exists
 * in Stripe, 502 otherwise (Stripe unreachable, rate limiting, or a request Stripe refused: our
 * settings — a price id, the key — not the caller's input, which was validated before).
 */
export function stripeHttpError(error: InstanceType<typeof Stripe.errors.StripeError>, customerId: string | null): HttpError {
  const stripe = stripeErrorSummary(error);
  if (error.code === "resource_missing" && error.param === "customer" && customerId) {
    return new HttpError(
      409,
      "customer_missing",
      `the tenant's Stripe customer ${customerId} no longer exists in Stripe; an operator must relink it (billing-sync) before a new session`,
      { details: { stripe } },
    );
  }
  const transient = error.type === "StripeConnectionError" || error.type === "StripeAPIError" ||
    error.type === "StripeRateLimitError";
  return new HttpError(
    502,
    transient ? "provider_unavailable" : "provider_rejected",
    transient ? "Stripe could not be reached or is rate limiting; retry in a moment" : `Stripe refused the request: ${stripe.message}`,
    { details: { stripe }, headers: transient ? { "retry-after": "5" } : {} },
  );
}

// ---- database writes (service connection, one call each) -------------------------------------------

/** private.link_stripe_customer: the tenant's customer after linking `stripeCustomerId`. */
export async function linkCustomer(
  p: { tenant_id: string; stripe_customer_id: string; livemode: boolean; actor: string },
): Promise<string> {
  // prices: so that events parked before the link (replayed by it) are applied as the webhook would.
  const args = { ...p, prices: priceKinds() };
  const [row] = await asService((sql) => sql`select private.link_stripe_customer(${sql.json(args)}::jsonb) as r`);
  return (row.r as { stripe_customer_id: string }).stripe_customer_id;
}

/** private.record_billing_session: the audit row of a session opened or refused. */
export async function recordBillingSession(p: {
  tenant_id: string;
  actor: string;
  action: "checkout_session_created" | "checkout_session_failed" | "portal_session_created" | "portal_session_failed";
  target?: string | null;
  details: Record<string, unknown>;
}): Promise<void> {
  await asService((sql) => sql`select private.record_billing_session(${sql.json(p as never)}::jsonb)`);
}
