// THE outbound SMS path (send-sms, voice-inbound's missed-call SMS): reserve the sms_alerts rows in
// one SQL call (private.reserve_outbound_sms refuses non-consenting / unverified recipients and
// replays an idempotency key), then for each reserved row send through the Messaging Service with
// StatusCallback = the public sms-status URL, then record Twilio's answer (private.record_sms_sent:
// the MessageSid, or the failure; 21610 revokes consent there).
//
// Rate limits: 429 / 20429 are retried with a bounded backoff that honours Retry-After (at most
// `maxAttempts` tries and `maxWaitMs` of waiting per message), so a request finishes in bounded time.
// Other provider errors are recorded and returned as a typed result. Nothing here carries the auth
// token: results hold Twilio's code and message only.
import type { Sql } from "../db.ts";
import { type SettingsSource, settingsSource } from "../env.ts";
import { functionsPublicBaseUrl } from "../public-url.ts";
import { TwilioApiError, type TwilioClient, twilioClient, TwilioNetworkError } from "./client.ts";

/** The reserve request, as private.reserve_outbound_sms takes it (`from` is filled in here). */
export type SendRequest =
  & ({ worker_id: string } | { site_id: string } | { to: string })
  & ({ body: string } | { body_fr: string; body_en: string })
  & { idempotency_key?: string };

export interface SentMessage {
  alert_id: number;
  worker_id: string | null;
  to: string;
  /** `sent`: Twilio accepted it (message_sid set); `failed`: Twilio refused it (error set). */
  outcome: "sent" | "failed";
  status: string;
  message_sid: string | null;
  error: { code: number | null; message: string; http_status: number | null } | null;
  attempts: number;
}

export interface SendResult {
  /** A replayed idempotency key: nothing was sent again; messages are the first request's. */
  duplicate: boolean;
  messages: SentMessage[];
  skipped: { worker_id: string | null; reasons: string[] }[];
}

export interface SendOptions {
  sql: Sql;
  client?: TwilioClient;
  source?: SettingsSource;
  /** Tries per message when rate-limited (default 3). */
  maxAttempts?: number;
  /** Total waiting per message across retries (default 5000 ms); a longer Retry-After gives up. */
  maxWaitMs?: number;
  /** Waiting (tests pass a recorder). */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Runs the reservation (send-sms passes `(fn) => asUser(claims, fn)` so the caller's own reach
   * decides who may be texted); the provider call and the record always use `sql` (service).
   * Default: the reservation runs on `sql` too.
   */
  reserveAs?: <T>(fn: (sql: Sql) => Promise<T>) => Promise<T>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ReservedRow {
  alert_id: number;
  worker_id: string | null;
  to: string;
  body: string;
  status: string;
  message_sid: string | null;
  error_code: number | null;
}

/** Reserve → send → record, for every recipient of `request`. */
export async function sendSms(request: SendRequest, opts: SendOptions): Promise<SendResult> {
  const source = opts.source ?? settingsSource();
  const { TWILIO_PHONE_NUMBER } = source.get("TWILIO_PHONE_NUMBER");
  const client = opts.client ?? twilioClient(source);
  const statusCallback = `${functionsPublicBaseUrl(source)}/sms-status`;
  const maxAttempts = opts.maxAttempts ?? 3;
  const maxWaitMs = opts.maxWaitMs ?? 5000;
  const sleep = opts.sleep ?? defaultSleep;

  type Reserved = { duplicate: boolean; messages: ReservedRow[]; skipped: SendResult["skipped"] };
  const reserveAs = opts.reserveAs ?? (<T>(fn: (sql: Sql) => Promise<T>) => fn(opts.sql));
  const [{ reserved }] = await reserveAs((sql) =>
    sql<[{ reserved: Reserved }]>`
      select private.reserve_outbound_sms(${sql.json({ ...request, from: TWILIO_PHONE_NUMBER })}::jsonb) as reserved`
  );

  if (reserved.duplicate) {
    // The first request sent (or is sending) these: never a second SMS.
    return {
      duplicate: true,
      skipped: reserved.skipped ?? [],
      messages: reserved.messages.map((m) => ({
        alert_id: m.alert_id,
        worker_id: m.worker_id,
        to: m.to,
        outcome: m.status === "failed" ? "failed" : "sent",
        status: m.status,
        message_sid: m.message_sid,
        error: m.error_code === null ? null : { code: m.error_code, message: "send failed", http_status: null },
        attempts: 0,
      })),
    };
  }

  const messages: SentMessage[] = [];
  for (const row of reserved.messages) {
    let attempts = 0;
    let waited = 0;
    let failure: SentMessage["error"] = null;
    let sid: string | null = null;
    let status = "queued";
    for (;;) {
      attempts++;
      try {
        const m = await client.sendMessage({ to: row.to, body: row.body, statusCallback });
        sid = m.sid;
        status = m.status;
        break;
      } catch (error) {
        if (error instanceof TwilioApiError) {
          if (error.rateLimited && attempts < maxAttempts) {
            const wait = (error.retryAfterSeconds ?? 2 ** (attempts - 1)) * 1000;
            if (waited + wait <= maxWaitMs) {
              waited += wait;
              await sleep(wait);
              continue;
            }
          }
          failure = { code: error.code, message: error.message, http_status: error.status };
        } else if (error instanceof TwilioNetworkError) {
          failure = { code: null, message: error.message, http_status: null };
        } else {
          throw error;
        }
        break;
      }
    }
    const record = sid !== null
      ? { alert_id: row.alert_id, message_sid: sid, status }
      : { alert_id: row.alert_id, error_code: failure?.code ?? undefined, error_message: failure?.message };
    const [{ recorded }] = await opts.sql<[{ recorded: { status: string } }]>`
      select private.record_sms_sent(${opts.sql.json(record)}::jsonb) as recorded`;
    messages.push({
      alert_id: row.alert_id,
      worker_id: row.worker_id,
      to: row.to,
      outcome: sid !== null ? "sent" : "failed",
      status: recorded.status,
      message_sid: sid,
      error: failure,
      attempts,
    });
  }
  return { duplicate: false, messages, skipped: reserved.skipped ?? [] };
}
