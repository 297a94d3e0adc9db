// Serves one function "directly", the baseline of `npm run bench -- gateway`: the function's own
// handler on Deno.serve, with nothing in front of it (no gateway, no worker wrapper). Only the
// address is forced, to a loopback port, and a ready line is printed.
//
//   deno run -A --config deno.json scripts/bench/serve-direct.ts <entrypoint> <port>
import { pathToFileURL } from "node:url";

export const DIRECT_READY = "@@bench-direct-listening";

if (import.meta.main) {
  const [entrypoint, port] = Deno.args;
  const realServe = Deno.serve.bind(Deno) as (options: Deno.ServeTcpOptions, handler: Deno.ServeHandler) => unknown;
  (Deno as { serve: unknown }).serve = (handler: Deno.ServeHandler) =>
    realServe({
      hostname: "127.0.0.1",
      port: Number(port),
      onListen: ({ port }) => console.log(`${DIRECT_READY} ${port}`),
    }, handler);
  await import(pathToFileURL(entrypoint).href);
}
