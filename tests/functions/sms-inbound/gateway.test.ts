// sms-inbound through the gateway, with the fake Twilio posting signed webhooks exactly as Twilio
// does, against the real database. Workers are created here (fictional +1 514 555 017x numbers)
// and removed with their tenants at the end.
import assert from "node:assert/strict";
import { functionUrl, type Sql, withDb } from "../../_helpers.ts";
import { CONTACT, randomSid, signedRequest, withTwilioFake } from "../twilio_helpers.ts";
import { confirmationReply, helpReply } from "../../../supabase/functions/_shared/twilio/replies.ts";
import { normalizeBody, TWILIO_DEFAULT_KEYWORDS } from "../../../supabase/functions/_shared/twilio/keywords.ts";
import { countSegments } from "../../../supabase/functions/_shared/twilio/segments.ts";
import type { TwilioFake } from "../../../scripts/fakes/twilio.ts";

const URL_INBOUND = functionUrl("sms-inbound");
const EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/** The text of the TwiML <Message>, unescaped; null for an empty <Response/>. */
function messageOf(twiml: string): string | null {
  if (twiml === EMPTY) return null;
  const m = /^<\?xml version="1\.0" encoding="UTF-8"\?><Response><Message>([^<]*)<\/Message><\/Response>$/.exec(twiml);
  assert.ok(m, `not the TwiML expected: ${twiml}`);
  // Only these entities may appear; a raw & would be malformed XML.
  assert.doesNotMatch(m[1], /&(?!amp;|lt;|gt;|quot;|apos;)/);
  return m[1].replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"').replaceAll("&apos;", "'").replaceAll("&amp;", "&");
}

interface World {
  sql: Sql;
  fake: TwilioFake;
  tenantA: string;
  tenantB: string;
  addWorker(tenant: string, phone: string, opts?: { language?: "fr" | "en"; consent?: boolean }): Promise<string>;
}

async function withWorld(fn: (w: World) => Promise<void>) {
  await withDb(async (sql) => {
    const [{ a }] = await sql`insert into public.tenants (name) values ('sms-inbound test A') returning id as a`;
    const [{ b }] = await sql`insert into public.tenants (name) values ('sms-inbound test B') returning id as b`;
    try {
      await withTwilioFake((fake) =>
        fn({
          sql,
          fake,
          tenantA: a,
          tenantB: b,
          async addWorker(tenant, phone, opts = {}) {
            const [{ id }] = await sql`insert into public.workers (tenant_id, full_name, phone, preferred_language, sms_consent, phone_verified)
              values (${tenant}, 'Travailleur test', ${phone}, ${opts.language ?? "fr"}, ${opts.consent ?? true}, true) returning id`;
            return id;
          },
        })
      );
    } finally {
      // Messages of unknown senders have no tenant: removed by number.
      await sql`delete from public.sms_alerts where direction = 'inbound' and tenant_id is null
                and from_number between '+15145550170' and '+15145550179'`;
      await sql`delete from public.tenants where id in (${a}, ${b})`;
    }
  });
}

async function consentOf(sql: Sql, workerId: string): Promise<boolean> {
  const [{ sms_consent }] = await sql`select sms_consent from public.workers where id = ${workerId}`;
  return sms_consent;
}

async function counts(sql: Sql) {
  const [row] = await sql`select
      (select count(*)::int from public.sms_alerts) as alerts,
      (select count(*)::int from public.sms_consent_events) as proofs,
      (select count(*)::int from public.system_audit_logs where area = 'twilio') as audits,
      (select count(*) filter (where sms_consent)::int from public.workers) as consenting`;
  return row;
}

const OPT_OUT = ["STOP", "stop", "  Arrêt ! ", "arret", "ARRÊT", "Arrêt.", "Stopall", "unsubscribe", "Cancel", "end", "QUIT", "revoke", "optout", " stop!!"];
const OPT_IN = ["START", "start !", "Yes", "unstop", "  Start. "];
const HELP = ["HELP", "help?", "aide", "Aide !", "AÏDE", "INFO", " info. "];

