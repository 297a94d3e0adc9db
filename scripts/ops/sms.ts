// `npm run ops -- sms …`: the operator's SMS checks (operations guide, "Tests de communication").
//
//   sms send              our send-sms function with the secret API key: a number, a worker or a site
//   sms simulate-inbound  an incoming SMS posted to sms-inbound exactly as Twilio posts it (signed),
//                         then the reply and the consent of every worker with that number
import { type Command, InvalidArgumentError } from "commander";
import type postgres from "postgres";
import { inboundSmsParams } from "../fakes/twilio.ts";
import { classifyInbound, TWILIO_DEFAULT_KEYWORDS } from "../../supabase/functions/_shared/twilio/keywords.ts";
import { e164, exactlyOne, oneOf, seconds, text, uuid } from "./args.ts";
import { type Context, defineCommand, defineGroup, type Options, type Outcome, UsageError } from "./command.ts";
import type { Output } from "./output.ts";
import type { Target } from "./target.ts";
import {
  callFunctionAsService,
  describeFailure,
  type FunctionAnswer,
  postTwilioWebhook,
  signatureHint,
  summariseTwiml,
  webhookAccount,
} from "./twilio.ts";

// ---- shared with voice.ts ------------------------------------------------------------------------

/** Statuses after which an outbound SMS changes no more (Twilio: read only follows delivered). */
const FINAL = new Set(["delivered", "undelivered", "failed", "read"]);

export interface AlertRow {
  message_sid: string | null;
  to: string;
  body: string;
  status: string;
  error_code: number | null;
  error_message: string | null;
}

/** sms_alerts rows by MessageSid. */
export async function alertsBySid(sql: postgres.Sql, sids: string[]): Promise<Map<string, AlertRow>> {
  const rows = await sql<AlertRow[]>`
    select provider_message_id as message_sid, to_number as "to", body, status, error_code, error_message
      from public.sms_alerts
     where provider_message_id = any(${sids}::text[])`;
  return new Map(rows.map((r) => [r.message_sid!, r]));
}

/**
 * Polls the database until every message has a final status (delivered, undelivered, failed) or
 * `timeoutSeconds` pass: the status callbacks arrive after the send answered. Undefined without a
 * database.
 */
export async function waitForDelivery(
  target: Target,
  out: Output,
  purpose: string,
  sids: string[],
  timeoutSeconds: number,
): Promise<Map<string, AlertRow> | undefined> {
  if (sids.length === 0) return new Map();
  const progress = out.progress(`waiting for the delivery status of ${sids.length} SMS (up to ${timeoutSeconds} s)…`);
  try {
    return await target.withDb(purpose, async (sql) => {
      const deadline = Date.now() + timeoutSeconds * 1000;
      for (;;) {
        const rows = await alertsBySid(sql, sids);
        const pending = sids.filter((s) => !FINAL.has(rows.get(s)?.status ?? ""));
        if (pending.length === 0 || Date.now() >= deadline) {
          progress.stop();
          return rows;
        }
        progress.text(`waiting for the delivery status: ${sids.length - pending.length}/${sids.length} final…`);
        await new Promise((r) => setTimeout(r, 250));
      }
    });
  } finally {
    progress.stop();
  }
}

// ---- sms send ------------------------------------------------------------------------------------

interface SentMessage {
  worker_id: string | null;
  to: string;
  status: string;
  message_sid: string | null;
  error?: { code: number | null; message: string };
}

