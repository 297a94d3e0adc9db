// stripe-webhook, event by event, through the gateway and the real database: every handled type at
// the current API version and at a 2020-era one; subscription updates delivered in reverse order and
// within the same second; the invoice lifecycle; failures (5xx, recorded with details.error); events
// about a customer we cannot tie to a tenant yet (parked, then replayed).
import assert from "node:assert/strict";
import { delay, withDb } from "../../_helpers.ts";
import {
  deliver,
  emitAndDeliver,
  eventRow,
  fake,
  invoiceRow,
  LEGACY_VERSION,
  newTenant,
  paidTenant,
  PRICES,
  settled,
  stripe,
  subscriptionRow,
} from "../stripe_helpers.ts";
import type { StripeJson } from "../../../scripts/fakes/stripe-control.ts";
import { STRIPE_API_VERSION } from "../../../supabase/functions/_shared/stripe/client.ts";

const now = () => Math.floor(Date.now() / 1000);

const SUBSCRIPTION_TYPES = [
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.paused",
  "customer.subscription.resumed",
  "customer.subscription.trial_will_end",
  "customer.subscription.pending_update_applied",
  "customer.subscription.pending_update_expired",
  "customer.subscription.deleted",
];
const INVOICE_TYPES = [
  "invoice.created",
  "invoice.finalized",
  "invoice.updated",
  "invoice.sent",
  "invoice.paid",
  "invoice.payment_succeeded",
  "invoice.payment_failed",
  "invoice.payment_action_required",
  "invoice.finalization_failed",
  "invoice.marked_uncollectible",
  "invoice.voided",
  "invoice.overdue",
  "invoice.overpaid",
  "invoice.will_be_due",
  "invoice.upcoming",
  "invoice.deleted",
];

for (const version of [STRIPE_API_VERSION, LEGACY_VERSION]) {
  Deno.test(`stripe-webhook: every handled type is applied at API version ${version}`, async () => {
    await withDb(async (sql) => {
      const t = await paidTenant(sql);
      const opts = { api_version: version };
      // Customer events: created/updated apply; deleted marks the row.
      for (const type of ["customer.created", "customer.updated"]) {
        const r = await emitAndDeliver({ type, object_id: t.customerId }, opts);
        assert.equal(r.status, 200, `${type}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.outcome, "applied", type);
      }
      // checkout.session.completed again (another event id): the customer stays the tenant's.
      const checkout = await emitAndDeliver({ type: "checkout.session.completed", object_id: t.sessionId }, opts);
      assert.equal(checkout.body.outcome, "applied");

      // Subscription events, each a second newer than the last, each changing the quantity of the plan.
      let at = now() + 10;
      for (const [i, type] of SUBSCRIPTION_TYPES.entries()) {
        const set = type === "customer.subscription.deleted" ? { status: "canceled", canceled_at: at } : { cancel_at_period_end: i % 2 === 0 };
        const r = await emitAndDeliver({ type, object_id: t.subscriptionId, set, created: at++ }, opts);
        assert.equal(r.status, 200, `${type}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.outcome, "applied", type);
        assert.ok(["changed", "unchanged"].includes(r.body.result as string), `${type}: ${r.body.result}`);
        const row = await subscriptionRow(sql, t.subscriptionId);
        if (type === "customer.subscription.deleted") assert.equal(row.status, "canceled");
        else assert.equal(row.cancel_at_period_end, i % 2 === 0, type);
        // Both shapes give the period: on the items (current) or on the subscription (2020-era).
        assert.ok(row.current_period_end && row.current_period_end > row.current_period_start!, `${type}: period`);
        assert.equal(row.plan_interval, "month");
      }

      // Invoice events on the tenant's paid invoice: each newer one applies its status.
      const statusFor: Record<string, string> = {
        "invoice.created": "draft",
        "invoice.finalized": "open",
        "invoice.payment_failed": "open",
        "invoice.payment_action_required": "open",
        "invoice.finalization_failed": "draft",
        "invoice.marked_uncollectible": "uncollectible",
        "invoice.voided": "void",
        "invoice.overdue": "open",
        "invoice.will_be_due": "open",
      };
      const invoice = await stripe().invoices.create({ customer: t.customerId, subscription: t.subscriptionId });
      await settled();
      for (const type of INVOICE_TYPES) {
        const status = statusFor[type] ?? "paid";
        const set: Record<string, unknown> = { status };
        if (status === "paid") set.status_transitions = { paid_at: at };
        const object = type === "invoice.upcoming" ? { ...(await fake().object(invoice.id)), id: undefined, ...set } : undefined;
        const r = await emitAndDeliver(object ? { type, object, created: at++ } : { type, object_id: invoice.id, set, created: at++ }, opts);
        assert.equal(r.status, 200, `${type}: ${JSON.stringify(r.body)}`);
        if (type === "invoice.upcoming") {
          assert.equal(r.body.outcome, "ignored", "an upcoming invoice has no id: nothing stored");
          continue;
        }
        assert.equal(r.body.outcome, "applied", type);
        const row = await invoiceRow(sql, invoice.id);
        if (type === "invoice.deleted") {
          assert.equal(row, undefined, "invoice.deleted removes the row");
          continue;
        }
        assert.equal(row.status, status, type);
        assert.equal(row.stripe_subscription_id, t.subscriptionId, `${type}: subscription read from the ${version} shape`);
        assert.ok(row.subscription_id);
        if (status === "paid") assert.ok(row.paid_at);
      }

      // invoice_payment.paid: the tenant's first invoice is already paid in our row: nothing to fetch.
      const payment = (await stripe().invoicePayments.list({ invoice: t.invoiceId })).data[0];
      const paid = await emitAndDeliver({ type: "invoice_payment.paid", object_id: payment.id }, opts);
      assert.equal(paid.status, 200);
      assert.equal(paid.body.outcome, "applied");

      const deleted = await emitAndDeliver({ type: "customer.deleted", object_id: t.customerId, created: at++ }, opts);
      assert.equal(deleted.body.outcome, "applied");
      const [customer] = await sql`select deleted_at from public.customers where stripe_customer_id = ${t.customerId}`;
      assert.ok(customer.deleted_at, "customer.deleted marks the customer deleted");
    });
  });
}

