// pg_cron runs scheduled jobs in this stack: a job made with cron.schedule runs within a minute,
// and what it queues with net.http_get is sent by the gateway's pg_net worker (the path the
// project's scheduled maintenance takes). pg_cron 1.4: every-minute is the shortest schedule.
import assert from "node:assert/strict";
import { startHitServer, waitFor, withDb } from "../_helpers.ts";

Deno.test({
  name: "cron: a job scheduled with cron.schedule runs and its net.http_get is sent",
  fn: async () => {
    const token = crypto.randomUUID();
    // The answer carries the token: it finds the job's rows in net._http_response for cleanup.
    const server = await startHitServer(() => Response.json({ cronTest: token }));
    try {
      await withDb(async (sql) => {
        const jobName = `test-gateway-cron-${crypto.randomUUID()}`;
        const path = `/cron/${token}`;
        const command = `select net.http_get('${server.url}${path}')`;
        const [{ jobid }] = await sql`select cron.schedule(${jobName}, '* * * * *', ${command})::int as jobid`;
        try {
          // Up to a minute until the next run, plus margin.
          const run = await waitFor("a run of the cron job", async () => {
            const rows = await sql<{ status: string; return_message: string }[]>`
              select status, return_message from cron.job_run_details
               where jobid = ${jobid} and status in ('succeeded', 'failed') order by runid limit 1`;
            return rows[0];
          }, { timeoutMs: 75_000, intervalMs: 500 });
          assert.equal(run.status, "succeeded", run.return_message);
          await waitFor("the job's HTTP request", () => server.hitsFor(path).length > 0, { timeoutMs: 10_000 });
          assert.equal(server.hitsFor(path)[0].method, "GET");
        } finally {
          await sql`select cron.unschedule(${jobid}::bigint)`;
          await sql`delete from cron.job_run_details where jobid = ${jobid}`;
          // The job's requests (normally already sent) and their recorded responses.
          await sql`delete from net.http_request_queue where url like ${`%${path}`}`;
          await sql`delete from net._http_response where content like ${`%${token}%`}`;
        }
        const [{ left }] = await sql`select count(*)::int as left from cron.job where jobname = ${jobName}`;
        assert.equal(left, 0);
      });
    } finally {
      await server.close();
    }
  },
});
