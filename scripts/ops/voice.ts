// `npm run ops -- voice …`: the operator's call check (operations guide, "Test appel entrant").
//
//   voice simulate-call   an incoming call posted to voice-inbound exactly as Twilio posts it
//                         (signed): the TwiML that forwards it to OWNER_MOBILE; with --dial-status,
//                         then the <Dial action> request Twilio sends when the dial ends, the
//                         caller's message and the owner's missed-call SMS.
import { type Command, InvalidArgumentError } from "commander";
import type postgres from "postgres";
import { dialActionParams, inboundCallParams } from "../fakes/twilio.ts";
import { e164, oneOf, seconds } from "./args.ts";
import { type Context, defineCommand, defineGroup, type Options, type Outcome, UsageError } from "./command.ts";
import type { Output } from "./output.ts";
import { type AlertRow, waitForDelivery } from "./sms.ts";
import {
  describeFailure,
  type FunctionAnswer,
  postTwilioWebhook,
  signatureHint,
  summariseTwiml,
  type TwimlSummary,
  webhookAccount,
} from "./twilio.ts";

const SIMULATE = "voice simulate-call";
const DIAL_STATUSES = ["completed", "busy", "no-answer", "failed", "canceled"] as const;
type DialStatus = (typeof DIAL_STATUSES)[number];
/** Dial results after which voice-inbound texts the owner (voice-inbound/handler.ts MISSED). */
const MISSED = new Set<DialStatus>(["busy", "no-answer", "failed"]);

interface VoiceCallRow {
  status: string;
  forwarded_to: string | null;
  duration_seconds: number | null;
}

interface MissedCallSms extends AlertRow {
  alert_id: string;
}

/** The call's voice_calls row. */
async function voiceCall(sql: postgres.Sql, callSid: string): Promise<VoiceCallRow | null> {
  const [row] = await sql<VoiceCallRow[]>`
    select status, forwarded_to, duration_seconds from public.voice_calls where provider_call_sid = ${callSid}`;
  return row ?? null;
}

/**
 * The owner's missed-call SMS for this call, found through the audit trail: voice-inbound sends it
 * with the idempotency key `voice-missed-call:<CallSid>`, which its `sms_send` audit row records
 * beside the sms_alerts row (target `sms_alerts:<id>`).
 */
async function missedCallSms(sql: postgres.Sql, callSid: string, since: Date): Promise<MissedCallSms | null> {
  const [row] = await sql<MissedCallSms[]>`
    select a.id::text as alert_id, a.provider_message_id as message_sid, a.to_number as "to", a.body, a.status,
           a.error_code, a.error_message
      from public.system_audit_logs as l
      join public.sms_alerts as a on a.id = substr(l.target, length('sms_alerts:') + 1)::bigint
     where l.area = 'twilio' and l.action = 'sms_send'
       and l.created_at >= ${since}
       and l.target like 'sms_alerts:%'
       and l.details ->> 'idempotency_key' = ${`voice-missed-call:${callSid}`}
     order by l.id desc
     limit 1`;
  return row ?? null;
}

/** The TwiML's verbs as label / text rows. */
function describeTwiml(t: TwimlSummary): [string, string][] {
  if (t.empty) return [["TwiML", "<Response/>: nothing more (the call goes on, or ends normally)"]];
  const rows: [string, string][] = [];
  if (t.dial) {
    const d = t.dial;
    rows.push(["<Dial> to", d.number]);
    rows.push(["Dial options", [
      d.timeout ? `timeout ${d.timeout} s` : null,
      d.callerId ? `callerId ${d.callerId}` : null,
      d.answerOnBridge ? "answerOnBridge" : null,
    ].filter(Boolean).join(" · ")]);
    if (d.action) rows.push(["Dial action", `${d.action}${d.method ? ` (${d.method})` : ""}`]);
  }
  for (const s of t.says) rows.push([`<Say> ${s.language ?? ""}`.trim(), s.text]);
  for (const m of t.messages) rows.push(["<Message>", m]);
  if (t.hangup) rows.push(["<Hangup/>", "the call ends"]);
  return rows;
}

