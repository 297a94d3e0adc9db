// The dispatcher of `npm run ops`: builds the command tree from registry.ts with commander, owns the
// global flags (--json, --env-file, --help), resolves the target once, runs the command and turns
// how it ended into output and an exit code (command.ts EXIT; scripts/ops/README.md).
import { Command, CommanderError, Option } from "commander";
import {
  type Context,
  EXIT,
  type OpsCommand,
  type OpsEntry,
  type OpsGroup,
  OperationFailed,
  type Outcome,
  TargetConfigError,
  UsageError,
} from "./command.ts";
import { createOutput, type OutputStreams, processStreams } from "./output.ts";
import { REGISTRY } from "./registry.ts";
import { resolveTarget, type Target } from "./target.ts";

/** How the commands are invoked, for usage lines and hints. */
export const INVOCATION = "npm run ops --";
const GLOBAL_USAGE = "[--json] [--env-file <file>]";

const PROGRAM_HELP = `
Target: the local stack \`npm start\` runs (its URLs and keys as \`npm run stack -- env\` prints
them), or a hosted project with --env-file <file> (the names of supabase/functions/.env.example
plus SUPABASE_URL and SUPABASE_SECRET_KEY; SUPABASE_DB_URL optional).

Output: readable tables; --json prints one JSON document on stdout and nothing else there
(use \`npm run -s ops -- … --json\` so npm prints no banner).

Exit codes: 0 done · 1 the operation failed or was refused · 64 bad arguments or target settings
(nothing sent) · 70 unexpected error (OPS_DEBUG=1 shows its stack trace). A command whose result
is a verdict may use its own small codes: its --help says so.
More: scripts/ops/README.md`;

interface Failure {
  /** "sms send" */
  path: string;
  usage: string;
  message: string;
}

interface RunState {
  exitCode: number;
  /** A parse error commander reported (it throws after reporting). */
  parseFailure?: Failure;
}

const commandPath = (cmd: Command): string => {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
};

function firstLine(text: string): string {
  return text.trim().split("\n")[0];
}

