// send-sms: an SMS to one worker, to every worker of a site (per-language bodies), or, for the
// service only, to a bare number (the operator's test SMS to OWNER_MOBILE). verify_jwt is off: the
// caller is identified here (_shared/auth.ts): a user session (ES256) or the service (secret key).
//
// Who may text whom is decided by the database, not here: for a user the reservation
// (private.reserve_outbound_sms) runs as that user (asUser), so it reaches only the workers and
// sites of the tenants the user administers. The answers, all before any provider call:
//   * nobody → 401; a user with `to` → 403;
//   * a target the user cannot see at all (another tenant's, or none) → 404, as RLS hides it;
//   * a target the user can see but does not administer (a plain member) → 403.
// The service reaches every worker, site and number.
//
// Input (JSON, ≤ 16 KiB, unknown fields refused): exactly one of worker_id | site_id | to, and
// body, or body_fr + body_en (site alerts). Each body: non-empty, ≤ 1600 characters, ≤ 10 segments.
// `to` is normalised to E.164 (libphonenumber-js, default country CA). Header Idempotency-Key
// (≤ 200 printable ASCII): a retry gets the first answer back (duplicate: true), no second SMS.
//
// Answer: { messages: [{ worker_id, to, status, message_sid, error? }], skipped: [{ worker_id,
// reasons }], duplicate } plus message_sid when there is exactly one message.
//   * one recipient (worker_id / to) refused by Twilio (21610, 21211…) → 422 with Twilio's code;
//   * rate limit exhausted / Twilio unreachable → 502;
//   * a site alert → 200 with each message's outcome (502 only when every message failed for a
//     transient reason). The sms_alerts rows and audit rows are written by the SQL in every case.
import { parsePhoneNumberFromString } from "libphonenumber-js";
import { z } from "zod";
import { callerOf } from "../_shared/auth.ts";
import { asService, asUser, db, type UserClaims } from "../_shared/db.ts";
import { handle, HttpError, readJson, requireMethod } from "../_shared/http.ts";
import { countSegments } from "../_shared/twilio/segments.ts";
import { type SendRequest, type SendResult, sendSms } from "../_shared/twilio/send.ts";

export const MAX_BODY_CHARS = 1600;
export const MAX_SEGMENTS = 10;
const REQUEST_LIMIT = 16 * 1024;

const smsBody = z.string().superRefine((text, ctx) => {
  if (text.trim() === "") {
    ctx.addIssue({ code: "custom", message: "must not be empty" });
  } else if (text.includes("\u0000")) {
    // PostgreSQL text cannot hold NUL: refused here rather than failing in the database.
    ctx.addIssue({ code: "custom", message: "must not contain NUL characters" });
  } else if (Array.from(text).length > MAX_BODY_CHARS) {
    ctx.addIssue({ code: "custom", message: `must be at most ${MAX_BODY_CHARS} characters` });
  } else {
    const { segments, encoding } = countSegments(text);
    if (segments > MAX_SEGMENTS) {
      ctx.addIssue({ code: "custom", message: `is ${segments} SMS segments (${encoding}); at most ${MAX_SEGMENTS} are allowed` });
    }
  }
});

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a UUID");

const schema = z.strictObject({
  worker_id: uuid.optional(),
  site_id: uuid.optional(),
  to: z.string().max(64).optional(),
  body: smsBody.optional(),
  body_fr: smsBody.optional(),
  body_en: smsBody.optional(),
});

function badRequest(message: string, field?: string): HttpError {
  return new HttpError(400, "bad_request", message, field ? { details: { field } } : {});
}

/** The validated request, or a 400 naming the field. */
export function parseRequest(input: unknown): SendRequest {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === "unrecognized_keys") {
      throw badRequest(`unknown field(s): ${issue.keys.join(", ")}`, issue.keys[0]);
    }
    const field = issue.path.length ? String(issue.path[0]) : undefined;
    const message = issue.code === "invalid_type" && field
      ? `${field} must be a ${issue.expected}`
      : field
      ? `${field} ${issue.message}`
      : "the body must be a JSON object";
    throw badRequest(message, field);
  }
  const p = parsed.data;
  const targets = (["worker_id", "site_id", "to"] as const).filter((k) => p[k] !== undefined);
  if (targets.length !== 1) throw badRequest("exactly one of worker_id, site_id, to is required");
  const hasBody = p.body !== undefined;
  const hasPair = p.body_fr !== undefined || p.body_en !== undefined;
  if (hasBody === hasPair) throw badRequest("give body, or body_fr and body_en (site alerts)", "body");
  if (hasPair) {
    if (p.site_id === undefined) throw badRequest("body_fr and body_en are for site alerts (site_id); use body", "body_fr");
    if (p.body_fr === undefined || p.body_en === undefined) {
      throw badRequest("body_fr and body_en go together", p.body_fr === undefined ? "body_fr" : "body_en");
    }
  }
  const bodies = hasBody ? { body: p.body! } : { body_fr: p.body_fr!, body_en: p.body_en! };
  if (p.to !== undefined) {
    const phone = parsePhoneNumberFromString(p.to, "CA");
    if (!phone || !phone.isValid()) throw badRequest("to is not a valid phone number", "to");
    return { to: phone.number, ...bodies };
  }
  if (p.worker_id !== undefined) return { worker_id: p.worker_id.toLowerCase(), ...bodies };
  return { site_id: p.site_id!.toLowerCase(), ...bodies };
}

