// `npm run ops -- status` and `npm run ops -- db-status`: the system-status and db-status functions
// (GET, with the secret API key) shown as tables. status exits 0 ok / 1 degraded / 2 down (a 503 or
// an unreachable function is "down", not an error); db-status 0 when every section is ok, else 1.
// Never a setting's value: the functions give only ok | missing | malformed and a reason.
import type { Command } from "commander";
import { type Context, defineCommand, OperationFailed, type Outcome } from "./command.ts";
import type { Colors } from "./output.ts";
import { localTime, OPS_TIME_ZONE } from "./runbook.ts";
import { callFunctionAsService, describeFailure, type FunctionAnswer } from "./twilio.ts";

/** status's verdict exit codes (README "Output and exit codes"). */
export const STATUS_EXIT = { ok: 0, degraded: 1, down: 2 } as const;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === "object" && v !== null ? v as Json : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const pct = (v: unknown) => (typeof v === "number" ? `${(v * 100).toFixed(2)} %` : "—");
const mb = (v: unknown) => (typeof v === "number" ? `${(v / 1024 / 1024).toFixed(1)} MB` : "—");
const when = (v: unknown) => (typeof v === "string" ? localTime(v, OPS_TIME_ZONE) : "—");

/**
 * A setting's status as the table shows it: an optional setting that is not set (its default
 * applies: BILLING_SYNC_RATE_LIMIT, TWILIO_ADVANCED_OPT_OUT…) is `unset`, not a red `missing`,
 * which stays for what the settings check counts as a problem (one of the guide's 17, or a
 * required setting). --json keeps the function's own `missing` and `optional`.
 */
export function settingCell(s: Json): { status: string; reason: string } {
  if (s.status === "missing" && s.optional === true && s.seed !== true) {
    return { status: "unset", reason: "optional: not set, the default applies" };
  }
  return { status: String(s.status ?? "—"), reason: typeof s.reason === "string" ? s.reason : "" };
}

/** Why the database does not answer, as the functions classify it: `unreachable (ECONNREFUSED)`, `timeout`. */
export function unreachableReason(db: Json): string {
  const reason = typeof db.error === "string" ? db.error : "no answer";
  return typeof db.code === "string" ? `${reason} (${db.code})` : reason;
}

/** The checks that failed, for the one-line verdict on stderr ("degraded: sms, stripe_webhooks"). */
export function failingChecks(checks: Json): string[] {
  return Object.entries(checks).filter(([, v]) => obj(v).status === "fail").map(([k]) => k);
}

function paint(c: Colors, status: unknown): string {
  const s = String(status ?? "—");
  if (s === "ok") return c.green(s);
  if (s === "fail" || s === "down" || s === "malformed" || s === "missing") return c.red(s);
  if (s === "degraded" || s === "unknown") return c.yellow(s);
  return s;
}

async function getFunction(ctx: Context, purpose: string, name: string): Promise<FunctionAnswer | { unreachable: string }> {
  const target = await ctx.target();
  const progress = ctx.out.progress(`calling ${name}…`);
  try {
    return await callFunctionAsService(target, purpose, name, undefined, { method: "GET", timeoutMs: 30_000 });
  } catch (error) {
    if (error instanceof OperationFailed) return { unreachable: error.message };
    throw error;
  } finally {
    progress.stop();
  }
}

