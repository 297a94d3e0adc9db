// Twilio webhook signatures (X-Twilio-Signature): no `twilio` SDK (17 MB). HMAC-SHA1 comes from
// @noble/hashes (pure JS, synchronous): WebCrypto's crypto.subtle.sign hands every call to a
// blocking thread and back, ~30 µs of CPU for a 20-byte MAC against ~6 µs here, and each webhook
// computes two (`npm run bench -- sms`).
//
// What Twilio signs (docs "Webhooks security"; twilio-node src/webhooks/webhooks.ts):
//   - a form POST: the exact URL Twilio called, then every POST parameter in sorted name order,
//     name then value (a repeated name: its distinct values sorted, each as name+value, as the
//     SDK does); base64 HMAC-SHA1 keyed with the account's auth token;
//   - a JSON (or other non-form) body: Twilio adds `bodySHA256=<hex sha256 of the body>` to the
//     URL and signs the URL alone; the body must then hash to that value.
// The SDK's validateRequest tries the URL with and without the scheme's default port (:443/:80),
// because proxies add or drop it; so do we. The SDK then falls back to the URL as re-encoded by
// `new URL()` and Node's legacy querystring; we deliberately do not (that accepts signatures over
// a URL Twilio did not call, and needs node:querystring): stricter, and the tests show where.
//
// The URL is the public one (public-url.ts), never req.url: behind the gateway req.url is internal.
// A handler turns { ok: false } into 403 and writes nothing.
import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import type { SettingsSource } from "../env.ts";
import { publicRequestUrl } from "../public-url.ts";

/** Parameters as the SDK takes them: a repeated name holds an array. */
export type TwilioParams = Record<string, string | string[]>;

export type TwilioVerification =
  | { ok: true; params: TwilioParams; url: string; bodyHashed: boolean }
  | { ok: false; reason: TwilioRejection };

export type TwilioRejection =
  | "missing_signature" // no X-Twilio-Signature header
  | "bad_signature" // no candidate URL gives that signature
  | "body_hash_mismatch" // bodySHA256 in the URL does not match the body
  | "unsupported_body" // a non-empty body that is neither a form nor covered by bodySHA256
  | "malformed_body"; // a form body that is not UTF-8

const encoder = new TextEncoder();

/** The SDK's order: Array.prototype.sort, i.e. UTF-16 code units. */
function sortedUnique(values: string[]): string[] {
  return Array.from(new Set(values)).sort();
}

/** The string Twilio signs: url + name+value for each parameter in sorted name order. */
export function signedPayload(url: string, params: TwilioParams = {}): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    if (Array.isArray(value)) {
      for (const v of sortedUnique(value)) data += name + v;
    } else {
      data += name + value;
    }
  }
  return data;
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** X-Twilio-Signature for `url` and `params`, synchronously. */
function signatureOf(url: string, params: TwilioParams, authToken: string): string {
  return base64(hmac(sha1, encoder.encode(authToken), encoder.encode(signedPayload(url, params))));
}

/** X-Twilio-Signature for a request to `url` with `params` (for the fake Twilio and the tests). */
export function twilioSignature(url: string, params: TwilioParams, authToken: string): Promise<string> {
  return Promise.resolve(signatureOf(url, params, authToken));
}

