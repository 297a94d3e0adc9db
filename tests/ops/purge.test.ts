// `npm run ops -- purge`: --dry-run is the SQL's own preview (private.retention_preview at the next
// weekly run and now, private.retention_next_run), read-only, with the last runs and the pg_cron
// jobs; `purge` alone or --now without --yes is refused with a hint; --now --yes deletes exactly
// what a run now was previewed to delete, audited with the operator; a failing purge is exit 1 and
// an audit row with details.error, the other purge still runs.
import assert from "node:assert/strict";
import { withDb } from "../_helpers.ts";
import { EXIT } from "../../scripts/ops/command.ts";
import { ops, opsJson, STACK_TRACE, withTenant } from "./_ops.ts";

interface Side {
  cutoff: string;
  rows: number;
}
interface Preview {
  dry_run: boolean;
  now: string;
  next_run: string;
  tables: { table: string; change: string; next_run: Side; now: Side }[];
  last_runs: Record<string, { created_at: string; details: Record<string, unknown> } | null>;
  jobs: { jobname: string; schedule: string; active: boolean }[] | null;
}

async function dryRun(): Promise<Preview> {
  const { code, json, stderr } = await opsJson(["purge", "--dry-run"]);
  assert.equal(code, EXIT.ok, stderr);
  assert.equal(json.ok, true);
  return json as unknown as Preview;
}

/** Expired rows of every retained kind: two SMS, a consent body, an audit row. */
async function writeExpiredRows(tenant: string, tag: string): Promise<void> {
  await withDb(async (sql) => {
    await sql`insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status, created_at) values
      (${tenant}, 'outbound', '+15145550199', '+15145550161', ${`old ${tag}`}, 'delivered', now() - interval '200 days'),
      (${tenant}, 'outbound', '+15145550199', '+15145550161', ${`older ${tag}`}, 'failed', now() - interval '2 years')`;
    await sql`insert into public.sms_consent_events (tenant_id, phone, new_consent, source, keyword, message_body, created_at)
      values (${tenant}, '+15145550161', false, 'keyword', 'STOP', ${`STOP ${tag}`}, now() - interval '190 days')`;
    await sql`insert into public.system_audit_logs (created_at, area, action, target)
      values (now() - interval '400 days', 'twilio', 'sms_send', ${`purge-test:${tag}`})`;
  });
}

