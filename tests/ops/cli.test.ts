// `npm run ops` as a program: help, usage errors (one usage line and a hint on stderr, exit 64, no
// stack trace, nothing on stdout), target errors (--env-file missing or lacking a variable: named,
// never its value), an unreachable target (exit 1), unexpected errors (exit 70, stack trace only
// with OPS_DEBUG=1), and the registry: a command group is one module and one line.
import assert from "node:assert/strict";
import { main } from "../../scripts/ops/main.ts";
import { defineCommand, defineGroup, EXIT, type OpsEntry } from "../../scripts/ops/command.ts";
import type { OutputStreams } from "../../scripts/ops/output.ts";
import { REGISTRY } from "../../scripts/ops/registry.ts";
import { hostedValues, ops, STACK_TRACE, withEnvFile } from "./_ops.ts";

/** stderr of a usage error: the error, the usage line, the hint. */
function assertUsage(run: { code: number; stdout: string; stderr: string }, command: string, error: RegExp) {
  assert.equal(run.code, 64, `exit 64 (EX_USAGE) expected:\n${run.stderr}`);
  assert.equal(run.stdout, "", "nothing on stdout");
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 3, `three lines (error, usage, hint):\n${run.stderr}`);
  assert.match(lines[0], new RegExp(`^ops${command ? ` ${command}` : ""}: `));
  assert.match(lines[0], error);
  assert.match(lines[1], new RegExp(`^usage: npm run ops -- \\[--json\\] \\[--env-file <file>\\]${command ? ` ${command}` : ""} `));
  assert.equal(lines[2], `hint: npm run ops -- ${command ? `${command} ` : ""}--help`);
  assert.doesNotMatch(run.stderr, STACK_TRACE);
}

Deno.test("ops --help: the commands, the target, the exit codes, on stdout, exit 0", async () => {
  const run = await ops(["--help"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^Usage: npm run ops -- \[--json\] \[--env-file <file>\] <command> \[options\]/);
  for (const name of ["sms", "voice", "billing"]) assert.match(run.stdout, new RegExp(`^  ${name}\\s`, "m"));
  assert.match(run.stdout, /Exit codes: 0 done · 1 the operation failed or was refused · 64 bad arguments/);
  assert.match(run.stdout, /70 unexpected error/);
  assert.equal(run.stderr, "");
  const sub = await ops(["sms", "send", "--help"]);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /^Usage: npm run ops -- sms send \(--to <E\.164> \| --worker <uuid> \| --site <uuid>\)/);
  assert.match(sub.stdout, /--idempotency-key <key>/);
  assert.match(sub.stdout, /Examples:\n {2}npm run ops -- sms send --to \+15145550100/);
});

Deno.test("ops: no command, an unknown command, a group without its command → usage, exit 64", async () => {
  assertUsage(await ops([]), "", /a command is required: status, db-status, alerts, sms, voice, billing/);
  assertUsage(await ops(["smss"]), "", /unknown command 'smss'/);
  assertUsage(await ops(["sms"]), "sms", /a command is required: send, simulate-inbound/);
  assertUsage(await ops(["voice", "call"]), "voice", /unknown command 'call'/);
  // --json changes nothing for usage errors: stdout stays empty.
  assertUsage(await ops(["--json", "sms"]), "sms", /a command is required/);
});

