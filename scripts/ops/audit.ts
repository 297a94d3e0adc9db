// `npm run ops -- audit errors|sms-today|sms-recent`: the operations guide's three audit-trail
// queries ("Logs d'audit": "Erreurs des dernières 24h", "SMS envoyés aujourd'hui"; "SMS ne
// s'envoient pas": "Vérifier logs récents"), VERBATIM (tests/ops/audit.test.ts compares them with
// the guide), run through the target's SUPABASE_DB_URL as the SQL editor runs them, in a read-only
// transaction whose time zone is the operator's (America/Montreal by default: "today" is Montreal's
// day, where the hosted SQL editor's session is UTC).
import { type Command, InvalidArgumentError } from "commander";
import type postgres from "postgres";
import { type Context, defineCommand, defineGroup, type Options, type Outcome } from "./command.ts";
import type { Output } from "./output.ts";
import { detailsText, jsonRow, localTime, OPS_TIME_ZONE, requireDatabase, timeZone, truncate } from "./runbook.ts";

/** The guide's queries, exactly as written there (whitespace aside). */
export const AUDIT_QUERIES = {
  /** "Erreurs des dernières 24h" */
  errors: `SELECT * FROM system_audit_logs
WHERE created_at > NOW() - INTERVAL '24 hours'
AND details->>'error' IS NOT NULL
ORDER BY created_at DESC;`,
  /** "SMS envoyés aujourd'hui" */
  "sms-today": `SELECT COUNT(*) FROM system_audit_logs
WHERE area = 'twilio'
AND action = 'sms_send'
AND created_at::date = CURRENT_DATE;`,
  /** "Vérifier logs récents" (troubleshooting "SMS ne s'envoient pas") */
  "sms-recent": `SELECT * FROM system_audit_logs
WHERE area = 'twilio' AND action LIKE 'sms_%'
ORDER BY created_at DESC LIMIT 10;`,
} as const;

/** The guide's title of each query. */
export const AUDIT_TITLES: Record<keyof typeof AUDIT_QUERIES, string> = {
  errors: "Erreurs des dernières 24h",
  "sms-today": "SMS envoyés aujourd'hui",
  "sms-recent": "Vérifier logs récents",
};

interface AuditRow {
  id: string;
  created_at: Date;
  area: string;
  action: string;
  actor: string | null;
  tenant_id: string | null;
  target: string | null;
  details: Record<string, unknown>;
}

/**
 * Runs one guide query as written, read-only, with the session time zone `zone` (CURRENT_DATE and
 * created_at::date follow it). Also returns the session's current date, for "today".
 */
async function runGuideQuery<T>(sql: postgres.Sql, query: string, zone: string): Promise<{ rows: T[]; today: string }> {
  return await sql.begin("read only", async (tx) => {
    await tx`select set_config('TimeZone', ${zone}, true)`;
    const rows = await tx.unsafe(query) as unknown as T[];
    const [{ today }] = await tx<{ today: string }[]>`select current_date::text as today`;
    return { rows: [...rows], today };
  }) as { rows: T[]; today: string };
}

const COMMON_HELP = "The query is the operations guide's, verbatim (--show-sql prints it), run through SUPABASE_DB_URL " +
  "in a read-only transaction whose time zone is --time-zone (default America/Montreal: the hosted SQL " +
  "editor runs in UTC). Times are shown in that zone; --json gives them in UTC (ISO 8601).";

function commonOptions(cmd: Command): Command {
  return cmd
    .option("--show-sql", "print the exact SQL before the result")
    .option("--time-zone <zone>", "the session's time zone (CURRENT_DATE, times shown)", timeZone, OPS_TIME_ZONE);
}

function showSql(out: Output, name: keyof typeof AUDIT_QUERIES, zone: string): void {
  out.line(out.colors.dim(`-- ${AUDIT_TITLES[name]} (operations guide, verbatim); session: SET TimeZone = '${zone}'`));
  out.line(AUDIT_QUERIES[name]);
  out.line();
}

/** Area/action/actor/target/details of audit rows, details compact (error first, in its own column). */
function auditTable(out: Output, rows: AuditRow[], zone: string, limit: number, withError: boolean): void {
  const shown = limit > 0 ? rows.slice(0, limit) : rows;
  // sms-recent's rows are all area twilio: the column only when it says something.
  const withArea = new Set(rows.map((r) => r.area)).size > 1 || withError;
  out.table(
    [`Time (${zone})`, ...(withArea ? ["Area"] : []), "Action", "Actor", "Target", ...(withError ? ["Error"] : []), "Details"],
    shown.map((r) => {
      const { error, ...rest } = r.details ?? {};
      return [
        localTime(r.created_at, zone),
        ...(withArea ? [r.area] : []),
        r.action,
        r.actor ? truncate(r.actor, 36) : null,
        r.target ? truncate(r.target, 80) : null, // ids (SIDs, event ids, table:uuid): whole
        ...(withError ? [out.colors.red(truncate(String(error), 60))] : []),
        Object.keys(withError ? rest : r.details ?? {}).length ? detailsText(withError ? rest : r.details) : null,
      ];
    }),
  );
  if (shown.length < rows.length) out.line(`… and ${rows.length - shown.length} more (--limit 0 shows all; --json has them all)`);
}

