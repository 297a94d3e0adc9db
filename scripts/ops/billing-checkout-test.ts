// `npm run ops -- billing checkout-test`: the operations guide's "Test checkout" (Tests de paiement)
// end to end on the local stack: a tenant admin (of --tenant, or of a new, clearly named test tenant)
// → their session token (minted as `npm run stack -- token` does) → billing-checkout through the
// gateway → the fake Stripe pays the Checkout Session with a test card (3-D Secure authenticated when
// the card asks for it) → the fake's signed events reach stripe-webhook → the customers,
// subscriptions (+ items), invoices and billing_events rows and the tenant's entitlement, checked
// against what was bought.
//
// Against a hosted project it refuses to "pay": the card is typed by the fake's control endpoint
// (POST /_fake/checkout/sessions/:id/complete), which real Stripe does not have; there a person pays
// the Checkout URL in a browser. --no-complete creates the session and prints that URL (any target).
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { decodeJwt } from "jose";
import type postgres from "postgres";
import { StripeFakeControl, TEST_CARDS } from "../fakes/stripe-control.ts";
import { oneOf, seconds, uuid } from "./args.ts";
import {
  billingEventsSince,
  type BillingEventRow,
  CUSTOMER_HEAD,
  customerRows,
  describeEntitlement,
  EVENT_HEAD,
  eventRows,
  INVOICE_HEAD,
  invoiceRows,
  SUBSCRIPTION_HEAD,
  subscriptionRows,
  type TenantBilling,
  tenantBilling,
} from "./billing-rows.ts";
import { type Context, defineCommand, type Options, OperationFailed, type Outcome, TargetConfigError, UsageError } from "./command.ts";
import type { Output } from "./output.ts";
import { connectionReason, type Target } from "./target.ts";
import { callFunctionAsUser, describeFailure, errorOf, type FunctionAnswer } from "./twilio.ts";

const NAME = "billing checkout-test";
/** billing-checkout's own limit (its handler's MAX_ADDITIONAL_SITES); it validates again. */
const MAX_ADDITIONAL_SITES = 100;
/** The name every tenant this command creates starts with (find them: `where name like 'Test checkout (npm run ops)%'`). */
export const TEST_TENANT_PREFIX = "Test checkout (npm run ops)";
/** Statuses in which a subscription entitles its tenant (the rule of private.site_entitlement, grace aside). */
const PAYING = new Set(["active", "trialing"]);

type CardKind = "succeeds" | "declined" | "3ds";
interface Card {
  number: string;
  kind: CardKind;
}

const CARD_BY_NUMBER: Record<string, CardKind> = {
  [TEST_CARDS.success]: "succeeds",
  [TEST_CARDS.declined]: "declined",
  [TEST_CARDS.threeDSecure]: "3ds",
};
const CARD_ALIASES: Record<string, string> = {
  "4242": TEST_CARDS.success,
  ok: TEST_CARDS.success,
  success: TEST_CARDS.success,
  declined: TEST_CARDS.declined,
  "3ds": TEST_CARDS.threeDSecure,
};
const CARD_DESCRIPTION: Record<CardKind, string> = {
  succeeds: "Visa, succeeds",
  declined: "Visa, always declined",
  "3ds": "Visa, asks for 3-D Secure",
};

/** --card: one of the guide's three test cards, by number (spaces or dashes allowed) or alias. Never anything else. */
export function testCard(value: string): Card {
  const v = value.trim().toLowerCase();
  const number = CARD_ALIASES[v] ?? v.replace(/[\s-]/g, "");
  const kind = CARD_BY_NUMBER[number];
  if (!kind) {
    throw new InvalidArgumentError(
      "must be one of the guide's Stripe test cards: 4242424242424242 (or 4242), declined (4000000000000002), 3ds (4000002500003155)",
    );
  }
  return { number, kind };
}

