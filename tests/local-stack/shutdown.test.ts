// Run-once shutdown (scripts/lib/shutdown.ts), as the test runner, the stack and the benchmarks use
// it: undo steps in reverse order, once, whoever asks; a step registered late runs at once.
import assert from "node:assert/strict";
import { createShutdown } from "../../scripts/lib/shutdown.ts";

Deno.test("shutdown: steps run once, last first; a failing step does not stop the others", async () => {
  const ran: string[] = [];
  const logged: string[] = [];
  const shutdown = createShutdown((line) => logged.push(line));
  shutdown.defer(() => ran.push("cluster"));
  shutdown.defer(() => {
    throw new Error("gateway already gone");
  });
  shutdown.defer(async () => {
    await new Promise((r) => setTimeout(r, 10));
    ran.push("workers");
  });
  assert.equal(shutdown.started, false);
  await Promise.all([shutdown.run(), shutdown.run(), shutdown.run()]);
  assert.deepEqual(ran, ["workers", "cluster"]);
  assert.deepEqual(logged, ["cleanup: gateway already gone"]);
  assert.equal(shutdown.started, true);
  assert.equal(shutdown.interrupted, false);

  // Something started while shutting down is undone at once.
  shutdown.defer(() => ran.push("late"));
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(ran, ["workers", "cluster", "late"]);
  await shutdown.run();
  assert.deepEqual(ran, ["workers", "cluster", "late"], "nothing runs twice");
});
