// billing-sync's engine and wire layer without the database: the token bucket, the 429 waits, the
// watermark of a listed copy, and the walk's answers to what the fake Stripe cannot produce
// (Stripe-Should-Retry: false, a checkpoint object Stripe no longer has, a key Stripe refuses,
// Stripe down, a subscription with more than 10 items), against a local stub speaking Stripe's JSON.
import assert from "node:assert/strict";
import { Stripe, stripeClientConfig } from "../../../supabase/functions/_shared/stripe/client.ts";
import {
  type ClaimedRun,
  type PageInput,
  type PageOutcome,
  type Phase,
  type RunStore,
  runInvocation,
  seenAtFor,
  type StripeJson,
} from "../../../supabase/functions/billing-sync/engine.ts";
import { backoffMs, createWire, retryAfterMs, TokenBucket } from "../../../supabase/functions/billing-sync/wire.ts";
import { type RecordedHit, startHitServer } from "../../_helpers.ts";

const KEY = ["sk", "test", "engineStub00000000000000"].join("_");

Deno.test("wire: the token bucket spaces requests at its rate after the burst, and halves on a 429", async () => {
  let clock = 0;
  const slept: number[] = [];
  const bucket = new TokenBucket(5, {
    now: () => clock,
    sleep: (ms) => {
      slept.push(ms);
      clock += ms;
      return Promise.resolve();
    },
  });
  for (let i = 0; i < 10; i++) await bucket.take();
  assert.equal(slept.length, 5, "five from the burst, five waited for");
  assert.equal(clock, 1000, "ten requests at 5/s with a burst of 5: one second");
  bucket.slowDown();
  assert.equal(bucket.rate, 2.5);
  bucket.slowDown();
  bucket.slowDown();
  bucket.slowDown();
  assert.equal(bucket.rate, 1, "never below 1 request a second");
});

Deno.test("wire: Retry-After in seconds or as a date; exponential backoff with jitter, capped", () => {
  assert.equal(retryAfterMs("2"), 2000);
  assert.equal(retryAfterMs(" 0.5 "), 500);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(null), undefined);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((n) => backoffMs(n, () => 1)), [1000, 2000, 4000, 8000, 16000, 16000, 16000]);
  assert.deepEqual([0, 4].map((n) => backoffMs(n, () => 0)), [500, 8000]);
});

Deno.test("seenAtFor: the earlier of the response Date and the request, to the second, minus one second", () => {
  const asked = Date.parse("2026-11-28T10:00:05.900Z");
  assert.equal(seenAtFor(Date.parse("2026-11-28T10:00:07Z"), asked), "2026-11-28T10:00:04.000Z", "a later Date: the request's second");
  assert.equal(seenAtFor(Date.parse("2026-11-28T10:00:03Z"), asked), "2026-11-28T10:00:02.000Z", "an earlier Date (Stripe's clock behind)");
  assert.equal(seenAtFor(undefined, asked), "2026-11-28T10:00:04.000Z", "no Date");
});

// ---- the walk against a stub -----------------------------------------------------------------

type Answer = { status?: number; body: unknown; headers?: Record<string, string> };

/** A stub Stripe: `answer(hit)` decides; lists default to empty pages. */
async function stub(answer: (hit: RecordedHit, n: number) => Answer | undefined) {
  let n = 0;
  const server = await startHitServer((hit) => {
    const a = answer(hit, n++) ?? { body: { object: "list", data: [], has_more: false, url: hit.path } };
    return Response.json(a.body, { status: a.status ?? 200, headers: { "request-id": "req_stub", ...a.headers } });
  });
  return server;
}

/** A store that keeps what the walk gives it. */
class MemoryStore implements RunStore {
  pages: PageInput[] = [];
  phase: Phase;
  constructor(phase: Phase) {
    this.phase = phase;
  }
  applyPage(_run: ClaimedRun, page: PageInput): Promise<PageOutcome> {
    this.pages.push(page);
    const next: Record<string, Phase> = { events: "customers", customers: "subscriptions", subscriptions: "invoices", invoices: "missing" };
    if (page.done) this.phase = next[page.phase];
    return Promise.resolve({ outcome: "applied", phase: this.phase, cursor: page.done ? null : page.cursor, needs_fetch: [] });
  }
  applyFetchedEvent(): Promise<PageOutcome> {
    return Promise.resolve({ outcome: "applied" });
  }
}

function run(phase: Phase, cursor: string | null = null): ClaimedRun {
  return {
    id: crypto.randomUUID(),
    lease_id: crypto.randomUUID(),
    scope: "full",
    tenant_id: null,
    stripe_customer_id: null,
    phase,
    cursor,
    started_at: new Date().toISOString(),
    invocations: 1,
  };
}

async function walk(url: string, r: ClaimedRun, opts: { maxPages?: number } = {}) {
  const wire = createWire({ ratePerSecond: 50 });
  const stripe = new Stripe(KEY, { ...stripeClientConfig(url), httpClient: Stripe.createFetchHttpClient(wire.fetch) });
  const store = new MemoryStore(r.phase);
  const out = await runInvocation(r, { stripe, wire, store, deadline: Date.now() + 30_000, maxPages: opts.maxPages, sleep: () => Promise.resolve() });
  return { out, store, wire };
}

