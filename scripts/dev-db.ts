// A database for writing SQL: a fresh cluster with the bootstrap, the migrations and the seed,
// left running on the port given (never one of the stack's).
//   deno run -A scripts/dev-db.ts <home-dir> <port>      create it (<home-dir> must not hold one yet)
//   deno run -A scripts/dev-db.ts <home-dir> --remove    stop it and delete <home-dir>
import { join } from "node:path";
import { createThrowawayCluster, exists, removeCluster } from "./local-supabase/cluster.ts";

const [home, port] = Deno.args;
if (!home || !port || (port !== "--remove" && !/^\d+$/.test(port))) {
  console.error("usage: deno run -A scripts/dev-db.ts <home-dir> <port|--remove>");
  Deno.exit(2);
}
try {
  if (port === "--remove") {
    if (!(await exists(join(home, "data", "PG_VERSION")))) throw new Error(`${home} holds no cluster: not deleting it`);
    await removeCluster(home);
    console.log(`removed ${home}`);
  } else {
    const db = await createThrowawayCluster({ home, port: Number(port), seed: true });
    console.log(db.steps.join("\n"));
    console.log(db.cluster.url);
  }
} catch (e) {
  console.error(`dev-db: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
