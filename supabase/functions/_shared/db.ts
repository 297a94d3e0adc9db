// Database access for functions: one pooled `postgres` client per worker, from SUPABASE_DB_URL.
//
// Design rule (issue 13, C): ONE database round trip per request on the webhook path: one SQL
// function call that does every write atomically, e.g.
//
//   const [row] = await asService((sql) => sql`select private.record_stripe_event(${event}::jsonb) as r`);
//
// not BEGIN/INSERT/…/COMMIT from here. asUser() is for requests made on behalf of a signed-in user:
// it runs fn in one transaction as `authenticated` with the user's claims, so RLS decides.
import postgres from "postgres";
import { settings } from "./env.ts";

export type Sql = postgres.Sql;

/** The pool's options: small, because the platform runs many workers against one pooler. */
export const POOL_OPTIONS = {
  // Supavisor/PgBouncer in transaction mode hand each transaction a different server connection:
  // named prepared statements would not be there next time.
  prepare: false,
  max: 5,
  // Give idle connections back soon: the pooler's client slots are shared by every worker.
  idle_timeout: 20,
  connect_timeout: 10,
  max_lifetime: 30 * 60,
  connection: { application_name: "c-secur360 edge function" },
  onnotice: () => {},
} satisfies postgres.Options<Record<string, never>>;

/** A client with the functions' pool options (tests and benchmarks make their own). */
export function createDb(url: string, options: postgres.Options<Record<string, never>> = {}): Sql {
  return postgres(url, { ...POOL_OPTIONS, ...options });
}

let pool: Sql | undefined;

/** The worker's pool, created on first use (a function that never queries never connects). */
export function db(): Sql {
  pool ??= createDb(settings("SUPABASE_DB_URL").SUPABASE_DB_URL);
  return pool;
}

/** Closes the worker's pool (tests, scripts); the next db() opens a new one. */
export async function closeDb(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.end({ timeout: 5 });
}

/** Service work (webhooks, scheduled jobs): the pool as is, role `postgres` (BYPASSRLS). */
export function asService<T>(fn: (sql: Sql) => T | Promise<T>, sql: Sql = db()): Promise<T> {
  return Promise.resolve(fn(sql));
}

/**
 * `select <fn>(<payload>::jsonb) as result`, the webhook path's one statement, in ONE round trip.
 *
 * With `prepare: false`, a statement with a parameter costs two round trips (postgres.js first asks
 * the server for the parameter's type, and holds the connection meanwhile); so the JSON goes in as
 * a literal (jsonLiteral) and the statement has no parameter. The server reads the same JSON text
 * either way (jsonb input), so the function sees the same value and raises the same errors.
 * Without a pending describe, postgres.js also pipelines such statements on a busy connection.
 * `fn` is a schema-qualified function name written in our code, never input.
 */
export function callJson<T>(sql: Sql, fn: string, payload: unknown): postgres.PendingQuery<{ result: T }[]> {
  if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(fn)) throw new TypeError(`callJson: ${fn} is not a schema-qualified function name`);
  return sql.unsafe<{ result: T }[]>(`select ${fn}(${jsonLiteral(payload)}::jsonb) as result`);
}

/** The claims of a signed-in user's JWT, as auth.ts returns them. */
export interface UserClaims {
  sub: string;
  role?: string;
  [claim: string]: unknown;
}

/**
 * A JSON text as a SQL string literal, for statements that must carry no parameter (see asUser).
 * E'' with backslashes and quotes escaped reads the same whatever standard_conforming_strings is;
 * the connection's encoding is UTF-8 (postgres.js sets client_encoding), so no multibyte trick
 * applies; JSON.stringify never emits a raw control character (NUL included).
 */
export function jsonLiteral(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError("value is not JSON-serialisable");
  return jsonTextLiteral(text);
}

/**
 * A JSON TEXT as is (a webhook's verified raw body, already parsed once to check it) as a SQL string
 * literal, escaped as jsonLiteral does, without serialising it again: the server parses the very
 * text the provider signed. Valid JSON holds no raw control character, so no NUL either; a text
 * with one is refused here (PostgreSQL could not take it in a literal).
 */
export function jsonTextLiteral(text: string): string {
  if (text.includes("\0")) throw new TypeError("a JSON text holds no NUL character");
  return `E'${text.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/**
 * Runs fn in ONE transaction as `authenticated`, with `request.jwt.claims` set as PostgREST sets
 * them (transaction-local, so nothing survives the commit on a pooled connection), so auth.uid()
 * and RLS see this user. The result of fn is returned after COMMIT; a throw rolls back.
 *
 * Round trips. postgres.js's sql.begin() costs one round trip for BEGIN before fn starts, and with
 * `prepare: false` every statement that has parameters costs two (Parse/Describe to learn the
 * types, then Bind/Execute). So instead: a reserved connection, and BEGIN plus one parameterless
 * statement that sets the role and the claims (the claims as a literal: jsonLiteral) are queued
 * without waiting; postgres.js writes them in the same network flight as fn's first statement.
 * When fn returns its query unawaited, COMMIT is queued right behind it too. Measured at the socket
 * (tests/shared/db.test.ts): one statement without parameters, returned unawaited = 1 round trip
 * for the whole request; awaited = 2; with a parameter = 3; the textbook sql.begin + set_config +
 * set local role sequence = 7.
 */
export async function asUser<T>(
  claims: UserClaims,
  fn: (sql: Sql) => T | Promise<T>,
  sql: Sql = db(),
): Promise<Awaited<T>> {
  if (typeof claims?.sub !== "string" || claims.sub === "") throw new TypeError("asUser needs the claims of a user (sub)");
  if (claims.role !== undefined && claims.role !== "authenticated") {
    throw new TypeError(`asUser runs as authenticated; got role ${String(claims.role)} (use asService for service work)`);
  }
  const tx = await sql.reserve();
  const setup = Promise.all([
    tx.unsafe("begin"),
    tx.unsafe(
      `select set_config('role', 'authenticated', true), ` +
        `set_config('request.jwt.claims', ${jsonLiteral({ ...claims, role: "authenticated" })}, true)`,
    ),
  ]);
  setup.catch(() => {}); // awaited below; an early throw of fn must not leave it unhandled
  try {
    const out = fn(tx);
    let result: Awaited<T>;
    if (isPendingQuery(out)) {
      // fn handed back a query it has not awaited: send it and COMMIT together.
      const [value] = await Promise.all([out, setup, tx.unsafe("commit")]);
      result = value as Awaited<T>;
    } else {
      result = await out;
      await setup;
      await tx.unsafe("commit");
    }
    return result;
  } catch (error) {
    // If BEGIN or the setup failed, that is the cause; fn's error would only be its consequence.
    const cause = await setup.then(() => error, (setupError) => setupError);
    await tx.unsafe("rollback").catch(() => {});
    throw cause;
  } finally {
    tx.release();
  }
}

/** A postgres.js query not sent yet (queries are lazy: sent on then/execute). */
function isPendingQuery(value: unknown): value is postgres.PendingQuery<postgres.Row[]> {
  return value instanceof Promise && typeof (value as { execute?: unknown }).execute === "function" &&
    typeof (value as { describe?: unknown }).describe === "function";
}
