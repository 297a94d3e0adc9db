// send-sms through the gateway: users (ES256 sessions minted as `npm run stack -- token` does) and
// the service (secret key), the real database (reservation as the user: RLS decides), and the
// runner's fake Twilio receiving the messages (counted through its message list, per number).
// Numbers used here: +1 514 555 0187 … 0198 (fictional), each test its own tenant.
import assert from "node:assert/strict";
import { env, functionUrl, mintUserToken, type Sql, withDb } from "../../_helpers.ts";
import { fixtureSettings } from "../twilio_helpers.ts";

const URL_ = functionUrl("send-sms");
const OWNER = fixtureSettings.OWNER_MOBILE;
const OUR_NUMBER = fixtureSettings.TWILIO_PHONE_NUMBER;

/** The messages the runner's fake Twilio holds for `to`. */
async function messagesAt(to: string): Promise<{ sid: string; to: string; body: string }[]> {
  const base = Deno.env.get("TWILIO_API_BASE");
  assert.ok(base, "the runner sets TWILIO_API_BASE");
  const res = await fetch(
    `${base}/2010-04-01/Accounts/${fixtureSettings.TWILIO_ACCOUNT_SID}/Messages.json?To=${encodeURIComponent(to)}`,
    { headers: { authorization: `Basic ${btoa(`${fixtureSettings.TWILIO_ACCOUNT_SID}:${fixtureSettings.TWILIO_AUTH_TOKEN}`)}` } },
  );
  assert.equal(res.status, 200);
  return (await res.json()).messages;
}

interface Fixture {
  sql: Sql;
  tenant: string;
  /** A user with this role in the tenant, and its session token. */
  user(role: "owner" | "admin" | "member" | null): Promise<string>;
  worker(phone: string, opts?: { consent?: boolean; verified?: boolean; language?: "fr" | "en"; site?: string }): Promise<string>;
  site(name: string): Promise<string>;
}

async function withTenant(fn: (f: Fixture) => Promise<void>) {
  await withDb(async (sql) => {
    const [{ id: tenant }] = await sql`insert into public.tenants (name) values (${"send-sms " + crypto.randomUUID()}) returning id`;
    const f: Fixture = {
      sql,
      tenant,
      async user(role) {
        const id = crypto.randomUUID();
        await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                  values (${id}, 'authenticated', 'authenticated', ${`send-sms-${id}@example.test`}, now(),
                          '{"provider": "email", "providers": ["email"]}', '{}', now(), now())`;
        if (role) await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant}, ${id}, ${role})`;
        return await mintUserToken(id);
      },
      async worker(phone, opts = {}) {
        const [{ id }] = await sql`
          insert into public.workers (tenant_id, site_id, full_name, phone, sms_consent, phone_verified, preferred_language)
          values (${tenant}, ${opts.site ?? null}, 'Send-sms test', ${phone}, ${opts.consent ?? true}, ${opts.verified ?? true},
                  ${opts.language ?? "fr"}) returning id`;
        return id;
      },
      async site(name) {
        const [{ id }] = await sql`insert into public.sites (tenant_id, name) values (${tenant}, ${name}) returning id`;
        return id;
      },
    };
    await fn(f);
  });
}

