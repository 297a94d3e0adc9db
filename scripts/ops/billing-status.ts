// `npm run ops -- billing status [--tenant <uuid>]`: billing as an operator checks it, from the
// database only (it never calls Stripe): per tenant its Stripe customer, subscription (status, plan,
// add-ons), sites used / allowed, last invoice, last webhook event and webhook failures in 24 h; the
// stripe-webhook ledger as a whole (events and failures in 24 h against the guide's < 1 %, events
// still failing, parked, waiting); billing-sync's last run and last complete one (its drift report).
import type { Command } from "commander";
import type postgres from "postgres";
import { uuid } from "./args.ts";
import { day, EVENT_CUSTOMER_SQL, money, PLAN_OF_INTERVAL, when } from "./billing-rows.ts";
import { type Context, defineCommand, type Options, OperationFailed, type Outcome } from "./command.ts";
import type { Cell, Output } from "./output.ts";

const NAME = "billing status";
/**
 * An event that failed at least once: the webhook counts its failed attempts (attempts) and keeps the
 * last error until a retry succeeds; rows written before `attempts` existed (the seed's) have the error only.
 */
const FAILED_ONCE_SQL = "(e.attempts > 0 or e.error is not null)";
/** An event whose last attempt failed: Stripe retries it (outcome failed; or the error of an older row). */
const FAILING_SQL = "(e.processed_at is null and (e.outcome = 'failed' or e.error is not null))";
/** The outcome, also for rows written before the webhook recorded one (the seed's): failed, processed or received. */
const OUTCOME_SQL = `coalesce(e.outcome, case when e.processed_at is not null then 'processed'
  when e.error is not null then 'failed' else 'received' end)`;
/** The operations guide's threshold for Stripe webhook errors ("Erreurs Stripe webhooks : < 1%"). */
export const WEBHOOK_FAILURE_THRESHOLD = 0.01;

export interface TenantStatus {
  tenant_id: string;
  name: string;
  customer: { stripe_customer_id: string; email: string | null; deleted_at: Date | null } | null;
  subscription: {
    stripe_subscription_id: string;
    status: string;
    plan: string | null;
    plan_interval: string;
    current_period_end: Date | null;
    cancel_at_period_end: boolean;
    addon_sites: number;
    /** billing-sync found Stripe no longer lists it (kept, stamped). */
    stripe_missing_since: Date | null;
  } | null;
  entitlement: { entitled: boolean; allowed_sites: number; used_sites: number; available_sites: number; grace_until: Date | null };
  last_invoice: {
    stripe_invoice_id: string;
    status: string;
    total_cents: number;
    currency: string;
    created_at: Date;
    paid_at: Date | null;
  } | null;
  last_event: { stripe_event_id: string; type: string; outcome: string; received_at: Date } | null;
  /** Events of the last 24 h about this tenant's customer that failed at least once (attempts > 0). */
  webhook_failures_24h: number;
  /** Events about it whose last attempt failed (Stripe will retry them). */
  events_failing: number;
}

export interface WebhookStatus {
  events_24h: number;
  failed_24h: number;
  /** failed_24h / events_24h (null without events). */
  failure_rate_24h: number | null;
  threshold: number;
  failing_now: number;
  parked: number;
  /** Received, not processed, not failed: being applied, or waiting for a fetch (needs_fetch). */
  waiting: number;
  last_received_at: Date | null;
  recent_failures: { stripe_event_id: string; type: string; outcome: string; attempts: number; error: string | null; received_at: Date }[];
}

/** billing-sync's daily reconciliation as its drift reports tell it (system_audit_logs, action billing_sync). */
export interface SyncStatus {
  last_run: { at: Date; run_id: string | null; status: string; drift: Record<string, Record<string, number>> | null; stop_reason: string | null; error: string | null } | null;
  last_complete_at: Date | null;
}

