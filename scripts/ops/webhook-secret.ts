// `npm run ops -- rotate-webhook-secret`: a zero-downtime roll of STRIPE_WEBHOOK_SECRET.
//
// stripe-webhook accepts a comma-separated list (any secret may verify an event), and Stripe, once
// the endpoint's secret is rolled, signs every event with the new AND the old secret (one v1 each)
// until the old one expires (at most 24 h later, as chosen in the Dashboard). So:
//   (no flag)     where the roll stands, and step 1: what to do in Stripe
//   --add         the new secret goes first in the list ("new,old"): locally in the stack's
//                 supabase/functions/.env (the gateway reads it at start: restart the stack); on a
//                 hosted project in the --env-file that defines it, plus a one-line file (0600) for
//                 the printed `npx supabase secrets set --env-file …` command, which removes it
//   --confirm     a test event signed with ONLY the new secret (then with each old one) goes to
//                 stripe-webhook (locally through the fake Stripe's delivery, else signed here);
//                 each must be answered 200 and land in billing_events
//   --remove-old  once confirmed: the list becomes the new secret alone
// Secrets are never printed: they are named by role and a fingerprint (the first 8 hex digits of
// their SHA-256); the whole value's SHA-256 is what `supabase secrets list` shows as its digest.
// The state between steps (fingerprints and times, no secret) is .stack/ops/webhook-secret-roll.<target>.json.
import type { Command } from "commander";
import { dirname, join, relative } from "node:path";
import { stripeSignatureHeader } from "../fakes/stripe.ts";
import { StripeFakeControl } from "../fakes/stripe-control.ts";
import { parseDotenv } from "../local-supabase/gateway/config.ts";
import { FUNCTIONS_ENV_FILE } from "../local-supabase/local-config.ts";
import { stackStateDir } from "../local-supabase/stack-env.ts";
import { SettingsError, SettingsSource } from "../../supabase/functions/_shared/env.ts";
import { type Context, defineCommand, OperationFailed, type Options, type Outcome, UsageError } from "./command.ts";
import type { Output } from "./output.ts";
import { localTime, OPS_TIME_ZONE, relative as fromNow } from "./runbook.ts";
import { connectionReason, type Target } from "./target.ts";

const P = "rotate-webhook-secret";
const NAME = "STRIPE_WEBHOOK_SECRET";
/** The variable --add reads the new secret from when it is given no value. */
export const NEW_SECRET_ENV = "STRIPE_WEBHOOK_SECRET_NEW";
/** The type of the test events --confirm sends: not Stripe's, so stripe-webhook records it as ignored. */
export const TEST_EVENT_TYPE = "ops.webhook_secret_check";
const INVOKE = "npm run ops --";

// ---- secrets, fingerprints, files --------------------------------------------------------------

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `sha256:1a2b3c4d`: tells secrets apart without showing any of their characters. */
export async function fingerprint(secret: string): Promise<string> {
  return `sha256:${(await sha256Hex(secret)).slice(0, 8)}`;
}

interface SecretInfo {
  role: "new" | "old" | "current";
  fingerprint: string;
}

async function describeList(list: string[]): Promise<SecretInfo[]> {
  return await Promise.all(
    list.map(async (s, i) => ({ role: list.length === 1 ? "current" as const : i === 0 ? "new" as const : "old" as const, fingerprint: await fingerprint(s) })),
  );
}

/** `STRIPE_WEBHOOK_SECRET=whsec_…(new sha256:1a2b3c4d),whsec_…(old sha256:5e6f7a8b)`: the value, masked. */
function masked(infos: SecretInfo[]): string {
  return `${NAME}=${infos.map((i) => `whsec_…(${i.role === "current" ? "" : `${i.role} `}${i.fingerprint})`).join(",")}`;
}

