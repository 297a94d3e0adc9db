// Calling our functions as `npm run ops` does: with the secret API key (send-sms…), as a signed-in
// user (billing-checkout), or as Twilio calls its webhooks (sms-inbound, voice-inbound), signed by
// the fake Twilio's own code (scripts/fakes/twilio.ts: postSignedTwilioForm and the webhook
// parameter builders), and reading the TwiML they answer.
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { postSignedTwilioForm, type TwilioWebhookAccount } from "../fakes/twilio.ts";
import { OperationFailed } from "./command.ts";
import { connectionReason, type Target } from "./target.ts";

/** A function's answer. */
export interface FunctionAnswer {
  url: string;
  status: number;
  /** x-request-id, when the function's answer carried it (http.ts sets it). */
  requestId?: string;
  text: string;
  /** The body as JSON, when it is JSON. */
  json?: unknown;
}

/** Functions answer `{ error, message }` on failure (_shared/http.ts). */
export function errorOf(answer: FunctionAnswer): { error?: string; message?: string } {
  const body = answer.json;
  if (typeof body !== "object" || body === null) return {};
  const { error, message } = body as Record<string, unknown>;
  return {
    ...(typeof error === "string" ? { error } : {}),
    ...(typeof message === "string" ? { message } : {}),
  };
}

/** "HTTP 403 forbidden: the request is not signed by Twilio", from an answer that failed. */
export function describeFailure(answer: FunctionAnswer): string {
  const { error, message } = errorOf(answer);
  const detail = [error, message].filter(Boolean).join(": ") || answer.text.trim().split("\n")[0].slice(0, 200);
  return `HTTP ${answer.status}${detail ? ` ${detail}` : ""}`;
}