const status = defineCommand({
  name: "status",
  summary: "the system-status health check: settings, database, cron, SMS, Stripe, billing sync, size, alerts",
  usage: "[--json]",
  help: "GET system-status with the secret API key. Exit codes: 0 ok, 1 degraded (a check failed), 2 down (the " +
    "database does not answer, the function answers 503 or cannot be reached), 64 usage. --json prints the " +
    "function's answer (with ok, target, http_status). Needs SUPABASE_URL and SUPABASE_SECRET_KEY.",
  examples: ["status", "--json status"],
  options(_cmd: Command) {},
  async run(ctx: Context): Promise<Outcome> {
    const answer = await getFunction(ctx, "status", "system-status");
    if ("unreachable" in answer) {
      return {
        ok: false,
        exitCode: STATUS_EXIT.down,
        data: { status: "down", error: answer.unreachable },
        failure: `down: ${answer.unreachable}`,
        render: () => {},
      };
    }
    const body = obj(answer.json);
    const overall = String(body.status ?? "");
    if ((answer.status !== 200 && answer.status !== 503) || !["ok", "degraded", "down"].includes(overall)) {
      return {
        ok: false,
        data: { http_status: answer.status, ...body },
        failure: `system-status: ${describeFailure(answer)}`,
        render: () => {},
      };
    }
    const code = STATUS_EXIT[overall as keyof typeof STATUS_EXIT];
    const failing = failingChecks(obj(body.checks));
    return {
      ok: code === 0,
      exitCode: code,
      data: { http_status: answer.status, ...body },
      failure: overall === "down"
        ? `down: the database does not answer: ${unreachableReason(obj(obj(body.checks).database))}`
        : failing.length
        ? `${overall}: failing checks: ${failing.join(", ")}`
        : overall,
      render(out) {
        const c = out.colors;
        const checks = obj(body.checks);
        const th = obj(body.thresholds);
        out.heading(`System status: ${paint(c, overall)} (${when(body.checked_at)} ${OPS_TIME_ZONE})`);
        const settings = arr(body.settings).map(obj);
        if (settings.length) {
          out.heading("Settings");
          out.table(["Setting", "Status", "Reason"], settings.map((s) => {
            const cell = settingCell(s);
            return [String(s.name), paint(c, cell.status), cell.reason];
          }));
        }
        const db = obj(checks.database);
        const cron = obj(checks.cron);
        const sms = obj(checks.sms);
        const wh = obj(checks.stripe_webhooks);
        const sync = obj(checks.billing_sync);
        const size = obj(checks.database_size);
        const lastMigration = obj(db.last_migration);
        out.heading("Checks");
        if (db.reachable === false) {
          // Down: only the settings were judged; every other check needs the database, so none is
          // shown as a count of zero (no "0 jobs", no "Open alerts: 0").
          out.table(["Check", "Status", "Details"], [
            ["settings", paint(c, obj(checks.settings).status), `seed ${obj(checks.settings).seed_ok ?? "—"}/${obj(checks.settings).seed_total ?? "—"} ok`],
            ["database", paint(c, "down"), `does not answer: ${unreachableReason(db)}`],
          ]);
          out.line("cron, sms, stripe webhooks, billing sync, database size and open alerts: unknown while the database does not answer");
          return;
        }
        out.table(["Check", "Status", "Details"], [
          ["settings", paint(c, obj(checks.settings).status), `seed ${obj(checks.settings).seed_ok ?? "—"}/${obj(checks.settings).seed_total ?? "—"} ok`],
          ["database", paint(c, db.status), db.reachable === false ? `unreachable: ${db.error ?? ""}` : `last migration ${lastMigration.version ?? "—"} ${lastMigration.name ?? ""}`.trim()],
          ["cron", paint(c, cron.status), `${arr(cron.jobs).length} jobs, failed: ${arr(cron.failed_jobs).join(", ") || "none"}`],
          ["sms (24 h)", paint(c, sms.status), `${sms.outbound ?? 0} sent, delivery ${pct(sms.delivery_rate)} (> ${pct(th.sms_delivery_rate_above)}), errors ${pct(sms.error_rate)} (≤ ${pct(th.sms_error_rate_max)})`],
          ["stripe webhooks (24 h)", paint(c, wh.status), `${wh.received ?? 0} received, failures ${pct(wh.failure_rate)} (< ${pct(th.stripe_webhook_failure_rate_below)})`],
          ["billing sync", paint(c, sync.status), `last complete ${when(sync.last_complete_at)} (max ${th.billing_sync_max_hours ?? "—"} h)`],
          ["database size", paint(c, size.status), `${mb(size.bytes)} of ${mb(size.quota_bytes)} (${pct(size.used_ratio)}, max ${pct(th.database_size_ratio_max)})`],
        ]);
        const jobs = arr(cron.jobs).map(obj);
        if (jobs.length) {
          out.heading("Cron jobs");
          out.table(["Job", "Schedule", "Active", "Last run", "Started"], jobs.map((j) => {
            const r = obj(j.last_run);
            return [String(j.name), String(j.schedule), j.active ? "yes" : "no", paint(c, r.status ?? "never"), when(r.started_at)];
          }));
        }
        const alerts = arr(body.open_alerts).map(obj);
        out.heading(`Open alerts: ${alerts.length}`);
        if (alerts.length) {
          // The alert's own state (open | acked), as `ops alerts list` shows it; open in red.
          out.table(
            ["Id", "Kind", "Subject", "State", `Raised (${OPS_TIME_ZONE})`],
            alerts.map((a) => [String(a.id), String(a.kind), String(a.subject ?? ""), a.state === "open" ? c.red("open") : String(a.state ?? "—"), when(a.raised_at)]),
          );
        }
      },
    };
  },
});