/** Hex SHA-256 of a body: the bodySHA256 Twilio puts in the URL of a JSON-bodied request. */
export async function bodySha256Hex(body: Uint8Array | string): Promise<string> {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Equal strings in time independent of where they differ (lengths are not secret: fixed by the algorithm). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/** scheme://authority split without normalising (new URL() would re-encode the path and query). */
function splitUrl(url: string) {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (!match) return null;
  const [prefix, scheme, authority] = match;
  const userInfoEnd = authority.lastIndexOf("@");
  const hostAndPort = authority.slice(userInfoEnd + 1);
  // A colon starts the port only after an IPv6 literal's closing bracket.
  const portStart = hostAndPort.indexOf(":", hostAndPort.lastIndexOf("]") + 1);
  return {
    scheme,
    userInfo: authority.slice(0, userInfoEnd + 1),
    host: portStart === -1 ? hostAndPort : hostAndPort.slice(0, portStart),
    port: portStart === -1 ? "" : hostAndPort.slice(portStart),
    rest: url.slice(prefix.length),
  };
}

/** The URL without its port, and with the scheme's default port when it has none (as the SDK). */
export function urlCandidates(url: string): string[] {
  const parts = splitUrl(url);
  if (!parts) return [url];
  const withoutPort = parts.scheme + parts.userInfo + parts.host + parts.rest;
  const withPort = parts.port
    ? url
    : parts.scheme + parts.userInfo + parts.host + (parts.scheme.toLowerCase() === "https://" ? ":443" : ":80") + parts.rest;
  return withoutPort === withPort ? [withoutPort] : [withoutPort, withPort];
}

/** Form parameters as the SDK sees them: a name given once is a string, given more, an array. */
export function formParams(form: URLSearchParams): TwilioParams {
  const params: TwilioParams = {};
  for (const [name, value] of form) {
    const prev = params[name];
    if (prev === undefined) params[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else params[name] = [prev, value];
  }
  return params;
}

/** Does `signature` sign `url` (with or without its default port) and `params`? */
export function validTwilioSignature(
  signature: string,
  url: string,
  params: TwilioParams,
  authToken: string,
): Promise<boolean> {
  let valid = false;
  // Every candidate is computed and compared (no early exit), so timing does not tell which matched.
  for (const candidate of urlCandidates(url)) {
    if (constantTimeEqual(signature, signatureOf(candidate, params, authToken))) valid = true;
  }
  return Promise.resolve(valid);
}

/** The bodySHA256 query parameter of a URL, if any (the SDK looks it up with URLSearchParams). */
function bodySha256Of(url: string): string | null {
  const q = url.indexOf("?");
  if (q < 0) return null;
  const hashAt = url.indexOf("#", q);
  return new URLSearchParams(url.slice(q + 1, hashAt < 0 ? undefined : hashAt)).get("bodySHA256");
}

/**
 * Is this request from Twilio? `rawBody` is the body exactly as received (http.ts readBytes).
 * The URL is the public one Twilio called (publicRequestUrl(req)), unless `opts.url` gives it.
 * Returns the form parameters on success; a failure's `reason` is for the log, the client gets 403.
 */
export async function verifyTwilioRequest(
  req: Request,
  rawBody: Uint8Array,
  authToken: string,
  opts: { url?: string; source?: SettingsSource } = {},
): Promise<TwilioVerification> {
  const signature = req.headers.get("x-twilio-signature");
  if (!signature) return { ok: false, reason: "missing_signature" };
  const url = opts.url ?? publicRequestUrl(req, opts.source);

  const bodyHash = bodySha256Of(url);
  if (bodyHash !== null) {
    // JSON variant: the URL alone is signed; the body must hash to bodySHA256. Both are checked
    // whatever the first result, so timing does not tell which failed.
    const signed = await validTwilioSignature(signature, url, {}, authToken);
    const hashed = constantTimeEqual(bodyHash, await bodySha256Hex(rawBody));
    if (!signed) return { ok: false, reason: "bad_signature" };
    if (!hashed) return { ok: false, reason: "body_hash_mismatch" };
    return { ok: true, params: {}, url, bodyHashed: true };
  }

  let params: TwilioParams = {};
  const mediaType = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (mediaType === "application/x-www-form-urlencoded") {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(rawBody);
    } catch {
      return { ok: false, reason: "malformed_body" };
    }
    params = formParams(new URLSearchParams(text));
  } else if (rawBody.length > 0) {
    // A body Twilio's signature would not cover: refuse rather than ignore it.
    return { ok: false, reason: "unsupported_body" };
  }
  if (!(await validTwilioSignature(signature, url, params, authToken))) return { ok: false, reason: "bad_signature" };
  return { ok: true, params, url, bodyHashed: false };
}