function additionalSites(value: string): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) > MAX_ADDITIONAL_SITES) {
    throw new InvalidArgumentError(`must be a whole number, 0 to ${MAX_ADDITIONAL_SITES}`);
  }
  return Number(value);
}

const spaced = (n: string) => n.replace(/(\d{4})(?=\d)/g, "$1 ");

// ---- the tenant and its admin ----------------------------------------------------------------------

interface Admin {
  tenant: { id: string; name: string; created: boolean } | null;
  admin: { user_id: string; email: string | null; role: string | null; created: boolean; token: "minted" | "OPS_USER_TOKEN" };
}

/** An owner (else an admin) of the tenant: who billing-checkout lets buy. */
async function adminOf(sql: postgres.Sql, tenantId: string): Promise<Admin | null> {
  const [tenant] = await sql<{ id: string; name: string }[]>`select id::text, name from public.tenants where id = ${tenantId}`;
  if (!tenant) throw new TenantProblem(`no tenant ${tenantId} in the database`);
  const [member] = await sql<{ user_id: string; email: string | null; role: string }[]>`
    select m.user_id::text, u.email, m.role
      from public.tenant_members as m join auth.users as u on u.id = m.user_id
     where m.tenant_id = ${tenantId} and m.role in ('owner', 'admin')
     order by m.role = 'owner' desc, m.created_at, m.user_id
     limit 1`;
  if (!member) {
    throw new TenantProblem(
      `tenant ${tenantId} (${tenant.name}) has no owner or admin to buy as: add one (README "Give someone access to a tenant"), ` +
        `or leave out --tenant to use a new test tenant`,
    );
  }
  return {
    tenant: { ...tenant, created: false },
    admin: { user_id: member.user_id, email: member.email, role: member.role, created: false, token: "minted" },
  };
}

/**
 * A new test tenant with one admin user, in one transaction (never half made): what the tests'
 * fixtures insert (auth.users as GoTrue would, tenants, tenant_members), named so that nobody takes
 * it for a customer. Only on a local stack.
 */
async function createTestTenant(sql: postgres.Sql): Promise<Admin> {
  const tag = crypto.randomUUID().slice(0, 8);
  const name = `${TEST_TENANT_PREFIX} #${tag}`;
  const userId = crypto.randomUUID();
  const email = `checkout-test-${tag}@example.test`;
  const tenantId = await sql.begin(async (tx) => {
    await tx`
      insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
      values ('00000000-0000-0000-0000-000000000000', ${userId}, 'authenticated', 'authenticated', ${email}, now(),
              '{"provider": "email", "providers": ["email"]}', ${tx.json({ full_name: `${TEST_TENANT_PREFIX} admin` })}, now(), now())`;
    const [{ id }] = await tx<{ id: string }[]>`insert into public.tenants (name) values (${name}) returning id::text`;
    await tx`insert into public.tenant_members (tenant_id, user_id, role) values (${id}, ${userId}, 'admin')`;
    return id;
  });
  return {
    tenant: { id: tenantId, name, created: true },
    admin: { user_id: userId, email, role: "admin", created: true, token: "minted" },
  };
}

/** A tenant that cannot be used: exit 1, said plainly (thrown out of withDb as a value, not an error). */
class TenantProblem extends Error {}