Deno.test("stripe-webhook: invoice_payment.paid before its invoice is parked, then applied with it; no Stripe call in any order", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql);
    // A renewal whose events we deliver ourselves: the payment first, then the invoice's.
    await fake().webhookEndpoint({ auto_deliver: false });
    let invoiceId: string;
    try {
      const { invoice } = await fake().renewSubscription(t.subscriptionId);
      invoiceId = invoice.id;
      await stripe().invoices.finalizeInvoice(invoice.id);
      await stripe().invoices.pay(invoice.id);
    } finally {
      await fake().webhookEndpoint({ auto_deliver: true });
    }
    const about = (e: StripeJson) => e.data.object.id === invoiceId || e.data.object.invoice === invoiceId;
    const events = ((await stripe().events.list({ limit: 50 })).data as StripeJson[]).filter(about);
    const byType = (type: string) => events.filter((e) => e.type === type).map((e) => e.id as string);
    assert.equal(byType("invoice_payment.paid").length, 1, "the renewal's payment");
    const calls = async () => (await fake().calls()).calls["GET /v1/invoices/:id"] ?? 0;
    const before = await calls();

    const [parked] = await deliver({ event_ids: byType("invoice_payment.paid") });
    assert.equal(parked.status, 200, JSON.stringify(parked.body));
    assert.deepEqual([parked.body.outcome, parked.body.result], ["parked", "awaiting_invoice"]);
    assert.equal(await invoiceRow(sql, invoiceId!), undefined, "no invoice row yet");

    const [created] = await deliver({ event_ids: byType("invoice.created") });
    assert.equal(created.body.result, "created");
    const row = await invoiceRow(sql, invoiceId!);
    assert.equal(row.status, "paid", "the parked payment applied with the invoice's creation");
    assert.equal(row.amount_paid_cents, row.total_cents);
    assert.ok(row.paid_at);
    assert.deepEqual(await eventRow(sql, byType("invoice_payment.paid")[0]).then((e) => [e.outcome, e.result]), ["applied", "changed"]);

    // The rest, newest first: the open copy of the same second ranks below paid.
    const rest = await deliver({ event_ids: [...byType("invoice.finalized"), ...byType("invoice.paid")], order: "reverse" });
    assert.deepEqual(rest.map((a) => a.status), [200, 200]);
    assert.equal((await invoiceRow(sql, invoiceId!)).status, "paid");
    assert.equal(await calls(), before, "nothing fetched from Stripe");
  });
});