interface SendAnswer {
  messages: SentMessage[];
  skipped: { worker_id: string | null; reasons: string[] }[];
  duplicate: boolean;
  message_sid?: string | null;
  error?: string;
  message?: string;
  twilio_code?: number | null;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/;
const SEND = "sms send";

function sendRequest(opts: Options): Record<string, string> {
  const recipient = exactlyOne(opts, "to", "worker", "site");
  const pair = opts.bodyFr !== undefined || opts.bodyEn !== undefined;
  if (opts.body !== undefined && pair) throw new UsageError("--body cannot be used with --body-fr / --body-en");
  if (opts.body === undefined && !pair) throw new UsageError("--body, or --body-fr and --body-en (site alerts), is required");
  if (pair) {
    if (recipient !== "site") throw new UsageError("--body-fr and --body-en are for site alerts (--site); use --body");
    if (opts.bodyFr === undefined || opts.bodyEn === undefined) throw new UsageError("--body-fr and --body-en go together");
  }
  if (opts.idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(opts.idempotencyKey)) {
    throw new UsageError("--idempotency-key must be 1 to 200 printable ASCII characters, without leading or trailing spaces");
  }
  const field = { to: "to", worker: "worker_id", site: "site_id" }[recipient]!;
  const bodies: Record<string, string> = pair ? { body_fr: opts.bodyFr, body_en: opts.bodyEn } : { body: opts.body };
  return { [field]: opts[recipient], ...bodies };
}

function isSendAnswer(body: unknown): body is SendAnswer {
  return typeof body === "object" && body !== null && Array.isArray((body as SendAnswer).messages) &&
    Array.isArray((body as SendAnswer).skipped);
}

const errorText = (m: SentMessage) => m.error ? `${m.error.code ?? ""} ${m.error.message}`.trim() : null;

function renderSend(out: Output, answer: FunctionAnswer, body: SendAnswer | undefined, delivery?: Map<string, AlertRow>): void {
  const c = out.colors;
  const status = (s: string) => (s === "failed" || s === "undelivered" ? c.red(s) : s === "delivered" ? c.green(s) : s);
  if (body) {
    const sent = body.messages.filter((m) => !m.error).length;
    out.heading(
      `send-sms: ${sent} sent, ${body.messages.length - sent} failed, ${body.skipped.length} skipped` +
        `${body.duplicate ? " (a replay of the first request with this Idempotency-Key: no new SMS)" : ""}`,
    );
    if (body.messages.length) {
      // The Worker and Error columns only when they say something (a bare number has no worker).
      const withWorker = body.messages.some((m) => m.worker_id);
      const withError = body.messages.some((m) => m.error);
      out.table(
        [...(withWorker ? ["Worker"] : []), "To", "Status", "Message SID", ...(withError ? ["Error"] : [])],
        body.messages.map((m) => [
          ...(withWorker ? [m.worker_id] : []),
          m.to,
          status((m.message_sid && delivery?.get(m.message_sid)?.status) || m.status),
          m.message_sid,
          ...(withError ? [errorText(m)] : []),
        ]),
      );
    }
    if (body.skipped.length) {
      out.line("Skipped (no SMS sent to them):");
      out.table(["Worker", "Reasons"], body.skipped.map((s) => [s.worker_id, s.reasons.join(", ")]));
    }
  }
  const facts: [string, string | number | null | undefined][] = [["HTTP status", answer.status]];
  if (body?.message_sid) facts.push(["message_sid", body.message_sid]);
  if (answer.requestId) facts.push(["request id", answer.requestId]);
  out.fields(facts);
}

const send = defineCommand({
  name: "send",
  summary: "send an SMS through send-sms with the secret API key: to a number, a worker or every worker of a site",
  usage: "(--to <E.164> | --worker <uuid> | --site <uuid>) (--body <text> | --body-fr <text> --body-en <text>) " +
    "[--idempotency-key <key>] [--wait [seconds]]",
  help: "Calls POST /functions/v1/send-sms as the service (apikey: SUPABASE_SECRET_KEY). A worker without " +
    "consent or a verified phone is never texted: they are listed as skipped. --to is the service's " +
    "bare-number send (the operator's test SMS to OWNER_MOBILE). Needs SUPABASE_URL and " +
    "SUPABASE_SECRET_KEY (--wait: SUPABASE_DB_URL).\n\n" +
    "Exit 0: every message accepted (some recipients may be skipped); 1: refused, a message failed, or every " +
    "recipient skipped.",
  examples: [
    'sms send --to +15145550100 --body "Test SMS C-Secur360 - $(date)"',
    "sms send --worker 3a000000-0000-4000-8000-000000000001 --body 'Alerte : évacuez le chantier nord.'",
    "sms send --site 5a000000-0000-4000-8000-000000000001 --body-fr 'Alerte : vent violent.' --body-en 'Alert: high winds.'",
  ],
  options(cmd: Command) {
    cmd
      .option("--to <E.164>", "a phone number (service only: e.g. the operator's test SMS to OWNER_MOBILE)", e164)
      .option("--worker <uuid>", "one worker (needs their consent and a verified phone)", uuid)
      .option("--site <uuid>", "every consenting, verified worker of a site, each in their language", uuid)
      .option("--body <text>", "the message (≤ 1600 characters, ≤ 10 segments)", text)
      .option("--body-fr <text>", "site alerts: the body for French-speaking workers", text)
      .option("--body-en <text>", "site alerts: the body for English-speaking workers", text)
      .option("--idempotency-key <key>", "the same key again returns the first answer, and sends nothing twice")
      .option("--wait [seconds]", "then wait for each SMS's delivery status (database; default 30 s)", seconds(300));
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const request = sendRequest(opts);
    const target = await ctx.target();
    const headers: Record<string, string> = opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {};
    const progress = ctx.out.progress(
      request.site_id ? `sending the alert to the workers of site ${request.site_id}…` : "sending the SMS…",
    );
    let answer: FunctionAnswer;
    try {
      answer = await callFunctionAsService(target, SEND, "send-sms", request, { headers });
    } finally {
      progress.stop();
    }
    const body = isSendAnswer(answer.json) ? answer.json : undefined;
    const waitSeconds = opts.wait === true ? 30 : typeof opts.wait === "number" ? opts.wait : undefined;
    let delivery: Map<string, AlertRow> | undefined;
    if (body && waitSeconds !== undefined) {
      const sids = body.messages.map((m) => m.message_sid).filter((s): s is string => Boolean(s));
      delivery = await waitForDelivery(target, ctx.out, SEND, sids, waitSeconds);
      if (delivery === undefined) ctx.out.warn(`ops ${SEND}: --wait needs SUPABASE_DB_URL (${target.label} has none): delivery not shown`);
    }
    const messages = body?.messages.map((m) => {
      const row = m.message_sid ? delivery?.get(m.message_sid) : undefined;
      return row ? { ...m, status: row.status, ...(row.error_code ? { delivery_error: `${row.error_code} ${row.error_message ?? ""}`.trim() } : {}) } : m;
    });
    const data: Record<string, unknown> = {
      http_status: answer.status,
      ...(answer.requestId ? { request_id: answer.requestId } : {}),
      ...(typeof answer.json === "object" && answer.json !== null ? answer.json as Record<string, unknown> : {}),
      ...(messages ? { messages } : {}),
    };
    const render = (out: Output) => renderSend(out, answer, body, delivery);

    if (answer.status !== 200 || !body) {
      return { ok: false, data, render, failure: `send-sms refused the request: ${describeFailure(answer)}` };
    }
    const failed = (messages ?? []).filter((m) => m.error || m.status === "failed" || m.status === "undelivered");
    if (body.messages.length === 0) {
      return { ok: false, data, render, failure: `no SMS sent: every recipient was skipped (${body.skipped.length})` };
    }
    if (failed.length) {
      return { ok: false, data, render, failure: `${failed.length} of ${body.messages.length} SMS failed` };
    }
    return { ok: true, data, render };
  },
});

// ---- sms simulate-inbound ------------------------------------------------------------------------

const INBOUND = "sms simulate-inbound";

interface WorkerConsent {
  worker_id: string;
  full_name: string;
  tenant: string;
  sms_consent: boolean;
  phone_verified: boolean;
  preferred_language: string;
  last_change: { consent: boolean; source: string; keyword: string | null; at: string } | null;
}

/** Every worker with that number, in every tenant, with their consent and its last recorded change. */
export async function workersWithPhone(sql: postgres.Sql, phone: string): Promise<WorkerConsent[]> {
  const rows = await sql<(Omit<WorkerConsent, "last_change"> & {
    new_consent: boolean | null;
    source: string | null;
    keyword: string | null;
    changed_at: Date | null;
  })[]>`
    select w.id as worker_id, w.full_name, t.name as tenant, w.sms_consent, w.phone_verified, w.preferred_language,
           e.new_consent, e.source, e.keyword, e.created_at as changed_at
      from public.workers as w
      join public.tenants as t on t.id = w.tenant_id
      left join lateral (
        select ev.new_consent, ev.source, ev.keyword, ev.created_at
          from public.sms_consent_events as ev
         where ev.worker_id = w.id
         order by ev.created_at desc, ev.id desc
         limit 1
      ) as e on true
     where w.phone = ${phone}
     order by t.name, w.full_name, w.id`;
  return rows.map(({ new_consent, source, keyword, changed_at, ...w }) => ({
    ...w,
    last_change: changed_at && source !== null
      ? { consent: Boolean(new_consent), source, keyword, at: changed_at.toISOString() }
      : null,
  }));
}

const simulateInbound = defineCommand({
  name: "simulate-inbound",
  summary: "post an incoming SMS to sms-inbound exactly as Twilio does (signed), show the reply and the workers' consent",
  usage: "--from <E.164> --body <text> [--to <E.164>] [--opt-out-type <STOP|START|HELP>] [--message-sid <SM…>]",
  help: "Signs the webhook with TWILIO_AUTH_TOKEN over the public URL of sms-inbound " +
    "(FUNCTIONS_PUBLIC_URL, else SUPABASE_URL/functions/v1), with the fake Twilio's own code. Then " +
    "prints the TwiML reply and, when the target has SUPABASE_DB_URL (always locally), the consent of " +
    "every worker with that number. Needs SUPABASE_URL and the four TWILIO_* settings.\n\n" +
    "On a hosted project it changes real consent: a STOP there is a real opt-out.",
  examples: [
    "sms simulate-inbound --from +15145550101 --body STOP",
    'sms simulate-inbound --from +15145550101 --body "  Arrêt ! "',
    "sms simulate-inbound --from +15145550101 --body START",
    "sms simulate-inbound --from +15145550101 --body AIDE",
  ],
  options(cmd: Command) {
    cmd
      .requiredOption("--from <E.164>", "the sender's number (a worker's phone)", e164)
      .requiredOption("--body <text>", "the message text, as typed on the phone")
      .option("--to <E.164>", "the number texted (default: TWILIO_PHONE_NUMBER)", e164)
      .option("--opt-out-type <type>", "what Twilio's Advanced Opt-Out adds (STOP, START, HELP)", oneOf("STOP", "START", "HELP"))
      .option("--message-sid <sid>", "reuse a MessageSid (SM + 32 hex digits): a retried webhook", (v: string) => {
        if (!/^SM[0-9a-f]{32}$/.test(v)) throw new InvalidArgumentError("must be SM followed by 32 lower-case hexadecimal digits");
        return v;
      });
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const target = await ctx.target();
    const account = webhookAccount(target, INBOUND);
    const url = target.publicFunctionUrl(INBOUND, "sms-inbound");
    const params = inboundSmsParams(account, {
      from: opts.from,
      body: opts.body,
      to: opts.to,
      optOutType: opts.optOutType,
      messageSid: opts.messageSid,
    });
    const progress = ctx.out.progress("posting the inbound SMS to sms-inbound…");
    let answer: FunctionAnswer;
    try {
      answer = await postTwilioWebhook(target, INBOUND, url, params);
    } finally {
      progress.stop();
    }
    const base = { http_status: answer.status, message_sid: params.MessageSid, from: params.From, to: params.To, body: params.Body };
    if (answer.status !== 200) {
      const hint = answer.status === 403 ? signatureHint(target, url) : "";
      return {
        ok: false,
        data: { ...base, error: answer.json ?? answer.text },
        render: (out) => out.fields([["sms-inbound", `HTTP ${answer.status}`], ["URL", url]]),
        failure: `sms-inbound refused the webhook: ${describeFailure(answer)}${hint}`,
      };
    }
    const twiml = summariseTwiml(answer.text);
    const reply = twiml.messages.length ? twiml.messages.join("\n") : null;
    // Why there may be no reply (sms-inbound/handler.ts): Twilio answers its own English keywords
    // (default handling), or every keyword with Advanced Opt-Out; then the function stays silent.
    const match = classifyInbound(params.Body, params.OptOutType ?? null);
    const advanced = params.OptOutType !== undefined || target.optional(INBOUND, "TWILIO_ADVANCED_OPT_OUT") === true;
    const twilioAnswers = match.kind !== null && (advanced || TWILIO_DEFAULT_KEYWORDS.has(match.keyword ?? ""));
    const noReply = twilioAnswers
      ? `none from sms-inbound: Twilio answers ${match.keyword} itself (${advanced ? "Advanced Opt-Out" : "its default keyword handling"})`
      : "none (empty <Response/>)";
    const workers = await target.withDb(INBOUND, (sql) => workersWithPhone(sql, params.From));
    return {
      ok: true,
      data: {
        ...base,
        keyword: match.kind ? { kind: match.kind, keyword: match.keyword } : null,
        reply,
        twilio_answers: twilioAnswers,
        twiml: answer.text,
        workers: workers ?? null,
      },
      render: (out) => {
        const c = out.colors;
        out.heading(`Inbound SMS ${params.MessageSid}`);
        out.fields([
          ["From → To", `${params.From} → ${params.To}`],
          ["Body", JSON.stringify(params.Body)],
          ["Keyword", match.kind ? `${match.keyword} (${match.kind.replace("_", "-")})` : "none"],
          ["sms-inbound", `HTTP ${answer.status}`],
          ["Reply (TwiML)", reply ?? noReply],
        ]);
        if (workers === undefined) {
          out.line(`Consent not shown: ${target.label} has no SUPABASE_DB_URL (the reply above is all the function answers).`);
        } else if (workers.length === 0) {
          out.line(`No worker has ${params.From}: the message is stored and audited, no consent changes.`);
        } else {
          out.line(`Workers with ${params.From}, after the message:`);
          out.table(
            ["Worker", "Name", "Tenant", "Consent", "Verified", "Last change (UTC)"],
            workers.map((w) => [
              w.worker_id,
              w.full_name,
              w.tenant,
              w.sms_consent ? c.green("yes") : c.red("no"),
              w.phone_verified ? "yes" : "no",
              w.last_change ? `${w.last_change.keyword ?? w.last_change.source} ${w.last_change.at.slice(0, 16).replace("T", " ")}` : null,
            ]),
          );
        }
      },
    };
  },
});

export default defineGroup({
  name: "sms",
  summary: "send SMS through send-sms; simulate an incoming SMS (STOP/START/HELP…)",
  commands: [send, simulateInbound],
});
