// `npm run ops -- purge --dry-run`: what the next weekly retention run (Sunday 03:00
// America/Montreal, pg_cron) would delete, read-only, from the same SQL as the run itself
// (private.retention_preview / retention_cutoffs / retention_next_run, migration
// 20261129030000): SMS older than 180 days (sms_alerts rows deleted, sms_consent_events bodies
// blanked), audit rows older than one year; when it runs next, whether its pg_cron jobs are there,
// and what the last runs did (their maintenance audit rows).
//
// The purge itself is the cron's job: `purge` alone is refused with a hint. `purge --now --yes` runs
// the two purge functions now with the cut-offs a run now would use (private.retention_cutoffs()),
// each in its own transaction, as private.run_weekly_retention does (a failure is written to the
// audit trail with details.error); the operator goes in details.operator. It does not stand in for
// Sunday's run (that run still happens: it skips only a day it already ran on itself).
import type { Command } from "commander";
import type postgres from "postgres";
import { type Context, defineCommand, OperationFailed, type Options, type Outcome, UsageError } from "./command.ts";
import type { Output } from "./output.ts";
import { actorName, compactJson, jsonRow, localTime, OPS_TIME_ZONE, operatorName, plural, relative, requireDatabase } from "./runbook.ts";

const PURGE = "purge";

interface PreviewRow {
  table_name: string;
  change: string;
  cutoff: Date;
  row_count: string;
}

interface LastRun {
  action: string;
  created_at: Date;
  actor: string | null;
  details: Record<string, unknown>;
}

interface Job {
  jobname: string;
  schedule: string;
  active: boolean;
  last_status: string | null;
  last_start: Date | null;
}

interface Preview {
  now: Date;
  next_run: Date;
  tables: { table: string; change: string; next_run: { cutoff: Date; rows: number }; now: { cutoff: Date; rows: number } }[];
  last_runs: Record<"sms_purge" | "audit_purge", LastRun | null>;
  jobs: Job[] | null;
}

/** One read-only transaction: the preview at the next run and now, the last runs, the jobs. */
async function readPreview(sql: postgres.Sql): Promise<Preview> {
  return await sql.begin("read only", async (tx) => {
    const [{ now, next_run }] = await tx<{ now: Date; next_run: Date }[]>`select now() as now, private.retention_next_run() as next_run`;
    const atNext = await tx<PreviewRow[]>`select * from private.retention_preview(${next_run})`;
    const atNow = await tx<PreviewRow[]>`select * from private.retention_preview(now())`;
    const last = await tx<LastRun[]>`
      select distinct on (action) action, created_at, actor, details
        from public.system_audit_logs
       where area = 'maintenance' and action in ('sms_purge', 'audit_purge')
       order by action, created_at desc`;
    // pg_cron's tables, when this database has them and postgres may read them (hosted: yes).
    const [{ has_jobs, has_runs }] = await tx<{ has_jobs: boolean; has_runs: boolean }[]>`
      select to_regclass('cron.job') is not null and has_table_privilege('cron.job', 'select') as has_jobs,
             to_regclass('cron.job_run_details') is not null and has_table_privilege('cron.job_run_details', 'select') as has_runs`;
    const jobs = !has_jobs ? null : has_runs
      ? await tx<Job[]>`
          select j.jobname, j.schedule, j.active, r.status as last_status, r.start_time as last_start
            from cron.job as j
            left join lateral (select d.status, d.start_time from cron.job_run_details as d
                                where d.jobid = j.jobid order by d.start_time desc limit 1) as r on true
           where j.command like '%run_weekly_retention%' order by j.jobname`
      : await tx<Job[]>`
          select jobname, schedule, active, null as last_status, null as last_start
            from cron.job where command like '%run_weekly_retention%' order by jobname`;
    const byTable = new Map(atNow.map((r) => [r.table_name, r]));
    return {
      now,
      next_run,
      tables: atNext.map((r) => ({
        table: r.table_name,
        change: r.change,
        next_run: { cutoff: r.cutoff, rows: Number(r.row_count) },
        now: { cutoff: byTable.get(r.table_name)!.cutoff, rows: Number(byTable.get(r.table_name)!.row_count) },
      })),
      last_runs: {
        sms_purge: last.find((r) => r.action === "sms_purge") ?? null,
        audit_purge: last.find((r) => r.action === "audit_purge") ?? null,
      },
      jobs: jobs ? [...jobs] : null,
    };
  }) as Preview;
}