/** Every tenant (or one), with what its billing looks like now. */
export async function tenantStatuses(sql: postgres.Sql, tenantId: string | null): Promise<TenantStatus[]> {
  // The customer of each event: the webhook fills stripe_customer_id when it applies one, a failed
  // event has it in its payload only. One pass over billing_events, whatever the number of tenants.
  const rows = await sql<TenantStatus[]>`
    with ev as (
      select ${sql.unsafe(EVENT_CUSTOMER_SQL)} as customer, e.stripe_event_id, e.type, ${sql.unsafe(OUTCOME_SQL)} as outcome, e.received_at,
             ${sql.unsafe(FAILED_ONCE_SQL)} as failed_once, ${sql.unsafe(FAILING_SQL)} as failing
        from public.billing_events as e
    ), last_ev as (
      select distinct on (customer) customer, stripe_event_id, type, outcome, received_at
        from ev where customer is not null
       order by customer, received_at desc, stripe_event_id desc
    ), fails as (
      select customer,
             count(*) filter (where failed_once and received_at > now() - interval '24 hours')::int as failures_24h,
             count(*) filter (where failing)::int as failing
        from ev where customer is not null group by customer
    )
    select t.id::text as tenant_id, t.name,
           case when c.id is null then null else jsonb_build_object(
             'stripe_customer_id', c.stripe_customer_id, 'email', c.email, 'deleted_at', c.deleted_at) end as customer,
           case when s.id is null then null else jsonb_build_object(
             'stripe_subscription_id', s.stripe_subscription_id, 'status', s.status,
             'plan', case s.plan_interval when 'month' then 'monthly' when 'year' then 'annual' end,
             'plan_interval', s.plan_interval, 'current_period_end', s.current_period_end,
             'cancel_at_period_end', s.cancel_at_period_end, 'stripe_missing_since', s.stripe_missing_since,
             'addon_sites', coalesce((select sum(i.quantity) from public.subscription_items as i
                                       where i.subscription_id = s.id and i.kind = 'addon_site'), 0)) end as subscription,
           jsonb_build_object('entitled', be.entitled, 'allowed_sites', be.allowed_sites, 'used_sites', be.used_sites,
                              'available_sites', be.available_sites, 'grace_until', be.grace_until) as entitlement,
           (select jsonb_build_object('stripe_invoice_id', i.stripe_invoice_id, 'status', i.status,
                                      'total_cents', i.total_cents, 'currency', i.currency,
                                      'created_at', i.created_at, 'paid_at', i.paid_at)
              from public.invoices as i where i.tenant_id = t.id
             order by i.created_at desc, i.stripe_invoice_id desc limit 1) as last_invoice,
           case when le.stripe_event_id is null then null else jsonb_build_object(
             'stripe_event_id', le.stripe_event_id, 'type', le.type, 'outcome', le.outcome, 'received_at', le.received_at) end as last_event,
           coalesce(f.failures_24h, 0) as webhook_failures_24h,
           coalesce(f.failing, 0) as events_failing
      from public.tenants as t
      join public.billing_entitlements as be on be.tenant_id = t.id
      left join public.customers as c on c.tenant_id = t.id
      -- The subscription the entitlement reports: the entitling one, else the latest.
      left join public.subscriptions as s on s.id = be.subscription_id
      left join last_ev as le on le.customer = c.stripe_customer_id
      left join fails as f on f.customer = c.stripe_customer_id
     where ${tenantId}::uuid is null or t.id = ${tenantId}::uuid
     order by t.name, t.id`;
  // jsonb gives ISO strings: dates back as Date, as the other rows.
  const date = (v: unknown) => (typeof v === "string" ? new Date(v) : (v as Date | null));
  return rows.map((r) => ({
    ...r,
    customer: r.customer && { ...r.customer, deleted_at: date(r.customer.deleted_at) },
    subscription: r.subscription && {
      ...r.subscription,
      current_period_end: date(r.subscription.current_period_end),
      stripe_missing_since: date(r.subscription.stripe_missing_since),
    },
    entitlement: { ...r.entitlement, grace_until: date(r.entitlement.grace_until) },
    last_invoice: r.last_invoice &&
      { ...r.last_invoice, created_at: date(r.last_invoice.created_at)!, paid_at: date(r.last_invoice.paid_at) },
    last_event: r.last_event && { ...r.last_event, received_at: date(r.last_event.received_at)! },
  }));
}