/** One secret, validated by the functions' own rule (env.ts); the message never holds the value. */
function validSecret(value: string): string {
  const v = value.trim();
  if (v === "") throw new UsageError(`no new secret given: --add <whsec_…>, ${NEW_SECRET_ENV}, or paste it at the prompt`);
  if (v.includes(",")) throw new UsageError("--add takes one secret (no comma): the list is made here");
  try {
    new SettingsSource((n) => (n === NAME ? v : undefined)).get(NAME);
  } catch (error) {
    if (error instanceof SettingsError) {
      throw new UsageError(`--add: not a Stripe webhook signing secret: it must start with whsec_ followed by at least 8 letters, digits, +, /, =, _ or -`);
    }
    throw error;
  }
  return v;
}

/** Writes `text` to `file` through a temporary file in the same folder (atomic rename), with `mode`. */
async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  await Deno.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, text, { mode, createNew: true });
    await Deno.chmod(temp, mode);
    await Deno.rename(temp, file);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** Replaces the NAME=… line(s) of a dotenv file in place (other lines byte for byte, its mode kept). */
async function rewriteSettingsFile(file: string, value: string): Promise<void> {
  const original = await Deno.readTextFile(file);
  const line = () => new RegExp(`^[ \\t]*(?:export[ \\t]+)?${NAME}[ \\t]*=.*$`, "gm");
  const updated = line().test(original)
    ? original.replace(line(), `${NAME}=${value}`)
    : `${original}${original.endsWith("\n") || original === "" ? "" : "\n"}${NAME}=${value}\n`;
  if (parseDotenv(updated)[NAME] !== value) {
    throw new OperationFailed(`${file}: ${NAME} could not be rewritten in place (a quoted value over several lines?): edit it by hand`);
  }
  const mode = (await Deno.stat(file)).mode;
  await writeAtomic(file, updated, mode === null ? 0o600 : mode & 0o777);
}

/** Where the target's STRIPE_WEBHOOK_SECRET is written: the stack's functions env, or the last --env-file defining it. */
async function settingsFile(target: Target): Promise<string> {
  if (target.source.kind === "local") return Deno.env.get("OPS_FUNCTIONS_ENV_FILE") || FUNCTIONS_ENV_FILE;
  let found: string | undefined;
  for (const file of target.source.files) {
    if (parseDotenv(await Deno.readTextFile(file))[NAME] !== undefined) found = file;
  }
  if (!found) throw new OperationFailed(`no --env-file defines ${NAME}`); // need() refused it before
  return found;
}

/** A short name for the target's state files: `local`, the project ref, or the host. */
function targetKey(target: Target): string {
  if (target.source.kind === "local") return "local";
  const { SUPABASE_URL } = target.need(P, "SUPABASE_URL");
  const host = new URL(SUPABASE_URL).host;
  const ref = /^([a-z0-9]{20})\.supabase\.co$/.exec(host)?.[1];
  return (ref ?? host).replace(/[^A-Za-z0-9.-]/g, "_");
}

/** The project ref for `supabase secrets set --project-ref`, when SUPABASE_URL is https://<ref>.supabase.co. */
function projectRef(target: Target): string | undefined {
  const { SUPABASE_URL } = target.need(P, "SUPABASE_URL");
  return /^([a-z0-9]{20})\.supabase\.co$/.exec(new URL(SUPABASE_URL).host)?.[1];
}

const display = (file: string) => {
  const rel = relative(Deno.cwd(), file);
  return rel && !rel.startsWith("..") ? rel : file;
};

// ---- state between steps (no secret in it) ---------------------------------------------------

interface RollState {
  target: string;
  /** Fingerprint of the new secret, and of the old ones it replaces. */
  new: string;
  old: string[];
  added_at: string;
  /** First --confirm that accepted the new secret; the latest one. */
  confirmed_at: string | null;
  last_check_at?: string | null;
  removed_at: string | null;
}

function stateFile(key: string): string {
  return join(stackStateDir(), "ops", `webhook-secret-roll.${key}.json`);
}

