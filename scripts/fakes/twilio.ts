// Fake Twilio for the local stack and the tests (loopback only). It speaks the parts of Twilio's REST
// API the functions use, with Twilio's documented JSON and error bodies, and calls our webhooks as
// Twilio does (form-encoded, `X-Twilio-Signature` from the SDK's own signer, TwilioProxy/1.1 user
// agent, `I-Twilio-Idempotency-Token`).
//
//   POST /2010-04-01/Accounts/{AccountSid}/Messages.json          create (basic auth: SID + token)
//   GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json    fetch
//
// After a create with a `StatusCallback`, the status callbacks follow in order (via a Messaging
// Service: queued → sending → sent → delivered; with `From`: sending → sent → delivered; Twilio sends
// none for the initial accepted/queued status of the API answer). `script()` changes what the next
// creates do (an API error, a delivery failure, no automatic callbacks), and `sendStatusCallback()`
// sends any status on demand: late, twice, out of order.
//
// Standalone (the stack's `npm start` / `stack up`):
//   deno run -A scripts/fakes/twilio.ts --port <port> --env-file supabase/functions/.env
import { getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";

export const TWILIO_API_VERSION = "2010-04-01";

export interface TwilioFakeOptions {
  /** 0 or absent: a free port. Always 127.0.0.1. */
  port?: number;
  accountSid: string;
  authToken: string;
  messagingServiceSid: string;
  /** The account's number (`From` of inbound messages and calls; the sender a Messaging Service picks). */
  phoneNumber: string;
  /** One line per request (never a secret); default: silent. */
  log?: (line: string) => void;
}

export type MessageStatus =
  | "accepted"
  | "queued"
  | "sending"
  | "sent"
  | "delivered"
  | "undelivered"
  | "failed"
  | "read"
  | "canceled";

/** The Message resource, as Twilio's API returns it (api/v2010 Message). */
export interface TwilioMessage {
  account_sid: string;
  api_version: string;
  body: string;
  date_created: string;
  date_sent: string | null;
  date_updated: string;
  direction: "outbound-api";
  error_code: number | null;
  error_message: string | null;
  from: string | null;
  messaging_service_sid: string | null;
  num_media: string;
  num_segments: string;
  price: string | null;
  price_unit: string;
  sid: string;
  status: MessageStatus;
  subresource_uris: { media: string };
  to: string;
  uri: string;
}

/** What the next create does (one outcome per create, in order; see `script`). */
export type ScriptedOutcome =
  /** Answer with this API error instead of creating (20429: HTTP 429 with Retry-After). */
  | { reject: 20429; retryAfterSeconds?: number }
  | { reject: 21211 | 21602 | 21610 | 20003 | 21611 }
  /** Accept, then the callbacks end in `undelivered` (default) or `failed` with this error code. */
  | { fail: "undelivered" | "failed"; errorCode: number }
  /** Accept, send no automatic callback (the test sends them with `sendStatusCallback`). */
  | { callbacks: "none" };

export interface RecordedRequest {
  method: string;
  path: string;
  /** Form fields of a POST (never the Authorization header). */
  params: Record<string, string>;
  status: number;
}

export interface SentCallback {
  url: string;
  params: Record<string, string>;
  signature: string;
  idempotencyToken: string;
  /** The receiver's status (0: no answer). */
  status: number;
  responseBody: string;
}

export interface TwilioFake {
  url: string;
  /** Created messages by SID. */
  messages: Map<string, TwilioMessage>;
  /** API calls by kind (authenticated or not). */
  calls: { create: number; fetch: number };
  requests: RecordedRequest[];
  callbacksSent: SentCallback[];
  /** Numbers that texted STOP (or were put there by a test): creates to them fail with 21610. */
  optedOut: Set<string>;
  script(...outcomes: ScriptedOutcome[]): void;
  /** Resolves once every automatic callback started so far has been answered. */
  settled(): Promise<void>;
  /** One status callback for a created message, now (any status, repeated or out of order). */
  sendStatusCallback(sid: string, status: MessageStatus, opts?: { errorCode?: number }): Promise<SentCallback>;
  /** An incoming SMS to `url`, as Twilio's messaging webhook. STOP-like bodies opt the sender out here. */
  postInboundSms(url: string, sms: InboundSms): Promise<SentCallback>;
  /** An incoming call to `url`, as Twilio's voice webhook. */
  postInboundCall(url: string, call: InboundCall): Promise<SentCallback>;
  /** Any signed form POST as Twilio sends it (e.g. a `<Dial action>` request); same token = a retry. */
  postSignedForm(url: string, params: Record<string, string>, opts?: { idempotencyToken?: string }): Promise<SentCallback>;
  close(): Promise<void>;
}

export interface InboundSms {
  from: string;
  body: string;
  /** Default: the account's number. */
  to?: string;
  /** Sent only with Advanced Opt-Out. */
  optOutType?: "STOP" | "START" | "HELP";
  messageSid?: string;
}

export interface InboundCall {
  from: string;
  to?: string;
  callSid?: string;
  callStatus?: string;
}

// Twilio's default keywords (whole message, any case); it keeps the opt-out list itself.
const OPT_OUT = new Set(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]);
const OPT_IN = new Set(["START", "YES", "UNSTOP"]);