/** The `sub` of a session token, unverified (display only: billing-checkout verifies it). */
function tokenSubject(token: string): string | null {
  try {
    const { sub } = decodeJwt(token);
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

/** OPS_USER_TOKEN: a tenant admin's session access token, given by the operator (hosted projects). */
function operatorToken(): string | undefined {
  const token = Deno.env.get("OPS_USER_TOKEN")?.trim();
  if (!token) return undefined;
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new UsageError("OPS_USER_TOKEN must be a session access token (a JWT: three base64url parts separated by dots)");
  }
  return token;
}

// ---- the fake Stripe -----------------------------------------------------------------------------

/**
 * Why the target cannot pay with a test card (null: it can). Paying needs the functions to be the
 * local ones (SUPABASE_URL on loopback) and to talk to the local fake Stripe (STRIPE_API_BASE), whose
 * control endpoint plays the customer's browser.
 */
function whyNoFake(target: Target): string | null {
  const [base] = target.settingsReport(["STRIPE_API_BASE"]);
  if (base.status === "missing") return `STRIPE_API_BASE is not set there: its functions call the real Stripe API`;
  if (base.status === "malformed") return `STRIPE_API_BASE there is not a local fake Stripe (it ${base.reason})`;
  if (!target.isLoopback(NAME)) return "SUPABASE_URL there is not a local stack: its functions do not call the local fake Stripe";
  return null;
}

function refusal(target: Target, why: string, opts: Options): TargetConfigError {
  const [key] = target.settingsReport(["STRIPE_SECRET_KEY"]);
  const live = key.facts?.stripeMode === "live";
  const files = target.source.kind === "env-file" ? target.source.files.map((f) => `--env-file ${f}`).join(" ") + " " : "";
  const tenant = opts.tenant ? `--tenant ${opts.tenant}` : "--tenant <uuid>";
  const ops = `npm run ops -- ${files}`;
  return new TargetConfigError(
    `cannot pay with a test card against ${target.label}: ${why}. Nothing was created.\n` +
      `  The card is typed by the local fake Stripe's control endpoint (POST /_fake/checkout/sessions/<id>/complete), ` +
      `which the real Stripe API does not have: there, a person pays the Checkout page in a browser. To test against it:\n` +
      `    ${ops}billing checkout-test ${tenant} --no-complete\n` +
      `  with a tenant admin's session access token in OPS_USER_TOKEN (\`read -rs OPS_USER_TOKEN && export OPS_USER_TOKEN\` ` +
      `keeps it out of the shell history) creates the Checkout Session as that admin and prints its URL. Open it and pay with ` +
      (live
        ? `a REAL card: STRIPE_SECRET_KEY there is a live key, and live Checkout refuses test cards (the guide's monthly ` +
          `test: cancel the subscription at once afterwards, in the Dashboard or the billing portal)`
        : `4242 4242 4242 4242, any future date, any CVC (4000 0000 0000 0002 is declined, 4000 0025 0000 3155 asks for 3-D Secure)`) +
      `; then:\n    ${ops}billing status ${tenant}`,
  );
}

/** The fake Stripe answering at STRIPE_API_BASE (GET / → {fake: "stripe"}), or an OperationFailed. */
async function probeFake(target: Target): Promise<string> {
  const { STRIPE_API_BASE: base } = target.need(NAME, "STRIPE_API_BASE");
  let body: unknown;
  try {
    const res = await fetch(`${base}/`, { signal: AbortSignal.timeout(5_000) });
    body = await res.json().catch(() => undefined);
  } catch (error) {
    throw new OperationFailed(
      `cannot reach the fake Stripe at ${base}: ${connectionReason(error)}` +
        (target.source.kind === "local" ? " (is the local stack running? `npm start`)" : ""),
      { stripe_api_base: base },
    );
  }
  if ((body as { fake?: unknown } | undefined)?.fake !== "stripe") {
    throw new OperationFailed(`${base} (STRIPE_API_BASE) does not answer as the fake Stripe (scripts/fakes/stripe.ts)`);
  }
  return base!;
}

interface PayStep {
  step: "complete" | "authenticate";
  http_status: number;
  outcome: string | null;
  error: { type: string | null; code: string | null; decline_code: string | null; message: string | null } | null;
}

/** One of the fake's checkout control calls, its Stripe-shaped error kept (a declined card is a 402 card_error). */
async function payStep(base: string, sessionId: string, step: PayStep["step"], body: Record<string, unknown>): Promise<PayStep & { session?: Record<string, unknown> }> {
  const res = await fetch(`${base}/_fake/checkout/sessions/${encodeURIComponent(sessionId)}/${step}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // deno-lint-ignore no-explicit-any
  const json = await res.json().catch(() => ({})) as Record<string, any>;
  if (res.ok) return { step, http_status: res.status, outcome: String(json.outcome), error: null, session: json.session };
  const e = json.error ?? {};
  return {
    step,
    http_status: res.status,
    outcome: res.status === 402 ? "declined" : null,
    error: { type: e.type ?? null, code: e.code ?? null, decline_code: e.decline_code ?? null, message: e.message ?? null },
  };
}

// ---- waiting for stripe-webhook ------------------------------------------------------------------

interface Landing {
  subscription: string | null;
  invoice: string | null;
  checkout_applied: boolean;
  events: number;
  failed: number;
}

async function landing(sql: postgres.Sql, since: Date, ids: { session: string; subscription: string; invoice: string; customer: string }): Promise<Landing> {
  const [row] = await sql<Landing[]>`
    select (select status from public.subscriptions where stripe_subscription_id = ${ids.subscription}) as subscription,
           (select status from public.invoices where stripe_invoice_id = ${ids.invoice}) as invoice,
           exists (select from public.billing_events
                    where object_id = ${ids.session} and type = 'checkout.session.completed' and processed_at is not null) as checkout_applied,
           (select count(*)::int from public.billing_events as e
             where e.received_at >= ${since} and (e.stripe_customer_id = ${ids.customer} or e.object_id = ${ids.session})) as events,
           (select count(*)::int from public.billing_events as e
             where e.received_at >= ${since} and e.outcome = 'failed'
               and (e.payload -> 'data' -> 'object' ->> 'customer' = ${ids.customer} or e.object_id in (${ids.customer}, ${ids.session}))) as failed`;
  return row;
}

const landed = (l: Landing) => l.checkout_applied && PAYING.has(l.subscription ?? "") && l.invoice === "paid";

// ---- the command ---------------------------------------------------------------------------------

interface Expectation {
  check: string;
  expected: string;
  found: string;
  ok: boolean;
}

function expectations(b: TenantBilling, plan: "monthly" | "annual", addons: number, subscriptionId: string | null, invoiceId: string | null): Expectation[] {
  const sub = b.subscriptions.find((s) => s.stripe_subscription_id === subscriptionId);
  const inv = b.invoices.find((i) => i.stripe_invoice_id === invoiceId);
  const interval = plan === "monthly" ? "month" : "year";
  const planQty = sub?.items.filter((i) => i.kind === "plan").reduce((n, i) => n + i.quantity, 0) ?? 0;
  const list: Expectation[] = [
    { check: "subscriptions row", expected: "active", found: sub?.status ?? "none", ok: sub?.status === "active" },
    { check: "plan interval", expected: interval, found: sub?.plan_interval ?? "—", ok: sub?.plan_interval === interval },
    { check: "plan item", expected: "×1", found: `×${planQty}`, ok: planQty === 1 },
    { check: "site add-on quantity", expected: String(addons), found: String(sub?.addon_sites ?? "—"), ok: sub?.addon_sites === addons },
    { check: "first invoice", expected: "paid", found: inv?.status ?? "none", ok: inv?.status === "paid" },
    {
      check: "allowed sites",
      expected: String(1 + addons),
      found: String(b.entitlement?.allowed_sites ?? "—"),
      ok: b.entitlement?.allowed_sites === 1 + addons,
    },
  ];
  return list;
}

const checkoutTest = defineCommand({
  name: "checkout-test",
  summary: "the guide's Stripe checkout test, end to end on the local stack: billing-checkout, a test card, the webhook, the rows",
  usage: "[--tenant <uuid>] [--plan <monthly|annual>] [--additional-sites <n>] [--card <4242…|declined|3ds>] [--no-complete] [--wait <seconds>]",
  help: "As a tenant admin (an owner or admin of --tenant; without it, a new test tenant named " +
    `"${TEST_TENANT_PREFIX} #<tag>" with an admin user checkout-test-<tag>@example.test, created in the local ` +
    "database), with a session token minted as `npm run stack -- token` mints it: calls billing-checkout " +
    "through the gateway, pays the Checkout Session in the fake Stripe with the test card (3-D Secure " +
    "authenticated), waits for stripe-webhook to apply the events, and shows the customers, subscriptions " +
    "(status, interval, items, add-on quantity), invoices and billing_events rows and the tenant's allowed " +
    "sites, checked against what was bought. A declined card shows the decline and exits 1 with nothing " +
    "subscribed.\n\n" +
    "Only the local stack can pay with a test card (the fake Stripe's control endpoint plays the browser): " +
    "against a hosted project (--env-file) it refuses; --no-complete then creates the Checkout Session and " +
    "prints its URL, to pay in a browser (the admin's session token in OPS_USER_TOKEN, as hosted keys cannot " +
    "mint one). Exit 0 when the rows are as bought, 1 when declined or not as bought, 64 bad arguments or a " +
    "target that cannot pay.",
  examples: [
    "billing checkout-test",
    "billing checkout-test --plan annual --additional-sites 2 --card 3ds",
    "billing checkout-test --card declined",
    "billing checkout-test --no-complete",
  ],
  options(cmd: Command) {
    cmd
      .allowExcessArguments(false)
      .option("--tenant <uuid>", "buy for this tenant (as its owner or admin); default: a new test tenant", uuid)
      .option("--plan <plan>", "monthly or annual", oneOf("monthly", "annual"), "monthly")
      .option("--additional-sites <n>", `"Site additionnel" add-ons, 0 to ${MAX_ADDITIONAL_SITES}`, additionalSites, 0)
      .option("--card <card>", "4242424242424242 (default; or 4242), declined (4000000000000002), 3ds (4000002500003155)", testCard)
      .option("--no-complete", "only create the Checkout Session and print its URL (to pay in a browser)")
      .option("--wait <seconds>", "how long to wait for stripe-webhook (default 30)", seconds(300), 30);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const complete = opts.complete !== false;
    if (!complete && opts.card) throw new UsageError("--card is for paying: --no-complete only creates the session");
    const card: Card | null = complete ? (opts.card as Card | undefined) ?? testCard(TEST_CARDS.success) : null;
    const plan = opts.plan as "monthly" | "annual";
    const addons = opts.additionalSites as number;
    const target = await ctx.target();

    // 1. Can this target pay with a test card? (Refused before anything is created.)
    let fakeBase: string | null = null;
    if (complete) {
      const why = whyNoFake(target);
      if (why) throw refusal(target, why, opts);
      fakeBase = await probeFake(target);
    }

    // 2. Who buys: the operator's token, or an admin of --tenant / of a new test tenant (local only),
    //    with a token minted by the local stack's signing key. Checked before anything is created.
    const given = operatorToken();
    if (!given && !target.canMintUserTokens) {
      throw new TargetConfigError(
        `${target.label}: cannot mint a user session token: that needs the local stack's signing key (LOCAL_STACK_KEYS_FILE), ` +
          `and a hosted project's private key never leaves Supabase. Export OPS_USER_TOKEN with the access token of an owner ` +
          `or admin of the tenant signed in to the web app (supabase.auth.getSession()); ` +
          `\`read -rs OPS_USER_TOKEN && export OPS_USER_TOKEN\` keeps it out of the shell history`,
      );
    }
    if (!given && !opts.tenant && !target.isLoopback(NAME)) {
      throw new UsageError(`test tenants are created on a local stack only: give --tenant <uuid> (a tenant of ${target.label})`);
    }
    if (complete || !given) target.need(NAME, "SUPABASE_DB_URL");
    const since = (await target.withDb(NAME, async (sql) => (await sql<{ now: Date }[]>`select now()`)[0].now)) ?? new Date();
    let who: Admin;
    let token: string;
    if (given) {
      who = {
        tenant: opts.tenant ? { id: opts.tenant, name: "", created: false } : null,
        admin: { user_id: tokenSubject(given) ?? "?", email: null, role: null, created: false, token: "OPS_USER_TOKEN" },
      };
      token = given;
      if (who.tenant && target.hasDatabase) {
        const name = await target.withDb(NAME, async (sql) => (await sql<{ name: string }[]>`select name from public.tenants where id = ${who.tenant!.id}`)[0]?.name);
        if (name) who.tenant!.name = name;
      }
    } else {
      const found = await target.withDb(NAME, async (sql) => {
        try {
          return opts.tenant ? await adminOf(sql, opts.tenant) : await createTestTenant(sql);
        } catch (error) {
          if (error instanceof TenantProblem) return error;
          throw error;
        }
      });
      if (found instanceof TenantProblem) throw new OperationFailed(found.message, { tenant_id: opts.tenant });
      who = found!;
      token = await target.mintUserToken(NAME, who.admin.user_id, { email: who.admin.email ?? undefined });
    }

    const data: Record<string, unknown> = {
      complete,
      tenant: who.tenant,
      admin: who.admin,
      plan,
      additional_sites: addons,
      card: card ? { number: card.number, expect: card.kind } : null,
      checkout: null,
      payment: null,
      webhook: null,
      customer: null,
      subscriptions: [],
      invoices: [],
      billing_events: [],
      entitlement: null,
      checks: [],
    };
    const lines: [string, string][] = [];
    if (who.tenant) {
      if (who.tenant.name) lines.push(["Tenant", `${who.tenant.name}${who.tenant.created ? " (created: a test tenant)" : ""}`]);
      lines.push(["Tenant id", who.tenant.id]);
    }
    lines.push([
      "Admin",
      who.admin.token === "OPS_USER_TOKEN"
        ? "the session in OPS_USER_TOKEN"
        : `${who.admin.email ?? "—"} (${who.admin.role}${who.admin.created ? ", created" : ""}; session token minted)`,
    ]);
    lines.push(["Admin id", who.admin.user_id]);
    lines.push(["Bought", `${plan} plan + ${addons} additional site${addons === 1 ? "" : "s"}`]);
    let rows: TenantBilling | null = null;
    let events: BillingEventRow[] = [];
    const view = (out: Output) => renderCheckout(out, lines, rows, events, data.checks as Expectation[]);

    // 3. billing-checkout, as that admin, through the gateway.
    const p1 = ctx.out.progress("billing-checkout: creating the Checkout Session…");
    let answer: FunctionAnswer;
    try {
      answer = await callFunctionAsUser(
        target,
        NAME,
        "billing-checkout",
        { ...(who.tenant ? { tenant_id: who.tenant.id } : {}), plan, additional_sites: addons },
        token,
      );
    } finally {
      p1.stop();
    }
    const session = (answer.json ?? {}) as { url?: string; session_id?: string; customer?: string; tenant_id?: string; expires_at?: number };
    data.checkout = {
      http_status: answer.status,
      ...(answer.requestId ? { request_id: answer.requestId } : {}),
      ...(answer.status === 200
        ? { session_id: session.session_id, url: session.url, customer: session.customer, expires_at: session.expires_at }
        : errorOf(answer)),
    };
    if (answer.status !== 200 || !session.session_id) {
      lines.push(["billing-checkout", describeFailure(answer)]);
      return { ok: false, data, failure: `billing-checkout refused: ${describeFailure(answer)}`, render: view };
    }
    lines.push(["billing-checkout", `HTTP 200 · customer ${session.customer}`]);
    lines.push(["Session", session.session_id]);
    if (!who.tenant && session.tenant_id) {
      who.tenant = { id: session.tenant_id, name: "", created: false };
      data.tenant = who.tenant;
    }

    // --no-complete: the URL, for a person to pay.
    if (!complete) {
      lines.push(["Checkout URL", session.url ?? "—"]);
      lines.push([
        "Next",
        "open the URL in a browser and pay (test mode: 4242 4242 4242 4242, any future date, any CVC); then " +
          `npm run ops -- ${target.source.kind === "env-file" ? target.source.files.map((f) => `--env-file ${f} `).join("") : ""}` +
          `billing status --tenant ${who.tenant?.id ?? "<uuid>"}`,
      ]);
      return { ok: true, data, render: (out) => renderCheckout(out, lines, null, [], []) };
    }

    // 4. The customer pays: the test card in the fake's Checkout.
    const p2 = ctx.out.progress(`paying with ${spaced(card!.number)} (${CARD_DESCRIPTION[card!.kind]})…`);
    const steps: PayStep[] = [];
    let paid: (PayStep & { session?: Record<string, unknown> }) | undefined;
    try {
      paid = await payStep(fakeBase!, session.session_id, "complete", { card: card!.number, ...(who.tenant?.name ? { name: who.tenant.name } : {}) });
      steps.push({ ...paid, session: undefined } as PayStep);
      if (paid.outcome === "requires_action") {
        p2.text("3-D Secure: authenticating…");
        paid = await payStep(fakeBase!, session.session_id, "authenticate", { result: "succeed" });
        steps.push({ ...paid, session: undefined } as PayStep);
      }
    } finally {
      p2.stop();
    }
    const strip = ({ session: _s, ...s }: PayStep & { session?: unknown }) => s;
    const decline = steps.find((s) => s.error)?.error ?? null;
    data.payment = {
      outcome: paid.outcome,
      three_d_secure: steps.some((s) => s.outcome === "requires_action"),
      steps: steps.map(strip),
      decline: paid.http_status === 402 ? decline : null,
    };
    lines.push([
      "Card",
      `${spaced(card!.number)} (${CARD_DESCRIPTION[card!.kind]}) → ` +
        steps.map((s) => s.error ? `${s.step}: HTTP ${s.http_status} ${s.error.code ?? ""}${s.error.decline_code ? `/${s.error.decline_code}` : ""}: ${s.error.message ?? ""}` : `${s.step}: ${s.outcome}`)
          .join(" → "),
    ]);

    // 5. What the webhook did. Declined: the fake's deliveries (customer.created…) settle, then the rows.
    const customer = session.customer!;
    if (paid.outcome !== "succeeded") {
      await new StripeFakeControl(fakeBase!).settled(10_000).catch(() => undefined);
      await target.withDb(NAME, async (sql) => {
        rows = await tenantBilling(sql, who.tenant!.id);
        events = await billingEventsSince(sql, since, customer, [session.session_id!]);
      });
      Object.assign(data, billingData(rows!, events));
      const subscribed = rows!.subscriptions.filter((s) => s.status !== "incomplete_expired" && s.status !== "canceled");
      const checks: Expectation[] = [{
        check: "subscriptions row",
        expected: "none",
        found: subscribed.map((s) => s.status).join(", ") || "none",
        ok: subscribed.length === 0,
      }];
      data.checks = checks;
      const why = paid.http_status === 402
        ? `the card was declined (${decline?.code ?? "card_error"}${decline?.decline_code ? `/${decline.decline_code}` : ""}: ${decline?.message ?? ""})`
        : `the payment did not go through (${steps.map((s) => s.outcome ?? `HTTP ${s.http_status}`).join(" → ")})`;
      return {
        ok: false,
        data,
        render: view,
        failure: `${why}: ${subscribed.length === 0 ? "nothing subscribed" : `yet the tenant has a subscription (${subscribed.map((s) => s.status).join(", ")})`}`,
      };
    }
    const done = paid.session as { subscription?: string; invoice?: string } | undefined;
    const ids = { session: session.session_id, subscription: String(done?.subscription), invoice: String(done?.invoice), customer };
    const started = performance.now();
    const p3 = ctx.out.progress("waiting for stripe-webhook…");
    let last: Landing | undefined;
    try {
      await target.withDb(NAME, async (sql) => {
        const deadline = Date.now() + (opts.wait as number) * 1000;
        for (;;) {
          last = await landing(sql, since, ids);
          if (landed(last) || Date.now() >= deadline) break;
          p3.text(
            `waiting for stripe-webhook: ${last.events} events applied · subscription ${last.subscription ?? "—"} · ` +
              `invoice ${last.invoice ?? "—"}${last.failed ? ` · ${last.failed} failed` : ""}…`,
          );
          await new Promise((r) => setTimeout(r, 200));
        }
        // The last deliveries (none after checkout.session.completed, normally), then the rows.
        await new StripeFakeControl(fakeBase!).settled(5_000).catch(() => undefined);
        rows = await tenantBilling(sql, who.tenant!.id);
        events = await billingEventsSince(sql, since, customer, [session.session_id!, ids.subscription, ids.invoice]);
      });
    } finally {
      p3.stop();
    }
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    data.webhook = { landed: landed(last!), seconds, events: events.length, failed: events.filter((e) => e.outcome === "failed").length };
    lines.push([
      "stripe-webhook",
      landed(last!)
        ? `landed in ${seconds} s: ${events.length} events` + (events.some((e) => e.outcome === "failed") ? ` (${events.filter((e) => e.outcome === "failed").length} failed)` : "")
        : `not landed after ${opts.wait} s: ${last!.events} events, subscription ${last!.subscription ?? "none"}, invoice ${last!.invoice ?? "none"}`,
    ]);
    Object.assign(data, billingData(rows!, events));
    const checks = expectations(rows!, plan, addons, ids.subscription, ids.invoice);
    data.checks = checks;
    const wrong = checks.filter((c) => !c.ok);
    if (!landed(last!) || wrong.length) {
      return {
        ok: false,
        data,
        render: view,
        failure: !landed(last!)
          ? `stripe-webhook did not apply the checkout within ${opts.wait} s (billing_events below; \`npm run ops -- billing status --tenant ${who.tenant!.id}\`)`
          : `the rows are not what was bought: ${wrong.map((c) => `${c.check} ${c.found} (expected ${c.expected})`).join("; ")}`,
      };
    }
    return { ok: true, data, render: view };
  },
});

