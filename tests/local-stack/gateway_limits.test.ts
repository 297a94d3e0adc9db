// Edge-runtime limits as hosted Supabase applies them, on gateways started here with shortened
// limits (tests/fixtures/limits): a function that does not answer in time gets 504 and its worker
// keeps serving; a worker over its memory limit gets 546 WORKER_LIMIT and is restarted; a function
// that throws while booting gets 503 BOOT_ERROR. Bodies as the hosted runtime sends them
// (supabase/cli apps/cli-go/internal/functions/serve/templates/main.ts; Kong's 504).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Gateway, startGateway } from "../../scripts/local-supabase/gateway/main.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/limits", import.meta.url));

async function withGateway(
  limits: { requestTimeoutMs?: number; memoryLimitMb?: number },
  fn: (gateway: Gateway, logs: string[]) => Promise<void>,
) {
  const logs: string[] = [];
  const gateway = await startGateway({
    hostname: "127.0.0.1",
    port: 0,
    functionSources: [{ dir: FIXTURES, configFile: `${FIXTURES}/config.toml` }],
    netWorker: false,
    ...limits,
    requestLog: () => {},
    log: (line) => logs.push(line),
  });
  try {
    await fn(gateway, logs);
  } finally {
    await gateway.close();
  }
}

async function call(gateway: Gateway, name: string, rest = "", init: RequestInit = {}) {
  const res = await fetch(`${gateway.url}/functions/v1/${name}${rest}`, init);
  const text = await res.text();
  return { res, text, json: () => JSON.parse(text) };
}

Deno.test("limits: a function slower than the request timeout -> 504, and its worker keeps serving", async () => {
  await withGateway({ requestTimeoutMs: 1_000 }, async (gateway) => {
    const before = await call(gateway, "slow");
    assert.equal(before.res.status, 200, before.text);

    const late = await call(gateway, "slow", "?ms=4000", { headers: { "x-request-id": "slow-test-0001" } });
    assert.equal(late.res.status, 504, late.text);
    assert.deepEqual(late.json(), { message: "The upstream server is timing out" });
    assert.equal(late.res.headers.get("x-request-id"), "slow-test-0001");

    const after = await call(gateway, "slow");
    assert.equal(after.res.status, 200, after.text);
    assert.equal(after.json().pid, before.json().pid, "the same worker process serves on");
  });
});

for (const mode of ["heap", "external"]) {
  Deno.test(`limits: a worker over its memory limit (${mode}) -> 546 WORKER_LIMIT, and it is restarted`, async () => {
    await withGateway({ memoryLimitMb: 64 }, async (gateway, logs) => {
      const before = await call(gateway, "hog");
      assert.equal(before.res.status, 200, before.text);

      // POST, as webhooks: never retried by the gateway once a worker took it.
      const hog = await call(gateway, "hog", `?mode=${mode}`, { method: "POST", headers: { "x-request-id": "hog-1" } });
      assert.equal(hog.res.status, 546, hog.text);
      assert.deepEqual(hog.json(), {
        code: "WORKER_LIMIT",
        message: "Worker failed to respond due to a resource limit (please check logs)",
      });
      assert.equal(hog.res.headers.get("x-request-id"), "hog-1");

      // The next request boots a new worker for it, as the hosted runtime does.
      const after = await call(gateway, "hog");
      assert.equal(after.res.status, 200, after.text);
      assert.notEqual(after.json().pid, before.json().pid, "a new worker process");
      assert.ok(logs.some((l) => l.includes("[hog] worker over its memory limit")), logs.join("\n"));
    });
  });
}

Deno.test("limits: a function that throws while booting -> 503 BOOT_ERROR; the others serve", async () => {
  await withGateway({}, async (gateway, logs) => {
    assert.notEqual(gateway.functions.get("broken-boot")?.state, "up");
    for (const method of ["GET", "POST"]) {
      const r = await call(gateway, "broken-boot", "", { method, headers: { "x-request-id": "boot-1" } });
      assert.equal(r.res.status, 503, r.text);
      assert.deepEqual(r.json(), { code: "BOOT_ERROR", message: "Worker failed to boot (please check logs)" });
      assert.equal(r.res.headers.get("x-request-id"), "boot-1");
    }
    assert.ok(logs.some((l) => l.startsWith("[broken-boot]") && l.includes("SyntaxError")), "the cause is logged");
    const other = await call(gateway, "slow");
    assert.equal(other.res.status, 200, other.text);
  });
});
