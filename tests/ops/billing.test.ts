// `npm run ops -- billing checkout-test | status` against the runner's stack: the real
// billing-checkout through the gateway (a minted admin session), the runner's fake Stripe paying the
// Checkout Session with the guide's test cards and posting its signed events to the real
// stripe-webhook, the real database. Each test removes the test tenants it made.
import assert from "node:assert/strict";
import { env, mintUserToken, withDb } from "../_helpers.ts";
import { fakeControl, fakeStripe, fixtureSettings as billingSettings } from "../functions/billing_helpers.ts";
import { hostedValues, ops, opsJson, removeTenant, STACK_TRACE, withEnvFile } from "./_ops.ts";

const SECRETS = [env.secretKey, env.serviceRoleKey, billingSettings.STRIPE_SECRET_KEY, billingSettings.STRIPE_WEBHOOK_SECRET];

function assertNoSecret(run: { stdout: string; stderr: string }) {
  for (const secret of SECRETS) {
    for (const part of secret.split(",")) {
      assert.ok(!run.stdout.includes(part) && !run.stderr.includes(part), "no secret in the output");
    }
  }
}

/** stderr of a usage error: the error, the usage line, the hint; exit 64; nothing on stdout. */
function assertUsage(run: { code: number; stdout: string; stderr: string }, command: string, error: RegExp) {
  assert.equal(run.code, 64, `exit 64 expected:\n${run.stderr}`);
  assert.equal(run.stdout, "");
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 3, `three lines (error, usage, hint):\n${run.stderr}`);
  assert.match(lines[0], new RegExp(`^ops ${command}: `));
  assert.match(lines[0], error);
  assert.match(lines[1], new RegExp(`^usage: npm run ops -- \\[--json\\] \\[--env-file <file>\\] ${command}`));
  assert.equal(lines[2], `hint: npm run ops -- ${command} --help`);
  assert.doesNotMatch(run.stderr, STACK_TRACE);
}

async function tenantCount(): Promise<number> {
  const [{ n }] = await withDb((sql) => sql`select count(*)::int as n from public.tenants`);
  return n;
}

async function subscriptionsOf(tenantId: string) {
  return await withDb(async (sql) => [
    ...await sql<{ stripe_subscription_id: string; status: string; plan_interval: string }[]>`
      select stripe_subscription_id, status, plan_interval from public.subscriptions where tenant_id = ${tenantId}`,
  ]);
}

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

