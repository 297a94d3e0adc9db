// Every edge function's deploy bundle (its module graph: local modules plus whole npm package
// folders, brotli-compressed as the CLI uploads it; scripts/lib/module-graph.ts) stays under the
// documented budget, 1 MB below hosted Supabase's 20 MB limit; and no function pulls in the
// `twilio` SDK, whose package alone is over 16 MB.
import assert from "node:assert/strict";
import { functionNames, mb, moduleGraphSize, UPLOAD_BUDGET_BYTES } from "../../scripts/lib/module-graph.ts";

Deno.test("functions: each deploy bundle is under the budget, without the twilio SDK", async () => {
  const names = await functionNames();
  for (const expected of ["send-sms", "sms-inbound", "sms-status", "voice-inbound"]) assert.ok(names.includes(expected), expected);
  for (const name of names) {
    const graph = await moduleGraphSize(name);
    const parts = graph.packages.map((p) => `${p.name} ${mb(p.bytes)}`).join(", ");
    assert.ok(graph.own > 0 && graph.packages.length > 0 && graph.upload > 0, `${name}: nothing measured`);
    assert.ok(graph.upload < graph.total, `${name}: the compressed bundle is not smaller than its files`);
    assert.ok(
      graph.upload <= UPLOAD_BUDGET_BYTES,
      `${name}: ${mb(graph.upload)} compressed (${mb(graph.total)} of files) is over the budget of ${mb(UPLOAD_BUDGET_BYTES)} (${parts})`,
    );
    assert.ok(!graph.packages.some((p) => p.name.startsWith("twilio@")), `${name} bundles the twilio SDK: ${parts}`);
  }
});