async function readState(key: string): Promise<RollState | null> {
  try {
    return JSON.parse(await Deno.readTextFile(stateFile(key))) as RollState;
  } catch {
    return null;
  }
}

async function writeState(state: RollState): Promise<string> {
  const file = stateFile(state.target);
  await writeAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o600);
  return file;
}

// ---- reading the new secret --------------------------------------------------------------------

// deno-lint-ignore no-control-regex -- a terminal's escape sequences (bracketed paste) are what it removes
const ESCAPES = /\x1b\[[0-9;]*[~A-Za-z]/g;

/** A hidden prompt on a terminal (nothing echoed); otherwise the first line of stdin. */
async function readSecretFromStdin(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    const enc = new TextEncoder();
    Deno.stderr.writeSync(enc.encode("New webhook signing secret (whsec_…, not shown): "));
    const bytes: number[] = [];
    const buf = new Uint8Array(64);
    Deno.stdin.setRaw(true);
    try {
      read: for (;;) {
        const n = await Deno.stdin.read(buf);
        if (n === null) break;
        for (const b of buf.subarray(0, n)) {
          if (b === 3) throw new UsageError("cancelled");
          if (b === 13 || b === 10) break read;
          if (b === 127 || b === 8) bytes.pop();
          else bytes.push(b);
        }
        if (bytes.length > 4096) break;
      }
    } finally {
      Deno.stdin.setRaw(false);
      Deno.stderr.writeSync(enc.encode("\n"));
    }
    return new TextDecoder().decode(new Uint8Array(bytes)).replace(ESCAPES, "").trim();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > 4096) break;
  }
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return text.split(/\r?\n/)[0].trim();
}

async function newSecret(opts: Options, out: Output): Promise<{ secret: string; source: string }> {
  if (opts.generate) {
    if (typeof opts.add === "string") throw new UsageError("--generate makes the secret: give --add without a value");
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    return { secret: `whsec_local${hex}`, source: "generated (local)" };
  }
  if (typeof opts.add === "string" && opts.add !== "-") {
    out.warn(`note: a secret on the command line stays in the shell's history; next time give --add alone and paste it at the prompt (or set ${NEW_SECRET_ENV})`);
    return { secret: validSecret(opts.add), source: "--add" };
  }
  const fromEnv = opts.add === "-" ? undefined : Deno.env.get(NEW_SECRET_ENV);
  if (fromEnv !== undefined && fromEnv.trim() !== "") return { secret: validSecret(fromEnv), source: NEW_SECRET_ENV };
  const source = Deno.stdin.isTerminal() ? "prompt" : "stdin";
  return { secret: validSecret(await readSecretFromStdin()), source };
}

// ---- the checks of --confirm --------------------------------------------------------------------

interface SecretCheck {
  role: "new" | "old" | "current";
  fingerprint: string;
  via: "fake Stripe" | "signed here";
  event_id: string;
  http_status: number;
  accepted: boolean;
  outcome: string | null;
  error: string | null;
  /** The billing_events row (null: not found; undefined: no database to look in). */
  billing_event?: { outcome: string; received_at: string } | null;
}

function randomId(length: number): string {
  const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => chars[b % chars.length]).join("");
}

/** What the test event is about: which secret signed it (its fingerprint), and who sent it. */
const testObject = (fp: string) => ({ id: `opscheck_${randomId(14)}`, object: "ops_check", signed_with: fp, sent_by: `${INVOKE} ${P} --confirm` });

