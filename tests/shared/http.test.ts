// _shared/http.ts: handlers called with Request objects, no network.
import assert from "node:assert/strict";
import {
  handle,
  HttpError,
  readBytes,
  readForm,
  readJson,
  readText,
  requireMethod,
} from "../../supabase/functions/_shared/http.ts";
import { SettingsError, SettingsSource } from "../../supabase/functions/_shared/env.ts";

const URL_ = "http://fn.local/test";

/** A body that arrives in chunks without a content-length (as a chunked upload does); counts pulls. */
function chunkedBody(chunks: number, chunkSize: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === chunks) return controller.close();
      sent++;
      controller.enqueue(new Uint8Array(chunkSize).fill(0x61));
    },
  }, { highWaterMark: 0 }); // pulled only when read
  return { stream, pulled: () => sent };
}

async function json(res: Response): Promise<Record<string, unknown>> {
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  return await res.json();
}

Deno.test("http: the gateway's request id is kept on the response and in errors; a new one otherwise", async () => {
  const ok = handle(() => new Response("hi"));
  assert.equal((await ok(new Request(URL_, { headers: { "x-request-id": "req-123" } }))).headers.get("x-request-id"), "req-123");
  const generated = (await ok(new Request(URL_))).headers.get("x-request-id") ?? "";
  assert.match(generated, /^[0-9a-f-]{36}$/);
  // An insane id (it would be echoed into logs and bodies) is replaced.
  const odd = (await ok(new Request(URL_, { headers: { "x-request-id": "a b<script>" } }))).headers.get("x-request-id");
  assert.match(odd ?? "", /^[0-9a-f-]{36}$/);

  const fails = handle(() => {
    throw new HttpError(409, "conflict", "already done");
  });
  const res = await fails(new Request(URL_, { headers: { "x-request-id": "req-456" } }));
  assert.equal(res.status, 409);
  assert.equal(res.headers.get("x-request-id"), "req-456");
  assert.deepEqual(await json(res), { error: "conflict", message: "already done", request_id: "req-456" });
});

Deno.test("http: a response with immutable headers (from fetch) still gets its request id", async () => {
  const frozen = Response.error(); // headers are immutable, as on a fetch() response
  assert.throws(() => frozen.headers.set("x", "y"));
  const res = await handle(() => Response.redirect("http://elsewhere.local/", 302))(new Request(URL_));
  assert.equal(res.status, 302);
  assert.ok(res.headers.get("x-request-id"));
});

Deno.test("http: method and content-type checks answer 405 (with Allow) and 415", async () => {
  const handler = handle(async (req) => {
    requireMethod(req, "POST");
    return Response.json(await readJson(req));
  });
  const get = await handler(new Request(URL_));
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  assert.equal((await json(get)).error, "method_not_allowed");

  const form = await handler(new Request(URL_, { method: "POST", body: "a=1", headers: { "content-type": "text/plain" } }));
  assert.equal(form.status, 415);
  assert.equal((await json(form)).error, "unsupported_media_type");

  const good = await handler(
    new Request(URL_, { method: "POST", body: '{"a":1}', headers: { "content-type": "Application/JSON; charset=utf-8" } }),
  );
  assert.equal(good.status, 200);
  assert.deepEqual(await good.json(), { a: 1 });
});

Deno.test("http: malformed JSON, invalid UTF-8 and a bad content-length are 400s with fixed messages", async () => {
  const handler = handle(async (req) => Response.json(await readJson(req)));
  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    handler(new Request(URL_, { method: "POST", body, headers: { "content-type": "application/json", ...headers } }));

  const broken = await post('{"secret-ish": "value", oops');
  assert.equal(broken.status, 400);
  const body = await json(broken);
  assert.equal(body.error, "invalid_json");
  assert.ok(!JSON.stringify(body).includes("oops"), "the parser's message (which quotes the input) is not echoed");
  assert.ok(!JSON.stringify(body).includes("at "), "no stack trace");

  const latin1 = await post(new Uint8Array([0x7b, 0x22, 0xe9, 0x22, 0x7d]));
  assert.equal(latin1.status, 400);
  assert.match(String((await json(latin1)).message), /UTF-8/);

  const badLength = await post("{}", { "content-length": "12abc" });
  assert.equal(badLength.status, 400);
});