const ERRORS: Record<number, { status: number; message: string }> = {
  20003: { status: 401, message: "Authenticate" },
  20500: { status: 500, message: "An internal server error has occurred" },
  20404: { status: 404, message: "The requested resource was not found" },
  20429: { status: 429, message: "Too Many Requests" },
  21211: { status: 400, message: "Invalid 'To' Phone Number" },
  21602: { status: 400, message: "Message body is required." },
  21603: { status: 400, message: "A 'From' phone number is required." },
  21610: { status: 400, message: "Attempt to send to unsubscribed recipient" },
  21611: { status: 400, message: "This 'From' number has exceeded the maximum number of queued messages" },
  21617: { status: 400, message: "The concatenated message body exceeds the 1600 character limit." },
};
const DELIVERY_ERRORS: Record<number, string> = {
  30003: "Unreachable destination handset",
  30005: "Unknown destination handset",
  30006: "Landline or unreachable carrier",
  30007: "Message filtered",
};

const E164 = /^\+[1-9]\d{6,14}$/;
const MAX_BODY_BYTES = 64 * 1024;
const MAX_RECORDS = 10_000;
const CALLBACK_TIMEOUT_MS = 15_000;

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}
const rfc2822 = (d = new Date()) => d.toUTCString().replace("GMT", "+0000");

function errorResponse(code: number, message?: string, headers: Record<string, string> = {}): Response {
  const e = ERRORS[code] ?? { status: 400, message: "Bad request" };
  return Response.json(
    { code, message: message ?? e.message, more_info: `https://www.twilio.com/docs/errors/${code}`, status: e.status },
    { status: e.status, headers },
  );
}

/** GSM-7 vs UCS-2 segment count, as Twilio bills (153/67 per segment once concatenated). */
function segments(body: string): number {
  // deno-lint-ignore no-control-regex
  const gsm = /^[\x0A\x0D\x20-\x5F\x61-\x7E£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà€]*$/.test(body);
  const chars = [...body].length;
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  return chars <= single ? 1 : Math.ceil(chars / multi);
}

/** The body as text, or null past `MAX_BODY_BYTES` (whatever Content-Length says, or without one). */
async function boundedText(req: Request): Promise<string | null> {
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

function basicAuthOk(req: Request, sid: string, token: string): boolean {
  const header = req.headers.get("authorization") ?? "";
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!m) return false;
  let decoded: string;
  try {
    decoded = atob(m[1]);
  } catch {
    return false;
  }
  return decoded === `${sid}:${token}`;
}

/** The account a webhook comes from: what Twilio puts in every request's parameters. */
export type TwilioWebhookAccount = Pick<TwilioFakeOptions, "accountSid" | "messagingServiceSid" | "phoneNumber">;

/**
 * POSTs `params` form-encoded to `url` as Twilio sends a webhook: `X-Twilio-Signature` from the
 * `twilio` package's own signer over the exact URL, `User-Agent: TwilioProxy/1.1`,
 * `I-Twilio-Idempotency-Token` (the same token = a retry), no redirect followed, 15 s at most.
 * Used by the fake and by `npm run ops` (which has no fake on a hosted project).
 */
export async function postSignedTwilioForm(
  url: string,
  params: Record<string, string>,
  authToken: string,
  opts: { idempotencyToken?: string } = {},
): Promise<SentCallback> {
  const signature = getExpectedTwilioSignature(authToken, url, params);
  const idempotencyToken = opts.idempotencyToken ?? `${randomHex(16)}-${Date.now()}`;
  let status = 0;
  let responseBody = "";
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "user-agent": "TwilioProxy/1.1",
        "x-twilio-signature": signature,
        "i-twilio-idempotency-token": idempotencyToken,
        "x-home-region": "us1",
      },
      body: new URLSearchParams(params).toString(),
      redirect: "manual",
      signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
    });
    status = res.status;
    responseBody = await res.text();
  } catch (e) {
    // No answer: why (fetch's own message is "fetch failed"; the reason is in its cause).
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    responseBody = e instanceof Error ? `${e.message}${cause}` : String(e);
  }
  return { url, params, signature, idempotencyToken, status, responseBody };
}

