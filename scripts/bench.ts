// `npm run bench -- <name> [options]`: runs one benchmark. Benchmarks build their own throwaway
// cluster and are never part of `npm test`.
//   purge   retention purge of sms_alerts vs a plain DELETE, with a concurrent inserter
//           (scripts/bench/purge.ts; `--rows=N` expired + N live rows, default 1000000)
//   gateway the webhook path: no-op and one-insert functions through the gateway and served
//           directly, and pgbench -N (scripts/bench/gateway.ts; `--rounds=R`, `--seconds=S`)
//   sms     signed inbound STOP/START and status callbacks through the gateway to sms-inbound and
//           sms-status, and pgbench -N (scripts/bench/sms.ts; `--rounds=R`, `--seconds=S`)
//   billing-sync  billing-sync's Stripe API calls for N objects per list against ceil(N/100) per
//           list, time and CPU (scripts/bench/billing-sync.ts; `--objects=N` default 1050,
//           `--rate=R` requests/s default 10)
//   stripe  a signed Stripe event stream to our stripe-webhook and to @supabase/stripe-sync-engine,
//           and pgbench -N (scripts/bench/stripe.ts; `--events=N`, `--rounds=R`, `--connections=C`, `--seconds=S`,
//           `--seed=K`, `--no-prelink`, `--profile`)
const benchmarks: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  purge: () => import("./bench/purge.ts"),
  gateway: () => import("./bench/gateway.ts"),
  sms: () => import("./bench/sms.ts"),
  "billing-sync": () => import("./bench/billing-sync.ts"),
  stripe: () => import("./bench/stripe.ts"),
};

const [name, ...args] = Deno.args;
const load = name === undefined ? undefined : benchmarks[name];
if (!load) {
  console.error(`usage: npm run bench -- <${Object.keys(benchmarks).join("|")}> [options]`);
  Deno.exit(2);
}
try {
  await (await load()).main(args);
} catch (e) {
  console.error(`bench ${name} failed: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