/** Twilio's default handling (TWILIO_ADVANCED_OPT_OUT=false here) answers its English keywords itself. */
function twilioAnswers(body: string): boolean {
  return TWILIO_DEFAULT_KEYWORDS.has(normalizeBody(body));
}

Deno.test("sms-inbound (gateway): every opt-out, opt-in and help keyword, in both languages, any case/accent/punctuation", async () => {
  await withWorld(async ({ sql, fake, tenantA, addWorker }) => {
    const worker = await addWorker(tenantA, "+15145550170", { language: "fr", consent: true });
    for (const body of OPT_OUT) {
      await sql`update public.workers set sms_consent = true where id = ${worker}`;
      const sid = randomSid();
      const res = await fake.postInboundSms(URL_INBOUND, { from: "+15145550170", body, messageSid: sid });
      assert.equal(res.status, 200, body);
      // ARRET is ours to confirm; Twilio confirms STOP and its other English keywords itself.
      assert.equal(messageOf(res.responseBody), twilioAnswers(body) ? null : confirmationReply("opt_out", "fr", CONTACT), body);
      assert.equal(await consentOf(sql, worker), false, body);
      const proofs = await sql`select keyword, message_body, new_consent, source from public.sms_consent_events where provider_message_id = ${sid}`;
      assert.equal(proofs.length, 1, body);
      assert.equal(proofs[0].message_body, body);
      assert.equal(proofs[0].new_consent, false);
      assert.equal(proofs[0].source, "keyword");
    }
    for (const body of OPT_IN) {
      await sql`update public.workers set sms_consent = false where id = ${worker}`;
      const res = await fake.postInboundSms(URL_INBOUND, { from: "+15145550170", body });
      // START, YES, UNSTOP: Twilio's default handling answers them (a reply of ours would be a second one).
      assert.equal(messageOf(res.responseBody), null, body);
      assert.equal(await consentOf(sql, worker), true, body);
    }
    for (const body of HELP) {
      const before = await consentOf(sql, worker);
      const res = await fake.postInboundSms(URL_INBOUND, { from: "+15145550170", body });
      assert.equal(res.status, 200);
      if (twilioAnswers(body)) {
        assert.equal(messageOf(res.responseBody), null, body);
        assert.equal(await consentOf(sql, worker), before, body);
        continue;
      }
      const reply = messageOf(res.responseBody)!;
      assert.equal(reply, helpReply(CONTACT), body);
      assert.ok(reply.includes(CONTACT));
      // French first, each language ≤ 160 characters, one GSM-7 segment each; two together.
      const [fr, en] = reply.split("\n");
      assert.match(fr, /^C-Secur360 : alertes/);
      assert.ok(fr.length <= 160 && en.length <= 160, `${fr.length} / ${en.length}`);
      assert.equal(countSegments(reply).encoding, "GSM-7");
      assert.equal(countSegments(reply).segments, 2);
      assert.equal(await consentOf(sql, worker), before, body);
    }
  });
});

Deno.test("sms-inbound (gateway): confirmations in the worker's language, else the keyword's; confirmations are one segment", async () => {
  await withWorld(async ({ sql, fake, tenantA, addWorker }) => {
    await addWorker(tenantA, "+15145550171", { language: "en" });
    // An English-speaking worker who writes ARRET gets the English confirmation.
    const en = await fake.postInboundSms(URL_INBOUND, { from: "+15145550171", body: "Arrêt" });
    assert.equal(messageOf(en.responseBody), confirmationReply("opt_out", "en", CONTACT));
    assert.equal(countSegments(messageOf(en.responseBody)!).segments, 1);
    // Unknown senders: the keyword's language (ARRET fr, STOP en).
    const fr = await fake.postInboundSms(URL_INBOUND, { from: "+15145550172", body: "arret" });
    assert.equal(messageOf(fr.responseBody), confirmationReply("opt_out", "fr", CONTACT));
    assert.equal(countSegments(messageOf(fr.responseBody)!).segments, 1);
    // STOP and START: Twilio's default handling answers them itself; ours would be a second reply.
    const stop = await fake.postInboundSms(URL_INBOUND, { from: "+15145550172", body: "STOP" });
    assert.equal(messageOf(stop.responseBody), null);
    const start = await fake.postInboundSms(URL_INBOUND, { from: "+15145550172", body: "Start" });
    assert.equal(messageOf(start.responseBody), null);
    void sql;
  });
});

