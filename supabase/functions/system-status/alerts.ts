// The alert SMS: what the owner receives when an alert is raised, and how it is sent. The decision
// (which alert, whether the cooldown allows it) was taken atomically by private.evaluate_system_alerts;
// here the claimed notifications go out through the normal send path (_shared/twilio/send.ts: an
// sms_alerts row before the provider call, an sms_send audit row, the idempotency key of the claim
// so a replay never texts twice), and each outcome is recorded
// (private.record_system_alert_notification: an alert_notified audit row, details.error on failure).
import { jsonLiteral, type Sql } from "../_shared/db.ts";
import { SettingsError, type SettingsSource } from "../_shared/env.ts";
import { sendSms } from "../_shared/twilio/send.ts";

/** A notification claimed by the SQL (`alerts.notify` of private.evaluate_system_status). */
export interface ClaimedNotification {
  alert_id: number;
  kind: string;
  subject: string;
  details: Record<string, unknown>;
  attempt: number;
  idempotency_key: string;
}

export interface NotificationOutcome {
  alert_id: number;
  kind: string;
  subject: string;
  status: "sent" | "failed";
  message_sid?: string;
  error?: string;
}

const pct = (ratio: unknown) => typeof ratio === "number" ? `${Math.round(ratio * 1000) / 10}%` : "?";

/** [French, English] for an alert: GSM-7 characters only (é, è, à are), no value of any setting. */
function describe(n: ClaimedNotification): [string, string] {
  const d = n.details;
  switch (n.kind) {
    case "settings": {
      const problems = Array.isArray(d.problems) ? (d.problems as { name?: string }[]).map((p) => String(p.name)) : [];
      const names = problems.slice(0, 4).join(", ") + (problems.length > 4 ? ` +${problems.length - 4}` : "");
      return [`réglages manquants ou invalides: ${names}`, `missing or malformed settings: ${names}`];
    }
    case "sms_error_rate":
      return [
        `taux d'erreur SMS ${pct(d.error_rate)} sur 24 h (seuil 5%)`,
        `SMS error rate ${pct(d.error_rate)} over 24 h (limit 5%)`,
      ];
    case "stripe_webhook_failures":
      return [
        `webhooks Stripe en échec: ${d.failed}/${d.received} sur 24 h`,
        `Stripe webhook failures: ${d.failed}/${d.received} over 24 h`,
      ];
    case "database_size":
      return [`base de données à ${pct(d.used_ratio)} du quota`, `database at ${pct(d.used_ratio)} of its quota`];
    case "billing_sync_overdue":
      return typeof d.hours_since_complete === "number"
        ? [
          `synchro facturation en retard (dernière complète il y a ${Math.round(d.hours_since_complete)} h)`,
          `billing sync overdue (last complete ${Math.round(d.hours_since_complete)} h ago)`,
        ]
        : ["aucune synchro facturation complète depuis plus de 26 h", "no complete billing sync for over 26 h"];
    case "cron_job_failed":
      return [`job pg_cron ${n.subject} en échec`, `pg_cron job ${n.subject} failed`];
    default:
      return [`alerte ${n.kind}`, `alert ${n.kind}`];
  }
}

/** The SMS to OWNER_MOBILE, French first: at most 2 GSM-7 segments in every case we raise. */
export function alertSms(n: ClaimedNotification): string {
  const [fr, en] = describe(n);
  const text = `C-Secur360 ALERTE: ${fr}. / ALERT: ${en}. (#${n.alert_id}; npm run ops -- status)`;
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

/** Sends each claimed notification to OWNER_MOBILE, then records how it went. Never throws. */
export async function notifyOwner(
  sql: Sql,
  claimed: ClaimedNotification[],
  source: SettingsSource,
  log: (line: string) => void,
): Promise<NotificationOutcome[]> {
  const outcomes: NotificationOutcome[] = [];
  for (const n of claimed) {
    const outcome: NotificationOutcome = { alert_id: n.alert_id, kind: n.kind, subject: n.subject, status: "failed" };
    try {
      const { OWNER_MOBILE } = source.get("OWNER_MOBILE");
      const result = await sendSms(
        { to: OWNER_MOBILE, body: alertSms(n), idempotency_key: n.idempotency_key },
        { sql, source },
      );
      const message = result.messages[0];
      if (message?.outcome === "sent") {
        outcome.status = "sent";
        if (message.message_sid) outcome.message_sid = message.message_sid;
      } else if (message) {
        outcome.error = `Twilio refused the message${message.error?.code ? ` (code ${message.error.code})` : ""}`;
      } else {
        const reasons = result.skipped.flatMap((s) => s.reasons).join(", ");
        outcome.error = `the send path skipped OWNER_MOBILE${reasons ? `: ${reasons}` : ""}`;
      }
    } catch (error) {
      // Names and reasons only (env.ts never puts a value in them); anything else: its class.
      outcome.error = error instanceof SettingsError
        ? `settings not usable: ${error.problems.map((p) => `${p.name} ${p.status}`).join(", ")}`
        : `the send path failed (${error instanceof Error ? error.name : "error"})`;
    }
    try {
      await sql.unsafe(`select private.record_system_alert_notification(${
        jsonLiteral({
          alert_id: n.alert_id,
          attempt: n.attempt,
          status: outcome.status,
          message_sid: outcome.message_sid,
          error: outcome.error,
        })
      }::jsonb)`);
    } catch {
      log(`alert #${n.alert_id}: its notification outcome could not be recorded`);
    }
    if (outcome.status === "failed") log(`alert #${n.alert_id} (${n.kind}): notification failed: ${outcome.error}`);
    outcomes.push(outcome);
  }
  return outcomes;
}
