// Today's keys at the local gateway: the JWKS served at /auth/v1/.well-known/jwks.json, verify_jwt
// with ES256 user sessions (JWKS, kid) beside legacy HS256, the new key variables functions get
// (Supabase CLI format), `_shared/auth.ts` inside a worker (fixture `whoami`), and the
// `npm run stack -- token` command. Legacy-only verify_jwt cases are in gateway_auth.test.ts.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createClient } from "@supabase/supabase-js";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { generateSigningKey, signEs256 } from "../../scripts/local-supabase/keys.ts";
import { type EchoReply, env, functionUrl, mintUserToken, sha256Hex } from "../_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const INVALID_JWT = { code: 401, message: "Invalid JWT" };
const USER_ID = "8c0f4a2e-5b1d-4e6f-a7b8-c9d0e1f2a3b4";

async function call(name: string, headers: Record<string, string> = {}, rest = "") {
  const res = await fetch(functionUrl(name, rest), { headers });
  const text = await res.text();
  return { res, text };
}

async function assertInvalidJwt(token: string) {
  const r = await call("echo", { authorization: `Bearer ${token}` });
  assert.equal(r.res.status, 401, r.text);
  assert.deepEqual(JSON.parse(r.text), INVALID_JWT);
}


const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
const now = () => Math.floor(Date.now() / 1000);

