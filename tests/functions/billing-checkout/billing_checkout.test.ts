// billing-checkout through the gateway: tenant admins' sessions (ES256, minted as `npm run stack --
// token` does), the real database (the tenant read as the user: RLS decides), and the runner's fake
// Stripe, whose stored Checkout Session, line items and customers show what Stripe received.
import assert from "node:assert/strict";
import { TEST_CARDS } from "../../../scripts/fakes/stripe-control.ts";
import type { Stripe } from "../../../supabase/functions/_shared/stripe/client.ts";
import { env, functionUrl, mintJwt } from "../../_helpers.ts";
import {
  APP_URL,
  asUserToken,
  billingAudit,
  callsTo,
  fakeControl,
  fakeCustomersOf,
  fakeStripe,
  fixtureSettings,
  json,
  post,
  withTenant,
} from "../billing_helpers.ts";

const URL_ = functionUrl("billing-checkout");
const PRICES = {
  monthly: fixtureSettings.STRIPE_PRICE_MONTHLY,
  annual: fixtureSettings.STRIPE_PRICE_ANNUAL,
  addonMonthly: fixtureSettings.STRIPE_PRICE_ADDON_SITE_MONTHLY,
  addonAnnual: fixtureSettings.STRIPE_PRICE_ADDON_SITE_ANNUAL,
};

async function lineItemsOf(sessionId: string): Promise<[string, number][]> {
  const items = await fakeStripe().checkout.sessions.listLineItems(sessionId, { limit: 100 });
  return items.data.map((i) => [i.price!.id, i.quantity!] as [string, number]).sort();
}

Deno.test("billing-checkout: an admin without a customer → 200; the Checkout Session as Stripe received it; customer created once and linked; audited without the URL", async () => {
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    const customersBefore = await callsTo("POST /v1/customers");
    const res = await post(URL_, { tenant_id: t.id, plan: "monthly", additional_sites: 2 }, asUserToken(admin.token));
    const out = await json(res);
    assert.equal(res.status, 200, JSON.stringify(out));
    assert.match(out.session_id, /^cs_test_/);
    assert.match(out.customer, /^cus_/);
    assert.deepEqual([out.tenant_id, out.plan, out.additional_sites], [t.id, "monthly", 2]);
    assert.ok(out.url.startsWith(Deno.env.get("STRIPE_API_BASE")!), "the session's URL (the fake's Checkout page)");

    // What the fake received and stored, read back through the SDK.
    const session = await fakeStripe().checkout.sessions.retrieve(out.session_id);
    assert.equal(session.mode, "subscription");
    assert.equal(session.customer, out.customer);
    assert.equal(session.client_reference_id, t.id);
    assert.deepEqual(session.metadata, { tenant_id: t.id, plan: "monthly", additional_sites: "2" });
    assert.equal(session.automatic_tax.enabled, true);
    assert.equal(session.billing_address_collection, "required");
    assert.equal(session.tax_id_collection?.enabled, true);
    assert.equal(session.locale, "fr");
    assert.equal(session.success_url, `${APP_URL}/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}`);
    assert.equal(session.cancel_url, `${APP_URL}/billing?checkout=canceled`);
    assert.deepEqual(await lineItemsOf(out.session_id), [[PRICES.monthly, 1], [PRICES.addonMonthly, 2]].sort());

    // The customer: one, with the tenant in its metadata, and our customers row.
    const customers = await fakeCustomersOf(t.id);
    assert.deepEqual(customers.map((c) => c.id), [out.customer]);
    assert.equal(customers[0].name, t.name);
    assert.deepEqual(customers[0].preferred_locales, ["fr"]);
    assert.equal(await callsTo("POST /v1/customers"), customersBefore + 1);
    const rows = await t.sql`select stripe_customer_id from public.customers where tenant_id = ${t.id}`;
    assert.deepEqual(rows.map((r) => r.stripe_customer_id), [out.customer]);

    // Audit: the link, then the session; never its URL.
    const audit = await billingAudit(t.sql, t.id);
    assert.deepEqual(audit.map((a) => [a.action, a.actor]), [["customer_linked", admin.id], ["checkout_session_created", admin.id]]);
    const created = audit[1];
    assert.equal(created.target, out.session_id);
    assert.deepEqual(
      { ...created.details, expires_at: undefined },
      {
        plan: "monthly",
        interval: "month",
        additional_sites: 2,
        prices: [PRICES.monthly, PRICES.addonMonthly],
        stripe_customer_id: out.customer,
        customer_created: true,
        livemode: false,
        expires_at: undefined,
      },
    );
    assert.ok(!JSON.stringify(audit).includes(out.url), "the Checkout URL is not in the audit trail");

    // Paying it with the test card: the address and name collected in Checkout are saved on the
    // reused customer (customer_update address/name auto: what automatic tax needs), and the
    // subscription carries the tenant (subscription_data.metadata).
    const address = { line1: "100, rue Fictive", city: "Montréal", state: "QC", postal_code: "H1X 0A1", country: "CA" };
    const paid = await fakeControl().completeCheckout(out.session_id, { card: TEST_CARDS.success, name: "Construction Test inc.", address });
    assert.equal(paid.outcome, "succeeded");
    const customer = await fakeStripe().customers.retrieve(out.customer) as Stripe.Customer;
    assert.deepEqual([customer.name, customer.address?.postal_code, customer.address?.state], ["Construction Test inc.", "H1X 0A1", "QC"]);
    const subscription = await fakeStripe().subscriptions.retrieve(paid.session.subscription);
    assert.equal(subscription.metadata.tenant_id, t.id);
    assert.equal(subscription.customer, out.customer);
    assert.ok(subscription.automatic_tax.enabled);
  });
});

