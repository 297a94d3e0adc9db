// The functions' settings: the ONLY module of supabase/functions that reads Deno.env.
//
// Every setting of the project (supabase/functions/.env.example, README "Settings") and the ones
// the platform gives every function (SUPABASE_*) is parsed and validated with zod once per worker,
// on first use, then served from memory. A function asks for the settings it needs:
//
//   const { STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET } = settings("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET");
//
// A missing or malformed one throws SettingsError, which http.ts's handle() answers with 503 naming
// each wrong setting and why ("must start with sk_ or rk_"). Reasons are fixed texts written here:
// never a value, never a fragment of one (a zod or JSON.parse message could quote its input, so
// none is passed through). settingsReport() gives the same verdict for every setting, for the
// system status.
import { z } from "zod";
import { isValidPhoneNumber } from "libphonenumber-js";

/**
 * A JSON Web Key Set, as jose's JSONWebKeySet. Declared here: even a type-only import of jose puts
 * its whole package in the module graph of every function (they all import env.ts), and only
 * send-sms (auth.ts) uses jose.
 */
export interface JSONWebKeySet {
  keys: JsonWebKey[];
}

/** A custom zod issue; `reason` completes "<SETTING> …" and never quotes the value. */
function fail(ctx: z.RefinementCtx, reason: string): typeof z.NEVER {
  ctx.addIssue({ code: "custom", message: reason });
  return z.NEVER;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** An absolute https URL (http only on a loopback host, for the local stack), no trailing slash. */
function webUrl(opts: { loopbackOnly?: boolean } = {}) {
  return z.string().transform((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return fail(ctx, opts.loopbackOnly ? "must be a URL such as http://127.0.0.1:<port>" : "must be an absolute URL (https://…)");
    }
    const loopback = LOOPBACK_HOSTS.has(url.hostname);
    if (opts.loopbackOnly && !loopback) {
      return fail(ctx, "must point at a local fake on a loopback host (127.0.0.1, localhost, [::1]); leave it empty in production");
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
      return fail(ctx, "must use https (plain http only on a loopback host)");
    }
    if (url.username || url.password) return fail(ctx, "must not hold credentials");
    if (url.search || url.hash) return fail(ctx, "must not have a query string or a fragment");
    return value.replace(/\/+$/, "");
  });
}

/** A value matching `pattern`, else `reason`. */
function matching(pattern: RegExp, reason: string) {
  return z.string().regex(pattern, { error: reason });
}

/** A JSON object of named API keys, as the platform gives them: {"default":"sb_secret_…"}. */
function namedApiKeys(prefix: string) {
  const example = `{"default":"${prefix}…"}`;
  return z.string().transform((value, ctx): Record<string, string> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return fail(ctx, `must be a JSON object such as ${example} (it is not valid JSON)`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return fail(ctx, `must be a JSON object such as ${example}`);
    }
    const entries = Object.entries(parsed);
    if (entries.length === 0) return fail(ctx, "must name at least one key");
    for (const [, key] of entries) {
      if (typeof key !== "string" || !key.startsWith(prefix) || key.length <= prefix.length) {
        return fail(ctx, `every key must be a string starting with ${prefix}`);
      }
    }
    return Object.fromEntries(entries) as Record<string, string>;
  });
}

/** A legacy API key: an HS256 JWT whose `role` claim is `role`. */
function legacyJwtKey(role: "anon" | "service_role") {
  return z.string().transform((value, ctx) => {
    const parts = value.split(".");
    if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) {
      return fail(ctx, "must be a JWT (three base64url parts separated by dots)");
    }
    let claims: unknown;
    try {
      const b64 = parts[1].replaceAll("-", "+").replaceAll("_", "/");
      claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    } catch {
      return fail(ctx, "must be a JWT with a JSON payload");
    }
    if ((claims as { role?: unknown })?.role !== role) return fail(ctx, `must be a JWT whose role claim is ${role}`);
    return value;
  });
}

const e164Phone = z.string().transform((value, ctx) => {
  if (!/^\+[1-9]\d{6,14}$/.test(value)) return fail(ctx, "must be a phone number in E.164 form (+ country code and digits, no spaces), e.g. +15145550100");
  if (!isValidPhoneNumber(value)) return fail(ctx, "is not a valid phone number for its country code");
  return value;
});