Deno.test("http: a declared content-length over the limit is refused before a byte is read", async () => {
  const { stream, pulled } = chunkedBody(100, 1024);
  const req = new Request(URL_, {
    method: "POST",
    body: stream,
    headers: { "content-type": "application/json", "content-length": "102400" },
  });
  const res = await handle(async (r) => Response.json(await readJson(r, { limit: 10_000 })))(req);
  assert.equal(res.status, 413);
  assert.equal((await json(res)).error, "payload_too_large");
  assert.equal(pulled(), 0, "not one chunk was pulled");
});

Deno.test("http: a chunked body is counted as it streams and abandoned as soon as it goes over", async () => {
  const { stream, pulled } = chunkedBody(1000, 1024); // 1000 KiB on offer
  const req = new Request(URL_, { method: "POST", body: stream });
  await assert.rejects(readBytes(req, { limit: 4096 }), (e: unknown) => e instanceof HttpError && e.status === 413);
  assert.ok(pulled() <= 6, `read ${pulled()} chunks of 1 KiB for a 4 KiB limit`);

  // Right at the limit is fine.
  const exact = chunkedBody(4, 1024);
  assert.equal((await readBytes(new Request(URL_, { method: "POST", body: exact.stream }), { limit: 4096 })).length, 4096);
});

Deno.test("http: a body that breaks while streaming is a 400, not a 500", async () => {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("partial"));
      controller.error(new Error("connection reset"));
    },
  });
  const res = await handle(async (req) => new Response(await readText(req)))(new Request(URL_, { method: "POST", body: stream }));
  assert.equal(res.status, 400);
});

Deno.test("http: form bodies (Twilio webhooks) parse, keep the raw text, tolerate stray percent signs", async () => {
  const raw = "From=%2B15145550101&Body=Bonjour+%C3%A9quipe&Odd=100%";
  const { params, raw: text } = await readForm(
    new Request(URL_, { method: "POST", body: raw, headers: { "content-type": "application/x-www-form-urlencoded" } }),
  );
  assert.equal(text, raw);
  assert.equal(params.get("From"), "+15145550101");
  assert.equal(params.get("Body"), "Bonjour équipe");
  assert.equal(params.get("Odd"), "100%");
  const wrongType = await handle(async (req) => Response.json(Object.fromEntries((await readForm(req)).params)))(
    new Request(URL_, { method: "POST", body: "{}", headers: { "content-type": "application/json" } }),
  );
  assert.equal(wrongType.status, 415);
});

Deno.test("http: a settings error is a 503 naming the setting and why, never its value", async () => {
  const value = ["pk", "live", "51FixtureOnlyNotARealKey000"].join("_") /* built at run time: no live-looking key in the source */;
  const source = new SettingsSource((name) => ({ STRIPE_SECRET_KEY: value } as Record<string, string>)[name]);
  const errors: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.map(String).join(" "));
  let res: Response;
  try {
    res = await handle(() => {
      source.get("STRIPE_SECRET_KEY", "APP_URL");
      return new Response("unreachable");
    })(new Request(URL_, { headers: { "x-request-id": "req-503" } }));
  } finally {
    console.error = original;
  }
  assert.equal(res.status, 503);
  const text = await res.text();
  assert.ok(!text.includes("51FixtureOnly"), "the value is not in the response");
  assert.ok(!errors.join("\n").includes("51FixtureOnly"), "the value is not in the log");
  assert.deepEqual(JSON.parse(text), {
    settings: [
      { name: "STRIPE_SECRET_KEY", status: "malformed", reason: "is a publishable key: the secret key starts with sk_ or rk_" },
      { name: "APP_URL", status: "missing", reason: "is not set" },
    ],
    error: "settings_invalid",
    message: "the function is not configured correctly",
    request_id: "req-503",
  });
  assert.ok(new SettingsError([]) instanceof Error);
});

Deno.test("http: an unexpected error is a 500 with the request id only; the stack goes to the log", async () => {
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  let res: Response;
  try {
    res = await handle(() => {
      throw new Error("db password is hunter2");
    })(new Request(URL_, { headers: { "x-request-id": "req-500" } }));
  } finally {
    console.error = original;
  }
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), { error: "internal_error", message: "internal error", request_id: "req-500" });
  assert.equal(logged.length, 1);
  assert.match(String(logged[0][0]), /req-500/);
  assert.ok(logged[0][1] instanceof Error, "the error itself (with its stack) is logged");
});
