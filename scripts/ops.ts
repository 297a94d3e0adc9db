// `npm run ops -- <command>`: the operations runbook as commands (scripts/ops/README.md).
// Thin entry: everything is in scripts/ops/ (main.ts dispatches, registry.ts lists the commands).
import { main } from "./ops/main.ts";

Deno.exit(await main(Deno.args));
