// system-status: the operations guide's `/api/system/status` health check (verify_jwt off).
//
//   GET /functions/v1/system-status
//
// Who gets what (the caller is identified here, _shared/auth.ts):
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
// with the settings verdicts, decides, and records the history row. The connection has a short
// connect timeout and the call a deadline: an unreachable database is a quick 503 `down`, never a
// 500 or a stack trace.
import { authConfigFromSettings, type Caller, type CallerIdentifier, createCallerIdentifier } from "../_shared/auth.ts";
import { createDb, jsonLiteral, type Sql } from "../_shared/db.ts";
import { classifyDatabaseError, withDeadline } from "../_shared/db-failure.ts";
import { DEFAULT_DB_SIZE_QUOTA_MB, SettingsError, type SettingsSource, settingsSource } from "../_shared/env.ts";
import { handle, HttpError, type RequestContext, requireMethod } from "../_shared/http.ts";
import { type StatusSetting, statusSettings } from "./settings.ts";

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

  /** One call of private.system_status, under the deadline. */
  function evaluate(input: Record<string, unknown>): Promise<StatusResult> {
    return withDeadline(deadlineMs, async () => {
      // No parameter: the simple query protocol, one round trip (db.ts, jsonLiteral).
      const rows = await database().unsafe(`select private.system_status(${jsonLiteral(input)}::jsonb) as s`);
      return rows[0].s as StatusResult;
    });
  }

  async function status(req: Request, { requestId }: RequestContext): Promise<Response> {
    const caller = await identify(req, requestId);
    const settings = statusSettings(source());
    let quotaMb = DEFAULT_DB_SIZE_QUOTA_MB;
    try {
      quotaMb = source().get("DB_SIZE_QUOTA_MB").DB_SIZE_QUOTA_MB ?? DEFAULT_DB_SIZE_QUOTA_MB;
    } catch { /* malformed: the settings list says so; the default quota still judges the size */ }

    let result: StatusResult;
    try {
      result = await evaluate({ caller: callerInput(caller), settings, db_size_quota_mb: quotaMb, record: true });
    } catch (error) {
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
    if (!result.authorized) return answer(200, { status: result.overall });
    return answer(200, {
      status: result.overall,
      checked_at: result.checked_at,
      caller: result.caller,
      checks: result.checks,
      settings: result.settings,
      open_alerts: result.open_alerts,
      thresholds: result.thresholds,
    });
  }

  return handle((req, ctx) => {
    const path = new URL(req.url).pathname;
    const at = path.indexOf("/system-status");
    const rest = at < 0 ? "" : path.slice(at + "/system-status".length).replace(/\/+$/, "");
    if (rest !== "") throw new HttpError(404, "not_found", "no such path: GET /system-status");
    requireMethod(req, "GET");
    return status(req, ctx);
  });
}

export const handler = createStatusHandler();
