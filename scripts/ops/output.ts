// Human output of `npm run ops`: tables (cli-table3), colours (picocolors) and a spinner
// (yocto-spinner), each only where it helps. On a terminal: boxed tables, colours (unless NO_COLOR
// is set or TERM=dumb), a spinner on stderr while waiting. Piped or redirected: aligned plain
// columns, no colour, no escape sequence, no spinner, so the output greps and diffs cleanly.
// --json never calls these (main.ts prints the data alone on stdout).
import Table from "cli-table3";
import { createColors } from "picocolors";
import yoctoSpinner from "yocto-spinner";
import process from "node:process";
import { stripVTControlCharacters } from "node:util";

export type Colors = ReturnType<typeof createColors>;
export type Cell = string | number | boolean | null | undefined;

export interface Progress {
  /** Changes the text while it runs. */
  text(text: string): void;
  /** Stops, leaving a ✔ line (terminal only). */
  succeed(text?: string): void;
  /** Stops, leaving a ✖ line (terminal only). */
  fail(text?: string): void;
  /** Stops and clears the line. */
  stop(): void;
}

export interface Output {
  /** Colours on stdout (a terminal, NO_COLOR unset, TERM not dumb). */
  readonly colors: Colors;
  readonly stdoutIsTerminal: boolean;
  line(text?: string): void;
  /** A section title. */
  heading(text: string): void;
  /** Label / value pairs, one per row (null / undefined → "—"). */
  fields(rows: [string, Cell][]): void;
  table(head: string[], rows: Cell[][]): void;
  /** A spinner on stderr while `text` is going on (terminal only; otherwise silent). */
  progress(text: string): Progress;
  /** A note on stderr (never stdout: --json output stays clean). */
  warn(text: string): void;
}

export interface OutputStreams {
  write(text: string): void;
  writeErr(text: string): void;
  stdoutIsTerminal: boolean;
  stderrIsTerminal: boolean;
  env(name: string): string | undefined;
}

export function processStreams(): OutputStreams {
  const encoder = new TextEncoder();
  return {
    write: (text) => writeAll(Deno.stdout, encoder.encode(text)),
    writeErr: (text) => writeAll(Deno.stderr, encoder.encode(text)),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    env: (name) => Deno.env.get(name),
  };
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let at = 0;
  try {
    while (at < bytes.length) at += stream.writeSync(bytes.subarray(at));
  } catch (error) {
    // The reader went away (`… | head`): nothing more to say to it, as a SIGPIPE'd program.
    if (error instanceof Deno.errors.BrokenPipe) return;
    throw error;
  }
}

/** https://no-color.org: any non-empty NO_COLOR turns colours off; so does TERM=dumb. */
export function colorsWanted(isTerminal: boolean, env: (name: string) => string | undefined): boolean {
  return isTerminal && !env("NO_COLOR") && env("TERM") !== "dumb";
}

const PLAIN_CHARS = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "  ",
};

const text = (cell: Cell): string => cell === null || cell === undefined || cell === "" ? "—" : String(cell);

export function createOutput(streams: OutputStreams = processStreams()): Output {
  const colors = createColors(colorsWanted(streams.stdoutIsTerminal, streams.env));
  const boxed = streams.stdoutIsTerminal;
  const line = (t = "") => streams.write(`${t}\n`);

  function render(head: string[] | undefined, rows: Cell[][]): string {
    // Boxed on a terminal, long values wrapped to its width; plain columns when piped, or when a
    // table of ids that cannot wrap would not fit in boxes.
    const fit = boxed ? widths(head, rows) : undefined;
    const box = fit?.fits === true;
    const table = new Table({
      ...(head ? { head: head.map((h) => colors.bold(h)) } : {}),
      // Colours are ours (picocolors, NO_COLOR-aware): cli-table3's own styling stays off.
      // compact: no rule between rows.
      style: { head: [], border: [], compact: true, ...(box ? {} : { "padding-left": 0, "padding-right": 0 }) },
      ...(box ? { wordWrap: true, colWidths: fit!.widths } : { chars: PLAIN_CHARS }),
    });
    table.push(...rows.map((r) => r.map(text)));
    // The plain style leaves trailing spaces on short last cells.
    return table.toString().split("\n").map((l) => l.trimEnd()).join("\n");
  }

  return {
    colors,
    stdoutIsTerminal: streams.stdoutIsTerminal,
    line,
    heading: (t) => line(colors.bold(t)),
    fields: (rows) => line(render(undefined, rows.map(([k, v]) => [colors.dim(k), v]))),
    table: (head, rows) => line(render(head, rows)),
    progress: (t) => spinner(t, streams),
    warn: (t) => streams.writeErr(`${t}\n`),
  };
}

/**
 * Column widths for a terminal: natural widths; when the table is wider than the terminal, the
 * widest column whose text can wrap (it has spaces) narrows first, never below its longest word:
 * cli-table3 cuts a word longer than its column ("…"), and ids, URLs and error codes must stay
 * whole (they are copied into the next command). A table that cannot fit so is printed as plain
 * columns.
 */
function widths(head: string[] | undefined, rows: Cell[][]): { widths: number[]; fits: boolean } {
  const columns = Math.max(head?.length ?? 0, ...rows.map((r) => r.length));
  const lines = (i: number) => [head?.[i] ?? "", ...rows.flatMap((r) => text(r[i]).split("\n"))].map(stripVTControlCharacters);
  const length = (t: string) => [...t].length;
  const out = Array.from({ length: columns }, (_, i) => Math.max(...lines(i).map(length)) + 2);
  const floor = Array.from({ length: columns }, (_, i) => Math.max(14, ...lines(i).flatMap((l) => l.split(/\s+/)).map(length).map((n) => n + 2)));
  const wraps = Array.from({ length: columns }, (_, i) => rows.some((r) => /\s/.test(stripVTControlCharacters(text(r[i])).trim())));
  const budget = (process.stdout.columns || 100) - (columns + 1);
  let total = out.reduce((a, b) => a + b, 0);
  while (total > budget) {
    const candidates = out.map((w, i) => (wraps[i] && w > floor[i] ? w : -1));
    const widest = candidates.indexOf(Math.max(...candidates));
    if (candidates[widest] < 0) break;
    const cut = Math.min(total - budget, out[widest] - floor[widest]);
    out[widest] -= cut;
    total -= cut;
  }
  return { widths: out, fits: total <= budget };
}

const SILENT: Progress = { text() {}, succeed() {}, fail() {}, stop() {} };

function spinner(initial: string, streams: OutputStreams): Progress {
  if (!streams.stderrIsTerminal) return SILENT;
  const s = yoctoSpinner({ text: initial, stream: process.stderr }).start();
  return {
    text: (t) => void (s.text = t),
    succeed: (t) => void s.success(t),
    fail: (t) => void s.error(t),
    stop: () => void s.stop(),
  };
}