/** Sends one test event signed with `secret` alone; through the local fake Stripe when there is one. */
async function sendTestEvent(target: Target, url: string, secret: string, info: SecretInfo): Promise<SecretCheck> {
  const fakeBase = target.source.kind === "local" ? target.optional(P, "STRIPE_API_BASE") : undefined;
  let status: number, text: string, eventId: string;
  try {
    if (fakeBase) {
      const fake = new StripeFakeControl(fakeBase);
      const event = await fake.emit({ type: TEST_EVENT_TYPE, object: testObject(info.fingerprint) });
      const [attempt] = await fake.deliver({ event_ids: [event.id], url, secrets: [secret] });
      eventId = event.id;
      status = attempt.status;
      text = attempt.response_body;
    } else {
      eventId = `evt_ops${randomId(24)}`;
      const body = JSON.stringify({
        id: eventId,
        object: "event",
        api_version: null,
        created: Math.floor(Date.now() / 1000),
        data: { object: testObject(info.fingerprint) },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type: TEST_EVENT_TYPE,
      }, null, 2);
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json; charset=utf-8",
          "stripe-signature": await stripeSignatureHeader(body, [secret]),
          "user-agent": `${INVOKE} ${P}`,
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(30_000),
      });
      status = res.status;
      text = await res.text();
    }
  } catch (error) {
    const hint = target.source.kind === "local" ? " (is the local stack running? `npm start`)" : "";
    throw new OperationFailed(`cannot reach ${url}: ${connectionReason(error)}${hint}`, { url });
  }
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* not JSON: the status says it */ }
  return {
    role: info.role,
    fingerprint: info.fingerprint,
    via: fakeBase ? "fake Stripe" : "signed here",
    event_id: eventId,
    http_status: status,
    accepted: status === 200,
    outcome: typeof json.outcome === "string" ? json.outcome : null,
    error: status === 200 ? null : [json.error, json.message].filter((x) => typeof x === "string").join(": ") || `HTTP ${status}`,
  };
}

interface StripeDeliveries {
  since: string;
  count: number;
  latest: { stripe_event_id: string; type: string; outcome: string; received_at: string } | null;
}

// ---- the steps -----------------------------------------------------------------------------------

function nextSteps(target: Target): { local: boolean; reload: string } {
  const local = target.source.kind === "local";
  return {
    local,
    reload: local
      ? "Restart the stack so the functions (and the fake Stripe) load it: the local gateway reads its env files at start and has " +
        "no reload. Ctrl-C in the `npm start` terminal and `npm start` again, or `npm run stack -- down && npm run stack -- up`."
      : "Then run the command above: hosted functions read their secrets at their next start, no redeploy needed. " +
        "`npx supabase secrets list` then shows STRIPE_WEBHOOK_SECRET's digest, which should be the SHA-256 above.",
  };
}

/** Hosted: the one-line file `supabase secrets set --env-file` reads, and the command, which removes it. */
async function secretsCommand(target: Target, key: string, value: string): Promise<{ file: string; command: string }> {
  const file = join(stackStateDir(), "ops", `stripe-webhook-secret.${key}.env`);
  await writeAtomic(file, `# ${NAME} for \`supabase secrets set --env-file\` (${INVOKE} ${P}); delete once set\n${NAME}=${value}\n`, 0o600);
  const ref = projectRef(target);
  const shown = display(file);
  return { file, command: `npx supabase secrets set --env-file ${shown}${ref ? ` --project-ref ${ref}` : ""} && rm ${shown}` };
}