/** The parameters of Twilio's incoming-message webhook for `sms` (a new MessageSid unless given). */
export function inboundSmsParams(account: TwilioWebhookAccount, sms: InboundSms): Record<string, string> {
  const to = sms.to ?? account.phoneNumber;
  const sid = sms.messageSid ?? `SM${randomHex(16)}`;
  const params: Record<string, string> = {
    ToCountry: "CA",
    ToState: "QC",
    SmsMessageSid: sid,
    NumMedia: "0",
    ToCity: "MONTREAL",
    FromZip: "",
    SmsSid: sid,
    FromState: "QC",
    SmsStatus: "received",
    FromCity: "MONTREAL",
    Body: sms.body,
    FromCountry: "CA",
    To: to,
    MessagingServiceSid: account.messagingServiceSid,
    ToZip: "",
    NumSegments: String(segments(sms.body)),
    MessageSid: sid,
    AccountSid: account.accountSid,
    From: sms.from,
    ApiVersion: TWILIO_API_VERSION,
  };
  if (sms.optOutType) params.OptOutType = sms.optOutType;
  return params;
}

/** The parameters of Twilio's voice webhook for an incoming call (a new CallSid unless given). */
export function inboundCallParams(account: TwilioWebhookAccount, call: InboundCall): Record<string, string> {
  const to = call.to ?? account.phoneNumber;
  return {
    AccountSid: account.accountSid,
    ApiVersion: TWILIO_API_VERSION,
    CallSid: call.callSid ?? `CA${randomHex(16)}`,
    CallStatus: call.callStatus ?? "ringing",
    Called: to,
    CalledCity: "MONTREAL",
    CalledCountry: "CA",
    CalledState: "QC",
    CalledZip: "",
    Caller: call.from,
    CallerCity: "MONTREAL",
    CallerCountry: "CA",
    CallerState: "QC",
    CallerZip: "",
    Direction: "inbound",
    From: call.from,
    FromCity: "MONTREAL",
    FromCountry: "CA",
    FromState: "QC",
    FromZip: "",
    To: to,
    ToCity: "MONTREAL",
    ToCountry: "CA",
    ToState: "QC",
    ToZip: "",
  };
}

/**
 * The request Twilio sends to a `<Dial action>` URL when the dial ends (docs "twiml/dial", action
 * attribute): the call's parameters, now in progress, plus DialCallStatus, DialCallSid,
 * DialCallDuration and DialBridged.
 */
export function dialActionParams(
  callParams: Record<string, string>,
  dial: { status: "completed" | "busy" | "no-answer" | "failed" | "canceled"; durationSeconds?: number; dialCallSid?: string },
): Record<string, string> {
  const answered = dial.status === "completed";
  return {
    ...callParams,
    CallStatus: "in-progress",
    DialCallSid: dial.dialCallSid ?? `CA${randomHex(16)}`,
    DialCallStatus: dial.status,
    DialCallDuration: String(answered ? dial.durationSeconds ?? 0 : 0),
    DialBridged: String(answered),
  };
}

