// Benchmark of the SMS webhooks (`npm run bench -- sms [--seconds=S] [--rounds=R] [--status-per-inbound=N]`).
//
// On a throwaway DURABLE cluster (fsync and synchronous_commit on, as in production) with every
// migration applied, the real functions (supabase/functions/sms-inbound and sms-status) run behind
// the real gateway (nginx front -> one long-lived worker per function), as `npm start` runs them.
// Three phases, each 16 clients on the same cluster:
//   webhooks   every client alternates the two webhooks Twilio sends, through the gateway:
//              - inbound SMS, STOP and START alternating per worker (each one flips that number's
//                consent, writes a proof row per worker holding it, stores the message, audits it);
//              - status callbacks, `sent` then `delivered`, for outbound sms_alerts rows loaded
//                beforehand;
//   sql only   the same two SQL function calls, alternating, straight from pgbench (a custom
//              script): what the webhooks' database work alone sustains, i.e. the ceiling of the
//              webhooks phase; the gap between the two is the HTTP path (client, gateway, functions);
//   pgbench -N Debian's pgbench built-in script: what Postgres sustains on this machine right now.
//
// Requests are form-encoded with Twilio's parameter sets and signed as Twilio signs them, with
// _shared/twilio/signature.ts (the code the functions verify with, proven equal to the SDK's signer
// by tests/shared/twilio/signature.test.ts). The client is deliberately thin, like pgbench's: plain
// HTTP/1.1 keep-alive connections (one per client), so that it takes as little as possible of the
// machine from the server side (Deno's fetch costs ~3x its CPU per request, the fake Twilio's
// postSignedForm ~8x). The signing is inside the measured latency (~10 µs).
//
// Numbers: fictional only, 555-0100..555-0199 (the NANP range reserved for fiction) in Quebec area
// codes: 800 for the webhooks (514, 438, 450, 579, 581, 819, 873, 418), 400 for the SQL phase
// (263, 354, 367, 468). 4 tenants; every 10th number is also a worker of a second tenant (a number
// can be in several tenants). Each client owns its numbers and messages, as distinct senders do.
//
// The mix: by default one status callback per inbound message (the worst case: an inbound STOP/START
// is the heavier of the two, see the README); --status-per-inbound=N sends N status callbacks for
// each inbound message, in both the webhooks and the sql-only phases (real traffic is mostly status
// callbacks: two per outbound message, a STOP now and then).
//
// Each phase has a 2 s warm-up, then S seconds (default 10). R rounds (default 3) rotate the phase
// order; the verdict uses the median of the per-round ratios (webhooks req/s over pgbench -N tps),
// which stay meaningful on a busy machine where absolute figures drift. Target: >= 0.5. CPU per
// request of each process (client, gateway, each function's worker, Postgres) is read from /proc,
// with the share of the machine taken by processes outside the benchmark (the noise).
//
// Every answer must be 200 with the expected TwiML, and at the end the database must hold exactly
// what the webhooks sent imply (messages, consent flips and proof rows, statuses, audit rows): a
// failed request or a wrong count fails the run (exit 1).
import { join } from "node:path";
import postgres from "postgres";
import { createThrowawayCluster, freePort, psql, run } from "../local-supabase/cluster.ts";
import { spawnGateway } from "../local-supabase/gateway/spawn.ts";
import { loadOrCreateStackKeys } from "../local-supabase/keys.ts";
import { generateLocalProviderSettings, toDotenv } from "../local-supabase/local-config.ts";
import { createShutdown } from "../lib/shutdown.ts";
import { twilioSignature } from "../../supabase/functions/_shared/twilio/signature.ts";
import { intOption, median, percentile, withDeadline } from "./stats.ts";
import { CLOCK_TICKS_PER_SECOND, cpuTicks, cpuTicksOf, pgbench, type PgbenchResult, processTree } from "./system.ts";

const CLIENTS = 16;
const WARMUP_SECONDS = 2;
const RUN_DEADLINE_MS = 30 * 60_000;
const TARGET_VS_PGBENCH = 0.5;
/** 555-0100..555-0199 in each: fictional in every NANP area code. */
const WEBHOOK_AREA_CODES = ["514", "438", "450", "579", "581", "819", "873", "418"];
const SQL_AREA_CODES = ["263", "354", "367", "468"];
const TENANTS = 4;
/** Every SHARED_EVERY-th number is also a worker of the next tenant. */
const SHARED_EVERY = 10;
/**
 * An upper bound on either phase's request rate, for loading enough outbound messages for the
 * status callbacks (two callbacks each). Far above what 2 cores do; running out fails the run.
 */