async function status(target: Target, list: string[], file: string): Promise<Outcome> {
  const infos = await describeList(list);
  const key = targetKey(target);
  const state = await readState(key);
  const rolling = list.length > 1;
  const url = target.publicFunctionUrl(P, "stripe-webhook");
  const { local } = nextSteps(target);
  const next = rolling
    ? state?.confirmed_at && state.new === infos[0].fingerprint ? `${INVOKE} ${P} --remove-old` : `${INVOKE} ${P} --confirm`
    : `${INVOKE} ${P} --add${local ? " --generate" : ""}`;
  return {
    ok: true,
    data: { step: "status", target_file: file, secrets: infos, rolling, endpoint: url, roll: state, next },
    render(out) {
      out.heading(`${NAME} (${display(file)}): ${list.length} secret${list.length > 1 ? "s" : ""}`);
      out.table(["Role", "Fingerprint"], infos.map((i) => [i.role, i.fingerprint]));
      if (state) {
        out.line(
          `Last roll: added ${localTime(state.added_at, OPS_TIME_ZONE)}` +
            `${state.confirmed_at ? `, confirmed ${localTime(state.confirmed_at, OPS_TIME_ZONE)}` : ", not confirmed"}` +
            `${state.removed_at ? `, old removed ${localTime(state.removed_at, OPS_TIME_ZONE)}` : ""} (${OPS_TIME_ZONE}).`,
        );
      }
      out.line();
      out.heading("Zero-downtime roll");
      if (local) {
        out.line("1. Locally the fake Stripe stands in for Stripe: it signs each event with every secret of the list (as Stripe");
        out.line("   does while a roll is under way), so there is nothing to do in a dashboard; --generate makes the new secret.");
      } else {
        out.line(`1. In Stripe: Dashboard → Developers → Webhooks → the endpoint ${url} → Roll secret.`);
        out.line("   Let the old secret expire in 24 hours (not now, unless it leaked): until then Stripe signs every event");
        out.line("   with both secrets (two v1= in Stripe-Signature). Reveal the new secret (whsec_…) and copy it.");
      }
      out.line(
        local
          ? `2. ${INVOKE} ${P} --add --generate   (or --add alone to paste a secret of your own)`
          : `2. ${INVOKE} ${P} --add   (paste it at the hidden prompt; or ${NEW_SECRET_ENV}=… in the environment)`,
      );
      out.line(`   The list becomes new,old; ${local ? "restart the stack" : "run the `supabase secrets set` command it prints"}.`);
      out.line(`3. ${INVOKE} ${P} --confirm   (a test event signed with the new secret alone must be accepted)`);
      out.line(`4. ${INVOKE} ${P} --remove-old   (the list becomes the new secret alone; ${local ? "restart" : "set it"} again)`);
      out.line();
      out.line(`Next: ${next}`);
    },
  };
}

async function add(ctx: Context, target: Target, list: string[], file: string, opts: Options): Promise<Outcome> {
  if (opts.generate && target.source.kind !== "local") {
    throw new UsageError("--generate is for the local stack: on a hosted project the new secret comes from Stripe (Roll secret)");
  }
  const current = await describeList(list);
  if (list.length > 1) {
    throw new OperationFailed(
      `a roll is already under way: ${NAME} holds ${list.length} secrets (new ${current[0].fingerprint}): ` +
        `finish it with --confirm and --remove-old first`,
    );
  }
  const { secret, source } = await newSecret(opts, ctx.out);
  if (list.includes(secret)) throw new OperationFailed(`that secret is already in ${NAME} (${await fingerprint(secret)}): nothing to add`);
  const next = [secret, ...list];
  const value = next.join(",");
  const infos = await describeList(next);
  await rewriteSettingsFile(file, value);
  const key = targetKey(target);
  const now = new Date().toISOString();
  const stateAt = await writeState({ target: key, new: infos[0].fingerprint, old: infos.slice(1).map((i) => i.fingerprint), added_at: now, confirmed_at: null, removed_at: null });
  const { local, reload } = nextSteps(target);
  const set = local ? undefined : await secretsCommand(target, key, value);
  const digest = await sha256Hex(value);
  return {
    ok: true,
    data: {
      step: "add",
      source,
      target_file: file,
      secrets: infos,
      digest,
      ...(set ? { secrets_file: set.file, command: set.command, sets: `npx supabase secrets set ${masked(infos)}` } : {}),
      state_file: stateAt,
      reload,
      next: `${INVOKE} ${P} --confirm`,
    },
    render(out) {
      out.heading(`New secret added (${source}): ${NAME} now holds ${next.length} secrets, the new one first`);
      out.fields([
        ["Written to", display(file)],
        ["Value (masked)", masked(infos)],
        ["SHA-256 of the value", digest],
      ]);
      if (set) {
        out.line();
        out.line("Set it on the project (the file is mode 0600 and removed once set):");
        out.line(`  ${set.command}`);
        out.line(`which sets: npx supabase secrets set ${masked(infos)}`);
      }
      out.line();
      out.line(reload);
      out.line(`Then: ${INVOKE} ${P} --confirm`);
    },
  };
}

