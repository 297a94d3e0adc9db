// _shared/db-failure.ts: a failed database call becomes a fixed reason and a code, never a
// driver message; the deadline wins over a call that hangs.
import assert from "node:assert/strict";
import { classifyDatabaseError, DeadlineExceeded, withDeadline } from "../../supabase/functions/_shared/db-failure.ts";
import { SettingsError } from "../../supabase/functions/_shared/env.ts";

const withCode = (code: string, message = "connect ECONNREFUSED 10.0.0.7:5432 password=hunter2") =>
  Object.assign(new Error(message), { code });

Deno.test("db-failure: each failure class, with the code only", () => {
  assert.deepEqual(classifyDatabaseError(withCode("ECONNREFUSED")), { reason: "unreachable", code: "ECONNREFUSED" });
  assert.deepEqual(classifyDatabaseError(withCode("ENOTFOUND")), { reason: "unreachable", code: "ENOTFOUND" });
  assert.deepEqual(classifyDatabaseError(withCode("CONNECT_TIMEOUT")), { reason: "timeout", code: "CONNECT_TIMEOUT" });
  assert.deepEqual(classifyDatabaseError(withCode("28P01")), { reason: "authentication_failed", code: "28P01" });
  assert.deepEqual(classifyDatabaseError(withCode("57P03")), { reason: "unavailable", code: "57P03" });
  assert.deepEqual(classifyDatabaseError(withCode("53300")), { reason: "unavailable", code: "53300" });
  assert.deepEqual(classifyDatabaseError(withCode("08006")), { reason: "unavailable", code: "08006" });
  assert.deepEqual(classifyDatabaseError(withCode("42883")), { reason: "query_failed", code: "42883" });
  assert.deepEqual(classifyDatabaseError(new DeadlineExceeded()), { reason: "timeout" });
  assert.deepEqual(classifyDatabaseError(new SettingsError([{ name: "SUPABASE_DB_URL", status: "missing", reason: "is not set" }])), {
    reason: "not_configured",
  });
  // A code that is not a plain constant is not shown; nothing of the message ever is.
  assert.deepEqual(classifyDatabaseError(withCode("weird code: hunter2")), { reason: "unreachable" });
  assert.deepEqual(classifyDatabaseError("boom"), { reason: "unreachable" });
});

Deno.test("db-failure: withDeadline returns the result in time, else DeadlineExceeded, and leaves no timer", async () => {
  assert.equal(await withDeadline(1000, () => Promise.resolve(42)), 42);
  let release!: () => void;
  const hanging = new Promise<void>((resolve) => release = resolve);
  await assert.rejects(withDeadline(20, () => hanging.then(() => 1)), DeadlineExceeded);
  release();
  await assert.rejects(withDeadline(1000, () => Promise.reject(new Error("late"))), /late/);
});