Deno.test("stripe-webhook: an invoice's events of one second, oldest or newest first, end paid without a Stripe call", async () => {
  await withDb(async (sql) => {
    // Oldest first: open after draft (the same second: ordered by the status), then the payment pays
    // the open invoice from the payment itself. Newest first: paid, then every earlier state skipped.
    for (const order of ["as_given", "reverse"] as const) {
      const t = await paidTenant(sql);
      await fake().webhookEndpoint({ auto_deliver: false });
      let invoiceId: string;
      try {
        const { invoice } = await fake().renewSubscription(t.subscriptionId);
        invoiceId = invoice.id;
        await stripe().invoices.finalizeInvoice(invoice.id);
        await stripe().invoices.pay(invoice.id);
      } finally {
        await fake().webhookEndpoint({ auto_deliver: true });
      }
      const events = ((await stripe().events.list({ limit: 50 })).data as StripeJson[])
        .filter((e) => e.data.object.id === invoiceId || e.data.object.invoice === invoiceId);
      assert.ok(events.length >= 4, `${order}: created, finalized, payment, paid…`);
      const before = (await fake().calls()).calls["GET /v1/invoices/:id"] ?? 0;
      const answers = await deliver({ event_ids: events.map((e) => e.id as string).reverse(), order });
      assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers.map((a) => a.body)));
      const row = await invoiceRow(sql, invoiceId!);
      assert.equal(row.status, "paid", order);
      assert.equal(row.amount_paid_cents, row.total_cents, order);
      assert.equal((await fake().calls()).calls["GET /v1/invoices/:id"] ?? 0, before, `${order}: nothing fetched`);
    }
  });
});

Deno.test("stripe-webhook: subscription updates delivered in reverse order end in the newest state", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql, { addons: 1 });
    const base = now() + 20;
    // Stored now: active, not cancelling. The newest of the three differs from it.
    const states = [
      { status: "past_due", cancel_at_period_end: false },
      { status: "unpaid", cancel_at_period_end: false },
      { status: "active", cancel_at_period_end: true },
    ];
    const events = [];
    for (const [i, set] of states.entries()) {
      events.push(await fake().emit({ type: "customer.subscription.updated", object_id: t.subscriptionId, set, created: base + i }));
    }
    const answers = await deliver({ event_ids: events.map((e) => e.id), order: "reverse" });
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
    assert.deepEqual(answers.map((a) => a.body.result), ["changed", "skipped_stale", "skipped_stale"]);
    const row = await subscriptionRow(sql, t.subscriptionId);
    assert.equal(row.status, "active");
    assert.equal(row.cancel_at_period_end, true);
    assert.equal(row.stripe_updated_at.getTime(), (base + 2) * 1000);
    // The 2020-era rendering obeys the same rule.
    const older = await fake().emit({ type: "customer.subscription.updated", object_id: t.subscriptionId, set: { status: "unpaid" }, created: base + 1 });
    const [old] = await deliver({ event_ids: [older.id], api_version: LEGACY_VERSION });
    assert.equal(old.body.result, "skipped_stale");
    assert.equal((await subscriptionRow(sql, t.subscriptionId)).status, "active");
  });
});

Deno.test("stripe-webhook: two updates within the same second end in Stripe's newest state, whatever the order", async () => {
  await withDb(async (sql) => {
    for (const order of ["as_given", "reverse"] as const) {
      const t = await paidTenant(sql);
      // Events are never from the future: both in the current second, a second after the checkout's.
      await delay(1100);
      const second = now();
      // The older state (past_due), then the newest one, which is also the fake's current object.
      const older = await fake().emit({ type: "customer.subscription.updated", object_id: t.subscriptionId, set: { status: "past_due" }, created: second });
      await fake().mutate(t.subscriptionId, { cancel_at_period_end: true }, { deliver: false });
      const newer = await fake().emit({ type: "customer.subscription.updated", object_id: t.subscriptionId, created: second });
      const before = (await fake().calls()).calls["GET /v1/subscriptions/:id"] ?? 0;
      const answers = await deliver({ event_ids: [older.id, newer.id], order });
      assert.deepEqual(answers.map((a) => a.status), [200, 200], order);
      const row = await subscriptionRow(sql, t.subscriptionId);
      assert.equal(row.status, "active", `${order}: the newest status`);
      assert.equal(row.cancel_at_period_end, true, `${order}: the newest flag`);
      const fetched = ((await fake().calls()).calls["GET /v1/subscriptions/:id"] ?? 0) - before;
      assert.equal(fetched, 1, `${order}: the same-second conflict fetched the subscription once`);
    }
  });
});