async function confirm(ctx: Context, target: Target, list: string[], file: string): Promise<Outcome> {
  const infos = await describeList(list);
  const url = target.publicFunctionUrl(P, "stripe-webhook");
  const key = targetKey(target);
  const state = await readState(key);
  const checks: SecretCheck[] = [];
  const progress = ctx.out.progress(`sending test events to ${url}…`);
  try {
    for (let i = 0; i < list.length; i++) {
      progress.text(`sending a test event signed with the ${infos[i].role} secret only…`);
      checks.push(await sendTestEvent(target, url, list[i], infos[i]));
    }
  } finally {
    progress.stop();
  }
  // The rows, and Stripe's own deliveries since the roll began (when the target has a database).
  const since = state?.added_at ?? new Date(Date.now() - 86400_000).toISOString();
  const found = await target.withDb(P, async (sql) => {
    const rows = await sql<{ stripe_event_id: string; outcome: string; received_at: Date }[]>`
      select stripe_event_id, outcome, received_at from public.billing_events
       where stripe_event_id = any(${checks.map((c) => c.event_id)}::text[])`;
    const [{ count }] = await sql<{ count: number }[]>`
      select count(*)::int as count from public.billing_events where received_at >= ${since}::timestamptz and type <> ${TEST_EVENT_TYPE}`;
    const [latest] = await sql<{ stripe_event_id: string; type: string; outcome: string; received_at: Date }[]>`
      select stripe_event_id, type, outcome, received_at from public.billing_events
       where received_at >= ${since}::timestamptz and type <> ${TEST_EVENT_TYPE} order by received_at desc limit 1`;
    return { rows, count, latest };
  });
  for (const c of checks) {
    if (!found) continue;
    const row = found.rows.find((r) => r.stripe_event_id === c.event_id);
    c.billing_event = row ? { outcome: row.outcome, received_at: row.received_at.toISOString() } : null;
  }
  const deliveries: StripeDeliveries | null = found
    ? {
      since,
      count: found.count,
      latest: found.latest ? { ...found.latest, received_at: found.latest.received_at.toISOString() } : null,
    }
    : null;

  const newest = checks[0];
  const newOk = newest.accepted && newest.billing_event !== null;
  const oldRefused = checks.slice(1).filter((c) => !c.accepted);
  if (newOk) {
    // The first confirmation of this secret stays (--remove-old needs one); the latest check is noted beside it.
    const now = new Date().toISOString();
    const same = state && state.new === newest.fingerprint ? state : null;
    await writeState({
      target: key,
      new: newest.fingerprint,
      old: same?.old ?? infos.slice(1).map((i) => i.fingerprint),
      added_at: same?.added_at ?? now,
      confirmed_at: same?.confirmed_at ?? now,
      last_check_at: now,
      removed_at: same?.removed_at ?? null,
    });
  }
  const { local } = nextSteps(target);
  const why = newOk ? undefined : !newest.accepted
    ? `stripe-webhook refused the ${newest.role} secret (${newest.fingerprint}): ${newest.error}; ` +
      (local
        ? "the running functions do not have it yet: restart the stack (Ctrl-C and `npm start`, or `npm run stack -- down && npm run stack -- up`)"
        : `the project does not have it yet: run the \`supabase secrets set\` command --add printed (\`npx supabase secrets list\`: ${NAME}'s digest must be the SHA-256 --add showed)`)
    : `the test event was answered 200 but is not in billing_events (${newest.event_id}): is SUPABASE_DB_URL the same project as SUPABASE_URL?`;
  const next = !newOk ? `${INVOKE} ${P} --confirm (again)` : list.length > 1 ? `${INVOKE} ${P} --remove-old` : "done: the roll is complete";
  return {
    ok: newOk,
    data: { step: "confirm", endpoint: url, target_file: file, secrets: infos, checks, stripe_deliveries: deliveries, confirmed: newOk, next },
    failure: why,
    render(out) {
      const c = out.colors;
      out.heading(`Test events to stripe-webhook (${url}), each signed with one secret only`);
      out.table(
        ["Secret", "Fingerprint", "Sent", "Answer", "billing_events"],
        checks.map((k) => [
          k.role,
          k.fingerprint,
          k.via,
          k.accepted ? c.green(`200 ${k.outcome ?? ""}`.trim()) : c.red(`${k.http_status} ${k.error ?? ""}`.trim()),
          k.billing_event === undefined ? "(no database)" : k.billing_event ? `${k.event_id} ${k.billing_event.outcome}` : c.red("not found"),
        ]),
      );
      if (oldRefused.length && newOk) {
        out.line(c.yellow(`The old secret${oldRefused.length > 1 ? "s are" : " is"} refused: the functions already have the new one alone? Stripe's events carry a signature by the new secret too, so they pass.`));
      }
      if (deliveries) {
        out.line(
          `Stripe's own deliveries since ${localTime(deliveries.since, OPS_TIME_ZONE)} (${OPS_TIME_ZONE}): ${deliveries.count}` +
            (deliveries.latest
              ? `, the latest ${deliveries.latest.stripe_event_id} ${deliveries.latest.type} ${deliveries.latest.outcome ?? "—"} ` +
                `(${fromNow(new Date(deliveries.latest.received_at), new Date())})`
              : ""),
        );
      }
      if (!local) {
        out.line("In Stripe: the endpoint's event deliveries should keep succeeding; to see one now, resend a recent event");
        out.line("(Dashboard → Webhooks → the endpoint → an event → Resend; or `stripe events resend <evt_…> --webhook-endpoint <we_…>`),");
        out.line("then run --confirm again to see it counted above.");
      }
      out.line();
      out.line(newOk ? `Confirmed: stripe-webhook accepts the new secret. Next: ${next}` : c.red(`Not confirmed. Next: ${next}`));
    },
  };
}

