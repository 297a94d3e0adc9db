// billing-portal through the gateway: tenant admins' sessions, the real database (the tenant read as
// the user: RLS decides) and the runner's fake Stripe (the portal session it stored).
import assert from "node:assert/strict";
import { functionUrl } from "../../_helpers.ts";
import { APP_URL, asUserToken, billingAudit, fakeControl, fakeStripe, json, post, withTenant } from "../billing_helpers.ts";

const URL_ = functionUrl("billing-portal");

/** The portal session the fake stored. */
async function portalSession(id: string) {
  const res = await fetch(`${Deno.env.get("STRIPE_API_BASE")}/_fake/objects/${id}`);
  assert.equal(res.status, 200);
  return await res.json();
}

Deno.test("billing-portal: an admin of a tenant with a customer → 200, the portal session for that customer, back to APP_URL; audited without the URL", async () => {
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    const customer = await t.customer();
    const res = await post(URL_, { tenant_id: t.id }, asUserToken(admin.token));
    const out = await json(res);
    assert.equal(res.status, 200, JSON.stringify(out));
    assert.match(out.session_id, /^bps_/);
    assert.deepEqual([out.tenant_id, out.customer], [t.id, customer]);
    const session = await portalSession(out.session_id);
    assert.deepEqual([session.customer, session.return_url, session.locale, session.url], [customer, `${APP_URL}/billing`, "fr", out.url]);

    const audit = await billingAudit(t.sql, t.id);
    assert.deepEqual(audit.map((a) => [a.action, a.actor, a.target]), [["portal_session_created", admin.id, out.session_id]]);
    assert.deepEqual(audit[0].details, { stripe_customer_id: customer, livemode: false });
    assert.ok(!JSON.stringify(audit).includes(out.url));

    // An empty body is {} (the admin of one tenant needs nothing else); a return_url under APP_URL is kept.
    const empty = await fetch(URL_, { method: "POST", headers: asUserToken(admin.token) });
    const emptyOut = await json(empty);
    assert.deepEqual([empty.status, emptyOut.customer], [200, customer], JSON.stringify(emptyOut));
    const custom = await json(await post(URL_, { return_url: `${APP_URL}/parametres/facturation` }, asUserToken(admin.token)));
    assert.equal((await portalSession(custom.session_id)).return_url, `${APP_URL}/parametres/facturation`);
  });
});

Deno.test("billing-portal: a tenant without a Stripe customer → 409 no_customer, nothing asked of Stripe", async () => {
  await withTenant(async (t) => {
    const owner = await t.user("owner");
    const before = (await fakeControl().calls()).total;
    const res = await post(URL_, { tenant_id: t.id }, asUserToken(owner.token));
    const out = await json(res);
    assert.deepEqual([res.status, out.error], [409, "no_customer"]);
    assert.match(out.message, /billing-checkout/);
    assert.equal((await fakeControl().calls()).total, before);
    assert.deepEqual(await billingAudit(t.sql, t.id), []);
  });
});

Deno.test("billing-portal: member 403, another tenant's admin 404, bad input 400 (return_url outside APP_URL, unknown field)", async () => {
  await withTenant(async (t) => {
    await t.customer();
    const member = await t.user("member");
    const admin = await t.user("admin");
    await withTenant(async (other) => {
      const outsider = await other.user("admin");
      const before = (await fakeControl().calls()).total;
      const cases: [unknown, string, number, string][] = [
        [{ tenant_id: t.id }, member.token, 403, "forbidden"],
        [{ tenant_id: t.id }, outsider.token, 404, "not_found"],
        [{ tenant_id: t.id, return_url: "https://evil.example.com/" }, admin.token, 400, "bad_request"],
        [{ tenant_id: t.id, return_url: "/billing" }, admin.token, 400, "bad_request"],
        [{ tenant_id: t.id, flow: "cancel" }, admin.token, 400, "bad_request"],
        ["[]", admin.token, 400, "bad_request"],
        ["{", admin.token, 400, "invalid_json"],
      ];
      for (const [body, token, status, error] of cases) {
        const res = await post(URL_, body, asUserToken(token));
        const out = await json(res);
        assert.deepEqual([res.status, out.error], [status, error], `${JSON.stringify(body)} → ${JSON.stringify(out)}`);
      }
      assert.equal((await fakeControl().calls()).total, before, "no Stripe call");
    });
    assert.deepEqual(await billingAudit(t.sql, t.id), []);
  });
});

Deno.test("billing-portal: Stripe failing → 502, audited as portal_session_failed with details.error; a customer gone from Stripe → 409", async () => {
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    await t.customer();
    // Three 500s: the first try and the client's two retries.
    await fakeControl().failNext(3, { status: 500, route: "POST /v1/billing_portal/sessions" });
    const res = await post(URL_, { tenant_id: t.id }, asUserToken(admin.token));
    const out = await json(res);
    assert.deepEqual([res.status, out.error], [502, "provider_unavailable"], JSON.stringify(out));
    const audit = await billingAudit(t.sql, t.id);
    assert.deepEqual(audit.map((a) => a.action), ["portal_session_failed"]);
    assert.match(audit[0].details.error, /^StripeAPIError/);
  });
  await withTenant(async (t) => {
    const admin = await t.user("admin");
    const gone = await t.customer();
    await fakeStripe().customers.del(gone);
    await fakeControl().remove(gone);
    const res = await post(URL_, { tenant_id: t.id }, asUserToken(admin.token));
    const out = await json(res);
    assert.deepEqual([res.status, out.error], [409, "customer_missing"], JSON.stringify(out));
  });
});
