// The stack's ports: read from supabase/config.toml (overridable), and "is this port taken?"
// answered by whether something listens, not by whether a bind happens to fail. A connection
// closing on a port (TIME-WAIT) makes bind fail for up to 60 s although no program holds it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort } from "../../scripts/local-supabase/cluster.ts";
import { CONFIG_TOML, configuredPorts, probePort, waitForPort } from "../../scripts/local-supabase/ports.ts";

/**
 * Leaves a client-side TIME-WAIT socket on a loopback port and returns that port: the client
 * closes first, so its (ephemeral) port is the one left in TIME-WAIT, with nothing listening on it.
 */
async function leaveTimeWait(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port });
  const server = await listener.accept();
  const port = (client.localAddr as Deno.NetAddr).port;
  client.close();
  assert.equal(await server.read(new Uint8Array(1)), null, "the client's FIN reached the server");
  server.close();
  listener.close();
  // The server's FIN moves the client's socket to TIME-WAIT; ss shows it once that is done.
  for (let attempt = 0; attempt < 100; attempt++) {
    const out = await new Deno.Command("ss", { args: ["-Htan", "state", "time-wait", `sport = :${port}`] }).output();
    if (new TextDecoder().decode(out.stdout).trim()) return port;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no TIME-WAIT socket appeared on port ${port}`);
}

Deno.test("ports: a port left in TIME-WAIT by an old connection is not reported as taken", async () => {
  const port = await leaveTimeWait();
  // The premise: binding it fails right now (this is what made the old check say "taken").
  assert.throws(() => Deno.listen({ hostname: "127.0.0.1", port }).close(), Deno.errors.AddrInUse);
  assert.equal(await probePort(port), "closing");
  // waitForPort waits for such a port instead of blaming another program (with no time to wait,
  // it gives up with a message saying nothing listens).
  await assert.rejects(waitForPort(port, "test", { maxWaitMs: 0, log: () => {} }), /though nothing listens on it/);
});

Deno.test("ports: a port something listens on is taken; an unused one is free", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    assert.equal(await probePort(port), "in-use");
    await assert.rejects(
      waitForPort(port, "database", { override: "STACK_DB_PORT", log: () => {} }),
      new RegExp(`port ${port} \\(database\\) is taken by another program \\(set STACK_DB_PORT`),
    );
  } finally {
    listener.close();
  }
  const unused = freePort();
  assert.equal(await probePort(unused), "free");
  await waitForPort(unused, "test", { maxWaitMs: 0, log: () => {} });
});

Deno.test("ports: read from config.toml's [api] and [db] sections; STACK_*_PORT override them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "config.toml");
    await Deno.writeTextFile(
      config,
      `project_id = "x"\n[api]\nport = 61001\n[db]\nport = 61002\nshadow_port = 61000\n`,
    );
    const none = () => undefined;
    assert.deepEqual(await configuredPorts(config, none), { api: 61001, db: 61002 });
    const overrides: Record<string, string> = { STACK_API_PORT: "55060", STACK_DB_PORT: "55061" };
    assert.deepEqual(await configuredPorts(config, (n) => overrides[n]), { api: 55060, db: 55061 });
    await assert.rejects(
      configuredPorts(config, (n) => (n === "STACK_DB_PORT" ? "5432x" : undefined)),
      /STACK_DB_PORT must be a TCP port/,
    );
    await Deno.writeTextFile(config, `[api]\nport = 61001\n`);
    await assert.rejects(configuredPorts(config, none), /\[db\] port in .*config\.toml must be a TCP port/);
    // The project's own config has both.
    const project = await configuredPorts(CONFIG_TOML, none);
    assert.ok(Number.isInteger(project.api) && Number.isInteger(project.db) && project.api !== project.db);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