Deno.test("stripe-webhook: invoice lifecycle draft → open → paid, → void, → uncollectible", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql);
    const { invoice } = await fake().renewSubscription(t.subscriptionId);
    await settled();
    assert.equal((await invoiceRow(sql, invoice.id)).status, "draft");
    await stripe().invoices.finalizeInvoice(invoice.id);
    await settled();
    const open = await invoiceRow(sql, invoice.id);
    assert.equal(open.status, "open");
    assert.match(open.hosted_invoice_url!, /^https:\/\//);
    await stripe().invoices.pay(invoice.id);
    await settled();
    const paid = await invoiceRow(sql, invoice.id);
    assert.equal(paid.status, "paid");
    assert.equal(paid.amount_paid_cents, paid.total_cents);
    assert.ok(paid.paid_at);

    const voided = await stripe().invoices.create({ customer: t.customerId, subscription: t.subscriptionId });
    await stripe().invoices.finalizeInvoice(voided.id);
    await stripe().invoices.voidInvoice(voided.id);
    const bad = await stripe().invoices.create({ customer: t.customerId, subscription: t.subscriptionId });
    await stripe().invoices.finalizeInvoice(bad.id);
    await stripe().invoices.markUncollectible(bad.id);
    const draft = await stripe().invoices.create({ customer: t.customerId });
    await settled();
    assert.equal((await invoiceRow(sql, draft.id)).status, "draft");
    await stripe().invoices.del(draft.id);
    await settled();
    assert.equal((await invoiceRow(sql, voided.id)).status, "void");
    assert.equal((await invoiceRow(sql, bad.id)).status, "uncollectible");
    assert.equal(await invoiceRow(sql, draft.id), undefined, "a deleted draft is gone");

    // A failed renewal payment: the invoice stays open, the subscription goes past_due.
    const { invoice: next } = await fake().renewSubscription(t.subscriptionId);
    await stripe().invoices.finalizeInvoice(next.id);
    await fake().failInvoicePayment(next.id);
    await settled();
    assert.equal((await invoiceRow(sql, next.id)).status, "open");
    assert.equal((await subscriptionRow(sql, t.subscriptionId)).status, "past_due");
  });
});

Deno.test("stripe-webhook: a failure is recorded with details.error and answered 5xx; Stripe's retry applies it once fixed", async () => {
  await withDb(async (sql) => {
    // The tenant already has a customer row (billing-checkout made it for a checkout never finished),
    // and a checkout completes with another Stripe customer: one customer per tenant, so it fails.
    const tenantId = await newTenant(sql);
    const stale = await stripe().customers.create({ email: "abandon@example.test" });
    await sql`insert into public.customers (tenant_id, stripe_customer_id) values (${tenantId}, ${stale.id})`;
    const other = await stripe().customers.create({ email: "nouveau@example.test" });
    await settled();
    const session = { id: "cs_test_Conflict" + crypto.randomUUID().replaceAll("-", ""), object: "checkout.session", mode: "subscription", customer: other.id, client_reference_id: tenantId, subscription: null, livemode: false };
    const event = await fake().emit({ type: "checkout.session.completed", object: session });
    const [r] = await deliver({ event_ids: [event.id] });
    assert.equal(r.status, 500, JSON.stringify(r.body));
    assert.equal(r.body.error, "processing_failed");
    assert.equal(JSON.stringify(r.body).includes(stale.id), false, "the reason stays in the database, not in the answer");
    const row = await eventRow(sql, event.id);
    assert.equal(row.outcome, "failed");
    assert.match(row.error!, /already billed through Stripe customer/);
    assert.equal(row.processed_at, null);
    assert.equal(row.attempts, 1);
    // The operations guide's query finds it.
    const errors = await sql<{ details: { error: string } }[]>`
      SELECT * FROM system_audit_logs
       WHERE created_at > NOW() - INTERVAL '24 hours' AND details->>'error' IS NOT NULL AND target = ${event.id}
       ORDER BY created_at DESC`;
    assert.equal(errors.length, 1);
    assert.match(errors[0].details.error, /already billed/);
    const [tied] = await sql`select stripe_customer_id from public.customers where tenant_id = ${tenantId}`;
    assert.equal(tied.stripe_customer_id, stale.id, "nothing half-written");
    // Stripe retries: still failing, counted; after the operator's fix, the same event applies.
    const [retry] = await deliver({ event_ids: [event.id] });
    assert.equal(retry.status, 500);
    assert.equal((await eventRow(sql, event.id)).attempts, 2);
    await sql`delete from public.customers where stripe_customer_id = ${stale.id}`;
    const [fixed] = await deliver({ event_ids: [event.id] });
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
    const done = await eventRow(sql, event.id);
    assert.equal(done.outcome, "applied");
    assert.equal(done.error, null);
    const [now] = await sql`select stripe_customer_id from public.customers where tenant_id = ${tenantId}`;
    assert.equal(now.stripe_customer_id, other.id);
  });
});

