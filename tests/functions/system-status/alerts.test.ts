// Automatic alerts end to end: the service's POST to system-status evaluates the alerts against the
// real database and texts OWNER_MOBILE through the normal send path (a fake Twilio of this test's
// own, so every message it receives is counted here). A throwaway pg_cron job with a failed run is
// the condition this test controls (cron_job_failed, subject = the job): raise → exactly one SMS,
// even with five evaluations at once → cooldown → clear; acknowledging and listing; and the
// 5-minute job's own command, sent by pg_net with the Vault's secret key.
import assert from "node:assert/strict";
import { generateLocalProviderSettings } from "../../../scripts/local-supabase/local-config.ts";
import { startTwilioFake, twilioFakeAccount } from "../../../scripts/fakes/twilio.ts";
import { env, mintUserToken, type Sql, waitFor, withDb } from "../../_helpers.ts";
import { leakedFragment, type OwnGateway, secretValues, startOwnGateway } from "./status_gateway.ts";

const service = () => ({ apikey: env.secretKey, authorization: `Bearer ${env.secretKey}` });
const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

interface Evaluation {
  status: string;
  alerts: {
    raised: { id: number; kind: string; subject: string; notification: string }[];
    cleared: { id: number; kind: string; subject: string }[];
    notifications: { alert_id: number; kind: string; subject: string; status: string; message_sid?: string; error?: string }[];
  };
}

