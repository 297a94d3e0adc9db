// stripe-webhook: Stripe's events (verify_jwt = false; the Stripe-Signature instead).
//
// POST, application/json, ≤ 1 MiB → verified with the SDK against each STRIPE_WEBHOOK_SECRET
// (400 and nothing written when no secret matches, the timestamp is over 300 s old, the header is
// missing, or the signed body is not a Stripe event) → ONE call to private.apply_stripe_event, which
// records the event in billing_events and applies it to our rows in the same transaction (a
// duplicate event id changes nothing). When neither Stripe's `created` nor the object's own state
// can order the event against what is stored (same second, same state, other content; or a partial
// invoice payment), the SQL asks for the object: it is fetched from Stripe and the SQL is called
// once more with that copy. Answers:
//   200 {received, event_id, outcome: applied | duplicate | ignored | parked, result, replayed?}
//   500 {error: "processing_failed"} when applying failed (recorded in billing_events.error and in
//       system_audit_logs with details.error): Stripe retries it.
import { settings } from "../_shared/env.ts";
import { handle, HttpError, jsonError, readText, requireContentType, requireMethod } from "../_shared/http.ts";
import { asService, jsonLiteral, jsonTextLiteral } from "../_shared/db.ts";
import { stripeClient } from "../_shared/stripe/client.ts";
import { fetchStripeObject, priceKinds, type StripeObjectRef, stripeErrorText } from "../_shared/stripe/objects.ts";
import { verifyStripeWebhook } from "../_shared/stripe/webhook.ts";

/** What private.apply_stripe_event answers. */
interface ApplyResult {
  event_id: string;
  outcome: "applied" | "duplicate" | "ignored" | "parked" | "needs_fetch" | "failed";
  result?: string;
  fetch?: StripeObjectRef;
  also_fetch?: StripeObjectRef[];
  /** Parked events of the customer applied in the same transaction. */
  replayed?: number;
  error?: string;
}

// One round trip, as db.ts's callJson does for a function of one argument: a statement with
// parameters costs two with the pool's `prepare: false` (postgres.js first asks for their types),
// so the event and the options go as literals in a statement without parameters. The event is the
// raw body Stripe signed (jsonTextLiteral): verified and parsed once here, parsed once more by the
// server into jsonb, never serialised again (the body is the event's JSON text, same value).
async function apply(eventText: string, optionsLiteral: string): Promise<ApplyResult> {
  const [row] = await asService((sql) =>
    sql.unsafe<{ r: ApplyResult }[]>(`select private.apply_stripe_event(${jsonTextLiteral(eventText)}::jsonb, ${optionsLiteral}::jsonb) as r`)
  ).catch((error) => {
    // The SQL refuses what is not an event (the envelope was checked here first, so rarely): a 400.
    if ((error as { code?: string })?.code === "22023") throw new HttpError(400, "invalid_event", "the body is not a Stripe event");
    throw error;
  });
  return row.r;
}

export const handler = handle(async (req, { requestId }) => {
  requireMethod(req, "POST");
  requireContentType(req, "application/json");
  const { STRIPE_WEBHOOK_SECRET } = settings("STRIPE_WEBHOOK_SECRET");
  const prices = priceKinds();
  const raw = await readText(req);
  const event = await verifyStripeWebhook(raw, req.headers.get("stripe-signature"), STRIPE_WEBHOOK_SECRET);

  let r = await apply(raw, jsonLiteral({ prices }));
  if (r.outcome === "needs_fetch" && r.fetch) {
    // Same second, same state, other content (or a partial payment): Stripe's current copy decides
    // (seen at its response's Date).
    let options: Record<string, unknown>;
    try {
      options = { prices, fetched: await fetchStripeObject(stripeClient(), r.fetch, new Date(event.created * 1000)) };
    } catch (error) {
      options = { prices, fetch_error: stripeErrorText(error) };
    }
    r = await apply(raw, jsonLiteral(options));
  }

  // Objects whose latest copy would complete the picture (best effort: billing-sync repairs the rest).
  const seen = new Set<string>();
  for (const ref of r.also_fetch ?? []) {
    const key = `${ref.type}:${ref.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      const fetched = await fetchStripeObject(stripeClient(), ref, new Date(event.created * 1000));
      if ("missing" in fetched) continue;
      await asService((sql) =>
        sql`select private.apply_stripe_object(${ref.type}, ${sql.json(fetched.object as never)}, ${fetched.seen_at}::timestamptz, ${
          sql.json(prices)
        })`
      );
    } catch (error) {
      console.error(`${requestId} stripe-webhook: follow-up fetch of ${key} for ${event.id} failed: ${stripeErrorText(error)}`);
    }
  }

  if (r.outcome === "failed" || r.outcome === "needs_fetch") {
    console.error(`${requestId} stripe-webhook: ${event.id} (${event.type}) failed: ${r.error ?? "no copy from Stripe"}`);
    return jsonError(500, "processing_failed", "the event could not be applied; it is recorded and Stripe will retry it", requestId, {
      details: { event_id: event.id },
    });
  }
  const body: Record<string, unknown> = { received: true, event_id: event.id, outcome: r.outcome, result: r.result ?? null };
  if (r.replayed) body.replayed = r.replayed;
  return Response.json(body, {
    headers: { "x-request-id": requestId },
  });
});
