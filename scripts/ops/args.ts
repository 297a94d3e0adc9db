// Option value checks shared by the commands (commander argParser functions: a bad value is a
// usage error naming the option, exit 64), and the "exactly one of" rules commander has no word for.
import { InvalidArgumentError } from "commander";
import { isValidPhoneNumber } from "libphonenumber-js";
import { UsageError } from "./command.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A phone number in E.164 form (+ country code and digits), valid for its country. */
export function e164(value: string): string {
  const v = value.trim();
  if (!/^\+[1-9]\d{6,14}$/.test(v) || !isValidPhoneNumber(v)) {
    throw new InvalidArgumentError("not a phone number in E.164 form, e.g. +15145550101");
  }
  return v;
}

export function uuid(value: string): string {
  const v = value.trim();
  if (!UUID.test(v)) throw new InvalidArgumentError("not a UUID, e.g. 3a000000-0000-4000-8000-000000000001");
  return v.toLowerCase();
}

/** A non-empty text. */
export function text(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("must not be empty");
  return value;
}

/** One of `choices`. */
export function oneOf<const T extends string>(...choices: T[]): (value: string) => T {
  return (value) => {
    if (!(choices as string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${choices.join(", ")}`);
    return value as T;
  };
}

/** A whole number of seconds, 0 to `max`. */
export function seconds(max: number): (value: string) => number {
  return (value) => {
    if (!/^\d{1,9}$/.test(value) || Number(value) > max) throw new InvalidArgumentError(`must be a whole number of seconds, 0 to ${max}`);
    return Number(value);
  };
}

const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Exactly one of the options (camelCase keys) is given; otherwise a UsageError naming them. */
export function exactlyOne(opts: Record<string, unknown>, ...names: string[]): string {
  const given = names.filter((n) => opts[n] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? `one of ${names.map(flag).join(", ")} is required`
        : `${given.map(flag).join(" and ")} cannot be used together (give one of ${names.map(flag).join(", ")})`,
    );
  }
  return given[0];
}

/** A whole number from `min` to `max` (a count: pages, invocations…). */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d{1,9}$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return Number(value);
  };
}