/** The rows as --json prints them. */
function billingData(b: TenantBilling, events: BillingEventRow[]): Record<string, unknown> {
  return {
    customer: b.customer,
    subscriptions: b.subscriptions,
    invoices: b.invoices,
    billing_events: events,
    entitlement: b.entitlement,
  };
}

function renderCheckout(out: Output, lines: [string, string][], rows: TenantBilling | null, events: BillingEventRow[], checks: Expectation[]): void {
  out.heading("Stripe checkout test");
  out.fields(lines);
  if (!rows) return;
  const b = rows as TenantBilling;
  out.heading("customers");
  if (b.customer) out.table(CUSTOMER_HEAD, customerRows(b.customer));
  else out.line("(none)");
  out.heading("subscriptions");
  if (b.subscriptions.length) out.table(SUBSCRIPTION_HEAD, subscriptionRows(b.subscriptions));
  else out.line("(none)");
  out.heading("invoices");
  if (b.invoices.length) out.table(INVOICE_HEAD, invoiceRows(b.invoices));
  else out.line("(none)");
  out.heading(`billing_events (${events.length})`);
  if (events.length) out.table(EVENT_HEAD, eventRows(events));
  else out.line("(none)");
  out.heading("Entitlement");
  out.fields([["Sites", describeEntitlement(b.entitlement)]]);
  if (checks.length) {
    const c = out.colors;
    out.heading("Checks");
    out.table(["Check", "Expected", "Found", ""], checks.map((x) => [x.check, x.expected, x.found, x.ok ? c.green("ok") : c.red("NOT OK")]));
  }
}

export default checkoutTest;
