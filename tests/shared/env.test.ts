// _shared/env.ts: every setting validated once, typed, with reasons that never quote a value.
// No network, no Deno.env: each test feeds a SettingsSource from a plain object.
import assert from "node:assert/strict";
import {
  SETTING_NAMES,
  type SettingName,
  SettingsError,
  SettingsSource,
} from "../../supabase/functions/_shared/env.ts";
import { generateLocalProviderSettings } from "../../scripts/local-supabase/local-config.ts";
import { buildWorkerEnv, parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { loadOrCreateStackKeys } from "../../scripts/local-supabase/keys.ts";

const b64url = (value: unknown) => btoa(JSON.stringify(value)).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
const fakeJwt = (claims: Record<string, unknown>) => `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(claims)}.c2lnbmF0dXJl`;

/** What the platform gives every function locally (fake, well-formed). */
const PLATFORM: Record<string, string> = {
  SUPABASE_URL: "http://127.0.0.1:54321",
  SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
  SUPABASE_ANON_KEY: fakeJwt({ role: "anon", iss: "supabase" }),
  SUPABASE_SERVICE_ROLE_KEY: fakeJwt({ role: "service_role", iss: "supabase" }),
  SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: "sb_publishable_fixture0123456789" }),
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: "sb_secret_fixture0123456789abcdef" }),
  SUPABASE_JWKS: JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "eA", y: "eQ", kid: "k1", alg: "ES256" }] }),
};

function sourceOf(values: Record<string, string | undefined>): SettingsSource {
  return new SettingsSource((name) => values[name]);
}

function settingsErrorOf(fn: () => unknown): SettingsError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SettingsError, String(error));
    return error;
  }
  assert.fail("expected a SettingsError");
}