Deno.test("ops sms send: bad or missing arguments → the error, the usage line, a hint; exit 64; nothing sent", async () => {
  assertUsage(await ops(["sms", "send", "--to", "5145550100", "--body", "x"]), "sms send", /--to <E\.164>.*not a phone number in E\.164 form/);
  assertUsage(await ops(["sms", "send", "--body", "x"]), "sms send", /one of --to, --worker, --site is required/);
  assertUsage(
    await ops(["sms", "send", "--to", "+15145550100", "--worker", "3a000000-0000-4000-8000-000000000001", "--body", "x"]),
    "sms send",
    /--to and --worker cannot be used together/,
  );
  assertUsage(await ops(["sms", "send", "--worker", "not-a-uuid", "--body", "x"]), "sms send", /not a UUID/);
  assertUsage(await ops(["sms", "send", "--to", "+15145550100"]), "sms send", /--body, or --body-fr and --body-en/);
  assertUsage(await ops(["sms", "send", "--to", "+15145550100", "--body", "   "]), "sms send", /--body <text>.*must not be empty/);
  assertUsage(
    await ops(["sms", "send", "--to", "+15145550100", "--body-fr", "a", "--body-en", "b"]),
    "sms send",
    /--body-fr and --body-en are for site alerts/,
  );
  assertUsage(await ops(["sms", "send", "--to", "+15145550100", "--body", "x", "--bogus"]), "sms send", /unknown option '--bogus'/);
  assertUsage(await ops(["sms", "send", "--to", "+15145550100", "--body", "x", "--idempotency-key", " padded "]), "sms send", /--idempotency-key/);
  assertUsage(await ops(["sms", "send", "--to"]), "sms send", /option '--to <E\.164>' argument missing/);
});

