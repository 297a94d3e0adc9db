// stripe-webhook through the gateway, with the runner's fake Stripe signing and posting the events
// as Stripe does, against the real database: signatures (two secrets, tampered, wrong, expired,
// missing), malformed bodies (4xx, nothing written), checkout end to end (4242, 3-D Secure),
// duplicates, unknown types.
import assert from "node:assert/strict";
import { delay, functionUrl, withDb } from "../../_helpers.ts";
import {
  deliver,
  emitAndDeliver,
  eventRow,
  fake,
  invoiceRow,
  newTenant,
  paidTenant,
  PRICES,
  SECRETS,
  settled,
  stripe,
  subscriptionRow,
  webhookUrl,
} from "../stripe_helpers.ts";

async function countRows(sql: Parameters<Parameters<typeof withDb>[0]>[0], eventId: string) {
  const [{ events, audits }] = await sql<{ events: number; audits: number }[]>`
    select (select count(*)::int from public.billing_events where stripe_event_id = ${eventId}) as events,
           (select count(*)::int from public.system_audit_logs where target = ${eventId}) as audits`;
  return { events, audits };
}

Deno.test("stripe-webhook: a valid signature with either secret of the roll is accepted and recorded", async () => {
  await withDb(async (sql) => {
    const { customerId } = await paidTenant(sql);
    for (const secret of SECRETS) {
      const r = await emitAndDeliver({ type: "customer.updated", object_id: customerId }, { secrets: [secret] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.outcome, "applied");
      assert.equal((await eventRow(sql, r.event.id)).outcome, "applied");
    }
  });
});

Deno.test("stripe-webhook: tampered body, wrong secret, expired timestamp, no signature → 400, nothing written", async () => {
  await withDb(async (sql) => {
    const { customerId } = await paidTenant(sql);
    const cases: [string, Parameters<typeof deliver>[0], string][] = [
      ["tampered", { tamper: true }, "invalid_signature"],
      ["wrong secret", { secrets: ["whsec_notOneOfOursAtAll000000000"] }, "invalid_signature"],
      ["expired", { timestamp: Math.floor(Date.now() / 1000) - 301 }, "invalid_signature"],
      ["no signature", { sign: false }, "missing_signature"],
      ["garbage signature", { signature: "t=abc,v1=nothex" }, "invalid_signature"],
    ];
    for (const [what, opts, code] of cases) {
      const event = await fake().emit({ type: "customer.updated", object_id: customerId });
      const [r] = await deliver({ event_ids: [event.id], ...opts });
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, code, what);
      assert.deepEqual(await countRows(sql, event.id), { events: 0, audits: 0 }, `${what}: nothing written`);
    }
    // Just inside the tolerance is fine.
    const ok = await emitAndDeliver({ type: "customer.updated", object_id: customerId }, { timestamp: Math.floor(Date.now() / 1000) - 290 });
    assert.equal(ok.status, 200);
  });
});