/** Public parts of a format (prefixes, JSON punctuation), which a reason may name: not a leak. */
const FORMAT_PARTS = /(sk|rk|pk)_(test|live)_|whsec_|sb_secret_|sb_publishable_|price_|https?:\/\/|["{}:,\[\] ]/g;

/** Fails when `text` holds the value or any 8-character slice of its non-format parts. */
function assertNoFragment(text: string, value: string, what: string): void {
  assert.ok(!text.includes(value), `${what} holds the value`);
  for (const part of value.split(FORMAT_PARTS).filter((p) => p && p.length >= 8)) {
    for (let i = 0; i + 8 <= part.length; i++) {
      const slice = part.slice(i, i + 8);
      assert.ok(!text.includes(slice), `${what} leaks a fragment of the value (${slice})`);
    }
  }
}

Deno.test("env: the local stack's generated settings and the platform's values are all valid", () => {
  const source = sourceOf({ ...PLATFORM, ...generateLocalProviderSettings() });
  const report = source.report();
  const wrong = report.filter((r) => r.status === "malformed" || (r.status === "missing" && !r.optional));
  assert.deepEqual(wrong, []);
  const all = source.get(...SETTING_NAMES);
  assert.equal(all.STRIPE_WEBHOOK_SECRET.length, 1);
  assert.equal(all.SUPABASE_URL, "http://127.0.0.1:54321");
  assert.equal(all.STRIPE_API_BASE, undefined, "an unset optional setting is undefined");
});

Deno.test("env: the platform values a worker of the local stack receives (its real keys and JWKS) are all valid", async () => {
  const dir = await Deno.makeTempDir({ prefix: "env-keys-" });
  try {
    const keys = await loadOrCreateStackKeys(dir);
    const workerEnv = buildWorkerEnv(generateLocalProviderSettings(), {
      SUPABASE_URL: "http://127.0.0.1:54321",
      SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
      SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
      SUPABASE_SECRET_KEY: keys.secretKey,
      SUPABASE_JWKS: JSON.stringify(keys.jwks),
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
    }, {});
    const report = sourceOf(workerEnv).report();
    assert.deepEqual(report.filter((r) => r.status === "malformed" || (r.status === "missing" && !r.optional)), []);
    // auth.ts takes exactly these shapes (AuthConfig): wiring is a rename.
    const s = sourceOf(workerEnv).get("SUPABASE_SECRET_KEYS", "SUPABASE_JWKS", "SUPABASE_SERVICE_ROLE_KEY");
    assert.deepEqual(s.SUPABASE_SECRET_KEYS, { default: keys.secretKey });
    assert.ok(s.SUPABASE_JWKS.keys.length >= 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("env: typed values: webhook secrets as a list, key sets as objects, URLs without trailing slash", () => {
  const source = sourceOf({
    ...PLATFORM,
    STRIPE_WEBHOOK_SECRET: "whsec_oldOldOld0123456789, whsec_newNewNew0123456789",
    APP_URL: "https://app.example.test/",
    STRIPE_API_BASE: "http://127.0.0.1:54400/",
  });
  const s = source.get("STRIPE_WEBHOOK_SECRET", "SUPABASE_SECRET_KEYS", "SUPABASE_JWKS", "APP_URL", "STRIPE_API_BASE");
  assert.deepEqual(s.STRIPE_WEBHOOK_SECRET, ["whsec_oldOldOld0123456789", "whsec_newNewNew0123456789"]);
  assert.deepEqual(s.SUPABASE_SECRET_KEYS, { default: "sb_secret_fixture0123456789abcdef" });
  assert.equal(s.SUPABASE_JWKS.keys[0].kty, "EC");
  assert.equal(s.APP_URL, "https://app.example.test");
  assert.equal(s.STRIPE_API_BASE, "http://127.0.0.1:54400");
  assert.equal(sourceOf({ ...PLATFORM, DB_SIZE_QUOTA_MB: "8192" }).get("DB_SIZE_QUOTA_MB").DB_SIZE_QUOTA_MB, 8192);
  assert.equal(sourceOf(PLATFORM).get("DB_SIZE_QUOTA_MB").DB_SIZE_QUOTA_MB, undefined, "optional: the status uses its default");
});

// [setting, malformed value, words the reason must hold]
const MALFORMED: [SettingName, string, RegExp][] = [
  ["STRIPE_SECRET_KEY", ["pk", "live", "51FixtureOnlyNotARealKey000"].join("_"), /publishable.*sk_ or rk_/],
  ["STRIPE_SECRET_KEY", "whatever_1234567890abcdefghij", /must start with sk_ or rk_/],
  ["STRIPE_SECRET_KEY", "sk_prod_1234567890abcdefghij", /sk_test_ or sk_live_/],
  ["STRIPE_SECRET_KEY", "sk_test_has spaces and-dashes-0123", /letters, digits and underscores/],
  ["STRIPE_WEBHOOK_SECRET", "whsec_fixture0123456789,", /empty entry/],
  ["STRIPE_WEBHOOK_SECRET", "whsec_fixture0123456789,secret_fixture0123456789", /whsec_/],
  ["STRIPE_PRICE_MONTHLY", "prod_FixtureMonthly01", /price_/],
  ["STRIPE_ACCOUNT_COUNTRY", "Canada", /two-letter/],
  ["TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcde", /AC followed by 32/], // 31 hex
  ["TWILIO_ACCOUNT_SID", "SK0123456789abcdef0123456789abcdef", /AC followed by 32/],
  ["TWILIO_AUTH_TOKEN", "0123456789ABCDEF0123456789ABCDEF", /32 lower-case hexadecimal/],
  ["TWILIO_MESSAGING_SERVICE_SID", "MGzz23456789abcdef0123456789abcdef", /MG followed by 32/],
  ["TWILIO_PHONE_NUMBER", "514-555-0100", /E\.164/],
  ["OWNER_MOBILE", "+1 514 555 0199", /E\.164/],
  ["PUBLIC_CONTACT_NUMBER", "+10005550100", /not a valid phone number/],
  ["APP_URL", "http://app.example.test", /https/],
  ["APP_URL", "not a url at all", /absolute URL/],
  ["SUPABASE_URL", "https://user:pw0123456789@x.example.test", /credentials/],
  ["FUNCTIONS_PUBLIC_URL", "https://tunnel.example.test/functions/v1?token=abcdef0123", /query string/],
  ["STRIPE_API_BASE", "https://api.stripe.com", /loopback/],
  ["TWILIO_API_BASE", "http://10.1.2.3:8080", /loopback/],
  ["CRON_SECRET", "short-secret-0123", /at least 32/],
  ["DB_SIZE_QUOTA_MB", "500MB-of-it-0123", /whole number of megabytes/],
  ["SUPABASE_DB_URL", "mysql://root:pw0123456789@db.example.test/x", /postgresql:\/\//],
  ["SUPABASE_ANON_KEY", fakeJwt({ role: "service_role", secretish: "0123456789abcdef" }), /role claim is anon/],
  ["SUPABASE_SERVICE_ROLE_KEY", "sb_secret_notAJwt0123456789abcdef", /JWT/],
  ["SUPABASE_SECRET_KEYS", '{"primary": "sb_secret_oops0123456789abcdef"', /not valid JSON/],
  ["SUPABASE_SECRET_KEYS", '{"primary": "sb_publishable_wrongKind0123456"}', /sb_secret_/],
  ["SUPABASE_PUBLISHABLE_KEYS", "{}", /at least one/],
  ["SUPABASE_JWKS", JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "eA", y: "eQ", d: "cHJpdmF0ZTAxMjM0NTY3ODk" }] }), /private key/],
  ["SUPABASE_JWKS", '[{"kty":"EC","x":"0123456789abcdef"}]', /Key Set/],
  ["TWILIO_AUTH_TOKEN", "replace_me", /placeholder/],
];

Deno.test("env: each malformed setting gets a clear reason that never quotes its value", () => {
  for (const [name, value, expected] of MALFORMED) {
    const source = sourceOf({ ...PLATFORM, [name]: value });
    const [entry] = source.report([name]);
    assert.equal(entry.status, "malformed", `${name}=${value} should be malformed`);
    assert.match(entry.reason!, expected, `${name}: ${entry.reason}`);
    assertNoFragment(JSON.stringify(entry), value, `${name}'s report`);
    const error = settingsErrorOf(() => source.get(name));
    assert.deepEqual(error.problems, [{ name, status: "malformed", reason: entry.reason }]);
    assertNoFragment(error.message, value, `${name}'s error`);
  }
});

Deno.test("env: a missing required setting throws, an optional one is undefined; every problem is listed", () => {
  const source = sourceOf({ ...PLATFORM, CRON_SECRET: "   ", TWILIO_AUTH_TOKEN: "nothex" });
  assert.deepEqual(source.get("CRON_SECRET", "STRIPE_API_BASE"), { CRON_SECRET: undefined, STRIPE_API_BASE: undefined });
  const error = settingsErrorOf(() => source.get("APP_URL", "TWILIO_AUTH_TOKEN", "SUPABASE_URL"));
  assert.deepEqual(error.problems.map((p) => [p.name, p.status]), [["APP_URL", "missing"], ["TWILIO_AUTH_TOKEN", "malformed"]]);
  assert.match(error.message, /APP_URL is not set/);
});

Deno.test("env: each setting is read and parsed once per source", () => {
  const reads = new Map<string, number>();
  const values: Record<string, string> = { ...PLATFORM, ...generateLocalProviderSettings() };
  const source = new SettingsSource((name) => {
    reads.set(name, (reads.get(name) ?? 0) + 1);
    return values[name];
  });
  source.get("STRIPE_SECRET_KEY");
  source.get("STRIPE_SECRET_KEY", "APP_URL");
  source.report();
  source.report();
  assert.ok([...reads.values()].every((n) => n === 1), JSON.stringify(Object.fromEntries(reads)));
  assert.equal(reads.size, SETTING_NAMES.length);
});

Deno.test("env: the report covers every setting, says test or live for the Stripe key, holds no value", () => {
  const values = { ...PLATFORM, ...generateLocalProviderSettings() };
  const report = sourceOf(values).report();
  assert.deepEqual(report.map((r) => r.name), SETTING_NAMES);
  assert.deepEqual(report.find((r) => r.name === "STRIPE_SECRET_KEY")?.facts, { stripeMode: "test" });
  const live = sourceOf({ ...values, STRIPE_SECRET_KEY: ["rk", "live", "FixtureOnly0123456789abc"].join("_") /* built at run time: secret scanners */ }).report(["STRIPE_SECRET_KEY"]);
  assert.deepEqual(live[0], { name: "STRIPE_SECRET_KEY", status: "ok", optional: false, facts: { stripeMode: "live" } });
  const text = JSON.stringify(report);
  for (const value of Object.values(values)) {
    if (value.length >= 8 && !/^(http|CA$)/.test(value)) assertNoFragment(text, value, "the report");
  }
  // The 17 settings the system status reports (issue 16) are all here.
  for (
    const name of [
      "APP_URL", "SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEYS", "SUPABASE_ANON_KEY", "SUPABASE_SECRET_KEYS",
      "SUPABASE_SERVICE_ROLE_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_MONTHLY",
      "STRIPE_PRICE_ANNUAL", "STRIPE_PRICE_ADDON_SITE_MONTHLY", "STRIPE_PRICE_ADDON_SITE_ANNUAL",
      "STRIPE_ACCOUNT_COUNTRY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_MESSAGING_SERVICE_SID",
      "TWILIO_PHONE_NUMBER", "OWNER_MOBILE", "PUBLIC_CONTACT_NUMBER",
    ]
  ) assert.ok(SETTING_NAMES.includes(name as SettingName), name);
});

Deno.test("env: .env.example names only known settings; its placeholders are reported, its examples are valid", async () => {
  const example = parseDotenv(await Deno.readTextFile(new URL("../../supabase/functions/.env.example", import.meta.url)));
  for (const name of Object.keys(example)) assert.ok(SETTING_NAMES.includes(name as SettingName), `${name} is not in env.ts`);
  for (const entry of sourceOf({ ...PLATFORM, ...example }).report(Object.keys(example) as SettingName[])) {
    const placeholder = /replace/.test(example[entry.name]);
    assert.equal(entry.status, placeholder ? "malformed" : "ok", `${entry.name}: ${entry.reason}`);
  }
});
