// `npm run ops -- sms send | simulate-inbound` against the runner's stack: the real send-sms and
// sms-inbound through the gateway, the real database, the runner's fake Twilio. Each test has its
// own tenant; numbers used here: +1 514 555 0152 … 0159 (fictional).
import assert from "node:assert/strict";
import { env, startHitServer, withDb } from "../_helpers.ts";
import { fixtureSettings, hostedValues, messagesAt, ops, opsJson, STACK_TRACE, withEnvFile, withTenant } from "./_ops.ts";

const OWNER = fixtureSettings.OWNER_MOBILE;
const SID = /^SM[0-9a-f]{32}$/;

/** No secret of the target in any output. */
function assertNoSecret(run: { stdout: string; stderr: string }) {
  for (const secret of [env.secretKey, fixtureSettings.TWILIO_AUTH_TOKEN]) {
    assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), "no secret in the output");
  }
}

Deno.test("ops sms send --to: the operator's test SMS → exit 0, message_sid shown; the fake got it; audited sms_send", async () => {
  const body = `Test SMS C-Secur360 - ops ${crypto.randomUUID()}`;
  const run = await ops(["sms", "send", "--to", OWNER, "--body", body]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  assertNoSecret(run);
  const sid = /^message_sid\s+(SM[0-9a-f]{32})$/m.exec(run.stdout)?.[1];
  assert.ok(sid, `a message_sid line:\n${run.stdout}`);
  assert.match(run.stdout, /^send-sms: 1 sent, 0 failed, 0 skipped$/m);
  assert.match(run.stdout, new RegExp(`^To\\s+Status\\s+Message SID\n\\${OWNER}\\s+(accepted|queued)\\s+${sid}$`, "m"));
  assert.ok((await messagesAt(OWNER)).some((m) => m.sid === sid && m.body === body), "the fake Twilio has the message");
  const [audit] = await withDb((sql) =>
    sql`select l.action from public.system_audit_logs as l join public.sms_alerts as a on l.target = 'sms_alerts:' || a.id
         where a.provider_message_id = ${sid} and l.area = 'twilio' and l.action = 'sms_send'`
  );
  assert.equal(audit?.action, "sms_send");
});

Deno.test("ops --json sms send: the documented shape; Idempotency-Key replays the first answer, one SMS", async () => {
  const body = `ops json ${crypto.randomUUID()}`;
  const key = `ops-test-${crypto.randomUUID()}`;
  const first = await opsJson(["sms", "send", "--to", OWNER, "--body", body, "--idempotency-key", key]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, "");
  assertNoSecret(first);
  const j = first.json;
  assert.deepEqual(Object.keys(j).sort(), ["duplicate", "http_status", "message_sid", "messages", "ok", "request_id", "skipped", "target"]);
  assert.equal(j.ok, true);
  assert.deepEqual(j.target, { kind: "local" });
  assert.equal(j.http_status, 200);
  assert.match(String(j.request_id), /^[0-9a-f-]{16,}$/);
  assert.match(String(j.message_sid), SID);
  assert.equal(j.duplicate, false);
  assert.deepEqual(j.skipped, []);
  assert.deepEqual(j.messages, [{ worker_id: null, to: OWNER, status: (j.messages as { status: string }[])[0].status, message_sid: j.message_sid }]);

  const again = await opsJson(["sms", "send", "--to", OWNER, "--body", body, "--idempotency-key", key]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.duplicate, true);
  assert.equal(again.json.message_sid, j.message_sid);
  assert.equal((await messagesAt(OWNER)).filter((m) => m.body === body).length, 1, "one SMS for two requests");
  const human = await ops(["sms", "send", "--to", OWNER, "--body", body, "--idempotency-key", key]);
  assert.match(human.stdout, /a replay of the first request with this Idempotency-Key: no new SMS/);
});

Deno.test("ops sms send --site, per-language bodies, mixed consent → 2 sent, 2 skipped with reasons; --wait shows delivered", async () => {
  await withTenant("site", async (f) => {
    const site = await f.site("Chantier ops");
    const fr = await f.worker("+15145550152", { site, language: "fr" });
    const en = await f.worker("+15145550153", { site, language: "en" });
    const refused = await f.worker("+15145550154", { site, consent: false });
    const unverified = await f.worker("+15145550155", { site, verified: false });
    const tag = crypto.randomUUID().slice(0, 8);
    const run = await opsJson([
      "sms", "send", "--site", site, "--body-fr", `Alerte ${tag} : vent violent.`, "--body-en", `Alert ${tag}: high winds.`, "--wait", "60",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const messages = run.json.messages as { worker_id: string; to: string; status: string; message_sid: string }[];
    assert.deepEqual(messages.map((m) => m.worker_id).sort(), [fr, en].sort());
    for (const m of messages) {
      assert.match(m.message_sid, SID);
      const [row] = await withDb((sql) => sql`select status from public.sms_alerts where provider_message_id = ${m.message_sid}`);
      assert.equal(m.status, row.status, "--wait: the status the database holds");
      if (m.status !== "delivered") {
        // Say why: a wait too short, or status callbacks that beat the MessageSid's recording (details.unknown).
        const trail = await withDb((sql) =>
          sql`select action, details from public.system_audit_logs where target = ${m.message_sid} order by id`
        );
        assert.fail(`--wait ended with ${m.status}, not delivered; audit trail of ${m.message_sid}: ${JSON.stringify(trail)}`);
      }
    }
    assert.deepEqual(
      (run.json.skipped as { worker_id: string; reasons: string[] }[]).map((s) => [s.worker_id, s.reasons]).sort(),
      [[refused, ["no_consent"]], [unverified, ["phone_not_verified"]]].sort(),
    );
    assert.equal(run.json.message_sid, undefined, "no single message_sid for two messages");
    assert.equal((await messagesAt("+15145550152")).find((m) => m.body.includes(tag))?.body, `Alerte ${tag} : vent violent.`);
    assert.equal((await messagesAt("+15145550153")).find((m) => m.body.includes(tag))?.body, `Alert ${tag}: high winds.`);
    assert.equal((await messagesAt("+15145550154")).filter((m) => m.body.includes(tag)).length, 0);

    const human = await ops(["sms", "send", "--site", site, "--body", `Rappel ${tag}`]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^send-sms: 2 sent, 0 failed, 2 skipped$/m);
    assert.match(human.stdout, /^Skipped \(no SMS sent to them\):\nWorker\s+Reasons$/m);
    assert.match(human.stdout, new RegExp(`^${refused}\\s+no_consent$`, "m"));
    assert.match(human.stdout, new RegExp(`^${unverified}\\s+phone_not_verified$`, "m"));
  });
});

Deno.test("ops sms send --worker without consent → every recipient skipped: exit 1, ok false, nothing sent", async () => {
  await withTenant("skipped", async (f) => {
    const worker = await f.worker("+15145550156", { consent: false });
    const run = await opsJson(["sms", "send", "--worker", worker, "--body", "Ne devrait pas partir"]);
    assert.equal(run.code, 1);
    assert.equal(run.json.ok, false);
    assert.deepEqual(run.json.messages, []);
    assert.deepEqual(run.json.skipped, [{ worker_id: worker, reasons: ["no_consent"] }]);
    assert.equal(run.stderr, "ops sms send: no SMS sent: every recipient was skipped (1)\n");
    assert.equal((await messagesAt("+15145550156")).length, 0);
  });
});

Deno.test("ops sms send: send-sms refusing (404 worker, 422 Twilio, 502) → exit 1, the reason on stderr, the answer in --json", async () => {
  const missing = await opsJson(["sms", "send", "--worker", crypto.randomUUID(), "--body", "x"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.json.http_status, 404);
  assert.equal(missing.json.error, "not_found");
  assert.equal(missing.stderr, "ops sms send: send-sms refused the request: HTTP 404 not_found: worker not found\n");

  // Twilio's refusals come from a stand-in send-sms answering as the real one does (README "Sending an SMS").
  const rejection = () =>
    Response.json({
      messages: [{ worker_id: null, to: OWNER, status: "failed", message_sid: null, error: { code: 21610, message: "Attempt to send to unsubscribed recipient" } }],
      skipped: [],
      duplicate: false,
      message_sid: null,
      error: "provider_rejected",
      message: "Twilio refused the message (code 21610)",
      twilio_code: 21610,
    }, { status: 422 });
  const answers = [
    rejection(),
    Response.json({ error: "provider_unavailable", message: "Twilio could not be reached or kept rate-limiting; retry later", messages: [], skipped: [], duplicate: false }, { status: 502 }),
    rejection(),
  ];
  const stub = await startHitServer(() => answers.shift()!);
  try {
    await withEnvFile({ ...hostedValues(), SUPABASE_URL: stub.url }, async (file) => {
      const rejected = await opsJson(["--env-file", file, "sms", "send", "--to", OWNER, "--body", "x"]);
      assert.equal(rejected.code, 1);
      assert.equal(rejected.json.ok, false);
      assert.deepEqual(rejected.json.target, { kind: "env-file", files: [file] });
      assert.equal(rejected.json.twilio_code, 21610);
      assert.equal(rejected.stderr, "ops sms send: send-sms refused the request: HTTP 422 provider_rejected: Twilio refused the message (code 21610)\n");
      const unavailable = await ops(["--env-file", file, "sms", "send", "--to", OWNER, "--body", "x"]);
      assert.equal(unavailable.code, 1);
      assert.match(unavailable.stderr, /HTTP 502 provider_unavailable/);
      assert.doesNotMatch(unavailable.stderr, STACK_TRACE);
      const human = await ops(["--env-file", file, "sms", "send", "--to", OWNER, "--body", "x"]);
      assert.equal(human.code, 1);
      assert.match(human.stdout, /^send-sms: 0 sent, 1 failed, 0 skipped$/m);
      assert.match(human.stdout, /^To\s+Status\s+Message SID\s+Error\n\+15145550100\s+failed\s+—\s+21610 Attempt to send to unsubscribed recipient$/m);
    });
    const hit = stub.hitsFor("/functions/v1/send-sms")[0];
    assert.equal(hit.method, "POST");
    assert.equal(hit.headers.get("apikey"), env.secretKey, "the secret key in apikey");
    assert.deepEqual(JSON.parse(new TextDecoder().decode(hit.body)), { to: OWNER, body: "x" });
  } finally {
    await stub.close();
  }
});

Deno.test("ops sms simulate-inbound: STOP, ARRÊT with spaces, START, AIDE → the reply, and consent of every worker with that number", async () => {
  await withTenant("inbound-a", async (a) => {
    await withTenant("inbound-b", async (b) => {
      const phone = "+15145550157";
      const wa = await a.worker(phone, { name: "Ops Lavoie", language: "fr" });
      const wb = await b.worker(phone, { name: "Ops Lavoie", language: "fr" });
      const consent = async () =>
        (await withDb((sql) => sql`select id, sms_consent from public.workers where phone = ${phone} order by id`))
          .map((r) => [r.id, r.sms_consent]);

      const stop = await opsJson(["sms", "simulate-inbound", "--from", phone, "--body", "  Arrêt ! "]);
      assert.equal(stop.code, 0, stop.stderr);
      assertNoSecret(stop);
      assert.equal(stop.json.http_status, 200);
      assert.match(String(stop.json.message_sid), SID);
      assert.equal(stop.json.from, phone);
      assert.equal(stop.json.to, fixtureSettings.TWILIO_PHONE_NUMBER);
      assert.deepEqual(stop.json.keyword, { kind: "opt_out", keyword: "ARRET" });
      assert.equal(stop.json.twilio_answers, false, "Twilio does not know ARRET: sms-inbound answers it");
      assert.match(String(stop.json.reply), /^C-Secur360 : vous ne recevrez plus de SMS/);
      assert.match(String(stop.json.twiml), /^<\?xml version="1\.0" encoding="UTF-8"\?><Response><Message>/);
      const workers = stop.json.workers as { worker_id: string; sms_consent: boolean; last_change: { keyword: string; consent: boolean } }[];
      assert.deepEqual(workers.map((w) => w.worker_id).sort(), [wa, wb].sort());
      for (const w of workers) {
        assert.equal(w.sms_consent, false);
        assert.equal(w.last_change.keyword, "ARRET");
        assert.equal(w.last_change.consent, false);
      }
      assert.deepEqual(await consent(), [[wa, false], [wb, false]].sort());

      // START is one of Twilio's own keywords: Twilio answers it, sms-inbound only records it.
      const start = await ops(["sms", "simulate-inbound", "--from", phone, "--body", "START"]);
      assert.equal(start.code, 0, start.stderr);
      assert.match(start.stdout, /^Keyword\s+START \(opt-in\)$/m);
      assert.match(start.stdout, /^Reply \(TwiML\)\s+none from sms-inbound: Twilio answers START itself \(its default keyword handling\)$/m);
      assert.match(start.stdout, /^Workers with \+15145550157, after the message:$/m);
      assert.match(start.stdout, new RegExp(`^${wa}\\s+Ops Lavoie\\s+ops inbound-a .+\\s+yes\\s+yes\\s+START \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d$`, "m"));
      assert.deepEqual(await consent(), [[wa, true], [wb, true]].sort());

      const help = await opsJson(["sms", "simulate-inbound", "--from", phone, "--body", "aide"]);
      assert.equal(help.code, 0);
      assert.match(String(help.json.reply), /C-Secur360 : .*Aide : \+15145550199[\s\S]*Help: \+15145550199/);
      const english = await opsJson(["sms", "simulate-inbound", "--from", phone, "--body", "HELP"]);
      assert.equal(english.json.reply, null);
      assert.equal(english.json.twilio_answers, true);
    });
  });
});

Deno.test("ops sms simulate-inbound: unknown sender → empty reply; no SUPABASE_DB_URL → consent not shown", async () => {
  const unknown = await ops(["sms", "simulate-inbound", "--from", "+15145550158", "--body", "bonjour"]);
  assert.equal(unknown.code, 0, unknown.stderr);
  assert.match(unknown.stdout, /^Reply \(TwiML\)\s+none \(empty <Response\/>\)$/m);
  assert.match(unknown.stdout, /^No worker has \+15145550158: the message is stored and audited, no consent changes\.$/m);

  const { SUPABASE_DB_URL: _db, ...withoutDb } = hostedValues();
  await withEnvFile(withoutDb, async (file) => {
    const run = await opsJson(["--env-file", file, "sms", "simulate-inbound", "--from", "+15145550158", "--body", "AIDE"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json.workers, null);
    assert.match(String(run.json.reply), /Help: \+15145550199/);
    const human = await ops(["--env-file", file, "sms", "simulate-inbound", "--from", "+15145550158", "--body", "AIDE"]);
    assert.match(human.stdout, new RegExp(`^Consent not shown: ${file} has no SUPABASE_DB_URL`, "m"));
  });
});

Deno.test("ops sms simulate-inbound with another auth token → 403 from sms-inbound: exit 1, why, nothing stored", async () => {
  const sid = `SM${crypto.randomUUID().replaceAll("-", "")}`;
  await withEnvFile({ ...hostedValues(), TWILIO_AUTH_TOKEN: "0".repeat(32) }, async (file) => {
    const run = await opsJson(["--env-file", file, "sms", "simulate-inbound", "--from", "+15145550159", "--body", "STOP", "--message-sid", sid]);
    assert.equal(run.code, 1);
    assert.equal(run.json.ok, false);
    assert.equal(run.json.http_status, 403);
    assert.match(run.stderr, /^ops sms simulate-inbound: sms-inbound refused the webhook: HTTP 403 invalid_signature: .*\(the signature was refused: TWILIO_AUTH_TOKEN of .* is not the function's/);
    assert.ok(!run.stderr.includes("0".repeat(32)));
  });
  assert.equal((await withDb((sql) => sql`select 1 from public.sms_alerts where provider_message_id = ${sid}`)).length, 0);
});