Deno.test("billing-checkout: annual plan → the annual prices only (never a monthly add-on); 0 add-ons → the plan alone", async () => {
  await withTenant(async (t) => {
    const owner = await t.user("owner");
    const annual = await json(await post(URL_, { tenant_id: t.id, plan: "annual", additional_sites: 3 }, asUserToken(owner.token)));
    assert.deepEqual(await lineItemsOf(annual.session_id), [[PRICES.annual, 1], [PRICES.addonAnnual, 3]].sort());
    const alone = await json(await post(URL_, { tenant_id: t.id, plan: "annual" }, asUserToken(owner.token)));
    assert.deepEqual(await lineItemsOf(alone.session_id), [[PRICES.annual, 1]]);
    assert.equal(alone.additional_sites, 0);
    const monthly = await json(await post(URL_, { tenant_id: t.id, plan: "monthly", additional_sites: 0 }, asUserToken(owner.token)));
    assert.deepEqual(await lineItemsOf(monthly.session_id), [[PRICES.monthly, 1]]);
    assert.equal(new Set([annual.customer, alone.customer, monthly.customer]).size, 1, "one customer for the tenant, reused");
  });
});

Deno.test("billing-checkout: the tenant's customer is reused (no customer created); two first checkouts at once get one customer", async () => {
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    const existing = await t.customer();
    const before = await callsTo("POST /v1/customers");
    const out = await json(await post(URL_, { tenant_id: t.id, plan: "monthly" }, asUserToken(admin.token)));
    assert.equal(out.customer, existing);
    assert.equal((await fakeStripe().checkout.sessions.retrieve(out.session_id)).customer, existing);
    assert.equal(await callsTo("POST /v1/customers"), before, "no customer created");
    assert.deepEqual((await billingAudit(t.sql, t.id)).map((a) => a.action), ["checkout_session_created"]);
  });
  await withTenant(async (t) => {
    const [a, b] = [await t.user("admin"), await t.user("owner")];
    const answers = await Promise.all([a, b, a].map((u) => post(URL_, { plan: "annual", additional_sites: 1 }, asUserToken(u.token)).then(json)));
    assert.deepEqual(answers.map((o) => o.error), [undefined, undefined, undefined], JSON.stringify(answers));
    assert.equal(new Set(answers.map((o) => o.customer)).size, 1, "every session for the same customer");
    assert.deepEqual((await fakeCustomersOf(t.id)).map((c) => c.id), [answers[0].customer], "one customer in Stripe");
    const rows = await t.sql`select stripe_customer_id from public.customers where tenant_id = ${t.id}`;
    assert.deepEqual(rows.map((r) => r.stripe_customer_id), [answers[0].customer]);
    const linked = (await billingAudit(t.sql, t.id)).filter((r) => r.action === "customer_linked");
    assert.equal(linked.length, 1, "linked once");
  });
});

