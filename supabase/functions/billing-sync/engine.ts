// The reconciliation itself: one invocation's walk through Stripe's lists, page by page, from the
// run's checkpoint, until the lists are done or the invocation's budget is spent.
//
// Phases (a run's `phase`, stored with its `cursor`):
//   events         events Stripe could not deliver (delivery_success=false, created in the 30 days
//                  before the run started), newest first, each through private.apply_stripe_event:
//                  the webhook's own SQL (a duplicate event id changes nothing). Full runs only.
//   customers      every customer (a tenant run: its one customer, retrieved);
//   subscriptions  every subscription, status=all (canceled included), with its items;
//   invoices       every invoice;
//   missing        (SQL, at finish) rows of ours the lists did not contain.
// Each list uses the SDK's auto-pagination (limit 100): the iterator asks for the next page only
// when the previous one is used up, so reading it 100 objects at a time follows Stripe's pages. Each
// batch of 100 goes to private.billing_sync_apply_page, which applies every object through the same
// SQL as the webhook (private.apply_stripe_object) and stores the batch's last id as the checkpoint,
// in one transaction. A full reconciliation of N objects per list therefore costs ceil(N/100) calls
// per list (one call for an empty list), plus the 429s met.
//
// Stops, always with the checkpoint of the last applied page:
//   * budget: before asking for another page, when the invocation's time budget or page budget is
//     spent (at least one page per invocation, so every invocation moves on) → incomplete;
//   * 429: the page is asked again from the checkpoint after Retry-After, or an exponential backoff
//     (1 s, 2 s, 4 s… with jitter), at most MAX_RATE_LIMIT_RETRIES times in a row and never past the
//     deadline; Stripe-Should-Retry: false is not retried → incomplete (rate_limited);
//   * Stripe unreachable or 5xx after the SDK's own retries → incomplete (stripe_unavailable);
//   * any other Stripe error (bad key, permissions…) → failed, with the error;
//   * the checkpoint object no longer exists at Stripe (starting_after refused): that list starts
//     over from its first page (objects already applied come back unchanged).
//
// Webhooks arriving meanwhile: each listed object is stored as seen at the Date of the response it
// came in, minus one second (and never later than when the page was asked for), see seenAtFor().
// The SQL applies a copy only if that is not older than what the row holds, so an event newer than
// the page (applied by the webhook before or after the page) is never overwritten by the page.
import { Stripe } from "../_shared/stripe/client.ts";
import { fetchStripeObject, type StripeObjectRef, stripeErrorText } from "../_shared/stripe/objects.ts";
import { backoffMs, retryAfterMs, type Wire } from "./wire.ts";

export const PAGE_SIZE = 100;
export const MAX_RATE_LIMIT_RETRIES = 5;
/** Stripe lists undelivered events for 30 days. */
export const EVENTS_WINDOW_SECONDS = 30 * 86_400;

export type Phase = "events" | "customers" | "subscriptions" | "invoices" | "missing" | "done";
export const LIST_PHASES: readonly Phase[] = ["events", "customers", "subscriptions", "invoices"];

/** A run as private.billing_sync_claim hands it to the invocation that holds its lease. */
export interface ClaimedRun {
  id: string;
  lease_id: string;
  scope: "full" | "tenant";
  tenant_id: string | null;
  stripe_customer_id: string | null;
  phase: Phase;
  cursor: string | null;
  started_at: string;
  invocations: number;
}

// deno-lint-ignore no-explicit-any
export type StripeJson = Record<string, any>;

export interface PageInput {
  phase: Phase;
  objects: StripeJson[];
  /** When the objects were seen at Stripe (ISO); null for events (each carries its `created`). */
  seen_at: string | null;
  /** Last id of the page (the next starting_after); null keeps the stored one. */
  cursor: string | null;
  /** The list is finished: the run moves to the next phase. */
  done: boolean;
  /** Start the current list over (its checkpoint object is gone at Stripe). */
  restart_list?: boolean;
  /** The batch needed a request to Stripe (a new page); false when the list's end was known. */
  fetched: boolean;
  /** API calls and 429s since the last page was stored. */
  api_calls: number;
  rate_limited: number;
}

export interface PageOutcome {
  outcome: "applied" | "lease_lost";
  phase?: Phase;
  cursor?: string | null;
  /** Events the SQL could not order (same second, other content): fetch the object, apply again. */
  needs_fetch?: { event: StripeJson; fetch: StripeObjectRef }[];
}

/** billing-sync's SQL, behind an interface so the walk can be read (and tested) on its own. */
export interface RunStore {
  applyPage(run: ClaimedRun, page: PageInput): Promise<PageOutcome>;
  /** An event again, with a fresh copy of its object (or the fetch error). */
  applyFetchedEvent(run: ClaimedRun, event: StripeJson, options: Record<string, unknown>): Promise<PageOutcome>;
}

