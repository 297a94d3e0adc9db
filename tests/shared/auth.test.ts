// Unit tests of supabase/functions/_shared/auth.ts with real keys generated here: a P-256 signing
// key and its JWKS, secret API keys in the current format, a legacy service_role JWT.
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import {
  type AuthConfig,
  authConfigFromSettings,
  type Caller,
  createCallerIdentifier,
  identifyCaller,
} from "../../supabase/functions/_shared/auth.ts";
import { SettingsSource } from "../../supabase/functions/_shared/env.ts";
import {
  generateApiKey,
  generateSigningKey,
  mintLegacyKey,
  mintUserSessionToken,
  publicJwk,
  signEs256,
} from "../../scripts/local-supabase/keys.ts";

const SUPABASE_URL = "http://127.0.0.1:54321";
const USER_ID = "3f2d7c1e-8a4b-4c5d-9e6f-0a1b2c3d4e5f";

const signingKey = await generateSigningKey();
const otherKey = await generateSigningKey();
const secretKey = await generateApiKey("secret");
const automationsKey = await generateApiKey("secret");
const publishableKey = await generateApiKey("publishable");
const legacySecret = `test-legacy-secret-${crypto.randomUUID()}`;
const legacyServiceRoleKey = await mintLegacyKey(legacySecret, {
  ref: "abcdefghijklmnopqrst",
  role: "service_role",
  issuedAt: Math.floor(Date.now() / 1000),
});

const config: AuthConfig = {
  secretKeys: { default: secretKey, automations: automationsKey },
  legacyServiceRoleKey,
  jwks: { keys: [publicJwk(signingKey)] },
};
const withoutLegacy: AuthConfig = { ...config, legacyServiceRoleKey: undefined };

function headers(h: Record<string, string>): Headers {
  return new Headers(h);
}

function bearer(token: string): Headers {
  return headers({ authorization: `Bearer ${token}` });
}

const userToken = (opts: Parameters<typeof mintUserSessionToken>[1] extends infer O ? Partial<O> : never = {}) =>
  mintUserSessionToken(signingKey, { supabaseUrl: SUPABASE_URL, userId: USER_ID, ...opts });


const now = () => Math.floor(Date.now() / 1000);
const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

function assertNobody(caller: Caller, reason: string) {
  assert.deepEqual(caller, { kind: "nobody", reason });
}

Deno.test("auth: a user session token signed by the project's key is a user, with its claims", async () => {
  const caller = await identifyCaller(bearer(await userToken({ email: "tech@example.test" })), config);
  assert.equal(caller.kind, "user");
  if (caller.kind !== "user") return;
  assert.equal(caller.userId, USER_ID);
  assert.equal(caller.role, "authenticated");
  assert.equal(caller.claims.aud, "authenticated");
  assert.equal(caller.claims.iss, `${SUPABASE_URL}/auth/v1`);
  assert.equal(caller.claims.email, "tech@example.test");
  assert.equal(typeof caller.claims.session_id, "string");
});

Deno.test("auth: a user token sent with the publishable key is still the user", async () => {
  const h = bearer(await userToken());
  h.set("apikey", publishableKey);
  assert.equal((await identifyCaller(h, config)).kind, "user");
});

Deno.test("auth: a token signed by another key under the project's kid is nobody", async () => {
  const forged = await signEs256(otherKey, { sub: USER_ID, role: "authenticated", exp: now() + 600 }, {
    kid: signingKey.kid,
  });
  assertNobody(await identifyCaller(bearer(forged), config), "invalid_token");
});

Deno.test("auth: an unknown kid, a missing kid and a tampered signature are nobody", async () => {
  const claims = { sub: USER_ID, role: "authenticated", exp: now() + 600 };
  const wrongKid = await signEs256(signingKey, claims, { kid: crypto.randomUUID() });
  const noKid = await signEs256(signingKey, claims, {});
  const valid = await userToken();
  const tampered = valid.slice(0, -3) + (valid.endsWith("AAA") ? "BBB" : "AAA");
  for (const token of [wrongKid, noKid, tampered]) {
    assertNobody(await identifyCaller(bearer(token), config), "invalid_token");
  }
});