/** The database lacks the retention functions (migrations not applied there): say so. */
function withMigrationHint<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((error) => {
    if (error instanceof OperationFailed && /\b42883\b.*retention_/.test(error.message)) {
      throw new OperationFailed(`${error.message} (the migrations are not all applied there: npx supabase db push)`, error.data);
    }
    throw error;
  });
}

/** What a purge's audit row says it did, in a few words. */
function runSummary(run: LastRun | null): string {
  if (!run) return "never ran";
  const d = run.details ?? {};
  if (d.error !== undefined) return `FAILED: ${String(d.error)}`;
  if (run.action === "sms_purge") {
    return `${d.sms_alerts_deleted ?? "?"} SMS deleted, ${plural(d.consent_bodies_cleared ?? "?", "consent body", "consent bodies")} blanked`;
  }
  return `${plural(d.audit_logs_deleted ?? "?", "audit row", "audit rows")} deleted`;
}

function previewJson(p: Preview): Record<string, unknown> {
  return {
    now: p.now.toISOString(),
    next_run: p.next_run.toISOString(),
    time_zone: OPS_TIME_ZONE,
    tables: p.tables.map((t) => ({
      table: t.table,
      change: t.change,
      next_run: { cutoff: t.next_run.cutoff.toISOString(), rows: t.next_run.rows },
      now: { cutoff: t.now.cutoff.toISOString(), rows: t.now.rows },
    })),
    last_runs: Object.fromEntries(Object.entries(p.last_runs).map(([k, v]) => [k, v ? jsonRow({ ...v }) : null])),
    jobs: p.jobs?.map((j) => jsonRow({ ...j })) ?? null,
  };
}

function renderPreview(out: Output, p: Preview): void {
  const tz = OPS_TIME_ZONE;
  const c = out.colors;
  out.heading(`Next weekly retention run: ${localTime(p.next_run, tz, { seconds: false })} ${tz} (${relative(p.next_run, p.now)})`);
  out.table(
    ["Table", "Change", "Next run", "Older than", "A run now", "Older than"],
    p.tables.map((t) => [
      t.table,
      t.change,
      t.next_run.rows,
      localTime(t.next_run.cutoff, tz, { seconds: false }),
      t.now.rows,
      localTime(t.now.cutoff, tz, { seconds: false }),
    ]),
  );
  out.line(c.dim(`Read-only: nothing was deleted. Times in ${tz}. Rows written from now on are newer than these cut-offs.`));
  out.line();
  out.heading("Last runs (maintenance audit rows)");
  out.table(
    ["Purge", `When (${tz})`, "Trigger", "Result"],
    (["sms_purge", "audit_purge"] as const).map((action) => {
      const run = p.last_runs[action];
      const summary = runSummary(run);
      return [
        action,
        run ? localTime(run.created_at, tz) : null,
        run ? String(run.details?.trigger ?? run.actor ?? "") : null,
        run?.details?.error !== undefined ? c.red(summary) : summary,
      ];
    }),
  );
  out.line();
  if (p.jobs === null) {
    out.line("pg_cron jobs: not visible here (no cron schema, or postgres may not read it).");
  } else if (p.jobs.length === 0) {
    out.line(c.red("pg_cron jobs: none calls private.run_weekly_retention(): the weekly purge is not scheduled (migration 20261125020300)."));
  } else {
    out.heading("pg_cron jobs");
    out.table(
      ["Job", "Schedule (UTC)", "Active", "Last start", "Last status"],
      p.jobs.map((j) => [j.jobname, j.schedule, j.active ? "yes" : c.red("no"), j.last_start ? localTime(j.last_start, tz) : "never", j.last_status]),
    );
  }
}

interface PurgeResult {
  action: "sms_purge" | "audit_purge";
  ok: boolean;
  summary: Record<string, unknown>;
}

/** Runs both purges now, each in its own transaction; a failure is audited as the weekly wrapper does. */
async function purgeNow(sql: postgres.Sql, operator: string, out: Output): Promise<PurgeResult[]> {
  const runDetails = { trigger: "ops_purge_now", operator };
  const results: PurgeResult[] = [];
  for (const action of ["sms_purge", "audit_purge"] as const) {
    const progress = out.progress(action === "sms_purge" ? "purging SMS older than 180 days…" : "purging audit rows older than one year…");
    try {
      const [{ r }] = action === "sms_purge"
        ? await sql<{ r: Record<string, unknown> }[]>`
            select private.purge_expired_sms(c.sms_cutoff, 10000, ${sql.json(runDetails)}) as r from private.retention_cutoffs() as c`
        : await sql<{ r: Record<string, unknown> }[]>`
            select private.purge_expired_audit_logs(c.audit_cutoff, 10000, ${sql.json(runDetails)}) as r from private.retention_cutoffs() as c`;
      results.push({ action, ok: true, summary: r });
    } catch (error) {
      const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : null;
      const message = error instanceof Error ? error.message : String(error);
      if (!code) throw error; // not the database's refusal: the connection failed (withDb reports it)
      const details = { ...runDetails, error: message, sqlstate: code };
      await sql`insert into public.system_audit_logs (area, action, actor, target, details)
                values ('maintenance', ${action}, current_user, 'ops_purge_now', ${sql.json(details)})`;
      results.push({ action, ok: false, summary: details });
    } finally {
      progress.stop();
    }
  }
  return results;
}