Deno.test("ops purge --dry-run: the SQL preview at the next Sunday 03:00 Montreal and now, the jobs, read-only", async () => {
  await withTenant("purge dry-run", async ({ tenant }) => {
    const tag = crypto.randomUUID();
    await writeExpiredRows(tenant, tag);
    const p = await dryRun();
    assert.equal(p.dry_run, true);
    // The SQL's own answers, computed at the same instants.
    const sqlPreview = await withDb(async (sql) => {
      const [{ next }] = await sql`select private.retention_next_run(${p.now}::timestamptz) as next`;
      const atNext = await sql`select table_name, change, cutoff, row_count::int as n from private.retention_preview(${p.next_run}::timestamptz) order by 1`;
      const atNow = await sql`select table_name, cutoff, row_count::int as n from private.retention_preview(${p.now}::timestamptz) order by 1`;
      return { next, atNext, atNow };
    });
    assert.equal(p.next_run, (sqlPreview.next as Date).toISOString());
    const local = new Intl.DateTimeFormat("en-CA", { timeZone: "America/Montreal", weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .format(new Date(p.next_run));
    assert.equal(local.replace(",", ""), "Sun 03:00", "Sunday 03:00 in Montreal");
    assert.ok(Date.parse(p.next_run) > Date.parse(p.now) && Date.parse(p.next_run) - Date.parse(p.now) <= 7 * 86400_000);
    assert.deepEqual(p.tables.map((t) => t.table), ["sms_alerts", "sms_consent_events", "system_audit_logs"]);
    for (const [i, t] of p.tables.entries()) {
      assert.equal(t.change, sqlPreview.atNext[i].change);
      assert.equal(t.next_run.cutoff, (sqlPreview.atNext[i].cutoff as Date).toISOString(), `${t.table}: next run's cut-off`);
      assert.equal(t.next_run.rows, sqlPreview.atNext[i].n, `${t.table}: next run's rows`);
      assert.equal(t.now.cutoff, (sqlPreview.atNow[i].cutoff as Date).toISOString(), `${t.table}: cut-off now`);
      assert.equal(t.now.rows, sqlPreview.atNow[i].n, `${t.table}: rows now`);
      assert.ok(t.now.rows >= 1, `${t.table}: this test's expired rows are counted`);
      assert.ok(t.next_run.rows >= t.now.rows, "rows only age");
    }
    assert.deepEqual(
      p.jobs?.map((j) => [j.jobname, j.schedule, j.active]),
      [["weekly-retention-0700-utc", "0 7 * * 0", true], ["weekly-retention-0800-utc", "0 8 * * 0", true]],
    );
    // Read-only: the rows are all still there.
    const [left] = await withDb((sql) =>
      sql`select (select count(*)::int from public.sms_alerts where body like ${`%${tag}`}) as sms,
                 (select count(*)::int from public.sms_consent_events where message_body = ${`STOP ${tag}`}) as bodies`
    );
    assert.deepEqual(left, { sms: 2, bodies: 1 });

    const human = await ops(["purge", "--dry-run"]);
    assert.equal(human.code, EXIT.ok, human.stderr);
    assert.match(human.stdout, /^Next weekly retention run: \d{4}-\d\d-\d\d 03:00 America\/Montreal \(in .+\)$/m);
    assert.match(human.stdout, /^sms_alerts\s+rows deleted\s+\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d+\s+/m);
    assert.match(human.stdout, /^sms_consent_events\s+message bodies blanked\s+\d+/m);
    assert.match(human.stdout, /Read-only: nothing was deleted\./);
    assert.match(human.stdout, /^weekly-retention-0700-utc\s+0 7 \* \* 0\s+yes/m);
  });
});

Deno.test("ops purge --now --yes: deletes what a run now was previewed to, audited with the operator; then nothing is left", async () => {
  await withTenant("purge now", async ({ tenant }) => {
    const tag = crypto.randomUUID();
    await writeExpiredRows(tenant, tag);
    const before = await dryRun();
    const expected = Object.fromEntries(before.tables.map((t) => [t.table, t.now.rows]));
    const { code, json, stderr } = await opsJson(["purge", "--now", "--yes", "--actor", "ops-test"]);
    assert.equal(code, EXIT.ok, stderr);
    const purges = json.purges as Record<string, unknown>[];
    assert.deepEqual(purges.map((p) => [p.action, p.ok]), [["sms_purge", true], ["audit_purge", true]]);
    assert.equal(purges[0].sms_alerts_deleted, expected.sms_alerts);
    assert.equal(purges[0].consent_bodies_cleared, expected.sms_consent_events);
    assert.equal(purges[1].audit_logs_deleted, expected.system_audit_logs);
    assert.equal(purges[0].trigger, "ops_purge_now");
    assert.equal(purges[0].operator, "ops-test");

    const after = await dryRun();
    for (const t of after.tables) assert.equal(t.now.rows, 0, `${t.table}: nothing left for a run now`);
    assert.equal(after.last_runs.sms_purge?.details.trigger, "ops_purge_now");
    assert.equal(after.last_runs.audit_purge?.details.operator, "ops-test");
    const [state] = await withDb((sql) =>
      sql`select (select count(*)::int from public.sms_alerts where body like ${`%${tag}`}) as sms,
                 (select count(*)::int from public.sms_consent_events where phone = '+15145550161' and tenant_id = ${tenant}) as proofs,
                 (select count(*)::int from public.sms_consent_events where message_body = ${`STOP ${tag}`}) as bodies`
    );
    assert.deepEqual(state, { sms: 0, proofs: 1, bodies: 0 }, "SMS gone, the consent proof kept, its body blanked");
  });
});

Deno.test("ops purge --now --yes: a failing SMS purge → exit 1, its error audited, the audit purge still runs", async () => {
  await withTenant("purge failing", async ({ tenant }) => await writeExpiredRows(tenant, crypto.randomUUID()));
  await withDb(async (sql) => {
    await sql`create function public.ops_test_refuse_delete() returns trigger language plpgsql set search_path = '' as $$
      begin raise exception 'simulated failure of the SMS purge'; end $$`;
    await sql`create trigger ops_test_refuse_delete before delete on public.sms_alerts
      for each statement execute function public.ops_test_refuse_delete()`;
  });
  try {
    const { code, json, stderr } = await opsJson(["purge", "--now", "--yes", "--actor", "ops-test"]);
    assert.equal(code, EXIT.failed);
    assert.equal(json.ok, false);
    const purges = json.purges as Record<string, unknown>[];
    assert.equal(purges[0].ok, false);
    assert.equal(purges[0].error, "simulated failure of the SMS purge");
    assert.equal(purges[1].ok, true, "the audit purge ran");
    assert.equal(stderr, "ops purge: sms_purge failed: simulated failure of the SMS purge\n");
    const [row] = await withDb((sql) =>
      sql`select target, details from public.system_audit_logs
           where area = 'maintenance' and action = 'sms_purge' order by id desc limit 1`
    );
    assert.equal(row.target, "ops_purge_now");
    assert.equal(row.details.error, "simulated failure of the SMS purge");
    assert.equal(row.details.operator, "ops-test");
  } finally {
    await withDb(async (sql) => {
      await sql`drop trigger ops_test_refuse_delete on public.sms_alerts`;
      await sql`drop function public.ops_test_refuse_delete()`;
      await sql`select private.purge_expired_sms()`;
    });
  }
});

Deno.test("ops purge: alone, --now without --yes, --dry-run with --now → refused with the usage line; nothing deleted", async () => {
  const usage = (run: { code: number; stdout: string; stderr: string }, re: RegExp) => {
    assert.equal(run.code, EXIT.usage, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, re);
    assert.match(run.stderr, /\nusage: npm run ops -- \[--json\] \[--env-file <file>\] purge --dry-run \| --now --yes/);
    assert.match(run.stderr, /\nhint: npm run ops -- purge --help\n$/);
    assert.doesNotMatch(run.stderr, STACK_TRACE);
  };
  await withTenant("purge refused", async ({ tenant }) => {
    const tag = crypto.randomUUID();
    await writeExpiredRows(tenant, tag);
    usage(await ops(["purge"]), /^ops purge: the purge runs by itself every Sunday at 03:00 America\/Montreal \(pg_cron\): --dry-run/);
    usage(await ops(["purge", "--now"]), /--now deletes rows for good: add --yes/);
    usage(await ops(["--json", "purge", "--yes"]), /the purge runs by itself/);
    usage(await ops(["purge", "--dry-run", "--now", "--yes"]), /--dry-run cannot be used with --now/);
    usage(await ops(["purge", "--dry-run", "--actor", "x"]), /--actor goes with --now/);
    const [{ n }] = await withDb((sql) => sql`select count(*)::int as n from public.sms_alerts where body like ${`%${tag}`}`);
    assert.equal(n, 2, "nothing deleted");
    // Leave no expired rows behind for the next tests' counts.
    await withDb((sql) => sql`select private.purge_expired_sms(), private.purge_expired_audit_logs()`);
  });
});
