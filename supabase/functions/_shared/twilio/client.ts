// A small Twilio REST client on fetch (the `twilio` SDK is ~17 MB with axios & co.): send a message
// through the Messaging Service, fetch one. API: POST/GET /2010-04-01/Accounts/{AccountSid}/Messages
// (docs "Message resource"), form-encoded, HTTP basic auth AccountSid:AuthToken. TWILIO_API_BASE
// points it at the local fake; https://api.twilio.com otherwise.
//
// Errors: Twilio answers {code, message, more_info, status}; it becomes a TwilioApiError with those
// fields and Retry-After (429 / code 20429). Nothing here puts the auth token in an error or a log.
import { type SettingsSource, settingsSource } from "../env.ts";

export const TWILIO_DEFAULT_API_BASE = "https://api.twilio.com";

export interface TwilioClientConfig {
  accountSid: string;
  authToken: string;
  messagingServiceSid: string;
  /** Without a trailing slash; default https://api.twilio.com. */
  apiBase?: string;
}

/** The Message resource fields we read (Twilio sends more). */
export interface TwilioMessage {
  sid: string;
  status: string;
  to: string;
  from: string | null;
  body: string;
  messaging_service_sid: string | null;
  num_segments: string;
  error_code: number | null;
  error_message: string | null;
  date_created: string | null;
  [field: string]: unknown;
}

/** A Twilio API error answer (or an unreadable answer: code null). */
export class TwilioApiError extends Error {
  readonly status: number;
  readonly code: number | null;
  readonly moreInfo: string | null;
  /** Seconds from Retry-After, when Twilio sent it (429). */
  readonly retryAfterSeconds: number | null;
  constructor(status: number, code: number | null, message: string, moreInfo: string | null, retryAfterSeconds: number | null) {
    super(message);
    this.name = "TwilioApiError";
    this.status = status;
    this.code = code;
    this.moreInfo = moreInfo;
    this.retryAfterSeconds = retryAfterSeconds;
  }
  /** 21610: the recipient replied STOP; Twilio will not deliver until START. */
  get optedOut(): boolean {
    return this.code === 21610;
  }
  /** Too many requests (HTTP 429 or code 20429): retry after a pause. */
  get rateLimited(): boolean {
    return this.status === 429 || this.code === 20429;
  }
}

/** The network failed or Twilio did not answer: no answer to parse. */
export class TwilioNetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TwilioNetworkError";
  }
}

function retryAfter(res: Response): number | null {
  const value = res.headers.get("retry-after");
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

export class TwilioClient {
  readonly #config: Required<TwilioClientConfig>;
  readonly #authorization: string;

  constructor(config: TwilioClientConfig) {
    this.#config = { ...config, apiBase: (config.apiBase ?? TWILIO_DEFAULT_API_BASE).replace(/\/+$/, "") };
    this.#authorization = "Basic " + btoa(`${config.accountSid}:${config.authToken}`);
  }

  /** Where requests go (the fake's URL locally, https://api.twilio.com otherwise). */
  get apiBase(): string {
    return this.#config.apiBase;
  }

  #messagesUrl(suffix = ""): string {
    return `${this.#config.apiBase}/2010-04-01/Accounts/${encodeURIComponent(this.#config.accountSid)}/Messages${suffix}.json`;
  }

  async #request(method: "GET" | "POST", url: string, form?: URLSearchParams, signal?: AbortSignal): Promise<TwilioMessage> {
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: this.#authorization,
          accept: "application/json",
          ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        body: form,
        signal,
      });
    } catch (err) {
      // The cause is fetch's own error (no headers in it); the message names only the method.
      throw new TwilioNetworkError(`Twilio API unreachable (${method} Messages)`, { cause: err });
    }
    const text = await res.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    if (!res.ok) {
      const code = typeof json?.code === "number" ? json.code : null;
      const message = typeof json?.message === "string" ? json.message : `Twilio API answered HTTP ${res.status}`;
      const moreInfo = typeof json?.more_info === "string" ? json.more_info : null;
      throw new TwilioApiError(res.status, code, message, moreInfo, retryAfter(res));
    }
    if (!json || typeof json.sid !== "string") {
      throw new TwilioApiError(res.status, null, "Twilio API answered without a message resource", null, null);
    }
    return json as TwilioMessage;
  }

  /** Sends `body` to `to` (E.164) through the Messaging Service; Twilio POSTs statuses to statusCallback. */
  sendMessage(msg: { to: string; body: string; statusCallback?: string; signal?: AbortSignal }): Promise<TwilioMessage> {
    const form = new URLSearchParams({ MessagingServiceSid: this.#config.messagingServiceSid, To: msg.to, Body: msg.body });
    if (msg.statusCallback) form.set("StatusCallback", msg.statusCallback);
    return this.#request("POST", this.#messagesUrl(), form, msg.signal);
  }

  /** The message resource by SID (SM… or MM…). */
  fetchMessage(sid: string, opts: { signal?: AbortSignal } = {}): Promise<TwilioMessage> {
    if (!/^(SM|MM)[0-9a-f]{32}$/.test(sid)) throw new TypeError("not a message SID (SM/MM + 32 hex digits)");
    return this.#request("GET", this.#messagesUrl(`/${sid}`), undefined, opts.signal);
  }
}

/** A client from the settings (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_MESSAGING_SERVICE_SID, TWILIO_API_BASE). */
export function twilioClient(source: SettingsSource = settingsSource()): TwilioClient {
  const s = source.get("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_BASE");
  return new TwilioClient({
    accountSid: s.TWILIO_ACCOUNT_SID,
    authToken: s.TWILIO_AUTH_TOKEN,
    messagingServiceSid: s.TWILIO_MESSAGING_SERVICE_SID,
    apiBase: s.TWILIO_API_BASE,
  });
}