const errors = defineCommand({
  name: "errors",
  summary: "the guide's \"Erreurs des dernières 24h\": audit rows of the last 24 h with details->>'error'",
  usage: "[--limit <n>] [--show-sql] [--time-zone <zone>]",
  help: `Every audit row of the last 24 hours whose details carry an error (a failed SMS, a Stripe event that failed, ` +
    `a failed purge…), newest first. ${COMMON_HELP} Needs SUPABASE_DB_URL.`,
  examples: ["audit errors", "audit errors --show-sql --limit 20", "--json audit errors"],
  options(cmd: Command) {
    commonOptions(cmd).option("--limit <n>", "rows shown in the table (0: all; --json always has all)", limit, 50);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    requireDatabase(target, "audit errors");
    const progress = ctx.out.progress("reading the audit trail…");
    const result = await target.withDb("audit errors", (sql) => runGuideQuery<AuditRow>(sql, AUDIT_QUERIES.errors, opts.timeZone))
      .finally(() => progress.stop());
    const rows = result!.rows;
    return {
      ok: true,
      data: { query: "errors", title: AUDIT_TITLES.errors, sql: AUDIT_QUERIES.errors, time_zone: opts.timeZone, row_count: rows.length, rows: rows.map((r) => jsonRow({ ...r })) },
      render(out) {
        if (opts.showSql) showSql(out, "errors", opts.timeZone);
        out.heading(`Errors of the last 24 h (${AUDIT_TITLES.errors}): ${rows.length}`);
        if (rows.length === 0) out.line("No audit row of the last 24 h carries an error.");
        else auditTable(out, rows, opts.timeZone, opts.limit, true);
      },
    };
  },
});

const smsToday = defineCommand({
  name: "sms-today",
  summary: "the guide's \"SMS envoyés aujourd'hui\": sms_send audit rows of today",
  usage: "[--show-sql] [--time-zone <zone>]",
  help: `How many SMS were sent today (one twilio/sms_send audit row per message reserved for sending), ` +
    `today being the session's CURRENT_DATE. ${COMMON_HELP} Needs SUPABASE_DB_URL.`,
  examples: ["audit sms-today", "audit sms-today --time-zone UTC --show-sql"],
  options(cmd: Command) {
    commonOptions(cmd);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    requireDatabase(target, "audit sms-today");
    const progress = ctx.out.progress("counting today's SMS…");
    const result = await target.withDb("audit sms-today", (sql) => runGuideQuery<{ count: string }>(sql, AUDIT_QUERIES["sms-today"], opts.timeZone))
      .finally(() => progress.stop());
    const count = Number(result!.rows[0].count);
    return {
      ok: true,
      data: { query: "sms-today", title: AUDIT_TITLES["sms-today"], sql: AUDIT_QUERIES["sms-today"], time_zone: opts.timeZone, date: result!.today, count },
      render(out) {
        if (opts.showSql) showSql(out, "sms-today", opts.timeZone);
        out.fields([
          [`SMS sent today (${AUDIT_TITLES["sms-today"]})`, count],
          ["Today", `${result!.today} (${opts.timeZone})`],
        ]);
      },
    };
  },
});

const smsRecent = defineCommand({
  name: "sms-recent",
  summary: "the guide's \"Vérifier logs récents\": the 10 latest twilio sms_* audit rows",
  usage: "[--show-sql] [--time-zone <zone>]",
  help: `The ten latest SMS audit rows (sms_send, sms_status, sms_send_failed…), newest first: the first check ` +
    `of "SMS ne s'envoient pas". ${COMMON_HELP} Needs SUPABASE_DB_URL.`,
  examples: ["audit sms-recent", "--json audit sms-recent"],
  options(cmd: Command) {
    commonOptions(cmd);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    requireDatabase(target, "audit sms-recent");
    const progress = ctx.out.progress("reading the audit trail…");
    const result = await target.withDb("audit sms-recent", (sql) => runGuideQuery<AuditRow>(sql, AUDIT_QUERIES["sms-recent"], opts.timeZone))
      .finally(() => progress.stop());
    const rows = result!.rows;
    return {
      ok: true,
      data: { query: "sms-recent", title: AUDIT_TITLES["sms-recent"], sql: AUDIT_QUERIES["sms-recent"], time_zone: opts.timeZone, row_count: rows.length, rows: rows.map((r) => jsonRow({ ...r })) },
      render(out) {
        if (opts.showSql) showSql(out, "sms-recent", opts.timeZone);
        out.heading(`Latest SMS audit rows (${AUDIT_TITLES["sms-recent"]}): ${rows.length}`);
        if (rows.length === 0) out.line("No twilio sms_* audit row yet.");
        else auditTable(out, rows, opts.timeZone, 0, false);
      },
    };
  },
});

/** --limit: a whole number of rows, 0 for all. */
function limit(value: string): number {
  if (!/^\d{1,6}$/.test(value.trim())) throw new InvalidArgumentError("must be a whole number of rows (0: all)");
  return Number(value);
}

export default defineGroup({
  name: "audit",
  summary: "the guide's audit-trail queries: errors of the last 24 h, SMS sent today, latest SMS rows",
  commands: [errors, smsToday, smsRecent],
});