export function startTwilioFake(options: TwilioFakeOptions): TwilioFake {
  const { accountSid, authToken, messagingServiceSid, phoneNumber } = options;
  const log = options.log ?? (() => {});
  const messages = new Map<string, TwilioMessage>();
  const callbackUrls = new Map<string, string>();
  const calls = { create: 0, fetch: 0 };
  const requests: RecordedRequest[] = [];
  const callbacksSent: SentCallback[] = [];
  const optedOut = new Set<string>();
  const scripted: ScriptedOutcome[] = [];
  const pending = new Set<Promise<unknown>>();
  const base = `/${TWILIO_API_VERSION}/Accounts/${accountSid}`;
  const record = <T>(list: T[], item: T) => {
    if (list.length >= MAX_RECORDS) list.shift();
    list.push(item);
  };

  async function postSignedForm(
    url: string,
    params: Record<string, string>,
    opts: { idempotencyToken?: string } = {},
  ): Promise<SentCallback> {
    const sent = await postSignedTwilioForm(url, params, authToken, opts);
    record(callbacksSent, sent);
    log(`twilio fake → POST ${url} ${sent.status}`);
    return sent;
  }

  function statusParams(m: TwilioMessage, status: MessageStatus, errorCode?: number): Record<string, string> {
    // The fields of Twilio's outbound status callback (docs "outbound message status callback").
    const p: Record<string, string> = {
      SmsSid: m.sid,
      SmsStatus: status,
      MessageStatus: status,
      To: m.to,
      MessageSid: m.sid,
      AccountSid: m.account_sid,
      From: m.from ?? phoneNumber,
      ApiVersion: TWILIO_API_VERSION,
    };
    if (m.messaging_service_sid) p.MessagingServiceSid = m.messaging_service_sid;
    if (errorCode !== undefined) p.ErrorCode = String(errorCode);
    return p;
  }

  async function sendStatusCallback(sid: string, status: MessageStatus, opts: { errorCode?: number } = {}) {
    const m = messages.get(sid);
    const url = callbackUrls.get(sid);
    if (!m || !url) throw new Error(`twilio fake: no message ${sid} with a StatusCallback`);
    return await postSignedForm(url, statusParams(m, status, opts.errorCode));
  }

  async function runCallbacks(m: TwilioMessage, outcome: ScriptedOutcome | undefined) {
    if (outcome && "callbacks" in outcome) return;
    const steps: MessageStatus[] = m.messaging_service_sid ? ["queued", "sending", "sent"] : ["sending", "sent"];
    for (const s of steps) {
      m.status = s;
      m.date_updated = rfc2822();
      if (s === "sent") {
        m.date_sent = m.date_updated;
        m.from ??= phoneNumber;
        if (m.num_segments === "0") m.num_segments = String(segments(m.body));
      }
      await sendStatusCallback(m.sid, s);
    }
    if (outcome && "fail" in outcome) {
      m.status = outcome.fail;
      m.error_code = outcome.errorCode;
      m.error_message = DELIVERY_ERRORS[outcome.errorCode] ?? "Delivery failed";
      await sendStatusCallback(m.sid, outcome.fail, { errorCode: outcome.errorCode });
    } else {
      m.status = "delivered";
      m.price = "-0.00790";
      await sendStatusCallback(m.sid, "delivered");
    }
    m.date_updated = rfc2822();
  }

  function createMessage(params: Record<string, string>): Response {
    const outcome = scripted.shift();
    if (outcome && "reject" in outcome) {
      if (outcome.reject === 20429) {
        return errorResponse(20429, undefined, { "retry-after": String(outcome.retryAfterSeconds ?? 1) });
      }
      return errorResponse(outcome.reject);
    }
    const to = params.To ?? "";
    const body = params.Body ?? "";
    if (!E164.test(to)) return errorResponse(21211, `The 'To' number ${to} is not a valid phone number.`);
    if (!params.MessagingServiceSid && !params.From) return errorResponse(21603);
    if (params.MessagingServiceSid && params.MessagingServiceSid !== messagingServiceSid) {
      return errorResponse(21617, `The Messaging Service Sid ${params.MessagingServiceSid} is invalid.`);
    }
    if (body === "") return errorResponse(21602);
    if ([...body].length > 1600) return errorResponse(21617);
    if (optedOut.has(to)) return errorResponse(21610);
    const viaService = Boolean(params.MessagingServiceSid);
    const sid = `SM${randomHex(16)}`;
    const now = rfc2822();
    const m: TwilioMessage = {
      account_sid: accountSid,
      api_version: TWILIO_API_VERSION,
      body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      // A Messaging Service picks the sender after accepting: from is null and num_segments "0" until then.
      from: viaService ? null : params.From,
      messaging_service_sid: viaService ? messagingServiceSid : null,
      num_media: "0",
      num_segments: viaService ? "0" : String(segments(body)),
      price: null,
      price_unit: "USD",
      sid,
      status: viaService ? "accepted" : "queued",
      subresource_uris: { media: `${base}/Messages/${sid}/Media.json` },
      to,
      uri: `${base}/Messages/${sid}.json`,
    };
    messages.set(sid, m);
    const answer = Response.json(structuredClone(m), { status: 201 });
    if (params.StatusCallback) {
      callbackUrls.set(sid, params.StatusCallback);
      // After the answer, as Twilio: the callbacks never race the API response.
      const run = new Promise((r) => setTimeout(r, 0)).then(() => runCallbacks(m, outcome));
      pending.add(run);
      void run.finally(() => pending.delete(run));
    }
    return answer;
  }

  async function handle(req: Request): Promise<{ res: Response; params: Record<string, string> }> {
    const url = new URL(req.url);
    if (url.pathname === "/" && req.method === "GET") {
      return { res: Response.json({ fake: "twilio", api_version: TWILIO_API_VERSION }), params: {} };
    }
    const create = url.pathname === `${base}/Messages.json` ||
      /^\/2010-04-01\/Accounts\/[^/]+\/Messages\.json$/.test(url.pathname);
    const fetchMatch = /^\/2010-04-01\/Accounts\/[^/]+\/Messages\/([A-Za-z0-9]+)\.json$/.exec(url.pathname);
    const list = create && req.method === "GET";
    if (create && req.method === "POST") calls.create++;
    else if ((fetchMatch || list) && req.method === "GET") calls.fetch++;
    else return { res: errorResponse(20404, `The requested resource ${url.pathname} was not found`), params: {} };
    // The SID in the path is the account's own: another account's path is as good as bad credentials.
    if (!basicAuthOk(req, accountSid, authToken) || !url.pathname.startsWith(`${base}/`)) {
      await req.body?.cancel();
      return {
        res: errorResponse(20003, undefined, { "www-authenticate": 'Basic realm="Twilio API"' }),
        params: {},
      };
    }
    if (list) {
      // Message list (docs "Read multiple Message resources"), filtered by To; newest first.
      const to = url.searchParams.get("To");
      const found = [...messages.values()].filter((m) => to === null || m.to === to).reverse();
      return { res: Response.json({ messages: found, page: 0, page_size: found.length, uri: `${url.pathname}${url.search}` }), params: {} };
    }
    if (create) {
      const text = await boundedText(req);
      if (text === null) return { res: errorResponse(21617, "Request too large"), params: {} };
      const params = Object.fromEntries(new URLSearchParams(text));
      return { res: createMessage(params), params };
    }
    const m = messages.get(fetchMatch![1]);
    if (!m) return { res: errorResponse(20404, `The requested resource ${url.pathname} was not found`), params: {} };
    return { res: Response.json(m), params: {} };
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} }, async (req) => {
    const { res, params } = await handle(req).catch(() => ({ res: errorResponse(20500), params: {} }));
    const path = new URL(req.url).pathname;
    record(requests, { method: req.method, path, params, status: res.status });
    log(`twilio fake ← ${req.method} ${path} ${res.status}`);
    return res;
  });
  const port = server.addr.port;

  const fake: TwilioFake = {
    url: `http://127.0.0.1:${port}`,
    messages,
    calls,
    requests,
    callbacksSent,
    optedOut,
    script: (...outcomes) => void scripted.push(...outcomes),
    settled: async () => {
      while (pending.size) await Promise.all([...pending]);
    },
    sendStatusCallback,
    postSignedForm,
    async postInboundSms(url, sms) {
      const keyword = sms.body.trim().toUpperCase();
      // Twilio keeps its own opt-out list from the default keywords (Advanced Opt-Out or not).
      if (OPT_OUT.has(keyword) || sms.optOutType === "STOP") optedOut.add(sms.from);
      if (OPT_IN.has(keyword) || sms.optOutType === "START") optedOut.delete(sms.from);
      return await postSignedForm(url, inboundSmsParams(options, sms));
    },
    async postInboundCall(url, call) {
      return await postSignedForm(url, inboundCallParams(options, call));
    },
    async close() {
      await fake.settled().catch(() => {});
      await server.shutdown();
    },
  };
  return fake;
}