function unreachable(target: Target, url: string, reason: string): OperationFailed {
  const hint = target.source.kind === "local" ? " (is the local stack running? `npm start`)" : "";
  return new OperationFailed(`cannot reach ${url}: ${reason}${hint}`, { url, reason });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Why a Twilio-signed request got a 403: the two usual reasons, for the operator. */
export function signatureHint(target: Target, url: string): string {
  return ` (the signature was refused: TWILIO_AUTH_TOKEN of ${target.label} is not the function's, or the function ` +
    `rebuilds another public URL than ${url}: FUNCTIONS_PUBLIC_URL)`;
}

/** POSTs JSON to one of our functions with the secret API key (`apikey`), as a server or script calls it. */
export async function callFunctionAsService(
  target: Target,
  purpose: string,
  name: string,
  body: unknown,
  opts: { headers?: Record<string, string>; timeoutMs?: number; method?: "GET" | "POST" } = {},
): Promise<FunctionAnswer> {
  const { SUPABASE_URL, SUPABASE_SECRET_KEY: key } = target.need(purpose, "SUPABASE_URL", "SUPABASE_SECRET_KEY");
  const url = `${SUPABASE_URL}/functions/v1/${name}`;
  const get = opts.method === "GET";
  let res: Response;
  try {
    res = await fetch(url, {
      method: get ? "GET" : "POST",
      headers: { ...(get ? {} : { "content-type": "application/json" }), apikey: key, ...opts.headers },
      body: get ? undefined : JSON.stringify(body),
      redirect: "manual",
      // Hosted functions stop at 150 s (free plan); a little more, so their own answer arrives.
      signal: AbortSignal.timeout(opts.timeoutMs ?? 160_000),
    });
  } catch (error) {
    throw unreachable(target, url, connectionReason(error));
  }
  const text = await res.text();
  return { url, status: res.status, requestId: res.headers.get("x-request-id") ?? undefined, text, json: parseJson(text) };
}

/**
 * POSTs JSON to one of our functions as a signed-in user (`Authorization: Bearer <session token>`),
 * as the web app calls billing-checkout; the token is never printed.
 */
export async function callFunctionAsUser(
  target: Target,
  purpose: string,
  name: string,
  body: unknown,
  token: string,
  opts: { timeoutMs?: number } = {},
): Promise<FunctionAnswer> {
  const { SUPABASE_URL } = target.need(purpose, "SUPABASE_URL");
  const url = `${SUPABASE_URL}/functions/v1/${name}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs ?? 160_000),
    });
  } catch (error) {
    throw unreachable(target, url, connectionReason(error));
  }
  const text = await res.text();
  return { url, status: res.status, requestId: res.headers.get("x-request-id") ?? undefined, text, json: parseJson(text) };
}

/** The account Twilio's webhooks name (AccountSid, MessagingServiceSid, our number). */
export function webhookAccount(target: Target, purpose: string): TwilioWebhookAccount & { authToken: string } {
  const s = target.need(purpose, "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_PHONE_NUMBER");
  return {
    accountSid: s.TWILIO_ACCOUNT_SID,
    authToken: s.TWILIO_AUTH_TOKEN,
    messagingServiceSid: s.TWILIO_MESSAGING_SERVICE_SID,
    phoneNumber: s.TWILIO_PHONE_NUMBER,
  };
}

/**
 * POSTs a webhook to `url` exactly as Twilio does (form-encoded, X-Twilio-Signature with
 * TWILIO_AUTH_TOKEN over that exact URL, TwilioProxy user agent, idempotency token).
 */
export async function postTwilioWebhook(
  target: Target,
  purpose: string,
  url: string,
  params: Record<string, string>,
): Promise<FunctionAnswer> {
  const { authToken } = webhookAccount(target, purpose);
  const sent = await postSignedTwilioForm(url, params, authToken);
  if (sent.status === 0) throw unreachable(target, url, connectionReason(sent.responseBody));
  return { url, status: sent.status, text: sent.responseBody, json: parseJson(sent.responseBody) };
}

/** What a TwiML answer says, verb by verb. */
export interface TwimlSummary {
  /** <Message> texts (SMS replies). */
  messages: string[];
  /** <Say> texts with their language. */
  says: { language: string | null; text: string }[];
  /** <Dial> and its <Number>. */
  dial: {
    number: string;
    timeout: string | null;
    callerId: string | null;
    action: string | null;
    method: string | null;
    answerOnBridge: boolean;
  } | null;
  hangup: boolean;
  /** An empty <Response/>: nothing to do. */
  empty: boolean;
}

type Ordered = Record<string, unknown> & { ":@"?: Record<string, string> };
interface Element {
  name: string;
  attributes: Record<string, string>;
  text: string;
  children: Element[];
}

function convert(node: Ordered): Element | null {
  const name = Object.keys(node).find((k) => k !== ":@");
  if (!name || name === "#text" || name === "?xml") return null;
  const kids = node[name] as Ordered[];
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(node[":@"] ?? {})) attributes[k.replace(/^@_/, "")] = String(v);
  const text = kids.filter((k) => "#text" in k).map((k) => String(k["#text"])).join("");
  return { name, attributes, text, children: kids.map(convert).filter((e): e is Element => e !== null) };
}

/** Reads a TwiML document (fast-xml-parser); an answer that is not TwiML is an OperationFailed. */
export function summariseTwiml(xml: string): TwimlSummary {
  const invalid = () => new OperationFailed("the answer is not TwiML (a <Response> XML document)", { body: xml.slice(0, 500) });
  if (XMLValidator.validate(xml) !== true) throw invalid();
  const ordered = new XMLParser({
    ignoreAttributes: false,
    preserveOrder: true,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
  }).parse(xml) as Ordered[];
  const root = ordered.map(convert).find((e): e is Element => e !== null);
  if (!root || root.name !== "Response") throw invalid();
  const summary: TwimlSummary = { messages: [], says: [], dial: null, hangup: false, empty: root.children.length === 0 };
  for (const verb of root.children) {
    if (verb.name === "Message") summary.messages.push(verb.text);
    else if (verb.name === "Say") summary.says.push({ language: verb.attributes.language ?? null, text: verb.text });
    else if (verb.name === "Hangup") summary.hangup = true;
    else if (verb.name === "Dial") {
      const a = verb.attributes;
      summary.dial = {
        number: verb.children.find((c) => c.name === "Number")?.text ?? verb.text,
        timeout: a.timeout ?? null,
        callerId: a.callerId ?? null,
        action: a.action ?? null,
        method: a.method ?? null,
        answerOnBridge: a.answerOnBridge === "true",
      };
    }
  }
  return summary;
}