/** A whole number from `min` to `max` (digits only). */
function wholeNumber(min: number, max: number, unit: string) {
  return z.string().transform((value, ctx) => {
    if (!/^\d{1,6}$/.test(value)) return fail(ctx, `must be a whole number of ${unit}, from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) return fail(ctx, `must be from ${min} to ${max} ${unit}`);
    return n;
  });
}

const stripePrice = matching(/^price_[A-Za-z0-9_]+$/, "must be a Stripe price id (price_…)");

/**
 * Every setting: its zod schema (string in, typed value out), whether a function can run without it
 * (`optional`: missing is fine, malformed is not), and what it is (for docs and the status page).
 */
const SPECS = {
  // ---- The platform's (hosted Supabase and the local gateway give them to every function) ----
  SUPABASE_URL: { schema: webUrl(), optional: false, about: "the project's API URL" },
  SUPABASE_DB_URL: {
    schema: z.string().transform((value, ctx) => {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return fail(ctx, "must be a postgresql:// connection URL");
      }
      if (url.protocol !== "postgresql:" && url.protocol !== "postgres:") return fail(ctx, "must be a postgresql:// connection URL");
      if (!url.hostname) return fail(ctx, "must name a host");
      return value;
    }),
    optional: false,
    about: "the database connection URL",
  },
  // Legacy JWT keys, being retired (end of 2026): a project may run without them.
  SUPABASE_ANON_KEY: { schema: legacyJwtKey("anon"), optional: true, about: "legacy anon API key (JWT)" },
  SUPABASE_SERVICE_ROLE_KEY: { schema: legacyJwtKey("service_role"), optional: true, about: "legacy service_role API key (JWT)" },
  SUPABASE_PUBLISHABLE_KEYS: { schema: namedApiKeys("sb_publishable_"), optional: false, about: "publishable API keys by name" },
  SUPABASE_SECRET_KEYS: { schema: namedApiKeys("sb_secret_"), optional: false, about: "secret API keys by name" },
  SUPABASE_JWKS: {
    schema: z.string().transform((value, ctx): JSONWebKeySet => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        return fail(ctx, 'must be a JSON Web Key Set {"keys":[…]} (it is not valid JSON)');
      }
      const keys = (parsed as { keys?: unknown })?.keys;
      if (!Array.isArray(keys)) return fail(ctx, 'must be a JSON Web Key Set {"keys":[…]}');
      for (const key of keys) {
        if (typeof key !== "object" || key === null || typeof (key as { kty?: unknown }).kty !== "string") {
          return fail(ctx, "every key must be a JSON object with a kty");
        }
        // A published key set holds public keys; a private EC/RSA part here is a leak waiting to happen.
        if ((key as { kty: string }).kty !== "oct" && "d" in key) return fail(ctx, "holds a private key (d): publish public keys only");
      }
      return parsed as JSONWebKeySet;
    }),
    optional: false,
    about: "public keys that sign user session tokens (JWKS)",
  },
  FUNCTIONS_PUBLIC_URL: {
    schema: webUrl(),
    optional: true,
    about: "public base URL of the functions when it is not ${SUPABASE_URL}/functions/v1",
  },

  // ---- The project's (supabase secrets set; locally supabase/functions/.env) ----
  APP_URL: { schema: webUrl(), optional: false, about: "public URL of the web app" },
  STRIPE_SECRET_KEY: {
    schema: z.string().transform((value, ctx) => {
      if (/^pk_/.test(value)) return fail(ctx, "is a publishable key: the secret key starts with sk_ or rk_");
      if (!/^(sk|rk)_/.test(value)) return fail(ctx, "must start with sk_ or rk_");
      if (!/^(sk|rk)_(test|live)_/.test(value)) return fail(ctx, "must start with sk_test_ or sk_live_ (rk_test_ or rk_live_ for a restricted key)");
      if (!/^[A-Za-z0-9_]{20,}$/.test(value)) return fail(ctx, "must be letters, digits and underscores only, at least 20 of them");
      return value;
    }),
    optional: false,
    about: "Stripe secret (sk_) or restricted (rk_) API key",
  },
  STRIPE_WEBHOOK_SECRET: {
    // A comma-separated list: while rolling the endpoint's secret, the old and the new are both valid.
    schema: z.string().transform((value, ctx): string[] => {
      const secrets = value.split(",").map((s) => s.trim());
      if (secrets.some((s) => s === "")) return fail(ctx, "has an empty entry in its comma-separated list");
      if (!secrets.every((s) => /^whsec_[A-Za-z0-9+/=_-]{8,}$/.test(s))) {
        return fail(ctx, "every secret must start with whsec_ (a comma-separated list while rolling)");
      }
      return secrets;
    }),
    optional: false,
    about: "signing secret(s) of the Stripe webhook endpoint",
  },
  STRIPE_PRICE_MONTHLY: { schema: stripePrice, optional: false, about: "price of the monthly plan" },
  STRIPE_PRICE_ANNUAL: { schema: stripePrice, optional: false, about: "price of the annual plan" },
  STRIPE_PRICE_ADDON_SITE_MONTHLY: { schema: stripePrice, optional: false, about: "price of an additional site, monthly" },
  STRIPE_PRICE_ADDON_SITE_ANNUAL: { schema: stripePrice, optional: false, about: "price of an additional site, annual" },
  STRIPE_ACCOUNT_COUNTRY: {
    schema: matching(/^[A-Z]{2}$/, "must be a two-letter ISO 3166 country code in capitals, e.g. CA"),
    optional: false,
    about: "country of the Stripe account",
  },
  STRIPE_API_BASE: { schema: webUrl({ loopbackOnly: true }), optional: true, about: "local fake Stripe API (empty in production)" },
  // billing-sync: one invocation stops (run recorded incomplete, resumed by the next call) before
  // the platform's 150 s request limit; its Stripe calls go through a client-side token bucket.
  BILLING_SYNC_TIME_BUDGET_SECONDS: {
    schema: wholeNumber(5, 140, "seconds"),
    optional: true,
    about: "billing-sync: seconds one invocation works before it stops as incomplete (default 100)",
  },
  BILLING_SYNC_RATE_LIMIT: {
    schema: wholeNumber(1, 50, "requests per second"),
    optional: true,
    about: "billing-sync: Stripe API requests per second, client-side (default 10; Stripe allows 25 in test mode)",
  },
  TWILIO_ACCOUNT_SID: {
    schema: matching(/^AC[0-9a-f]{32}$/, "must be AC followed by 32 lower-case hexadecimal digits"),
    optional: false,
    about: "Twilio account SID",
  },
  TWILIO_AUTH_TOKEN: {
    schema: matching(/^[0-9a-f]{32}$/, "must be 32 lower-case hexadecimal digits"),
    optional: false,
    about: "Twilio auth token (signs Twilio's webhooks)",
  },
  TWILIO_MESSAGING_SERVICE_SID: {
    schema: matching(/^MG[0-9a-f]{32}$/, "must be MG followed by 32 lower-case hexadecimal digits"),
    optional: false,
    about: "Twilio Messaging Service SID",
  },
  TWILIO_PHONE_NUMBER: { schema: e164Phone, optional: false, about: "the Twilio number (E.164)" },
  TWILIO_API_BASE: { schema: webUrl({ loopbackOnly: true }), optional: true, about: "local fake Twilio API (empty in production)" },
  TWILIO_ADVANCED_OPT_OUT: {
    // With Advanced Opt-Out on the Messaging Service, Twilio answers the opt-out/opt-in/help
    // keywords itself (and sends OptOutType); sms-inbound then replies nothing, or the worker would
    // get two answers.
    schema: z.enum(["true", "false"], { error: "must be true or false" }).transform((v) => v === "true"),
    optional: true,
    about: "Twilio's Advanced Opt-Out answers the SMS keywords itself (default false: sms-inbound answers them)",
  },
  OWNER_MOBILE: { schema: e164Phone, optional: false, about: "mobile that inbound calls and alerts go to (E.164)" },
  PUBLIC_CONTACT_NUMBER: { schema: e164Phone, optional: false, about: "number shown publicly (E.164)" },
  CRON_SECRET: {
    schema: z.string().min(32, { error: "must be at least 32 characters (a long random string)" }),
    optional: true,
    about: "shared secret of the scheduled calls",
  },
  DB_SIZE_QUOTA_MB: {
    // The plan's database size limit, which system-status holds the database size against (alert
    // over 80 %). Optional: without it the status uses DEFAULT_DB_SIZE_QUOTA_MB (hosted Free plan).
    schema: z.string().transform((value, ctx) => {
      if (!/^[1-9][0-9]{0,8}$/.test(value)) return fail(ctx, "must be a whole number of megabytes, e.g. 500 (Free plan) or 8192 (Pro)");
      return Number(value);
    }),
    optional: true,
    about: "database size quota in MB (default 500, the hosted Free plan's limit)",
  },
} as const satisfies Record<string, { schema: z.ZodType<unknown, string>; optional: boolean; about: string }>;

/** DB_SIZE_QUOTA_MB when it is not set: hosted Supabase's Free plan allows 500 MB of database. */
export const DEFAULT_DB_SIZE_QUOTA_MB = 500;

export type SettingName = keyof typeof SPECS;
export const SETTING_NAMES = Object.keys(SPECS) as SettingName[];

type Parsed<K extends SettingName> = z.output<(typeof SPECS)[K]["schema"]>;
/** The typed value of each setting; an optional setting that is not set is undefined. */
export type Settings = {
  [K in SettingName]: (typeof SPECS)[K]["optional"] extends true ? Parsed<K> | undefined : Parsed<K>;
};

export type SettingStatus = "ok" | "missing" | "malformed";

/** One setting's verdict, for the system status: never its value. */
export interface SettingReport {
  name: SettingName;
  status: SettingStatus;
  /** Why it is malformed (or "is not set"); absent when ok. */
  reason?: string;
  /** A function can run without it. */
  optional: boolean;
  /** Facts safe to show, e.g. {stripeMode: "test"} for STRIPE_SECRET_KEY. */
  facts?: Record<string, string>;
}

/** A setting a function needs is missing or malformed; http.ts answers it with 503. */
export class SettingsError extends Error {
  readonly problems: { name: SettingName; status: "missing" | "malformed"; reason: string }[];
  constructor(problems: SettingsError["problems"]) {
    super(`settings not usable: ${problems.map((p) => `${p.name} ${p.reason}`).join("; ")}`);
    this.name = "SettingsError";
    this.problems = problems;
  }
}

type Verdict = { status: "ok"; value: unknown } | { status: "missing" | "malformed"; reason: string };

/** Placeholders of .env.example (`…replace_me`, `replace_with_…`): set, but never a real value. */
const PLACEHOLDER = /replace_me|replace_with/i;

function judge(name: SettingName, raw: string | undefined): Verdict {
  const value = raw?.trim();
  if (!value) return { status: "missing", reason: "is not set" };
  if (PLACEHOLDER.test(value)) return { status: "malformed", reason: "still holds the .env.example placeholder" };
  const result = (SPECS[name].schema as z.ZodType<unknown, string>).safeParse(value);
  if (result.success) return { status: "ok", value: result.data };
  // Our own texts only; the guard below is a last line of defence should one ever quote the value.
  const reason = result.error.issues[0]?.message ?? "is malformed";
  return { status: "malformed", reason: reason.includes(value) ? "is malformed" : reason };
}

/** Settings read from one source, each parsed once. Functions use the module's default (Deno.env). */
export class SettingsSource {
  readonly #verdicts = new Map<SettingName, Verdict>();
  readonly #read: (name: string) => string | undefined;

  constructor(read: (name: string) => string | undefined) {
    this.#read = read;
  }

  #verdict(name: SettingName): Verdict {
    let verdict = this.#verdicts.get(name);
    if (!verdict) {
      if (!(name in SPECS)) throw new TypeError(`unknown setting ${name}`);
      verdict = judge(name, this.#read(name));
      this.#verdicts.set(name, verdict);
    }
    return verdict;
  }

  /**
   * The named settings, typed; throws SettingsError listing every one that is malformed, or missing
   * and not optional.
   */
  get<const K extends SettingName>(...names: K[]): Pick<Settings, K> {
    const out: Partial<Record<SettingName, unknown>> = {};
    const problems: SettingsError["problems"] = [];
    for (const name of names) {
      const verdict = this.#verdict(name);
      if (verdict.status === "ok") out[name] = verdict.value;
      else if (verdict.status === "missing" && SPECS[name].optional) out[name] = undefined;
      else problems.push({ name, status: verdict.status, reason: verdict.reason });
    }
    if (problems.length) throw new SettingsError(problems);
    return out as Pick<Settings, K>;
  }

  /** The verdict on every setting (or the named ones), values never included. */
  report(names: readonly SettingName[] = SETTING_NAMES): SettingReport[] {
    return names.map((name) => {
      const verdict = this.#verdict(name);
      const entry: SettingReport = { name, status: verdict.status, optional: SPECS[name].optional };
      if (verdict.status !== "ok") entry.reason = verdict.reason;
      else if (name === "STRIPE_SECRET_KEY") {
        // Test-mode vs live-mode keys: a fact the status page can hold against the project's stage.
        entry.facts = { stripeMode: /^(sk|rk)_live_/.test(verdict.value as string) ? "live" : "test" };
      }
      return entry;
    });
  }
}

let defaultSource: SettingsSource | undefined;

/** The worker's settings, from Deno.env (read lazily, parsed once per setting). */
export function settingsSource(): SettingsSource {
  defaultSource ??= new SettingsSource((name) => Deno.env.get(name));
  return defaultSource;
}

/** The named settings of this worker, typed; throws SettingsError (→ 503) if one is wrong. */
export function settings<const K extends SettingName>(...names: K[]): Pick<Settings, K> {
  return settingsSource().get(...names);
}

/** Every setting's verdict (ok | missing | malformed + reason), for the system status. */
export function settingsReport(names?: readonly SettingName[]): SettingReport[] {
  return settingsSource().report(names);
}

/** What a setting is, in a few words (docs, status page). */
export function settingAbout(name: SettingName): string {
  return SPECS[name].about;
}
