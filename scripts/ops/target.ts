// Which project `npm run ops` acts on, and what it knows about it.
//
//   default           the local stack `npm start` runs here: exactly what `npm run stack -- env`
//                     prints (.stack/keys.json, supabase/functions/.env, .stack/fakes.env, the
//                     ports of supabase/config.toml or STACK_API_PORT / STACK_DB_PORT).
//                     STACK_STATE_DIR and OPS_FUNCTIONS_ENV_FILE point it at another stack's files
//                     (the tests use them for the test runner's stack).
//   --env-file <f>    a hosted project: a dotenv file with the variable names of
//                     supabase/functions/.env.example plus SUPABASE_URL and SUPABASE_SECRET_KEY
//                     (SUPABASE_DB_URL, FUNCTIONS_PUBLIC_URL optional). Repeatable: later files win.
//
// Values are validated with the functions' own rules (_shared/env.ts) only when a command asks for
// them (`need`), and an error names each missing or malformed variable and why, never a value.
import postgres from "postgres";
import { parseDotenv } from "../local-supabase/gateway/config.ts";
import { mintUserSessionToken, readStackKeys } from "../local-supabase/keys.ts";
import { readStackEnv, StackNotFoundError } from "../local-supabase/stack-env.ts";
import {
  type SettingName,
  type SettingReport,
  type Settings,
  SettingsError,
  SettingsSource,
} from "../../supabase/functions/_shared/env.ts";
import { functionsPublicBaseUrl } from "../../supabase/functions/_shared/public-url.ts";
import { OperationFailed, TargetConfigError } from "./command.ts";

/** What a command may need: the functions' settings, and the caller's secret API key. */
export type TargetVariable = SettingName | "SUPABASE_SECRET_KEY";
export type TargetValues = Settings & { SUPABASE_SECRET_KEY: string };

export type TargetSource = { kind: "local" } | { kind: "env-file"; files: string[] };

const SECRET_KEY = /^sb_secret_[A-Za-z0-9_-]{8,}$/;
/** What _shared/env.ts accepts as a local (http) host. */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

export class Target {
  readonly #vars: Record<string, string>;
  readonly #settings: SettingsSource;

  constructor(readonly source: TargetSource, vars: Record<string, string>) {
    this.#vars = vars;
    this.#settings = new SettingsSource((name) => vars[name]);
  }

  /** "the local stack" or "prod.env": where the values came from, for messages. */
  get label(): string {
    return this.source.kind === "local" ? "the local stack" : this.source.files.join(" + ");
  }

  /** For --json: which target, never a value. */
  describe(): Record<string, unknown> {
    return this.source.kind === "local" ? { kind: "local" } : { kind: "env-file", files: this.source.files };
  }

