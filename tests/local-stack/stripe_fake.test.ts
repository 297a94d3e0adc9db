// The fake Stripe (scripts/fakes/stripe.ts) through the REAL stripe SDK: Stripe's objects and error
// bodies, pagination, idempotency keys, 429s on demand, call counts; signed webhooks (verified here by
// the SDK's constructEventAsync), retries, duplicates, reverse order, the 2020-era rendering; the
// test-card checkout; and the runner really starts one and gives the functions its URL.
import assert from "node:assert/strict";
import { startStripeFake, type StripeFake, STRIPE_API_VERSION } from "../../scripts/fakes/stripe.ts";
import { StripeFakeControl, TEST_CARDS } from "../../scripts/fakes/stripe-control.ts";
import { createStripeClient, Stripe, STRIPE_API_VERSION as CLIENT_VERSION } from "../../supabase/functions/_shared/stripe/client.ts";

// Obviously fake values of the right shapes, built at run time.
const KEY = ["sk", "test", "fakeStripeFixture000000000"].join("_");
const SECRET_A = "whsec_fakeFixtureSecretA0000000";
const SECRET_B = "whsec_fakeFixtureSecretB0000000";
const PRICES = { monthly: "price_FixtureMonthly", annual: "price_FixtureAnnual", addonSiteMonthly: "price_FixtureAddonM", addonSiteAnnual: "price_FixtureAddonA" };

interface Hook {
  url: string;
  events: Stripe.Event[];
  raw: { body: string; signature: string | null }[];
  /** Status to answer, per delivery (default 200). */
  answer: () => number;
  close(): Promise<void>;
}

/** A webhook receiver that verifies every delivery with the SDK against SECRET_A. */
function receiver(): Hook {
  const hook: Hook = {
    url: "",
    events: [],
    raw: [],
    answer: () => 200,
    close: async () => {},
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.text();
    const signature = req.headers.get("stripe-signature");
    hook.raw.push({ body, signature });
    try {
      hook.events.push(await Stripe.webhooks.constructEventAsync(body, signature ?? "", SECRET_A, undefined, Stripe.createSubtleCryptoProvider()));
    } catch {
      return new Response("bad signature", { status: 400 });
    }
    return new Response("{}", { status: hook.answer() });
  });
  hook.url = `http://127.0.0.1:${server.addr.port}/functions/v1/stripe-webhook`;
  hook.close = () => server.shutdown();
  return hook;
}

async function withFake(fn: (fake: StripeFake, stripe: Stripe, control: StripeFakeControl, hook: Hook) => Promise<void>) {
  const hook = receiver();
  const fake = startStripeFake({ secretKey: KEY, prices: PRICES, webhookUrl: hook.url, webhookSecrets: [SECRET_A, SECRET_B] });
  await new StripeFakeControl(fake.url).webhookEndpoint({ retry_delay_ms: 20 });
  try {
    await fn(fake, createStripeClient(KEY, fake.url, { maxNetworkRetries: 0 }), new StripeFakeControl(fake.url), hook);
  } finally {
    await fake.settled();
    await fake.close();
    await hook.close();
  }
}

Deno.test("stripe fake: the pinned version is the SDK's own", () => {
  assert.equal(Stripe.API_VERSION, STRIPE_API_VERSION);
  assert.equal(CLIENT_VERSION, STRIPE_API_VERSION);
});

Deno.test("stripe fake: customers through the SDK, errors in Stripe's shape, wrong key 401", async () => {
  await withFake(async (fake, stripe) => {
    const c = await stripe.customers.create({ email: "a@example.test", name: "Client A", metadata: { tenant_id: "t-1" } });
    assert.match(c.id, /^cus_[A-Za-z0-9]+$/);
    assert.equal(c.object, "customer");
    assert.deepEqual(c.metadata, { tenant_id: "t-1" });
    const updated = await stripe.customers.update(c.id, { metadata: { tenant_id: "", plan: "x" }, email: "b@example.test" });
    assert.deepEqual(updated.metadata, { plan: "x" }, "an empty metadata value deletes the key");
    assert.equal((await stripe.customers.retrieve(c.id) as Stripe.Customer).email, "b@example.test");
    assert.deepEqual(await stripe.customers.del(c.id), { id: c.id, object: "customer", deleted: true });
    assert.equal((await stripe.customers.retrieve(c.id)).deleted, true);

    await assert.rejects(stripe.subscriptions.retrieve("sub_doesnotexist"), (e: Stripe.errors.StripeError) => {
      assert.equal(e.type, "StripeInvalidRequestError");
      assert.equal(e.code, "resource_missing");
      assert.equal(e.statusCode, 404);
      return true;
    });
    await assert.rejects(stripe.customers.create({ unknown_field: "x" } as Stripe.CustomerCreateParams), (e: Stripe.errors.StripeError) => {
      assert.equal(e.param, "unknown_field");
      return true;
    });
    const raw = await fetch(`${fake.url}/v1/customers`, { headers: { authorization: "Bearer sk_test_wrongwrongwrongwrong0000" } });
    const body = await raw.json();
    assert.equal(raw.status, 401);
    assert.equal(body.error.type, "invalid_request_error");
    assert.match(body.error.message, /^Invalid API Key provided: sk_test_\*+0000$/);
  });
});

