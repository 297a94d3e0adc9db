// What every Twilio form webhook (sms-inbound, sms-status) does before touching the database:
// POST only (405), form-encoded (415), body read under a limit (413), UTF-8 (400), signed by Twilio
// with the account's auth token (403, nothing written), then the parameters it needs present (400).
// Order matters: nothing is trusted, parsed into a database call or logged before the signature.
import { HttpError, readBytes, requireContentType, requireMethod } from "../http.ts";
import { verifyTwilioRequest } from "./signature.ts";

/** Twilio's webhooks are a few KB; 1 MiB is far above any real one and bounds what we hold. */
export const TWILIO_WEBHOOK_BODY_LIMIT = 1024 * 1024;

/** TwiML media type (Twilio reads text/xml or application/xml). */
const TWIML_HEADERS = { "content-type": "text/xml; charset=utf-8" };
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

const XML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

/** Text for an XML element or attribute. */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]);
}

/** `<Response><Message>text</Message></Response>`, or an empty `<Response/>` (no reply) without text. */
export function twimlResponse(message?: string | null): Response {
  const body = message ? `<Response><Message>${xmlEscape(message)}</Message></Response>` : "<Response/>";
  return new Response(XML_DECLARATION + body, { status: 200, headers: TWIML_HEADERS });
}

/**
 * The verified form parameters of a Twilio webhook, each name given once (a repeated name keeps the
 * first value: Twilio never repeats the ones we read). Throws HttpError for everything above.
 */
export async function readTwilioForm(req: Request, authToken: string): Promise<Map<string, string>> {
  requireMethod(req, "POST");
  requireContentType(req, "application/x-www-form-urlencoded");
  const raw = await readBytes(req, { limit: TWILIO_WEBHOOK_BODY_LIMIT });
  const verification = await verifyTwilioRequest(req, raw, authToken);
  if (!verification.ok) {
    if (verification.reason === "malformed_body") throw new HttpError(400, "bad_request", "the body is not valid UTF-8");
    throw new HttpError(403, "invalid_signature", "the request is not signed by Twilio for this URL");
  }
  const params = new Map<string, string>();
  for (const [name, value] of Object.entries(verification.params)) params.set(name, Array.isArray(value) ? value[0] : value);
  return params;
}

/** The named parameters, each present (400 naming the missing ones otherwise). */
export function requireParams<const K extends string>(params: Map<string, string>, ...names: K[]): Record<K, string> {
  const missing = names.filter((n) => !params.has(n));
  if (missing.length) throw new HttpError(400, "missing_parameters", `missing form parameters: ${missing.join(", ")}`);
  return Object.fromEntries(names.map((n) => [n, params.get(n)!])) as Record<K, string>;
}

/** A Twilio message SID (SM/MM + 32 hex digits), else 400. */
export function requireMessageSid(value: string): string {
  if (!/^(SM|MM)[0-9a-f]{32}$/.test(value)) throw new HttpError(400, "bad_request", "MessageSid is not a Twilio message SID");
  return value;
}

/** A PostgreSQL invalid_parameter_value raised by our SQL functions' input checks is the caller's fault: 400. */
export function sqlInputError(error: unknown): never {
  // 22023 our functions' own refusals; 22P05 / 22021 a character PostgreSQL text cannot hold (U+0000).
  if (["22023", "22P05", "22021"].includes(String((error as { code?: unknown })?.code))) {
    throw new HttpError(400, "bad_request", "the webhook's parameters were refused");
  }
  throw error;
}
