// sms-status: Twilio's delivery status callback (verify_jwt = false; Twilio's signature instead).
//
// Verified form → ONE call to private.apply_sms_status (one round trip: db.ts callJson), which moves
// the message's status forward only (late, repeated or shuffled callbacks never regress it), stores
// error codes, revokes consent on 21610 with a carrier proof row, and audits every callback, an
// unknown MessageSid included → 200 with an empty TwiML document (Twilio only needs a 2xx).
import { settings } from "../_shared/env.ts";
import { handle, HttpError } from "../_shared/http.ts";
import { asService, callJson } from "../_shared/db.ts";
import { readTwilioForm, requireMessageSid, requireParams, sqlInputError, twimlResponse } from "../_shared/twilio/form-webhook.ts";

/** The statuses of an outbound message (private.sms_status_rank knows exactly these). */
const STATUSES = new Set(["queued", "accepted", "scheduled", "sending", "sent", "delivered", "undelivered", "failed", "canceled", "read"]);

export const handler = handle(async (req) => {
  const { TWILIO_AUTH_TOKEN } = settings("TWILIO_AUTH_TOKEN");
  const params = await readTwilioForm(req, TWILIO_AUTH_TOKEN);
  const { MessageSid, MessageStatus } = requireParams(params, "MessageSid", "MessageStatus");
  requireMessageSid(MessageSid);
  const status = MessageStatus.trim().toLowerCase();
  if (!STATUSES.has(status)) throw new HttpError(400, "bad_request", "MessageStatus is not an outbound message status");
  const errorCode = params.get("ErrorCode")?.trim() || null;
  if (errorCode !== null && !/^\d{1,9}$/.test(errorCode)) throw new HttpError(400, "bad_request", "ErrorCode is not a number");

  await asService((sql) =>
    callJson(sql, "private.apply_sms_status", {
      message_sid: MessageSid,
      status,
      error_code: errorCode,
      error_message: params.get("ErrorMessage") ?? null,
    })
  ).catch(sqlInputError);
  return twimlResponse();
});