Deno.test("stripe fake: lists paginate 100 at a time with has_more, starting_after and ending_before", async () => {
  await withFake(async (_fake, stripe, control) => {
    const seeded = await control.seedSubscriptions({ count: 230 });
    assert.equal(seeded.subscriptions.length, 230);
    const first = await stripe.subscriptions.list({ limit: 100 });
    assert.equal(first.data.length, 100);
    assert.equal(first.has_more, true);
    assert.equal(first.url, "/v1/subscriptions");
    assert.equal(first.data[0].id, seeded.subscriptions[229], "newest first");
    const ids: string[] = [];
    for await (const s of stripe.subscriptions.list({ limit: 100 })) ids.push(s.id);
    assert.equal(new Set(ids).size, 230);
    assert.deepEqual((await control.calls()).calls["GET /v1/subscriptions"], 1 + 3);
    const before = await stripe.subscriptions.list({ limit: 5, ending_before: first.data[10].id });
    assert.deepEqual(before.data.map((s) => s.id), first.data.slice(5, 10).map((s) => s.id));
    await assert.rejects(stripe.subscriptions.list({ limit: 101 }), /less than or equal to 100/);
    await assert.rejects(stripe.subscriptions.list({ limit: 0 }), /greater than or equal to 1/);
    assert.equal((await stripe.subscriptions.list()).data.length, 10, "default limit 10");
  });
});

Deno.test("stripe fake: 429 on demand (Retry-After when asked), idempotency keys replayed or refused", async () => {
  await withFake(async (_fake, stripe, control) => {
    await control.rateLimit(1, { retry_after: 3, route: "GET /v1/customers" });
    await assert.rejects(stripe.customers.list(), (e: Stripe.errors.StripeError) => {
      assert.equal(e.type, "StripeRateLimitError");
      assert.equal(e.statusCode, 429);
      assert.equal(e.code, "rate_limit");
      assert.equal(e.headers?.["retry-after"], "3");
      return true;
    });
    assert.equal((await stripe.customers.list()).object, "list", "only the next call was limited");
    const key = crypto.randomUUID();
    const a = await stripe.customers.create({ email: "i@example.test" }, { idempotencyKey: key });
    const b = await stripe.customers.create({ email: "i@example.test" }, { idempotencyKey: key });
    assert.equal(a.id, b.id);
    const replay = await fetch(`${control.baseUrl}/v1/customers`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "idempotency-key": key, "content-type": "application/x-www-form-urlencoded" },
      body: "email=i%40example.test",
    });
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal((await replay.json()).id, a.id);
    await assert.rejects(stripe.customers.create({ email: "other@example.test" }, { idempotencyKey: key }), (e: Stripe.errors.StripeError) =>
      e.type === "StripeIdempotencyError");
  });
});