function post(body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
const asUserToken = (token: string) => ({ authorization: `Bearer ${token}`, apikey: env.publishableKey });
const asServiceKey = () => ({ apikey: env.secretKey, authorization: `Bearer ${env.secretKey}` });

async function json(res: Response) {
  const text = await res.text();
  assert.ok(!text.includes(env.secretKey) && !text.includes(fixtureSettings.TWILIO_AUTH_TOKEN), "no key in a response");
  return JSON.parse(text);
}

Deno.test("send-sms: a tenant admin texts a worker → 200, message_sid, one message at the fake, from our number", async () => {
  await withTenant(async (f) => {
    const phone = "+15145550187";
    const worker = await f.worker(phone);
    const before = (await messagesAt(phone)).length;
    const res = await post({ worker_id: worker, body: "Alerte: test admin" }, asUserToken(await f.user("admin")));
    const out = await json(res);
    assert.equal(res.status, 200, JSON.stringify(out));
    assert.match(out.message_sid, /^SM[0-9a-f]{32}$/);
    assert.deepEqual(out.messages.map((m: { worker_id: string; to: string }) => [m.worker_id, m.to]), [[worker, phone]]);
    assert.equal(out.duplicate, false);
    const at = await messagesAt(phone);
    assert.equal(at.length, before + 1);
    const [row] = await f.sql`select from_number, provider_message_id, body from public.sms_alerts where worker_id = ${worker}`;
    assert.deepEqual(row, { from_number: OUR_NUMBER, provider_message_id: out.message_sid, body: "Alerte: test admin" });
  });
});

Deno.test("send-sms: a member → 403, another tenant's admin → 404, no user → 401; no provider call, no row", async () => {
  await withTenant(async (f) => {
    const phone = "+15145550188";
    const worker = await f.worker(phone);
    const member = await f.user("member");
    let outsider = "";
    await withTenant(async (other) => {
      outsider = await other.user("admin");
    });
    const before = (await messagesAt(phone)).length;
    const cases: [Record<string, string>, number, string][] = [
      [asUserToken(member), 403, "forbidden"],
      [asUserToken(outsider), 404, "not_found"],
      [asUserToken(await f.user(null)), 404, "not_found"],
      [{ apikey: env.publishableKey }, 401, "unauthorized"],
      [{}, 401, "unauthorized"],
    ];
    for (const [headers, status, error] of cases) {
      const res = await post({ worker_id: worker, body: "Alerte" }, headers);
      const out = await json(res);
      assert.deepEqual([res.status, out.error], [status, error], JSON.stringify(out));
    }
    assert.equal((await messagesAt(phone)).length, before);
    const [{ n }] = await f.sql`select count(*)::int as n from public.sms_alerts where worker_id = ${worker}`;
    assert.equal(n, 0);
  });
});

Deno.test("send-sms: the service texts OWNER_MOBILE (`to`, normalised); a user with `to` → 403", async () => {
  await withTenant(async (f) => {
    const before = (await messagesAt(OWNER)).length;
    const national = OWNER.replace(/^\+1(\d{3})(\d{3})(\d{4})$/, "($1) $2-$3");
    const res = await post({ to: national, body: "Test SMS from the operator" }, asServiceKey());
    const out = await json(res);
    assert.equal(res.status, 200, JSON.stringify(out));
    assert.equal(out.messages[0].to, OWNER);
    assert.match(out.message_sid, /^SM/);
    assert.equal((await messagesAt(OWNER)).length, before + 1);

    const denied = await post({ to: OWNER, body: "not from a user" }, asUserToken(await f.user("owner")));
    assert.deepEqual([denied.status, (await json(denied)).error], [403, "forbidden"]);
    assert.equal((await messagesAt(OWNER)).length, before + 1);
  });
});

Deno.test("send-sms: opted-out and unverified workers → skipped with reasons, no provider call", async () => {
  await withTenant(async (f) => {
    const token = await f.user("owner");
    for (const [phone, opts, reasons] of [
      ["+15145550189", { consent: false }, ["no_consent"]],
      ["+15145550190", { verified: false }, ["phone_not_verified"]],
    ] as const) {
      const worker = await f.worker(phone, opts);
      const before = (await messagesAt(phone)).length;
      const res = await post({ worker_id: worker, body: "Alerte" }, asUserToken(token));
      const out = await json(res);
      assert.equal(res.status, 200, JSON.stringify(out));
      assert.deepEqual(out.messages, []);
      assert.deepEqual(out.skipped, [{ worker_id: worker, reasons }]);
      assert.equal(out.message_sid, undefined);
      assert.equal((await messagesAt(phone)).length, before);
    }
  });
});

Deno.test("send-sms: malformed input → 400 naming the problem, 415, 405; never a provider call", async () => {
  await withTenant(async (f) => {
    const phone = "+15145550191";
    const worker = await f.worker(phone);
    const before = (await messagesAt(phone)).length;
    const service = asServiceKey();
    const cases: [unknown, RegExp][] = [
      [{ to: "514-555-01", body: "x" }, /^to /],
      [{ to: "not a number", body: "x" }, /^to /],
      [{ worker_id: worker, body: "" }, /^body must not be empty/],
      [{ worker_id: worker, body: "   " }, /^body must not be empty/],
      [{ worker_id: worker, body: "a\u0000b" }, /^body must not contain NUL/],
      [{ site_id: worker, body_fr: "a", body_en: "b\u0000" }, /^body_en must not contain NUL/],
      [{ worker_id: worker, body: "a".repeat(1601) }, /1600 characters/],
      [{ worker_id: worker, body: "€".repeat(800) }, /segments/],
      [{ worker_id: worker, body: "ç".repeat(671) }, /11 SMS segments \(UCS-2\); at most 10/],
      [{ worker_id: worker, body: "x", extra: 1 }, /unknown field\(s\): extra/],
      [{ worker_id: worker, to: OWNER, body: "x" }, /exactly one of/],
      [{ body: "x" }, /exactly one of/],
      [{ worker_id: "nope", body: "x" }, /worker_id must be a UUID/],
      [{ worker_id: worker }, /body/],
      [{ worker_id: worker, body_fr: "a", body_en: "b" }, /site alerts/],
      [{ worker_id: worker, body: 42 }, /^body must be a string/],
      [[1, 2], /JSON object/],
      ["{not json", /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body, service);
      const out = await json(res);
      assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 80)} → ${JSON.stringify(out)}`);
      assert.match(out.message, message, JSON.stringify(body).slice(0, 80));
    }
    const badKey = await post({ worker_id: worker, body: "x" }, { ...service, "idempotency-key": "a".repeat(201) });
    assert.equal(badKey.status, 400);
    assert.match((await json(badKey)).message, /Idempotency-Key/);
    const form = await fetch(URL_, { method: "POST", headers: { ...service, "content-type": "text/plain" }, body: "hi" });
    assert.deepEqual([form.status, (await json(form)).error], [415, "unsupported_media_type"]);
    const get = await fetch(URL_, { headers: service });
    assert.deepEqual([get.status, (await json(get)).error], [405, "method_not_allowed"]);
    assert.equal((await messagesAt(phone)).length, before);
  });
});

Deno.test("send-sms: an Idempotency-Key replay returns the first answer (duplicate), one SMS", async () => {
  await withTenant(async (f) => {
    const phone = "+15145550192";
    const worker = await f.worker(phone);
    const token = await f.user("admin");
    const before = (await messagesAt(phone)).length;
    const key = `retry-${crypto.randomUUID()}`;
    const first = await json(await post({ worker_id: worker, body: "Une fois" }, { ...asUserToken(token), "idempotency-key": key }));
    const res = await post({ worker_id: worker, body: "Une fois" }, { ...asUserToken(token), "idempotency-key": key });
    const again = await json(res);
    assert.equal(res.status, 200);
    assert.equal(again.duplicate, true);
    assert.equal(again.message_sid, first.message_sid);
    assert.deepEqual(again.messages.map((m: { message_sid: string }) => m.message_sid), [first.message_sid]);
    assert.equal((await messagesAt(phone)).length, before + 1);
    // The same key for a different request is a conflict, not a send.
    const other = await post({ worker_id: worker, body: "Autre" }, { ...asUserToken(token), "idempotency-key": key });
    assert.equal(other.status, 409);
    assert.equal((await messagesAt(phone)).length, before + 1);
  });
});

Deno.test("send-sms: a site alert → each consenting worker in their language, the others skipped", async () => {
  await withTenant(async (f) => {
    const site = await f.site("Chantier nord");
    const fr = await f.worker("+15145550193", { site, language: "fr" });
    const en = await f.worker("+15145550194", { site, language: "en" });
    const out_ = await f.worker("+15145550195", { site, consent: false });
    const unverified = await f.worker("+15145550196", { site, verified: false, language: "en" });
    await f.worker("+15145550197"); // not on the site
    const before = await Promise.all(["+15145550193", "+15145550194", "+15145550195", "+15145550196", "+15145550197"].map(messagesAt));
    const res = await post({ site_id: site, body_fr: "Évacuez le chantier", body_en: "Evacuate the site" }, asUserToken(await f.user("admin")));
    const out = await json(res);
    assert.equal(res.status, 200, JSON.stringify(out));
    const sent = Object.fromEntries(out.messages.map((m: { worker_id: string; status: string }) => [m.worker_id, m]));
    assert.deepEqual(Object.keys(sent).sort(), [fr, en].sort());
    assert.equal(out.message_sid, undefined, "two messages: no top-level message_sid");
    assert.deepEqual(
      out.skipped.map((s: { worker_id: string; reasons: string[] }) => [s.worker_id, s.reasons]).sort(),
      [[out_, ["no_consent"]], [unverified, ["phone_not_verified"]]].sort(),
    );
    const after = await Promise.all(["+15145550193", "+15145550194", "+15145550195", "+15145550196", "+15145550197"].map(messagesAt));
    assert.deepEqual(after.map((a, i) => a.length - before[i].length), [1, 1, 0, 0, 0]);
    assert.equal(after[0].at(-1)!.body, "Évacuez le chantier");
    assert.equal(after[1].at(-1)!.body, "Evacuate the site");
  });
});