Deno.test("stripe-webhook: malformed requests are 4xx, never 5xx, and write nothing", async () => {
  await withDb(async (sql) => {
    const before = await sql<{ n: number }[]>`select count(*)::int as n from public.billing_events`;
    const bodies: [string, string, string][] = [
      ["not JSON", "{not json", "invalid_json"],
      ["empty", "", "missing_signature"],
      ["an array", "[1, 2]", "invalid_event"],
      ["no id", JSON.stringify({ object: "event", type: "invoice.paid", created: 1, livemode: false, data: { object: {} } }), "invalid_event"],
      ["bad id", JSON.stringify({ id: "evt_bad id", object: "event", type: "invoice.paid", created: 1, livemode: false, data: { object: {} } }), "invalid_event"],
      ["bad type", JSON.stringify({ id: "evt_BadType1", object: "event", type: "Invoice Paid", created: 1, livemode: false, data: { object: {} } }), "invalid_event"],
      ["no data.object", JSON.stringify({ id: "evt_NoObject1", object: "event", type: "invoice.paid", created: 1, livemode: false, data: {} }), "invalid_event"],
      ["data.object an array", JSON.stringify({ id: "evt_ArrObject1", object: "event", type: "invoice.paid", created: 1, livemode: false, data: { object: [] } }), "invalid_event"],
      ["thin v2 notification", JSON.stringify({ id: "evt_Thin1", object: "v2.core.event", type: "v1.billing.meter.error_report_triggered" }), "invalid_event"],
    ];
    for (const [what, body, code] of bodies) {
      // Signed with a secret of ours: only the body is wrong (the empty body cannot be signed by the SDK's rules).
      const [r] = await deliver({ raw_body: body, ...(body === "" ? { sign: false as const } : {}) });
      assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, code, what);
    }
    const url = webhookUrl();
    const get = await fetch(url);
    assert.equal(get.status, 405);
    await get.body?.cancel();
    const form = await fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "a=b" });
    assert.equal(form.status, 415);
    await form.body?.cancel();
    const huge = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: "x".repeat(1024 * 1024 + 1) });
    assert.equal(huge.status, 413);
    await huge.body?.cancel();
    const after = await sql<{ n: number }[]>`select count(*)::int as n from public.billing_events`;
    assert.equal(after[0].n, before[0].n, "no billing_events row");
  });
});

Deno.test("stripe-webhook: checkout with 4242 → customer, active subscription with items, paid invoice (events as Stripe sends them)", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql, { addons: 2 });
    const [customer] = await sql`select tenant_id, email from public.customers where stripe_customer_id = ${t.customerId}`;
    assert.equal(customer.tenant_id, t.tenantId);
    assert.match(customer.email, /@example\.test$/);
    const sub = await subscriptionRow(sql, t.subscriptionId);
    assert.equal(sub.tenant_id, t.tenantId);
    assert.equal(sub.status, "active");
    assert.equal(sub.plan_interval, "month");
    assert.ok(sub.current_period_end! > sub.current_period_start!);
    assert.deepEqual(sub.items.map((i) => [i.kind, i.price, i.quantity]), [["addon_site", PRICES.addonMonthly, 2], ["plan", PRICES.monthly, 1]]);
    const inv = await invoiceRow(sql, t.invoiceId);
    assert.equal(inv.status, "paid");
    assert.equal(inv.stripe_subscription_id, t.subscriptionId);
    assert.ok(inv.subscription_id, "linked to the subscription row");
    assert.equal(Number(inv.total_cents), 24900 + Math.round(24900 * 0.14975));
    assert.equal(Number(inv.tax_cents), Math.round(24900 * 0.14975));
    assert.ok(inv.paid_at);
    // Every event of the checkout was applied (or was a no-op), none failed or parked.
    const events = await sql<{ type: string; outcome: string }[]>`
      select type, outcome from public.billing_events
       where stripe_customer_id = ${t.customerId} or object_id in (${t.sessionId}, ${t.subscriptionId}, ${t.invoiceId})`;
    assert.ok(events.length >= 8, JSON.stringify(events));
    assert.deepEqual(events.filter((e) => e.outcome !== "applied"), []);
    // The seeds' procedure: the subscriptions row of the tenant, and no error in the last 24 h for it.
    const errors = await sql`select 1 from system_audit_logs where created_at > now() - interval '24 hours'
                              and details->>'error' is not null and tenant_id = ${t.tenantId}`;
    assert.equal(errors.length, 0);
  });
});