async function removeOld(target: Target, list: string[], file: string): Promise<Outcome> {
  const infos = await describeList(list);
  if (list.length < 2) throw new OperationFailed(`nothing to remove: ${NAME} holds one secret (${infos[0].fingerprint})`);
  const key = targetKey(target);
  const state = await readState(key);
  if (!state?.confirmed_at || state.new !== infos[0].fingerprint) {
    throw new OperationFailed(
      `the new secret (${infos[0].fingerprint}) is not confirmed yet: run ${INVOKE} ${P} --confirm first (removing the old ` +
        `one before the functions accept the new one would refuse Stripe's events)`,
    );
  }
  const value = list[0];
  const kept = await describeList([value]);
  await rewriteSettingsFile(file, value);
  const removedAt = new Date().toISOString();
  const stateAt = await writeState({ ...state, removed_at: removedAt });
  const { local, reload } = nextSteps(target);
  const set = local ? undefined : await secretsCommand(target, key, value);
  const digest = await sha256Hex(value);
  return {
    ok: true,
    data: {
      step: "remove-old",
      target_file: file,
      removed: infos.slice(1),
      secrets: kept,
      digest,
      ...(set ? { secrets_file: set.file, command: set.command, sets: `npx supabase secrets set ${masked(kept)}` } : {}),
      state_file: stateAt,
      reload,
      next: `${INVOKE} ${P} --confirm`,
    },
    render(out) {
      out.heading(`Old secret${infos.length > 2 ? "s" : ""} removed: ${NAME} holds the new secret alone`);
      out.fields([
        ["Written to", display(file)],
        ["Value (masked)", masked(kept)],
        ["Removed", infos.slice(1).map((i) => i.fingerprint).join(", ")],
        ["SHA-256 of the value", digest],
      ]);
      if (set) {
        out.line();
        out.line("Set it on the project (the file is mode 0600 and removed once set):");
        out.line(`  ${set.command}`);
        out.line(`which sets: npx supabase secrets set ${masked(kept)}`);
      }
      out.line();
      out.line(reload);
      out.line(`Then ${INVOKE} ${P} --confirm checks the new secret alone.`);
    },
  };
}

