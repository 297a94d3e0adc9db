// Stripe objects as our SQL reads them (stripe-webhook's follow-up fetches; billing-sync too).
//
// - priceKinds(): {"<price id>": "plan" | "addon_site"} from STRIPE_PRICE_* (the SQL's p_prices).
// - fetchStripeObject(stripe, {type, id}, notBefore): the object as Stripe has it now, as plain JSON,
//   with `seen_at` = the Date of Stripe's response (Stripe's clock, like events' `created`: the SQL
//   orders copies by it), never before `notBefore` (the `created` of the event that made us fetch:
//   what we fetch is at least that new, whatever a lagging Date says), or {missing: true} when
//   Stripe no longer has it (404).
// - stripeErrorText(e): an error as one line for the ledger and the audit trail, with any API key
//   fragment Stripe quotes ("Invalid API Key provided: sk_test_…1234") removed.
import { settings } from "../env.ts";
import { Stripe } from "./client.ts";

export type StripeObjectType = "customer" | "subscription" | "invoice";
export interface StripeObjectRef {
  type: StripeObjectType;
  id: string;
}
export type FetchedObject = { object: Record<string, unknown>; seen_at: string } | { missing: true };

export function priceKinds(): Record<string, "plan" | "addon_site"> {
  const s = settings("STRIPE_PRICE_MONTHLY", "STRIPE_PRICE_ANNUAL", "STRIPE_PRICE_ADDON_SITE_MONTHLY", "STRIPE_PRICE_ADDON_SITE_ANNUAL");
  return {
    [s.STRIPE_PRICE_MONTHLY]: "plan",
    [s.STRIPE_PRICE_ANNUAL]: "plan",
    [s.STRIPE_PRICE_ADDON_SITE_MONTHLY]: "addon_site",
    [s.STRIPE_PRICE_ADDON_SITE_ANNUAL]: "addon_site",
  };
}

/** The Date header of an SDK result's response (Headers with the fetch client, a record otherwise). */
export function responseDate(result: unknown): string | undefined {
  const headers = (result as { lastResponse?: { headers?: unknown } })?.lastResponse?.headers;
  const value = headers instanceof Headers
    ? headers.get("date")
    : (headers as Record<string, string> | undefined)?.date ?? (headers as Record<string, string> | undefined)?.Date;
  const ms = value ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

export async function fetchStripeObject(stripe: Stripe, ref: StripeObjectRef, notBefore: Date): Promise<FetchedObject> {
  let result: { lastResponse?: unknown };
  try {
    if (ref.type === "subscription") result = await stripe.subscriptions.retrieve(ref.id);
    else if (ref.type === "invoice") result = await stripe.invoices.retrieve(ref.id);
    else result = await stripe.customers.retrieve(ref.id);
  } catch (error) {
    if (error instanceof Stripe.errors.StripeError && error.statusCode === 404 && error.code === "resource_missing") return { missing: true };
    throw error;
  }
  const date = responseDate(result);
  const seenAt = date && Date.parse(date) > notBefore.getTime() ? date : notBefore.toISOString();
  // Plain JSON: the SDK's lastResponse (a non-enumerable Response) stays behind.
  return { object: JSON.parse(JSON.stringify(result)), seen_at: seenAt };
}

export function stripeErrorText(error: unknown): string {
  const text = error instanceof Stripe.errors.StripeError
    ? `${error.type}${error.statusCode ? ` ${error.statusCode}` : ""}${error.code ? ` ${error.code}` : ""}: ${error.message}`
    : error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
  return text.replace(/\b(sk|rk|pk)_(test|live)_[A-Za-z0-9*]+/g, "[api key]").replace(/whsec_[A-Za-z0-9+/=_-]+/g, "[secret]").slice(0, 500);
}
