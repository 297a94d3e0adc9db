// sms-inbound: Twilio's incoming-message webhook (verify_jwt = false; Twilio's signature instead).
//
// Verified form → keyword (keywords.ts; OptOutType wins) → ONE call to private.handle_inbound_sms
// (one round trip: db.ts callJson), which stores the message, flips the consent of every worker with
// that number (any tenant) with a proof row each, and audits it, idempotently on MessageSid → a
// TwiML reply:
//   HELP/AIDE/INFO: the French-first bilingual help; STOP/ARRET…/START…: a confirmation in the
//   first matched worker's language, else the keyword's (ARRET → fr, STOP → en), else fr;
//   nothing (<Response/>) for other messages, unknown senders' non-keywords, and whenever Twilio
//   answers the keyword itself: OptOutType present; TWILIO_ADVANCED_OPT_OUT=true (Advanced
//   Opt-Out is configured with every keyword, ARRET and AIDE included, and its replies); or,
//   with Twilio's default handling (false), one of Twilio's English keywords, which it answers
//   with its own fixed text. So by default we answer ARRET and AIDE, the French keywords
//   Canadian practice requires and Twilio does not know.
// A replay (same MessageSid) gets the same reply and changes nothing.
import { settings } from "../_shared/env.ts";
import { handle } from "../_shared/http.ts";
import { asService, callJson } from "../_shared/db.ts";
import { classifyInbound, TWILIO_DEFAULT_KEYWORDS } from "../_shared/twilio/keywords.ts";
import { keywordReply, type ReplyLanguage } from "../_shared/twilio/replies.ts";
import { readTwilioForm, requireMessageSid, requireParams, sqlInputError, twimlResponse } from "../_shared/twilio/form-webhook.ts";

interface InboundOutcome {
  duplicate: boolean;
  kind: "opt_out" | "opt_in" | "help" | null;
  workers: { worker_id: string; tenant_id: string; preferred_language: ReplyLanguage; consent_changed: boolean }[];
}

export const handler = handle(async (req) => {
  const { TWILIO_AUTH_TOKEN, PUBLIC_CONTACT_NUMBER, TWILIO_ADVANCED_OPT_OUT } = settings(
    "TWILIO_AUTH_TOKEN",
    "PUBLIC_CONTACT_NUMBER",
    "TWILIO_ADVANCED_OPT_OUT",
  );
  const params = await readTwilioForm(req, TWILIO_AUTH_TOKEN);
  const { MessageSid, From, To, Body } = requireParams(params, "MessageSid", "From", "To", "Body");
  requireMessageSid(MessageSid);
  const optOutType = params.get("OptOutType") ?? null;
  const match = classifyInbound(Body, optOutType);

  const [{ result: outcome }] = await asService((sql) =>
    callJson<InboundOutcome>(sql, "private.handle_inbound_sms", {
      message_sid: MessageSid,
      from: From,
      to: To,
      body: Body,
      keyword_kind: match.kind,
      keyword: match.keyword,
    })
  ).catch(sqlInputError);

  // Twilio answered it: a second answer from us would confuse the worker (and cost a message).
  const twilioAnswered = optOutType !== null || TWILIO_ADVANCED_OPT_OUT || TWILIO_DEFAULT_KEYWORDS.has(match.keyword ?? "");
  if (!match.kind || twilioAnswered) return twimlResponse();
  const language = outcome.workers[0]?.preferred_language ?? match.language ?? "fr";
  return twimlResponse(keywordReply(match.kind, { language, contactNumber: PUBLIC_CONTACT_NUMBER }));
});
