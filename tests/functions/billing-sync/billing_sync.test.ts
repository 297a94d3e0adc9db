// billing-sync through the gateway, against the real database and the runner's fake Stripe (its
// control endpoints seed 1,050 subscriptions, inject 429s, change and remove objects behind our
// back, make events that were never delivered, and count the API calls).
//
// The fake is shared with the other test files: each test here resets it first (the runner's fake
// only holds what the current test made). Rows of other tests and the seed are not in the fake, so
// a full run finds them missing: counted up front, their mark is undone at the end.
import assert from "node:assert/strict";
import { StripeFakeControl } from "../../../scripts/fakes/stripe-control.ts";
import { delay, env, functionUrl, mintUserToken, type Sql, waitFor, withDb } from "../../_helpers.ts";

const URL_ = functionUrl("billing-sync");
/** The function's JSON answers and audit details, read field by field below. */
// deno-lint-ignore no-explicit-any
type Json = any;
const N = 1050;

function fake(): StripeFakeControl {
  const base = Deno.env.get("STRIPE_API_BASE");
  assert.ok(base, "the runner sets STRIPE_API_BASE");
  return new StripeFakeControl(base);
}

const service = () => ({ apikey: env.secretKey, authorization: `Bearer ${env.secretKey}` });
const asUserToken = (token: string) => ({ authorization: `Bearer ${token}`, apikey: env.publishableKey });