export default defineCommand({
  name: "rotate-webhook-secret",
  summary: "roll STRIPE_WEBHOOK_SECRET without downtime: --add the new secret, --confirm it, --remove-old",
  usage: "[--add [whsec_…|-] [--generate] | --confirm | --remove-old]",
  help: "stripe-webhook accepts a comma-separated list of secrets; while a roll is under way Stripe signs each event " +
    "with the old and the new secret. Without a flag: where the roll stands and what to do in Stripe (step 1).\n\n" +
    `--add: the new secret goes first in the list. Give it at the hidden prompt, in ${NEW_SECRET_ENV}, on stdin (--add -) ` +
    "or as the option's value (then it is in your shell history); --generate makes one (local stack only). Locally the " +
    "stack's supabase/functions/.env is rewritten (restart the stack); on a hosted project the --env-file that defines " +
    `${NAME} is rewritten, and a \`npx supabase secrets set --env-file …\` command is printed with a 0600 file it removes.\n\n` +
    "--confirm: a test event (type ops.webhook_secret_check, recorded as ignored) signed with ONLY the new secret, then " +
    "one per old secret, goes to stripe-webhook (locally through the fake Stripe); each must be answered 200 and be in " +
    "billing_events. Exit 1 when the new secret is refused.\n\n--remove-old: once confirmed, the list becomes the new " +
    "secret alone.\n\nSecrets are never printed: roles and fingerprints (sha256:xxxxxxxx) only. State between steps: " +
    ".stack/ops/webhook-secret-roll.<target>.json (no secret in it).",
  examples: [
    "rotate-webhook-secret",
    "rotate-webhook-secret --add --generate",
    "--env-file prod.env --env-file prod-ops.env rotate-webhook-secret --add",
    "rotate-webhook-secret --confirm",
    "rotate-webhook-secret --remove-old",
  ],
  options(cmd: Command) {
    cmd
      .option("--add [secret]", `add the new secret (value, - for stdin; none: ${NEW_SECRET_ENV} or a hidden prompt)`)
      .option("--generate", "with --add: make a new local secret (local stack only)")
      .option("--confirm", "check that stripe-webhook accepts the new secret (and the old one)")
      .option("--remove-old", "keep the new secret alone (after --confirm)");
  },
  async run(ctx: Context, opts: Options): Promise<Outcome> {
    const steps = (["add", "confirm", "removeOld"] as const).filter((s) => opts[s] !== undefined);
    if (steps.length > 1) throw new UsageError("one step at a time: --add, --confirm or --remove-old");
    if (opts.generate && opts.add === undefined) throw new UsageError("--generate goes with --add");
    const target = await ctx.target();
    const { STRIPE_WEBHOOK_SECRET: list } = target.need(P, NAME, "SUPABASE_URL");
    const file = await settingsFile(target);
    if (opts.add !== undefined) return await add(ctx, target, list, file, opts);
    if (opts.confirm) return await confirm(ctx, target, list, file);
    if (opts.removeOld) return await removeOld(target, list, file);
    return await status(target, list, file);
  },
});