Deno.test("billing-checkout: who may ask — member 403, another tenant's admin 404, no tenant 404, legacy service key 403, anon/publishable/no token 401; nothing reaches Stripe", async () => {
  await withTenant(async (t) => {
    const member = await t.user("member");
    const nobody = await t.user(null);
    let outsider = "";
    await withTenant(async (other) => {
      outsider = (await other.user("admin")).token;
      const before = await fakeControl().calls();
      const cases: [Record<string, unknown>, Record<string, string>, number, string][] = [
        [{ tenant_id: t.id, plan: "monthly" }, asUserToken(member.token), 403, "forbidden"],
        [{ plan: "monthly" }, asUserToken(member.token), 403, "forbidden"],
        [{ tenant_id: t.id, plan: "monthly" }, asUserToken(outsider), 404, "not_found"],
        [{ tenant_id: t.id, plan: "monthly" }, asUserToken(nobody.token), 404, "not_found"],
        [{ plan: "monthly" }, asUserToken(nobody.token), 404, "not_found"],
        [{ tenant_id: t.id, plan: "monthly" }, { authorization: `Bearer ${env.serviceRoleKey}` }, 403, "forbidden"],
        [{ tenant_id: t.id, plan: "monthly" }, { authorization: `Bearer ${env.anonKey}`, apikey: env.anonKey }, 401, "unauthorized"],
      ];
      for (const [body, headers, status, error] of cases) {
        const res = await post(URL_, body, headers);
        const out = await json(res);
        assert.deepEqual([res.status, out.error], [status, error], `${JSON.stringify(body)} ${JSON.stringify(out)}`);
      }
      // Not a JWT at all (publishable or secret key, none): refused by the gateway (verify_jwt).
      const notJwt: Record<string, string>[] = [{ apikey: env.publishableKey }, { apikey: env.secretKey, authorization: `Bearer ${env.secretKey}` }, {}];
      for (const headers of notJwt) {
        const res = await post(URL_, { tenant_id: t.id, plan: "monthly" }, headers);
        await res.body?.cancel();
        assert.equal(res.status, 401);
      }
      // An expired session, or one signed with another key: nobody.
      const forged = await mintJwt({ sub: member.id, role: "authenticated", aud: "authenticated" }, { secret: "another-secret-of-32-characters!!" });
      assert.equal((await post(URL_, { tenant_id: t.id, plan: "monthly" }, { authorization: `Bearer ${forged}` })).status, 401);
      assert.deepEqual((await fakeControl().calls()).total, before.total, "no Stripe call");
    });
    const [{ n }] = await t.sql`select count(*)::int as n from public.customers where tenant_id = ${t.id}`;
    assert.equal(n, 0);
    assert.deepEqual(await billingAudit(t.sql, t.id), []);
  });
});

