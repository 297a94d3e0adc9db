// system-status: the operations guide's `/api/system/status` health check, and the automatic
// alerts (verify_jwt off; the caller is identified here, _shared/auth.ts).
//
//   GET  /functions/v1/system-status                     the status (anyone; see below)
//   HEAD /functions/v1/system-status                     GET's status code, no body (uptime monitors)
//   POST /functions/v1/system-status                     evaluate the status AND the alerts (the
//                                                        service only: the 5-minute pg_cron job)
//   GET  /functions/v1/system-status/alerts?state=open|all&limit=50   alerts (the service only)
//   POST /functions/v1/system-status/alerts/<id>/ack     acknowledge an open alert (the service
//                                                        only; optional JSON {"by": "<who>"})
//
// Who gets what from GET:
//   * the service (a secret API key `sb_secret_…`, e.g. the ops CLI) or a tenant owner/admin's user
//     session: the full answer: each setting ok | missing | malformed with the reason (never a value
//     or a fragment of one), database reachable + last migration, each pg_cron job's last run, SMS
//     delivery and error rates over 24 h, Stripe webhook failure rate, time since the last complete
//     billing sync, database size against DB_SIZE_QUOTA_MB, open alerts; recorded in
//     private.system_status_history;
//   * anyone else (no credential, a publishable key, a plain member): `{"status": …}` only.
// Overall `status`: ok | degraded (a check failed) | down (the database does not answer).
// HTTP 200 for ok and degraded (the function answers; the body says what is wrong), 503 for down:
// the usual health-check convention, so an uptime monitor alerts on the status code alone.
//
// One database round trip: private.system_status(p) gathers every database fact, combines them
// with the settings verdicts, decides, and records the history row (POST: private.
// evaluate_system_status, the same plus the alert transitions in one transaction; then one SMS per
// claimed notification through the normal send path, alerts.ts). The connection has a short
// connect timeout and the call a deadline: an unreachable database is a quick 503 `down`, never a
// 500 or a stack trace.
import { authConfigFromSettings, type Caller, type CallerIdentifier, createCallerIdentifier } from "../_shared/auth.ts";
import { createDb, jsonLiteral, type Sql } from "../_shared/db.ts";
import { classifyDatabaseError, withDeadline } from "../_shared/db-failure.ts";
import { DEFAULT_DB_SIZE_QUOTA_MB, SettingsError, type SettingsSource, settingsSource } from "../_shared/env.ts";
import { handle, HttpError, mediaTypeOf, readJson, type RequestContext, requireMethod } from "../_shared/http.ts";
import { type StatusSetting, statusSettings } from "./settings.ts";
import { type ClaimedNotification, notifyOwner, type NotificationOutcome } from "./alerts.ts";

/** Seconds to establish a connection before the database counts as unreachable. */
export const CONNECT_TIMEOUT_SECONDS = 2;
/** The whole database call, connection included; past it the answer is `down` (timeout). */
export const DATABASE_DEADLINE_MS = 4000;

export type Overall = "ok" | "degraded" | "down";

/** What private.system_status returns for an authorised caller. */
export interface StatusResult {
  authorized: boolean;
  overall: "ok" | "degraded";
  caller?: "service" | "admin";
  checked_at?: string;
  settings?: StatusSetting[];
  checks?: Record<string, { status: string; [k: string]: unknown }>;
  thresholds?: Record<string, number>;
  open_alerts?: unknown[];
  /** POST only: the transitions of private.evaluate_system_alerts. */
  alerts?: { raised: unknown[]; cleared: unknown[]; notify: ClaimedNotification[] };
}

/** The settings check, without the database (when it is down): the same rule as the SQL. */
export function settingsCheck(settings: StatusSetting[]) {
  const problems = settings
    .filter((s) => s.status === "malformed" || (s.status === "missing" && (s.seed || !s.optional)))
    .map((s) => ({ name: s.name, status: s.status }));
  const seed = settings.filter((s) => s.seed);
  return {
    status: problems.length ? "fail" : "ok",
    seed_total: seed.length,
    seed_ok: seed.filter((s) => s.status === "ok").length,
    problems,
  };
}

export interface StatusHandlerOptions {
  /** The settings (default: this worker's, from Deno.env). */
  source?: SettingsSource;
  /** The database client (default: a small pool of its own on SUPABASE_DB_URL, short connect timeout). */
  sql?: () => Sql;
  deadlineMs?: number;
}

function callerInput(caller: Caller): Record<string, string> {
  if (caller.kind === "service") return { kind: "service" };
  if (caller.kind === "user") return { kind: "user", user_id: caller.userId };
  return { kind: "nobody" };
}

/**
 * HEAD: GET's status code and headers without the body. Uptime monitors often probe with HEAD (the
 * guide's "curl -I"), and a 405 would read as an outage: 200 while ok or degraded, 503 when down.
 */
async function headOf(response: Promise<Response>): Promise<Response> {
  const r = await response;
  await r.body?.cancel();
  return new Response(null, { status: r.status, headers: r.headers });
}

