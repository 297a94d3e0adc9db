// db-status: what the guide's `/api/db/init` check was for, read-only (verify_jwt off).
//
//   GET /functions/v1/db-status      (the service only: a secret API key, `sb_secret_…`)
//
// Is the database what this deployment's migrations build? Schemas present, every table of the
// manifest present (and none unknown to it), RLS on every public table, migrations applied compared
// with the ones this function was deployed with, pg_cron jobs present, active and on schedule, and
// the Vault secrets the scheduled calls read (names only). It never creates anything: one STABLE
// SQL function (private.database_status) in a READ ONLY transaction.
//
// "Compared with the files deployed": a hosted function cannot read supabase/migrations, so the
// list it compares with is the manifest `npm run gen:types` wrote into _shared/ from the migrations
// of the commit the functions were deployed from (a test fails when it is stale). `migrations.missing`
// then means "deployed code expects them, the database lacks them: run `supabase db push`";
// `migrations.unexpected` means the database has migrations this deployment does not know (the
// functions come from an older commit, or the database from another branch).
//
// Why the service only: it is an operator's tool (the ops CLI `db-status`), and its answer describes
// the schema (table names, jobs, secret names), which no tenant needs. 401 without a credential, 403
// for a user session. 200 with `status` ok | degraded when the database answers; 503 `down` when it
// does not (same deadline and short connect timeout as system-status).
import { authConfigFromSettings, type CallerIdentifier, createCallerIdentifier } from "../_shared/auth.ts";
import { createDb, jsonLiteral, type Sql } from "../_shared/db.ts";
import { classifyDatabaseError, withDeadline } from "../_shared/db-failure.ts";
import { type SettingsSource, settingsSource } from "../_shared/env.ts";
import { handle, HttpError, requireMethod } from "../_shared/http.ts";
import { SCHEMA_MANIFEST } from "../_shared/schema-manifest.generated.ts";

export const CONNECT_TIMEOUT_SECONDS = 2;
export const DATABASE_DEADLINE_MS = 5000;

/**
 * Vault secrets the scheduled jobs read (private.request_status_evaluation): checked by name.
 * Add a secret here when a migration schedules a job that reads it.
 */
export const SCHEDULED_CALL_SECRETS: readonly string[] = ["functions_url", "service_secret_key"];

/** What private.database_status receives: the manifest this function was deployed with. */
export function databaseStatusInput() {
  return {
    migrations: SCHEMA_MANIFEST.migrations,
    schemas: SCHEMA_MANIFEST.schemas,
    tables: SCHEMA_MANIFEST.publicTables,
    cron_jobs: SCHEMA_MANIFEST.cronJobs,
    vault_secrets: SCHEDULED_CALL_SECRETS,
  };
}

export interface DbStatusHandlerOptions {
  source?: SettingsSource;
  sql?: () => Sql;
  deadlineMs?: number;
}

export function createDbStatusHandler(options: DbStatusHandlerOptions = {}): (req: Request) => Promise<Response> {
  const source = () => options.source ?? settingsSource();
  let pool: Sql | undefined;
  const database = options.sql ?? (() => {
    pool ??= createDb(source().get("SUPABASE_DB_URL").SUPABASE_DB_URL, { max: 1, connect_timeout: CONNECT_TIMEOUT_SECONDS });
    return pool;
  });
  let identifier: CallerIdentifier | undefined;

  return handle(async (req, { requestId }) => {
    const path = new URL(req.url).pathname;
    const at = path.indexOf("/db-status");
    if (at >= 0 && path.slice(at + "/db-status".length).replace(/\/+$/, "") !== "") {
      throw new HttpError(404, "not_found", "no such path: GET /db-status");
    }
    requireMethod(req, "GET");
    // Unreadable keys are a 503 naming them (http.ts): this caller is an operator, not the public.
    identifier ??= createCallerIdentifier(
      authConfigFromSettings(source().get("SUPABASE_SECRET_KEYS", "SUPABASE_JWKS", "SUPABASE_SERVICE_ROLE_KEY")),
    );
    const caller = await identifier.identify(req);
    if (caller.kind === "nobody") throw new HttpError(401, "unauthorized", "the service's secret key is required");
    if (caller.kind !== "service") throw new HttpError(403, "forbidden", "db-status is for the service (secret key) only");

    let result: Record<string, unknown>;
    try {
      result = await withDeadline(options.deadlineMs ?? DATABASE_DEADLINE_MS, async () => {
        const rows = await database().begin("read only", (sql) =>
          sql.unsafe(`select private.database_status(${jsonLiteral(databaseStatusInput())}::jsonb) as s`));
        return rows[0].s as Record<string, unknown>;
      });
    } catch (error) {
      const failure = classifyDatabaseError(error);
      console.error(`[${requestId}] db-status: database ${failure.reason}${failure.code ? ` (${failure.code})` : ""}`);
      return Response.json(
        { status: "down", database: { reachable: false, error: failure.reason, ...(failure.code ? { code: failure.code } : {}) } },
        { status: 503, headers: { "cache-control": "no-store" } },
      );
    }
    const { overall, ...sections } = result;
    return Response.json({ status: overall, ...sections }, { headers: { "cache-control": "no-store" } });
  });
}

export const handler = createDbStatusHandler();
