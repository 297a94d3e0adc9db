// `npm run ops -- billing sync`: the Stripe → database reconciliation now, as the schedule runs it.
// It calls the billing-sync function as the service (the secret API key, as pg_cron does through
// pg_net), and follows the run: an invocation stops after its own budget (100 pages or
// BILLING_SYNC_TIME_BUDGET_SECONDS, hosted functions' CPU and wall-clock limits) with a checkpoint,
// and the command asks again with the run's id until the run is complete, failed, or stopped for a
// reason asking again at once would not cure (Stripe's rate limit beyond what an invocation may
// wait, Stripe unavailable). The function's answer is the run's report so far (README "Stripe
// reconciliation (`billing-sync`)"): drift per table, API calls, undelivered events replayed; the
// command shows it, with each invocation and the time it took.
import type { Command } from "commander";
import { uuid, wholeNumber } from "./args.ts";
import { when } from "./billing-rows.ts";
import { type Context, defineCommand, OperationFailed, type Options, type Outcome } from "./command.ts";
import type { Cell, Output } from "./output.ts";
import { callFunctionAsService, describeFailure, errorOf, type FunctionAnswer } from "./twilio.ts";

const NAME = "billing sync";
const TABLES = ["customers", "subscriptions", "invoices"] as const;
/** A full run's phases in order (README "What a full run does"); a tenant run skips `events`. */
const PHASES = ["events", "customers", "subscriptions", "invoices", "missing", "done"] as const;
/** Stops the next invocation goes on from at once: the invocation's own budget was spent. */
const BUDGET_STOPS = new Set(["page_budget", "time_budget"]);
/** The schedule's billing-sync-continue gives a run at most 100 invocations: so does the command. */
export const DEFAULT_MAX_INVOCATIONS = 100;
/** The function refuses more (billing-sync/handler.ts, max_pages). */
const MAX_PAGES = 1_000_000;

type Counts = Record<string, number>;

/** billing-sync's answer (private.billing_sync_report plus `invocation`). */
interface SyncReport {
  run_id: string;
  status: "complete" | "incomplete" | "failed" | "abandoned";
  scope: "full" | "tenant";
  tenant_id?: string;
  livemode?: boolean;
  phase?: string;
  drift?: Partial<Record<(typeof TABLES)[number], Counts>>;
  api_calls?: number;
  rate_limited?: number;
  events_seen?: number;
  events_replayed?: number;
  pages?: number;
  invocations?: number;
  stop_reason?: string;
  error?: string;
  failures?: unknown[];
  started_at?: string;
  finished_at?: string;
  invocation?: { outcome?: string; took_over?: boolean; pages?: number; api_calls?: number };
}

/** One call of the function by this command. */
export interface InvocationRow {
  n: number;
  http_status: number;
  request_id: string | null;
  /** started | resumed | finished (the run was over), or the error of a refused call. */
  outcome: string | null;
  took_over: boolean;
  pages: number | null;
  api_calls: number | null;
  status: string | null;
  stop_reason: string | null;
  seconds: number;
}