function answer(status: number, body: unknown): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

/** The handler, with its settings and database injectable (tests); `handler` below is the worker's. */
export function createStatusHandler(options: StatusHandlerOptions = {}): (req: Request) => Promise<Response> {
  const source = () => options.source ?? settingsSource();
  const deadlineMs = options.deadlineMs ?? DATABASE_DEADLINE_MS;
  let pool: Sql | undefined;
  const database = options.sql ?? (() => {
    pool ??= createDb(source().get("SUPABASE_DB_URL").SUPABASE_DB_URL, {
      max: 3,
      connect_timeout: CONNECT_TIMEOUT_SECONDS,
    });
    return pool;
  });

  let identifier: CallerIdentifier | undefined;
  /** Who is calling; keys that cannot be read make everyone nobody (the settings check says why). */
  async function identify(req: Request, requestId: string): Promise<Caller> {
    try {
      identifier ??= createCallerIdentifier(
        authConfigFromSettings(source().get("SUPABASE_SECRET_KEYS", "SUPABASE_JWKS", "SUPABASE_SERVICE_ROLE_KEY")),
      );
      return await identifier.identify(req);
    } catch (error) {
      if (!(error instanceof SettingsError)) throw error;
      console.error(`[${requestId}] system-status: callers cannot be identified: ${error.message}`);
      return { kind: "nobody", reason: "no_credentials" };
    }
  }

  /** One call of private.system_status (GET) or private.evaluate_system_status (POST), under the deadline. */
  function evaluate(fn: "system_status" | "evaluate_system_status", input: Record<string, unknown>): Promise<StatusResult> {
    return withDeadline(deadlineMs, async () => {
      // No parameter: the simple query protocol, one round trip (db.ts, jsonLiteral).
      const rows = await database().unsafe(`select private.${fn}(${jsonLiteral(input)}::jsonb) as s`);
      return rows[0].s as StatusResult;
    });
  }

  function down(caller: Caller, settings: StatusSetting[], error: unknown, requestId: string): Response {
    const failure = classifyDatabaseError(error);
    console.error(`[${requestId}] system-status: database ${failure.reason}${failure.code ? ` (${failure.code})` : ""}`);
    // Only the service sees why: a user's admin role cannot be checked without the database.
    if (caller.kind !== "service") return answer(503, { status: "down" });
    return answer(503, {
      status: "down",
      checked_at: new Date().toISOString(),
      caller: "service",
      checks: {
        database: { status: "fail", reachable: false, error: failure.reason, ...(failure.code ? { code: failure.code } : {}) },
        settings: settingsCheck(settings),
      },
      settings,
    });
  }

  function fullAnswer(result: StatusResult, extra: Record<string, unknown> = {}): Response {
    return answer(200, {
      status: result.overall,
      checked_at: result.checked_at,
      caller: result.caller,
      checks: result.checks,
      settings: result.settings,
      open_alerts: result.open_alerts,
      thresholds: result.thresholds,
      ...extra,
    });
  }

  function statusInput(caller: Caller, settings: StatusSetting[]): Record<string, unknown> {
    let quotaMb = DEFAULT_DB_SIZE_QUOTA_MB;
    try {
      quotaMb = source().get("DB_SIZE_QUOTA_MB").DB_SIZE_QUOTA_MB ?? DEFAULT_DB_SIZE_QUOTA_MB;
    } catch { /* malformed: the settings list says so; the default quota still judges the size */ }
    return { caller: callerInput(caller), settings, db_size_quota_mb: quotaMb, record: true };
  }

  /** GET /system-status */
  async function status(req: Request, { requestId }: RequestContext): Promise<Response> {
    const caller = await identify(req, requestId);
    const settings = statusSettings(source());
    let result: StatusResult;
    try {
      result = await evaluate("system_status", statusInput(caller, settings));
    } catch (error) {
      return down(caller, settings, error, requestId);
    }
    if (!result.authorized) return answer(200, { status: result.overall });
    return fullAnswer(result);
  }

  /** POST /system-status: the status, the alert transitions, then one SMS per claimed notification. */
  async function evaluateAlerts(req: Request, { requestId }: RequestContext): Promise<Response> {
    const caller = await requireService(req, requestId);
    const settings = statusSettings(source());
    let result: StatusResult;
    try {
      result = await evaluate("evaluate_system_status", statusInput(caller, settings));
    } catch (error) {
      return down(caller, settings, error, requestId);
    }
    const claimed = result.alerts?.notify ?? [];
    let notifications: NotificationOutcome[] = [];
    if (claimed.length) {
      notifications = await notifyOwner(database(), claimed, source(), (line) => console.error(`[${requestId}] system-status: ${line}`));
    }
    return fullAnswer(result, {
      alerts: { raised: result.alerts?.raised ?? [], cleared: result.alerts?.cleared ?? [], notifications },
    });
  }

  async function requireService(req: Request, requestId: string): Promise<Caller> {
    const caller = await identify(req, requestId);
    if (caller.kind === "nobody") throw new HttpError(401, "unauthorized", "the service's secret key is required");
    if (caller.kind !== "service") throw new HttpError(403, "forbidden", "for the service (secret key) only");
    return caller;
  }

  /** A database call of the alert routes: a 503 JSON (never a 500) when the database does not answer. */
  async function query<T>(requestId: string, work: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      return await withDeadline(deadlineMs, () => work(database()));
    } catch (error) {
      const failure = classifyDatabaseError(error);
      if (failure.reason === "query_failed") throw error;
      console.error(`[${requestId}] system-status: database ${failure.reason}${failure.code ? ` (${failure.code})` : ""}`);
      throw new HttpError(503, "database_unavailable", "the database does not answer", { details: { reason: failure.reason } });
    }
  }

  /** GET /system-status/alerts */
  async function listAlerts(req: Request, { requestId }: RequestContext): Promise<Response> {
    await requireService(req, requestId);
    const params = new URL(req.url).searchParams;
    const state = params.get("state") ?? "open";
    if (!["open", "all"].includes(state)) throw new HttpError(400, "bad_request", "state must be open or all");
    const limitText = params.get("limit") ?? "50";
    if (!/^[1-9][0-9]{0,2}$/.test(limitText) || Number(limitText) > 500) {
      throw new HttpError(400, "bad_request", "limit must be a whole number from 1 to 500");
    }
    // As JSON from the database: ids stay numbers (postgres.js hands bigint columns over as strings).
    const rows = await query(requestId, (sql) =>
      sql.unsafe(
        `select coalesce(jsonb_agg(to_jsonb(a) order by a.raised_at desc, a.id desc), '[]'::jsonb) as alerts
           from (select id, kind, subject, state, raised_at, acked_at, acked_by, cleared_at, last_notified_at,
                        notifications, last_notification_status, details
                   from public.system_alerts
                  ${state === "open" ? "where state <> 'cleared'" : ""}
                  order by raised_at desc, id desc
                  limit ${Number(limitText)}) as a`,
      ));
    return answer(200, { alerts: rows[0].alerts });
  }

  /** POST /system-status/alerts/<id>/ack */
  async function ackAlert(req: Request, ctx: RequestContext, idText: string): Promise<Response> {
    await requireService(req, ctx.requestId);
    if (!/^[1-9][0-9]{0,17}$/.test(idText)) throw new HttpError(404, "not_found", "no such alert");
    let by = "service";
    // An optional JSON body {"by": "<who>"} (the ops CLI sends the operator's name).
    if (mediaTypeOf(req) !== "") {
      const input = await readJson(req, { limit: 4096 });
      if (typeof input !== "object" || input === null || Array.isArray(input)) {
        throw new HttpError(400, "bad_request", "the body must be a JSON object");
      }
      const unknown = Object.keys(input).filter((k) => k !== "by");
      if (unknown.length) throw new HttpError(400, "bad_request", `unknown field(s): ${unknown.join(", ")}`);
      const given = (input as { by?: unknown }).by;
      if (given !== undefined) {
        if (typeof given !== "string" || given.trim() === "" || given.length > 200 || given.includes("\u0000")) {
          throw new HttpError(400, "bad_request", "by must be a non-empty string of at most 200 characters");
        }
        by = given.trim();
      }
    }
    let result: { acked: boolean; state: string; [k: string]: unknown };
    try {
      const rows = await query(ctx.requestId, (sql) =>
        sql.unsafe(`select private.ack_system_alert(${idText}::bigint, (${jsonLiteral([by])}::jsonb ->> 0)) as r`));
      result = rows[0].r;
    } catch (error) {
      if (typeof error === "object" && error !== null && "code" in error && error.code === "P0002") {
        throw new HttpError(404, "not_found", "no such alert");
      }
      throw error;
    }
    if (!result.acked) {
      throw new HttpError(409, "not_open", `alert ${idText} is ${result.state}, not open`, { details: { state: result.state } });
    }
    return answer(200, { alert: result });
  }

  return handle((req, ctx) => {
    const path = new URL(req.url).pathname;
    const at = path.indexOf("/system-status");
    const rest = at < 0 ? "" : path.slice(at + "/system-status".length).replace(/\/+$/, "");
    if (rest === "") {
      requireMethod(req, "GET", "HEAD", "POST");
      if (req.method === "HEAD") return headOf(status(req, ctx));
      return req.method === "POST" ? evaluateAlerts(req, ctx) : status(req, ctx);
    }
    if (rest === "/alerts") {
      requireMethod(req, "GET");
      return listAlerts(req, ctx);
    }
    const ack = /^\/alerts\/([^/]+)\/ack$/.exec(rest);
    if (ack) {
      requireMethod(req, "POST");
      return ackAlert(req, ctx, ack[1]);
    }
    throw new HttpError(404, "not_found", "no such path (GET|POST /system-status, GET /system-status/alerts, POST /system-status/alerts/<id>/ack)");
  });
}

export const handler = createStatusHandler();