const simulateCall = defineCommand({
  name: "simulate-call",
  summary: "post an incoming call to voice-inbound exactly as Twilio does (signed): the forward to OWNER_MOBILE, then the dial's end",
  usage: "--from <E.164|anonymous> [--to <E.164>] [--dial-status <busy|no-answer|failed|completed|canceled>] [--duration <seconds>]",
  help: "Posts Twilio's voice webhook for a call to TWILIO_PHONE_NUMBER and shows the TwiML: <Dial> to " +
    "OWNER_MOBILE with its timeout, callerId and action URL. With --dial-status, then posts the request " +
    "Twilio sends to that action URL when the dial ends and shows the answer: busy / no-answer / failed " +
    "give the bilingual message and the owner's missed-call SMS (read from the database when the target " +
    "has SUPABASE_DB_URL).\n\n" +
    "Needs SUPABASE_URL and the four TWILIO_* settings. On a hosted project, a missed call texts " +
    "OWNER_MOBILE for real.",
  examples: [
    "voice simulate-call --from +15145550101",
    "voice simulate-call --from +15145550101 --dial-status no-answer",
    "voice simulate-call --from +15145550101 --dial-status completed --duration 95",
  ],
  options(cmd: Command) {
    cmd
      .requiredOption("--from <E.164|anonymous>", "the caller's number (or anonymous: a withheld caller ID)", (v: string) =>
        v === "anonymous" ? v : e164(v))
      .option("--to <E.164>", "the number called (default: TWILIO_PHONE_NUMBER)", e164)
      .option("--dial-status <status>", "then end the dial with this result", oneOf(...DIAL_STATUSES))
      .option("--duration <seconds>", "with --dial-status completed: how long the owner talked", seconds(14_400))
      .option("--call-sid <sid>", "reuse a CallSid (CA + 32 hex digits): a retried webhook", (v: string) => {
        if (!/^CA[0-9a-f]{32}$/.test(v)) throw new InvalidArgumentError("must be CA followed by 32 lower-case hexadecimal digits");
        return v;
      });
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    if (opts.duration !== undefined && opts.dialStatus !== "completed") {
      throw new UsageError("--duration goes with --dial-status completed");
    }
    const target = await ctx.target();
    const account = webhookAccount(target, SIMULATE);
    const url = target.publicFunctionUrl(SIMULATE, "voice-inbound");
    const since = new Date(Date.now() - 60_000);
    const callParams = inboundCallParams(account, { from: opts.from, to: opts.to, callSid: opts.callSid });
    const callSid = callParams.CallSid;
    const data: Record<string, unknown> = { call_sid: callSid, from: callParams.From, to: callParams.To };
    const lines: [string, string][] = [["From → To", `${callParams.From} → ${callParams.To}`]];
    const fail = (failure: string): Outcome => ({ ok: false, data, failure, render: (out) => renderCall(out, callSid, lines) });

    // 1. The call arrives.
    const progress = ctx.out.progress("posting the incoming call to voice-inbound…");
    let call: FunctionAnswer;
    try {
      call = await postTwilioWebhook(target, SIMULATE, url, callParams);
    } finally {
      progress.stop();
    }
    data.call = { http_status: call.status, twiml: call.text };
    if (call.status !== 200) {
      lines.push(["voice-inbound", `HTTP ${call.status}`]);
      return fail(`voice-inbound refused the call: ${describeFailure(call)}${call.status === 403 ? signatureHint(target, url) : ""}`);
    }
    const callTwiml = summariseTwiml(call.text);
    data.call = { http_status: call.status, twiml: call.text, dial: callTwiml.dial };
    lines.push(["voice-inbound", `HTTP ${call.status}`]);
    lines.push(...describeTwiml(callTwiml));
    if (!callTwiml.dial) return fail("voice-inbound did not forward the call (no <Dial> in its answer)");

    // 2. The dial ends: Twilio requests the <Dial action> URL.
    Object.assign(data, { dial_action: null, voice_call: null, missed_call_sms: null });
    const dialStatus = opts.dialStatus as DialStatus | undefined;
    if (dialStatus) {
      const actionUrl = callTwiml.dial.action;
      if (!actionUrl) return fail("the <Dial> has no action URL: Twilio would not report the dial's end");
      const actionParams = dialActionParams(callParams, { status: dialStatus, durationSeconds: opts.duration });
      const p2 = ctx.out.progress(`ending the dial (${dialStatus}): posting Twilio's action request…`);
      let action: FunctionAnswer;
      try {
        action = await postTwilioWebhook(target, SIMULATE, actionUrl, actionParams);
      } finally {
        p2.stop();
      }
      lines.push(["Dial ended", `${dialStatus} → voice-inbound HTTP ${action.status}`]);
      data.dial_action = { dial_status: dialStatus, http_status: action.status, twiml: action.text };
      if (action.status !== 200) {
        const hint = action.status === 403 ? signatureHint(target, actionUrl) : "";
        return fail(`voice-inbound refused the dial's action request: ${describeFailure(action)}${hint}`);
      }
      const actionTwiml = summariseTwiml(action.text);
      data.dial_action = { dial_status: dialStatus, http_status: action.status, twiml: action.text, says: actionTwiml.says, hangup: actionTwiml.hangup };
      lines.push(...describeTwiml(actionTwiml));
    }

    // 3. What the database holds now (when the target gives its URL).
    const found = await target.withDb(SIMULATE, async (sql) => ({
      call: await voiceCall(sql, callSid),
      sms: dialStatus && MISSED.has(dialStatus) ? await missedCallSms(sql, callSid, since) : null,
    }));
    if (found === undefined) {
      lines.push(["Database", `not read: ${target.label} has no SUPABASE_DB_URL`]);
    } else {
      data.voice_call = found.call;
      if (found.call) {
        lines.push([
          "voice_calls",
          [
            found.call.status,
            found.call.forwarded_to ? `forwarded to ${found.call.forwarded_to}` : null,
            found.call.duration_seconds !== null ? `${found.call.duration_seconds} s` : null,
          ].filter(Boolean).join(" · "),
        ]);
      }
    }
    let sms = found?.sms ?? null;
    if (sms?.message_sid) {
      // The status callbacks follow the send: a few seconds for the final status.
      const delivered = await waitForDelivery(target, ctx.out, SIMULATE, [sms.message_sid], 20);
      sms = { ...sms, ...(delivered?.get(sms.message_sid) ?? {}) };
    }
    if (dialStatus && MISSED.has(dialStatus)) {
      if (found !== undefined && !sms) {
        lines.push(["Missed-call SMS", "not found (voice-inbound logs why)"]);
        return fail("voice-inbound sent no missed-call SMS");
      }
      if (sms) {
        data.missed_call_sms = { to: sms.to, body: sms.body, status: sms.status, message_sid: sms.message_sid, error_code: sms.error_code };
        lines.push(["Missed-call SMS", `to ${sms.to} · ${sms.status}${sms.message_sid ? ` · ${sms.message_sid}` : ""}`]);
        lines.push(["SMS body", sms.body]);
        if (sms.status === "failed" || sms.status === "undelivered") {
          return fail(`the missed-call SMS ${sms.status} (${sms.error_code ?? ""} ${sms.error_message ?? ""})`.replace(/\s+\)/, ")"));
        }
      }
    }
    return { ok: true, data, render: (out) => renderCall(out, callSid, lines) };
  },
});

function renderCall(out: Output, callSid: string, lines: [string, string][]): void {
  out.heading(`Incoming call ${callSid}`);
  out.fields(lines);
}

export default defineGroup({
  name: "voice",
  summary: "simulate an incoming call: the forward to OWNER_MOBILE, the dial's end, the missed-call SMS",
  commands: [simulateCall],
});