/** The stripe-webhook ledger as a whole (every event, ours or not: unknown customers are parked). */
export async function webhookStatus(sql: postgres.Sql, tenantCustomer?: string | null): Promise<WebhookStatus> {
  const scope = tenantCustomer === undefined
    ? sql`true`
    : sql`${sql.unsafe(EVENT_CUSTOMER_SQL)} = ${tenantCustomer ?? ""}`;
  const [totals] = await sql<Omit<WebhookStatus, "failure_rate_24h" | "threshold" | "recent_failures">[]>`
    select count(*) filter (where received_at > now() - interval '24 hours')::int as events_24h,
           count(*) filter (where received_at > now() - interval '24 hours' and ${sql.unsafe(FAILED_ONCE_SQL)})::int as failed_24h,
           count(*) filter (where ${sql.unsafe(FAILING_SQL)})::int as failing_now,
           count(*) filter (where outcome = 'parked')::int as parked,
           count(*) filter (where processed_at is null and not ${sql.unsafe(FAILING_SQL)})::int as waiting,
           max(received_at) as last_received_at
      from public.billing_events as e where ${scope}`;
  const recent = await sql<WebhookStatus["recent_failures"]>`
    select stripe_event_id, type, ${sql.unsafe(OUTCOME_SQL)} as outcome, attempts, error, received_at
      from public.billing_events as e
     where ${scope} and ${sql.unsafe(FAILED_ONCE_SQL)} and received_at > now() - interval '24 hours'
     order by received_at desc, stripe_event_id desc limit 10`;
  return {
    ...totals,
    failure_rate_24h: totals.events_24h ? totals.failed_24h / totals.events_24h : null,
    threshold: WEBHOOK_FAILURE_THRESHOLD,
    recent_failures: [...recent],
  };
}

/** The last full billing-sync run's report, and when one last completed (tenant runs do not count). */
export async function syncStatus(sql: postgres.Sql): Promise<SyncStatus> {
  const [last] = await sql<{ at: Date; details: Record<string, unknown> }[]>`
    select created_at as at, details from public.system_audit_logs
     where area = 'billing' and action = 'billing_sync' order by created_at desc, id desc limit 1`;
  const [complete] = await sql<{ at: Date }[]>`
    select created_at as at from public.system_audit_logs
     where area = 'billing' and action = 'billing_sync' and details ->> 'status' = 'complete'
     order by created_at desc, id desc limit 1`;
  const d = last?.details ?? {};
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    last_run: last
      ? {
        at: last.at,
        run_id: str(d.run_id),
        status: str(d.status) ?? "unknown",
        drift: typeof d.drift === "object" && d.drift !== null ? d.drift as Record<string, Record<string, number>> : null,
        stop_reason: str(d.stop_reason),
        error: str(d.error),
      }
      : null,
    last_complete_at: complete?.at ?? null,
  };
}

/** "customers +0 ~1 missing 0 · subscriptions …" from a drift report. */
function describeDrift(drift: Record<string, Record<string, number>> | null): string {
  if (!drift) return "—";
  const order = ["customers", "subscriptions", "invoices"];
  return Object.entries(drift)
    .sort(([a], [b]) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))
    .map(([table, c]) => `${table}: ${c.created ?? 0} created, ${c.changed ?? 0} changed, ${c.missing ?? 0} missing`)
    .join("\n");
}

function ago(d: Date | null): string {
  if (!d) return "never";
  const h = (Date.now() - new Date(d).getTime()) / 3_600_000;
  return `${when(d)} (${h < 1 ? `${Math.max(0, Math.round(h * 60))} min` : `${Math.round(h)} h`} ago)`;
}

