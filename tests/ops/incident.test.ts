// `npm run ops -- incident note|list`: the guide's "Documenter incident dans system_audit_logs":
// one audit row (area system or --area, action incident_note, actor --actor or $USER, details
// exactly {message, severity}); list by --since; the areas offered are the table's own; usage errors.
import assert from "node:assert/strict";
import { withDb } from "../_helpers.ts";
import { EXIT } from "../../scripts/ops/command.ts";
import { AUDIT_AREAS } from "../../scripts/ops/incident.ts";
import { ops, opsJson, STACK_TRACE } from "./_ops.ts";

interface Incident {
  id: string;
  created_at: string;
  area: string;
  action: string;
  actor: string;
  details: { message: string; severity: string };
}

Deno.test("ops incident note: one audit row, area system, action incident_note, actor and {message, severity}", async () => {
  const message = `Site inaccessible : rollback du dernier déploiement (${crypto.randomUUID()})`;
  const { code, json, stderr } = await opsJson(["incident", "note", "--message", message, "--severity", "critical", "--actor", "operateur.garde"]);
  assert.equal(code, EXIT.ok, stderr);
  assert.equal(json.ok, true);
  const incident = json.incident as Incident;
  assert.equal(incident.area, "system");
  assert.equal(incident.action, "incident_note");
  assert.equal(incident.actor, "operateur.garde");
  assert.deepEqual(incident.details, { message, severity: "critical" });
  const rows = await withDb((sql) =>
    sql`select area, action, actor, tenant_id, target, details from public.system_audit_logs where id = ${incident.id}`
  );
  assert.deepEqual([...rows], [{ area: "system", action: "incident_note", actor: "operateur.garde", tenant_id: null, target: null, details: { message, severity: "critical" } }]);
});

Deno.test("ops incident note: severity medium by default, the operator from $USER, --area twilio; human output", async () => {
  const message = `SMS en échec (30003) pour un chantier ${crypto.randomUUID()}`;
  const run = await ops(["incident", "note", "--message", message, "--area", "twilio"], { env: { USER: "operateur-nuit" } });
  assert.equal(run.code, EXIT.ok, run.stderr);
  assert.match(run.stdout, /^Incident noted in system_audit_logs \(id \d+\)$/m);
  assert.match(run.stdout, /^Area \/ action\s+twilio \/ incident_note$/m);
  assert.match(run.stdout, /^Actor\s+operateur-nuit$/m);
  assert.match(run.stdout, /^Severity\s+medium$/m);
  const [row] = await withDb((sql) =>
    sql`select area, actor, details from public.system_audit_logs where action = 'incident_note' and details ->> 'message' = ${message}`
  );
  assert.deepEqual(row, { area: "twilio", actor: "operateur-nuit", details: { message, severity: "medium" } });
});

Deno.test("ops incident list: the notes within --since, newest first; an older one only with a longer --since", async () => {
  const tag = crypto.randomUUID();
  await withDb((sql) =>
    sql`insert into public.system_audit_logs (created_at, area, action, actor, details)
        values (now() - interval '3 days', 'system', 'incident_note', 'ops-test', ${sql.json({ message: `old ${tag}`, severity: "low" })})`
  );
  const fresh = await opsJson(["incident", "note", "--message", `new ${tag}`, "--severity", "high"]);
  assert.equal(fresh.code, EXIT.ok, fresh.stderr);

  const day = await opsJson(["incident", "list", "--since", "1d"]);
  assert.equal(day.code, EXIT.ok, day.stderr);
  assert.equal(day.json.since_seconds, 86400);
  const dayIncidents = day.json.incidents as Incident[];
  assert.equal(day.json.count, dayIncidents.length);
  assert.ok(dayIncidents.some((i) => i.details.message === `new ${tag}`));
  assert.ok(!dayIncidents.some((i) => i.details.message === `old ${tag}`), "3 days old: not within 1d");
  for (const i of dayIncidents) assert.equal(i.action, "incident_note");
  const times = dayIncidents.map((i) => Date.parse(i.created_at));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");

  const week = await opsJson(["incident", "list"]);
  assert.equal(week.json.since_seconds, 7 * 86400, "default 7d");
  const messages = (week.json.incidents as Incident[]).map((i) => i.details.message);
  assert.ok(messages.indexOf(`new ${tag}`) < messages.indexOf(`old ${tag}`), "both, newest first");

  const human = await ops(["incident", "list", "--since", "2w"]);
  assert.equal(human.code, EXIT.ok);
  assert.match(human.stdout, /^Incident notes since \d{4}-\d\d-\d\d \d\d:\d\d: \d+$/m);
  assert.match(human.stdout, new RegExp(`^\\d+\\s+\\S+ \\S+\\s+high\\s+system\\s+\\S+\\s+new ${tag}$`, "m"));
});

Deno.test("ops incident note --area: the choices are system_audit_logs.area's check constraint", async () => {
  const [{ def }] = await withDb((sql) =>
    sql`select pg_get_constraintdef(c.oid) as def from pg_constraint as c
         where c.conrelid = 'public.system_audit_logs'::regclass and c.contype = 'c' and pg_get_constraintdef(c.oid) like '%area%'`
  );
  const allowed = [...String(def).matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]);
  assert.deepEqual([...AUDIT_AREAS].sort(), allowed.sort());
});

Deno.test("ops incident: bad arguments → usage line, exit usage, nothing written", async () => {
  const [{ before }] = await withDb((sql) => sql`select count(*)::int as before from public.system_audit_logs where action = 'incident_note'`);
  const usage = (run: { code: number; stdout: string; stderr: string }, re: RegExp) => {
    assert.equal(run.code, EXIT.usage, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, re);
    assert.match(run.stderr, /\nusage: npm run ops -- \[--json\] \[--env-file <file>\] incident/);
    assert.doesNotMatch(run.stderr, STACK_TRACE);
  };
  usage(await ops(["incident"]), /a command is required: note, list/);
  usage(await ops(["incident", "note"]), /required option '--message <text>'/);
  usage(await ops(["incident", "note", "--message", "   "]), /must not be empty/);
  usage(await ops(["incident", "note", "--message", "x".repeat(2001)]), /at most 2000 characters/);
  usage(await ops(["incident", "note", "--message", "x", "--severity", "urgent"]), /must be one of low, medium, high, critical/);
  usage(await ops(["incident", "note", "--message", "x", "--area", "vercelle"]), /must be one of stripe, twilio/);
  usage(await ops(["incident", "note", "--message", "x", "--actor", "a\tb"]), /1 to 100 printable characters/);
  usage(await ops(["--json", "incident", "list", "--since", "7 days"]), /must be a duration such as 30m, 12h, 7d or 2w/);
  usage(await ops(["incident", "list", "--since", "0d"]), /must be a duration/);
  const [{ after }] = await withDb((sql) => sql`select count(*)::int as after from public.system_audit_logs where action = 'incident_note'`);
  assert.equal(after, before, "nothing written");
});
