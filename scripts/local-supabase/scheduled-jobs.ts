// pg_cron jobs that call functions over HTTP (net.http_post with the Vault's functions_url and
// service_secret_key) and which the test runner pauses: firing on their own in the middle of the
// suite, they would evaluate alerts and text OWNER_MOBILE while other tests count SMS. Their own
// tests run the job's command explicitly (tests/functions/system-status/alerts.test.ts).
// The local stack (`npm start`, `stack up`) leaves them active, with the Vault secrets scripts/stack.ts
// writes at each start, as on a hosted project.
import { type Cluster, run } from "./cluster.ts";

export const TEST_PAUSED_JOBS = ["system-status-evaluate"] as const;

/** Pauses TEST_PAUSED_JOBS (cron.alter_job … active false); a job that does not exist is skipped. */
export async function pauseScheduledCallJobs(c: Cluster): Promise<void> {
  const names = TEST_PAUSED_JOBS.map((name) => `'${name.replaceAll("'", "''")}'`).join(", ");
  await run(["psql", c.url, "-v", "ON_ERROR_STOP=1", "-q", "-X", "-At", "-f", "-"], {
    stdin: `select cron.alter_job(j.jobid, active => false) from cron.job as j where j.jobname in (${names});\n`,
  });
}