Deno.test("ops billing checkout-test (4242, --json): a new test tenant and admin, billing-checkout, paid, the webhook's rows as bought", async () => {
  const run = await opsJson(["billing", "checkout-test", "--additional-sites", "1"]);
  const j = run.json as Json;
  try {
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.equal(run.stderr, "");
    assertNoSecret(run);
    assert.deepEqual(Object.keys(j), [
      "ok", "target", "complete", "tenant", "admin", "plan", "additional_sites", "card", "checkout", "payment", "webhook",
      "customer", "subscriptions", "invoices", "billing_events", "entitlement", "checks",
    ]);
    assert.equal(j.ok, true);
    assert.deepEqual(j.target, { kind: "local" });
    assert.equal(j.complete, true);
    assert.ok(j.tenant.created, "a test tenant");
    assert.match(j.tenant.name, /^Test checkout \(npm run ops\) #[0-9a-f]{8}$/);
    assert.equal(j.admin.email, `checkout-test-${j.tenant.name.slice(-8)}@example.test`);
    assert.deepEqual(Object.keys(j.admin), ["user_id", "email", "role", "created", "token"]);
    assert.equal(j.admin.role, "admin");
    assert.equal(j.admin.created, true);
    assert.equal(j.admin.token, "minted");
    assert.match(j.admin.email, /^checkout-test-[0-9a-f]{8}@example\.test$/);
    assert.equal(j.plan, "monthly");
    assert.equal(j.additional_sites, 1);
    assert.deepEqual(j.card, { number: "4242424242424242", expect: "succeeds" });
    assert.equal(j.checkout.http_status, 200);
    assert.match(j.checkout.session_id, /^cs_test_/);
    assert.match(j.checkout.customer, /^cus_/);
    assert.deepEqual(j.payment.steps.map((s: Json) => s.outcome), ["succeeded"]);
    assert.equal(j.payment.three_d_secure, false);
    assert.equal(j.payment.decline, null);
    assert.equal(j.webhook.landed, true);
    assert.equal(j.webhook.failed, 0);

    // The rows, as --json shows them and as the database holds them.
    assert.equal(j.customer.stripe_customer_id, j.checkout.customer);
    assert.equal(j.subscriptions.length, 1);
    const sub = j.subscriptions[0];
    assert.equal(sub.status, "active");
    assert.equal(sub.plan_interval, "month");
    assert.equal(sub.addon_sites, 1);
    assert.deepEqual(sub.items.map((i: Json) => [i.kind, i.stripe_price_id, i.quantity]), [
      ["plan", billingSettings.STRIPE_PRICE_MONTHLY, 1],
      ["addon_site", billingSettings.STRIPE_PRICE_ADDON_SITE_MONTHLY, 1],
    ]);
    assert.equal(j.invoices.length, 1);
    assert.equal(j.invoices[0].status, "paid");
    assert.equal(j.invoices[0].stripe_subscription_id, sub.stripe_subscription_id);
    assert.ok(j.invoices[0].tax_cents > 0, "automatic tax");
    const types = j.billing_events.map((e: Json) => e.type);
    for (const t of ["customer.subscription.created", "invoice.paid", "customer.subscription.updated", "checkout.session.completed"]) {
      assert.ok(types.includes(t), `${t} in ${types}`);
    }
    assert.ok(j.billing_events.every((e: Json) => e.outcome === "applied"), JSON.stringify(j.billing_events));
    assert.equal(j.entitlement.allowed_sites, 2);
    assert.equal(j.entitlement.additional_sites, 1);
    assert.ok(j.checks.length >= 6 && j.checks.every((c: Json) => c.ok), JSON.stringify(j.checks));
    assert.deepEqual(await subscriptionsOf(j.tenant.id), [{ stripe_subscription_id: sub.stripe_subscription_id, status: "active", plan_interval: "month" }]);
    const [member] = await withDb((sql) => sql`select user_id::text, role from public.tenant_members where tenant_id = ${j.tenant.id}`);
    assert.deepEqual({ ...member }, { user_id: j.admin.user_id, role: "admin" });
    // The subscription is real in the (fake) Stripe: the tenant's, as billing-checkout set it.
    assert.equal((await fakeStripe().subscriptions.retrieve(sub.stripe_subscription_id)).metadata.tenant_id, j.tenant.id);
  } finally {
    if (j?.tenant?.id) await removeTenant(j.tenant.id);
  }
});

Deno.test("ops billing checkout-test (4242): readable sections, the checks all ok, exit 0", async () => {
  const run = await ops(["billing", "checkout-test", "--plan", "annual"]);
  const tenant = /^Tenant id\s+([0-9a-f-]{36})$/m.exec(run.stdout)?.[1];
  try {
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.equal(run.stderr, "");
    assert.ok(tenant, run.stdout);
    assert.match(run.stdout, /^Stripe checkout test$/m);
    assert.match(run.stdout, /^Bought\s+annual plan \+ 0 additional sites$/m);
    assert.match(run.stdout, /^Tenant\s+Test checkout \(npm run ops\) #[0-9a-f]{8} \(created: a test tenant\)$/m);
    assert.match(run.stdout, /^Admin\s+checkout-test-[0-9a-f]{8}@example\.test \(admin, created; session token minted\)$/m);
    assert.match(run.stdout, /^billing-checkout\s+HTTP 200 · customer cus_\w+$/m);
    assert.match(run.stdout, /^Session\s+cs_test_\w+$/m);
    assert.match(run.stdout, /^Card\s+4242 4242 4242 4242 \(Visa, succeeds\) → complete: succeeded$/m);
    assert.match(run.stdout, /^stripe-webhook\s+landed in [\d.]+ s: \d+ events$/m);
    assert.match(run.stdout, /^sub_\w+\s+active\s+year\s+\d{4}-\d\d-\d\d → \d{4}-\d\d-\d\d\s+plan ×1\s+0$/m);
    assert.match(run.stdout, /^in_\w+\s+paid\s+[\d.]+ CAD/m);
    assert.match(run.stdout, /^checkout\.session\.completed\s+applied/m);
    assert.match(run.stdout, /^Sites\s+1 allowed \(1 included \+ 0 add-on\) · 0 used · 1 available$/m);
    assert.doesNotMatch(run.stdout, /NOT OK/);
  } finally {
    if (tenant) await removeTenant(tenant);
  }
});

Deno.test("ops billing checkout-test --card declined: the decline shown, exit 1, nothing subscribed", async () => {
  const run = await opsJson(["billing", "checkout-test", "--card", "4000 0000 0000 0002"]);
  const j = run.json as Json;
  try {
    assert.equal(run.code, 1, `${run.stderr}\n${run.stdout}`);
    assert.equal(
      run.stderr,
      "ops billing checkout-test: the card was declined (card_declined/generic_decline: Your card was declined.): nothing subscribed\n",
    );
    assert.equal(j.ok, false);
    assert.deepEqual(j.card, { number: "4000000000000002", expect: "declined" });
    assert.equal(j.payment.outcome, "declined");
    assert.deepEqual(j.payment.decline, { type: "card_error", code: "card_declined", decline_code: "generic_decline", message: "Your card was declined." });
    assert.equal(j.webhook, null);
    assert.deepEqual(j.subscriptions, []);
    assert.deepEqual(j.invoices, []);
    assert.equal(j.customer.stripe_customer_id, j.checkout.customer, "billing-checkout linked the tenant's customer");
    assert.equal(j.entitlement.allowed_sites, 1);
    assert.equal(j.entitlement.entitled, false);
    assert.deepEqual(await subscriptionsOf(j.tenant.id), []);
    // Stripe agrees: the session is still open, the customer has no subscription.
    assert.equal((await fakeStripe().checkout.sessions.retrieve(j.checkout.session_id)).status, "open");
    assert.equal((await fakeStripe().subscriptions.list({ customer: j.checkout.customer, status: "all" })).data.length, 0);
  } finally {
    if (j?.tenant?.id) await removeTenant(j.tenant.id);
  }
  const human = await ops(["billing", "checkout-test", "--card", "declined"]);
  const tenant = /^Tenant id\s+([0-9a-f-]{36})$/m.exec(human.stdout)?.[1];
  try {
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^Card\s+4000 0000 0000 0002 \(Visa, always declined\) → complete: HTTP 402 card_declined\/generic_decline: Your card was declined\.$/m);
    assert.match(human.stdout, /^subscriptions\n\(none\)$/m);
    assert.match(human.stdout, /^subscriptions row\s+none\s+none\s+ok$/m);
  } finally {
    if (tenant) await removeTenant(tenant);
  }
});

Deno.test("ops billing checkout-test --card 3ds: 3-D Secure required, authenticated, then paid; the action-required event applied", async () => {
  const run = await opsJson(["billing", "checkout-test", "--card", "3ds", "--plan", "annual", "--additional-sites", "2"]);
  const j = run.json as Json;
  try {
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.deepEqual(j.card, { number: "4000002500003155", expect: "3ds" });
    assert.equal(j.payment.three_d_secure, true);
    assert.deepEqual(j.payment.steps.map((s: Json) => [s.step, s.outcome]), [["complete", "requires_action"], ["authenticate", "succeeded"]]);
    assert.ok(j.billing_events.some((e: Json) => e.type === "invoice.payment_action_required"), "the 3-D Secure event reached the webhook");
    const sub = j.subscriptions[0];
    assert.deepEqual([sub.status, sub.plan_interval, sub.addon_sites], ["active", "year", 2]);
    assert.deepEqual(sub.items.map((i: Json) => i.stripe_price_id), [billingSettings.STRIPE_PRICE_ANNUAL, billingSettings.STRIPE_PRICE_ADDON_SITE_ANNUAL]);
    assert.equal(j.invoices[0].status, "paid");
    assert.equal(j.entitlement.allowed_sites, 3);
  } finally {
    if (j?.tenant?.id) await removeTenant(j.tenant.id);
  }
});

Deno.test("ops billing checkout-test --tenant: buys as that tenant's owner (no tenant or user created); a subscribed tenant → billing-checkout's 409, exit 1", async () => {
  const tenantId = await withDb(async (sql) => {
    const [{ id }] = await sql`insert into public.tenants (name) values (${`ops billing --tenant ${crypto.randomUUID()}`}) returning id::text`;
    const user = crypto.randomUUID();
    await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
              values (${user}, 'authenticated', 'authenticated', ${`owner-${user}@example.test`}, now(),
                      '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
    await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${id}, ${user}, 'owner')`;
    return id as string;
  });
  try {
    const before = await tenantCount();
    const run = await opsJson(["billing", "checkout-test", "--tenant", tenantId]);
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    const j = run.json as Json;
    assert.equal(j.tenant.id, tenantId);
    assert.equal(j.tenant.created, false);
    assert.equal(j.admin.role, "owner");
    assert.equal(j.admin.created, false);
    assert.equal(await tenantCount(), before, "no tenant created");
    assert.equal((await subscriptionsOf(tenantId))[0]?.status, "active");

    const again = await opsJson(["billing", "checkout-test", "--tenant", tenantId]);
    assert.equal(again.code, 1);
    assert.equal((again.json as Json).checkout.http_status, 409);
    assert.equal((again.json as Json).checkout.error, "already_subscribed");
    assert.equal(again.json.payment, null);
    assert.match(again.stderr, /^ops billing checkout-test: billing-checkout refused: HTTP 409 already_subscribed: /);
  } finally {
    await removeTenant(tenantId);
  }
  const none = await ops(["billing", "checkout-test", "--tenant", "3a000000-0000-4000-8000-00000000ffff"]);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, "ops billing checkout-test: no tenant 3a000000-0000-4000-8000-00000000ffff in the database\n");
});

Deno.test("ops billing checkout-test --no-complete: the Checkout URL to pay in a browser; the session stays open, nothing subscribed", async () => {
  const run = await opsJson(["billing", "checkout-test", "--no-complete", "--additional-sites", "3"]);
  const j = run.json as Json;
  try {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(j.complete, false);
    assert.equal(j.card, null);
    assert.equal(j.payment, null);
    const url = new URL(j.checkout.url);
    assert.equal(url.origin, new URL(Deno.env.get("STRIPE_API_BASE")!).origin, "the fake's Checkout page");
    assert.ok(url.pathname.endsWith(j.checkout.session_id));
    const session = await fakeStripe().checkout.sessions.retrieve(j.checkout.session_id, { expand: ["line_items"] });
    assert.equal(session.status, "open");
    assert.deepEqual(session.line_items!.data.map((l) => l.quantity), [1, 3]);
    assert.deepEqual(await subscriptionsOf(j.tenant.id), []);
    const human = await ops(["billing", "checkout-test", "--no-complete"]);
    const other = /^Tenant id\s+([0-9a-f-]{36})$/m.exec(human.stdout)?.[1];
    if (other) await removeTenant(other);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^Checkout URL\s+http:\/\/127\.0\.0\.1:\d+\/_fake\/checkout\/pay\/cs_test_\w+$/m);
    assert.match(human.stdout, /^Next\s+open the URL in a browser and pay .*billing status --tenant [0-9a-f-]{36}$/m);
  } finally {
    if (j?.tenant?.id) await removeTenant(j.tenant.id);
  }
});

Deno.test("ops billing checkout-test: bad arguments → the usage line, exit 64, nothing created", async () => {
  const before = await tenantCount();
  assertUsage(await ops(["billing", "checkout-test", "--card", "4111111111111111"]), "billing checkout-test", /--card <card>.*must be one of the guide's Stripe test cards/);
  assertUsage(await ops(["billing", "checkout-test", "--plan", "weekly"]), "billing checkout-test", /must be one of monthly, annual/);
  assertUsage(await ops(["billing", "checkout-test", "--additional-sites", "101"]), "billing checkout-test", /must be a whole number, 0 to 100/);
  assertUsage(await ops(["billing", "checkout-test", "--additional-sites", "-1"]), "billing checkout-test", /--additional-sites/);
  assertUsage(await ops(["billing", "checkout-test", "--tenant", "boreal"]), "billing checkout-test", /not a UUID/);
  assertUsage(await ops(["billing", "checkout-test", "--no-complete", "--card", "4242"]), "billing checkout-test", /--card is for paying/);
  assertUsage(await ops(["billing", "checkout-test", "--wait", "999"]), "billing checkout-test", /0 to 300/);
  assertUsage(await ops(["billing", "checkout-test", "extra"]), "billing checkout-test", /too many arguments for 'checkout-test'/);
  assertUsage(await ops(["billing", "status", "extra"]), "billing status", /too many arguments for 'status'/);
  assertUsage(await ops(["billing"]), "billing", /a command is required: checkout-test, status, sync$/);
  assertUsage(await ops(["billing", "status", "--tenant", "x"]), "billing status", /not a UUID/);
  assert.equal(await tenantCount(), before, "nothing created");
});

Deno.test("ops billing checkout-test --env-file (hosted: real Stripe) → refused before anything is created: why, and --no-complete; exit 64", async () => {
  const before = await tenantCount();
  const stripeCalls = (await fakeControl().calls()).total;
  const check = (run: { code: number; stdout: string; stderr: string }, file: string, why: RegExp) => {
    assert.equal(run.code, 64, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, new RegExp(`^ops billing checkout-test: cannot pay with a test card against ${file}: `));
    assert.match(run.stderr, why);
    assert.match(run.stderr, /Nothing was created\./);
    assert.match(run.stderr, /POST \/_fake\/checkout\/sessions\/<id>\/complete\), which the real Stripe API does not have/);
    assert.match(run.stderr, new RegExp(`^ {4}npm run ops -- --env-file ${file} billing checkout-test --tenant <uuid> --no-complete$`, "m"));
    assert.match(run.stderr, /OPS_USER_TOKEN/);
    assert.match(run.stderr, new RegExp(`^ {4}npm run ops -- --env-file ${file} billing status --tenant <uuid>$`, "m"));
    assert.doesNotMatch(run.stderr, STACK_TRACE);
    assertNoSecret(run);
  };
  // A hosted project's env file: no STRIPE_API_BASE (its functions call api.stripe.com).
  const hosted = { ...hostedValues(), STRIPE_SECRET_KEY: billingSettings.STRIPE_SECRET_KEY };
  await withEnvFile(hosted, async (file) => {
    const run = await ops(["--env-file", file, "billing", "checkout-test"]);
    check(run, file, /STRIPE_API_BASE is not set there: its functions call the real Stripe API/);
    assert.match(run.stderr, /pay with 4242 4242 4242 4242, any future date, any CVC/);
    const json = await ops(["--json", "--env-file", file, "billing", "checkout-test", "--card", "3ds"]);
    check(json, file, /STRIPE_API_BASE is not set/);
  });
  // A non-loopback STRIPE_API_BASE (what the functions themselves refuse), and a live key: a real card.
  const liveKey = ["sk", "live", "51" + "Q".repeat(30)].join("_");
  await withEnvFile({ ...hosted, STRIPE_API_BASE: "https://api.stripe.com", STRIPE_SECRET_KEY: liveKey }, async (file) => {
    const run = await ops(["--env-file", file, "billing", "checkout-test"]);
    check(run, file, /STRIPE_API_BASE there is not a local fake Stripe \(it must point at a local fake on a loopback host/);
    assert.match(run.stderr, /a REAL card: STRIPE_SECRET_KEY there is a live key/);
    assert.ok(!run.stderr.includes(liveKey), "never the key");
  });
  // Loopback Stripe but the functions of a hosted project: they do not call the local fake.
  await withEnvFile({ ...hosted, SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co", STRIPE_API_BASE: Deno.env.get("STRIPE_API_BASE")! }, async (file) => {
    check(await ops(["--env-file", file, "billing", "checkout-test"]), file, /SUPABASE_URL there is not a local stack/);
  });
  assert.equal(await tenantCount(), before, "no tenant created");
  assert.equal((await fakeControl().calls()).total, stripeCalls, "no Stripe call");
});

Deno.test("ops billing checkout-test --env-file --no-complete: the admin's session from OPS_USER_TOKEN (no signing key there), the URL", async () => {
  const tenantId = await withDb(async (sql) => {
    const [{ id }] = await sql`insert into public.tenants (name) values (${`ops billing hosted ${crypto.randomUUID()}`}) returning id::text`;
    return id as string;
  });
  const user = crypto.randomUUID();
  await withDb(async (sql) => {
    await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
              values (${user}, 'authenticated', 'authenticated', ${`admin-${user}@example.test`}, now(),
                      '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
    await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenantId}, ${user}, 'admin')`;
  });
  try {
    const { SUPABASE_DB_URL: _db, ...noDb } = hostedValues();
    await withEnvFile(noDb, async (file) => {
      const refused = await ops(["--env-file", file, "billing", "checkout-test", "--no-complete", "--tenant", tenantId]);
      assert.equal(refused.code, 64, refused.stderr);
      assert.match(refused.stderr, /cannot mint a user session token: that needs the local stack.s signing key \(LOCAL_STACK_KEYS_FILE\).*Export OPS_USER_TOKEN/);

      const token = await mintUserToken(user);
      const run = await opsJson(["--env-file", file, "billing", "checkout-test", "--no-complete", "--tenant", tenantId], { env: { OPS_USER_TOKEN: token } });
      assert.equal(run.code, 0, run.stderr);
      assert.ok(!run.stdout.includes(token) && !run.stderr.includes(token), "the token is never printed");
      const j = run.json as Json;
      assert.deepEqual(j.target, { kind: "env-file", files: [file] });
      assert.deepEqual(j.admin, { user_id: user, email: null, role: null, created: false, token: "OPS_USER_TOKEN" });
      assert.equal(j.tenant.id, tenantId);
      assert.match(j.checkout.url, /\/_fake\/checkout\/pay\/cs_test_/);
      assert.equal(j.customer, null, "no database read without SUPABASE_DB_URL");

      const bad = await ops(["--env-file", file, "billing", "checkout-test", "--no-complete"], { env: { OPS_USER_TOKEN: "not a token" } });
      assert.equal(bad.code, 64);
      assert.match(bad.stderr, /OPS_USER_TOKEN must be a session access token/);
      assert.ok(!bad.stderr.includes("not a token"));
    });
  } finally {
    await removeTenant(tenantId);
  }
});

Deno.test("ops billing status: every tenant's billing and the webhook ledger (--json shape); --tenant in detail", async () => {
  const paid = await opsJson(["billing", "checkout-test", "--additional-sites", "2"]);
  const tenant = (paid.json as Json).tenant?.id;
  try {
    assert.equal(paid.code, 0, paid.stderr);
    const run = await opsJson(["billing", "status"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    const j = run.json as Json;
    assert.deepEqual(Object.keys(j), ["ok", "target", "tenants", "webhooks", "sync"]);
    // billing-sync's last full run, as its drift report in the audit trail says (the billing-sync tests ran before).
    assert.deepEqual(Object.keys(j.sync), ["last_run", "last_complete_at"]);
    const [lastSync] = await withDb((sql) =>
      sql`select created_at, details ->> 'status' as status from public.system_audit_logs
           where area = 'billing' and action = 'billing_sync' order by created_at desc, id desc limit 1`
    );
    if (lastSync) {
      assert.equal(j.sync.last_run.status, lastSync.status);
      assert.equal(new Date(j.sync.last_run.at).getTime(), lastSync.created_at.getTime());
    } else {
      assert.equal(j.sync.last_run, null);
    }
    assert.deepEqual(Object.keys(j.webhooks), [
      "events_24h", "failed_24h", "failing_now", "parked", "waiting", "last_received_at", "failure_rate_24h", "threshold", "recent_failures",
    ]);
    assert.equal(j.webhooks.threshold, 0.01);
    const mine = j.tenants.find((t: Json) => t.tenant_id === tenant);
    assert.ok(mine, "the new tenant is listed");
    assert.deepEqual(Object.keys(mine), [
      "tenant_id", "name", "customer", "subscription", "entitlement", "last_invoice", "last_event", "webhook_failures_24h", "events_failing",
    ]);
    assert.equal(mine.customer.stripe_customer_id, (paid.json as Json).checkout.customer);
    assert.deepEqual(
      [mine.subscription.status, mine.subscription.plan, mine.subscription.addon_sites],
      ["active", "monthly", 2],
    );
    assert.deepEqual([mine.entitlement.used_sites, mine.entitlement.allowed_sites], [0, 3]);
    assert.equal(mine.last_invoice.status, "paid");
    assert.equal(mine.last_event.type, "checkout.session.completed");
    assert.equal(mine.webhook_failures_24h, 0);
    // The seed's Laurentides event that failed (error kept, not processed): counted, listed.
    const laurentides = j.tenants.find((t: Json) => t.tenant_id === "22222222-2222-4222-8222-222222222222");
    assert.equal(laurentides.events_failing, 1);
    assert.ok(j.webhooks.failing_now >= 1);
    assert.ok(j.webhooks.recent_failures.some((f: Json) => f.stripe_event_id === "evt_SeedLaurentidesPaymentFailed" && f.outcome === "failed"));

    const one = await ops(["billing", "status", "--tenant", tenant]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^Billing of Test checkout \(npm run ops\) /m);
    assert.match(one.stdout, /^Subscription\s+sub_\w+ · active$/m);
    assert.match(one.stdout, /^Plan\s+monthly · period ends \d{4}-\d\d-\d\d$/m);
    assert.match(one.stdout, /^Site add-ons\s+2$/m);
    assert.match(one.stdout, /^Sites\s+0 used \/ 3 allowed$/m);
    assert.match(one.stdout, /^Last invoice\s+in_\w+ · paid [\d.]+ CAD · \d{4}-\d\d-\d\d$/m);
    assert.match(one.stdout, /^Last webhook event\s+checkout\.session\.completed · applied · /m);
    assert.match(one.stdout, /^Last 24 h\s+\d+ events, 0 failed at least once \(0 %; the guide's threshold: < 1 %\)$/m);

    const all = await ops(["billing", "status"]);
    // (The seed's Stripe objects are not in the fake: a full billing-sync run stamps them missing.)
    assert.match(all.stdout, /^Construction Boréal inc\.\s+cus_SeedBoreal01\s+active( \(not in Stripe since [\d-]+\))?\s+monthly\s+1\s+2\/2\s+paid 228\.80 CAD/m);
    assert.match(all.stdout, /^Still failing\s+\d+ \(Stripe retries them\)$/m);
    assert.match(all.stdout, /^billing-sync \(daily reconciliation, 04:00 Montréal\)\nLast complete run\s+(never|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ (min|h) ago\))$/m);
    assert.match(all.stdout, /^evt_SeedLaurentidesPaymentFailed\s+invoice\.payment_failed\s+failed\s+0\s+card_declined: your card was declined/m);
  } finally {
    if (tenant) await removeTenant(tenant);
  }
  const none = await ops(["billing", "status", "--tenant", "3a000000-0000-4000-8000-00000000ffff"]);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, "ops billing status: no tenant 3a000000-0000-4000-8000-00000000ffff in the database\n");
  const { SUPABASE_DB_URL: _db, ...noDb } = hostedValues();
  await withEnvFile(noDb, async (file) => {
    const run = await ops(["--env-file", file, "billing", "status"]);
    assert.equal(run.code, 64);
    assert.match(run.stderr, /SUPABASE_DB_URL is not set.*\(needed by billing status\)/);
  });
});