Deno.test("stripe fake: checkout with 4242 creates the objects and signed events in Stripe's order", async () => {
  await withFake(async (fake, stripe, control, hook) => {
    const customer = await stripe.customers.create({ email: "admin@example.test", metadata: { tenant_id: "t-2" } });
    await fake.settled();
    hook.events.length = 0;
    await assert.rejects(
      stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: PRICES.monthly, quantity: 1 }], automatic_tax: { enabled: true } }),
      (e: Stripe.errors.StripeError) => e.param === "customer_update[address]",
      "automatic tax with a customer needs customer_update[address]=auto (as Stripe refuses it)",
    );
    const session = await stripe.checkout.sessions.create({
      mode: "subscription",
      customer: customer.id,
      customer_update: { address: "auto", name: "auto" },
      automatic_tax: { enabled: true },
      tax_id_collection: { enabled: true },
      client_reference_id: "t-2",
      metadata: { tenant_id: "t-2" },
      subscription_data: { metadata: { tenant_id: "t-2" } },
      line_items: [{ price: PRICES.monthly, quantity: 1 }, { price: PRICES.addonSiteMonthly, quantity: 2 }],
      success_url: "http://127.0.0.1:3000/billing/success?session_id={CHECKOUT_SESSION_ID}",
    });
    assert.equal(session.status, "open");
    assert.equal(session.amount_subtotal, 14900 + 2 * 5000);
    const withItems = await stripe.checkout.sessions.retrieve(session.id, { expand: ["line_items"] });
    assert.deepEqual(withItems.line_items?.data.map((l) => [l.price?.id, l.quantity]), [[PRICES.monthly, 1], [PRICES.addonSiteMonthly, 2]]);

    await assert.rejects(control.completeCheckout(session.id, { card: TEST_CARDS.declined }), /402.*card_declined/);
    assert.equal((await stripe.checkout.sessions.retrieve(session.id)).status, "open", "a declined card leaves the session open");

    const done = await control.completeCheckout(session.id, { card: TEST_CARDS.success });
    assert.equal(done.outcome, "succeeded");
    await fake.settled();
    assert.deepEqual(hook.events.map((e) => e.type), [
      "customer.updated",
      "customer.subscription.created",
      "invoice.created",
      "invoice.finalized",
      "invoice_payment.paid",
      "invoice.paid",
      "invoice.payment_succeeded",
      "customer.subscription.updated",
      "checkout.session.completed",
    ]);
    for (const raw of hook.raw) assert.match(raw.signature!, /^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/, "one v1 per secret");
    const sub = await stripe.subscriptions.retrieve(done.session.subscription, { expand: ["latest_invoice"] });
    assert.equal(sub.status, "active");
    assert.deepEqual(sub.metadata, { tenant_id: "t-2" });
    assert.ok(sub.items.data.every((i) => i.current_period_end > i.current_period_start), "basil: the period is on the items");
    const invoice = sub.latest_invoice as Stripe.Invoice;
    assert.equal(invoice.status, "paid");
    assert.equal(invoice.parent?.subscription_details?.subscription, sub.id);
    assert.equal(invoice.total, 24900 + Math.round(24900 * 0.14975), "QC: GST + QST");
    const payments = await stripe.invoicePayments.list({ invoice: invoice.id });
    assert.equal(payments.data[0].status, "paid");
    const created = hook.events.find((e) => e.type === "customer.subscription.created")!.data.object as Stripe.Subscription;
    assert.equal(created.status, "incomplete", "the created event holds the object as it was then");
  });
});

Deno.test("stripe fake: 3-D Secure card waits for authentication, then the subscription is active and paid", async () => {
  await withFake(async (fake, stripe, control, hook) => {
    const session = await stripe.checkout.sessions.create({ mode: "subscription", line_items: [{ price: PRICES.annual, quantity: 1 }], customer_email: "x@example.test" });
    const first = await control.completeCheckout(session.id, { card: TEST_CARDS.threeDSecure });
    assert.equal(first.outcome, "requires_action");
    assert.equal(first.session.status, "open");
    await fake.settled();
    const sub = (await stripe.subscriptions.list({ customer: first.session.customer, status: "all" })).data[0];
    assert.equal(sub.status, "incomplete");
    assert.equal((await stripe.invoices.retrieve(sub.latest_invoice as string)).status, "open");
    assert.ok(hook.events.some((e) => e.type === "invoice.payment_action_required"));
    const second = await control.authenticateCheckout(session.id);
    assert.equal(second.outcome, "succeeded");
    assert.equal(second.session.status, "complete");
    assert.equal((await stripe.subscriptions.retrieve(sub.id)).status, "active");
    assert.equal((await stripe.invoices.retrieve(sub.latest_invoice as string)).status, "paid");
  });
});

