// `npm run ops -- incident note|list`: the operations guide's "Documenter incident dans
// system_audit_logs" (Procédures d'urgence). A note is one audit row: area 'system' (or --area),
// action 'incident_note', actor = the operator (--actor, else $USER), details {message, severity}.
// The trail is append-only: a note is never edited; a later note says what changed.
import type { Command } from "commander";
import { type Context, defineCommand, defineGroup, type Options, type Outcome } from "./command.ts";
import { oneOf, text } from "./args.ts";
import {
  actorName,
  duration,
  jsonRow,
  localTime,
  OPS_TIME_ZONE,
  operatorName,
  requireDatabase,
  truncate,
} from "./runbook.ts";
import { InvalidArgumentError } from "commander";

export const SEVERITIES = ["low", "medium", "high", "critical"] as const;
/** system_audit_logs.area's check constraint (20261125020000): tests/ops/incident.test.ts compares them. */
export const AUDIT_AREAS = ["stripe", "twilio", "vercel", "supabase", "dns", "database", "billing", "maintenance", "system"] as const;
const ACTION = "incident_note";
const MAX_MESSAGE = 2000;

function message(value: string): string {
  const v = text(value).trim();
  if ([...v].length > MAX_MESSAGE) throw new InvalidArgumentError(`must be at most ${MAX_MESSAGE} characters`);
  return v;
}

interface IncidentRow {
  id: string;
  created_at: Date;
  area: string;
  actor: string | null;
  details: { message?: string; severity?: string };
}

const note = defineCommand({
  name: "note",
  summary: "document an incident in system_audit_logs (the guide's \"Documenter incident\")",
  usage: "--message <text> [--severity low|medium|high|critical] [--area <area>] [--actor <name>]",
  help: "Writes one audit row: area 'system' (or --area: one of the audit trail's areas), action 'incident_note', " +
    "actor = --actor or $USER, details {message, severity} (severity default medium). The trail is append-only: " +
    "add a new note to follow up (\"resolved: …\"). Needs SUPABASE_DB_URL.",
  examples: [
    'incident note --message "Site inaccessible: rollback du dernier déploiement" --severity critical',
    'incident note --message "SMS en échec (30003) pour un chantier" --severity medium --area twilio',
  ],
  options(cmd: Command) {
    cmd
      .requiredOption("--message <text>", `what happened, what was done (at most ${MAX_MESSAGE} characters)`, message)
      .option("--severity <level>", "low, medium, high or critical", oneOf(...SEVERITIES), "medium")
      .option("--area <area>", `the audit trail's area: ${AUDIT_AREAS.join(", ")}`, oneOf(...AUDIT_AREAS), "system")
      .option("--actor <name>", "who writes it (default: $USER)", actorName);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    requireDatabase(target, "incident note");
    const actor = operatorName(opts.actor);
    const details = { message: opts.message, severity: opts.severity };
    const [row] = (await target.withDb("incident note", (sql) =>
      sql<IncidentRow[]>`
        insert into public.system_audit_logs (area, action, actor, details)
        values (${opts.area}, ${ACTION}, ${actor}, ${sql.json(details)})
        returning id, created_at, area, actor, details`
    ))!;
    return {
      ok: true,
      data: { incident: jsonRow({ ...row, action: ACTION }) },
      render(out) {
        out.heading(`Incident noted in system_audit_logs (id ${row.id})`);
        out.fields([
          [`Time (${OPS_TIME_ZONE})`, localTime(row.created_at, OPS_TIME_ZONE)],
          ["Area / action", `${row.area} / ${ACTION}`],
          ["Actor", row.actor],
          ["Severity", row.details.severity],
          ["Message", row.details.message],
        ]);
      },
    };
  },
});

const list = defineCommand({
  name: "list",
  summary: "incident notes of the last days, newest first",
  usage: "[--since <duration>]",
  help: "Every incident_note audit row (any area) written in the last --since (default 7d; 30m, 12h, 7d, 2w…), " +
    "newest first. Needs SUPABASE_DB_URL.",
  examples: ["incident list", "incident list --since 30d", "--json incident list --since 24h"],
  options(cmd: Command) {
    cmd.option("--since <duration>", "how far back (30m, 12h, 7d, 2w)", duration, 7 * 86400);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    requireDatabase(target, "incident list");
    const seconds: number = opts.since;
    const progress = ctx.out.progress("reading incident notes…");
    const rows = (await target.withDb("incident list", (sql) =>
      sql<IncidentRow[]>`
        select id, created_at, area, actor, details
          from public.system_audit_logs
         where action = ${ACTION} and created_at > now() - make_interval(secs => ${seconds})
         order by created_at desc, id desc`
    ).finally(() => progress.stop()))!;
    return {
      ok: true,
      data: { since_seconds: seconds, count: rows.length, incidents: rows.map((r) => jsonRow({ ...r, action: ACTION })) },
      render(out) {
        const c = out.colors;
        const sev = (s: string | undefined) => s === "critical" || s === "high" ? c.red(s) : s;
        out.heading(`Incident notes since ${localTime(new Date(Date.now() - seconds * 1000), OPS_TIME_ZONE, { seconds: false })}: ${rows.length}`);
        if (rows.length === 0) {
          out.line("None.");
          return;
        }
        out.table(
          ["Id", `Time (${OPS_TIME_ZONE})`, "Severity", "Area", "Actor", "Message"],
          rows.map((r) => [r.id, localTime(r.created_at, OPS_TIME_ZONE), sev(r.details?.severity), r.area, r.actor, truncate(String(r.details?.message ?? ""), 100)]),
        );
      },
    };
  },
});

export default defineGroup({
  name: "incident",
  summary: "document an incident in the audit trail; list the recent notes",
  commands: [note, list],
});