/** Runs `npm run ops` with `argv` (what follows `--`); returns the exit code. */
export async function main(
  argv: string[],
  streams: OutputStreams = processStreams(),
  registry: OpsEntry[] = REGISTRY,
): Promise<number> {
  const state: RunState = { exitCode: EXIT.ok };
  const out = createOutput(streams);
  const debug = streams.env("OPS_DEBUG") === "1";

  const usageError = (path: string, usage: string, message: string) => {
    const label = path ? `ops ${path}` : "ops";
    streams.writeErr(
      `${label}: ${message}\n` +
        `usage: ${[INVOCATION, GLOBAL_USAGE, path, usage].filter(Boolean).join(" ")}\n` +
        `hint: ${[INVOCATION, path, "--help"].filter(Boolean).join(" ")}\n`,
    );
    state.exitCode = EXIT.usage;
  };

  /** Commander's own output: help to stdout, its errors captured for our format. */
  const configure = (cmd: Command, usage: string) => {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => streams.write(s),
      writeErr: (s) => streams.writeErr(s),
      outputError: (message) => {
        state.parseFailure = { path: commandPath(cmd), usage, message: firstLine(message).replace(/^error:\s*/, "") };
      },
    });
    cmd.showSuggestionAfterError(true);
    return cmd;
  };

  const program = configure(new Command(INVOCATION), "<command> [options]");
  program
    .description("Operations runbook: SMS, voice and billing checks against the local stack or a hosted project")
    .usage(`${GLOBAL_USAGE} <command> [options]`)
    .option("--json", "machine-readable output: one JSON document on stdout")
    .addOption(
      new Option("--env-file <file>", "a hosted project's settings (dotenv; repeatable, later files win)")
        .argParser((value: string, previous: string[] = []) => [...previous, value]),
    )
    .addHelpText("after", PROGRAM_HELP)
    .allowExcessArguments(true)
    .action(() => usageError("", "<command> [options]", missingCommand(program, registry.map((e) => e.name))));

  let targetPromise: Promise<Target> | undefined;
  const context = (cmd: Command): Context => {
    const globals = cmd.optsWithGlobals() as { json?: boolean; envFile?: string[] };
    return {
      out,
      json: Boolean(globals.json),
      target: () => (targetPromise ??= resolveTarget(globals.envFile ?? [])),
    };
  };

  const register = (parent: Command, entry: OpsCommand) => {
    const cmd = configure(parent.command(entry.name), entry.usage)
      .summary(entry.summary)
      .description([entry.summary, entry.help].filter(Boolean).join("\n\n"))
      .usage(entry.usage);
    entry.options(cmd);
    if (entry.examples?.length) cmd.addHelpText("after", `\nExamples:\n${entry.examples.map((e) => `  ${INVOCATION} ${e}`).join("\n")}`);
    // Commander passes the declared arguments first, then the options, then the command itself.
    cmd.action(async (...params: unknown[]) => {
      const self = params[params.length - 1] as Command;
      await runCommand(entry, self, context(self));
    });
  };

  const registerGroup = (group: OpsGroup) => {
    const names = group.commands.map((c) => c.name);
    const cmd = configure(program.command(group.name), `<${names.join("|")}> [options]`)
      .summary(group.summary)
      .description(group.summary)
      .usage(`<${names.join("|")}> [options]`)
      .allowExcessArguments(true)
      .action((_opts, self: Command) => usageError(group.name, `<${names.join("|")}> [options]`, missingCommand(self, names)));
    for (const c of group.commands) register(cmd, c);
  };

  async function runCommand(entry: OpsCommand, cmd: Command, ctx: Context): Promise<void> {
    const path = commandPath(cmd);
    let outcome: Outcome;
    try {
      outcome = await entry.run(ctx, cmd.opts(), cmd.args);
    } catch (error) {
      handleError(error, path, entry.usage, ctx);
      return;
    }
    const target = targetPromise ? await targetPromise.catch(() => undefined) : undefined;
    if (ctx.json) {
      streams.write(`${JSON.stringify({ ok: outcome.ok, ...(target ? { target: target.describe() } : {}), ...outcome.data }, null, 2)}\n`);
    } else {
      outcome.render(out);
    }
    if (!outcome.ok) streams.writeErr(`ops ${path}: ${outcome.failure ?? "failed"}\n`);
    state.exitCode = outcome.exitCode ?? (outcome.ok ? EXIT.ok : EXIT.failed);
  }

  function handleError(error: unknown, path: string, usage: string, ctx: Context | undefined): void {
    if (error instanceof UsageError) {
      usageError(path, usage, error.message);
    } else if (error instanceof TargetConfigError) {
      streams.writeErr(`ops ${path}: ${error.message}\n`);
      state.exitCode = EXIT.usage;
    } else if (error instanceof OperationFailed) {
      if (ctx?.json) streams.write(`${JSON.stringify({ ok: false, error: error.message, ...error.data }, null, 2)}\n`);
      streams.writeErr(`ops ${path}: ${error.message}\n`);
      state.exitCode = EXIT.failed;
    } else {
      const what = error instanceof Error ? `${error.name}: ${firstLine(error.message)}` : firstLine(String(error));
      streams.writeErr(`ops ${path || ""}: unexpected error: ${what}${debug ? "" : " (OPS_DEBUG=1 shows the stack trace)"}\n`);
      if (debug && error instanceof Error && error.stack) streams.writeErr(`${error.stack}\n`);
      state.exitCode = EXIT.unexpected;
    }
  }

  for (const entry of registry) {
    if (entry.kind === "group") registerGroup(entry);
    else register(program, entry);
  }

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return EXIT.ok;
      const failure = state.parseFailure ?? { path: "", usage: "<command> [options]", message: firstLine(error.message) };
      usageError(failure.path, failure.usage, failure.message);
    } else {
      handleError(error, "", "", undefined);
    }
  }
  return state.exitCode;
}

/** "a command is required (send, simulate-inbound)" or "unknown command 'x' (…)". */
function missingCommand(cmd: Command, names: string[]): string {
  const given = cmd.args[0];
  return given === undefined ? `a command is required: ${names.join(", ")}` : `unknown command '${given}' (commands: ${names.join(", ")})`;
}
