// _shared/twilio/signature.ts against the twilio SDK's own validator (twilio/lib/webhooks/webhooks.js,
// the only SDK module imported): Twilio's documented vectors, then a few hundred generated requests
// (unicode, repeated names, ports, query strings), each also tampered (parameter, URL, body, token).
import assert from "node:assert/strict";
import * as sdk from "twilio/lib/webhooks/webhooks.js";
import {
  bodySha256Hex,
  constantTimeEqual,
  formParams,
  type TwilioParams,
  twilioSignature,
  urlCandidates,
  verifyTwilioRequest,
} from "../../../supabase/functions/_shared/twilio/signature.ts";
import { SettingsSource } from "../../../supabase/functions/_shared/env.ts";

const encoder = new TextEncoder();

// Twilio docs "Webhooks security" (validation example) and twilio-node's tests.
const DOC_TOKEN = "12345";
const DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2";
const DOC_PARAMS = { CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" };
const DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
// twilio-node's validation tests: the JSON variant (same token and URL, bodySHA256 added).
const DOC_JSON_BODY = '{"property": "value", "boolean": true}';
const DOC_JSON_URL = DOC_URL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const DOC_JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4=";

function formRequest(body: string, signature: string | null, contentType = "application/x-www-form-urlencoded"): Request {
  const headers: Record<string, string> = { "content-type": contentType };
  if (signature !== null) headers["x-twilio-signature"] = signature;
  // req.url is internal (as behind the gateway): the tests pass the public URL explicitly.
  return new Request("http://127.0.0.1:9999/internal/path", { method: "POST", headers, body });
}

async function verify(url: string, body: string, signature: string | null, token: string, contentType?: string) {
  return await verifyTwilioRequest(formRequest(body, signature, contentType), encoder.encode(body), token, { url });
}

Deno.test("twilio signature: Twilio's documented form vector, ours and the SDK's", async () => {
  assert.equal(await twilioSignature(DOC_URL, DOC_PARAMS, DOC_TOKEN), DOC_SIGNATURE);
  assert.equal(sdk.getExpectedTwilioSignature(DOC_TOKEN, DOC_URL, DOC_PARAMS), DOC_SIGNATURE);
  const body = new URLSearchParams(DOC_PARAMS).toString();
  const ok = await verify(DOC_URL, body, DOC_SIGNATURE, DOC_TOKEN);
  assert.deepEqual(ok, { ok: true, params: DOC_PARAMS, url: DOC_URL, bodyHashed: false });
  // The same URL as a proxy may give it, with the default port: still valid (the SDK agrees).
  const withPort = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
  assert.equal((await verify(withPort, body, DOC_SIGNATURE, DOC_TOKEN)).ok, true);
  assert.equal(sdk.validateRequest(DOC_TOKEN, DOC_SIGNATURE, withPort, DOC_PARAMS), true);
});

Deno.test("twilio signature: Twilio's documented JSON vector (bodySHA256), ours and the SDK's", async () => {
  assert.equal(await bodySha256Hex(DOC_JSON_BODY), new URL(DOC_JSON_URL).searchParams.get("bodySHA256"));
  assert.equal(sdk.validateRequestWithBody(DOC_TOKEN, DOC_JSON_SIGNATURE, DOC_JSON_URL, DOC_JSON_BODY), true);
  const ok = await verify(DOC_JSON_URL, DOC_JSON_BODY, DOC_JSON_SIGNATURE, DOC_TOKEN, "application/json");
  assert.deepEqual(ok, { ok: true, params: {}, url: DOC_JSON_URL, bodyHashed: true });
  // A changed body no longer matches bodySHA256, though the URL's signature does.
  const tampered = DOC_JSON_BODY.replace("true", "false");
  assert.notEqual(tampered, DOC_JSON_BODY);
  assert.equal(sdk.validateRequestWithBody(DOC_TOKEN, DOC_JSON_SIGNATURE, DOC_JSON_URL, tampered), false);
  assert.deepEqual(await verify(DOC_JSON_URL, tampered, DOC_JSON_SIGNATURE, DOC_TOKEN, "application/json"), { ok: false, reason: "body_hash_mismatch" });
  assert.deepEqual(await verify(DOC_JSON_URL, DOC_JSON_BODY, DOC_JSON_SIGNATURE, "54321", "application/json"), { ok: false, reason: "bad_signature" });
});

Deno.test("twilio signature: missing, empty, or foreign-bodied requests are refused with a reason", async () => {
  const body = new URLSearchParams(DOC_PARAMS).toString();
  assert.deepEqual(await verify(DOC_URL, body, null, DOC_TOKEN), { ok: false, reason: "missing_signature" });
  assert.deepEqual(await verify(DOC_URL, body, "", DOC_TOKEN), { ok: false, reason: "missing_signature" });
  assert.deepEqual(await verify(DOC_URL, body, DOC_SIGNATURE + "x", DOC_TOKEN), { ok: false, reason: "bad_signature" });
  // A body the signature does not cover (not a form, no bodySHA256) is not silently ignored.
  assert.deepEqual(await verify(DOC_URL, body, DOC_SIGNATURE, DOC_TOKEN, "text/plain"), { ok: false, reason: "unsupported_body" });
  // Invalid UTF-8 in a form body.
  const bad = new Uint8Array([...encoder.encode("Body="), 0xff, 0xfe]);
  const req = new Request("http://x/y", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": DOC_SIGNATURE }, body: bad });
  assert.deepEqual(await verifyTwilioRequest(req, bad, DOC_TOKEN, { url: DOC_URL }), { ok: false, reason: "malformed_body" });
  // A GET (voice webhooks may use GET) signs the URL alone.
  const getSig = await twilioSignature(DOC_URL, {}, DOC_TOKEN);
  const get = new Request("http://x/y", { headers: { "x-twilio-signature": getSig } });
  assert.equal((await verifyTwilioRequest(get, new Uint8Array(0), DOC_TOKEN, { url: DOC_URL })).ok, true);
});

Deno.test("twilio signature: the URL checked is the public one (FUNCTIONS_PUBLIC_URL), not req.url", async () => {
  const source = new SettingsSource((name) =>
    ({ SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co", FUNCTIONS_PUBLIC_URL: "https://tunnel.example.dev/functions/v1" } as Record<string, string>)[name]
  );
  const publicUrl = "https://tunnel.example.dev/functions/v1/sms-inbound?tenant=a%20b";
  const body = "From=%2B15145550101&Body=STOP";
  const signature = await twilioSignature(publicUrl, formParams(new URLSearchParams(body)), DOC_TOKEN);
  const req = new Request("http://127.0.0.1:54321/sms-inbound?tenant=a%20b", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature },
    body,
  });
  const result = await verifyTwilioRequest(req, encoder.encode(body), DOC_TOKEN, { source });
  assert.equal(result.ok, true);
  assert.equal(result.ok && result.url, publicUrl);
  // Signed for the internal URL instead: refused.
  const internalSig = await twilioSignature(req.url, formParams(new URLSearchParams(body)), DOC_TOKEN);
  const req2 = new Request(req.url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": internalSig }, body });
  assert.deepEqual(await verifyTwilioRequest(req2, encoder.encode(body), DOC_TOKEN, { source }), { ok: false, reason: "bad_signature" });
});

Deno.test("twilio signature: port candidates and constant-time compare", () => {
  assert.deepEqual(urlCandidates("https://a.example/x"), ["https://a.example/x", "https://a.example:443/x"]);
  assert.deepEqual(urlCandidates("http://a.example:80/x?y=1"), ["http://a.example/x?y=1", "http://a.example:80/x?y=1"]);
  assert.deepEqual(urlCandidates("https://[::1]:8443/x"), ["https://[::1]/x", "https://[::1]:8443/x"]);
  assert.equal(constantTimeEqual("abc", "abc"), true);
  assert.equal(constantTimeEqual("abc", "abd"), false);
  assert.equal(constantTimeEqual("abc", "abcd"), false);
});

// ---- generated cases -------------------------------------------------------------------------

/** Small seeded PRNG (mulberry32): the same cases every run, so a failure is reproducible. */
function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(0x7_1110);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const ALPHABET = [..."abcXYZ019 +-_.&=%?#/:'\"<>", "é", "È", "ç", "ß", "Ω", "中", "😀", "🇨🇦", "\n", "\t", "\u00a0", "\u200b"];
function randomText(max: number): string {
  let s = "";
  const n = Math.floor(rand() * (max + 1));
  for (let i = 0; i < n; i++) s += pick(ALPHABET);
  return s;
}
const NAMES = ["Body", "From", "To", "MessageSid", "AccountSid", "NumMedia", "OptOutType", "SmsStatus", "body", "_x", "Z9", "MediaUrl0", "Naïve", "名前"];

function randomCase(i: number) {
  const scheme = pick(["https", "http"]);
  const host = pick(["abcdefghijklmnopqrst.supabase.co", "tunnel.example.dev", "127.0.0.1", "[::1]"]);
  const port = pick(["", "", ":443", ":80", ":8443"]);
  const path = pick(["/functions/v1/sms-inbound", "/functions/v1/sms-status", "/functions/v1/voice-inbound/dial", "/"]);
  const query = rand() < 0.5 ? "" : "?" + new URLSearchParams(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => [pick(NAMES), randomText(6)])).toString();
  const url = `${scheme}://${host}${port}${path}${query}`;
  const form = new URLSearchParams();
  const count = Math.floor(rand() * 8);
  for (let k = 0; k < count; k++) form.append(pick(NAMES), randomText(20)); // names repeat by chance
  if (i % 7 === 0) form.append("Body", randomText(5)); // and on purpose
  return { url, body: form.toString(), params: formParams(form) };
}

/** The URL Twilio may have signed: as called, or with/without the default port (proxies). */
function signedVariant(url: string): string {
  if (rand() < 0.7) return url;
  return pick(urlCandidates(url));
}

Deno.test("twilio signature: 300 generated form requests: same signature as the SDK, same verdict, tampering refused", async () => {
  const token = "0123456789abcdef0123456789abcdef";
  let withRepeats = 0;
  let portVariants = 0;
  for (let i = 0; i < 300; i++) {
    const { url, body, params } = randomCase(i);
    if (Object.values(params).some(Array.isArray)) withRepeats++;
    const signedUrl = signedVariant(url);
    if (signedUrl !== url) portVariants++;
    const signature = await twilioSignature(signedUrl, params, token);
    const label = `case ${i}: ${url} ${body}`;
    assert.equal(signature, sdk.getExpectedTwilioSignature(token, signedUrl, params), label);
    assert.equal(sdk.validateRequest(token, signature, url, params), true, label);
    const ok = await verify(url, body, signature, token);
    assert.equal(ok.ok, true, label);
    assert.deepEqual(ok.ok && ok.params, params, label);

    // Tampered: a parameter value, an added parameter, the URL, the token, the signature.
    const tamperedBodies = [body + (body ? "&" : "") + "Extra=1"];
    const names = Object.keys(params);
    if (names.length) {
      const form = new URLSearchParams(body);
      form.set(names[0], String(form.get(names[0])) + "1");
      tamperedBodies.push(form.toString());
    }
    for (const t of tamperedBodies) {
      const tp = formParams(new URLSearchParams(t));
      assert.equal(sdk.validateRequest(token, signature, url, tp), false, label);
      assert.deepEqual(await verify(url, t, signature, token), { ok: false, reason: "bad_signature" }, label);
    }
    for (const t of [url.replace("/functions/v1", "/functions/v2"), url + (url.includes("?") ? "&" : "?") + "x=1", url.startsWith("https:") ? url.replace("https:", "http:") : url.replace("http:", "https:")]) {
      if (t === url) continue;
      assert.equal(sdk.validateRequest(token, signature, t, params), false, `${label} url ${t}`);
      assert.equal((await verify(t, body, signature, token)).ok, false, `${label} url ${t}`);
    }
    const otherToken = token.replace("0", "1");
    assert.equal(sdk.validateRequest(otherToken, signature, url, params), false, label);
    assert.equal((await verify(url, body, signature, otherToken)).ok, false, label);
    const flipped = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
    assert.equal(sdk.validateRequest(token, flipped, url, params), false, label);
    assert.equal((await verify(url, body, flipped, token)).ok, false, label);
  }
  // The generator did exercise what it is meant to.
  assert.ok(withRepeats > 30, `repeated names in ${withRepeats} cases`);
  assert.ok(portVariants > 30, `port variants in ${portVariants} cases`);
});

Deno.test("twilio signature: 200 generated JSON-bodied requests (bodySHA256): same verdict as validateRequestWithBody", async () => {
  const token = "fedcba9876543210fedcba9876543210";
  for (let i = 0; i < 200; i++) {
    const { url } = randomCase(i);
    const body = JSON.stringify({ MessageSid: "SM" + i, Body: randomText(30), n: i });
    const hashed = `${url}${url.includes("?") ? "&" : "?"}bodySHA256=${await bodySha256Hex(body)}`;
    const signedUrl = signedVariant(hashed);
    const signature = await twilioSignature(signedUrl, {}, token);
    assert.equal(signature, sdk.getExpectedTwilioSignature(token, signedUrl, {}), `case ${i}`);
    assert.equal(sdk.validateRequestWithBody(token, signature, hashed, body), true, `case ${i}`);
    assert.equal((await verify(hashed, body, signature, token, "application/json")).ok, true, `case ${i}`);
    const tamperedBody = body.replace(`"n":${i}`, `"n":${i + 1}`);
    assert.equal(sdk.validateRequestWithBody(token, signature, hashed, tamperedBody), false);
    assert.deepEqual(await verify(hashed, tamperedBody, signature, token, "application/json"), { ok: false, reason: "body_hash_mismatch" });
    const otherHash = hashed.replace(/bodySHA256=[0-9a-f]/, (m) => m.slice(0, -1) + (m.endsWith("0") ? "1" : "0"));
    assert.equal(sdk.validateRequestWithBody(token, signature, otherHash, body), false);
    assert.equal((await verify(otherHash, body, signature, token, "application/json")).ok, false);
  }
});

Deno.test("twilio signature: stricter than the SDK on purpose: no re-encoded URL fallback", async () => {
  // The SDK also accepts a signature over the URL as `new URL()` re-encodes it (' → %27); Twilio
  // signs the URL it called, so we accept only that one (and its port variants).
  const url = "https://tunnel.example.dev/functions/v1/sms-inbound?name=O'Brien";
  const reencoded = new URL(url).toString();
  assert.notEqual(reencoded, url);
  const params: TwilioParams = { Body: "STOP" };
  const signature = await twilioSignature(reencoded, params, DOC_TOKEN);
  assert.equal(sdk.validateRequest(DOC_TOKEN, signature, url, params), true);
  assert.equal((await verify(url, "Body=STOP", signature, DOC_TOKEN)).ok, false);
});
