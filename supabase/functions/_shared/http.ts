// HTTP plumbing every function shares: JSON errors carrying a request id, method and content-type
// checks, bodies read under a size limit, and handle(), the wrapper that turns whatever a handler
// throws into the right response:
//
//   export const handler = handle(async (req, { requestId }) => {
//     requireMethod(req, "POST");
//     const event = await readJson(req, { limit: 64 * 1024 });
//     …
//     return Response.json({ ok: true });
//   });
//
// Malformed input is always a 4xx with a fixed message (never a 5xx, never a parser's message or a
// stack trace); an unexpected error is a 500 naming only the request id, its stack goes to the log.
import { SettingsError } from "./env.ts";

/** Default body limit: 1 MiB. Webhooks from Stripe and Twilio are far smaller. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** An error meant for the client: status, a stable machine code and a human message. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown> | undefined;
  constructor(
    status: number,
    code: string,
    message: string,
    opts: { headers?: Record<string, string>; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = opts.headers ?? {};
    this.details = opts.details;
  }
}

/** The gateway's x-request-id when it looks like one (it is echoed into logs and bodies), else a new UUID. */
export function requestIdOf(req: Request): string {
  const given = req.headers.get("x-request-id");
  return given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : crypto.randomUUID();
}

/** `{"error": code, "message": …, "request_id": …, …details}` with `status`. */
export function jsonError(
  status: number,
  code: string,
  message: string,
  requestId: string,
  opts: { headers?: Record<string, string>; details?: Record<string, unknown> } = {},
): Response {
  return Response.json(
    { ...opts.details, error: code, message, request_id: requestId },
    { status, headers: { ...opts.headers, "x-request-id": requestId } },
  );
}

/** 405 unless the method is one of `methods` (with an Allow header, as RFC 9110 asks). */
export function requireMethod(req: Request, ...methods: string[]): void {
  if (!methods.includes(req.method)) {
    throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed here; use ${methods.join(" or ")}`, {
      headers: { allow: methods.join(", ") },
    });
  }
}

/** The media type of the body, lower-cased, without parameters ("application/json"), or "". */
export function mediaTypeOf(req: Request): string {
  return (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
}

/** 415 unless the body's media type is one of `types`. */
export function requireContentType(req: Request, ...types: string[]): void {
  const type = mediaTypeOf(req);
  if (!types.includes(type)) {
    throw new HttpError(415, "unsupported_media_type", `content-type must be ${types.join(" or ")}`);
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "payload_too_large", `the body exceeds the limit of ${limit} bytes`);
}

/**
 * The whole body, at most `limit` bytes. A content-length over the limit is refused before a byte
 * is read; a body without one (chunked) is counted while it streams and abandoned as soon as it
 * goes over, so an oversized upload never sits in memory whole.
 */
export async function readBytes(req: Request, opts: { limit?: number } = {}): Promise<Uint8Array<ArrayBuffer>> {
  const limit = opts.limit ?? DEFAULT_BODY_LIMIT;
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d+$/.test(declared.trim())) throw new HttpError(400, "bad_request", "content-length is not a number");
    if (Number(declared) > limit) throw tooLarge(limit);
  }
  if (!req.body) return new Uint8Array(0);
  if (req.bodyUsed) throw new TypeError("the request body was already read");
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    // The client went away or sent a broken chunked body: its fault, not ours.
    throw new HttpError(400, "bad_request", "the request body could not be read");
  } finally {
    reader.releaseLock();
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** The body as UTF-8 text (size-limited); invalid UTF-8 is a 400. Signature checks need it raw. */
export async function readText(req: Request, opts: { limit?: number } = {}): Promise<string> {
  const bytes = await readBytes(req, opts);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "bad_request", "the body is not valid UTF-8");
  }
}

/** Parses JSON text; malformed JSON is a 400 whose message does not echo the parser's. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_json", "the body is not valid JSON");
  }
}

/** A JSON body: content-type application/json (415 otherwise), size-limited, parsed (400 when malformed). */
export async function readJson(req: Request, opts: { limit?: number } = {}): Promise<unknown> {
  requireContentType(req, "application/json");
  return parseJson(await readText(req, opts));
}

/**
 * A form body (application/x-www-form-urlencoded, as Twilio posts its webhooks), size-limited.
 * Returns the raw text too: Twilio's signature covers the parameters, Stripe-style checks the raw body.
 */
export async function readForm(
  req: Request,
  opts: { limit?: number } = {},
): Promise<{ params: URLSearchParams; raw: string }> {
  requireContentType(req, "application/x-www-form-urlencoded");
  const raw = await readText(req, opts);
  // URLSearchParams never throws: a stray % is kept literally, as browsers do.
  return { params: new URLSearchParams(raw), raw };
}

export interface RequestContext {
  /** The gateway's x-request-id, or a generated one; it is on every response and error. */
  requestId: string;
}

export type Handler = (req: Request, ctx: RequestContext) => Response | Promise<Response>;

/** Sets x-request-id on a response (copying it when its headers are immutable, e.g. a fetch() response). */
function withRequestId(res: Response, requestId: string): Response {
  try {
    res.headers.set("x-request-id", requestId);
    return res;
  } catch {
    const copy = new Response(res.body, res);
    copy.headers.set("x-request-id", requestId);
    return copy;
  }
}

/** The response for anything a handler throws. */
export function errorResponse(error: unknown, requestId: string): Response {
  if (error instanceof HttpError) {
    return jsonError(error.status, error.code, error.message, requestId, { headers: error.headers, details: error.details });
  }
  if (error instanceof SettingsError) {
    // Names and reasons only (env.ts never puts a value in either). Logged too: an operator must see it.
    console.error(`[${requestId}] ${error.message}`);
    return jsonError(503, "settings_invalid", "the function is not configured correctly", requestId, {
      headers: { "retry-after": "60" },
      details: { settings: error.problems },
    });
  }
  console.error(`[${requestId}] unhandled error:`, error);
  return jsonError(500, "internal_error", "internal error", requestId);
}

/** Wraps a handler: request id in, every throw mapped to a JSON error, x-request-id on every response. */
export function handle(fn: Handler): (req: Request) => Promise<Response> {
  return async (req) => {
    const requestId = requestIdOf(req);
    try {
      return withRequestId(await fn(req, { requestId }), requestId);
    } catch (error) {
      return errorResponse(error, requestId);
    }
  };
}
