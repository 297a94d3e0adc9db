// Env isolation: a function sees its env files' values and the platform's SUPABASE_* values, and
// nothing else of the gateway's environment (its JWT secret, its port, the machine's variables).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseDotenv, RUNTIME_ENV_NAMES } from "../../scripts/local-supabase/gateway/config.ts";
import { type EchoReply, env, functionUrl } from "../_helpers.ts";

const FIXTURE_ENV_FILE = fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url));
const PROJECT_ENV_FILE = fileURLToPath(new URL("../../supabase/functions/.env", import.meta.url));

async function echoEnv(): Promise<EchoReply["env"]> {
  const res = await fetch(functionUrl("echo-public"));
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as EchoReply).env;
}

Deno.test("env: values from the env file reach the function, parsed as the Supabase CLI does", async () => {
  const seen = await echoEnv();
  assert.equal(seen.fixtureSecret, "fixture-secret-4a7c");
  assert.equal(seen.fixtureExported, "exported-value");
  assert.equal(seen.fixtureQuoted, "two words # not a comment\tend");
  assert.equal(seen.fixtureSingle, "literal \\n kept");
  assert.equal(seen.fixtureInline, "value");
});

Deno.test("env: the platform's SUPABASE_* values win over env files; FUNCTIONS_PUBLIC_URL is set", async () => {
  const seen = await echoEnv();
  assert.equal(seen.supabaseUrl?.replace(/\/+$/, ""), env.supabaseUrl, "the env file's SUPABASE_URL is ignored");
  assert.ok(seen.anonKeySet && seen.serviceRoleKeySet && seen.dbUrlSet);
  const expected = Deno.env.get("FUNCTIONS_PUBLIC_URL") ?? `${env.supabaseUrl}/functions/v1`;
  assert.equal(seen.functionsPublicUrl, expected);
});

Deno.test("env: nothing else of the gateway's environment is visible", async () => {
  const seen = await echoEnv();
  assert.equal(seen.jwtSecretVisible, false, "SUPABASE_JWT_SECRET leaked into a function");
  assert.equal(seen.gatewayPortVisible, false, "GATEWAY_PORT leaked into a function");
  // The project's own functions env file may be passed to the gateway as well: its names are allowed.
  const projectEnv = await Deno.readTextFile(PROJECT_ENV_FILE).catch(() => "");
  const allowed = new Set<string>([
    ...RUNTIME_ENV_NAMES,
    ...Object.keys(parseDotenv(await Deno.readTextFile(FIXTURE_ENV_FILE))),
    ...Object.keys(parseDotenv(projectEnv)).filter((name) => !name.startsWith("SUPABASE_")),
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_DB_URL",
    "FUNCTIONS_PUBLIC_URL",
    // The fakes' env file the test runner adds (scripts/fakes/README.md).
    "TWILIO_API_BASE",
    "STRIPE_API_BASE",
    "SUPABASE_PUBLISHABLE_KEYS",
    "SUPABASE_SECRET_KEYS",
    "SUPABASE_JWKS",
  ]);
  const forbidden = ["SUPABASE_JWT_SECRET", "GATEWAY_HOST", "GATEWAY_PORT", "PGPASSWORD", "SHELL", "PWD"];
  for (const name of forbidden) assert.ok(!seen.names.includes(name), `${name} leaked into a function`);
  // Strict: only the runtime's needs, the env file's names and the platform's values.
  assert.deepEqual(seen.names.filter((name) => !allowed.has(name)), []);
});
