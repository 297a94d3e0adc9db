// `npm run ops -- audit errors|sms-today|sms-recent`: the operations guide's three queries, verbatim
// (compared with the guide itself when it is on this machine, and always with the verbatim copies
// the pgTAP test runs), run against the test stack's database: rows this test writes show up,
// readably (long values cut) and whole in --json; "today" follows --time-zone; usage errors.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { withDb } from "../_helpers.ts";
import { EXIT } from "../../scripts/ops/command.ts";
import { AUDIT_QUERIES, AUDIT_TITLES } from "../../scripts/ops/audit.ts";
import { hostedValues, ops, opsJson, STACK_TRACE, withEnvFile } from "./_ops.ts";

/** The operations guide (French seeds); OPS_SEEDS_FILE points elsewhere. */
const SEEDS_FILE = Deno.env.get("OPS_SEEDS_FILE") ?? "/work/shared/seeds/000_4c651c717b1db289.txt";
const PGTAP_COPY = fileURLToPath(new URL("../../supabase/tests/seed_queries.sql", import.meta.url));
const seedsText = await Deno.readTextFile(SEEDS_FILE).catch(() => null);

const normalise = (sql: string) => sql.replace(/\s+/g, " ").trim();

/** The SQL after the line naming `title`, up to the first line ending with `;`. */
function queryAfter(text: string, title: string): string {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.includes(title));
  assert.ok(at >= 0, `"${title}" is in the guide`);
  const end = lines.findIndex((l, i) => i > at && l.trimEnd().endsWith(";"));
  return lines.slice(at + 1, end + 1).join("\n");
}

Deno.test({
  name: "ops audit: the three queries are the operations guide's, verbatim (the guide's own file)",
  ignore: seedsText === null,
  fn() {
    for (const [name, title] of Object.entries(AUDIT_TITLES) as [keyof typeof AUDIT_QUERIES, string][]) {
      assert.equal(normalise(AUDIT_QUERIES[name]), normalise(queryAfter(seedsText!, title)), `${name}: "${title}"`);
    }
  },
});

Deno.test("ops audit: the three queries are the verbatim copies the pgTAP test runs (supabase/tests/seed_queries.sql)", async () => {
  const text = await Deno.readTextFile(PGTAP_COPY);
  const copies = [...text.matchAll(/\('(\w+)', \$verbatim\$([\s\S]*?)\$verbatim\$\)/g)].map((m) => normalise(m[2]));
  assert.equal(copies.length, 3);
  assert.deepEqual(Object.values(AUDIT_QUERIES).map(normalise), copies);
});

