// Verifying a Stripe webhook (stripe-webhook): the SDK's own check, against every configured secret.
//
//   const event = await verifyStripeWebhook(rawBody, req.headers.get("stripe-signature"), STRIPE_WEBHOOK_SECRET);
//
// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`: HMAC-SHA256 of `${t}.${raw body}` with the endpoint's
// secret; any v1 may match; the timestamp must be at most 300 s old. STRIPE_WEBHOOK_SECRET is a
// comma-separated list (env.ts gives it as an array) so the endpoint's secret can be rolled without
// downtime: while Stripe signs with both the old and the new secret, either verifies.
// constructEventAsync with a CryptoProvider (the SDK's extension point for the HMAC primitive;
// the synchronous constructEvent with the default provider throws under Deno): the SDK still
// parses the header, checks every v1 against the HMAC, the tolerance, and parses the event.
// The provider is HmacSha256Provider: HMAC-SHA256 from @noble/hashes (pure JS, synchronous), where
// Stripe.createSubtleCryptoProvider() imports the secret as a WebCrypto key and signs on a blocking
// thread at every call: ~87 µs for a 6.8 KB event (what a subscription or invoice event weighs)
// against ~41 µs here, measured in Deno on this machine; same hex digest (tests/functions/stripe-webhook/
// signature_provider.test.ts compares both on random secrets and bodies).
// Every failure is an HttpError 400 with a fixed message (never the SDK's, which quotes the header).
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { z } from "zod";
import { HttpError } from "../http.ts";
import { Stripe } from "./client.ts";

/** Stripe's default tolerance; 0 would skip the check altogether, so it is never passed. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** The SDK's CryptoProvider contract (hex HMAC-SHA256, SHA-256 bytes), synchronous underneath. */
export class HmacSha256Provider extends Stripe.CryptoProvider {
  override computeHMACSignature(payload: string, secret: string): string {
    const mac = hmac(sha256, encoder.encode(secret), encoder.encode(payload));
    let hex = "";
    for (const byte of mac) hex += HEX[byte];
    return hex;
  }
  override computeHMACSignatureAsync(payload: string, secret: string): Promise<string> {
    return Promise.resolve(this.computeHMACSignature(payload, secret));
  }
  override computeSHA256Async(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(sha256(data));
  }
}

const cryptoProvider = new HmacSha256Provider();

/** The envelope every Stripe event has (the object inside is read by the SQL, in either shape). */
export const StripeEventEnvelope = z.object({
  id: z.string().regex(/^evt_[0-9A-Za-z]+$/),
  object: z.literal("event"),
  type: z.string().max(100).regex(/^[a-z0-9_]+(\.[a-z0-9_]+)+$/),
  created: z.number().int().positive(),
  livemode: z.boolean(),
  api_version: z.string().max(64).nullable().optional(),
  data: z.object({
    object: z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v)),
  }),
});

export type StripeEventJson = z.infer<typeof StripeEventEnvelope> & Record<string, unknown>;

/**
 * The verified event, as JSON (every field kept). 400 `missing_signature`, `invalid_signature`
 * (no secret matches, or the timestamp is outside the tolerance), `invalid_json`, `invalid_event`.
 */
export async function verifyStripeWebhook(
  rawBody: string,
  signatureHeader: string | null,
  secrets: readonly string[],
  opts: { now?: number } = {},
): Promise<StripeEventJson> {
  if (!signatureHeader || !signatureHeader.trim()) {
    throw new HttpError(400, "missing_signature", "the Stripe-Signature header is missing");
  }
  let parsed: unknown;
  let expired = false;
  let verified = false;
  for (const secret of secrets) {
    try {
      // The SDK's check (HMAC, any v1, tolerance), then its JSON.parse of the same raw text.
      parsed = await Stripe.webhooks.constructEventAsync(
        rawBody,
        signatureHeader,
        secret,
        SIGNATURE_TOLERANCE_SECONDS,
        cryptoProvider,
        opts.now,
      );
      verified = true;
      break;
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
        if (/tolerance/i.test(error.message)) expired = true;
        continue;
      }
      // Signed by a secret of ours, but not an event the SDK can read: malformed JSON (SyntaxError),
      // or a thin (v2) event notification. A 4xx, never a 5xx.
      if (error instanceof SyntaxError) throw new HttpError(400, "invalid_json", "the body is not valid JSON");
      throw new HttpError(400, "invalid_event", "the body is not a Stripe snapshot event");
    }
  }
  if (!verified) {
    throw new HttpError(
      400,
      "invalid_signature",
      expired ? "the signature's timestamp is too old (over 300 s)" : "the signature matches no configured webhook secret",
    );
  }
  const envelope = StripeEventEnvelope.safeParse(parsed);
  if (!envelope.success) {
    throw new HttpError(400, "invalid_event", "the body is not a Stripe event (id evt_…, type, created, livemode, data.object)");
  }
  return parsed as StripeEventJson;
}
