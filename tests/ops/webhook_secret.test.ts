// `npm run ops -- rotate-webhook-secret`: a whole roll on the local stack (the settings file
// rewritten in place, the state file without a secret, test events signed with ONE secret each
// through the fake Stripe and recorded in billing_events, the old secret removed once confirmed),
// the same on a hosted-style --env-file (a 0600 file for `supabase secrets set`, events signed
// here), and every refusal. The runner's gateway holds the fixture's two secrets (old, new): a
// third, random one is a secret the functions do not have. No output ever holds a secret value.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { env, withDb } from "../_helpers.ts";
import { EXIT } from "../../scripts/ops/command.ts";
import { fingerprint, NEW_SECRET_ENV, TEST_EVENT_TYPE } from "../../scripts/ops/webhook-secret.ts";
import { parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { StripeFakeControl } from "../../scripts/fakes/stripe-control.ts";
import { hostedValues, ops, type OpsRun, STACK_TRACE } from "./_ops.ts";

const FIXTURE_FILE = fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url));
const FIXTURE_TEXT = await Deno.readTextFile(FIXTURE_FILE);
/** The fixture lists them old first ("as while rolling"); the gateway accepts both. */
const [OLD, NEW] = parseDotenv(FIXTURE_TEXT).STRIPE_WEBHOOK_SECRET.split(",");
const randomSecret = () => `whsec_opsTest${crypto.randomUUID().replaceAll("-", "")}`;

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every output of a test, checked at its end: no secret value, nor its part after whsec_. */
class Outputs {
  readonly runs: OpsRun[] = [];
  constructor(readonly secrets: string[]) {}
  add(run: OpsRun): OpsRun {
    this.runs.push(run);
    return run;
  }
  json(run: OpsRun): Record<string, unknown> {
    this.add(run);
    try {
      return JSON.parse(run.stdout);
    } catch {
      throw new Error(`stdout is not one JSON document (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
    }
  }
  assertNoSecret(): void {
    assert.ok(this.runs.length > 0);
    for (const run of this.runs) {
      for (const secret of this.secrets) {
        for (const text of [secret, secret.replace(/^whsec_/, "")]) {
          assert.ok(!run.stdout.includes(text) && !run.stderr.includes(text), `a secret value in the output:\n${run.stdout}\n${run.stderr}`);
        }
      }
      assert.doesNotMatch(run.stderr, STACK_TRACE);
    }
  }
}

/** The STRIPE_WEBHOOK_SECRET line of the fixture replaced by `value`, so the rest can be compared. */
const fixtureWith = (value: string) => FIXTURE_TEXT.replace(/^STRIPE_WEBHOOK_SECRET=.*$/m, `STRIPE_WEBHOOK_SECRET=${value}`);

/**
 * A state folder of its own (copies of the runner's keys.json and fakes.env: the same stack) and a
 * functions settings file (the fixture's, with STRIPE_WEBHOOK_SECRET = `initial`, mode 0640).
 */
async function withLocalRoll(initial: string, fn: (ctx: { env: Record<string, string>; settings: string; state: string }) => Promise<void>) {
  const state = await Deno.makeTempDir({ prefix: "ops-roll-" });
  try {
    const runnerState = dirname(env.keysFile);
    for (const f of ["keys.json", "fakes.env"]) await Deno.copyFile(join(runnerState, f), join(state, f));
    const settings = join(state, "functions.env");
    await Deno.writeTextFile(settings, fixtureWith(initial), { mode: 0o640 });
    await Deno.chmod(settings, 0o640);
    await fn({ env: { STACK_STATE_DIR: state, OPS_FUNCTIONS_ENV_FILE: settings }, settings, state });
  } finally {
    await Deno.remove(state, { recursive: true });
  }
}

const secretIn = async (file: string) => parseDotenv(await Deno.readTextFile(file)).STRIPE_WEBHOOK_SECRET;
const modeOf = async (file: string) => (await Deno.stat(file)).mode! & 0o777;

interface Check {
  role: string;
  fingerprint: string;
  via: string;
  event_id: string;
  http_status: number;
  accepted: boolean;
  outcome: string | null;
  billing_event: { outcome: string } | null;
}

Deno.test("ops rotate-webhook-secret: a whole roll on the local stack — add, confirm through the fake Stripe, remove the old one", async () => {
  const out = new Outputs([OLD, NEW]);
  await withLocalRoll(OLD, async ({ env: e, settings, state }) => {
    const status = out.json(await ops(["--json", "rotate-webhook-secret"], { env: e }));
    assert.equal(status.ok, true);
    assert.deepEqual(status.secrets, [{ role: "current", fingerprint: await fingerprint(OLD) }]);
    assert.equal(status.rolling, false);
    assert.equal(status.next, "npm run ops -- rotate-webhook-secret --add --generate");

    // --add: the new secret from the environment, first in the list; nothing else in the file moves.
    const added = out.json(await ops(["--json", "rotate-webhook-secret", "--add"], { env: { ...e, [NEW_SECRET_ENV]: NEW } }));
    assert.equal(added.ok, true, JSON.stringify(added));
    assert.equal(added.source, NEW_SECRET_ENV);
    assert.deepEqual(added.secrets, [{ role: "new", fingerprint: await fingerprint(NEW) }, { role: "old", fingerprint: await fingerprint(OLD) }]);
    assert.equal(added.digest, await sha256Hex(`${NEW},${OLD}`));
    assert.equal(added.command, undefined, "locally there is no supabase secrets command");
    assert.match(String(added.reload), /^Restart the stack/);
    assert.equal(await Deno.readTextFile(settings), fixtureWith(`${NEW},${OLD}`));
    assert.equal(await modeOf(settings), 0o640, "the file's mode is kept");
    const stateFile = join(state, "ops", "webhook-secret-roll.local.json");
    assert.equal(added.state_file, stateFile);
    assert.equal(await modeOf(stateFile), 0o600);
    const saved = JSON.parse(await Deno.readTextFile(stateFile));
    assert.equal(saved.new, await fingerprint(NEW));
    assert.deepEqual(saved.old, [await fingerprint(OLD)]);
    assert.equal(saved.confirmed_at, null);
    const savedText = await Deno.readTextFile(stateFile);
    assert.ok(!savedText.includes(NEW.slice(6)) && !savedText.includes(OLD.slice(6)), "no secret in the state file");

    // --confirm: one test event per secret, each signed with that secret alone, through the fake.
    const confirmed = out.json(await ops(["--json", "rotate-webhook-secret", "--confirm"], { env: e }));
    assert.equal(confirmed.ok, true, JSON.stringify(confirmed));
    const checks = confirmed.checks as Check[];
    assert.deepEqual(checks.map((c) => [c.role, c.via, c.http_status, c.accepted, c.outcome]), [
      ["new", "fake Stripe", 200, true, "ignored"],
      ["old", "fake Stripe", 200, true, "ignored"],
    ]);
    const rows = await withDb((sql) =>
      sql`select stripe_event_id, type, outcome, payload -> 'data' -> 'object' ->> 'signed_with' as signed_with
            from public.billing_events where stripe_event_id = any(${checks.map((c) => c.event_id)}::text[]) order by received_at`
    );
    assert.deepEqual(rows.map((r) => [r.stripe_event_id, r.type, r.outcome, r.signed_with]), [
      [checks[0].event_id, TEST_EVENT_TYPE, "ignored", await fingerprint(NEW)],
      [checks[1].event_id, TEST_EVENT_TYPE, "ignored", await fingerprint(OLD)],
    ]);
    assert.deepEqual(checks.map((c) => c.billing_event?.outcome), ["ignored", "ignored"]);
    const fake = new StripeFakeControl(Deno.env.get("STRIPE_API_BASE")!);
    const [delivery] = await fake.deliveries(checks[0].event_id);
    assert.equal(delivery.signature?.match(/v1=/g)?.length, 1, "one signature: the new secret's alone");
    assert.ok((JSON.parse(await Deno.readTextFile(stateFile))).confirmed_at);

    // --remove-old: the new secret alone.
    const removed = out.json(await ops(["--json", "rotate-webhook-secret", "--remove-old"], { env: e }));
    assert.equal(removed.ok, true, JSON.stringify(removed));
    assert.deepEqual(removed.removed, [{ role: "old", fingerprint: await fingerprint(OLD) }]);
    assert.equal(removed.digest, await sha256Hex(NEW));
    assert.equal(await Deno.readTextFile(settings), fixtureWith(NEW));
    assert.ok(JSON.parse(await Deno.readTextFile(stateFile)).removed_at);

    const again = out.json(await ops(["--json", "rotate-webhook-secret", "--confirm"], { env: e }));
    assert.equal(again.ok, true);
    assert.deepEqual((again.checks as Check[]).map((c) => [c.role, c.accepted]), [["current", true]]);
    assert.equal(again.next, "done: the roll is complete");

    // The human views name roles and fingerprints.
    const human = out.add(await ops(["rotate-webhook-secret"], { env: e }));
    assert.equal(human.code, EXIT.ok);
    assert.match(human.stdout, /^STRIPE_WEBHOOK_SECRET \(.*functions\.env\): 1 secret$/m);
    assert.match(human.stdout, new RegExp(`^current\\s+${await fingerprint(NEW)}$`, "m"));
    assert.match(human.stdout, /^Last roll: added .+, confirmed .+, old removed .+\.$/m);
  });
  out.assertNoSecret();
});

Deno.test("ops rotate-webhook-secret: refusals — bad secret, one already there, a roll under way, removal before confirmation, a secret the functions lack", async () => {
  const unknown = randomSecret();
  const out = new Outputs([OLD, NEW, unknown, "whsec_short", "sk_test_notawebhooksecret0000"]);
  const usage = (run: OpsRun, re: RegExp) => {
    out.add(run);
    assert.equal(run.code, EXIT.usage, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, re);
    assert.match(run.stderr, /\nusage: npm run ops -- \[--json\] \[--env-file <file>\] rotate-webhook-secret /);
  };
  const failed = (run: OpsRun, re: RegExp) => {
    out.add(run);
    assert.equal(run.code, EXIT.failed, run.stderr);
    assert.match(run.stderr, re);
  };
  await withLocalRoll(OLD, async ({ env: e, settings }) => {
    usage(await ops(["rotate-webhook-secret", "--add", "whsec_short"], { env: e }), /--add: not a Stripe webhook signing secret: it must start with whsec_/);
    usage(await ops(["rotate-webhook-secret", "--add", "sk_test_notawebhooksecret0000"], { env: e }), /not a Stripe webhook signing secret/);
    usage(await ops(["rotate-webhook-secret", "--add", `${NEW},${OLD}`], { env: e }), /--add takes one secret \(no comma\)/);
    usage(await ops(["rotate-webhook-secret", "--add"], { env: e }), /no new secret given: --add <whsec_…>, STRIPE_WEBHOOK_SECRET_NEW, or paste it/);
    usage(await ops(["rotate-webhook-secret", "--confirm", "--remove-old"], { env: e }), /one step at a time/);
    usage(await ops(["rotate-webhook-secret", "--generate"], { env: e }), /--generate goes with --add/);
    usage(await ops(["rotate-webhook-secret", "--add", NEW, "--generate"], { env: e }), /--generate makes the secret/);
    assert.equal(await Deno.readTextFile(settings), fixtureWith(OLD), "unchanged");
    failed(await ops(["rotate-webhook-secret", "--add", "-"], { env: e, stdin: `${OLD}\n` }), /that secret is already in STRIPE_WEBHOOK_SECRET/);
    failed(await ops(["rotate-webhook-secret", "--remove-old"], { env: e }), /nothing to remove: STRIPE_WEBHOOK_SECRET holds one secret/);

    // A secret the running functions do not have, piped on stdin.
    const add = out.json(await ops(["--json", "rotate-webhook-secret", "--add", "-"], { env: e, stdin: `${unknown}\n` }));
    assert.equal(add.source, "stdin");
    assert.equal(await secretIn(settings), `${unknown},${OLD}`);
    failed(await ops(["rotate-webhook-secret", "--add"], { env: { ...e, [NEW_SECRET_ENV]: NEW } }), /a roll is already under way: STRIPE_WEBHOOK_SECRET holds 2 secrets/);
    failed(await ops(["rotate-webhook-secret", "--remove-old"], { env: e }), /is not confirmed yet: run npm run ops -- rotate-webhook-secret --confirm first/);
    assert.equal(await secretIn(settings), `${unknown},${OLD}`, "not removed");

    const confirm = out.json(await ops(["--json", "rotate-webhook-secret", "--confirm"], { env: e }));
    assert.equal(confirm.ok, false);
    const checks = confirm.checks as Check[];
    assert.deepEqual(checks.map((c) => [c.role, c.http_status, c.accepted, c.billing_event]), [
      ["new", 400, false, null],
      ["old", 200, true, checks[1].billing_event],
    ]);
    assert.ok(checks[1].billing_event);
    const last = out.runs.at(-1)!;
    assert.equal(last.code, EXIT.failed);
    assert.match(last.stderr, /^ops rotate-webhook-secret: stripe-webhook refused the new secret \(sha256:[0-9a-f]{8}\): invalid_signature.*restart the stack/);
    failed(await ops(["rotate-webhook-secret", "--remove-old"], { env: e }), /is not confirmed yet/);
  });
  out.assertNoSecret();
});

Deno.test("ops rotate-webhook-secret --env-file (hosted): the env file rewritten, a 0600 file and a runnable secrets command, events signed here", async () => {
  const out = new Outputs([OLD, NEW]);
  const state = await Deno.makeTempDir({ prefix: "ops-roll-hosted-" });
  const file = join(state, "prod.env");
  const values = { ...hostedValues(), STRIPE_WEBHOOK_SECRET: OLD };
  const text = (secret: string) => Object.entries({ ...values, STRIPE_WEBHOOK_SECRET: secret }).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
  await Deno.writeTextFile(file, text(OLD), { mode: 0o600 });
  const e = { STACK_STATE_DIR: state };
  try {
    const generate = out.add(await ops(["--env-file", file, "rotate-webhook-secret", "--add", "--generate"], { env: e }));
    assert.equal(generate.code, EXIT.usage);
    assert.match(generate.stderr, /--generate is for the local stack/);

    const added = out.json(await ops(["--json", "--env-file", file, "rotate-webhook-secret", "--add", NEW], { env: e }));
    assert.equal(added.ok, true, JSON.stringify(added));
    assert.match(out.runs.at(-1)!.stderr, /note: a secret on the command line stays in the shell's history/);
    assert.equal(await Deno.readTextFile(file), text(`${NEW},${OLD}`), "only that line changed");
    const secretsFile = String(added.secrets_file);
    assert.equal(await modeOf(secretsFile), 0o600);
    assert.equal(parseDotenv(await Deno.readTextFile(secretsFile)).STRIPE_WEBHOOK_SECRET, `${NEW},${OLD}`);
    const command = String(added.command);
    const m = /^npx supabase secrets set --env-file (\S+) && rm (\S+)$/.exec(command);
    assert.ok(m && m[1] === m[2], command);
    assert.equal(join(Deno.cwd(), m[1]) === secretsFile || m[1] === secretsFile, true, "the command names that file");
    assert.match(String(added.sets), /^npx supabase secrets set STRIPE_WEBHOOK_SECRET=whsec_…\(new sha256:[0-9a-f]{8}\),whsec_…\(old sha256:[0-9a-f]{8}\)$/);

    const human = out.add(await ops(["--env-file", file, "rotate-webhook-secret", "--confirm"], { env: e }));
    assert.equal(human.code, EXIT.ok, human.stderr);
    assert.match(human.stdout, /^new\s+sha256:[0-9a-f]{8}\s+signed here\s+200 ignored\s+evt_ops\w+ ignored$/m);
    assert.match(human.stdout, /^old\s+sha256:[0-9a-f]{8}\s+signed here\s+200 ignored/m);
    assert.match(human.stdout, /Resend/);

    const removed = out.json(await ops(["--json", "--env-file", file, "rotate-webhook-secret", "--remove-old"], { env: e }));
    assert.equal(removed.ok, true, JSON.stringify(removed));
    assert.equal(await Deno.readTextFile(file), text(NEW));
    assert.equal(parseDotenv(await Deno.readTextFile(String(removed.secrets_file))).STRIPE_WEBHOOK_SECRET, NEW);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
  out.assertNoSecret();
});