/** The fake's account, from the functions' settings (the same values the functions use). */
export function twilioFakeAccount(settings: Record<string, string>): Omit<TwilioFakeOptions, "port" | "log"> {
  const names = ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_PHONE_NUMBER"];
  const missing = names.filter((n) => !settings[n]);
  if (missing.length) throw new Error(`twilio fake: the functions' settings lack ${missing.join(", ")}`);
  return {
    accountSid: settings.TWILIO_ACCOUNT_SID,
    authToken: settings.TWILIO_AUTH_TOKEN,
    messagingServiceSid: settings.TWILIO_MESSAGING_SERVICE_SID,
    phoneNumber: settings.TWILIO_PHONE_NUMBER,
  };
}

// ---- standalone ---------------------------------------------------------------------------------
if (import.meta.main) {
  const { parseDotenv } = await import("../local-supabase/gateway/config.ts");
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const envFile = arg("--env-file");
  if (!envFile) {
    console.error("usage: deno run -A scripts/fakes/twilio.ts --env-file <functions .env> [--port <port>]");
    Deno.exit(2);
  }
  const settings = parseDotenv(await Deno.readTextFile(envFile));
  const fake = startTwilioFake({
    ...twilioFakeAccount(settings),
    port: Number(arg("--port") ?? 0),
    log: (line) => console.log(line),
  });
  console.log(`twilio fake listening on ${fake.url}`);
  const stop = () => void fake.close().finally(() => Deno.exit(0));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
