// Failures: a function that throws or rejects, a worker that dies, unknown functions and paths.
// (Limits: gateway_limits.test.ts.)
import assert from "node:assert/strict";
import { delay, env, functionUrl } from "../_helpers.ts";

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { res, text };
}

function assertJsonError(r: { res: Response; text: string }, status: number) {
  assert.equal(r.res.status, status, r.text);
  assert.match(r.res.headers.get("content-type") ?? "", /application\/json/);
  const body = JSON.parse(r.text);
  assert.equal(body.request_id, r.res.headers.get("x-request-id"));
  assert.ok(body.request_id);
  return body;
}

Deno.test("errors: a function that throws -> 500 JSON with the request id, no stack; it keeps serving", async () => {
  const before = await get(functionUrl("boom", "?mode=ok"));
  assert.equal(before.res.status, 200, before.text);

  const thrown = await get(functionUrl("boom", "?mode=throw"), { "x-request-id": "boom-test-0001" });
  assert.deepEqual(assertJsonError(thrown, 500), { error: "internal_error", request_id: "boom-test-0001" });
  assert.doesNotMatch(thrown.text, /boom fixture|at handler|\.ts:/, "no message or stack in the body");

  const rejected = await get(functionUrl("boom", "?mode=reject"));
  assert.equal(assertJsonError(rejected, 500).error, "internal_error");

  const after = await get(functionUrl("boom", "?mode=ok"));
  assert.equal(after.res.status, 200, after.text);
  assert.equal(JSON.parse(after.text).pid, JSON.parse(before.text).pid, "same worker process: it did not die");
});

Deno.test("errors: a failing background task or a stray rejection does not kill the worker", async () => {
  const background = await get(functionUrl("boom", "?mode=background"));
  assert.equal(background.res.status, 200, background.text);
  const pid = JSON.parse(background.text).pid;
  await delay(200); // let the rejections surface in the worker
  const after = await get(functionUrl("boom", "?mode=ok"));
  assert.equal(after.res.status, 200, after.text);
  assert.equal(JSON.parse(after.text).pid, pid, "same worker process");
});

Deno.test("errors: unknown function -> 404 JSON", async () => {
  for (const name of ["no-such-function", "_shared", "disabled"]) {
    const r = await get(functionUrl(name), { authorization: `Bearer ${env.anonKey}` });
    assert.equal(assertJsonError(r, 404).code, "NOT_FOUND", name);
  }
});

Deno.test("errors: paths outside /functions/v1 -> 404 JSON", async () => {
  for (const path of ["/", "/rest/v1/tenants", "/functions/v2/echo", "/functions/v1"]) {
    const r = await get(`${env.supabaseUrl}${path}`);
    assertJsonError(r, 404);
  }
});

Deno.test("errors: a worker that dies mid-request -> 500 WORKER_ERROR as hosted; the next request gets a new worker", async () => {
  const first = await get(functionUrl("crash"));
  assert.equal(first.res.status, 200, first.text);
  const oldPid = JSON.parse(first.text).pid;

  // POST, as webhooks: a request a worker took is never re-sent to another one.
  const died = await fetch(functionUrl("crash", "?exit=1"), { method: "POST", headers: { "x-request-id": "crash-1" } });
  const diedText = await died.text();
  assert.equal(died.status, 500, diedText);
  // The hosted runtime's body (supabase/cli functions/serve/templates/main.ts), no stack.
  assert.deepEqual(JSON.parse(diedText), {
    code: "WORKER_ERROR",
    message: "Function exited due to an error (please check logs)",
  });
  assert.equal(died.headers.get("x-request-id"), "crash-1");

  // As the hosted runtime boots a new worker for the next request, the gateway restarts it at once
  // for the next request, which then succeeds.
  const next = await get(functionUrl("crash"));
  assert.equal(next.res.status, 200, next.text);
  assert.notEqual(JSON.parse(next.text).pid, oldPid);
});