Deno.test("auth: an expired token, and one without exp or sub, are nobody", async () => {
  const expired = await userToken({ issuedAt: now() - 7200, lifetimeSeconds: 3600 });
  assertNobody(await identifyCaller(bearer(expired), config), "invalid_token");
  const noExp = await signEs256(signingKey, { sub: USER_ID, role: "authenticated" }, { kid: signingKey.kid });
  assertNobody(await identifyCaller(bearer(noExp), config), "invalid_token");
  const noSub = await signEs256(signingKey, { role: "authenticated", exp: now() + 600 }, { kid: signingKey.kid });
  assertNobody(await identifyCaller(bearer(noSub), config), "invalid_token");
});

Deno.test("auth: alg none is nobody", async () => {
  const unsigned = `${b64({ alg: "none", typ: "JWT", kid: signingKey.kid })}.${
    b64({ sub: USER_ID, role: "authenticated", exp: now() + 600 })
  }.`;
  assertNobody(await identifyCaller(bearer(unsigned), config), "invalid_token");
});

Deno.test("auth: HS256 user tokens are not users (legacy secret, or the public key used as an HMAC secret)", async () => {
  const claims = { sub: USER_ID, role: "authenticated", aud: "authenticated", exp: now() + 600 };
  const legacy = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(legacySecret));
  // Algorithm confusion: HS256 "signed" with the public key's bytes, under the right kid.
  const confused = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: signingKey.kid })
    .sign(new TextEncoder().encode(JSON.stringify(publicJwk(signingKey))));
  for (const token of [legacy, confused]) {
    assertNobody(await identifyCaller(bearer(token), config), "invalid_token");
  }
});

Deno.test("auth: with an issuer configured, a token from another issuer is nobody", async () => {
  const strict = { ...config, issuer: `${SUPABASE_URL}/auth/v1` };
  assert.equal((await identifyCaller(bearer(await userToken()), strict)).kind, "user");
  const elsewhere = await mintUserSessionToken(signingKey, {
    supabaseUrl: "https://other.example.test",
    userId: USER_ID,
  });
  assertNobody(await identifyCaller(bearer(elsewhere), strict), "invalid_token");
});

Deno.test("auth: a secret key in apikey or as a Bearer is the service, with the key's name", async () => {
  assert.deepEqual(await identifyCaller(headers({ apikey: secretKey }), config), {
    kind: "service",
    via: "secret_key",
    keyName: "default",
  });
  // supabase-js with a secret key sends it in both headers.
  const both = headers({ apikey: automationsKey, authorization: `Bearer ${automationsKey}` });
  assert.deepEqual(await identifyCaller(both, config), { kind: "service", via: "secret_key", keyName: "automations" });
  assert.deepEqual(await identifyCaller(bearer(secretKey), config), {
    kind: "service",
    via: "secret_key",
    keyName: "default",
  });
});

Deno.test("auth: a wrong secret key is nobody, even beside valid credentials", async () => {
  const wrong = await generateApiKey("secret");
  assertNobody(await identifyCaller(headers({ apikey: wrong }), config), "invalid_secret_key");
  assertNobody(await identifyCaller(bearer(wrong), config), "invalid_secret_key");
  // A prefix of the real key, or the real key with one character changed.
  assertNobody(await identifyCaller(headers({ apikey: secretKey.slice(0, -1) }), config), "invalid_secret_key");
  const flipped = secretKey.slice(0, -1) + (secretKey.endsWith("A") ? "B" : "A");
  assertNobody(await identifyCaller(headers({ apikey: flipped }), config), "invalid_secret_key");
  const h = bearer(await userToken());
  h.set("apikey", wrong);
  assertNobody(await identifyCaller(h, config), "invalid_secret_key");
  const h2 = bearer(legacyServiceRoleKey);
  h2.set("apikey", wrong);
  assertNobody(await identifyCaller(h2, config), "invalid_secret_key");
});

Deno.test("auth: a user session with a secret key acts as the user", async () => {
  const h = bearer(await userToken());
  h.set("apikey", secretKey);
  assert.equal((await identifyCaller(h, config)).kind, "user");
});