Deno.test("stripe fake: retries on non-2xx, manual delivery reversed, duplicated, old version, expired, tampered", async () => {
  await withFake(async (fake, stripe, control, hook) => {
    let failures = 2;
    hook.answer = () => failures-- > 0 ? 500 : 200;
    const c = await stripe.customers.create({ email: "r@example.test" });
    await fake.settled();
    const attempts = await control.deliveries();
    assert.deepEqual(attempts.map((a) => [a.type, a.attempt, a.status]), [["customer.created", 1, 500], ["customer.created", 2, 500], ["customer.created", 3, 200]]);
    const listed = await stripe.events.list({ type: "customer.*", delivery_success: true });
    assert.equal((listed.data[0].data.object as Stripe.Customer).id, c.id, "delivered at last: delivery_success=true");

    const sub = (await stripe.subscriptions.create({ customer: c.id, items: [{ price: PRICES.monthly }] }));
    const e1 = await control.emit({ type: "customer.subscription.updated", object_id: sub.id, set: { status: "past_due" } });
    const e2 = await control.emit({ type: "customer.subscription.updated", object_id: sub.id, set: { status: "active" }, undelivered: true });
    await fake.settled();
    assert.deepEqual((await stripe.events.list({ delivery_success: false })).data.map((e) => e.id), [e2.id]);
    await fake.settled();
    hook.events.length = 0;
    const sent = await control.deliver({ event_ids: [e1.id, e2.id], order: "reverse", duplicates: 1, api_version: "2020-08-27" });
    assert.deepEqual(sent.map((d) => d.event_id), [e2.id, e2.id, e1.id, e1.id]);
    assert.ok(sent.every((d) => d.status === 200));
    const old = hook.events[0] as unknown as { api_version: string; data: { object: Record<string, unknown> } };
    assert.equal(old.api_version, "2020-08-27");
    assert.equal(typeof old.data.object.current_period_end, "number", "2020-era subscription: period on the subscription");

    const expired = await control.deliver({ event_ids: [e1.id], timestamp: Math.floor(Date.now() / 1000) - 301 });
    assert.equal(expired[0].status, 400);
    const tampered = await control.deliver({ event_ids: [e1.id], tamper: true });
    assert.equal(tampered[0].status, 400);
    const wrong = await control.deliver({ event_ids: [e1.id], secrets: ["whsec_notTheEndpointsSecret000"] });
    assert.equal(wrong[0].status, 400);
    const onlyB = await control.deliver({ event_ids: [e1.id], secrets: [SECRET_B] });
    assert.equal(onlyB[0].status, 400, "this receiver knows SECRET_A only");
  });
});

Deno.test("stripe fake: invoice lifecycle through the API (draft → open → paid / void / uncollectible)", async () => {
  await withFake(async (_fake, stripe, control) => {
    const { customers, subscriptions } = await control.seedSubscriptions({ count: 1 });
    const renew = await control.renewSubscription(subscriptions[0]);
    assert.equal(renew.invoice.status, "draft");
    const open = await stripe.invoices.finalizeInvoice(renew.invoice.id);
    assert.equal(open.status, "open");
    assert.match(open.hosted_invoice_url!, /^https:\/\//);
    assert.equal((await stripe.invoices.pay(open.id)).status, "paid");
    const other = await stripe.invoices.create({ customer: customers[0], subscription: subscriptions[0] });
    await stripe.invoices.finalizeInvoice(other.id);
    assert.equal((await stripe.invoices.voidInvoice(other.id)).status, "void");
    const third = await stripe.invoices.create({ customer: customers[0], subscription: subscriptions[0] });
    await stripe.invoices.finalizeInvoice(third.id);
    assert.equal((await stripe.invoices.markUncollectible(third.id)).status, "uncollectible");
    const oldShape = await (await fetch(`${control.baseUrl}/v1/invoices/${open.id}`, {
      headers: { authorization: `Bearer ${KEY}`, "stripe-version": "2020-08-27" },
    })).json();
    assert.equal(oldShape.subscription, subscriptions[0]);
    assert.equal(oldShape.paid, true);
    assert.match(oldShape.charge, /^ch_/);
    assert.equal(oldShape.parent, undefined);
  });
});

Deno.test("stripe fake: the test runner runs one and gives the functions its URL", async () => {
  const base = Deno.env.get("STRIPE_API_BASE");
  assert.ok(base, "STRIPE_API_BASE is set for the tests");
  const health = await (await fetch(`${base}/`)).json();
  assert.equal(health.fake, "stripe");
  assert.match(health.webhook_url, /\/functions\/v1\/stripe-webhook$/);
});