function isReport(body: unknown): body is SyncReport {
  if (typeof body !== "object" || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.run_id === "string" && typeof b.status === "string";
}

/** Milliseconds → seconds, to the millisecond (--json); the human view shows tenths. */
const seconds = (ms: number) => Math.round(ms) / 1000;
const COUNTERS = ["created", "changed", "missing", "seen", "unchanged", "stale", "skipped", "failed"];

/** The drift in a stable order (tables as the run walks them, the README's counters first): jsonb sorts keys its own way. */
function orderedDrift(drift: SyncReport["drift"]): Record<string, Counts> | null {
  if (!drift) return null;
  const counts = (c: Counts = {}) =>
    Object.fromEntries([...COUNTERS.map((k) => [k, c[k] ?? 0]), ...Object.entries(c).filter(([k]) => !COUNTERS.includes(k))]);
  return Object.fromEntries([
    ...TABLES.map((t) => [t, counts(drift[t])]),
    ...Object.entries(drift).filter(([t]) => !(TABLES as readonly string[]).includes(t)),
  ]);
}

/** "[██░░] subscriptions": how far the run is through its lists (there are no totals to count against). */
function phaseBar(phase: string | undefined): string {
  const lists = 4; // events, customers, subscriptions, invoices
  const at = Math.min(lists, Math.max(0, PHASES.indexOf((phase ?? "events") as (typeof PHASES)[number])));
  return `[${"█".repeat(at)}${"░".repeat(lists - at)}] ${phase ?? "starting"}`;
}

/** Why a run that did not complete stopped, for the operator (one line, what to do next). */
function whyNotComplete(report: SyncReport, lastInvocation: number, maxInvocations: number): string {
  const run = `run ${report.run_id}`;
  const again = "run `npm run ops -- billing sync` again to resume it from there";
  switch (report.status) {
    case "failed":
      return `failed: ${report.error ?? "no reason given"} (${run}; nothing after the last stored page was applied)`;
    case "abandoned":
      return `the ${run} was abandoned (older than a day, or restarted): \`npm run ops -- billing sync\` starts a new one`;
    case "incomplete":
      switch (report.stop_reason) {
        case "rate_limited":
          return `incomplete (rate_limited): Stripe kept answering 429 longer than an invocation may wait; ` +
            `the ${run} stopped at ${report.phase ?? "?"} with its checkpoint: ${again}, later`;
        case "stripe_unavailable":
          return `incomplete (stripe_unavailable): Stripe could not be reached or kept answering 5xx; ` +
            `the ${run} stopped at ${report.phase ?? "?"} with its checkpoint: ${again}, later`;
        default:
          if (BUDGET_STOPS.has(report.stop_reason ?? "") && lastInvocation >= maxInvocations) {
            return `incomplete after ${lastInvocation} invocation${lastInvocation === 1 ? "" : "s"} (--max-invocations ${maxInvocations}): ` +
              `the ${run} is at ${report.phase ?? "?"}; ${again}`;
          }
          return `incomplete (${report.stop_reason ?? "no reason given"}): the ${run} is at ${report.phase ?? "?"}; ${again}`;
      }
    default:
      return `the ${run} ended ${report.status}`;
  }
}

/** Why the function refused a call (not a report): the error, and what to do for the usual ones. */
function whyRefused(answer: FunctionAnswer): string {
  const body = (answer.json ?? {}) as Record<string, unknown>;
  const { error } = errorOf(answer);
  const base = `billing-sync answered ${describeFailure(answer)}`;
  if (error === "sync_in_progress") {
    const until = typeof body.lease_until === "string" ? ` until ${when(body.lease_until)} UTC` : "";
    return `${base} (run ${body.run_id ?? "?"} is held${until} by another invocation: the schedule's ` +
      `billing-sync-continue or another operator; try again after it)`;
  }
  if (answer.status === 401) return `${base} (the target's SUPABASE_SECRET_KEY is not one of the project's secret keys)`;
  if (answer.status === 404 && error === "no_billing_customer") return `${base} (the tenant never went through Checkout: nothing to sync)`;
  return base;
}

function driftRows(report: SyncReport | null, out: Output): Cell[][] {
  const c = out.colors;
  const n = (counts: Counts | undefined, key: string) => counts?.[key] ?? 0;
  const flag = (v: number, colour: (s: string) => string) => (v ? colour(String(v)) : 0);
  return TABLES.map((table) => {
    const d = report?.drift?.[table];
    return [
      table,
      n(d, "seen"),
      flag(n(d, "created"), c.yellow),
      flag(n(d, "changed"), c.yellow),
      flag(n(d, "missing"), c.red),
      n(d, "unchanged"),
      n(d, "stale"),
      n(d, "skipped"),
      flag(n(d, "failed"), c.red),
    ];
  });
}

function render(out: Output, report: SyncReport | null, rows: InvocationRow[], durationMs: number, failure: string | undefined): void {
  const c = out.colors;
  const status = report?.status ?? "not run";
  const coloured = status === "complete" ? c.green(status) : status === "incomplete" ? c.yellow(status) : c.red(status);
  out.heading(`billing-sync: ${report ? coloured : c.red("refused")}`);
  const scope = report ? (report.scope === "tenant" ? `tenant ${report.tenant_id ?? "?"}` : "full (every customer, subscription and invoice)") : null;
  const calls = rows.length;
  out.fields([
    ["Run", report ? `${report.run_id}${report.started_at ? ` · started ${when(report.started_at)} UTC` : ""}` : null],
    ["Scope", scope],
    ["Mode", report?.livemode === undefined ? null : report.livemode ? "live" : "test"],
    [
      "Status",
      report
        ? coloured + (report.stop_reason ? ` (${report.stop_reason}, at ${report.phase ?? "?"})` : "") + (report.error ? ` · ${report.error}` : "")
        : null,
    ],
    [
      "Invocations",
      `${calls} by this command` + (report?.invocations !== undefined && report.invocations !== calls ? ` (the run: ${report.invocations})` : "") +
        (report?.pages !== undefined ? ` · ${report.pages} page${report.pages === 1 ? "" : "s"}` : ""),
    ],
    ["API calls", report ? `${report.api_calls ?? 0}${report.rate_limited ? ` (${report.rate_limited} answered 429)` : ""}` : null],
    ["Undelivered events", report && report.scope !== "tenant" ? `${report.events_seen ?? 0} found, ${report.events_replayed ?? 0} replayed` : null],
    ["Duration", `${(durationMs / 1000).toFixed(1)} s`],
  ]);
  if (report) {
    out.heading("Drift (rows repaired from Stripe's copy; missing: kept, stamped stripe_missing_since)");
    out.table(["Table", "Seen", "Created", "Changed", "Missing", "Unchanged", "Stale", "Skipped", "Failed"], driftRows(report, out));
  }
  if (calls > 1 || failure) {
    out.heading("Invocations");
    out.table(
      ["#", "HTTP", "Outcome", "Pages", "API calls", "Ended", "Seconds"],
      rows.map((r) => [r.n, r.http_status, r.outcome, r.pages, r.api_calls, r.status ? `${r.status}${r.stop_reason ? ` (${r.stop_reason})` : ""}` : null, r.seconds.toFixed(1)]),
    );
  }
}

const sync = defineCommand({
  name: "sync",
  summary: "run billing-sync now (Stripe → customers, subscriptions, invoices), following the run to its end; the drift it repaired",
  usage: "[--tenant <uuid>] [--restart] [--max-pages <n>] [--max-invocations <n>]",
  help: "Calls the billing-sync function as the service (SUPABASE_URL, SUPABASE_SECRET_KEY), as the 04:00 " +
    "schedule does: a full reconciliation of customers, subscriptions (with items) and invoices, and the " +
    "events Stripe could not deliver in the last 30 days, or with --tenant that tenant's Stripe customer " +
    "only. It resumes the open run if there is one (--restart abandons it and starts over). Each " +
    "invocation stops after its budget (100 pages, or --max-pages; BILLING_SYNC_TIME_BUDGET_SECONDS) with " +
    "a checkpoint: the command calls again with the run's id until the run is over (at most " +
    `--max-invocations, default ${DEFAULT_MAX_INVOCATIONS}). Then the drift per table (created, changed, ` +
    "missing…), the API calls, the replayed events, each invocation and the duration. Interrupting the " +
    "command leaves the run at its last checkpoint (the invocation under way finishes on the server).\n\n" +
    "Exit codes: 0 the run is complete; 1 it is not (incomplete: Stripe's rate limit or Stripe unavailable, " +
    "--max-invocations reached; failed; or the function refused, e.g. 409 while another invocation " +
    "holds the run), with the reason on stderr; 64 usage.",
  examples: [
    "billing sync",
    "billing sync --tenant 11111111-1111-4111-8111-111111111111",
    "billing sync --restart --max-pages 20",
    "--json billing sync",
  ],
  options(cmd: Command) {
    cmd.allowExcessArguments(false)
      .option("--tenant <uuid>", "that tenant's Stripe customer only (its customer, subscriptions, invoices)", uuid)
      .option("--restart", "abandon the open full run and start over")
      .option("--max-pages <n>", "pages per invocation (default: the function's, 100)", wholeNumber(1, MAX_PAGES))
      .option("--max-invocations <n>", `stop following the run after this many calls (default ${DEFAULT_MAX_INVOCATIONS})`, wholeNumber(1, 10_000));
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    target.need(NAME, "SUPABASE_URL", "SUPABASE_SECRET_KEY");
    const maxInvocations: number = opts.maxInvocations ?? DEFAULT_MAX_INVOCATIONS;
    const maxPages = opts.maxPages === undefined ? {} : { max_pages: opts.maxPages as number };
    let body: Record<string, unknown> = {
      ...(opts.tenant ? { tenant_id: opts.tenant } : {}),
      ...(opts.restart ? { restart: true } : {}),
      ...maxPages,
    };

    const started = performance.now();
    const rows: InvocationRow[] = [];
    let report: SyncReport | null = null;
    let refused: FunctionAnswer | null = null;
    let unreachable: OperationFailed | null = null;

    // Short enough for an 80-column terminal (a wrapped spinner line is redrawn on a new line).
    const progress = ctx.out.progress("billing-sync: starting…");
    let state = "starting";
    const tick = setInterval(() => progress.text(`billing-sync ${state} · ${Math.round((performance.now() - started) / 1000)} s`), 1000);
    try {
      for (let n = 1; n <= maxInvocations; n++) {
        state = `${phaseBar(report?.phase)} · ${report?.pages ?? 0} pages · ${report?.api_calls ?? 0} calls · call ${n}`;
        progress.text(`billing-sync ${state}`);
        const t0 = performance.now();
        let answer: FunctionAnswer;
        try {
          answer = await callFunctionAsService(target, NAME, "billing-sync", body);
        } catch (error) {
          // Unreachable before any invocation: nothing to show but that (exit 1). After some: the
          // run so far, and why the command could not go on.
          if (error instanceof OperationFailed && report) {
            unreachable = error;
            break;
          }
          throw error;
        }
        const ms = performance.now() - t0;
        const requestId = answer.requestId ?? null;
        if ((answer.status === 200 || answer.status === 502) && isReport(answer.json)) {
          report = answer.json;
          rows.push({
            n,
            http_status: answer.status,
            request_id: requestId,
            outcome: report.invocation?.outcome ?? null,
            took_over: report.invocation?.took_over === true,
            pages: report.invocation?.pages ?? null,
            api_calls: report.invocation?.api_calls ?? null,
            status: report.status,
            stop_reason: report.stop_reason ?? null,
            seconds: seconds(ms),
          });
          if (report.status === "incomplete" && BUDGET_STOPS.has(report.stop_reason ?? "")) {
            // The same run, from its checkpoint (the run's id: another open run is not ours to resume).
            body = { run_id: report.run_id, ...maxPages };
            continue;
          }
          break;
        }
        refused = answer;
        rows.push({
          n,
          http_status: answer.status,
          request_id: requestId,
          outcome: errorOf(answer).error ?? null,
          took_over: false,
          pages: null,
          api_calls: null,
          status: null,
          stop_reason: null,
          seconds: seconds(ms),
        });
        break;
      }
    } finally {
      clearInterval(tick);
      progress.stop();
    }
    const durationMs = performance.now() - started;

    const complete = report?.status === "complete" && !refused && !unreachable;
    const reasons: string[] = [];
    if (report && report.status !== "complete") reasons.push(whyNotComplete(report, rows.length, maxInvocations));
    if (refused) reasons.push(whyRefused(refused));
    if (unreachable) reasons.push(unreachable.message);
    if (report?.status === "complete" && (refused || unreachable)) reasons.unshift(`the run ${report.run_id} completed, then`);
    const failure = complete ? undefined : reasons.join("; ");

    const refusal = refused
      ? { http_status: refused.status, request_id: refused.requestId ?? null, ...errorOf(refused), details: detailsOf(refused) }
      : null;
    const data: Record<string, unknown> = {
      run_id: report?.run_id ?? null,
      status: report?.status ?? null,
      scope: report?.scope ?? (opts.tenant ? "tenant" : "full"),
      tenant_id: report?.tenant_id ?? opts.tenant ?? null,
      phase: report?.phase ?? null,
      stop_reason: report?.stop_reason ?? null,
      error: report?.error ?? null,
      drift: orderedDrift(report?.drift),
      api_calls: report?.api_calls ?? null,
      rate_limited: report?.rate_limited ?? null,
      events_seen: report?.events_seen ?? null,
      events_replayed: report?.events_replayed ?? null,
      pages: report?.pages ?? null,
      run_invocations: report?.invocations ?? null,
      started_at: report?.started_at ?? null,
      finished_at: report?.finished_at ?? null,
      duration_seconds: seconds(durationMs),
      invocations: rows,
      refusal,
      ...(unreachable ? { unreachable: unreachable.message } : {}),
      ...(failure ? { reason: failure } : {}),
    };
    return { ok: complete, data, failure, render: (out) => render(out, report, rows, durationMs, failure) };
  },
});

/** The `details` of a refusal (_shared/http.ts spreads them into the body: run_id, lease_until…), never a key. */
function detailsOf(answer: FunctionAnswer): Record<string, unknown> {
  const body = answer.json;
  if (typeof body !== "object" || body === null) return {};
  const { error: _e, message: _m, ...rest } = body as Record<string, unknown>;
  return rest;
}

export default sync;