async function evaluate(gateway: OwnGateway, texts: string[]): Promise<Evaluation> {
  const res = await fetch(gateway.functionUrl("system-status"), { method: "POST", headers: service() });
  const text = await res.text();
  texts.push(text);
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

/** A run of the job, newest by run id (pg_cron's own runs never reach these ids). */
let nextRunId = 9_300_000_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
async function run(sql: Sql, jobid: number, status: "failed" | "succeeded") {
  await sql`insert into cron.job_run_details (jobid, runid, status, return_message, start_time, end_time)
            values (${jobid}, ${nextRunId++}, ${status}, ${status === "failed" ? "alert test failure" : null}, now(), now())`;
}

Deno.test("alerts: a failed cron run → one SMS to OWNER_MOBILE, even with 5 evaluations at once → cooldown → clear; ack and list", async (t) => {
  const local = generateLocalProviderSettings();
  const fake = startTwilioFake(twilioFakeAccount(local));
  const settings: Record<string, string> = { ...local, TWILIO_API_BASE: fake.url };
  const gateway = await startOwnGateway({ functions: ["system-status"], settings });
  const job = `test-alert-${hex(4)}`;
  const texts: string[] = [];
  const owner = settings.OWNER_MOBILE;
  const smsAboutJob = () => [...fake.messages.values()].filter((m) => m.to === owner && m.body.includes(job));
  await withDb(async (sql) => {
    const [{ jobid }] = await sql`select cron.schedule(${job}, '0 0 31 2 *', 'select 1')::int as jobid`;
    let alertId = 0;
    try {
      await t.step("a failed run; five evaluations at once: one raise, one SMS", async () => {
        await run(sql, jobid, "failed");
        const results = await Promise.all(Array.from({ length: 5 }, () => evaluate(gateway, texts)));
        const raises = results.flatMap((r) => r.alerts.raised.filter((a) => a.subject === job));
        assert.equal(raises.length, 1, JSON.stringify(raises));
        assert.equal(raises[0].kind, "cron_job_failed");
        assert.equal(raises[0].notification, "pending");
        alertId = raises[0].id;
        const sent = results.flatMap((r) => r.alerts.notifications.filter((n) => n.subject === job));
        assert.equal(sent.length, 1);
        assert.equal(sent[0].status, "sent", sent[0].error);
        await fake.settled();
        const messages = smsAboutJob();
        assert.equal(messages.length, 1, "exactly one SMS at the fake Twilio");
        assert.equal(messages[0].sid, sent[0].message_sid);
        assert.match(messages[0].body, new RegExp(`^C-Secur360 ALERTE: job pg_cron ${job} en échec\\. / ALERT: pg_cron job ${job} failed\\.`));
        const [row] = await sql`select state, last_notification_status, notifications from public.system_alerts where id = ${alertId}`;
        assert.deepEqual({ ...row }, { state: "open", last_notification_status: "sent", notifications: 1 });
        // Through the normal send path: an sms_alerts row with the MessageSid, and its audit rows.
        const [sms] = await sql`select to_number, status from public.sms_alerts where provider_message_id = ${sent[0].message_sid!}`;
        assert.equal(sms.to_number, owner);
        const audits = await sql`select action from public.system_audit_logs
                                  where area = 'system' and target = ${"system_alerts:" + alertId} order by id`;
        assert.deepEqual(audits.map((a) => a.action), ["alert_raised", "alert_notified"]);
      });

      await t.step("still failing: the next evaluations send nothing more", async () => {
        const r = await evaluate(gateway, texts);
        assert.equal(r.alerts.raised.filter((a) => a.subject === job).length, 0);
        await fake.settled();
        assert.equal(smsAboutJob().length, 1);
      });

      await t.step("the next run succeeds: cleared, with an audit row", async () => {
        await run(sql, jobid, "succeeded");
        const r = await evaluate(gateway, texts);
        assert.deepEqual(r.alerts.cleared.filter((a) => a.subject === job).map((a) => a.id), [alertId]);
        const [audit] = await sql`select details from public.system_audit_logs
                                   where area = 'system' and action = 'alert_cleared' and target = ${"system_alerts:" + alertId}`;
        assert.equal(audit.details.subject, job);
      });

      let again = 0;
      await t.step("failing again within the cooldown: raised, no SMS (suppressed)", async () => {
        await run(sql, jobid, "failed");
        const r = await evaluate(gateway, texts);
        const raise = r.alerts.raised.find((a) => a.subject === job);
        assert.ok(raise, JSON.stringify(r.alerts));
        assert.equal(raise.notification, "suppressed");
        again = raise.id;
        await fake.settled();
        assert.equal(smsAboutJob().length, 1, "still one SMS");
      });

      await t.step("GET /alerts: the service only; the open alert is listed", async () => {
        const res = await fetch(gateway.functionUrl("system-status", "/alerts?state=open"), { headers: service() });
        const body = await res.json();
        texts.push(JSON.stringify(body));
        assert.equal(res.status, 200);
        assert.ok(body.alerts.some((a: { id: number; state: string }) => a.id === again && a.state === "open"));
        const all = await (await fetch(gateway.functionUrl("system-status", "/alerts?state=all&limit=500"), { headers: service() })).json();
        assert.ok(all.alerts.some((a: { id: number; state: string }) => a.id === alertId && a.state === "cleared"));
        assert.equal((await fetch(gateway.functionUrl("system-status", "/alerts"))).status, 401);
        const userId = crypto.randomUUID();
        await sql`insert into auth.users (id, aud, role, email, created_at, updated_at)
                  values (${userId}, 'authenticated', 'authenticated', ${`alerts-${userId}@example.test`}, now(), now())`;
        const asUser = await fetch(gateway.functionUrl("system-status", "/alerts"), {
          headers: { authorization: `Bearer ${await mintUserToken(userId)}`, apikey: env.publishableKey },
        });
        assert.equal(asUser.status, 403);
        await asUser.body?.cancel();
        const bad = await fetch(gateway.functionUrl("system-status", "/alerts?state=maybe"), { headers: service() });
        assert.equal(bad.status, 400);
        await bad.body?.cancel();
        const post = await fetch(gateway.functionUrl("system-status"), { method: "POST" });
        assert.equal(post.status, 401, "evaluating is for the service only");
        await post.body?.cancel();
      });

      await t.step("POST /alerts/<id>/ack: acknowledged once (audit row), 409 again, 404 unknown, 400 bad body", async () => {
        const ack = (id: number | string, body?: string) =>
          fetch(gateway.functionUrl("system-status", `/alerts/${id}/ack`), {
            method: "POST",
            headers: { ...service(), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
            body,
          });
        const first = await ack(again, JSON.stringify({ by: "operator@example.test" }));
        const body = await first.json();
        assert.equal(first.status, 200, JSON.stringify(body));
        assert.equal(body.alert.state, "acked");
        assert.equal(body.alert.acked_by, "operator@example.test");
        const second = await ack(again);
        assert.equal(second.status, 409);
        assert.equal((await second.json()).state, "acked");
        const unknown = await ack(999999999999);
        assert.equal(unknown.status, 404);
        await unknown.body?.cancel();
        const malformed = await ack(again, "{not json");
        assert.equal(malformed.status, 400);
        await malformed.body?.cancel();
        const extra = await ack(again, JSON.stringify({ by: "x", drop: "table" }));
        assert.equal(extra.status, 400);
        await extra.body?.cancel();
        const [audit] = await sql`select actor from public.system_audit_logs
                                   where area = 'system' and action = 'alert_acked' and target = ${"system_alerts:" + again}`;
        assert.equal(audit.actor, "operator@example.test");
      });

      await t.step("the job is gone: its alert clears", async () => {
        await sql`select cron.unschedule(${jobid}::bigint)`;
        const r = await evaluate(gateway, texts);
        assert.deepEqual(r.alerts.cleared.filter((a) => a.subject === job).map((a) => a.id), [again]);
      });
    } finally {
      await sql`select cron.unschedule(jobid) from cron.job where jobid = ${jobid}`;
      await sql`delete from cron.job_run_details where jobid = ${jobid}`;
    }
  });
  await fake.settled();
  await gateway.close();
  await fake.close();
  const everything = [...texts, ...gateway.logs].join("\n");
  for (const value of secretValues(settings)) assert.equal(leakedFragment(everything, value), undefined);
});

Deno.test("alerts: two evaluations at once: the second waits for the first and neither raises nor notifies twice", async () => {
  const job = `test-alert-race-${hex(4)}`;
  const input = { caller: { kind: "service" }, settings: [], db_size_quota_mb: 100000 };
  await withDb(async (sql) => {
    const [{ jobid }] = await sql`select cron.schedule(${job}, '0 0 31 2 *', 'select 1')::int as jobid`;
    await run(sql, jobid, "failed");
    // The pool's two connections, one per evaluation (released before the cleanup below).
    const first = await sql.reserve();
    const second = await sql.reserve();
    try {
      await first`begin`;
      const [{ s: a }] = await first`select private.evaluate_system_status(${sql.json(input)}) as s`;
      assert.equal(a.alerts.notify.filter((n: { subject: string }) => n.subject === job).length, 1, "the first claims the SMS");
      // The first has not committed: the second must wait (the advisory lock), not decide alone.
      let settled = false;
      const pending = second`select private.evaluate_system_status(${sql.json(input)}) as s`.finally(() => settled = true);
      pending.catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(settled, false, "the second evaluation waits for the first");
      await first`commit`;
      const [{ s: b }] = await pending;
      assert.equal(b.alerts.raised.filter((r: { subject: string }) => r.subject === job).length, 0, "no second raise");
      assert.equal(b.alerts.notify.filter((n: { subject: string }) => n.subject === job).length, 0, "no second SMS");
      const [{ n }] = await first`select count(*)::int as n from public.system_alerts where subject = ${job}`;
      assert.equal(n, 1);
    } finally {
      await first`rollback`.catch(() => {});
      first.release();
      second.release();
    }
    await sql`select cron.unschedule(${jobid}::bigint)`;
    await sql`delete from cron.job_run_details where jobid = ${jobid}`;
    // The job is gone: the next evaluation clears its alert.
    await sql`select private.evaluate_system_status(${sql.json(input)})`;
  });
});

Deno.test("alerts: the 5-minute job's command POSTs to system-status through pg_net with the Vault's secret key", async () => {
  const local = generateLocalProviderSettings();
  const fake = startTwilioFake(twilioFakeAccount(local));
  // Its own pg_net worker, so the test does not depend on another gateway's.
  const gateway = await startOwnGateway({ functions: ["system-status"], settings: { ...local, TWILIO_API_BASE: fake.url }, netWorker: true });
  try {
    await withDb(async (sql) => {
      const saved = await sql`select name, decrypted_secret from vault.decrypted_secrets
                               where name in ('functions_url', 'service_secret_key')`;
      const put = async (name: string, value: string) => {
        const [{ n }] = await sql`select count(*)::int as n from vault.secrets where name = ${name}`;
        if (n) await sql`select vault.update_secret(id, ${value}) from vault.secrets where name = ${name}`;
        else await sql`select vault.create_secret(${value}, ${name})`;
      };
      try {
        await put("functions_url", `${gateway.url}/functions/v1`);
        await put("service_secret_key", env.secretKey);
        const [job] = await sql`select schedule, command from cron.job where jobname = 'system-status-evaluate'`;
        assert.equal(job.schedule, "*/5 * * * *");
        const started = new Date();
        // The job's own command, as pg_cron runs it.
        const [{ request_status_evaluation: requestId }] = await sql.unsafe(job.command);
        const response = await waitFor("pg_net's response", async () => {
          const rows = await sql`select status_code, content from net._http_response where id = ${requestId}`;
          return rows[0];
        }, { timeoutMs: 20_000, intervalMs: 200 });
        assert.equal(response.status_code, 200, response.content);
        const body = JSON.parse(response.content);
        assert.equal(body.caller, "service");
        assert.ok(body.alerts && Array.isArray(body.alerts.raised), "the alerts were evaluated");
        const [history] = await sql`select count(*)::int as n from private.system_status_history
                                     where evaluated_alerts and checked_at >= ${started}`;
        assert.ok(history.n >= 1, "recorded as an alert evaluation");
      } finally {
        for (const name of ["functions_url", "service_secret_key"]) {
          const old = saved.find((s) => s.name === name);
          if (old) await put(name, old.decrypted_secret);
          else await sql`delete from vault.secrets where name = ${name}`;
        }
      }
    });
  } finally {
    await fake.settled();
    await gateway.close();
    await fake.close();
  }
});
