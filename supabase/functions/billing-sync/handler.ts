// billing-sync: the Stripe → database reconciliation (issue 15). verify_jwt is off: the caller is
// identified here (_shared/auth.ts).
//
// Callers and what each may do:
//   * the service (a secret API key: pg_cron through pg_net with the key from Vault, `npm run ops --
//     billing sync`, scripts): a FULL run of the account (undelivered events of the last 30 days,
//     every customer, subscription and invoice, the missing-row check), resuming the open run if
//     there is one; or one tenant's run ({"tenant_id"}). Options: {"run_id"} continue that run (the
//     schedule's requests), {"restart": true} abandon the open run and start over, {"max_pages": n}
//     and {"time_budget_ms": n} stop this invocation sooner (tests, operators);
//   * a tenant owner or admin (user session): {"tenant_id"} → a run of that tenant's Stripe customer
//     only (its customer, subscriptions and invoices; a few API calls), at most one a minute per
//     tenant (429 with Retry-After). A full run is an operator action: never a user's. A plain
//     member gets 403, a tenant the user does not belong to 404 (as RLS hides it);
//   * nobody → 401.
//
// One invocation works at most BILLING_SYNC_TIME_BUDGET_SECONDS (default 100 s, under the
// platform's 150 s request limit) and DEFAULT_MAX_PAGES pages (under its 2 s of CPU per request),
// then stops: the run is recorded incomplete with its checkpoint
// and the next call resumes it (the schedule's billing-sync-continue job, the ops command's next
// call). A second call while an invocation holds the run → 409 sync_in_progress.
//
// Answer: the run's report, as in its audit row (system_audit_logs, area billing, action
// billing_sync | billing_sync_tenant): {run_id, status: complete | incomplete | failed, drift
// {customers|subscriptions|invoices: {seen, created, changed, unchanged, stale, skipped, failed,
// missing}}, api_calls, events_replayed, stop_reason (incomplete), error (failed), …} plus
// `invocation` {outcome: started | resumed, pages, api_calls}. 200 for complete and incomplete; 502
// for failed (the error says why, never a key).
import { z } from "zod";
import { callerOf } from "../_shared/auth.ts";
import { asService, asUser, db, type UserClaims } from "../_shared/db.ts";
import { settings } from "../_shared/env.ts";
import { handle, HttpError, mediaTypeOf, parseJson, readText, requireMethod } from "../_shared/http.ts";
import { Stripe, stripeClientConfig } from "../_shared/stripe/client.ts";
import { priceKinds, stripeErrorText } from "../_shared/stripe/objects.ts";
import { type ClaimedRun, type InvocationResult, runInvocation } from "./engine.ts";
import { type ClaimRequest, type FinishOutcome, SqlRunStore } from "./store.ts";
import { createWire } from "./wire.ts";

export const DEFAULT_TIME_BUDGET_SECONDS = 100;
export const DEFAULT_RATE_LIMIT = 10;
/**
 * Pages per invocation unless the caller says otherwise: hosted functions get 2 s of CPU per
 * request, and a page costs the worker about 10-15 ms of CPU (npm run bench -- billing-sync), so an
 * invocation stops (incomplete, page_budget) well before; the next call goes on.
 */
export const DEFAULT_MAX_PAGES = 100;
/** An admin's tenant run: at most one a minute per tenant. */
export const ADMIN_COOLDOWN_SECONDS = 60;
/** The lease outlives the budget by this much (the final SQL, a slow last page). */
const LEASE_MARGIN_SECONDS = 60;
const REQUEST_LIMIT = 4096;

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a UUID")
  .transform((s) => s.toLowerCase());

const serviceBody = z.strictObject({
  tenant_id: uuid.optional(),
  run_id: uuid.optional(),
  restart: z.boolean().optional(),
  max_pages: z.number().int().min(1).max(1_000_000).optional(),
  time_budget_ms: z.number().int().min(1).max(140_000).optional(),
  trigger: z.enum(["cron", "service"]).optional(),
});
const adminBody = z.strictObject({ tenant_id: uuid });

function badRequest(message: string, field?: string): HttpError {
  return new HttpError(400, "bad_request", message, field ? { details: { field } } : {});
}

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue.code === "unrecognized_keys") throw badRequest(`unknown field(s): ${issue.keys.join(", ")}`, issue.keys[0]);
  const field = issue.path.length ? String(issue.path[0]) : undefined;
  if (!field) throw badRequest("the body must be a JSON object");
  throw badRequest(issue.code === "invalid_type" ? `${field} must be a ${issue.expected}` : `${field} ${issue.message}`, field);
}

/** The JSON body, or {} when there is none (a bare POST starts or resumes a full run). */
async function readBody(req: Request): Promise<unknown> {
  if (req.body === null || req.headers.get("content-length") === "0") return {};
  const text = await readText(req, { limit: REQUEST_LIMIT });
  if (text.trim() === "") return {};
  if (mediaTypeOf(req) !== "application/json") {
    throw new HttpError(415, "unsupported_media_type", "content-type must be application/json");
  }
  return parseJson(text);
}

interface Plan {
  claim: Omit<ClaimRequest, "livemode" | "lease_seconds">;
  maxPages?: number;
  timeBudgetMs?: number;
}

async function planForUser(claims: UserClaims, input: unknown): Promise<Plan> {
  const body = parse(adminBody, input);
  const [row] = await asUser(claims, (sql) =>
    sql<{ admin: boolean; member: boolean }[]>`
      select ${body.tenant_id}::uuid in (select private.admin_tenant_ids()) as admin,
             ${body.tenant_id}::uuid in (select private.member_tenant_ids()) as member`);
  if (!row?.member) throw new HttpError(404, "not_found", "tenant not found");
  if (!row.admin) throw new HttpError(403, "forbidden", "only an owner or admin of the tenant may sync its billing");
  return {
    claim: {
      scope: "tenant",
      tenant_id: body.tenant_id,
      trigger: "admin",
      requested_by: `user:${claims.sub}`,
      cooldown_seconds: ADMIN_COOLDOWN_SECONDS,
    },
  };
}

