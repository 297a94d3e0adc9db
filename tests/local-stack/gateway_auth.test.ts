// verify_jwt at the local gateway: the `echo` fixture has verify_jwt = true, `echo-public` false.
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { type EchoReply, env, functionUrl, header, mintJwt } from "../_helpers.ts";

async function call(name: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
  const res = await fetch(functionUrl(name), { ...init, headers });
  const text = await res.text();
  return { res, text, json: () => JSON.parse(text) };
}

function assertJson401(r: { res: Response; text: string }, expected: Record<string, unknown>) {
  assert.equal(r.res.status, 401, r.text);
  assert.match(r.res.headers.get("content-type") ?? "", /application\/json/);
  assert.deepEqual(JSON.parse(r.text), expected);
  assert.ok(r.res.headers.get("x-request-id"), "a 401 carries the request id too");
}

const INVALID_JWT = { code: 401, message: "Invalid JWT" };

Deno.test("verify_jwt: no Authorization header -> 401", async () => {
  assertJson401(await call("echo"), { msg: "Error: Missing authorization header" });
});

Deno.test("verify_jwt: a scheme other than Bearer -> 401", async () => {
  assertJson401(await call("echo", { authorization: `Basic ${btoa("user:pass")}` }), {
    msg: "Error: Auth header is not 'Bearer {token}'",
  });
});

Deno.test("verify_jwt: a token signed with another secret -> 401", async () => {
  const forged = await mintJwt({ role: "service_role" }, { secret: "not-the-project-secret-at-all-0123456789" });
  assertJson401(await call("echo", { authorization: `Bearer ${forged}` }), INVALID_JWT);
});

Deno.test("verify_jwt: an expired token -> 401", async () => {
  const now = Math.floor(Date.now() / 1000);
  const expired = await mintJwt({ role: "anon" }, { issuedAt: now - 7200, expiresAt: now - 60 });
  assertJson401(await call("echo", { authorization: `Bearer ${expired}` }), INVALID_JWT);
});

Deno.test("verify_jwt: malformed and unsigned (alg none) tokens -> 401", async () => {
  assertJson401(await call("echo", { authorization: "Bearer not.a.jwt" }), INVALID_JWT);
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64({ role: "service_role" })}.`;
  assertJson401(await call("echo", { authorization: `Bearer ${unsigned}` }), INVALID_JWT);
  // A valid token whose signature was tampered with.
  const valid = await mintJwt({ role: "anon" });
  const tampered = valid.slice(0, -2) + (valid.endsWith("AA") ? "BB" : "AA");
  assertJson401(await call("echo", { authorization: `Bearer ${tampered}` }), INVALID_JWT);
});

Deno.test("verify_jwt: the anon key passes (raw fetch) and reaches the function with its header", async () => {
  const r = await call("echo", { authorization: `Bearer ${env.anonKey}` });
  assert.equal(r.res.status, 200, r.text);
  const reply: EchoReply = r.json();
  assert.equal(reply.function, "echo");
  assert.equal(header(reply, "authorization"), `Bearer ${env.anonKey}`);
});

Deno.test("verify_jwt: a user JWT and the service role key pass", async () => {
  const user = await mintJwt({ role: "authenticated", sub: crypto.randomUUID(), email: "tech@example.test" });
  for (const token of [user, env.serviceRoleKey]) {
    const r = await call("echo", { authorization: `Bearer ${token}` });
    assert.equal(r.res.status, 200, r.text);
  }
});

Deno.test("verify_jwt: supabase-js functions.invoke with the anon key -> 200", async () => {
  const supabase = createClient(env.supabaseUrl, env.anonKey, {
    // No session machinery: nothing would use it, and its timers would outlive the test.
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  const payload = { hello: "world", phone: "+15145550123" };
  const { data, error } = await supabase.functions.invoke<EchoReply>("echo", { body: payload });
  assert.equal(error, null, String(error));
  assert.ok(data);
  assert.equal(data.function, "echo");
  assert.equal(data.method, "POST");
  assert.equal(data.path, "/echo");
  assert.equal(header(data, "authorization"), `Bearer ${env.anonKey}`);
  const sent = new TextEncoder().encode(JSON.stringify(payload));
  assert.equal(data.bodyLength, sent.length);
});

Deno.test("verify_jwt = false: the function is reachable without any token", async () => {
  const r = await call("echo-public");
  assert.equal(r.res.status, 200, r.text);
  assert.equal(r.json().function, "echo-public");
});

Deno.test("verify_jwt: a CORS preflight (OPTIONS) reaches the function without a token", async () => {
  const r = await call("echo", { origin: "http://127.0.0.1:3000", "access-control-request-method": "POST" }, {
    method: "OPTIONS",
  });
  assert.equal(r.res.status, 200, r.text);
  assert.equal(r.json().method, "OPTIONS");
});