const customers = (from: number, n: number): StripeJson[] =>
  Array.from({ length: n }, (_, i) => ({ id: `cus_Stub${from + i}`, object: "customer" }));

Deno.test("engine: a 429 with Stripe-Should-Retry: false is not asked again: incomplete (rate_limited), one call", async () => {
  const server = await stub(() => ({
    status: 429,
    body: { error: { type: "invalid_request_error", code: "rate_limit", message: "Too many requests" } },
    headers: { "stripe-should-retry": "false" },
  }));
  try {
    const { out, store, wire } = await walk(server.url, run("customers"));
    assert.deepEqual(out.report, { status: "incomplete", stop_reason: "rate_limited" });
    assert.equal(server.hits.length, 1);
    assert.deepEqual([wire.calls, wire.rateLimited, out.pendingApiCalls, out.pendingRateLimited], [1, 1, 1, 1]);
    assert.equal(store.pages.length, 0, "nothing stored: the checkpoint stays where it was");
  } finally {
    await server.close();
  }
});

Deno.test("engine: pages of 100 follow Stripe's pages; a checkpoint object Stripe no longer has restarts that list", async () => {
  const server = await stub((hit) => {
    if (hit.path !== "/v1/customers") return undefined;
    const q = new URLSearchParams(hit.query);
    assert.equal(q.get("limit"), "100");
    const after = q.get("starting_after");
    if (after === "cus_Vanished") {
      return { status: 400, body: { error: { type: "invalid_request_error", code: "resource_missing", param: "starting_after", message: "No such customer: 'cus_Vanished'" } } };
    }
    if (!after) return { body: { object: "list", data: customers(0, 100), has_more: true, url: "/v1/customers" } };
    if (after === "cus_Stub99") return { body: { object: "list", data: customers(100, 50), has_more: false, url: "/v1/customers" } };
    throw new Error(`unexpected starting_after ${after}`);
  });
  try {
    const { out, store } = await walk(server.url, run("customers", "cus_Vanished"), { maxPages: 2 });
    assert.deepEqual(out.report, { status: "incomplete", stop_reason: "page_budget" });
    assert.deepEqual(store.pages.map((p) => [p.restart_list ?? false, p.objects.length, p.cursor, p.done]), [
      [true, 0, null, false],
      [false, 100, "cus_Stub99", false],
      [false, 50, "cus_Stub149", true],
    ]);
    assert.deepEqual(server.hitsFor("/v1/customers").map((h) => new URLSearchParams(h.query).get("starting_after")), [
      "cus_Vanished",
      null,
      "cus_Stub99",
    ]);
    assert.ok(store.pages.slice(1).every((p) => p.seen_at && Date.parse(p.seen_at) <= Date.now() - 1000), "seen_at a second before the read");
  } finally {
    await server.close();
  }
});

Deno.test("engine: a refused key fails the run (no key in the error); Stripe down leaves it incomplete after the SDK's retries", async () => {
  const refused = await stub(() => ({
    status: 401,
    body: { error: { type: "invalid_request_error", message: `Invalid API Key provided: ${KEY.slice(0, 12)}****0000` } },
  }));
  try {
    const { out } = await walk(refused.url, run("customers"));
    assert.equal(out.report.status, "failed");
    const error = (out.report as { error: string }).error;
    assert.match(error, /StripeAuthenticationError 401/);
    assert.ok(!error.includes(KEY.slice(0, 12)), error);
  } finally {
    await refused.close();
  }
  const down = await stub(() => ({ status: 503, body: { error: { type: "api_error", message: "unavailable" } } }));
  try {
    const { out, wire } = await walk(down.url, run("customers"));
    assert.equal(out.report.status, "incomplete");
    assert.equal((out.report as { stop_reason: string }).stop_reason, "stripe_unavailable");
    assert.equal(wire.calls, 3, "the SDK's two retries are counted");
  } finally {
    await down.close();
  }
});

Deno.test("engine: a subscription with more than 10 items gets the rest of its items", async () => {
  const item = (i: number) => ({ id: `si_Stub${i}`, object: "subscription_item", quantity: 1, price: { id: "price_x" } });
  const server = await stub((hit) => {
    if (hit.path === "/v1/subscriptions") {
      return {
        body: {
          object: "list",
          has_more: false,
          url: "/v1/subscriptions",
          data: [{ id: "sub_Stub1", object: "subscription", items: { object: "list", has_more: true, data: [item(0)] } }],
        },
      };
    }
    if (hit.path === "/v1/subscription_items") {
      assert.equal(new URLSearchParams(hit.query).get("subscription"), "sub_Stub1");
      return { body: { object: "list", has_more: false, url: "/v1/subscription_items", data: [item(0), item(1), item(2)] } };
    }
  });
  try {
    const { out, store } = await walk(server.url, run("subscriptions"));
    assert.equal(out.report.status, "complete");
    const subs = store.pages.find((p) => p.phase === "subscriptions")!;
    assert.deepEqual(subs.objects[0].items.data.map((i: StripeJson) => i.id), ["si_Stub0", "si_Stub1", "si_Stub2"]);
    assert.equal(subs.objects[0].items.has_more, false);
    assert.deepEqual(store.pages.map((p) => [p.phase, p.done]), [["subscriptions", true], ["invoices", true]]);
  } finally {
    await server.close();
  }
});
