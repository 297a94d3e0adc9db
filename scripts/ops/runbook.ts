// Helpers of the runbook commands that read the database (audit.ts, purge.ts, incident.ts): the
// database requirement, the operator's name, times shown in the operator's time zone, audit details
// shown compactly, and durations such as `7d`.
import { InvalidArgumentError } from "commander";
import { TargetConfigError } from "./command.ts";
import type { Target } from "./target.ts";

/** The operations guide's clock: the weekly jobs run at 03:00 America/Montreal; "today" is Montreal's. */
export const OPS_TIME_ZONE = "America/Montreal";

/** The database connection (SUPABASE_DB_URL) is what these commands work on: without it, a target error (exit usage). */
export function requireDatabase(target: Target, purpose: string): void {
  if (target.hasDatabase) return;
  const where = target.source.kind === "local" ? "the local stack's settings" : `--env-file ${target.source.files.join(" + ")}`;
  throw new TargetConfigError(
    `${where}: SUPABASE_DB_URL is not set (the project's database connection string, Dashboard → Connect; ` +
      `as postgres, like the SQL editor) (needed by ${purpose})`,
  );
}

/** An IANA time zone name, as Intl and PostgreSQL know it (America/Montreal, UTC, Europe/Paris…). */
export function timeZone(value: string): string {
  const v = value.trim();
  try {
    new Intl.DateTimeFormat("en", { timeZone: v });
  } catch {
    throw new InvalidArgumentError("not a time zone name, e.g. America/Montreal or UTC");
  }
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(v)) throw new InvalidArgumentError("not a time zone name, e.g. America/Montreal or UTC");
  return v;
}

/** Who runs the command, for audit rows: --actor, else $USER / $LOGNAME, else "operator". */
export function operatorName(given: string | undefined): string {
  return (given ?? Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "operator").trim() || "operator";
}

/** --actor: 1 to 100 printable characters. */
export function actorName(value: string): string {
  const v = value.trim();
  // deno-lint-ignore no-control-regex -- control characters are what it refuses
  if (!/^[^\x00-\x1f\x7f]{1,100}$/.test(v)) throw new InvalidArgumentError("must be 1 to 100 printable characters");
  return v;
}

const UNITS: Record<string, number> = { m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `30m`, `12h`, `7d`, `2w` → seconds (at most 10 years). */
export function duration(value: string): number {
  const m = /^(\d{1,6})([mhdw])$/.exec(value.trim());
  const seconds = m ? Number(m[1]) * UNITS[m[2]] : NaN;
  if (!m || seconds <= 0 || seconds > 3650 * 86400) {
    throw new InvalidArgumentError("must be a duration such as 30m, 12h, 7d or 2w (at most 3650d)");
  }
  return seconds;
}

/** `2026-11-25 12:39:26` in `zone` (24 h clock); "—" for null. */
export function localTime(value: Date | string | null | undefined, zone: string, opts: { seconds?: boolean } = {}): string {
  if (value === null || value === undefined) return "—";
  const d = value instanceof Date ? value : new Date(value);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    }).formatToParts(d).map((p) => [p.type, p.value]),
  );
  const time = `${parts.hour}:${parts.minute}${opts.seconds === false ? "" : `:${parts.second}`}`;
  return `${parts.year}-${parts.month}-${parts.day} ${time}`;
}

/** `in 3 d 9 h`, `2 h 5 min ago`: how far `at` is from `now`. */
export function relative(at: Date, now: Date): string {
  const s = Math.round((at.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(s);
  const d = Math.floor(abs / 86400), h = Math.floor((abs % 86400) / 3600), m = Math.floor((abs % 3600) / 60);
  const text = d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min` : `${abs} s`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

/** Cuts `text` to `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  return [...text].length <= max ? text : `${[...text].slice(0, max - 1).join("")}…`;
}

/**
 * A JSON value on one line for a table cell: long strings cut to `maxString` characters, the whole
 * cut to `max`. Audit details carry no secrets (the functions never write one), but they may carry
 * long texts (provider errors, message bodies): the table stays readable, --json has them whole.
 */
export function compactJson(value: unknown, max = 160, maxString = 60): string {
  const shorten = (v: unknown): unknown =>
    typeof v === "string"
      ? truncate(v, maxString)
      : Array.isArray(v)
      ? v.map(shorten)
      : v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shorten(x)]))
      : v;
  return truncate(JSON.stringify(shorten(value)) ?? "", max);
}

/**
 * A JSON object as `key: value, key: value` for a table cell (it wraps on a narrow terminal):
 * strings bare and cut to `maxValue` characters, other values as compact JSON, the whole cut to `max`.
 */
export function detailsText(details: Record<string, unknown>, max = 120, maxValue = 40): string {
  const text = Object.entries(details)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? truncate(v, maxValue) : compactJson(v, maxValue, maxValue)}`)
    .join(", ");
  return truncate(text, max);
}

/** `1 row`, `2 rows`. */
export function plural(n: unknown, one: string, many: string): string {
  return `${n} ${Number(n) === 1 ? one : many}`;
}

/** An audit row as --json prints it: times in ISO 8601 (UTC), ids as strings. */
export function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]));
}