/** The Idempotency-Key header (≤ 200 printable ASCII characters), or undefined. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.headers.get("idempotency-key");
  if (key === null) return undefined;
  if (!/^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/.test(key)) {
    throw badRequest("Idempotency-Key must be 1 to 200 printable ASCII characters", "Idempotency-Key");
  }
  return key;
}

function pgCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined;
}

/** Can this user see the target through RLS at all (member or admin of its tenant)? */
async function visibleToUser(claims: UserClaims, request: SendRequest): Promise<boolean> {
  const rows = await asUser(claims, (sql) =>
    "worker_id" in request
      ? sql`select 1 from public.workers where id = ${request.worker_id}::uuid`
      : "site_id" in request
      ? sql`select 1 from public.sites where id = ${request.site_id}::uuid`
      : sql`select 1 where false`);
  return rows.length > 0;
}

const TRANSIENT = (m: SendResult["messages"][number]) =>
  m.outcome === "failed" && (m.error?.code === null || m.error?.code === 20429 || m.error?.http_status === 429);

export const handler = handle(async (req) => {
  requireMethod(req, "POST");
  const caller = await callerOf(req);
  if (caller.kind === "nobody") {
    throw new HttpError(401, "unauthorized", "a user session or the service's secret key is required");
  }
  const input = await readJson(req, { limit: REQUEST_LIMIT });
  const request = parseRequest(input);
  const key = idempotencyKeyOf(req);
  if (key !== undefined) request.idempotency_key = key;

  let result: SendResult;
  if (caller.kind === "user") {
    if ("to" in request) throw new HttpError(403, "forbidden", "sending to a bare number is for the service only");
    const claims = { ...caller.claims, sub: caller.userId, role: "authenticated" } as UserClaims;
    try {
      result = await sendSms(request, { sql: db(), reserveAs: (fn) => asUser(claims, fn) });
    } catch (error) {
      const code = pgCode(error);
      if (code === "P0002") {
        // Not among the caller's admin tenants: a member still sees it (403), anyone else does not (404).
        if (await visibleToUser(claims, request)) {
          throw new HttpError(403, "forbidden", "only an owner or admin of the tenant may send SMS");
        }
        throw new HttpError(404, "not_found", "worker_id" in request ? "worker not found" : "site not found");
      }
      if (code === "42501") throw new HttpError(403, "forbidden", "not allowed");
      throw mapReserveError(error);
    }
  } else {
    try {
      result = await asService((sql) => sendSms(request, { sql }));
    } catch (error) {
      if (pgCode(error) === "P0002") {
        throw new HttpError(404, "not_found", "worker_id" in request ? "worker not found" : "site not found");
      }
      throw mapReserveError(error);
    }
  }
  return answer(request, result);
});

function mapReserveError(error: unknown): unknown {
  if (pgCode(error) === "22023") {
    const message = error instanceof Error ? error.message : "";
    if (message.includes("idempotency key already used")) {
      return new HttpError(409, "idempotency_key_reused", "this Idempotency-Key was used for a different request");
    }
    return new HttpError(400, "bad_request", message.replace(/^reserve_outbound_sms: /, ""));
  }
  return error;
}

function answer(request: SendRequest, result: SendResult): Response {
  const messages = result.messages.map((m) => ({
    worker_id: m.worker_id,
    to: m.to,
    status: m.status,
    message_sid: m.message_sid,
    ...(m.outcome === "failed" ? { error: { code: m.error?.code ?? null, message: m.error?.message ?? "send failed" } } : {}),
  }));
  const body: Record<string, unknown> = { messages, skipped: result.skipped, duplicate: result.duplicate };
  if (messages.length === 1) body.message_sid = messages[0].message_sid;

  const failed = result.messages.filter((m) => m.outcome === "failed");
  const single = !("site_id" in request);
  if (failed.length && (single || failed.length === result.messages.length)) {
    if (failed.every(TRANSIENT)) {
      return Response.json({ ...body, error: "provider_unavailable", message: "Twilio could not be reached or kept rate-limiting; retry later" }, {
        status: 502,
      });
    }
    if (single) {
      const code = failed[0].error?.code ?? null;
      return Response.json({ ...body, error: "provider_rejected", message: `Twilio refused the message (code ${code})`, twilio_code: code }, {
        status: 422,
      });
    }
  }
  return Response.json(body);
}
