// voice-inbound: Twilio's Voice webhook for our number (verify_jwt off: Twilio sends no JWT; the
// X-Twilio-Signature is checked instead, 403 and nothing written when it fails).
//
// 1. The call arrives (no DialCallStatus): a voice_calls row, and TwiML that forwards the call to
//    OWNER_MOBILE (<Dial answerOnBridge timeout=20 callerId=our number action=this function>).
// 2. The <Dial> ends and Twilio POSTs its action request here (DialCallStatus, DialCallDuration):
//    the row gets the result and a voice_forward audit row (private.record_voice_call, one call);
//    busy / no-answer / failed: a bilingual fr-CA/en message, then hang up, and a missed-call SMS to
//    OWNER_MOBILE through the normal send path (_shared/twilio/send.ts), its idempotency key derived
//    from the CallSid so a retried action request does not text twice.
import { asService, db } from "../_shared/db.ts";
import { settings } from "../_shared/env.ts";
import { handle, HttpError, readBytes, requireContentType, requireMethod } from "../_shared/http.ts";
import { functionsPublicBaseUrl } from "../_shared/public-url.ts";
import { verifyTwilioRequest } from "../_shared/twilio/signature.ts";
import { sendSms } from "../_shared/twilio/send.ts";
import { dialTwiml, emptyTwiml, sayThenHangupTwiml } from "./twiml.ts";

/** Seconds the owner's phone rings before the caller hears the message. */
export const DIAL_TIMEOUT_SECONDS = 20;

const CALL_STATUSES = new Set(["queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"]);
const DIAL_STATUSES = new Set(["completed", "busy", "no-answer", "failed", "canceled"]);
/** Dial results the caller did not get through on: message + missed-call SMS. */
const MISSED = new Set(["busy", "no-answer", "failed"]);
const E164 = /^\+[1-9][0-9]{7,14}$/;

export const MISSED_CALL_MESSAGES = [
  {
    language: "fr-CA",
    text: "Bonjour, vous avez joint C-Secur360. Nous ne pouvons pas répondre pour le moment. Nous vous rappellerons dès que possible. Merci.",
  },
  {
    language: "en-US",
    text: "Hello, you have reached C-Secur360. We cannot take your call right now. We will call you back as soon as possible. Thank you.",
  },
];

/** The owner's missed-call SMS (French then English); derived from the request only, so a retry is identical. */
export function missedCallSms(from: string, dialStatus: string): string {
  const caller = E164.test(from) ? from : "numéro masqué / withheld number";
  return `C-Secur360 : appel manqué de ${caller} (${dialStatus}). Missed call from ${caller}.`;
}

function twimlResponse(xml: string): Response {
  return new Response(xml, { headers: { "content-type": "text/xml; charset=utf-8" } });
}

function badRequest(message: string): HttpError {
  return new HttpError(400, "bad_request", message);
}

export const handler = handle(async (req, { requestId }) => {
  requireMethod(req, "POST");
  requireContentType(req, "application/x-www-form-urlencoded");
  const raw = await readBytes(req);
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw badRequest("the body is not valid UTF-8");
  }

  const { TWILIO_AUTH_TOKEN, OWNER_MOBILE } = settings("TWILIO_AUTH_TOKEN", "OWNER_MOBILE");
  const verified = await verifyTwilioRequest(req, raw, TWILIO_AUTH_TOKEN);
  if (!verified.ok) {
    console.warn(`[${requestId}] voice-inbound: refused (${verified.reason})`);
    throw new HttpError(403, "forbidden", "the request is not signed by Twilio");
  }
  const one = (name: string): string | undefined => {
    const value = verified.params[name];
    if (Array.isArray(value)) throw badRequest(`${name} is given more than once`);
    return value;
  };

  const callSid = one("CallSid");
  const from = one("From");
  const to = one("To");
  if (!callSid || !/^CA[0-9A-Za-z]{1,62}$/.test(callSid)) throw badRequest("CallSid is missing or malformed");
  // From is kept as Twilio sends it (a caller id may be "anonymous" or a SIP URI), but never with
  // control characters (U+0000 cannot be stored in PostgreSQL text at all).
  if (!from || from.length > 64 || /\p{Cc}/u.test(from)) throw badRequest("From is missing or malformed");
  if (!to || !E164.test(to)) throw badRequest("To is missing or not an E.164 number");
  const callStatus = (one("CallStatus") ?? "ringing").toLowerCase();
  if (!CALL_STATUSES.has(callStatus)) throw badRequest("CallStatus is not a Twilio call status");
  // Twilio documents `answered` too (the called party picked up): stored as completed.
  const givenDialStatus = one("DialCallStatus")?.toLowerCase();
  const dialStatus = givenDialStatus === "answered" ? "completed" : givenDialStatus;
  const dialDuration = one("DialCallDuration");
  if (dialStatus !== undefined && !DIAL_STATUSES.has(dialStatus)) throw badRequest("DialCallStatus is not a dial result");
  if (dialDuration !== undefined && !/^[0-9]{1,9}$/.test(dialDuration)) throw badRequest("DialCallDuration is not a number");

  const call = {
    call_sid: callSid,
    from,
    to,
    call_status: callStatus,
    ...(dialStatus !== undefined ? { dial_status: dialStatus, dial_duration: dialDuration ?? null, forwarded_to: OWNER_MOBILE } : {}),
  };
  await asService((sql) => sql`select private.record_voice_call(${sql.json(call)}::jsonb) as r`);

  if (dialStatus === undefined) {
    return twimlResponse(dialTwiml({
      to: OWNER_MOBILE,
      callerId: to,
      action: `${functionsPublicBaseUrl()}/voice-inbound`,
      timeoutSeconds: DIAL_TIMEOUT_SECONDS,
    }));
  }
  if (!MISSED.has(dialStatus)) return twimlResponse(emptyTwiml());

  // The caller hears the message whatever happens to the SMS; a failed send is recorded by send.ts
  // (sms_alerts + sms_send_failed audit) and logged here without any secret.
  try {
    const sent = await sendSms(
      { to: OWNER_MOBILE, body: missedCallSms(from, dialStatus), idempotency_key: `voice-missed-call:${callSid}` },
      { sql: db() },
    );
    const failed = sent.messages.filter((m) => m.outcome === "failed");
    if (failed.length) console.warn(`[${requestId}] voice-inbound: missed-call SMS failed (${failed.map((m) => m.error?.code).join(",")})`);
  } catch (error) {
    console.error(`[${requestId}] voice-inbound: missed-call SMS not sent: ${error instanceof Error ? error.name : "error"}`);
  }
  return twimlResponse(sayThenHangupTwiml(MISSED_CALL_MESSAGES));
});
