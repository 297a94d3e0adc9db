// The alert SMS text (system-status/alerts.ts): French first, then English, GSM-7 only, at most two
// segments for every kind, and a settings alert names settings, never a value.
import assert from "node:assert/strict";
import { alertSms, type ClaimedNotification } from "../../../supabase/functions/system-status/alerts.ts";
import { countSegments } from "../../../supabase/functions/_shared/twilio/segments.ts";

const claim = (kind: string, details: Record<string, unknown>, subject = ""): ClaimedNotification => ({
  alert_id: 123456,
  kind,
  subject,
  details,
  attempt: 1,
  idempotency_key: "system-alert:123456:1",
});

const CASES: [ClaimedNotification, RegExp][] = [
  [
    claim("settings", {
      problems: ["STRIPE_SECRET_KEY", "TWILIO_AUTH_TOKEN", "OWNER_MOBILE", "APP_URL", "STRIPE_PRICE_MONTHLY", "STRIPE_PRICE_ANNUAL"]
        .map((name) => ({ name, status: "missing" })),
    }),
    /réglages manquants ou invalides: STRIPE_SECRET_KEY, TWILIO_AUTH_TOKEN, OWNER_MOBILE, APP_URL \+2\. \/ ALERT: missing or malformed settings/,
  ],
  [claim("sms_error_rate", { error_rate: 0.0714 }), /taux d'erreur SMS 7.1% sur 24 h \(seuil 5%\)\. \/ ALERT: SMS error rate 7.1%/],
  [claim("stripe_webhook_failures", { failed: 3, received: 40 }), /webhooks Stripe en échec: 3\/40 sur 24 h/],
  [claim("database_size", { used_ratio: 0.8123 }), /base de données à 81.2% du quota\. \/ ALERT: database at 81.2% of its quota/],
  [claim("billing_sync_overdue", { hours_since_complete: 30.4 }), /synchro facturation en retard \(dernière complète il y a 30 h\)/],
  [claim("billing_sync_overdue", { hours_since_complete: null }), /aucune synchro facturation complète/],
  [claim("cron_job_failed", {}, "weekly-retention-0700-utc"), /job pg_cron weekly-retention-0700-utc en échec\. \/ ALERT: pg_cron job weekly-retention-0700-utc failed/],
];

Deno.test("alert SMS: each kind, French then English, GSM-7, at most 2 segments, with the alert's number", () => {
  for (const [n, expected] of CASES) {
    const text = alertSms(n);
    assert.match(text, /^C-Secur360 ALERTE: /);
    assert.match(text, expected);
    assert.match(text, /\(#123456; npm run ops -- status\)$/);
    const { encoding, segments } = countSegments(text);
    assert.equal(encoding, "GSM-7", text);
    assert.ok(segments <= 2, `${segments} segments: ${text}`);
  }
});