const MAX_RATE = 4000;
const TWILIO_API_VERSION = "2010-04-01";

type Kind = "inbound" | "status";
type PhaseName = "webhooks" | "sql only" | "pgbench -N";
const PHASES: PhaseName[] = ["webhooks", "sql only", "pgbench -N"];
const ROLES = ["client", "gateway", "sms-inbound", "sms-status", "postgres"] as const;
type Role = (typeof ROLES)[number];

interface WebhookMeasure {
  seconds: number;
  count: Record<Kind, number>;
  latencies: Record<Kind, number[]>;
}

interface Cpu {
  /** CPU µs per request (per transaction for pgbench), by process role. */
  perRequest: Record<Role, number>;
  /** Share (0..1) of the machine's CPU used by processes outside the benchmark during the phase. */
  others: number;
}

/** Fictional numbers: +1 <area> 555 01xx. */
function fictionalNumbers(areaCodes: string[]): string[] {
  return areaCodes.flatMap((area) => Array.from({ length: 100 }, (_, k) => `+1${area}55501${String(k).padStart(2, "0")}`));
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One keep-alive HTTP/1.1 connection (the load generator's, like pgbench's own thin client): POST
 * a body, read the answer (Content-Length or chunked). Reconnects when the server closes.
 */
class HttpConnection {
  #conn: Deno.TcpConn | null = null;
  #buf = new Uint8Array(64 * 1024);
  constructor(readonly port: number) {}

  async post(path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
    this.#conn ??= await Deno.connect({ hostname: "127.0.0.1", port: this.port });
    const conn = this.#conn;
    let head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    const bytes = encoder.encode(`${head}content-length: ${encoder.encode(body).length}\r\n\r\n${body}`);
    for (let sent = 0; sent < bytes.length;) sent += await conn.write(bytes.subarray(sent));
    let got = 0;
    for (;;) {
      if (got === this.#buf.length) {
        const bigger = new Uint8Array(this.#buf.length * 2);
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
      const n = await conn.read(this.#buf.subarray(got));
      if (n === null) {
        this.close();
        throw new Error("the server closed the connection mid-answer");
      }
      got += n;
      const text = decoder.decode(this.#buf.subarray(0, got));
      const headEnd = text.indexOf("\r\n\r\n");
      if (headEnd < 0) continue;
      const headers = text.slice(0, headEnd).toLowerCase();
      const rest = text.slice(headEnd + 4);
      let answerBody: string | null = null;
      const length = /\r\ncontent-length: *(\d+)/.exec(headers);
      if (length) {
        if (encoder.encode(rest).length >= Number(length[1])) answerBody = rest;
      } else if (/\r\ntransfer-encoding: *chunked/.test(headers)) {
        if (rest.endsWith("0\r\n\r\n")) answerBody = rest.replace(/(?:^|\r\n)[0-9a-f]+\r\n/g, "").replace(/\r\n$/, "");
      } else {
        throw new Error(`an answer with neither content-length nor chunked encoding: ${headers}`);
      }
      if (answerBody === null) continue;
      if (/\r\nconnection: *close/.test(headers)) this.close();
      return { status: Number(text.slice(9, 12)), body: answerBody };
    }
  }

  close() {
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#conn = null;
  }
}

/** Busy and total ticks of the whole machine (/proc/stat, all CPUs). */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // guest time is already in user
  return { busy: total - v[3] - v[4], total }; // minus idle and iowait
}

/** CPU of a process and of the children it has waited for (utime, stime, cutime, cstime). */
async function ticksWithReaped(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

/**
 * A process tree's CPU so far, including children that came and went (backends of closed
 * connections): the root's own and reaped children's time, plus its live descendants'.
 */
async function treeTicks(root: number): Promise<number> {
  const [, ...descendants] = await processTree(root);
  let ticks = await ticksWithReaped(root);
  for (const pid of descendants) ticks += await cpuTicks(pid);
  return ticks;
}

/**
 * pgbench script of the "sql only" phase: per client, the same alternation as the webhooks phase,
 * with the payloads the functions send. The keyword follows the number's current consent (STOP
 * when on, START when off) so every call flips it, as in the webhooks phase (one more index probe);
 * status callbacks take `sent` then `delivered` for the next outbound message of a sequence.
 */
function sqlOnlyScript(statusPerInbound: number): string {
  const areas = `array[${SQL_AREA_CODES.map((a) => `'${a}'`).join(", ")}]`;
  const perClient = (SQL_AREA_CODES.length * 100) / CLIENTS;
  return `\\set k :k + 1
\\if :k % ${statusPerInbound + 1} = 1
\\set n :client_id + ${CLIENTS} * (((:k - 1) / ${statusPerInbound + 1}) % ${perClient})
select private.handle_inbound_sms(jsonb_build_object(
  'message_sid', 'SM' || md5(random()::text), 'from', f.phone, 'to', '+15145550199',
  'body', w.keyword, 'keyword_kind', w.kind, 'keyword', w.keyword))
  from (select '+1' || (${areas})[:n / 100 + 1] || '55501' || lpad((:n % 100)::text, 2, '0') as phone) as f
  cross join lateral (select case when bool_and(sms_consent) then 'STOP' else 'START' end as keyword,
                             case when bool_and(sms_consent) then 'opt_out' else 'opt_in' end as kind
                        from public.workers where phone = f.phone) as w;
\\else
select private.apply_sms_status(jsonb_build_object(
  'message_sid', 'SM' || md5('sql-' || (s.x / 2)), 'status', case when s.x % 2 = 0 then 'sent' else 'delivered' end,
  'error_code', null, 'error_message', null))
  from (select nextval('bench.sql_status_seq') as x) as s;
\\endif
`;
}

export async function main(args: string[]): Promise<void> {
  const rounds = intOption(args, "rounds", 3, 1);
  const seconds = intOption(args, "seconds", 10, 2);
  const statusPerInbound = intOption(args, "status-per-inbound", 1, 1);
  const shutdown = createShutdown();
  shutdown.trapSignals({ onSignal: () => console.error("interrupted: removing the benchmark cluster and processes") });

  try {
    const work = async () => {
      // ---- cluster: the project's database as hosted has it, durable ----------------------
      const { cluster } = await createThrowawayCluster({
        prefix: "c-secur360-bench-sms-",
        durable: true,
        defer: (remove) =>
          shutdown.defer(async () => {
            await remove();
            console.log("benchmark cluster removed");
          }),
      });
      const home = cluster.home;
      const fsync = (await psql(cluster, "show fsync")).trim();
      const syncCommit = (await psql(cluster, "show synchronous_commit")).trim();
      console.log(`cluster in ${home}, port ${cluster.port}: PostgreSQL ${(await psql(cluster, "show server_version")).trim()}, ` +
        `fsync=${fsync}, synchronous_commit=${syncCommit}`);
      if (fsync !== "on" || syncCommit !== "on") throw new Error("the benchmark needs a durable cluster (fsync and synchronous_commit on)");
      const postmaster = Number((await Deno.readTextFile(join(cluster.dataDir, "postmaster.pid"))).split("\n")[0]);
      await run(["pgbench", "-i", "-q", "-s", "10", cluster.url]);
      console.log("pgbench tables initialised (scale 10)");

      const sql = postgres(cluster.url, { max: 2, onnotice: () => {} });
      shutdown.defer(() => sql.end({ timeout: 5 }));

      // ---- workers and outbound messages ------------------------------------------------------
      const webNumbers = fictionalNumbers(WEBHOOK_AREA_CODES);
      const sqlNumbers = fictionalNumbers(SQL_AREA_CODES);
      const tenantIds: string[] = [];
      for (let t = 0; t < TENANTS; t++) {
        const [{ id }] = await sql`insert into public.tenants (name) values (${`Bench chantier ${t + 1}`}) returning id`;
        tenantIds.push(id);
      }
      const workerRows = [...webNumbers, ...sqlNumbers].flatMap((phone, i) => {
        const primary = { tenant: tenantIds[i % TENANTS], phone, language: i % 3 === 0 ? "en" : "fr" };
        return i % SHARED_EVERY === 0 ? [primary, { ...primary, tenant: tenantIds[(i + 1) % TENANTS] }] : [primary];
      });
      await sql`insert into public.workers (tenant_id, full_name, phone, preferred_language, sms_consent, phone_verified)
        select t, 'Travailleur banc d''essai', p, l, true, true
          from unnest(${workerRows.map((w) => w.tenant)}::uuid[], ${workerRows.map((w) => w.phone)}::text[],
                      ${workerRows.map((w) => w.language)}::text[]) as x(t, p, l)`;
      const workersPerNumber = new Map<string, number>();
      for (const w of workerRows) workersPerNumber.set(w.phone, (workersPerNumber.get(w.phone) ?? 0) + 1);

      // Client c owns the numbers i with i % CLIENTS == c, and its own outbound messages to them.
      const clientNumbers = Array.from({ length: CLIENTS }, (_, c) => webNumbers.filter((_, i) => i % CLIENTS === c));
      const loadSeconds = rounds * (seconds + WARMUP_SECONDS);
      const alertsPerClient = Math.ceil(MAX_RATE / CLIENTS * statusPerInbound / (statusPerInbound + 1) * loadSeconds / 2);
      const clientAlerts = clientNumbers.map((mine) =>
        Array.from({ length: alertsPerClient }, (_, k) => ({ sid: `SM${randomHex(16)}`, to: mine[k % mine.length] }))
      );
      const webAlerts = clientAlerts.flat();
      const settings = generateLocalProviderSettings();
      const alertBody = "Alerte sécurité : évacuez la zone B immédiatement. Répondez STOP pour arrêter.";
      const loadAlerts = (sids: string[], to: string[]) =>
        sql`insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id)
          select w.tenant_id, w.id, 'outbound', ${settings.TWILIO_PHONE_NUMBER}, a.to_number, ${alertBody}, 'queued', a.sid
            from unnest(${sids}::text[], ${to}::text[]) as a(sid, to_number)
            join lateral (select id, tenant_id from public.workers where phone = a.to_number order by id limit 1) as w on true`;
      await loadAlerts(webAlerts.map((a) => a.sid), webAlerts.map((a) => a.to));
      // The sql-only phase's messages: SM || md5('sql-' || i), taken in order by a sequence.
      const sqlAlertCount = alertsPerClient * CLIENTS;
      const sqlAlerts = await sql<{ sid: string }[]>`select 'SM' || md5('sql-' || i) as sid from generate_series(0, ${sqlAlertCount - 1}) as i`;
      await loadAlerts(sqlAlerts.map((a) => a.sid), sqlAlerts.map((_, i) => sqlNumbers[i % sqlNumbers.length]));
      await sql`create schema bench`;
      await sql.unsafe(`create sequence bench.sql_status_seq minvalue 0 start 0 maxvalue ${sqlAlertCount * 2 - 1}`);
      await sql`vacuum analyze public.workers, public.sms_alerts`;
      const scriptFile = join(home, "sql-only.pgbench");
      await Deno.writeTextFile(scriptFile, sqlOnlyScript(statusPerInbound));
      console.log(`${workerRows.length} workers on ${webNumbers.length + sqlNumbers.length} fictional numbers ` +
        `(+1 <area> 555 01xx; webhooks: ${WEBHOOK_AREA_CODES.join("/")}, sql only: ${SQL_AREA_CODES.join("/")}), ` +
        `${TENANTS} tenants; ${webAlerts.length + sqlAlertCount} queued outbound messages`);

      // ---- the gateway with the real functions ----------------------------------------------
      const envFile = join(home, "functions.env");
      await Deno.writeTextFile(envFile, toDotenv(settings), { mode: 0o600 });
      const keys = await loadOrCreateStackKeys(home);
      const port = freePort();
      const gatewayLog = join(home, "gateway.log");
      const gateway = await spawnGateway({
        port,
        env: {
          SUPABASE_URL: `http://127.0.0.1:${port}`,
          SUPABASE_DB_URL: cluster.url,
          SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
          SUPABASE_SECRET_KEY: keys.secretKey,
          SUPABASE_JWKS: JSON.stringify(keys.jwks),
          SUPABASE_ANON_KEY: keys.anonKey,
          SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
          SUPABASE_JWT_SECRET: keys.legacyJwtSecret,
        },
        functions: [{ dir: "supabase/functions", config: "supabase/config.toml" }],
        envFiles: [envFile],
        output: { logFile: gatewayLog },
      });
      shutdown.defer(() => gateway.stop());
      await gateway.ready;
      console.log(`gateway up on port ${port} (log ${gatewayLog})`);
      const workerPid = async (name: string) => {
        const m = (await Deno.readTextFile(gatewayLog)).match(new RegExp(`\\[${name}\\] worker up \\(pid (\\d+)`));
        if (!m) throw new Error(`no worker for ${name} in ${gatewayLog}`);
        return Number(m[1]);
      };
      const workers: Record<Kind, number> = { inbound: await workerPid("sms-inbound"), status: await workerPid("sms-status") };
      const allWorkerPids = await Promise.all(["sms-inbound", "sms-status", "voice-inbound", "send-sms"].map(workerPid));
      // The URLs Twilio calls, as the functions rebuild them (FUNCTIONS_PUBLIC_URL unset: SUPABASE_URL/functions/v1).
      const paths: Record<Kind, string> = { inbound: "/functions/v1/sms-inbound", status: "/functions/v1/sms-status" };
      const publicUrl = (kind: Kind) => `http://127.0.0.1:${port}${paths[kind]}`;

      // ---- the webhooks' clients ---------------------------------------------------------------
      // What was sent, for the final check: messages per number, callbacks per outbound message.
      const sentPerNumber = new Map<string, number>();
      const callbacksPerAlert = new Map<string, number>();
      const clients = clientNumbers.map(() => ({ next: 0, inbound: 0, status: 0, http: new HttpConnection(port) }));
      shutdown.defer(() => clients.forEach((c) => c.http.close()));
      const failures: string[] = [];
      let failed = 0;
      const fail = (what: string) => {
        failed++;
        if (failures.length < 10) failures.push(what);
      };

      /** A form POST signed as Twilio signs it, with Twilio's headers. */
      const postSigned = async (http: HttpConnection, kind: Kind, params: Record<string, string>) => {
        const signature = await twilioSignature(publicUrl(kind), params, settings.TWILIO_AUTH_TOKEN);
        return await http.post(paths[kind], {
          "content-type": "application/x-www-form-urlencoded",
          "user-agent": "TwilioProxy/1.1",
          "x-twilio-signature": signature,
          "i-twilio-idempotency-token": randomHex(16),
          "x-home-region": "us1",
        }, new URLSearchParams(params).toString());
      };

      async function client(c: number, until: number, m: WebhookMeasure | null) {
        const state = clients[c];
        const mine = clientNumbers[c];
        while (performance.now() < until) {
          const kind: Kind = state.next++ % (statusPerInbound + 1) === 0 ? "inbound" : "status";
          const started = performance.now();
          try {
            if (kind === "inbound") {
              const from = mine[state.inbound++ % mine.length];
              const n = sentPerNumber.get(from) ?? 0;
              sentPerNumber.set(from, n + 1);
              const body = n % 2 === 0 ? "STOP" : "START";
              const sid = `SM${randomHex(16)}`;
              // The parameters of Twilio's incoming-message webhook (as the fake Twilio sends them).
              const res = await postSigned(state.http, kind, {
                ToCountry: "CA",
                ToState: "QC",
                SmsMessageSid: sid,
                NumMedia: "0",
                ToCity: "MONTREAL",
                FromZip: "",
                SmsSid: sid,
                FromState: "QC",
                SmsStatus: "received",
                FromCity: "MONTREAL",
                Body: body,
                FromCountry: "CA",
                To: settings.TWILIO_PHONE_NUMBER,
                MessagingServiceSid: settings.TWILIO_MESSAGING_SERVICE_SID,
                ToZip: "",
                NumSegments: "1",
                MessageSid: sid,
                AccountSid: settings.TWILIO_ACCOUNT_SID,
                From: from,
                ApiVersion: TWILIO_API_VERSION,
              });
              // Twilio answers its own English keywords (STOP, START): our TwiML is empty.
              if (res.status !== 200 || !res.body.endsWith("<Response/>")) {
                fail(`inbound ${body} from ${from}: ${res.status} ${res.body.slice(0, 200)}`);
              }
            } else {
              const k = state.status++;
              const alert = clientAlerts[c][Math.floor(k / 2)];
              if (!alert) throw new Error(`client ${c} ran out of outbound messages: raise MAX_RATE in scripts/bench/sms.ts`);
              const status = k % 2 === 0 ? "sent" : "delivered";
              callbacksPerAlert.set(alert.sid, k % 2 + 1);
              // The parameters of Twilio's outbound status callback (as the fake Twilio sends them).
              const res = await postSigned(state.http, kind, {
                SmsSid: alert.sid,
                SmsStatus: status,
                MessageStatus: status,
                To: alert.to,
                MessageSid: alert.sid,
                AccountSid: settings.TWILIO_ACCOUNT_SID,
                From: settings.TWILIO_PHONE_NUMBER,
                ApiVersion: TWILIO_API_VERSION,
                MessagingServiceSid: settings.TWILIO_MESSAGING_SERVICE_SID,
              });
              if (res.status !== 200 || !res.body.endsWith("<Response/>")) {
                fail(`status ${status} for ${alert.sid}: ${res.status} ${res.body.slice(0, 200)}`);
              }
            }
          } catch (e) {
            if (e instanceof Error && e.message.includes("ran out")) throw e;
            fail(`${kind}: ${e instanceof Error ? e.message : e}`);
            state.http.close();
          }
          const ms = performance.now() - started;
          if (m) {
            m.count[kind]++;
            m.latencies[kind].push(ms);
          }
        }
      }

      async function webhooks(durationS: number, measure: boolean): Promise<WebhookMeasure> {
        const m: WebhookMeasure = { seconds: 0, count: { inbound: 0, status: 0 }, latencies: { inbound: [], status: [] } };
        const started = performance.now();
        const until = started + durationS * 1000;
        await Promise.all(clients.map((_, c) => client(c, until, measure ? m : null)));
        m.seconds = (performance.now() - started) / 1000;
        return m;
      }

      // ---- CPU accounting ----------------------------------------------------------------------
      const gatewayOwn = async () => {
        const workerTrees = new Set((await Promise.all(allWorkerPids.map(processTree))).flat());
        return (await processTree(gateway.pid)).filter((p) => !workerTrees.has(p));
      };
      const snapshot = async () => ({
        machine: await machineTicks(),
        roles: {
          // This process is the webhooks' client; pgbench is its child (counted once reaped).
          client: await ticksWithReaped(Deno.pid),
          gateway: await cpuTicksOf(await gatewayOwn()),
          "sms-inbound": await cpuTicksOf(await processTree(workers.inbound)),
          "sms-status": await cpuTicksOf(await processTree(workers.status)),
          postgres: await treeTicks(postmaster),
        } as Record<Role, number>,
      });
      type Snapshot = Awaited<ReturnType<typeof snapshot>>;
      const cpuBetween = (a: Snapshot, b: Snapshot, requests: Partial<Record<Role, number>> & { all: number }): Cpu => {
        const perRequest = {} as Record<Role, number>;
        let ours = 0;
        for (const role of ROLES) {
          const ticks = b.roles[role] - a.roles[role];
          ours += ticks;
          perRequest[role] = ticks / CLOCK_TICKS_PER_SECOND * 1e6 / (requests[role] ?? requests.all);
        }
        const total = b.machine.total - a.machine.total;
        return { perRequest, others: Math.max(0, b.machine.busy - a.machine.busy - ours) / total };
      };

      // The functions' database connections: open ones, and those opened since `since` (after the
      // warm-up, a worker's pool must serve the whole measured phase without reconnecting).
      const functionBackends = async (since: Date) => {
        const [row] = await sql<{ open: number; opened: number }[]>`select count(*)::int as open,
            (count(*) filter (where backend_start > ${since}))::int as opened
          from pg_stat_activity where application_name = 'c-secur360 edge function'`;
        return row;
      };

      const pgbenchRun = (s: number, log: boolean, script?: string) =>
        pgbench(cluster.url, { clients: CLIENTS, seconds: s, logDir: home, log, ...(script ? { script, define: { k: "0" } } : {}) });

      interface Round {
        web: WebhookMeasure;
        sqlOnly: PgbenchResult;
        pg: PgbenchResult;
        backends: { open: number; opened: number };
        cpu: Record<PhaseName, Cpu>;
      }
      const results: Round[] = [];
      const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
      const cpuText = (cpu: Cpu, roles: Role[], rename: Partial<Record<Role, string>> = {}) =>
        `CPU µs/req: ${roles.map((r) => `${rename[r] ?? r} ${fmt(cpu.perRequest[r], 0)}`).join(", ")}; ` +
        `other processes ${fmt(cpu.others * 100, 0)}% of the machine`;
      const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

      for (let round = 1; round <= rounds; round++) {
        const order = PHASES.map((_, k) => PHASES[(k + round - 1) % PHASES.length]);
        const r = { cpu: {} } as Round;
        for (const phase of order) {
          const tag = `[round ${round}/${rounds}] ${phase.padEnd(10)}`;
          if (phase === "webhooks") {
            await webhooks(WARMUP_SECONDS, false);
            const [{ now: measuredFrom }] = await sql<{ now: Date }[]>`select clock_timestamp() as now`;
            const before = await snapshot();
            const web = await webhooks(seconds, true);
            const after = await snapshot();
            const all = web.count.inbound + web.count.status;
            r.web = web;
            r.backends = await functionBackends(measuredFrom);
            r.cpu[phase] = cpuBetween(before, after, { all, "sms-inbound": web.count.inbound, "sms-status": web.count.status });
            const both = sorted([...web.latencies.inbound, ...web.latencies.status]);
            console.log(`${tag} ${fmt(all / web.seconds, 0)} req/s ` +
              `(inbound ${fmt(web.count.inbound / web.seconds, 0)}, status ${fmt(web.count.status / web.seconds, 0)}), ` +
              `p50 ${fmt(percentile(both, 0.5))} ms, p99 ${fmt(percentile(both, 0.99))} ms; ${cpuText(r.cpu[phase], [...ROLES])}`);
          } else {
            const script = phase === "sql only" ? scriptFile : undefined;
            await pgbenchRun(WARMUP_SECONDS, false, script);
            const before = await snapshot();
            const pg = await pgbenchRun(seconds, true, script);
            const after = await snapshot();
            if (phase === "sql only") r.sqlOnly = pg;
            else r.pg = pg;
            r.cpu[phase] = cpuBetween(before, after, { all: pg.requests });
            console.log(`${tag} ${fmt(pg.rps, 0)} tps, p50 ${fmt(pg.p50)} ms, p99 ${fmt(pg.p99)} ms; ` +
              cpuText(r.cpu[phase], ["client", "postgres"], { client: "pgbench" }));
          }
        }
        results.push(r);
      }
      // ---- the database holds exactly what the webhooks sent ----------------------------------
      if (failed > 0) {
        throw new Error(`${failed} webhook request(s) failed; first ones:\n  ${failures.join("\n  ")}`);
      }
      let inboundSent = 0;
      let proofsExpected = 0;
      for (const [phone, n] of sentPerNumber) {
        inboundSent += n;
        proofsExpected += n * workersPerNumber.get(phone)!; // every message flips every worker of the number
      }
      let statusSent = 0;
      let delivered = 0;
      let sentOnly = 0;
      for (const n of callbacksPerAlert.values()) {
        statusSent += n;
        if (n === 2) delivered++;
        else sentOnly++;
      }
      const [db] = await sql`select
          (select count(*)::int from public.sms_alerts where direction = 'inbound' and from_number = any(${webNumbers})) as inbound,
          (select count(*)::int from public.sms_consent_events where source = 'keyword' and phone = any(${webNumbers})) as proofs,
          (select count(*)::int from public.sms_alerts where direction = 'outbound' and to_number = any(${webNumbers})
             and status = 'delivered' and sent_at is not null and delivered_at is not null) as delivered,
          (select count(*)::int from public.sms_alerts where direction = 'outbound' and to_number = any(${webNumbers})
             and status = 'sent' and sent_at is not null and delivered_at is null) as sent_only,
          (select count(*)::int from public.sms_alerts where direction = 'outbound' and to_number = any(${webNumbers})
             and status = 'queued') as queued,
          (select count(*)::int from public.system_audit_logs as l join public.sms_alerts as s on s.provider_message_id = l.target
            where l.area = 'twilio' and l.action = 'inbound' and s.direction = 'inbound' and s.from_number = any(${webNumbers})) as inbound_audits,
          (select count(*)::int from public.system_audit_logs as l join public.sms_alerts as s on s.provider_message_id = l.target
            where l.area = 'twilio' and l.action = 'sms_status' and s.direction = 'outbound' and s.to_number = any(${webNumbers})) as status_audits`;
      const consent = await sql<{ phone: string; all_on: boolean; all_off: boolean }[]>`
        select phone, bool_and(sms_consent) as all_on, bool_and(not sms_consent) as all_off
          from public.workers where phone = any(${webNumbers}) group by phone`;
      const wrongConsent = consent.filter((w) => {
        const on = (sentPerNumber.get(w.phone) ?? 0) % 2 === 0; // STOP first, then START, …
        return on ? !w.all_on : !w.all_off;
      });
      const expected: Record<string, number> = {
        inbound: inboundSent,
        proofs: proofsExpected,
        delivered,
        sent_only: sentOnly,
        queued: webAlerts.length - delivered - sentOnly,
        inbound_audits: inboundSent,
        status_audits: statusSent,
      };
      const mismatches = Object.entries(expected).filter(([k, v]) => db[k] !== v)
        .map(([k, v]) => `${k}: ${db[k]} in the database, ${v} expected`);
      if (wrongConsent.length) mismatches.push(`consent wrong for ${wrongConsent.length} number(s), e.g. ${wrongConsent[0].phone}`);
      if (mismatches.length) throw new Error(`the database does not hold what the requests imply:\n  ${mismatches.join("\n  ")}`);
      console.log(`verified: every webhook answered 200 with the expected TwiML; ${inboundSent} inbound messages -> ` +
        `${proofsExpected} consent proof rows, each number's consent as its last keyword says; ${statusSent} status ` +
        `callbacks -> ${delivered} delivered, ${sentOnly} sent; one audit row per webhook`);
      const opened = results.reduce((n, r) => n + r.backends.opened, 0);
      console.log(`functions' database connections at the end of each webhooks phase: ${results.map((r) => r.backends.open).join(", ")}; ` +
        `opened during the measured phases: ${opened}` +
        (opened === 0 ? " (each worker's pool is reused across requests)" : " (the pool reconnected under load: look at the gateway log)"));

      // ---- summary ----------------------------------------------------------------------------
      const line = (label: string, rps: number[], p50: number[], p99: number[]) =>
        console.log(`${label.padEnd(22)} ${fmt(median(rps), 0).padStart(7)} ${fmt(median(p50)).padStart(8)} ${fmt(median(p99)).padStart(8)}  ` +
          `[${rps.map((x) => fmt(x, 0)).join(", ")}]`);
      const q = (r: Round, kinds: Kind[], p: number) => percentile(sorted(kinds.flatMap((k) => r.web.latencies[k])), p);
      const rate = (r: Round, kinds: Kind[]) => kinds.reduce((s, k) => s + r.web.count[k], 0) / r.web.seconds;
      console.log(`\n=== SMS webhooks benchmark: ${CLIENTS} clients, ${seconds} s per phase, ${rounds} round(s), ` +
        `${statusPerInbound} status callback(s) per inbound message, durable cluster (fsync=${fsync}, synchronous_commit=${syncCommit}) ===`);
      console.log(`${"phase".padEnd(22)} ${"req/s".padStart(7)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}  [req/s per round] (medians over rounds)`);
      for (const [label, kinds] of [["sms-inbound", ["inbound"]], ["sms-status", ["status"]], ["webhooks combined", ["inbound", "status"]]] as [string, Kind[]][]) {
        line(label, results.map((r) => rate(r, kinds)), results.map((r) => q(r, kinds, 0.5)), results.map((r) => q(r, kinds, 0.99)));
      }
      line("sql only (tps)", results.map((r) => r.sqlOnly.rps), results.map((r) => r.sqlOnly.p50), results.map((r) => r.sqlOnly.p99));
      line("pgbench -N (tps)", results.map((r) => r.pg.rps), results.map((r) => r.pg.p50), results.map((r) => r.pg.p99));
      const medCpu = (phase: PhaseName, role: Role) => fmt(median(results.map((r) => r.cpu[phase].perRequest[role])), 0);
      console.log(`CPU µs per webhook request (median): ${ROLES.map((role) => `${role} ${medCpu("webhooks", role)}`).join(", ")}`);
      console.log(`CPU µs per sql-only call (median): pgbench ${medCpu("sql only", "client")}, postgres ${medCpu("sql only", "postgres")}`);
      console.log(`CPU µs per pgbench -N transaction (median): pgbench ${medCpu("pgbench -N", "client")}, postgres ${medCpu("pgbench -N", "postgres")}`);
      console.log(`other processes on the machine (noise), per round: ` +
        results.map((r) => PHASES.map((p) => `${p} ${fmt(r.cpu[p].others * 100, 0)}%`).join(" / ")).join("; "));
      const ratioLine = (label: string, ratios: number[], target?: number) => {
        const med = median(ratios);
        const verdict = target === undefined ? "" : ` (target >= ${target}) ${med >= target ? "OK" : "MISSED"}`;
        console.log(`${label.padEnd(38)} ${fmt(med)}${verdict}  [per round: ${ratios.map((x) => fmt(x)).join(", ")}]`);
      };
      console.log("ratios (median of per-round ratios):");
      ratioLine("webhooks req/s / pgbench -N tps", results.map((r) => rate(r, ["inbound", "status"]) / r.pg.rps), TARGET_VS_PGBENCH);
      ratioLine("sql only tps / pgbench -N tps", results.map((r) => r.sqlOnly.rps / r.pg.rps));
      ratioLine("webhooks req/s / sql only tps", results.map((r) => rate(r, ["inbound", "status"]) / r.sqlOnly.rps));
    };
    await withDeadline(work(), RUN_DEADLINE_MS);
  } finally {
    shutdown.releaseSignals();
    await shutdown.run();
  }
}
