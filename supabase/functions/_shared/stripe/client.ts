// The Stripe client of every function: ONE place that builds it, from settings().
//
//   const stripe = stripeClient();          // STRIPE_SECRET_KEY, STRIPE_API_BASE
//   const sub = await stripe.subscriptions.retrieve("sub_…");
//
// - API version pinned to STRIPE_API_VERSION (what stripe@23.1.0 pins and what our code reads);
//   the Stripe webhook endpoint must be created at the same version (README, "stripe-webhook").
// - STRIPE_API_BASE (local fake, loopback only, validated by env.ts) → host, port and protocol;
//   unset in production: api.stripe.com over https.
// - Stripe.createFetchHttpClient(): web fetch only (the hosted edge runtime has no node:http).
// - maxNetworkRetries 2: the SDK retries connection errors, 409 and 5xx with the same
//   idempotency key (every POST gets one), after a short exponential backoff; a 429 is NOT retried
//   by the SDK (Stripe sends no Stripe-Should-Retry on it): callers decide (billing-sync backs off).
// - timeout 20 s per attempt: a webhook's Stripe fetch must fit well inside the 150 s function limit.
import Stripe from "stripe";
import { settings } from "../env.ts";

/** The API version our code reads and writes; the webhook endpoint must be pinned to it too. */
export const STRIPE_API_VERSION = "2026-10-28.endive" as const;

export const STRIPE_CLIENT_DEFAULTS = {
  maxNetworkRetries: 2,
  timeout: 20_000,
} as const;

/** Client options for a key and an optional base URL (a local fake); exported for tests and scripts. */
export function stripeClientConfig(
  apiBase: string | undefined,
  overrides: Partial<Pick<Stripe.StripeConfig, "maxNetworkRetries" | "timeout">> = {},
): Stripe.StripeConfig {
  const config: Stripe.StripeConfig = {
    apiVersion: STRIPE_API_VERSION,
    httpClient: Stripe.createFetchHttpClient(),
    maxNetworkRetries: overrides.maxNetworkRetries ?? STRIPE_CLIENT_DEFAULTS.maxNetworkRetries,
    timeout: overrides.timeout ?? STRIPE_CLIENT_DEFAULTS.timeout,
    telemetry: false,
    appInfo: { name: "c-secur360-ops" },
  };
  if (apiBase) {
    const url = new URL(apiBase);
    config.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    config.protocol = url.protocol === "http:" ? "http" : "https";
    config.port = url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  }
  return config;
}

/** A client for an explicit key and base (tests, scripts); functions use stripeClient(). */
export function createStripeClient(
  secretKey: string,
  apiBase?: string,
  overrides: Partial<Pick<Stripe.StripeConfig, "maxNetworkRetries" | "timeout">> = {},
): Stripe {
  return new Stripe(secretKey, stripeClientConfig(apiBase, overrides));
}

let cached: { key: string; base: string | undefined; client: Stripe } | undefined;

/** The worker's client from settings (STRIPE_SECRET_KEY, STRIPE_API_BASE); SettingsError → 503. */
export function stripeClient(): Stripe {
  const { STRIPE_SECRET_KEY, STRIPE_API_BASE } = settings("STRIPE_SECRET_KEY", "STRIPE_API_BASE");
  if (!cached || cached.key !== STRIPE_SECRET_KEY || cached.base !== STRIPE_API_BASE) {
    cached = { key: STRIPE_SECRET_KEY, base: STRIPE_API_BASE, client: createStripeClient(STRIPE_SECRET_KEY, STRIPE_API_BASE) };
  }
  return cached.client;
}

export { Stripe };
