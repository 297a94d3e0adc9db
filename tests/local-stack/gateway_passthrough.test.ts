// The gateway hands requests to functions byte for byte: provider signatures (Stripe, Twilio)
// are computed over the exact body, query string and URL the provider sent.
import assert from "node:assert/strict";
import { type EchoReply, env, functionUrl, header, latin1, rawHttp, sha256Hex } from "../_helpers.ts";
import { pattern } from "../fixtures/functions/_shared/bytes.ts";

async function echoPublic(rest: string, init: RequestInit = {}): Promise<{ res: Response; reply: EchoReply }> {
  const res = await fetch(functionUrl("echo-public", rest), init);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return { res, reply: JSON.parse(text) };
}

Deno.test("pass-through: a binary body arrives unchanged (every byte value, odd length)", async () => {
  const body = new Uint8Array(300_001);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 8)) & 0xff;
  crypto.getRandomValues(body.subarray(0, 4096));
  const { reply } = await echoPublic("", {
    method: "POST",
    body,
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(reply.bodyLength, body.length);
  assert.equal(reply.bodySha256, await sha256Hex(body));
  assert.equal(header(reply, "content-type"), "application/octet-stream");
  assert.equal(header(reply, "content-length"), String(body.length));
});

Deno.test("pass-through: a form body with odd encodings is not re-encoded", async () => {
  // Mixed percent-encoding case, '+' for spaces, an invalid escape, an empty value, a bare key,
  // a raw Latin-1 byte (0xE9) and raw UTF-8: any decoding/re-encoding would change the hash.
  const body = latin1("To=%2B15145550123&Body=Caf%c3%A9+%26+th%C3%A9++!&Bad=%zz&Empty=&Bare&Raw=caf\xe9&");
  const utf8 = new TextEncoder().encode("Utf8=\u00e9t\u00e9\u2713");
  const bytes = new Uint8Array([...body, ...utf8]);
  const contentType = "application/x-www-form-urlencoded; charset=ISO-8859-1";
  const { reply } = await echoPublic("", { method: "POST", body: bytes, headers: { "content-type": contentType } });
  assert.equal(reply.bodyLength, bytes.length);
  assert.equal(reply.bodySha256, await sha256Hex(bytes));
  assert.equal(header(reply, "content-type"), contentType);
});

Deno.test("pass-through: a streamed (chunked) request body arrives whole", async () => {
  const parts = [latin1("first,"), new Uint8Array([0, 255, 13, 10, 0]), latin1(",last")];
  const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (whole.set(p, at), at + p.length), 0);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of parts) controller.enqueue(p);
      controller.close();
    },
  });
  const { reply } = await echoPublic("", { method: "PUT", body: stream });
  assert.equal(reply.method, "PUT");
  assert.equal(reply.bodySha256, await sha256Hex(whole));
  // The framing may change on the way, as through hosted Supabase's gateway (Kong buffers request
  // bodies): chunked, or the exact length.
  const te = header(reply, "transfer-encoding");
  assert.ok(te === "chunked" || header(reply, "content-length") === String(whole.length), `te=${te}`);
});

Deno.test("pass-through: raw query string with repeated params, path rest and the public URL", async () => {
  const query = "a=1&a=2&b=%20x+y&c=%2F&C=%2f&d=&e&a=3";
  const { reply } = await echoPublic(`/sub/path?${query}`);
  assert.equal(reply.path, "/echo-public/sub/path");
  assert.equal(reply.query, query);
  assert.equal(reply.publicUrl, `${reply.functionsPublicBaseUrl}/echo-public/sub/path?${query}`);
  const expectedBase = Deno.env.get("FUNCTIONS_PUBLIC_URL") ?? `${env.supabaseUrl}/functions/v1`;
  assert.equal(reply.functionsPublicBaseUrl, expectedBase.replace(/\/+$/, ""));
});