const pct = (r: number | null) => (r === null ? "—" : `${(r * 100).toFixed(r < 0.1 && r > 0 ? 2 : 1).replace(/\.0+$/, "")} %`);

function subscriptionCell(t: TenantStatus, out: Output): string | null {
  const s = t.subscription;
  if (!s) return null;
  const c = out.colors;
  const colour = s.status === "active" || s.status === "trialing" ? c.green : s.status === "past_due" ? c.yellow : c.red;
  return colour(s.status) + (s.cancel_at_period_end ? ` (ends ${day(s.current_period_end)})` : "") +
    (s.stripe_missing_since ? c.red(` (not in Stripe since ${day(s.stripe_missing_since)})`) : "");
}

function invoiceCell(t: TenantStatus): string | null {
  const i = t.last_invoice;
  return i ? `${i.status} ${money(i.total_cents, i.currency)} · ${day(i.paid_at ?? i.created_at)}` : null;
}

function eventCell(t: TenantStatus): string | null {
  const e = t.last_event;
  return e ? `${e.type} · ${e.outcome ?? "received"} · ${when(e.received_at)}` : null;
}

function render(out: Output, tenants: TenantStatus[], hooks: WebhookStatus, sync: SyncStatus, one: boolean): void {
  const c = out.colors;
  if (one) {
    const t = tenants[0];
    const s = t.subscription;
    const e = t.entitlement;
    out.heading(`Billing of ${t.name}`);
    out.fields([
      ["Tenant", t.tenant_id],
      ["Customer", t.customer ? `${t.customer.stripe_customer_id}${t.customer.email ? ` · ${t.customer.email}` : ""}${t.customer.deleted_at ? ` · deleted ${when(t.customer.deleted_at)}` : ""}` : "none (never went through Checkout)"],
      ["Subscription", s ? `${s.stripe_subscription_id} · ${subscriptionCell(t, out)}` : "none"],
      ["Plan", s ? `${s.plan ?? s.plan_interval} · period ends ${day(s.current_period_end) ?? "—"}${s.cancel_at_period_end ? " · cancels then" : ""}` : null],
      ["Site add-ons", s ? String(s.addon_sites) : null],
      ["Sites", `${e.used_sites} used / ${e.allowed_sites} allowed${e.entitled ? "" : " (not entitled: 1 included site)"}${e.grace_until ? ` · past due, grace until ${when(e.grace_until)}` : ""}`],
      ["Last invoice", t.last_invoice ? `${t.last_invoice.stripe_invoice_id} · ${invoiceCell(t)}` : null],
      ["Last webhook event", eventCell(t)],
      ["Webhook failures 24 h", t.webhook_failures_24h ? c.red(String(t.webhook_failures_24h)) : "0"],
      ["Events still failing", t.events_failing ? c.red(String(t.events_failing)) : "0"],
    ]);
  } else {
    out.heading(`Billing: ${tenants.length} tenant${tenants.length === 1 ? "" : "s"}`);
    out.table(
      ["Tenant", "Customer", "Subscription", "Plan", "Add-ons", "Sites used/allowed", "Last invoice", "Last webhook event", "Fail 24h"],
      tenants.map((t): Cell[] => [
        t.name,
        t.customer?.stripe_customer_id,
        subscriptionCell(t, out),
        t.subscription ? (t.subscription.plan ?? PLAN_OF_INTERVAL[t.subscription.plan_interval]) : null,
        t.subscription?.addon_sites,
        `${t.entitlement.used_sites}/${t.entitlement.allowed_sites}`,
        invoiceCell(t),
        eventCell(t),
        t.webhook_failures_24h ? c.red(String(t.webhook_failures_24h)) : 0,
      ]),
    );
  }
  const over = hooks.failure_rate_24h !== null && hooks.failure_rate_24h >= hooks.threshold;
  out.heading(one ? "stripe-webhook, this tenant's events" : "stripe-webhook");
  out.fields([
    [
      "Last 24 h",
      `${hooks.events_24h} event${hooks.events_24h === 1 ? "" : "s"}, ${hooks.failed_24h} failed at least once (` +
        (over ? c.red(pct(hooks.failure_rate_24h)) : pct(hooks.failure_rate_24h)) + `; the guide's threshold: < ${pct(hooks.threshold)})`,
    ],
    ["Still failing", hooks.failing_now ? c.red(`${hooks.failing_now} (Stripe retries them)`) : "0"],
    ["Parked", `${hooks.parked}${hooks.parked ? " (about a customer no tenant was tied to when they arrived: replayed by its next event)" : ""}`],
    ["Waiting", `${hooks.waiting}${hooks.waiting ? " (received, not applied yet: being applied, or waiting for a fetch)" : ""}`],
    ["Last event received", when(hooks.last_received_at)],
  ]);
  out.heading("billing-sync (daily reconciliation, 04:00 Montréal)");
  const r = sync.last_run;
  out.fields([
    ["Last complete run", ago(sync.last_complete_at)],
    ["Last run", r ? `${when(r.at)} · ${r.status === "complete" ? r.status : c.yellow(r.status)}${r.stop_reason ? ` (${r.stop_reason})` : ""}${r.error ? ` · ${r.error}` : ""}` : "never"],
    ["Its drift", r ? describeDrift(r.drift) : null],
  ]);
  if (hooks.recent_failures.length) {
    out.heading("Failures of the last 24 h");
    out.table(
      ["Event", "Type", "Outcome", "Attempts", "Error", "Received (UTC)"],
      hooks.recent_failures.map((f) => [f.stripe_event_id, f.type, f.outcome, f.attempts, f.error?.split("\n")[0].slice(0, 120), when(f.received_at)]),
    );
  }
}