Deno.test("stripe-webhook: 3-D Secure checkout: incomplete and open until authenticated, then active and paid", async () => {
  await withDb(async (sql) => {
    const tenantId = await newTenant(sql);
    const session = await stripe().checkout.sessions.create({
      mode: "subscription",
      client_reference_id: tenantId,
      customer_email: "sca@example.test",
      line_items: [{ price: PRICES.annual, quantity: 1 }],
    });
    const first = await fake().completeCheckout(session.id, { card: "4000002500003155" });
    assert.equal(first.outcome, "requires_action");
    await settled();
    // No checkout.session.completed yet: the events wait, parked, until the customer is tied to the tenant.
    const parked = await sql<{ type: string }[]>`
      select type from public.billing_events where stripe_customer_id = ${first.session.customer} and outcome = 'parked'`;
    assert.ok(parked.some((e) => e.type === "customer.subscription.created"), JSON.stringify(parked));
    const declined = await fake().completeCheckout(session.id, { card: "4000000000000002" }).catch((e) => e as Error);
    assert.match(String(declined), /card_declined/);
    const done = await fake().authenticateCheckout(session.id);
    assert.equal(done.outcome, "succeeded");
    await settled();
    const sub = await subscriptionRow(sql, done.session.subscription);
    assert.equal(sub.tenant_id, tenantId);
    assert.equal(sub.status, "active");
    assert.equal(sub.plan_interval, "year");
    assert.equal((await invoiceRow(sql, done.session.invoice)).status, "paid");
    const left = await sql`select 1 from public.billing_events where stripe_customer_id = ${first.session.customer} and outcome = 'parked'`;
    assert.equal(left.length, 0, "every parked event was replayed once the checkout tied the customer");
  });
});

Deno.test("stripe-webhook: a duplicate event id is acknowledged and changes nothing", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql);
    const event = await fake().emit({ type: "customer.subscription.updated", object_id: t.subscriptionId, set: { cancel_at_period_end: true }, created: Math.floor(Date.now() / 1000) + 5 });
    const [first, second, third] = await deliver({ event_ids: [event.id], duplicates: 2 });
    assert.equal(first.status, 200);
    assert.equal(first.body.outcome, "applied");
    assert.equal((await subscriptionRow(sql, t.subscriptionId)).cancel_at_period_end, true);
    const rows = await countRows(sql, event.id);
    const [{ updated_at }] = await sql`select updated_at from public.subscriptions where stripe_subscription_id = ${t.subscriptionId}`;
    for (const dup of [second, third]) {
      assert.equal(dup.status, 200);
      assert.equal(dup.body.outcome, "duplicate");
    }
    assert.deepEqual(await countRows(sql, event.id), rows, "no second ledger or audit row");
    const [{ updated_at: after }] = await sql`select updated_at from public.subscriptions where stripe_subscription_id = ${t.subscriptionId}`;
    assert.deepEqual(after, updated_at, "the row was not touched");
  });
});

Deno.test("stripe-webhook: any other event type → 2xx, recorded as ignored", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql);
    for (const type of ["payment_intent.succeeded", "charge.succeeded", "product.updated", "checkout.session.expired", "invoice_payment.canceled"]) {
      const r = await emitAndDeliver({ type, object: { id: `obj_${crypto.randomUUID().slice(0, 8)}`, object: type.split(".")[0], customer: t.customerId } });
      assert.equal(r.status, 200, type);
      assert.equal(r.body.outcome, "ignored", type);
      const row = await eventRow(sql, r.event.id);
      assert.equal(row.outcome, "ignored");
      assert.ok(row.processed_at);
    }
  });
});

Deno.test("stripe-webhook: the SDK's own calls reach the webhook (subscription update and cancel)", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql, { addons: 1 });
    const sub = await stripe().subscriptions.retrieve(t.subscriptionId);
    const addon = sub.items.data.find((i) => i.price.id === PRICES.addonMonthly)!;
    // A second apart: Stripe's created has one-second resolution.
    await delay(1000);
    await stripe().subscriptions.update(t.subscriptionId, { items: [{ id: addon.id, quantity: 4 }] });
    await settled();
    assert.deepEqual((await subscriptionRow(sql, t.subscriptionId)).items.find((i) => i.kind === "addon_site")?.quantity, 4);
    await stripe().subscriptions.cancel(t.subscriptionId);
    await settled();
    assert.equal((await subscriptionRow(sql, t.subscriptionId)).status, "canceled");
  });
});

Deno.test("stripe-webhook: the function is served with verify_jwt off (no Authorization needed)", async () => {
  const res = await fetch(functionUrl("stripe-webhook"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const body = await res.json();
  assert.equal(res.status, 400, "reached the function: its own 400, not the gateway's 401");
  assert.equal(body.error, "missing_signature");
});