export type StopReport =
  | { status: "complete" }
  | { status: "incomplete"; stop_reason: "time_budget" | "page_budget" | "rate_limited" | "stripe_unavailable"; detail?: string }
  | { status: "failed"; error: string }
  | { status: "lease_lost" };

export interface EngineOptions {
  stripe: Stripe;
  wire: Wire;
  store: RunStore;
  /** Epoch ms: no new page is asked for after it. */
  deadline: number;
  /** At most this many pages in this invocation (tests, operators). */
  maxPages?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface InvocationResult {
  report: StopReport;
  pages: number;
  /** Calls and 429s not yet stored with a page (the finish stores them). */
  pendingApiCalls: number;
  pendingRateLimited: number;
}

/**
 * When a batch's objects were seen at Stripe, as stored (ISO): the earliest response Date that can
 * have carried them, never later than the moment the page was asked for (our clock), minus one
 * second. Dates have one-second resolution, like events' `created`: a state change in the same
 * second as the read may or may not be in the copy, so the copy claims the second before, and an
 * event of that second (or later) wins over it; the webhook's same-second rule fetches the object
 * when two events of one second disagree. Earlier is safe (the copy loses to more events); later
 * could let an older copy overwrite a newer event.
 */
export function seenAtFor(earliestResponseDate: number | undefined, askedAt: number): string {
  const asked = Math.floor(askedAt / 1000) * 1000;
  const at = earliestResponseDate === undefined ? asked : Math.min(earliestResponseDate, asked);
  return new Date(at - 1000).toISOString();
}

const nextPhase: Record<string, Phase> = { events: "customers", customers: "subscriptions", subscriptions: "invoices", invoices: "missing" };

function isStripeError(e: unknown): e is Stripe.errors.StripeError {
  return e instanceof Stripe.errors.StripeError;
}

function header(e: Stripe.errors.StripeError, name: string): string | undefined {
  const headers = e.headers as Record<string, string> | Headers | undefined;
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const found = Object.entries(headers).find(([k]) => k.toLowerCase() === name);
  return found?.[1];
}

function isRateLimit(e: unknown): e is Stripe.errors.StripeError {
  return isStripeError(e) && (e.statusCode === 429 || e instanceof Stripe.errors.StripeRateLimitError);
}

function isTransient(e: unknown): boolean {
  return isStripeError(e) &&
    (e instanceof Stripe.errors.StripeConnectionError || e instanceof Stripe.errors.StripeAPIError ||
      (typeof e.statusCode === "number" && e.statusCode >= 500));
}

/** Stripe refused starting_after: the checkpoint object no longer exists. */
function isCursorGone(e: unknown): boolean {
  return isStripeError(e) && e instanceof Stripe.errors.StripeInvalidRequestError && e.param === "starting_after";
}

/** The list (an SDK auto-pagination iterator) of a phase, from `cursor`. */
function openList(stripe: Stripe, run: ClaimedRun, phase: Phase, cursor: string | null): AsyncIterator<StripeJson> {
  const from = cursor ? { starting_after: cursor } : {};
  const customer = run.scope === "tenant" ? { customer: run.stripe_customer_id! } : {};
  switch (phase) {
    case "events": {
      const since = Math.floor(Date.parse(run.started_at) / 1000) - EVENTS_WINDOW_SECONDS;
      return stripe.events.list({ limit: PAGE_SIZE, delivery_success: false, created: { gte: since }, ...from }) as AsyncIterator<StripeJson>;
    }
    case "customers":
      if (run.scope === "tenant") return retrieveOne(stripe, run.stripe_customer_id!);
      return stripe.customers.list({ limit: PAGE_SIZE, ...from }) as AsyncIterator<StripeJson>;
    case "subscriptions":
      return stripe.subscriptions.list({ limit: PAGE_SIZE, status: "all", ...customer, ...from }) as AsyncIterator<StripeJson>;
    case "invoices":
      return stripe.invoices.list({ limit: PAGE_SIZE, ...customer, ...from }) as AsyncIterator<StripeJson>;
    default:
      throw new Error(`no list for phase ${phase}`);
  }
}

/** A tenant run's customer: a one-object "list" (a deleted customer included; absent if 404). */
async function* retrieveOne(stripe: Stripe, id: string): AsyncGenerator<StripeJson> {
  try {
    yield await stripe.customers.retrieve(id) as StripeJson;
  } catch (e) {
    if (isStripeError(e) && e.statusCode === 404) return;
    throw e;
  }
}

/** Up to `size` objects from the iterator; done when it ended before that. */
async function pull(iterator: AsyncIterator<StripeJson>, size: number): Promise<{ items: StripeJson[]; done: boolean }> {
  const items: StripeJson[] = [];
  while (items.length < size) {
    const r = await iterator.next();
    if (r.done) return { items, done: true };
    items.push(r.value);
  }
  return { items, done: false };
}

/** Plain JSON (the SDK's objects carry a non-enumerable lastResponse). */
function plain(items: StripeJson[]): StripeJson[] {
  return JSON.parse(JSON.stringify(items));
}

/** A subscription lists its first 10 items; the rest (rare) are fetched so the SQL sees them all. */
async function completeItems(stripe: Stripe, subscriptions: StripeJson[]): Promise<void> {
  for (const sub of subscriptions) {
    if (sub?.items?.has_more) {
      const all: StripeJson[] = [];
      for await (const item of stripe.subscriptionItems.list({ subscription: sub.id, limit: PAGE_SIZE })) all.push(item as StripeJson);
      sub.items = { ...sub.items, data: all, has_more: false };
    }
  }
}

/** One invocation: from the run's phase and cursor, until done, stopped or out of budget. */
export async function runInvocation(run: ClaimedRun, opts: EngineOptions): Promise<InvocationResult> {
  const { stripe, wire, store } = opts;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let pages = 0;
  let storedCalls = wire.calls;
  let storedRateLimited = wire.rateLimited;
  let phase = run.phase;
  let cursor = run.cursor;

  const result = (report: StopReport): InvocationResult => ({
    report,
    pages,
    pendingApiCalls: wire.calls - storedCalls,
    pendingRateLimited: wire.rateLimited - storedRateLimited,
  });
  const store_ = async (page: Omit<PageInput, "api_calls" | "rate_limited">): Promise<PageOutcome> => {
    const calls = wire.calls, limited = wire.rateLimited;
    const outcome = await store.applyPage(run, { ...page, api_calls: calls - storedCalls, rate_limited: limited - storedRateLimited });
    storedCalls = calls;
    storedRateLimited = limited;
    return outcome;
  };

  while (LIST_PHASES.includes(phase)) {
    let iterator: AsyncIterator<StripeJson> | undefined;
    let rateLimitRetries = 0;
    for (;;) {
      if (pages > 0) {
        if (opts.maxPages !== undefined && pages >= opts.maxPages) return result({ status: "incomplete", stop_reason: "page_budget" });
        if (now() >= opts.deadline) return result({ status: "incomplete", stop_reason: "time_budget" });
      }
      const askedAt = now();
      const callsBefore = wire.calls;
      wire.mark();
      let batch: { items: StripeJson[]; done: boolean };
      try {
        iterator ??= openList(stripe, run, phase, cursor);
        batch = await pull(iterator, PAGE_SIZE);
        batch.items = plain(batch.items);
        if (phase === "subscriptions") await completeItems(stripe, batch.items);
      } catch (e) {
        iterator = undefined; // the next attempt asks again from the checkpoint
        if (isRateLimit(e)) {
          const asked = retryAfterMs(header(e, "retry-after"), now());
          const wait = asked ?? backoffMs(rateLimitRetries, opts.random);
          if (header(e, "stripe-should-retry") === "false" || rateLimitRetries >= MAX_RATE_LIMIT_RETRIES || now() + wait >= opts.deadline) {
            return result({ status: "incomplete", stop_reason: "rate_limited" });
          }
          rateLimitRetries++;
          await sleep(wait);
          continue;
        }
        if (isCursorGone(e) && cursor !== null) {
          const restarted = await store_({ phase, objects: [], seen_at: null, cursor: null, done: false, restart_list: true, fetched: false });
          if (restarted.outcome === "lease_lost") return result({ status: "lease_lost" });
          cursor = null;
          continue;
        }
        if (isTransient(e)) return result({ status: "incomplete", stop_reason: "stripe_unavailable", detail: stripeErrorText(e) });
        if (isStripeError(e)) return result({ status: "failed", error: stripeErrorText(e) });
        throw e;
      }
      rateLimitRetries = 0;

      const last = batch.items.at(-1)?.id ?? null;
      // A full batch may have been the list's last page: the next pull then ends without a request.
      const fetched = wire.calls > callsBefore;
      const outcome = await store_({
        phase,
        objects: batch.items,
        seen_at: phase === "events" ? null : seenAtFor(wire.earliestDateSinceMark, askedAt),
        cursor: last,
        done: batch.done,
        fetched,
      });
      if (fetched) pages++;
      if (outcome.outcome === "lease_lost") return result({ status: "lease_lost" });

      for (const pending of outcome.needs_fetch ?? []) {
        let options: Record<string, unknown>;
        try {
          options = { fetched: await fetchStripeObject(stripe, pending.fetch, new Date(pending.event.created * 1000)) };
        } catch (e) {
          options = { fetch_error: stripeErrorText(e) };
        }
        const again = await store.applyFetchedEvent(run, pending.event, options);
        if (again.outcome === "lease_lost") return result({ status: "lease_lost" });
      }

      if (batch.done) {
        phase = outcome.phase ?? nextPhase[phase];
        cursor = null;
        break;
      }
      cursor = last ?? cursor;
    }
  }
  return result({ status: "complete" });
}