Deno.test("billing-checkout: bad input → 400/405/413/415 naming the field; URLs outside APP_URL refused (no open redirect); nothing reaches Stripe", async () => {
  await withTenant(async (t) => {
    const admin = asUserToken((await t.user("admin")).token);
    const before = (await fakeControl().calls()).total;
    const cases: [unknown, string | undefined][] = [
      [{ tenant_id: t.id }, "plan"],
      [{ tenant_id: t.id, plan: "weekly" }, "plan"],
      [{ tenant_id: t.id, plan: "monthly", additional_sites: -1 }, "additional_sites"],
      [{ tenant_id: t.id, plan: "monthly", additional_sites: 101 }, "additional_sites"],
      [{ tenant_id: t.id, plan: "monthly", additional_sites: 1.5 }, "additional_sites"],
      [{ tenant_id: t.id, plan: "monthly", additional_sites: "2" }, "additional_sites"],
      [{ tenant_id: "not-a-uuid", plan: "monthly" }, "tenant_id"],
      [{ tenant_id: t.id, plan: "monthly", coupon: "FREE" }, "coupon"],
      [{ tenant_id: t.id, plan: "monthly", success_url: "https://evil.example.com/billing" }, "success_url"],
      [{ tenant_id: t.id, plan: "monthly", success_url: "//evil.example.com/billing" }, "success_url"],
      [{ tenant_id: t.id, plan: "monthly", success_url: "javascript:alert(1)" }, "success_url"],
      [{ tenant_id: t.id, plan: "monthly", success_url: `${APP_URL}@evil.example.com/` }, "success_url"],
      [{ tenant_id: t.id, plan: "monthly", cancel_url: APP_URL.replace(/:(\d+)$/, (_, p) => `:${Number(p) + 1}`) }, "cancel_url"],
      [{ tenant_id: t.id, plan: "monthly", cancel_url: APP_URL.replace("http:", "https:") }, "cancel_url"],
      [{ tenant_id: t.id, plan: "monthly", cancel_url: "" }, "cancel_url"],
      [{ tenant_id: t.id, plan: "monthly", cancel_url: `${APP_URL}/${"x".repeat(2100)}` }, "cancel_url"],
      [[1, 2], undefined],
      ["null", undefined],
    ];
    for (const [body, field] of cases) {
      const res = await post(URL_, body, admin);
      const out = await json(res);
      assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 120)} → ${JSON.stringify(out)}`);
      assert.equal(out.error, "bad_request");
      assert.equal(out.field, field, JSON.stringify(out));
    }
    const malformed = await post(URL_, "{not json", admin);
    assert.deepEqual([malformed.status, (await json(malformed)).error], [400, "invalid_json"]);
    const form = await fetch(URL_, { method: "POST", headers: { ...admin, "content-type": "application/x-www-form-urlencoded" }, body: "plan=monthly" });
    assert.deepEqual([form.status, (await json(form)).error], [415, "unsupported_media_type"]);
    const big = await post(URL_, { tenant_id: t.id, plan: "monthly", pad: "x".repeat(9000) }, admin);
    assert.deepEqual([big.status, (await json(big)).error], [413, "payload_too_large"]);
    const get = await fetch(URL_, { headers: admin });
    assert.deepEqual([get.status, (await json(get)).error, get.headers.get("allow")], [405, "method_not_allowed", "POST"]);
    assert.equal((await fakeControl().calls()).total, before, "no Stripe call");
    assert.deepEqual(await billingAudit(t.sql, t.id), [], "nothing written");
  });
});

Deno.test("billing-checkout: URLs under APP_URL are sent as given (normalised), {CHECKOUT_SESSION_ID} kept", async () => {
  await withTenant(async (t) => {
    const admin = asUserToken((await t.user("admin")).token);
    const out = await json(await post(URL_, {
      tenant_id: t.id,
      plan: "monthly",
      success_url: `${APP_URL}/app/billing/{CHECKOUT_SESSION_ID}/merci?x=1&s={CHECKOUT_SESSION_ID}`,
      cancel_url: `${APP_URL}/app/../prix`,
    }, admin));
    const session = await fakeStripe().checkout.sessions.retrieve(out.session_id);
    assert.equal(session.success_url, `${APP_URL}/app/billing/{CHECKOUT_SESSION_ID}/merci?x=1&s={CHECKOUT_SESSION_ID}`);
    assert.equal(session.cancel_url, `${APP_URL}/prix`);
  });
});

Deno.test("billing-checkout: a tenant with a live subscription → 409 already_subscribed (the portal changes it); canceled → a new checkout", async () => {
  await withTenant(async (t) => {
    const admin = asUserToken((await t.user("admin")).token);
    await t.customer();
    await t.subscription("past_due");
    const res = await post(URL_, { tenant_id: t.id, plan: "monthly", additional_sites: 1 }, admin);
    const out = await json(res);
    assert.deepEqual([res.status, out.error, out.subscription_status], [409, "already_subscribed", "past_due"]);
    assert.match(out.message, /billing portal/);
    await t.sql`update public.subscriptions set status = 'canceled', stripe_updated_at = now() + interval '1 second' where tenant_id = ${t.id}`;
    assert.equal((await post(URL_, { tenant_id: t.id, plan: "monthly" }, admin).then((r) => r.status)), 200);
  });
});

Deno.test("billing-checkout: tenant_id may be left out by the admin of one tenant, not by the admin of two (400)", async () => {
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    const out = await json(await post(URL_, { plan: "monthly" }, asUserToken(admin.token)));
    assert.equal(out.tenant_id, t.id);
    await withTenant(async (other) => {
      await other.addMember(admin.id, "owner");
      const res = await post(URL_, { plan: "monthly" }, asUserToken(admin.token));
      const twice = await json(res);
      assert.deepEqual([res.status, twice.field], [400, "tenant_id"]);
      const explicit = await json(await post(URL_, { plan: "monthly", tenant_id: other.id }, asUserToken(admin.token)));
      assert.equal(explicit.tenant_id, other.id);
    });
  });
});

Deno.test("billing-checkout: Stripe rate limiting → 502 provider_unavailable, failures audited with details.error; a customer gone from Stripe → 409", async () => {
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    await fakeControl().rateLimit(1, { route: "POST /v1/checkout/sessions" });
    const res = await post(URL_, { tenant_id: t.id, plan: "monthly" }, asUserToken(admin.token));
    const out = await json(res);
    assert.deepEqual([res.status, out.error, out.stripe?.type], [502, "provider_unavailable", "StripeRateLimitError"], JSON.stringify(out));
    const audit = await billingAudit(t.sql, t.id);
    assert.deepEqual(audit.map((a) => a.action), ["customer_linked", "checkout_session_failed"]);
    assert.match(audit[1].details.error, /^StripeRateLimitError/);
    const [{ n }] = await t.sql`
      select count(*)::int as n from public.system_audit_logs
       where created_at > now() - interval '24 hours' and details ->> 'error' is not null and tenant_id = ${t.id}`;
    assert.equal(n, 1, "the operators' error query lists it");
    // The retry works, with the customer created the first time.
    const retry = await json(await post(URL_, { tenant_id: t.id, plan: "monthly" }, asUserToken(admin.token)));
    assert.equal(retry.customer, audit[0].target);
  });
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    await t.customer("cus_GoneFromStripe0001");
    const res = await post(URL_, { tenant_id: t.id, plan: "monthly" }, asUserToken(admin.token));
    const out = await json(res);
    assert.deepEqual([res.status, out.error], [409, "customer_missing"], JSON.stringify(out));
    assert.deepEqual((await billingAudit(t.sql, t.id)).map((a) => a.action), ["checkout_session_failed"]);
  });
});

Deno.test("billing-checkout: CORS preflight for the web app's origin only", async () => {
  const preflight = (origin: string) =>
    fetch(URL_, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" } });
  const ok = await preflight(new URL(APP_URL).origin);
  await ok.body?.cancel();
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), new URL(APP_URL).origin);
  assert.match(ok.headers.get("access-control-allow-headers") ?? "", /authorization/);
  const other = await preflight("https://evil.example.com");
  await other.body?.cancel();
  assert.equal(other.headers.get("access-control-allow-origin"), null);
});
