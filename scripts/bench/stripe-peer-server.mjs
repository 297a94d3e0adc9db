// The peer of `npm run bench -- stripe`: @supabase/stripe-sync-engine 0.48.5 (a devDependency)
// behind the smallest Node HTTP server its README implies: every POST body goes, raw, with its
// Stripe-Signature, to `processWebhook(raw, signature)`. Node, not Deno: the library is published
// for Node (pg, node:crypto), and that is how its users run it.
//
//   node scripts/bench/stripe-peer-server.mjs migrate          runs its migrations (schema `stripe`)
//   node scripts/bench/stripe-peer-server.mjs serve <port>     serves the webhook on 127.0.0.1:<port>
//
// Environment: PEER_DATABASE_URL (its own database), and for `serve` PEER_STRIPE_SECRET_KEY,
// PEER_STRIPE_WEBHOOK_SECRET, PEER_STRIPE_API_BASE (the fake Stripe: the library takes no API URL,
// so its Stripe client is replaced by one with the fake's host, port and protocol — the same SDK,
// options added), PEER_STRIPE_API_VERSION (the endpoint's version).
//
// Configured NOT to call the Stripe API where it lets us say so: revalidateObjectsViaStripeApi
// empty, autoExpandLists false, backfillRelatedEntities false. What it still calls (a completed
// checkout's line items, prices it has not stored) reaches the fake, which counts the calls.
//
// Answers: 200 {"received": true}; 400 when the signature does not verify (the library throws
// Stripe's StripeSignatureVerificationError); 500 with the error's message otherwise (its answer
// to an event type it does not handle, among others).
import { createServer } from "node:http";
import { createRequire } from "node:module";

// The CommonJS build: the ESM one's runMigrations resolves its folder with __dirname, which ESM lacks.
const require = createRequire(import.meta.url);
const { StripeSync, runMigrations } = require("@supabase/stripe-sync-engine");
const Stripe = require("stripe");

export const PEER_READY = "@@peer-listening";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`stripe-peer-server: ${name} is not set`);
  return value;
}

async function migrate() {
  const errors = [];
  // runMigrations logs its failures instead of throwing: collect them to fail loudly.
  const logger = { info() {}, warn() {}, error(err, msg) { errors.push(`${msg ?? ""} ${err?.message ?? err}`); } };
  await runMigrations({ databaseUrl: env("PEER_DATABASE_URL"), schema: "stripe", logger });
  if (errors.length) throw new Error(`stripe-sync-engine migrations failed: ${errors.join("; ")}`);
  console.log("stripe-sync-engine migrations applied");
}

function serve(port) {
  const apiBase = new URL(env("PEER_STRIPE_API_BASE"));
  const apiVersion = env("PEER_STRIPE_API_VERSION");
  const sync = new StripeSync({
    poolConfig: { connectionString: env("PEER_DATABASE_URL"), max: 10 },
    schema: "stripe",
    stripeSecretKey: env("PEER_STRIPE_SECRET_KEY"),
    stripeWebhookSecret: env("PEER_STRIPE_WEBHOOK_SECRET"),
    stripeApiVersion: apiVersion,
    revalidateObjectsViaStripeApi: [],
    autoExpandLists: false,
    backfillRelatedEntities: false,
  });
  // Its constructor builds `new Stripe(key, {apiVersion, appInfo})`, always api.stripe.com: the same
  // client, pointed at the fake.
  sync.stripe = new Stripe(env("PEER_STRIPE_SECRET_KEY"), {
    apiVersion,
    appInfo: { name: "Stripe Postgres Sync" },
    host: apiBase.hostname,
    port: Number(apiBase.port),
    protocol: apiBase.protocol.replace(":", ""),
  });

  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const reply = (status, body) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method !== "POST") return reply(405, { error: "method_not_allowed" });
      try {
        await sync.processWebhook(Buffer.concat(chunks), req.headers["stripe-signature"] ?? "");
        reply(200, { received: true });
      } catch (error) {
        if (error instanceof Stripe.errors.StripeSignatureVerificationError) return reply(400, { error: "invalid_signature" });
        console.error(`stripe-peer-server: ${error?.message ?? error}`);
        reply(500, { error: String(error?.message ?? error).slice(0, 500) });
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, "127.0.0.1", () => console.log(`${PEER_READY} ${server.address().port}`));
  const stop = () => server.close(() => sync.close().finally(() => process.exit(0)));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

const [command, port] = process.argv.slice(2);
if (command === "migrate") {
  migrate().catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
} else if (command === "serve") {
  serve(Number(port ?? 0));
} else {
  console.error("usage: node scripts/bench/stripe-peer-server.mjs migrate | serve <port>");
  process.exit(2);
}