  /**
   * The named variables, validated by the functions' own rules and typed as the functions get them
   * (plus SUPABASE_SECRET_KEY, the caller's key); a TargetConfigError naming every missing or
   * malformed one (never its value) otherwise. `purpose` completes the message ("(needed by sms send)").
   */
  need<const K extends TargetVariable>(purpose: string, ...names: K[]): Pick<TargetValues, K> {
    const problems: string[] = [];
    let values: Partial<TargetValues> = {};
    const settingNames = names.filter((n): n is Exclude<K, "SUPABASE_SECRET_KEY"> => n !== "SUPABASE_SECRET_KEY");
    try {
      values = { ...this.#settings.get(...settingNames) };
    } catch (error) {
      if (!(error instanceof SettingsError)) throw error;
      problems.push(...error.problems.map((p) => `${p.name} ${p.reason}`));
    }
    if ((names as TargetVariable[]).includes("SUPABASE_SECRET_KEY")) {
      const key = this.#vars.SUPABASE_SECRET_KEY?.trim();
      if (!key) problems.push("SUPABASE_SECRET_KEY is not set (the project's secret API key, sb_secret_…)");
      else if (!SECRET_KEY.test(key)) problems.push("SUPABASE_SECRET_KEY must be a secret API key (sb_secret_…)");
      else values.SUPABASE_SECRET_KEY = key;
    }
    if (problems.length) throw new TargetConfigError(`${this.#where()}: ${problems.join("; ")} (needed by ${purpose})`);
    return values as Pick<TargetValues, K>;
  }

  /** Every setting's verdict (ok | missing | malformed + reason), never a value: for status commands. */
  settingsReport(names?: readonly SettingName[]): SettingReport[] {
    return this.#settings.report(names);
  }

  /** An optional variable's validated value; undefined when it is not set (malformed: TargetConfigError). */
  optional<const K extends SettingName>(purpose: string, name: K): TargetValues[K] | undefined {
    if (!this.#vars[name]?.trim()) return undefined;
    return this.need(purpose, name)[name];
  }

  /** `${SUPABASE_URL}/functions/v1/<name>`: where a caller with an API key reaches a function. */
  functionUrl(purpose: string, name: string): string {
    const { SUPABASE_URL } = this.need(purpose, "SUPABASE_URL");
    return `${SUPABASE_URL}/functions/v1/${name}`;
  }

  /**
   * The public URL a provider calls and signs (FUNCTIONS_PUBLIC_URL, else ${SUPABASE_URL}/functions/v1),
   * computed by the functions' own public-url.ts.
   */
  publicFunctionUrl(purpose: string, name: string): string {
    this.need(purpose, "SUPABASE_URL");
    this.optional(purpose, "FUNCTIONS_PUBLIC_URL");
    return `${functionsPublicBaseUrl(this.#settings)}/${name}`;
  }

  /**
   * Whether SUPABASE_URL is on a loopback host: a local stack (`npm start`, the test runner's), where
   * a command may create test data. A hosted project never is.
   */
  isLoopback(purpose: string): boolean {
    const { SUPABASE_URL } = this.need(purpose, "SUPABASE_URL");
    return LOOPBACK_HOSTS.has(new URL(SUPABASE_URL).hostname);
  }

  /**
   * A user session token for `userId`, minted exactly as `npm run stack -- token` mints it
   * (keys.ts mintUserSessionToken: ES256 with the stack's signing key, issuer
   * `${SUPABASE_URL}/auth/v1`), from the keys file LOCAL_STACK_KEYS_FILE names (the local stack's;
   * `npm run stack -- env` prints it, so an env file made from it works too). A hosted project's
   * private signing key never leaves Supabase: there, a TargetConfigError.
   */
  /** Whether mintUserToken can work: the target names the local stack's keys file (LOCAL_STACK_KEYS_FILE). */
  get canMintUserTokens(): boolean {
    return Boolean(this.#vars.LOCAL_STACK_KEYS_FILE?.trim());
  }

  async mintUserToken(purpose: string, userId: string, opts: { email?: string; lifetimeSeconds?: number } = {}): Promise<string> {
    const { SUPABASE_URL } = this.need(purpose, "SUPABASE_URL");
    const file = this.#vars.LOCAL_STACK_KEYS_FILE?.trim();
    if (!file) {
      throw new TargetConfigError(
        `${this.#where()}: cannot mint a user session token: that needs the local stack's signing key ` +
          `(LOCAL_STACK_KEYS_FILE), and a hosted project's private key never leaves Supabase (needed by ${purpose})`,
      );
    }
    let keys;
    try {
      keys = await readStackKeys(file);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound ? "does not exist" : "cannot be read or is damaged";
      throw new TargetConfigError(`${this.#where()}: the keys file LOCAL_STACK_KEYS_FILE names ${why} (needed by ${purpose})`);
    }
    return await mintUserSessionToken(keys.signingKey, {
      supabaseUrl: SUPABASE_URL,
      userId,
      email: opts.email,
      lifetimeSeconds: opts.lifetimeSeconds ?? 600,
    });
  }

  /** Whether the database can be read (SUPABASE_DB_URL given: always locally, optional in an env file). */
  get hasDatabase(): boolean {
    return Boolean(this.#vars.SUPABASE_DB_URL?.trim());
  }

  /**
   * Runs `fn` with a one-connection pool as the URL's role (`postgres`: not a superuser, as on
   * hosted), closed afterwards. Undefined when the target has no SUPABASE_DB_URL. A database that
   * cannot be reached is an OperationFailed, without the URL (it holds the password).
   */
  async withDb<T>(purpose: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T | undefined> {
    if (!this.hasDatabase) return undefined;
    const { SUPABASE_DB_URL } = this.need(purpose, "SUPABASE_DB_URL");
    const sql = postgres(SUPABASE_DB_URL, {
      max: 1,
      connect_timeout: 10,
      idle_timeout: 5,
      onnotice: () => {},
      connection: { application_name: "npm run ops" },
    });
    try {
      return await fn(sql);
    } catch (error) {
      const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
      const reason = /^[0-9A-Z]{5}$/.test(code) ? `${code} ${(error as Error).message}` : connectionReason(error);
      throw new OperationFailed(`the database of ${this.label} cannot be read: ${reason}`);
    } finally {
      await sql.end({ timeout: 5 }).catch(() => {});
    }
  }

  #where(): string {
    return this.source.kind === "local"
      ? "the local stack's settings (npm run stack -- env)"
      : `--env-file ${this.source.files.join(" + ")}`;
  }
}

/** A connection error in a few words (fetch's cause chain, postgres' codes), never a connection string. */
export function connectionReason(error: unknown): string {
  const parts: string[] = [];
  let code = "";
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? `${e.name} ${e.message}` : String(e));
    if (!code && typeof e === "object" && "code" in e && typeof e.code === "string") code = e.code;
    e = typeof e === "object" && "cause" in e ? e.cause : undefined;
  }
  const all = parts.join(" | ");
  if (/TimeoutError|timed? ?out|CONNECT_TIMEOUT/i.test(all + code)) return "timed out";
  if (/connection refused|ECONNREFUSED/i.test(all + code)) return "connection refused";
  if (/dns error|ENOTFOUND|EAI_AGAIN|failed to lookup/i.test(all + code)) return "the host name does not resolve";
  if (/certificate|tls/i.test(all)) return "TLS error (certificate)";
  if (/connection reset|ECONNRESET/i.test(all + code)) return "connection reset";
  if (code) return code;
  // The innermost message's last clause ("…: client error (Connect): <why>"), without URLs.
  const last = parts[parts.length - 1].split(": ").pop() ?? "";
  return last.replace(/[a-z]+:\/\/\S+/gi, "<url>").slice(0, 120) || "error";
}

/** The local stack (no --env-file) or the given env files, read now; their values validated later (`need`). */
export async function resolveTarget(envFiles: string[]): Promise<Target> {
  if (envFiles.length === 0) {
    try {
      const vars = await readStackEnv({
        functionsEnvFile: Deno.env.get("OPS_FUNCTIONS_ENV_FILE") || undefined,
      });
      return new Target({ kind: "local" }, vars);
    } catch (error) {
      if (error instanceof StackNotFoundError) {
        throw new TargetConfigError(
          `no local stack here (${error.file} is missing): start it with \`npm start\`, or give --env-file <file> for a hosted project`,
        );
      }
      throw error;
    }
  }
  const vars: Record<string, string> = {};
  for (const file of envFiles) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "does not exist"
        : error instanceof Deno.errors.PermissionDenied
        ? "cannot be read (permission denied)"
        : error instanceof Deno.errors.IsADirectory
        ? "is a directory"
        : "cannot be read";
      throw new TargetConfigError(`--env-file ${file} ${why}`);
    }
    Object.assign(vars, parseDotenv(text));
  }
  return new Target({ kind: "env-file", files: envFiles }, vars);
}