Deno.test("jwks: served at /auth/v1/.well-known/jwks.json, public keys only, and verifies the stack's tokens", async () => {
  const res = await fetch(`${env.supabaseUrl}/auth/v1/.well-known/jwks.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const jwks = await res.json();
  assert.deepEqual(jwks, env.jwks);
  assert.equal(jwks.keys.length, 1);
  const [key] = jwks.keys;
  assert.deepEqual(
    { kty: key.kty, crv: key.crv, alg: key.alg, use: key.use, key_ops: key.key_ops },
    { kty: "EC", crv: "P-256", alg: "ES256", use: "sig", key_ops: ["verify"] },
  );
  assert.ok(typeof key.kid === "string" && key.kid.length > 0);
  for (const member of ["d", "k", "p", "q"]) assert.ok(!(member in key), `the JWKS publishes "${member}"`);
  // What a client or a function does with it: fetch it remotely and verify a user session.
  const remote = createRemoteJWKSet(new URL(`${env.supabaseUrl}/auth/v1/.well-known/jwks.json`));
  const { payload } = await jwtVerify(await mintUserToken(USER_ID), remote, { algorithms: ["ES256"] });
  assert.equal(payload.sub, USER_ID);
  // Other methods and paths under /auth/v1 are not served.
  assert.equal(
    await fetch(`${env.supabaseUrl}/auth/v1/.well-known/jwks.json`, { method: "POST" }).then(async (r) => {
      await r.body?.cancel();
      return r.status;
    }),
    404,
  );
});

Deno.test("verify_jwt: an ES256 user session signed by the project's key passes, header untouched", async () => {
  const token = await mintUserToken(USER_ID, { email: "tech@example.test" });
  const r = await call("echo", { authorization: `Bearer ${token}` });
  assert.equal(r.res.status, 200, r.text);
  const reply: EchoReply = JSON.parse(r.text);
  assert.equal(reply.headers.find(([k]) => k === "authorization")?.[1], `Bearer ${token}`);
});

Deno.test("verify_jwt: supabase-js with the publishable key and a user session -> 200", async () => {
  const token = await mintUserToken(USER_ID);
  const supabase = createClient(env.supabaseUrl, env.publishableKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { authorization: `Bearer ${token}` } },
  });
  const { data, error } = await supabase.functions.invoke<EchoReply>("echo", { body: { hello: "world" } });
  assert.equal(error, null, String(error));
  assert.equal(data?.headers.find(([k]) => k === "apikey")?.[1], env.publishableKey);
  assert.equal(data?.headers.find(([k]) => k === "authorization")?.[1], `Bearer ${token}`);
});

Deno.test("verify_jwt: ES256 tokens signed by another key, with an unknown kid, or expired -> 401", async () => {
  const kid = env.jwks.keys[0].kid!;
  const other = await generateSigningKey();
  const claims = { sub: USER_ID, role: "authenticated", aud: "authenticated", exp: now() + 600 };
  await assertInvalidJwt(await signEs256(other, claims, { kid })); // forged under the project's kid
  await assertInvalidJwt(await signEs256(other, claims, { kid: other.kid })); // a kid the JWKS does not have
  await assertInvalidJwt(await mintUserToken(USER_ID, { issuedAt: now() - 7200, lifetimeSeconds: 3600 }));
});

Deno.test("verify_jwt: alg none (with the project's kid) and the new API keys as Bearer -> 401", async () => {
  const kid = env.jwks.keys[0].kid!;
  await assertInvalidJwt(`${b64({ alg: "none", typ: "JWT", kid })}.${b64({ sub: USER_ID, exp: now() + 600 })}.`);
  // sb_… keys are not JWTs: verify_jwt refuses them, as on hosted (such callers need verify_jwt = false).
  await assertInvalidJwt(env.publishableKey);
  await assertInvalidJwt(env.secretKey);
});

Deno.test("verify_jwt: legacy HS256 keys still pass beside ES256 sessions", async () => {
  for (const token of [env.anonKey, env.serviceRoleKey]) {
    const r = await call("echo", { authorization: `Bearer ${token}` });
    assert.equal(r.res.status, 200, r.text);
  }
});

Deno.test("env: functions get SUPABASE_PUBLISHABLE_KEYS, SUPABASE_SECRET_KEYS and SUPABASE_JWKS in the CLI's format", async () => {
  const res = await fetch(functionUrl("echo-public"));
  const reply: EchoReply = await res.json();
  assert.equal(reply.env.publishableKeys, JSON.stringify({ default: env.publishableKey }));
  assert.equal(
    reply.env.secretKeysSha256,
    await sha256Hex(new TextEncoder().encode(JSON.stringify({ default: env.secretKey }))),
  );
  assert.ok(reply.env.jwks);
  assert.deepEqual(JSON.parse(reply.env.jwks), env.jwks);
  assert.ok(!/"d"\s*:/.test(reply.env.jwks), "the private signing key reached a function");
  // Beside the legacy variables; never the legacy secret.
  assert.ok(reply.env.anonKeySet && reply.env.serviceRoleKeySet);
  assert.equal(reply.env.jwtSecretVisible, false);
  for (const name of ["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "LOCAL_STACK_KEYS_FILE"]) {
    assert.ok(!reply.env.names.includes(name), `${name} reached a function`);
  }
});

Deno.test("_shared/auth in a worker: a user, the service by secret key (legacy on or off), or nobody", async () => {
  const whoami = async (headers: Record<string, string>, rest = "") => {
    const r = await call("whoami", headers, rest);
    assert.equal(r.res.status, 200, r.text);
    return JSON.parse(r.text);
  };
  const user = await whoami({ authorization: `Bearer ${await mintUserToken(USER_ID)}`, apikey: env.publishableKey });
  assert.deepEqual(user, { kind: "user", userId: USER_ID, role: "authenticated", iss: `${env.supabaseUrl}/auth/v1` });
  const service = { kind: "service", via: "secret_key", keyName: "default" };
  assert.deepEqual(await whoami({ apikey: env.secretKey }), service);
  assert.deepEqual(await whoami({ apikey: env.secretKey }, "?legacy=off"), service);
  assert.deepEqual(await whoami({ apikey: env.serviceRoleKey, authorization: `Bearer ${env.serviceRoleKey}` }), {
    kind: "service",
    via: "legacy_service_role_key",
  });
  assert.deepEqual(
    await whoami({ authorization: `Bearer ${env.serviceRoleKey}` }, "?legacy=off"),
    { kind: "nobody", reason: "invalid_token" },
  );
  assert.deepEqual(await whoami({ apikey: env.anonKey, authorization: `Bearer ${env.anonKey}` }), {
    kind: "nobody",
    reason: "invalid_token",
  });
  // Another last character, whatever the key ends with.
  const tampered = env.secretKey.slice(0, -1) + (env.secretKey.endsWith("x") ? "y" : "x");
  assert.deepEqual(await whoami({ apikey: tampered }), {
    kind: "nobody",
    reason: "invalid_secret_key",
  });
  assert.deepEqual(await whoami({}), { kind: "nobody", reason: "no_credentials" });
});

async function stackToken(args: string[]) {
  const port = new URL(env.supabaseUrl).port;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${REPO_ROOT}deno.json`, `${REPO_ROOT}scripts/stack.ts`, "token", ...args],
    cwd: REPO_ROOT,
    env: { STACK_STATE_DIR: env.keysFile.replace(/\/[^/]+$/, ""), STACK_API_PORT: port, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("stack token: mints a GoTrue-shaped ES256 session the gateway accepts", async () => {
  const r = await stackToken(["--user", USER_ID, "--role", "authenticated", "--expires", "15m"]);
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  assert.deepEqual(decodeProtectedHeader(token), { alg: "ES256", kid: env.jwks.keys[0].kid, typ: "JWT" });
  const claims = decodeJwt(token);
  assert.equal(claims.sub, USER_ID);
  assert.equal(claims.role, "authenticated");
  assert.equal(claims.aud, "authenticated");
  assert.equal(claims.iss, `${env.supabaseUrl}/auth/v1`);
  assert.equal(claims.aal, "aal1");
  assert.equal(claims.is_anonymous, false);
  assert.match(String(claims.session_id), /^[0-9a-f-]{36}$/);
  assert.equal(claims.exp! - claims.iat!, 15 * 60);
  const res = await call("echo", { authorization: `Bearer ${token}` });
  assert.equal(res.res.status, 200, res.text);
});

Deno.test("stack token: bad arguments -> a usage line, exit 2, no stack trace", async () => {
  for (
    const args of [
      [],
      ["--user", "not-a-uuid"],
      ["--user", USER_ID, "--expires", "forever"],
      [
        "--user",
        USER_ID,
        "--bogus",
      ],
      ["--user", USER_ID, "--expires", "30d"],
      ["--user"],
    ]
  ) {
    const r = await stackToken(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^stack token: .+\nusage: npm run stack -- token --user <uuid>/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "a stack trace was printed");
  }
});