function planForService(keyName: string, input: unknown): Plan {
  const body = parse(serviceBody, input);
  if (body.run_id && (body.tenant_id || body.restart)) throw badRequest("run_id goes alone (it names the run to continue)", "run_id");
  const trigger = body.trigger ?? "service";
  return {
    claim: {
      scope: body.tenant_id ? "tenant" : "full",
      tenant_id: body.tenant_id,
      trigger,
      requested_by: trigger === "cron" ? "pg_cron" : `service:${keyName}`,
      run_id: body.run_id,
      restart: body.restart,
    },
    maxPages: body.max_pages,
    timeBudgetMs: body.time_budget_ms,
  };
}

export const handler = handle(async (req, { requestId }) => {
  requireMethod(req, "POST");
  const started = Date.now();
  const caller = await callerOf(req);
  if (caller.kind === "nobody") {
    throw new HttpError(401, "unauthorized", "the service's secret key, or a tenant admin's session, is required");
  }
  const input = await readBody(req);
  const plan = caller.kind === "user"
    ? await planForUser({ ...caller.claims, sub: caller.userId, role: "authenticated" } as UserClaims, input)
    : planForService(caller.via === "secret_key" ? caller.keyName : "legacy_service_role", input);

  const s = settings("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "BILLING_SYNC_TIME_BUDGET_SECONDS", "BILLING_SYNC_RATE_LIMIT");
  const budgetMs = Math.min(
    (s.BILLING_SYNC_TIME_BUDGET_SECONDS ?? DEFAULT_TIME_BUDGET_SECONDS) * 1000,
    plan.timeBudgetMs ?? Infinity,
  );
  const livemode = /^(sk|rk)_live_/.test(s.STRIPE_SECRET_KEY);
  const store = new SqlRunStore(db(), priceKinds());

  if (plan.claim.scope === "tenant") {
    const rows = await asService((sql) =>
      sql<{ stripe_customer_id: string }[]>`
        select c.stripe_customer_id from public.customers as c where c.tenant_id = ${plan.claim.tenant_id!}::uuid`
    );
    if (!rows.length) throw new HttpError(404, "no_billing_customer", "this tenant has no Stripe customer yet");
    plan.claim.stripe_customer_id = rows[0].stripe_customer_id;
  }

  const claimed = await store.claim({
    ...plan.claim,
    livemode,
    lease_seconds: Math.ceil(budgetMs / 1000) + LEASE_MARGIN_SECONDS,
  });
  switch (claimed.outcome) {
    case "busy":
      throw new HttpError(409, "sync_in_progress", "another invocation is working on this run", {
        details: { run_id: claimed.run_id, lease_until: claimed.lease_until },
      });
    case "cooldown":
      throw new HttpError(429, "too_soon", "this tenant's billing was synced less than a minute ago", {
        headers: { "retry-after": String(claimed.retry_after_seconds) },
        details: { retry_after_seconds: claimed.retry_after_seconds },
      });
    case "not_found":
      throw new HttpError(404, "run_not_found", "no such run", { details: { run_id: claimed.run_id } });
    case "finished":
      // The schedule asked to continue a run that is over: nothing to do.
      return Response.json({ ...claimed.run, invocation: { outcome: "finished", pages: 0, api_calls: 0 } });
  }
  const run: ClaimedRun = claimed.run;

  const wire = createWire({ ratePerSecond: s.BILLING_SYNC_RATE_LIMIT ?? DEFAULT_RATE_LIMIT });
  const stripe = new Stripe(s.STRIPE_SECRET_KEY, {
    ...stripeClientConfig(s.STRIPE_API_BASE),
    httpClient: Stripe.createFetchHttpClient(wire.fetch),
  });

  let result: InvocationResult;
  try {
    result = await runInvocation(run, {
      stripe,
      wire,
      store,
      deadline: started + budgetMs,
      maxPages: plan.maxPages ?? DEFAULT_MAX_PAGES,
    });
  } catch (error) {
    // Ours (the database, a bug): the run fails with what can be said; the stack goes to the log.
    console.error(`[${requestId}] billing-sync run ${run.id}:`, error);
    await store.finish(run, {
      status: "failed",
      error: `internal error (request ${requestId}): ${stripeErrorText(error)}`,
      api_calls: 0,
      rate_limited: 0,
    }).catch(() => {});
    throw error;
  }

  if (result.report.status === "lease_lost") {
    throw new HttpError(409, "lease_lost", "the run was taken over by another invocation", { details: { run_id: run.id } });
  }
  const report = result.report;
  const finished: FinishOutcome = await store.finish(run, {
    status: report.status,
    stop_reason: report.status === "incomplete" ? report.stop_reason : undefined,
    error: report.status === "failed" ? report.error : undefined,
    api_calls: result.pendingApiCalls,
    rate_limited: result.pendingRateLimited,
  });
  if (finished.outcome === "lease_lost") {
    throw new HttpError(409, "lease_lost", "the run was taken over by another invocation", { details: { run_id: run.id } });
  }
  const body = {
    ...finished.report,
    invocation: { outcome: claimed.outcome, took_over: claimed.took_over, pages: result.pages, api_calls: wire.calls },
  };
  return Response.json(body, { status: finished.report.status === "failed" ? 502 : 200 });
});