Deno.test("sms-inbound (gateway): a sentence that merely contains STOP, or an unknown sender's text, is stored and audited, with an empty reply", async () => {
  await withWorld(async ({ sql, fake, tenantA, addWorker }) => {
    const worker = await addWorker(tenantA, "+15145550173", { consent: true });
    for (const [from, body] of [["+15145550173", "Please stop sending me these"], ["+15145550173", "STOP le chantier?? non, arrêt de travail demain"], ["+15145550174", "Bonjour"]]) {
      const sid = randomSid();
      const res = await fake.postInboundSms(URL_INBOUND, { from, body, messageSid: sid });
      assert.equal(res.status, 200);
      assert.equal(res.responseBody, EMPTY, body);
      const [alert] = await sql`select body, direction, status, tenant_id from public.sms_alerts where provider_message_id = ${sid}`;
      assert.deepEqual({ ...alert }, { body, direction: "inbound", status: "received", tenant_id: from === "+15145550173" ? tenantA : null });
      const [audit] = await sql`select details from public.system_audit_logs where area = 'twilio' and action = 'inbound' and target = ${sid}`;
      assert.equal(audit.details.kind, null);
      assert.equal(audit.details.known_sender, from === "+15145550173");
      assert.equal(JSON.stringify(audit.details).includes(body), false, "no message text in the audit trail");
    }
    assert.equal(await consentOf(sql, worker), true);
  });
});

Deno.test("sms-inbound (gateway): OptOutType wins over the body, and Twilio having answered, we reply nothing", async () => {
  await withWorld(async ({ sql, fake, tenantA, addWorker }) => {
    const worker = await addWorker(tenantA, "+15145550175", { consent: true });
    const out = await fake.postInboundSms(URL_INBOUND, { from: "+15145550175", body: "Non merci", optOutType: "STOP" });
    assert.equal(out.responseBody, EMPTY);
    assert.equal(await consentOf(sql, worker), false);
    const back = await fake.postInboundSms(URL_INBOUND, { from: "+15145550175", body: "STOP", optOutType: "START" });
    assert.equal(back.responseBody, EMPTY);
    assert.equal(await consentOf(sql, worker), true);
    const help = await fake.postInboundSms(URL_INBOUND, { from: "+15145550175", body: "STOP", optOutType: "HELP" });
    assert.equal(help.responseBody, EMPTY);
    assert.equal(await consentOf(sql, worker), true);
  });
});

Deno.test("sms-inbound (gateway): a replayed MessageSid gets the same reply and changes nothing twice", async () => {
  await withWorld(async ({ sql, fake, tenantA, addWorker }) => {
    const worker = await addWorker(tenantA, "+15145550176", { language: "en", consent: true });
    const sid = randomSid();
    const first = await fake.postInboundSms(URL_INBOUND, { from: "+15145550176", body: "ARRÊT", messageSid: sid });
    // Someone opts back in in between: the replay of the old STOP must not undo it.
    await sql`update public.workers set sms_consent = true where id = ${worker}`;
    const before = await counts(sql);
    const again = await fake.postInboundSms(URL_INBOUND, { from: "+15145550176", body: "ARRÊT", messageSid: sid });
    assert.equal(again.status, 200);
    assert.equal(again.responseBody, first.responseBody);
    assert.equal(messageOf(first.responseBody), confirmationReply("opt_out", "en", CONTACT));
    assert.deepEqual(await counts(sql), before);
    assert.equal(await consentOf(sql, worker), true);
    const [{ n }] = await sql`select count(*)::int as n from public.sms_consent_events where provider_message_id = ${sid}`;
    assert.equal(n, 1);
  });
});

