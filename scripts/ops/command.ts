// What a command of `npm run ops` is, and how it ends. A command module exports a group
// (`defineGroup`: `ops sms send`, `ops sms simulate-inbound`…) or a single command (`defineCommand`:
// `ops status`), and one line in registry.ts adds it. The dispatcher (main.ts) owns argument
// parsing, --json, --env-file, exit codes and error printing; a command only declares its options,
// asks the target for what it needs, does its work and returns an Outcome.
import type { Command } from "commander";
import type { Output } from "./output.ts";
import type { Target } from "./target.ts";

/**
 * Exit codes (scripts/ops/README.md). Usage and unexpected errors take the BSD sysexits.h values
 * (EX_USAGE 64, EX_SOFTWARE 70), so that the small codes stay free for commands whose result is a
 * verdict: `status` exits 0/1/2 for ok/degraded/down (issue 16) through `Outcome.exitCode`.
 */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The operation ran and failed or was refused (provider error, every recipient skipped, target unreachable). */
  failed: 1,
  /** EX_USAGE: bad or missing arguments, or a target configuration lacking what the command needs: nothing was sent. */
  usage: 64,
  /** EX_SOFTWARE: a bug; one line on stderr (OPS_DEBUG=1 adds the stack trace). */
  unexpected: 70,
} as const;

/** Bad or missing arguments: one usage line and a hint on stderr, exit 64 (EX_USAGE). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The target (local stack or --env-file) lacks or mangles what the command needs: exit 64, nothing sent. */
export class TargetConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TargetConfigError";
  }
}

/**
 * The operation ran and failed (e.g. the functions cannot be reached): exit 1. `data` (safe to
 * show: never a secret) is what --json prints with `ok: false`.
 */
export class OperationFailed extends Error {
  constructor(message: string, readonly data: Record<string, unknown> = {}) {
    super(message);
    this.name = "OperationFailed";
  }
}

/** What a command gets. */
export interface Context {
  /** Human output (stdout) and progress (stderr). With --json, only `progress` and `warn` show. */
  out: Output;
  json: boolean;
  /** The local stack or the --env-file project, resolved on first use. */
  target(): Promise<Target>;
}

/** How a command ended. */
export interface Outcome {
  /** false: exit 1 (unless exitCode says otherwise) and `failure` on stderr. */
  ok: boolean;
  /** Default: 0 when ok, 1 when not. */
  exitCode?: number;
  /** What --json prints (after `ok`). Never a secret. */
  data: Record<string, unknown>;
  /** The human rendering, to `out` (not called with --json). */
  render(out: Output): void;
  /** One line for stderr when !ok. */
  failure?: string;
}

// deno-lint-ignore no-explicit-any
export type Options = Record<string, any>;

export interface OpsCommand {
  kind: "command";
  name: string;
  /** One line, for the command list. */
  summary: string;
  /** The arguments after the command's name, for the usage line ("--from <E.164> --body <text> [--to <E.164>]"). */
  usage: string;
  /** More lines for --help (what it does, what it needs from the target). */
  help?: string;
  examples?: string[];
  /** Declares the options and arguments with commander (argParser validators throw InvalidArgumentError). */
  options(cmd: Command): void;
  run(ctx: Context, opts: Options, args: string[]): Promise<Outcome>;
}

export interface OpsGroup {
  kind: "group";
  name: string;
  summary: string;
  commands: OpsCommand[];
}

export type OpsEntry = OpsCommand | OpsGroup;

export function defineCommand(command: Omit<OpsCommand, "kind">): OpsCommand {
  return { kind: "command", ...command };
}

export function defineGroup(group: Omit<OpsGroup, "kind">): OpsGroup {
  return { kind: "group", ...group };
}
