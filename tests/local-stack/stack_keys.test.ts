// scripts/local-supabase/keys.ts: a stack's keys are made once, kept private, the same after a
// restart and different for another stack; legacy keys are minted as hosted mints them.
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { loadOrCreateStackKeys, parseLifetime, readStackKeys } from "../../scripts/local-supabase/keys.ts";

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "stack-keys-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("stack keys: kept in keys.json (0600), unchanged on reload, different for another stack", async () => {
  await withTempDir(async (dir) => {
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    const first = await loadOrCreateStackKeys(a);
    const again = await loadOrCreateStackKeys(a);
    const other = await loadOrCreateStackKeys(b);
    assert.equal((await Deno.stat(first.file)).mode! & 0o777, 0o600);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(a), (e) => e.name), ["keys.json"]);
    assert.deepEqual(again, first);
    for (
      const field of ["ref", "publishableKey", "secretKey", "legacyJwtSecret", "anonKey", "serviceRoleKey"] as const
    ) {
      assert.notEqual(other[field], first[field], `${field} is shared by two stacks`);
    }
    assert.notEqual(other.jwks.keys[0].kid, first.jwks.keys[0].kid);
    assert.notEqual(other.jwks.keys[0].x, first.jwks.keys[0].x);
  });
});

Deno.test("stack keys: current formats; the JWKS is the public half of the signing key", async () => {
  await withTempDir(async (dir) => {
    const keys = await loadOrCreateStackKeys(dir);
    assert.match(keys.publishableKey, /^sb_publishable_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/);
    assert.match(keys.secretKey, /^sb_secret_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/);
    assert.match(keys.ref, /^[a-z]{20}$/);
    const [pub] = keys.jwks.keys;
    assert.equal(keys.jwks.keys.length, 1);
    assert.ok(!("d" in pub), "the JWKS holds the private key");
    const { key_ops: publicOps, ...publicRest } = pub;
    const { key_ops: _privateOps, d: _d, ...privateRest } = keys.signingKey;
    assert.deepEqual(publicRest, privateRest);
    assert.deepEqual(publicOps, ["verify"]);
    assert.equal(pub.alg, "ES256");
    assert.equal(pub.crv, "P-256");
  });
});

Deno.test("stack keys: legacy anon/service_role keys are HS256 with iss supabase, the ref, iat and exp", async () => {
  await withTempDir(async (dir) => {
    const keys = await loadOrCreateStackKeys(dir);
    const secret = new TextEncoder().encode(keys.legacyJwtSecret);
    for (const [token, role] of [[keys.anonKey, "anon"], [keys.serviceRoleKey, "service_role"]] as const) {
      assert.deepEqual(decodeProtectedHeader(token), { alg: "HS256", typ: "JWT" });
      const { payload } = await jwtVerify(token, secret, { algorithms: ["HS256"] });
      assert.deepEqual(Object.keys(payload), ["iss", "ref", "role", "iat", "exp"]);
      assert.equal(payload.iss, "supabase");
      assert.equal(payload.ref, keys.ref);
      assert.equal(payload.role, role);
      assert.equal(payload.exp! - payload.iat!, 10 * 365 * 24 * 3600);
    }
    assert.equal(decodeJwt(keys.anonKey).iat, decodeJwt((await readStackKeys(keys.file)).anonKey).iat);
  });
});

Deno.test("stack keys: a damaged keys.json is a clear error that shows no key", async () => {
  await withTempDir(async (dir) => {
    const keys = await loadOrCreateStackKeys(dir);
    const stored = JSON.parse(await Deno.readTextFile(keys.file));
    await Deno.writeTextFile(keys.file, JSON.stringify({ ...stored, secretKey: "sb_secret_tooshort" }));
    await assert.rejects(loadOrCreateStackKeys(dir), (e: Error) => {
      assert.match(e.message, /keys\.json is damaged \(secretKey\): delete it/);
      assert.ok(!e.message.includes("tooshort") && !e.message.includes(stored.legacyJwtSecret));
      return true;
    });
    await Deno.writeTextFile(keys.file, "{");
    await assert.rejects(loadOrCreateStackKeys(dir), /not valid JSON: delete it/);
  });
});

Deno.test("stack keys: token lifetimes are n s|m|h|d, at most GoTrue's one week", () => {
  assert.equal(parseLifetime("90s"), 90);
  assert.equal(parseLifetime("15m"), 900);
  assert.equal(parseLifetime("1h"), 3600);
  assert.equal(parseLifetime("7d"), 604800);
  for (const bad of ["8d", "0h", "1", "h", "1.5h", "-1h", "1w", " 1h"]) {
    assert.equal(parseLifetime(bad), undefined, bad);
  }
});