export default defineCommand({
  name: "purge",
  summary: "the weekly retention: --dry-run shows what the next run (Sunday 03:00 Montreal) would delete; --now --yes runs it now",
  usage: "--dry-run | --now --yes [--actor <name>]",
  help: "Retention (operations guide, \"Maintenance préventive\"): every Sunday at 03:00 America/Montreal pg_cron " +
    "deletes SMS older than 180 days (sms_alerts rows; sms_consent_events keep their proof rows, their " +
    "message bodies are blanked) and audit rows older than one year.\n\n" +
    "--dry-run (read-only): the rows the next run would delete per table with its cut-offs, the same for a run " +
    "now, the last runs (their maintenance audit rows: sms_purge, audit_purge) and the pg_cron jobs. The counts " +
    "come from private.retention_preview(), which uses the purges' own cut-offs and predicates.\n\n" +
    "--now --yes: runs the two purge functions now (cut-offs: now - 180 days, now - 1 year), each in its own " +
    "transaction; details.operator records --actor (default $USER). Sunday's run still happens. Exit 1 when a " +
    "purge failed (its error is in the audit trail).\n\nNeeds SUPABASE_DB_URL.",
  examples: ["purge --dry-run", "--json purge --dry-run", "purge --now --yes --actor eric"],
  options(cmd: Command) {
    cmd
      .option("--dry-run", "show what the next run would delete (read-only)")
      .option("--now", "run the purges now instead of waiting for Sunday (with --yes)")
      .option("--yes", "confirm --now: rows are deleted for good")
      .option("--actor <name>", "who runs --now (default: $USER)", actorName);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    if (opts.dryRun && (opts.now || opts.yes)) throw new UsageError("--dry-run cannot be used with --now / --yes");
    if (!opts.dryRun && !opts.now) {
      throw new UsageError(
        "the purge runs by itself every Sunday at 03:00 America/Montreal (pg_cron): --dry-run shows what it will delete; " +
          "--now --yes runs it now",
      );
    }
    if (opts.now && !opts.yes) throw new UsageError("--now deletes rows for good: add --yes (look at --dry-run first)");
    if (opts.dryRun && opts.actor !== undefined) throw new UsageError("--actor goes with --now");
    const target = await ctx.target();
    requireDatabase(target, PURGE);

    if (opts.dryRun) {
      const progress = ctx.out.progress("counting what the next retention run would delete…");
      const preview = (await withMigrationHint(target.withDb(PURGE, readPreview)).finally(() => progress.stop()))!;
      return { ok: true, data: { dry_run: true, ...previewJson(preview) }, render: (out) => renderPreview(out, preview) };
    }

    const operator = operatorName(opts.actor);
    const results = (await withMigrationHint(target.withDb(PURGE, (sql) => purgeNow(sql, operator, ctx.out))))!;
    const failed = results.filter((r) => !r.ok);
    return {
      ok: failed.length === 0,
      data: { dry_run: false, operator, purges: results.map((r) => ({ action: r.action, ok: r.ok, ...r.summary })) },
      failure: failed.map((f) => `${f.action} failed: ${String(f.summary.error)}`).join("; "),
      render(out) {
        out.heading(`Retention run now (operator ${operator})`);
        out.table(
          ["Purge", "Cut-off", "Result", "Batches", "Duration"],
          results.map((r) => [
            r.action,
            r.ok ? localTime(String(r.summary.cutoff), OPS_TIME_ZONE) : null,
            r.ok ? runSummary({ action: r.action, created_at: new Date(), actor: null, details: r.summary }) : out.colors.red(`FAILED: ${String(r.summary.error)}`),
            r.ok ? String(r.summary.batches ?? "") : null,
            r.ok ? `${r.summary.duration_ms} ms` : null,
          ]),
        );
        out.line(out.colors.dim(`Audit rows: area maintenance, details ${compactJson({ trigger: "ops_purge_now", operator })}.`));
      },
    };
  },
});