Deno.test("pass-through: header values are kept; forwarding headers and request id are added", async () => {
  const signature = "t=1764000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=x==";
  const { res, reply } = await echoPublic("", {
    method: "POST",
    body: "{}",
    headers: {
      "stripe-signature": signature,
      "x-twilio-signature": "Fr/O3x+Ab1c2/d3==",
      "x-spaced": "a  b\tc",
      "x-request-id": "client-req-0001",
      "content-type": "application/json",
    },
  });
  assert.equal(header(reply, "stripe-signature"), signature);
  assert.equal(header(reply, "x-twilio-signature"), "Fr/O3x+Ab1c2/d3==");
  assert.equal(header(reply, "x-spaced"), "a  b\tc");
  assert.equal(header(reply, "x-request-id"), "client-req-0001");
  assert.equal(res.headers.get("x-request-id"), "client-req-0001");
  assert.equal(header(reply, "x-forwarded-proto"), "http");
  assert.equal(header(reply, "x-forwarded-host"), new URL(env.supabaseUrl).host);
  // Response headers set by the function come back.
  assert.equal(res.headers.get("x-echo-function"), "echo-public");
});

Deno.test("pass-through: without a client request id the gateway makes one and passes it on", async () => {
  const { res, reply } = await echoPublic("");
  const id = res.headers.get("x-request-id");
  assert.ok(id && id.length >= 16, `x-request-id: ${id}`);
  assert.equal(header(reply, "x-request-id"), id);
});

Deno.test("pass-through: raw request target, Host and non-ASCII header bytes (raw HTTP/1.1)", async () => {
  // fetch() would normalise '..' and quote characters; a provider's raw request keeps them.
  const target = `/functions/v1/echo-public/a/../b?x='y'&w="q"&e=%zz&a=1&a=2`;
  const r = await rawHttp(
    env.supabaseUrl,
    `GET ${target} HTTP/1.1\nHost: hooks.example.test:8443\nX-Forwarded-Proto: https\nX-Latin: caf\xe9\nX-Utf8: \xc3\xa9t\xc3\xa9\nConnection: close\n`,
  );
  assert.equal(r.status, 200, r.body);
  const reply: EchoReply = JSON.parse(r.body);
  assert.equal(reply.path, "/echo-public/a/../b");
  assert.equal(reply.query, `x='y'&w="q"&e=%zz&a=1&a=2`);
  assert.equal(reply.url, `http://hooks.example.test:8443/echo-public/a/../b?x='y'&w="q"&e=%zz&a=1&a=2`);
  assert.equal(header(reply, "host"), "hooks.example.test:8443");
  assert.equal(header(reply, "x-forwarded-host"), "hooks.example.test:8443");
  assert.equal(header(reply, "x-forwarded-proto"), "https", "a tunnel's forwarding headers are kept");
  // Header values are byte strings: each byte arrives as one char, as Deno exposes them.
  assert.equal(header(reply, "x-latin"), "caf\xe9");
  assert.equal(header(reply, "x-utf8"), "\xc3\xa9t\xc3\xa9");
  // No header the client did not send (fetch would add accept, accept-language, user-agent).
  for (const added of ["accept", "accept-language", "user-agent"]) {
    assert.equal(header(reply, added), undefined, `${added} was added on the way`);
  }
});

Deno.test("pass-through: methods and empty bodies", async () => {
  for (const method of ["GET", "DELETE", "PATCH", "PUT", "POST"]) {
    const { reply } = await echoPublic("/m", { method, body: method === "GET" ? undefined : "" });
    assert.equal(reply.method, method);
    assert.equal(reply.bodyLength, 0);
  }
  const head = await fetch(functionUrl("echo-public"), { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

Deno.test("pass-through: a large sized body (held in a temp file by nginx, as Kong buffers) arrives unchanged", async () => {
  const body = new Uint8Array(3 * 1024 * 1024 + 17);
  for (let at = 0; at < body.length; at += 65536) crypto.getRandomValues(body.subarray(at, at + 65536));
  const { reply } = await echoPublic("", { method: "POST", body });
  assert.equal(reply.bodyLength, body.length);
  assert.equal(reply.bodySha256, await sha256Hex(body));
  assert.equal(header(reply, "content-length"), String(body.length));
});

Deno.test("pass-through: response bodies come back unchanged, sized or streamed, small or large", async () => {
  for (const n of [0, 1, 70_000, 3 * 1024 * 1024 + 5]) {
    for (const stream of [false, true]) {
      const res = await fetch(functionUrl("bytes", `?n=${n}${stream ? "&stream=1" : ""}`));
      const got = new Uint8Array(await res.arrayBuffer());
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/octet-stream");
      assert.equal(got.length, n, `n=${n} stream=${stream}`);
      assert.equal(await sha256Hex(got), await sha256Hex(pattern(n)), `n=${n} stream=${stream}`);
    }
  }
});