Deno.test("ops audit errors: a failure of the last 24 h shows, its long values cut in the table, whole in --json; --show-sql", async () => {
  const marker = `ops-audit-test:${crypto.randomUUID()}`;
  const longText = "x".repeat(400);
  const [{ id }] = await withDb((sql) =>
    sql`insert into public.system_audit_logs (area, action, actor, target, details)
        values ('twilio', 'sms_send', 'service_role', ${marker},
                ${sql.json({ error: "30003 Unreachable destination handset", to: "+15145550131", note: longText })})
        returning id::text`
  );
  const { code, json, stderr } = await opsJson(["audit", "errors"]);
  assert.equal(code, EXIT.ok, stderr);
  assert.equal(json.ok, true);
  assert.deepEqual(json.target, { kind: "local" });
  assert.equal(json.query, "errors");
  assert.equal(json.sql, AUDIT_QUERIES.errors);
  assert.equal(json.time_zone, "America/Montreal");
  const rows = json.rows as { id: string; target: string; created_at: string; details: Record<string, unknown> }[];
  assert.equal(json.row_count, rows.length);
  const ours = rows.find((r) => r.id === id);
  assert.ok(ours, "the row just written is among the errors");
  assert.equal(ours.target, marker);
  assert.equal(ours.details.note, longText, "--json has the whole value");
  assert.match(ours.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // Newest first, as the query orders them.
  const times = rows.map((r) => Date.parse(r.created_at));
  assert.deepEqual(times, [...times].sort((a, b) => b - a));

  const human = await ops(["audit", "errors", "--show-sql", "--limit", "0"]);
  assert.equal(human.code, EXIT.ok, human.stderr);
  assert.ok(human.stdout.includes(AUDIT_QUERIES.errors), "--show-sql prints the SQL as run");
  assert.match(human.stdout, /session: SET TimeZone = 'America\/Montreal'/);
  assert.match(human.stdout, /^Errors of the last 24 h \(Erreurs des dernières 24h\): \d+$/m);
  const line = human.stdout.split("\n").find((l) => l.includes(marker));
  assert.ok(line, "the row is in the table");
  assert.match(line, /twilio\s+sms_send\s+service_role/);
  assert.match(line, /30003 Unreachable destination handset/);
  assert.ok(!line.includes(longText) && line.includes("xxx…"), "a long value is cut in the table");
  assert.equal(human.stderr, "");
});

Deno.test("ops audit sms-today: the guide's count for the session's day (America/Montreal by default, --time-zone)", async () => {
  const count = async (zone?: string) => {
    const r = await opsJson(["audit", "sms-today", ...(zone ? ["--time-zone", zone] : [])]);
    assert.equal(r.code, EXIT.ok, r.stderr);
    return r.json as { count: number; date: string; time_zone: string; sql: string };
  };
  const before = await count();
  await withDb((sql) =>
    sql`insert into public.system_audit_logs (area, action, actor, target, details)
        values ('twilio', 'sms_send', 'service_role', ${`ops-audit-test:${crypto.randomUUID()}`}, '{"status": "queued"}')`
  );
  const after = await count();
  assert.equal(after.count, before.count + 1, "one more SMS sent today");
  assert.equal(after.sql, AUDIT_QUERIES["sms-today"]);
  // The same count computed independently: sms_send rows whose Montreal date is Montreal's today.
  const [expected] = await withDb((sql) =>
    sql`select count(*)::int as n, (now() at time zone 'America/Montreal')::date::text as today
          from public.system_audit_logs
         where area = 'twilio' and action = 'sms_send'
           and (created_at at time zone 'America/Montreal')::date = (now() at time zone 'America/Montreal')::date`
  );
  assert.equal(after.count, expected.n);
  assert.equal(after.date, expected.today);
  assert.equal(after.time_zone, "America/Montreal");
  // UTC+14 and UTC-11 are never on the same date: "today" is the session's, set from --time-zone.
  const east = await count("Pacific/Kiritimati");
  const west = await count("Pacific/Pago_Pago");
  const [dates] = await withDb((sql) =>
    sql`select (now() at time zone 'Pacific/Kiritimati')::date::text as east, (now() at time zone 'Pacific/Pago_Pago')::date::text as west`
  );
  assert.equal(east.date, dates.east);
  assert.equal(west.date, dates.west);
  assert.notEqual(east.date, west.date);
  assert.equal(east.time_zone, "Pacific/Kiritimati");

  const human = await ops(["audit", "sms-today"]);
  assert.equal(human.code, EXIT.ok);
  assert.match(human.stdout, /^SMS sent today \(SMS envoyés aujourd'hui\)\s+\d+$/m);
  assert.match(human.stdout, /^Today\s+\d{4}-\d\d-\d\d \(America\/Montreal\)$/m);
});

Deno.test("ops audit sms-recent: the 10 latest twilio sms_* rows, newest first", async () => {
  const marker = `ops-audit-test:${crypto.randomUUID()}`;
  const [{ id }] = await withDb((sql) =>
    sql`insert into public.system_audit_logs (area, action, actor, target, details)
        values ('twilio', 'sms_status', 'twilio', ${marker}, '{"status": "delivered"}') returning id::text`
  );
  const { code, json, stderr } = await opsJson(["audit", "sms-recent"]);
  assert.equal(code, EXIT.ok, stderr);
  const rows = json.rows as { id: string; area: string; action: string }[];
  assert.ok(rows.length >= 1 && rows.length <= 10);
  assert.equal(rows[0].id, id, "the latest row first");
  for (const r of rows) assert.ok(r.area === "twilio" && r.action.startsWith("sms"), `${r.area}/${r.action}`);
  const human = await ops(["audit", "sms-recent"]);
  assert.match(human.stdout, /^Latest SMS audit rows \(Vérifier logs récents\): \d+$/m);
  assert.match(human.stdout.split("\n")[2], new RegExp(`\\d\\d:\\d\\d\\s+sms_status\\s+twilio\\s+${marker}\\s+status: delivered$`));
});

Deno.test("ops audit: bad arguments → the usage line, exit usage, nothing on stdout; no database → named", async () => {
  const usage = (run: { code: number; stdout: string; stderr: string }, re: RegExp) => {
    assert.equal(run.code, EXIT.usage, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, re);
    assert.match(run.stderr, /\nusage: npm run ops -- \[--json\] \[--env-file <file>\] audit/);
    assert.doesNotMatch(run.stderr, STACK_TRACE);
  };
  usage(await ops(["audit"]), /^ops audit: a command is required: errors, sms-today, sms-recent/);
  usage(await ops(["audit", "sms"]), /^ops audit: unknown command 'sms'/);
  usage(await ops(["audit", "errors", "--limit", "-3"]), /--limit <n>.*must be a whole number of rows/);
  usage(await ops(["audit", "sms-today", "--time-zone", "Mars/Olympus_Mons"]), /not a time zone name/);
  usage(await ops(["--json", "audit", "sms-recent", "--bogus"]), /unknown option '--bogus'/);

  const { SUPABASE_DB_URL: _db, ...withoutDb } = hostedValues();
  await withEnvFile(withoutDb, async (file) => {
    const run = await ops(["--env-file", file, "audit", "errors"]);
    assert.equal(run.code, EXIT.usage);
    assert.equal(run.stdout, "");
    assert.equal(run.stderr.split("\n").length, 2, "one line");
    assert.match(run.stderr, /^ops audit errors: --env-file .*: SUPABASE_DB_URL is not set .*\(needed by audit errors\)\n$/);
  });
});