Deno.test("ops sms simulate-inbound / voice simulate-call: missing or bad arguments → usage, exit 64", async () => {
  assertUsage(await ops(["sms", "simulate-inbound", "--body", "STOP"]), "sms simulate-inbound", /required option '--from <E\.164>'/);
  assertUsage(await ops(["sms", "simulate-inbound", "--from", "+15145550152"]), "sms simulate-inbound", /required option '--body <text>'/);
  assertUsage(
    await ops(["sms", "simulate-inbound", "--from", "+15145550152", "--body", "STOP", "--opt-out-type", "QUIT"]),
    "sms simulate-inbound",
    /must be one of STOP, START, HELP/,
  );
  assertUsage(await ops(["voice", "simulate-call"]), "voice simulate-call", /required option '--from/);
  assertUsage(
    await ops(["voice", "simulate-call", "--from", "+15145550152", "--dial-status", "exploded"]),
    "voice simulate-call",
    /must be one of completed, busy, no-answer, failed, canceled/,
  );
  assertUsage(
    await ops(["voice", "simulate-call", "--from", "+15145550152", "--duration", "30"]),
    "voice simulate-call",
    /--duration goes with --dial-status completed/,
  );
});

Deno.test("ops --env-file: a missing file, or one lacking / mangling a variable → the names and why, never a value; exit 64", async () => {
  const missing = await ops(["--env-file", "/nonexistent/prod.env", "sms", "send", "--to", "+15145550100", "--body", "x"]);
  assert.equal(missing.code, 64);
  assert.equal(missing.stdout, "");
  assert.equal(missing.stderr, "ops sms send: --env-file /nonexistent/prod.env does not exist\n");

  const values = hostedValues();
  const { SUPABASE_URL: _url, SUPABASE_SECRET_KEY: _key, ...withoutSupabase } = values;
  await withEnvFile(withoutSupabase, async (file) => {
    const run = await ops(["--env-file", file, "sms", "send", "--to", "+15145550100", "--body", "x"]);
    assert.equal(run.code, 64, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, new RegExp(`^ops sms send: --env-file ${file}: SUPABASE_URL is not set`));
    assert.match(run.stderr, /SUPABASE_SECRET_KEY is not set/);
    assert.match(run.stderr, /\(needed by sms send\)\n$/);
    assert.equal(run.stderr.split("\n").length, 2, "one line");
    for (const value of Object.values(withoutSupabase)) assert.ok(!run.stderr.includes(value), "no value in the message");
  });

  await withEnvFile({ ...values, TWILIO_AUTH_TOKEN: "not-a-real-token-4f1e" }, async (file) => {
    const run = await ops(["--env-file", file, "sms", "simulate-inbound", "--from", "+15145550152", "--body", "STOP"]);
    assert.equal(run.code, 64, run.stderr);
    assert.match(run.stderr, /TWILIO_AUTH_TOKEN must be 32 lower-case hexadecimal digits \(needed by sms simulate-inbound\)/);
    assert.ok(!run.stderr.includes("not-a-real-token-4f1e"));
    assert.ok(!run.stderr.includes(values.SUPABASE_SECRET_KEY));
  });

  await withEnvFile({ ...values, SUPABASE_SECRET_KEY: "sk_test_notasupabasekey" }, async (file) => {
    const run = await ops(["--env-file", file, "sms", "send", "--to", "+15145550100", "--body", "x"]);
    assert.equal(run.code, 64);
    assert.match(run.stderr, /SUPABASE_SECRET_KEY must be a secret API key \(sb_secret_…\)/);
    assert.ok(!run.stderr.includes("sk_test_notasupabasekey"));
  });
});

Deno.test("ops: no local stack here (state folder without keys) → exit 64 saying to run npm start", async () => {
  const empty = await Deno.makeTempDir({ prefix: "ops-no-stack-" });
  try {
    const run = await ops(["sms", "send", "--to", "+15145550100", "--body", "x"], { env: { STACK_STATE_DIR: empty } });
    assert.equal(run.code, 64, run.stderr);
    assert.match(run.stderr, /^ops sms send: no local stack here \(.*keys\.json is missing\): start it with `npm start`/);
    assert.doesNotMatch(run.stderr, STACK_TRACE);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("ops: a target nobody answers at → one line, exit 1 (--json: ok false on stdout)", async () => {
  // A port just closed: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await withEnvFile({ ...hostedValues(), SUPABASE_URL: `http://127.0.0.1:${port}` }, async (file) => {
    const run = await ops(["--env-file", file, "sms", "send", "--to", "+15145550100", "--body", "x"]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr, `ops sms send: cannot reach http://127.0.0.1:${port}/functions/v1/send-sms: connection refused\n`);
    const json = await ops(["--json", "--env-file", file, "voice", "simulate-call", "--from", "+15145550152"]);
    assert.equal(json.code, 1);
    const body = JSON.parse(json.stdout);
    assert.equal(body.ok, false);
    assert.match(body.error, /cannot reach http:\/\/127\.0\.0\.1:\d+\/functions\/v1\/voice-inbound: connection refused/);
  });
});

// ---- in process: the dispatcher with a registry of test commands -------------------------------

function memoryStreams(env: Record<string, string> = {}): OutputStreams & { out: string; err: string } {
  const s = {
    out: "",
    err: "",
    write: (t: string) => void (s.out += t),
    writeErr: (t: string) => void (s.err += t),
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    env: (name: string) => env[name],
  };
  return s;
}

const testGroup: OpsEntry = defineGroup({
  name: "demo",
  summary: "test commands",
  commands: [
    defineCommand({
      name: "echo",
      summary: "answers what it was given",
      usage: "--word <text>",
      options: (cmd) => void cmd.requiredOption("--word <text>", "a word"),
      run: (ctx, opts) =>
        Promise.resolve({
          ok: opts.word !== "fail",
          data: { word: opts.word, json: ctx.json },
          failure: "asked to fail",
          render: (out) => out.fields([["word", opts.word]]),
        }),
    }),
    defineCommand({
      name: "boom",
      summary: "a bug",
      usage: "",
      options: () => {},
      run: () => Promise.reject(new TypeError("cannot read properties of undefined\nsecond line")),
    }),
    defineCommand({
      name: "status",
      summary: "its own exit code",
      usage: "",
      options: () => {},
      run: () => Promise.resolve({ ok: false, exitCode: 2, data: {}, failure: "down", render: () => {} }),
    }),
  ],
});

Deno.test("ops dispatcher: a new group is one entry; human and --json output; exit 0 / 1 / the command's own", async () => {
  let s = memoryStreams();
  assert.equal(await main(["demo", "echo", "--word", "bonjour"], s, [testGroup]), EXIT.ok);
  assert.match(s.out, /^word {2}bonjour$/m);
  assert.equal(s.err, "");

  s = memoryStreams();
  assert.equal(await main(["demo", "echo", "--word", "bonjour", "--json"], s, [testGroup]), EXIT.ok);
  assert.deepEqual(JSON.parse(s.out), { ok: true, word: "bonjour", json: true });

  s = memoryStreams();
  assert.equal(await main(["--json", "demo", "echo", "--word", "fail"], s, [testGroup]), EXIT.failed);
  assert.deepEqual(JSON.parse(s.out), { ok: false, word: "fail", json: true });
  assert.equal(s.err, "ops demo echo: asked to fail\n");

  // A verdict's own small code (status: 2 = down) is never confused with a usage error (64).
  s = memoryStreams();
  assert.equal(await main(["demo", "status"], s, [testGroup]), 2);
  assert.equal(s.err, "ops demo status: down\n");
  s = memoryStreams();
  assert.equal(await main(["demo", "status", "--bogus"], s, [testGroup]), 64);
  assert.match(s.err, /^ops demo status: unknown option '--bogus'\nusage: /);
});

Deno.test("ops dispatcher: an unexpected error → one line, exit 70; OPS_DEBUG=1 adds the stack trace", async () => {
  let s = memoryStreams();
  assert.equal(await main(["demo", "boom"], s, [testGroup]), 70, "EX_SOFTWARE");
  assert.equal(s.err, "ops demo boom: unexpected error: TypeError: cannot read properties of undefined (OPS_DEBUG=1 shows the stack trace)\n");
  assert.equal(s.out, "");
  s = memoryStreams({ OPS_DEBUG: "1" });
  assert.equal(await main(["demo", "boom"], s, [testGroup]), EXIT.unexpected);
  assert.match(s.err, /^ops demo boom: unexpected error: TypeError: cannot read properties of undefined\n/);
  assert.match(s.err, STACK_TRACE);
});

Deno.test("ops registry: the shipped groups, each command with a summary, a usage line and help that renders", async () => {
  assert.deepEqual(REGISTRY.map((e) => e.name), ["status", "db-status", "alerts", "sms", "voice", "billing", "audit", "purge", "rotate-webhook-secret", "incident"]);
  for (const entry of REGISTRY) {
    const commands = entry.kind === "group" ? entry.commands : [entry];
    for (const c of commands) {
      assert.ok(c.summary && c.usage, `${entry.name} ${c.name}: summary and usage`);
      const s = memoryStreams();
      const path = entry.kind === "group" ? [entry.name, c.name] : [c.name];
      assert.equal(await main([...path, "--help"], s), EXIT.ok);
      assert.match(s.out, new RegExp(`^Usage: npm run ops -- ${path.join(" ")} `));
    }
  }
});

Deno.test("ops output: boxed and coloured on a terminal, NO_COLOR honoured, plain columns and no spinner when piped", async () => {
  const { createOutput } = await import("../../scripts/ops/output.ts");
  const ESC = "\u001b[";
  const render = (terminal: boolean, env: Record<string, string> = {}) => {
    const s = Object.assign(memoryStreams(env), { stdoutIsTerminal: terminal });
    const out = createOutput(s);
    out.table(["Worker", "Consent"], [["3a000000-0000-4000-8000-000000000001", out.colors.red("no")]]);
    const p = out.progress("working…");
    p.text("still working…");
    p.stop();
    return s;
  };
  const tty = render(true);
  assert.match(tty.out, /┌─+┬─+┐/);
  assert.ok(tty.out.includes(`${ESC}1mWorker`) && tty.out.includes(`${ESC}31mno`), "bold head, red value");
  const noColor = render(true, { NO_COLOR: "1" });
  assert.match(noColor.out, /┌─+┬─+┐/);
  assert.ok(!noColor.out.includes(ESC), "NO_COLOR: no escape sequence");
  const piped = render(false);
  assert.equal(piped.out, "Worker                                Consent\n3a000000-0000-4000-8000-000000000001  no\n");
  assert.equal(piped.err, "", "no spinner off a terminal");
});