Deno.test("stripe-webhook: a subscription we cannot represent fails (5xx) without a half-written row", async () => {
  await withDb(async (sql) => {
    const t = await paidTenant(sql);
    // A weekly price: our subscriptions know month and year only.
    const weekly = await stripe().prices.create({ currency: "cad", unit_amount: 1000, recurring: { interval: "week" }, product_data: { name: "Hebdo" } });
    await fake().webhookEndpoint({ auto_deliver: false });
    let sub;
    try {
      sub = await stripe().subscriptions.create({ customer: t.customerId, items: [{ price: weekly.id }] });
    } finally {
      await fake().webhookEndpoint({ auto_deliver: true });
    }
    const r = await emitAndDeliver({ type: "customer.subscription.created", object_id: sub.id });
    assert.equal(r.status, 500, JSON.stringify(r.body));
    const row = await eventRow(sql, r.event.id);
    assert.equal(row.outcome, "failed");
    assert.match(row.error!, /interval week/);
    assert.equal(await subscriptionRow(sql, sub.id), undefined);
  });
});

Deno.test("stripe-webhook: events about a customer not tied to a tenant are parked, then replayed in order", async () => {
  await withDb(async (sql) => {
    const tenantId = await newTenant(sql);
    // A customer and subscription made outside our checkout (no tenant metadata).
    const customer = await stripe().customers.create({ email: "ailleurs@example.test" });
    await fake().webhookEndpoint({ auto_deliver: false });
    let sub;
    try {
      sub = await stripe().subscriptions.create({ customer: customer.id, items: [{ price: PRICES.monthly }] });
    } finally {
      await fake().webhookEndpoint({ auto_deliver: true });
    }
    const t0 = now() - 30;
    const created = await fake().emit({ type: "customer.subscription.created", object_id: sub.id, set: { status: "incomplete" }, created: t0 });
    const updated = await fake().emit({ type: "customer.subscription.updated", object_id: sub.id, created: t0 + 1 });
    const answers = await deliver({ event_ids: [updated.id, created.id] });
    assert.deepEqual(answers.map((a) => [a.status, a.body.outcome]), [[200, "parked"], [200, "parked"]]);
    assert.equal(await subscriptionRow(sql, sub.id), undefined);
    // Stripe redelivers a parked event: acknowledged, nothing more.
    const [again] = await deliver({ event_ids: [created.id] });
    assert.equal(again.body.outcome, "duplicate");
    // The customer's own metadata does not tie it (billing-checkout links the customers it makes)…
    await stripe().customers.update(customer.id, { metadata: { tenant_id: tenantId } });
    await settled();
    assert.equal(await subscriptionRow(sql, sub.id), undefined, "still parked");
    // …a completed checkout naming the tenant does: the parked events replay, oldest first.
    const checkout = await emitAndDeliver({
      type: "checkout.session.completed",
      object: { id: "cs_test_Parked" + crypto.randomUUID().replaceAll("-", ""), object: "checkout.session", mode: "subscription", customer: customer.id, subscription: sub.id, client_reference_id: tenantId, livemode: false },
      created: t0 + 2,
    });
    assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
    assert.ok(Number(checkout.body.replayed) >= 2, JSON.stringify(checkout.body));
    const row = await subscriptionRow(sql, sub.id);
    assert.equal(row.tenant_id, tenantId);
    assert.equal(row.status, "active", "replayed oldest first: the newest state wins");
    assert.equal(row.stripe_updated_at.getTime(), (t0 + 1) * 1000);
    for (const e of [created, updated]) assert.equal((await eventRow(sql, e.id)).outcome, "applied");
  });
});