async function post(body: unknown, headers: Record<string, string> = service()): Promise<{ status: number; body: Json }> {
  const res = await fetch(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(!text.includes(env.secretKey), "no key in a response");
  assert.ok(!/sk_(test|live)_/.test(text), "no Stripe key in a response");
  return { status: res.status, body: JSON.parse(text) };
}

/** ceil(n/100) API calls per list, one for an empty list. */
const pagesFor = (n: number) => Math.max(1, Math.ceil(n / 100));

async function auditOf(sql: Sql, runId: string) {
  return await sql<{ action: string; actor: string; details: Json }[]>`
    select action, actor, details from public.system_audit_logs
     where area = 'billing' and target = ${"billing_sync_runs:" + runId} order by id`;
}

/** Rows of ours (test mode) that exist before a test: a full run finds them missing. */
async function preexisting(sql: Sql) {
  const [c] = await sql`
    select (select count(*)::int from public.customers where livemode = false and deleted_at is null) as customers,
           (select count(*)::int from public.subscriptions s join public.customers c on c.id = s.customer_id where c.livemode = false) as subscriptions,
           (select count(*)::int from public.invoices i join public.customers c on c.id = i.customer_id where c.livemode = false) as invoices`;
  return c as { customers: number; subscriptions: number; invoices: number };
}

/** Undoes the missing marks full runs put on the rows of the seed and other tests (not in the fake). */
async function unmarkAll(sql: Sql) {
  await sql`update public.customers set stripe_missing_since = null where stripe_missing_since is not null`;
  await sql`update public.subscriptions set stripe_missing_since = null where stripe_missing_since is not null`;
  await sql`update public.invoices set stripe_missing_since = null where stripe_missing_since is not null`;
}

async function removeTenants(sql: Sql, tenants: string[]) {
  await sql`delete from public.invoices where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.subscriptions where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.customers where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.tenant_members where tenant_id = any(${tenants}::uuid[])`;
  await sql`delete from public.tenants where id = any(${tenants}::uuid[])`;
}

async function newTenants(sql: Sql, n: number, label: string): Promise<string[]> {
  const rows = await sql`insert into public.tenants (name)
                         select ${label} || ' ' || g from generate_series(1, ${n}) as g returning id`;
  return rows.map((r) => r.id as string);
}

async function newUser(sql: Sql, tenant: string | null, role: "owner" | "admin" | "member" | null): Promise<string> {
  const id = crypto.randomUUID();
  await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values (${id}, 'authenticated', 'authenticated', ${`billing-sync-${id}@example.test`}, now(),
                    '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
  if (tenant && role) await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant}, ${id}, ${role})`;
  return await mintUserToken(id);
}

Deno.test("billing-sync: who may call, and malformed requests → 4xx, no run", async () => {
  await withDb(async (sql) => {
    const [tenant, bare] = await newTenants(sql, 2, "billing-sync auth");
    try {
      await sql`insert into public.customers (tenant_id, stripe_customer_id) values (${tenant}, 'cus_BillingSyncAuthTest1')`;
      const [{ n: runsBefore }] = await sql`select count(*)::int as n from private.billing_sync_runs`;
      const member = await newUser(sql, tenant, "member");
      const outsider = await newUser(sql, bare, "admin");
      const bareAdmin = outsider;
      const admin = await newUser(sql, tenant, "admin");
      const cases: [unknown, Record<string, string>, number, string][] = [
        [{}, {}, 401, "unauthorized"],
        [{}, { apikey: env.publishableKey }, 401, "unauthorized"],
        [{}, { apikey: "sb_secret_notTheProjectsKey0000" }, 401, "unauthorized"],
        [{}, { authorization: "Bearer not.a.jwt" }, 401, "unauthorized"],
        [{ tenant_id: tenant }, asUserToken(member), 403, "forbidden"],
        [{ tenant_id: tenant }, asUserToken(outsider), 404, "not_found"],
        [{ tenant_id: bare }, asUserToken(bareAdmin), 404, "no_billing_customer"],
        [{}, asUserToken(admin), 400, "bad_request"],
        [{ tenant_id: tenant, max_pages: 1 }, asUserToken(admin), 400, "bad_request"],
        [{ tenant_id: "not-a-uuid" }, asUserToken(admin), 400, "bad_request"],
        [{ max_pages: 0 }, service(), 400, "bad_request"],
        [{ time_budget_ms: 1e9 }, service(), 400, "bad_request"],
        [{ surprise: true }, service(), 400, "bad_request"],
        [{ run_id: crypto.randomUUID(), restart: true }, service(), 400, "bad_request"],
        [[], service(), 400, "bad_request"],
        ["{not json", service(), 400, "invalid_json"],
        [{ run_id: crypto.randomUUID() }, service(), 404, "run_not_found"],
      ];
      for (const [body, headers, status, error] of cases) {
        const r = await post(body, headers);
        assert.deepEqual([r.status, r.body.error], [status, error], `${JSON.stringify(body)} ${Object.keys(headers)}: ${JSON.stringify(r.body)}`);
      }
      const text = await fetch(URL_, { method: "POST", headers: { ...service(), "content-type": "text/plain" }, body: "x" });
      assert.deepEqual([text.status, (await text.json()).error], [415, "unsupported_media_type"]);
      const get = await fetch(URL_, { headers: service() });
      assert.deepEqual([get.status, get.headers.get("allow"), (await get.json()).error], [405, "POST", "method_not_allowed"]);
      const [{ n: runsAfter }] = await sql`select count(*)::int as n from private.billing_sync_runs`;
      assert.equal(runsAfter, runsBefore, "no request above made a run");
    } finally {
      await removeTenants(sql, [tenant, bare]);
    }
  });
});

Deno.test({
  name: "billing-sync: 1,050 subscriptions, paginated, 429 mid-run, interrupted and resumed, drift repaired, undelivered events replayed, ≤ 1.05 × ceil(N/100) calls",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const stripe = fake();
    await stripe.reset();
    await withDb(async (sql) => {
      const tenants = await newTenants(sql, N, "billing-sync test");
      try {
        const seeded = await stripe.seedSubscriptions({ count: N, tenant_ids: tenants, addon_quantity: 2 });
        assert.equal(seeded.subscriptions.length, N);

        // ---- run 1: everything is new ------------------------------------------------------
        const before1 = await preexisting(sql);
        await stripe.resetCalls();
        const r1 = await post({ restart: true });
        assert.equal(r1.status, 200, JSON.stringify(r1.body));
        assert.equal(r1.body.status, "complete");
        for (const table of ["customers", "subscriptions", "invoices"] as const) {
          assert.equal(r1.body.drift[table].seen, N, `${table} seen`);
          assert.equal(r1.body.drift[table].created, N, `${table} created`);
          assert.equal(r1.body.drift[table].changed, 0, `${table} changed`);
          assert.equal(r1.body.drift[table].missing, before1[table], `${table} missing: the rows the fake does not have`);
        }
        const expected = pagesFor(0) + 3 * pagesFor(N); // events (none undelivered) + three lists of 1,050
        const calls1 = await stripe.calls();
        assert.equal(calls1.total, expected, JSON.stringify(calls1.calls));
        assert.deepEqual(calls1.calls, {
          "GET /v1/customers": 11,
          "GET /v1/events": 1,
          "GET /v1/invoices": 11,
          "GET /v1/subscriptions": 11,
        });
        assert.equal(r1.body.api_calls, calls1.total, "the run counts what the fake counts");
        const [counts] = await sql`
          select (select count(*)::int from public.subscriptions where tenant_id = any(${tenants}::uuid[])) as subs,
                 (select count(*)::int from public.subscription_items where tenant_id = any(${tenants}::uuid[])) as items,
                 (select count(*)::int from public.subscription_items where tenant_id = any(${tenants}::uuid[]) and kind = 'addon_site' and quantity = 2) as addons,
                 (select count(*)::int from public.invoices where tenant_id = any(${tenants}::uuid[]) and status = 'paid') as paid`;
        assert.deepEqual(counts, { subs: N, items: 2 * N, addons: N, paid: N });

        // ---- drift behind the sync's back ------------------------------------------------------
        // Rows hold the Date of run 1's pages as their watermark (one-second resolution): what
        // follows happens seconds later, so that it is unambiguously newer.
        await delay(3000);
        const subs = seeded.subscriptions, invs = seeded.invoices, cus = seeded.customers;
        // Two tenants lose their whole billing (customer, subscription, invoice) in our tables.
        const goneTenants = [0, 1].map((i) => tenants[i]);
        await sql`delete from public.invoices where tenant_id = any(${goneTenants}::uuid[])`;
        await sql`delete from public.subscriptions where tenant_id = any(${goneTenants}::uuid[])`;
        await sql`delete from public.customers where tenant_id = any(${goneTenants}::uuid[])`;
        // Three more subscriptions and five more invoices deleted.
        await sql`delete from public.subscriptions where stripe_subscription_id = any(${subs.slice(10, 13)})`;
        await sql`delete from public.invoices where stripe_invoice_id = any(${invs.slice(20, 25)})`;
        // Altered (the watermark untouched): 4 statuses, 3 amounts, 2 e-mails.
        await sql`update public.subscriptions set status = 'past_due' where stripe_subscription_id = any(${subs.slice(30, 34)})`;
        await sql`update public.invoices set amount_paid_cents = 1 where stripe_invoice_id = any(${invs.slice(40, 43)})`;
        await sql`update public.customers set email = 'altered@example.test' where stripe_customer_id = any(${cus.slice(50, 52)})`;
        // A row a newer webhook wrote (its watermark after the lists' Date): the sync must not undo it.
        const newer = subs[60];
        await sql`update public.subscriptions set status = 'unpaid', stripe_updated_at = now() + interval '1 hour'
                   where stripe_subscription_id = ${newer}`;
        // Gone from Stripe: 2 subscriptions, 3 invoices (our rows stay, marked missing).
        for (const id of [...subs.slice(70, 72), ...invs.slice(80, 83)]) await stripe.remove(id);
        // Changed at Stripe with events that were never delivered (replayed through the webhook's SQL).
        const replaySub = subs[90], replayCus = cus[91];
        // Their `created` is 3 s ago: after run 1's pages, and (the lists being read a moment after
        // the events) over a second before run 2's pages, so the lists find those rows unchanged.
        const created = Math.floor(Date.now() / 1000) - 3;
        await stripe.mutate(replaySub, { cancel_at_period_end: true });
        const evSub = await stripe.emit({ type: "customer.subscription.updated", object_id: replaySub, undelivered: true, created });
        await stripe.mutate(replayCus, { email: "replayed@example.test" });
        const evCus = await stripe.emit({ type: "customer.updated", object_id: replayCus, undelivered: true, created });

        // ---- run 2, in four invocations -------------------------------------------------------
        await stripe.resetCalls();
        // A: 15 pages: events (1), customers (11), subscriptions 1-3 → incomplete mid-list.
        const a = await post({ max_pages: 15 });
        assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.deepEqual([a.body.status, a.body.stop_reason, a.body.phase, a.body.invocation.pages], ["incomplete", "page_budget", "subscriptions", 15]);
        assert.match(a.body.cursor, /^sub_/, "the checkpoint is the last subscription applied");
        const runId = a.body.run_id;
        // B: the next subscriptions page meets a 429 (Retry-After: 1): waited for, asked again.
        await stripe.rateLimit(1, { route: "GET /v1/subscriptions", retry_after: 1 });
        const b = await post({ max_pages: 10 });
        assert.deepEqual([b.status, b.body.run_id, b.body.status, b.body.stop_reason, b.body.phase], [200, runId, "incomplete", "page_budget", "invoices"]);
        assert.equal(b.body.invocation.outcome, "resumed");
        assert.equal(b.body.rate_limited, 1);
        // C: a 1 ms time budget: one page, then stop (each invocation moves on by at least a page).
        const c = await post({ time_budget_ms: 1 });
        assert.deepEqual([c.body.run_id, c.body.status, c.body.stop_reason, c.body.invocation.pages], [runId, "incomplete", "time_budget", 1]);
        // D: the rest.
        const d = await post({});
        assert.equal(d.status, 200, JSON.stringify(d.body));
        assert.deepEqual([d.body.run_id, d.body.status, d.body.invocations], [runId, "complete", 4]);

        const drift = d.body.drift;
        assert.deepEqual(
          Object.fromEntries(Object.entries(drift).map(([t, v]: [string, Json]) => [t, [v.created, v.changed, v.missing, v.stale]])),
          {
            customers: [2, 2, before1.customers, 0],
            subscriptions: [2 + 3, 4, before1.subscriptions + 2, 1],
            invoices: [2 + 5, 3, before1.invoices + 3, 0],
          },
          JSON.stringify(drift),
        );
        assert.equal(drift.subscriptions.seen, N - 2);
        assert.equal(drift.invoices.seen, N - 3);
        assert.deepEqual([d.body.events_seen, d.body.events_replayed], [2, 2]);

        // API calls: every page once, the 429 once more; the fake counted the same.
        const expected2 = pagesFor(2) + pagesFor(N) + pagesFor(N - 2) + pagesFor(N - 3);
        const calls2 = await stripe.calls();
        assert.equal(calls2.total, expected2 + 1, JSON.stringify(calls2.calls));
        assert.equal(d.body.api_calls, calls2.total, "the run's api_calls = the fake's count");
        assert.ok(d.body.api_calls <= 1.05 * expected2, `${d.body.api_calls} calls for ${expected2} pages`);
        console.log(`billing-sync API calls: ${d.body.api_calls} for ${expected2} pages (ceil(N/100) per list), ratio ${(d.body.api_calls / expected2).toFixed(3)}`);

        // Repaired through the same SQL: recreated and restored rows as Stripe has them.
        const [fixed] = await sql`
          select (select count(*)::int from public.customers where tenant_id = any(${goneTenants}::uuid[])) as customers,
                 (select count(*)::int from public.subscriptions where tenant_id = any(${tenants}::uuid[])) as subs,
                 (select count(*)::int from public.subscription_items where tenant_id = any(${tenants}::uuid[])) as items,
                 (select count(*)::int from public.subscriptions where stripe_subscription_id = any(${subs.slice(30, 34)}) and status = 'active') as restored_status,
                 (select count(*)::int from public.invoices where stripe_invoice_id = any(${invs.slice(40, 43)}) and amount_paid_cents = amount_due_cents) as restored_amounts,
                 (select count(*)::int from public.customers where stripe_customer_id = any(${cus.slice(50, 52)}) and email <> 'altered@example.test') as restored_emails,
                 (select status from public.subscriptions where stripe_subscription_id = ${newer}) as newer_status,
                 (select cancel_at_period_end from public.subscriptions where stripe_subscription_id = ${replaySub}) as replayed_cancel,
                 (select email from public.customers where stripe_customer_id = ${replayCus}) as replayed_email,
                 (select count(*)::int from public.subscriptions where stripe_subscription_id = any(${subs.slice(70, 72)}) and stripe_missing_since is not null) as missing_subs,
                 (select count(*)::int from public.invoices where stripe_invoice_id = any(${invs.slice(80, 83)}) and stripe_missing_since is not null) as missing_invs,
                 (select count(*)::int from public.billing_events where stripe_event_id in (${evSub.id}, ${evCus.id}) and processed_at is not null) as replayed_events`;
        assert.deepEqual(fixed, {
          customers: 2,
          subs: N,
          items: 2 * N,
          restored_status: 4,
          restored_amounts: 3,
          restored_emails: 2,
          newer_status: "unpaid",
          replayed_cancel: true,
          replayed_email: "replayed@example.test",
          missing_subs: 2,
          missing_invs: 3,
          replayed_events: 2,
        });

        // The trail: one drift report per invocation, the contract the system status reads.
        const trail = await auditOf(sql, runId);
        assert.deepEqual(trail.map((t) => [t.action, t.details.status, t.details.stop_reason ?? null]), [
          ["billing_sync", "incomplete", "page_budget"],
          ["billing_sync", "incomplete", "page_budget"],
          ["billing_sync", "incomplete", "time_budget"],
          ["billing_sync", "complete", null],
        ]);
        for (const t of trail) {
          assert.equal(t.details.run_id, runId);
          assert.ok(!("error" in t.details), "error only on failure");
          for (const table of ["customers", "subscriptions", "invoices"]) {
            for (const key of ["created", "changed", "missing"]) assert.equal(typeof t.details.drift[table][key], "number", `${table}.${key}`);
          }
          assert.equal(typeof t.details.api_calls, "number");
          assert.equal(typeof t.details.events_replayed, "number");
        }
        assert.deepEqual(trail.at(-1)!.details.drift, drift);

        // ---- run 3: nothing left to repair; the events are duplicates now ----------------------
        await stripe.resetCalls();
        const r3 = await post({});
        assert.equal(r3.body.status, "complete", JSON.stringify(r3.body));
        for (const table of ["customers", "subscriptions", "invoices"] as const) {
          assert.deepEqual([r3.body.drift[table].created, r3.body.drift[table].changed], [0, 0], table);
        }
        assert.deepEqual([r3.body.events_seen, r3.body.events_replayed], [2, 0]);
        assert.equal(r3.body.drift.subscriptions.stale, 1, "the newer row is still newer");
        assert.equal(r3.body.api_calls, expected2);

        // ---- a rate limit that does not clear within the budget: incomplete, never complete ----
        await stripe.rateLimit(1, { route: "GET /v1/events", retry_after: 600 });
        const limited = await post({});
        assert.deepEqual([limited.status, limited.body.status, limited.body.stop_reason, limited.body.phase], [200, "incomplete", "rate_limited", "events"]);
        assert.ok(!("error" in limited.body));
        // …and without Retry-After: an exponential backoff, then on.
        await stripe.rateLimit(1, { route: "GET /v1/events" });
        const backedOff = await post({});
        assert.deepEqual([backedOff.body.run_id, backedOff.body.status, backedOff.body.rate_limited], [limited.body.run_id, "complete", 2]);
      } finally {
        await stripe.rateLimit(0);
        await removeTenants(sql, tenants);
        await unmarkAll(sql);
        await stripe.reset();
      }
    });
  },
});

Deno.test("billing-sync: a tenant admin syncs their own customer only (3 calls), once a minute; a second full run at once → 409", async () => {
  const stripe = fake();
  await stripe.reset();
  await withDb(async (sql) => {
    const tenants = await newTenants(sql, 120, "billing-sync tenant");
    try {
      const seeded = await stripe.seedSubscriptions({ count: 120, tenant_ids: tenants });
      const first = await post({ restart: true });
      assert.equal(first.body.status, "complete", JSON.stringify(first.body));
      const tenant = tenants[5];
      await sql`update public.subscriptions set status = 'canceled', canceled_at = now() where tenant_id = ${tenant}`;
      await sql`update public.subscriptions set status = 'canceled', canceled_at = now() where tenant_id = ${tenants[6]}`;
      const admin = await newUser(sql, tenant, "admin");

      await stripe.resetCalls();
      const r = await post({ tenant_id: tenant }, asUserToken(admin));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual([r.body.scope, r.body.status, r.body.tenant_id], ["tenant", "complete", tenant]);
      assert.deepEqual([r.body.drift.customers.seen, r.body.drift.subscriptions.changed, r.body.drift.invoices.seen], [1, 1, 1]);
      assert.deepEqual((await stripe.calls()).calls, {
        "GET /v1/customers/:id": 1,
        "GET /v1/invoices": 1,
        "GET /v1/subscriptions": 1,
      });
      const [{ status }] = await sql`select status from public.subscriptions where tenant_id = ${tenant}`;
      assert.equal(status, "active");
      const [{ status: other }] = await sql`select status from public.subscriptions where tenant_id = ${tenants[6]}`;
      assert.equal(other, "canceled", "another tenant's rows are not this run's");
      const trail = await auditOf(sql, r.body.run_id);
      assert.deepEqual(trail.map((t) => [t.action, t.actor.startsWith("user:"), t.details.status]), [["billing_sync_tenant", true, "complete"]]);

      const again = await post({ tenant_id: tenant }, asUserToken(admin));
      assert.equal(again.status, 429);
      assert.equal(again.body.error, "too_soon");
      assert.ok(Number(again.body.retry_after_seconds) > 0);

      // Two full runs at once: the second finds the first's lease. The first meets a 429 asking for
      // 2 s on its first page, so it surely still holds the run when the second asks.
      await stripe.rateLimit(1, { route: "GET /v1/events", retry_after: 2 });
      const [one, two] = await Promise.all([post({}), post({})]);
      assert.deepEqual([one.status, two.status].sort(), [200, 409]);
      const refused = one.status === 409 ? one : two;
      assert.equal(refused.body.error, "sync_in_progress");
      assert.equal(refused.body.run_id, (one.status === 200 ? one : two).body.run_id, "the run the other invocation holds");
      assert.equal((one.status === 200 ? one : two).body.status, "complete");
      void seeded;
    } finally {
      await stripe.rateLimit(0);
      await removeTenants(sql, tenants);
      await unmarkAll(sql);
      await stripe.reset();
    }
  });
});

Deno.test("billing-sync: the 04:00 schedule calls the function through pg_net with the service key from Vault", async () => {
  const stripe = fake();
  await stripe.reset();
  await withDb(async (sql) => {
    const tenants = await newTenants(sql, 3, "billing-sync cron");
    const secrets: string[] = [];
    try {
      await stripe.seedSubscriptions({ count: 3, tenant_ids: tenants });
      // As an operator creates them on a hosted project (README, "Deploying").
      for (const [value, name] of [[`${env.supabaseUrl}/functions/v1`, "functions_url"], [env.secretKey, "service_secret_key"]]) {
        const [{ id }] = await sql`select vault.create_secret(${value}, ${name}) as id`;
        secrets.push(id);
      }
      // No other full run may be open: the schedule would resume it instead.
      await sql`update private.billing_sync_runs set status = 'abandoned', finished_at = now(), lease_id = null, lease_until = null
                 where scope = 'full' and status in ('pending', 'running', 'incomplete')`;
      // 2031-07-15 08:00 UTC is 04:00 EDT.
      const [{ r }] = await sql`select private.run_daily_billing_sync('2031-07-15 08:00:00+00') as r`;
      assert.equal(r.ran, true, JSON.stringify(r));
      assert.ok(r.request_id, "a pg_net request was queued");
      const report = await waitFor("the scheduled run's drift report", async () => {
        const trail = await auditOf(sql, r.run_id);
        return trail.find((t) => t.details.status === "complete");
      }, { timeoutMs: 60_000, intervalMs: 250 });
      assert.equal(report.actor, "pg_cron");
      assert.equal(report.details.trigger, "cron");
      assert.equal(report.details.local_date, "2031-07-15");
      assert.equal(report.details.drift.subscriptions.created, 3);
      const [{ status_code }] = await waitFor("pg_net's response", () =>
        sql`select status_code from net._http_response where id = ${r.request_id}`.then((rows) => rows.length ? rows : undefined));
      assert.equal(status_code, 200);
      const [{ r: second }] = await sql`select private.run_daily_billing_sync('2031-07-15 08:20:00+00') as r`;
      assert.deepEqual([second.ran, second.reason], [false, "already ran today"]);
    } finally {
      await sql`delete from vault.secrets where id = any(${secrets}::uuid[])`;
      await removeTenants(sql, tenants);
      await unmarkAll(sql);
      await stripe.reset();
    }
  });
});