const SECTIONS = ["schemas", "tables", "rls", "migrations", "cron", "vault"] as const;

function sectionDetails(name: string, s: Json): string {
  const list = (v: unknown) => arr(v).map((x) => typeof x === "string" ? x : String(obj(x).name ?? obj(x).version ?? JSON.stringify(x))).join(", ");
  switch (name) {
    case "schemas":
      return `missing: ${list(s.missing) || "none"}`;
    case "tables":
      return `${s.present}/${s.expected} present; missing: ${list(s.missing) || "none"}; unexpected: ${list(s.unexpected) || "none"}`;
    case "rls":
      return `${arr(s.tables).length} public tables; without RLS: ${list(s.without_rls) || "none"}`;
    case "migrations": {
      const last = obj(s.last_applied);
      return `last applied ${last.version ?? "—"} ${last.name ?? ""}; missing: ${list(s.missing) || "none"}; unexpected: ${list(s.unexpected) || "none"}`;
    }
    case "cron":
      return `${arr(s.jobs).length} jobs; missing: ${list(s.missing) || "none"}; inactive: ${list(s.inactive) || "none"}`;
    case "vault":
      return `missing: ${list(s.missing) || "none"}`;
  }
  return "";
}

const dbStatus = defineCommand({
  name: "db-status",
  summary: "the db-status check: schemas, tables, RLS on every public table, migrations, cron jobs, vault",
  usage: "[--json]",
  help: "GET db-status with the secret API key (read-only). Exit 0 when every section is ok, 1 otherwise (or when " +
    "the function answers 503 / cannot be reached). Needs SUPABASE_URL and SUPABASE_SECRET_KEY.",
  examples: ["db-status", "--json db-status"],
  options(_cmd: Command) {},
  async run(ctx: Context): Promise<Outcome> {
    const answer = await getFunction(ctx, "db-status", "db-status");
    if ("unreachable" in answer) throw new OperationFailed(answer.unreachable);
    const body = obj(answer.json);
    const data = { http_status: answer.status, ...body };
    if (answer.status === 503 && body.status === "down") {
      // The function answers, the database does not: one line, not the raw JSON.
      return { ok: false, data, failure: `down: the database does not answer: ${unreachableReason(obj(body.database))}`, render: () => {} };
    }
    if (answer.status !== 200) {
      return { ok: false, data, failure: `db-status: ${describeFailure(answer)}`, render: () => {} };
    }
    const failing = SECTIONS.filter((n) => obj(body[n]).status !== "ok");
    return {
      ok: body.status === "ok" && failing.length === 0,
      data,
      failure: `database ${body.status}: ${failing.join(", ")}`,
      render(out) {
        const c = out.colors;
        out.heading(`Database status: ${paint(c, body.status)} (${when(body.checked_at)} ${OPS_TIME_ZONE})`);
        out.table(["Section", "Status", "Details"], SECTIONS.map((n) => [n, paint(c, obj(body[n]).status), sectionDetails(n, obj(body[n]))]));
      },
    };
  },
});

export { dbStatus, status };
