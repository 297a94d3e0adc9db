// _shared/twilio/client.ts against a small HTTP server on 127.0.0.1 that checks each request's
// shape (method, path, basic auth, form fields) and answers as Twilio's API does.
import assert from "node:assert/strict";
import { TwilioApiError, twilioClient, TwilioClient, TwilioNetworkError } from "../../../supabase/functions/_shared/twilio/client.ts";
import { SettingsSource } from "../../../supabase/functions/_shared/env.ts";

const ACCOUNT_SID = "AC" + "0".repeat(31) + "1";
const AUTH_TOKEN = "f".repeat(31) + "0"; // fake
const SERVICE_SID = "MG" + "a".repeat(32);
const MESSAGE_SID = "SM" + "b".repeat(32);

interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  contentType: string | null;
  form: Record<string, string>;
}

/** A stub Twilio API; `answer` decides the response for a request it has recorded. */
async function withStub(answer: (seen: Seen) => Response, fn: (base: string, seen: Seen[]) => Promise<void>) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const s: Seen = {
      method: req.method,
      path: url.pathname,
      authorization: req.headers.get("authorization"),
      contentType: req.headers.get("content-type"),
      form: Object.fromEntries(new URLSearchParams(text)),
    };
    seen.push(s);
    return answer(s);
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, seen);
  } finally {
    await server.shutdown();
  }
}

function messageJson(overrides: Record<string, unknown> = {}) {
  return {
    sid: MESSAGE_SID,
    account_sid: ACCOUNT_SID,
    messaging_service_sid: SERVICE_SID,
    status: "accepted",
    to: "+15145550101",
    from: null,
    body: "Alerte",
    num_segments: "0",
    error_code: null,
    error_message: null,
    date_created: "Wed, 25 Nov 2026 15:00:00 +0000",
    ...overrides,
  };
}

const client = (apiBase: string) => new TwilioClient({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, messagingServiceSid: SERVICE_SID, apiBase });
const expectedAuth = "Basic " + btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`);

Deno.test("twilio client: sendMessage POSTs the form to Messages.json with basic auth", async () => {
  await withStub(() => Response.json(messageJson(), { status: 201 }), async (base, seen) => {
    const msg = await client(base).sendMessage({ to: "+15145550101", body: "Alerte: évacuez 😀", statusCallback: "https://x.example/functions/v1/sms-status" });
    assert.equal(msg.sid, MESSAGE_SID);
    assert.equal(msg.status, "accepted");
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0], {
      method: "POST",
      path: `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`,
      authorization: expectedAuth,
      contentType: "application/x-www-form-urlencoded",
      form: {
        MessagingServiceSid: SERVICE_SID,
        To: "+15145550101",
        Body: "Alerte: évacuez 😀",
        StatusCallback: "https://x.example/functions/v1/sms-status",
      },
    });
  });
});

Deno.test("twilio client: fetchMessage GETs Messages/{sid}.json; a malformed SID is refused before any call", async () => {
  await withStub(() => Response.json(messageJson({ status: "delivered", num_segments: "1" })), async (base, seen) => {
    const msg = await client(base).fetchMessage(MESSAGE_SID);
    assert.equal(msg.status, "delivered");
    assert.equal(seen[0].method, "GET");
    assert.equal(seen[0].path, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${MESSAGE_SID}.json`);
    assert.equal(seen[0].authorization, expectedAuth);
    assert.throws(() => client(base).fetchMessage("../../Calls"), TypeError);
    assert.equal(seen.length, 1);
  });
});

Deno.test("twilio client: Twilio's error answers become TwilioApiError (21610, 21211, 20429 + Retry-After), no token in them", async () => {
  const errors: Record<string, { status: number; code: number; message: string; headers?: Record<string, string> }> = {
    "+15145550102": { status: 400, code: 21610, message: "Attempt to send to unsubscribed recipient" },
    "+15145550103": { status: 400, code: 21211, message: "Invalid 'To' Phone Number" },
    "+15145550104": { status: 429, code: 20429, message: "Too Many Requests", headers: { "retry-after": "2" } },
  };
  await withStub((s) => {
    const e = errors[s.form.To];
    if (!e) return new Response("<html>bad gateway</html>", { status: 502 });
    return Response.json({ code: e.code, message: e.message, more_info: `https://www.twilio.com/docs/errors/${e.code}`, status: e.status }, { status: e.status, headers: e.headers });
  }, async (base) => {
    const c = client(base);
    const failure = async (to: string) => {
      try {
        await c.sendMessage({ to, body: "x" });
      } catch (err) {
        return err;
      }
      assert.fail("no error");
    };
    const optedOut = await failure("+15145550102");
    assert.ok(optedOut instanceof TwilioApiError);
    assert.equal(optedOut.status, 400);
    assert.equal(optedOut.code, 21610);
    assert.equal(optedOut.optedOut, true);
    assert.equal(optedOut.rateLimited, false);
    assert.equal(optedOut.moreInfo, "https://www.twilio.com/docs/errors/21610");
    assert.equal(optedOut.message, "Attempt to send to unsubscribed recipient");

    const invalid = await failure("+15145550103");
    assert.ok(invalid instanceof TwilioApiError);
    assert.equal(invalid.code, 21211);

    const limited = await failure("+15145550104");
    assert.ok(limited instanceof TwilioApiError);
    assert.equal(limited.status, 429);
    assert.equal(limited.rateLimited, true);
    assert.equal(limited.retryAfterSeconds, 2);

    const unreadable = await failure("+15145550105");
    assert.ok(unreadable instanceof TwilioApiError);
    assert.equal(unreadable.status, 502);
    assert.equal(unreadable.code, null);

    for (const err of [optedOut, invalid, limited, unreadable]) {
      const shown = JSON.stringify({ ...(err as object), message: (err as Error).message, stack: (err as Error).stack });
      assert.ok(!shown.includes(AUTH_TOKEN), "token leaked");
      assert.ok(!shown.includes(btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`)), "authorization leaked");
    }
  });
});

Deno.test("twilio client: an unreachable API is a TwilioNetworkError without the token", async () => {
  // A port that was just free: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const err = await client(`http://127.0.0.1:${port}`).sendMessage({ to: "+15145550101", body: "x" }).catch((e) => e);
  assert.ok(err instanceof TwilioNetworkError);
  const shown = `${err.message} ${err.stack} ${String(err.cause)}`;
  assert.ok(!shown.includes(AUTH_TOKEN), "token leaked");
  assert.ok(!shown.includes(btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`)), "authorization leaked");
});

Deno.test("twilio client: twilioClient() reads the settings; TWILIO_API_BASE empty means api.twilio.com", async () => {
  const env: Record<string, string> = {
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_MESSAGING_SERVICE_SID: SERVICE_SID,
  };
  await withStub(() => Response.json(messageJson(), { status: 201 }), async (base, seen) => {
    const c = twilioClient(new SettingsSource((name) => ({ ...env, TWILIO_API_BASE: base })[name]));
    await c.sendMessage({ to: "+15145550101", body: "x" });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].authorization, expectedAuth);
    assert.equal(seen[0].form.MessagingServiceSid, SERVICE_SID);
    assert.equal(c.apiBase, base);
  });
  // Without TWILIO_API_BASE the client targets Twilio itself (checked without calling it).
  const real = twilioClient(new SettingsSource((name) => env[name]));
  assert.equal(real.apiBase, "https://api.twilio.com");
});