Deno.test("auth: the legacy service_role key is the service while configured, nobody once switched off", async () => {
  const sent = [
    bearer(legacyServiceRoleKey),
    headers({ apikey: legacyServiceRoleKey }),
    headers({ apikey: legacyServiceRoleKey, authorization: `Bearer ${legacyServiceRoleKey}` }),
  ];
  for (const h of sent) {
    assert.deepEqual(await identifyCaller(h, config), { kind: "service", via: "legacy_service_role_key" });
  }
  assertNobody(await identifyCaller(sent[0], withoutLegacy), "invalid_token");
  assertNobody(await identifyCaller(sent[1], withoutLegacy), "no_credentials");
  // Secret keys keep identifying the service without any legacy key configured.
  assert.deepEqual(await identifyCaller(headers({ apikey: secretKey }), withoutLegacy), {
    kind: "service",
    via: "secret_key",
    keyName: "default",
  });
});

Deno.test("auth: a service_role JWT that is not the configured key is nobody (role claims prove nothing)", async () => {
  const forged = await mintLegacyKey("some-other-secret-0123456789abcdef0123", {
    ref: "abcdefghijklmnopqrst",
    role: "service_role",
    issuedAt: now(),
  });
  assertNobody(await identifyCaller(bearer(forged), config), "invalid_token");
  assertNobody(await identifyCaller(headers({ apikey: forged }), config), "no_credentials");
  // Even one validly signed with the legacy secret, if it is not the exact key.
  const other = await mintLegacyKey(legacySecret, { ref: "abcdefghijklmnopqrst", role: "service_role", issuedAt: 1 });
  assertNobody(await identifyCaller(bearer(other), config), "invalid_token");
});

Deno.test("auth: no credentials, a publishable key alone, or a non-Bearer header are nobody", async () => {
  assertNobody(await identifyCaller(headers({}), config), "no_credentials");
  assertNobody(await identifyCaller(headers({ apikey: publishableKey }), config), "no_credentials");
  assertNobody(
    await identifyCaller(headers({ apikey: publishableKey, authorization: `Bearer ${publishableKey}` }), config),
    "no_credentials",
  );
  assertNobody(
    await identifyCaller(headers({ authorization: `Basic ${btoa("a:b")}` }), config),
    "malformed_authorization",
  );
  assertNobody(await identifyCaller(bearer("not.a.jwt"), config), "invalid_token");
});

Deno.test("auth: createCallerIdentifier gives the same answers from a Request", async () => {
  const callers = createCallerIdentifier(config);
  const req = (h: Record<string, string>) => new Request("http://127.0.0.1/fn", { headers: h });
  assert.equal((await callers.identify(req({ authorization: `Bearer ${await userToken()}` }))).kind, "user");
  assert.equal((await callers.identify(req({ apikey: secretKey }))).kind, "service");
  assert.equal((await callers.identify(req({}))).kind, "nobody");
});

Deno.test("auth: the config from env.ts's validated settings identifies the service and users", async () => {
  const source = new SettingsSource((name) =>
    ({
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: secretKey }),
      SUPABASE_JWKS: JSON.stringify(config.jwks),
    })[name]
  );
  const parsed = authConfigFromSettings(source.get("SUPABASE_SECRET_KEYS", "SUPABASE_JWKS", "SUPABASE_SERVICE_ROLE_KEY"));
  assert.deepEqual(parsed, { secretKeys: { default: secretKey }, legacyServiceRoleKey: undefined, jwks: config.jwks });
  assert.equal((await identifyCaller(headers({ apikey: secretKey }), parsed)).kind, "service");
  assert.equal((await identifyCaller(bearer(await userToken()), parsed)).kind, "user");
  // Malformed key settings never reach auth: env.ts refuses them (naming the setting, not the value).
  const broken = new SettingsSource((name) => name === "SUPABASE_SECRET_KEYS" ? secretKey : undefined);
  assert.throws(() => broken.get("SUPABASE_SECRET_KEYS"), (e: Error) => {
    assert.match(e.message, /SUPABASE_SECRET_KEYS/);
    assert.ok(!e.message.includes(secretKey.slice(10)), "the error shows the key");
    return true;
  });
});
