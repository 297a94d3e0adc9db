// Database calls of the operations functions (system-status, db-status), which must answer even
// when the database does not: a deadline over the whole call, connection included, and the
// failure reduced to a fixed reason plus a driver code or SQLSTATE, never a driver message (which
// may name hosts or quote values).
import { SettingsError } from "./env.ts";

/** Why a database call failed. */
export interface DatabaseFailure {
  reason: "not_configured" | "unreachable" | "timeout" | "authentication_failed" | "unavailable" | "query_failed";
  /** A driver constant (ECONNREFUSED, CONNECT_TIMEOUT) or a SQLSTATE (42883): safe to show. */
  code?: string;
}

/** The call did not finish within its deadline. */
export class DeadlineExceeded extends Error {
  constructor() {
    super("the database call did not finish in time");
    this.name = "DeadlineExceeded";
  }
}

/** The failure class of an error thrown by a database call. */
export function classifyDatabaseError(error: unknown): DatabaseFailure {
  if (error instanceof DeadlineExceeded) return { reason: "timeout" };
  if (error instanceof SettingsError) return { reason: "not_configured" };
  const raw = typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined;
  const code = raw && /^[A-Z0-9_]{1,40}$/.test(raw) ? raw : undefined;
  const withCode = code ? { code } : {};
  if (code === "CONNECT_TIMEOUT") return { reason: "timeout", ...withCode };
  if (code === "28P01" || code === "28000") return { reason: "authentication_failed", ...withCode };
  // Shutting down, starting up, too many connections, connection exceptions (class 08).
  if (code && /^(57P0[1-3]|53300|53400|08[0-9A-Z]{3})$/.test(code)) return { reason: "unavailable", ...withCode };
  // Any other SQLSTATE: the database answered, our statement failed (e.g. a migration not applied).
  if (code && /^[0-9A-Z]{5}$/.test(code) && /[0-9]/.test(code)) return { reason: "query_failed", ...withCode };
  return { reason: "unreachable", ...withCode };
}

/** `work()`, or DeadlineExceeded after `ms`; a late failure of `work` is not left unhandled. */
export async function withDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), ms);
  });
  const running = work();
  running.catch(() => {});
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
