// usage: deno run -A scripts/dev-db.ts <home-dir> <port>   -> fresh cluster, bootstrap, migrations, seed
import { clusterAt, initCluster, prepareDatabase, startCluster } from "./local-supabase/cluster.ts";
const [home, port] = Deno.args;
await Deno.mkdir(home, { recursive: true });
const c = clusterAt(home, Number(port));
await initCluster(c, { durable: false });
await startCluster(c);
console.log((await prepareDatabase(c, { seed: true })).join("\n"));
console.log(c.url);
