// A gateway started here with startGateway() (not the orchestrator's): its own JWT secret and a
// public URL as behind a tunnel; close() must stop every worker process and nginx.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startGateway } from "../../scripts/local-supabase/gateway/main.ts";
import { type EchoReply, header, mintJwt, waitFor } from "../_helpers.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/functions", import.meta.url));

function processExists(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT"); // harmless probe: fails once the process is gone
    return true;
  } catch {
    return false;
  }
}

Deno.test("lifecycle: startGateway serves with its own settings and close() leaves no worker behind", async () => {
  const jwtSecret = `lifecycle-test-secret-${crypto.randomUUID()}`;
  const lines: string[] = [];
  const gateway = await startGateway({
    hostname: "127.0.0.1",
    port: 0,
    functionSources: [{ dir: FIXTURES, configFile: `${FIXTURES}/config.toml` }],
    envFiles: [`${FIXTURES}/.env.test`],
    netWorker: false,
    jwtSecret,
    anonKey: "lifecycle-anon-key",
    functionsPublicUrl: "https://hooks.example.test/functions/v1",
    requestLog: (line) => lines.push(line),
    log: () => {},
  });
  let closed = false;
  try {
    assert.match(gateway.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const states = [...gateway.functions.values()].map((w) => w.state);
    assert.ok(states.every((s) => s === "up"), `workers: ${states}`);

    const token = await mintJwt({ role: "anon" }, { secret: jwtSecret });
    const res = await fetch(`${gateway.url}/functions/v1/echo/hook?b=2&a=1`, {
      headers: { authorization: `Bearer ${token}`, "x-request-id": "lifecycle-1" },
    });
    const reply: EchoReply = await res.json();
    assert.equal(res.status, 200);
    assert.equal(reply.env.functionsPublicUrl, "https://hooks.example.test/functions/v1");
    assert.equal(reply.publicUrl, "https://hooks.example.test/functions/v1/echo/hook?b=2&a=1");
    assert.equal(reply.env.supabaseUrl, gateway.url, "SUPABASE_URL defaults to the gateway's own URL");
    assert.equal(header(reply, "x-request-id"), "lifecycle-1");

    // One log line per request: time, request id, method, path, status, duration, function. nginx
    // writes it once the response is sent, so it may arrive just after the client has the answer.
    const logged = await waitFor("the request's log line", () => lines.find((l) => l.includes(" lifecycle-1 ")));
    assert.match(logged, /^\d{4}-\d\d-\d\dT\S+Z lifecycle-1 GET \/functions\/v1\/echo\/hook 200 [\d.]+ms echo$/);

    const workerPids = await Promise.all(
      ["echo", "echo-public", "boom", "crash", "bytes"].map(async (name) => {
        const r = await fetch(`${gateway.url}/functions/v1/${name}${name === "boom" ? "?mode=ok" : ""}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        const body = await r.text();
        return name === "bytes" ? undefined : JSON.parse(body).pid as number;
      }),
    );
    const pidsToCheck = workerPids.filter((p): p is number => p !== undefined);
    assert.ok(pidsToCheck.every(processExists));

    await gateway.close();
    closed = true;
    assert.deepEqual(pidsToCheck.filter(processExists), [], "worker processes survived close()");
    await assert.rejects(fetch(`${gateway.url}/functions/v1/echo-public`), "the gateway stopped listening");
  } finally {
    if (!closed) await gateway.close();
  }
});