Deno.test("sms-inbound (gateway): a number in two tenants: both workers flip, one proof row each, reply in the first worker's language", async () => {
  await withWorld(async ({ sql, fake, tenantA, tenantB, addWorker }) => {
    const a = await addWorker(tenantA, "+15145550177", { language: "fr", consent: true });
    const b = await addWorker(tenantB, "+15145550177", { language: "en", consent: true });
    const sid = randomSid();
    const res = await fake.postInboundSms(URL_INBOUND, { from: "+15145550177", body: "arrêt", messageSid: sid });
    assert.equal(await consentOf(sql, a), false);
    assert.equal(await consentOf(sql, b), false);
    const proofs = await sql`select tenant_id, worker_id from public.sms_consent_events where provider_message_id = ${sid} order by worker_id`;
    assert.deepEqual(proofs.map((p) => p.worker_id).sort(), [a, b].sort());
    const first = [a, b].sort()[0] === a ? "fr" : "en";
    assert.equal(messageOf(res.responseBody), confirmationReply("opt_out", first, CONTACT));
    // The message itself is attributed to no tenant (it belongs to both).
    const [alert] = await sql`select tenant_id from public.sms_alerts where provider_message_id = ${sid}`;
    assert.equal(alert.tenant_id, null);
  });
});

Deno.test("sms-inbound (gateway): malformed or forged webhooks → 4xx, never 5xx, and no row", async () => {
  await withWorld(async ({ sql, tenantA, addWorker }) => {
    await addWorker(tenantA, "+15145550178", { consent: true });
    const p = { MessageSid: randomSid(), From: "+15145550178", To: "+15145550199", Body: "STOP", AccountSid: "AC00" };
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const cases: [string, number, () => Request | Promise<Request>][] = [
      ["GET", 405, () => new Request(URL_INBOUND)],
      ["JSON", 415, () => new Request(URL_INBOUND, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(p) })],
      ["unsigned", 403, () => new Request(URL_INBOUND, { method: "POST", headers: form, body: new URLSearchParams(p) })],
      ["tampered parameter", 403, () => signedRequest(URL_INBOUND, { ...p, From: "+15145550179" }, { signedParams: p })],
      ["tampered URL", 403, () => signedRequest(`${URL_INBOUND}?tenant=b`, p, { signedUrl: URL_INBOUND })],
      ["added parameter", 403, () => signedRequest(URL_INBOUND, { ...p, OptOutType: "STOP" }, { signedParams: p })],
      ["wrong token", 403, () => signedRequest(URL_INBOUND, p, { token: "0123456789abcdef0123456789abcdef" })],
      ["truncated form, signed as sent", 400, () => signedRequest(URL_INBOUND, { MessageSid: p.MessageSid, From: p.From })],
      ["truncated form, signed whole", 403, () => signedRequest(URL_INBOUND, p, { body: new URLSearchParams(p).toString().slice(0, 40) })],
      ["invalid UTF-8", 400, () => signedRequest(URL_INBOUND, p, { body: new Uint8Array([...new TextEncoder().encode(new URLSearchParams(p).toString()), 0xff]) })],
      ["no MessageSid", 400, () => signedRequest(URL_INBOUND, { From: p.From, To: p.To, Body: p.Body })],
      ["no Body", 400, () => signedRequest(URL_INBOUND, { MessageSid: p.MessageSid, From: p.From, To: p.To })],
      ["over 1 MiB", 413, () => signedRequest(URL_INBOUND, { ...p, Body: "x".repeat(1024 * 1024 + 1) })],
      // PostgreSQL text (and jsonb) cannot hold U+0000: refused as input, not a 500.
      ["NUL in the body, signed", 400, () => signedRequest(URL_INBOUND, { ...p, Body: "ST\u0000OP" })],
    ];
    const before = await counts(sql);
    for (const [name, status, make] of cases) {
      const res = await fetch(await make());
      const text = await res.text();
      assert.equal(res.status, status, `${name}: ${text}`);
    }
    assert.deepEqual(await counts(sql), before);
  });
});
