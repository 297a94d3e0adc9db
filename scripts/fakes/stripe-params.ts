// Stripe's request encoding for the fake Stripe (scripts/fakes/stripe.ts): form bodies and query
// strings in bracket notation, as stripe-node and Stripe's docs write them:
//
//   items[0][price]=price_x&items[0][quantity]=2&metadata[tenant_id]=…&expand[]=line_items
//
// decoded to nested objects and arrays (`[]` appends, numeric indices make arrays). Values stay
// strings: each endpoint coerces what it reads (int/bool helpers below), as Stripe does, and says
// which parameter was wrong in Stripe's error shape.

/** A Stripe API error, rendered as `{ error: { type, code, message, param } }` with `status`. */
export class StripeFakeError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: { code?: string; param?: string; decline_code?: string; [k: string]: unknown } = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const invalid = (message: string, param?: string) =>
  new StripeFakeError(400, "invalid_request_error", message, param ? { param, code: "parameter_invalid" } : {});

export const missing = (what: string, id: string, param?: string) =>
  new StripeFakeError(404, "invalid_request_error", `No such ${what}: '${id}'`, { code: "resource_missing", param });

export type Params = Record<string, unknown>;

/** Decodes a form body or query string in Stripe's bracket notation. */
export function parseStripeParams(text: string): Params {
  const root: Params = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!m) throw invalid(`Invalid parameter name: ${key}`, key);
    const path = [m[1], ...[...m[2].matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1])];
    let node: Params = root;
    for (let i = 0; i < path.length - 1; i++) {
      const seg = path[i] === "" ? String(Object.keys(node).length) : path[i];
      const next = node[seg];
      if (typeof next !== "object" || next === null) node[seg] = {};
      node = node[seg] as Params;
    }
    const last = path[path.length - 1];
    node[last === "" ? String(Object.keys(node).length) : last] = value;
  }
  return arrayify(root) as Params;
}

/** Objects whose keys are all 0..n-1 (in any order) become arrays, recursively. */
function arrayify(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const obj = value as Params;
  for (const k of Object.keys(obj)) obj[k] = arrayify(obj[k]);
  const keys = Object.keys(obj);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    const sorted = keys.map(Number).sort((a, b) => a - b);
    if (sorted.every((n, i) => n === i)) return sorted.map((n) => obj[String(n)]);
  }
  return obj;
}

export function str(p: Params, name: string, opts: { required?: boolean } = {}): string | undefined {
  const v = p[name];
  if (v === undefined || v === "") {
    if (opts.required) throw invalid(`Missing required param: ${name}.`, name);
    return undefined;
  }
  if (typeof v !== "string") throw invalid(`Invalid string: ${JSON.stringify(v)}`, name);
  return v;
}

export function int(
  p: Params,
  name: string,
  opts: { min?: number; max?: number; required?: boolean; label?: string } = {},
): number | undefined {
  const label = opts.label ?? name;
  const v = p[name];
  if (v === undefined || v === "") {
    if (opts.required) throw invalid(`Missing required param: ${label}.`, label);
    return undefined;
  }
  if (typeof v !== "string" || !/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${String(v)}`, label);
  const n = Number(v);
  if (opts.min !== undefined && n < opts.min) throw invalid(`This value must be greater than or equal to ${opts.min}.`, label);
  if (opts.max !== undefined && n > opts.max) throw invalid(`This value must be less than or equal to ${opts.max}.`, label);
  return n;
}

export function bool(p: Params, name: string): boolean | undefined {
  const v = p[name];
  if (v === undefined || v === "") return undefined;
  if (v === "true" || v === true) return true;
  if (v === "false" || v === false) return false;
  throw invalid(`Invalid boolean: ${String(v)}`, name);
}

export function obj(p: Params, name: string): Params | undefined {
  const v = p[name];
  if (v === undefined || v === "") return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(`Invalid hash`, name);
  return v as Params;
}

export function arr(p: Params, name: string): unknown[] | undefined {
  const v = p[name];
  if (v === undefined || v === "") return undefined;
  if (!Array.isArray(v)) throw invalid(`Invalid array`, name);
  return v;
}

/** `metadata[key]=value`; an empty value deletes the key (Stripe's rule). Returns the new map. */
export function mergeMetadata(current: Record<string, string>, p: Params): Record<string, string> {
  const given = p.metadata;
  if (given === undefined) return current;
  if (given === "") return {};
  if (typeof given !== "object" || given === null || Array.isArray(given)) throw invalid("Invalid hash", "metadata");
  const out = { ...current };
  for (const [k, v] of Object.entries(given as Params)) {
    if (typeof v !== "string") throw invalid("Invalid metadata value", `metadata[${k}]`);
    if (k.length > 40) throw invalid("Metadata keys can have a maximum length of 40 characters.", `metadata[${k}]`);
    if (v.length > 500) throw invalid("Metadata values can have a maximum length of 500 characters.", `metadata[${k}]`);
    if (v === "") delete out[k];
    else out[k] = v;
  }
  if (Object.keys(out).length > 50) throw invalid("You can have at most 50 metadata keys.", "metadata");
  return out;
}

/** `created=123` or `created[gte]=…&created[lt]=…` → a predicate on a unix timestamp. */
export function rangeFilter(p: Params, name: string): ((t: number) => boolean) | undefined {
  const v = p[name];
  if (v === undefined || v === "") return undefined;
  if (typeof v === "string") {
    const n = int(p, name)!;
    return (t) => t === n;
  }
  const r = obj(p, name)!;
  const bound = (k: string) => int(r, k, { label: `${name}[${k}]` });
  const [gt, gte, lt, lte] = [bound("gt"), bound("gte"), bound("lt"), bound("lte")];
  for (const k of Object.keys(r)) {
    if (!["gt", "gte", "lt", "lte"].includes(k)) throw invalid(`Received unknown parameter: ${name}[${k}]`, `${name}[${k}]`);
  }
  return (t) =>
    (gt === undefined || t > gt) && (gte === undefined || t >= gte) && (lt === undefined || t < lt) &&
    (lte === undefined || t <= lte);
}

/** Refuses parameters outside `known` (top level), as Stripe does: "Received unknown parameter". */
export function onlyKnown(p: Params, known: readonly string[]): void {
  for (const k of Object.keys(p)) {
    if (!known.includes(k)) throw invalid(`Received unknown parameter: ${k}`, k);
  }
}
