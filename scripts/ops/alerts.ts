// `npm run ops -- alerts list [--all]` and `alerts ack <id|kind>`: the automatic alerts of
// system-status (public.system_alerts, 20261129010100), read and acknowledged through the target's
// database (SUPABASE_DB_URL, as postgres like the SQL editor). Ack is private.ack_system_alert
// (20261129010500): one transaction, an alert_acked audit row, no further notification; the alert
// still clears by itself when its condition does. `ack <kind>` acks every open alert of that kind.
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { type Context, defineCommand, defineGroup, type Options, type Outcome, UsageError } from "./command.ts";
import { actorName, jsonRow, localTime, OPS_TIME_ZONE, operatorName, requireDatabase } from "./runbook.ts";

/** system_alerts.kind's check constraint (20261129010100). */
export const ALERT_KINDS = ["settings", "sms_error_rate", "stripe_webhook_failures", "database_size", "billing_sync_overdue", "cron_job_failed"] as const;

interface AlertRow {
  id: string;
  kind: string;
  subject: string;
  state: string;
  raised_at: Date;
  acked_at: Date | null;
  acked_by: string | null;
  cleared_at: Date | null;
  notifications: number;
  last_notification_status: string | null;
  details: Record<string, unknown>;
}

const list = defineCommand({
  name: "list",
  summary: "alerts not cleared yet (open or acknowledged); --all: the cleared ones too",
  usage: "[--all] [--limit <n>]",
  help: "Reads public.system_alerts, newest first. Needs SUPABASE_DB_URL.",
  examples: ["alerts list", "alerts list --all", "--json alerts list"],
  options(cmd: Command) {
    cmd.option("--all", "cleared alerts too")
      .option("--limit <n>", "at most n rows (1 to 1000, default 50)", (v: string) => {
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new InvalidArgumentError("must be an integer from 1 to 1000");
        return Number(v);
      }, 50);
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    requireDatabase(target, "alerts list");
    const all = Boolean(opts.all);
    const rows = (await target.withDb("alerts list", (sql) =>
      sql<AlertRow[]>`
        select id, kind, subject, state, raised_at, acked_at, acked_by, cleared_at, notifications, last_notification_status, details
          from public.system_alerts
         where ${all} or state <> 'cleared'
         order by raised_at desc, id desc
         limit ${opts.limit}`
    ))!;
    return {
      ok: true,
      data: { all, count: rows.length, alerts: rows.map((r) => jsonRow({ ...r })) },
      render(out) {
        const c = out.colors;
        out.heading(`${all ? "Alerts" : "Alerts not cleared"}: ${rows.length}`);
        if (!rows.length) {
          out.line("None.");
          return;
        }
        out.table(
          ["Id", "Kind", "Subject", "State", `Raised (${OPS_TIME_ZONE})`, "Acked by", "Notified"],
          rows.map((r) => [
            r.id,
            r.kind,
            r.subject,
            r.state === "open" ? c.red(r.state) : r.state === "acked" ? c.yellow(r.state) : c.green(r.state),
            localTime(r.raised_at, OPS_TIME_ZONE),
            r.acked_by,
            `${r.notifications}${r.last_notification_status ? ` (${r.last_notification_status})` : ""}`,
          ]),
        );
      },
    };
  },
});

const ack = defineCommand({
  name: "ack",
  summary: "acknowledge an open alert (by id, or every open alert of a kind): no more SMS about it",
  usage: "<id|kind> [--actor <name>]",
  help: `Calls private.ack_system_alert(id, actor) (audited: alert_acked). A kind (${ALERT_KINDS.join(", ")}) acks ` +
    "every open alert of that kind. Exit 1 when nothing open matched. Needs SUPABASE_DB_URL.",
  examples: ["alerts ack 12", "alerts ack cron_job_failed --actor operateur.garde"],
  options(cmd: Command) {
    cmd.argument("<alert>", "an alert id or kind").option("--actor <name>", "who acknowledges (default: $USER)", actorName);
  },
  async run(ctx: Context, opts: Options, args: string[]): Promise<Outcome> {
    const given = String(args[0] ?? "").trim();
    const byId = /^[1-9]\d{0,17}$/.test(given);
    if (!byId && !(ALERT_KINDS as readonly string[]).includes(given)) {
      throw new UsageError(`<alert> must be an alert id or one of ${ALERT_KINDS.join(", ")} (got ${JSON.stringify(given.slice(0, 40))})`);
    }
    const target = await ctx.target();
    requireDatabase(target, "alerts ack");
    const actor = operatorName(opts.actor);
    const results = (await target.withDb("alerts ack", (sql) =>
      sql.begin(async (tx) => {
        const ids = byId
          ? (await tx<{ id: string }[]>`select id from public.system_alerts where id = ${given}`).map((r) => r.id)
          : (await tx<{ id: string }[]>`select id from public.system_alerts where kind = ${given} and state = 'open' order by id`).map((r) => r.id);
        const out: Record<string, unknown>[] = [];
        for (const id of ids) {
          const [{ r }] = await tx<{ r: Record<string, unknown> }[]>`select private.ack_system_alert(${id}::bigint, ${actor}) as r`;
          out.push(r);
        }
        return out;
      })
    ))!;
    const acked = results.filter((r) => r.acked === true);
    const data = { alert: given, actor, acked: acked.length, results };
    if (!acked.length) {
      const why = results.length === 0
        ? (byId ? `no alert ${given}` : `no open alert of kind ${given}`)
        : `alert ${given} is ${results[0].state}, not open`;
      return { ok: false, data, failure: why, render: () => {} };
    }
    return {
      ok: true,
      data,
      render(out) {
        out.heading(`Acknowledged by ${actor}: ${acked.length}`);
        out.table(["Id", "Kind", "Subject", "State"], acked.map((r) => [String(r.id), String(r.kind), String(r.subject ?? ""), String(r.state)]));
      },
    };
  },
});

export default defineGroup({ name: "alerts", summary: "system-status's automatic alerts: list, acknowledge", commands: [list, ack] });