const status = defineCommand({
  name: "status",
  summary: "billing per tenant (customer, subscription, plan, add-ons, sites, last invoice, last webhook event, failures in 24 h)",
  usage: "[--tenant <uuid>]",
  help: "Reads the database (SUPABASE_DB_URL; it never calls Stripe): per tenant its Stripe customer, the " +
    "subscription its entitlement counts (status, plan, site add-ons), sites used / allowed, the last " +
    "invoice, the last webhook event about its customer and the events that failed in the last 24 h; then " +
    "stripe-webhook as a whole: events and failures in 24 h against the operations guide's < 1 %, events " +
    "still failing (Stripe retries them), parked events (customers not tied to a tenant), the last ones " +
    "with their error; billing-sync's last full run (status, drift) and when one last completed. With " +
    "--tenant, one tenant in detail and its events only.",
  examples: ["billing status", "billing status --tenant 11111111-1111-4111-8111-111111111111", "billing status --json"],
  options(cmd: Command) {
    cmd.allowExcessArguments(false).option("--tenant <uuid>", "one tenant, in detail", uuid);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    target.need(NAME, "SUPABASE_DB_URL");
    const tenantId: string | null = opts.tenant ?? null;
    const progress = ctx.out.progress("reading billing…");
    let found;
    try {
      found = await target.withDb(NAME, async (sql) => {
        const tenants = await tenantStatuses(sql, tenantId);
        const scope = tenantId === null ? undefined : tenants[0]?.customer?.stripe_customer_id ?? null;
        return { tenants, webhooks: await webhookStatus(sql, scope), sync: await syncStatus(sql) };
      });
    } finally {
      progress.stop();
    }
    const { tenants, webhooks, sync } = found!;
    if (tenantId !== null && tenants.length === 0) throw new OperationFailed(`no tenant ${tenantId} in the database`, { tenant_id: tenantId });
    return {
      ok: true,
      data: { tenants, webhooks, sync },
      render: (out) => render(out, tenants, webhooks, sync, tenantId !== null),
    };
  },
});

export default status;
