// What the gateway serves and with which environment: command-line options, the functions found in
// each functions folder with their config.toml settings, the dotenv files, and each worker's env.
import { parse as parseToml } from "smol-toml";
import { dirname, join, resolve } from "node:path";

export interface FunctionSource {
  /** Folder given with --functions (e.g. supabase/functions). */
  dir: string;
  /** The config.toml whose [functions.<name>] sections apply to that folder. */
  configFile: string;
}

export interface GatewayArgs {
  functionSources: FunctionSource[];
  envFiles: string[];
  netWorker: boolean;
}

export interface FunctionSpec {
  name: string;
  /** Absolute path of the file that calls Deno.serve (index.ts unless config sets entrypoint). */
  entrypoint: string;
  verifyJwt: boolean;
}

/**
 * Parses `[--functions <dir>=<config.toml>]... [--env-file <path>]... [--no-net-worker]`.
 * Relative paths are resolved against `cwd` (the orchestrator runs us from the repository root).
 */
export async function parseGatewayArgs(args: string[], cwd = Deno.cwd()): Promise<GatewayArgs> {
  const functionSources: FunctionSource[] = [];
  const envFiles: string[] = [];
  let netWorker = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.includes("=") && arg.startsWith("--") ? splitOnce(arg, "=") : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const next = args[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case "--functions": {
        const spec = value();
        const eq = spec.indexOf("=");
        if (eq < 1) throw new Error(`--functions expects <dir>=<config.toml>, got "${spec}"`);
        functionSources.push({ dir: resolve(cwd, spec.slice(0, eq)), configFile: resolve(cwd, spec.slice(eq + 1)) });
        break;
      }
      case "--env-file":
        envFiles.push(resolve(cwd, value()));
        break;
      case "--no-net-worker":
        netWorker = false;
        break;
      default:
        throw new Error(`unknown argument "${arg}"`);
    }
  }
  if (functionSources.length === 0) {
    functionSources.push({
      dir: resolve(cwd, "supabase/functions"),
      configFile: resolve(cwd, "supabase/config.toml"),
    });
  }
  if (envFiles.length === 0) {
    const fallback = resolve(cwd, "supabase/functions/.env");
    if (await fileExists(fallback)) envFiles.push(fallback);
  }
  return { functionSources, envFiles, netWorker };
}

function splitOnce(s: string, sep: string): [string, string] {
  const at = s.indexOf(sep);
  return [s.slice(0, at), s.slice(at + 1)];
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

interface TomlFunctionSection {
  enabled?: boolean;
  verify_jwt?: boolean;
  entrypoint?: string;
}

/**
 * The functions of one folder: every sub-folder with an index.ts (or the config's entrypoint),
 * except shared code (names starting with `_`) and hidden folders, as `supabase functions deploy`
 * sees them. `verify_jwt` defaults to true, as on Supabase; `enabled = false` hides a function.
 */
export async function discoverFunctions(source: FunctionSource): Promise<FunctionSpec[]> {
  const configText = await Deno.readTextFile(source.configFile).catch((error) => {
    throw new Error(`cannot read ${source.configFile}: ${error.message}`);
  });
  const config = parseToml(configText) as {
    functions?: Record<string, TomlFunctionSection>;
  };
  const sections = config.functions ?? {};
  const found: FunctionSpec[] = [];
  const entries = await Array.fromAsync(Deno.readDir(source.dir)).catch((error) => {
    throw new Error(`cannot read the functions folder ${source.dir}: ${error.message}`);
  });
  for (const entry of entries) {
    if (!entry.isDirectory || entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
    const section = sections[entry.name] ?? {};
    if (section.enabled === false) continue;
    // As in the Supabase CLI, a configured entrypoint is relative to the folder holding config.toml.
    const entrypoint = section.entrypoint
      ? resolve(dirname(source.configFile), section.entrypoint)
      : join(source.dir, entry.name, "index.ts");
    if (!(await fileExists(entrypoint))) continue;
    found.push({ name: entry.name, entrypoint, verifyJwt: section.verify_jwt ?? true });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Parses a dotenv file as the Supabase CLI reads `--env-file` (godotenv), which is how the same
 * file reaches production with `supabase secrets set --env-file`; the npm `dotenv` package differs
 * (it keeps \" escapes inside double quotes), so it is not used here: `NAME=value`, optional
 * `export `, `#` comments, single quotes literal, double quotes with \n \t \" \\ escapes.
 */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) continue;
    const name = line.slice(0, eq).replace(/^export\s+/, "").trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) {
      value = value.slice(1, -1);
    } else if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1).replace(
        /\\([nrt"\\])/g,
        (_, c: string) => ({ n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" })[c]!,
      );
    } else {
      // Unquoted: an inline comment starts at " #".
      const hash = value.search(/\s#/);
      if (hash >= 0) value = value.slice(0, hash).trimEnd();
    }
    out[name] = value;
  }
  return out;
}

/** Later files win, as with repeated --env-file. */
export async function loadEnvFiles(files: string[]): Promise<Record<string, string>> {
  const merged: Record<string, string> = {};
  for (const file of files) Object.assign(merged, parseDotenv(await Deno.readTextFile(file)));
  return merged;
}

/**
 * What a Deno process needs from the machine to run at all (find its cache, reach the npm registry
 * through a proxy, trust the local CA). Nothing else of the gateway's environment reaches a function.
 */
export const RUNTIME_ENV_NAMES = [
  "PATH",
  "HOME",
  "USER",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "DENO_DIR",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "DENO_AUTH_TOKENS",
  "DENO_NO_UPDATE_CHECK",
  "NPM_CONFIG_REGISTRY",
  "XDG_CACHE_HOME",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NODE_EXTRA_CA_CERTS",
] as const;

/** The variables the platform itself sets for every function (dotenv files cannot override them). */
export interface PlatformEnv {
  SUPABASE_URL: string;
  SUPABASE_ANON_KEY?: string;
  SUPABASE_SERVICE_ROLE_KEY?: string;
  SUPABASE_DB_URL?: string;
  FUNCTIONS_PUBLIC_URL?: string;
  /** The project's publishable API key (`sb_publishable_…`); functions get SUPABASE_PUBLISHABLE_KEYS. */
  SUPABASE_PUBLISHABLE_KEY?: string;
  /** The project's secret API key (`sb_secret_…`); functions get SUPABASE_SECRET_KEYS. */
  SUPABASE_SECRET_KEY?: string;
  /** The JWKS as JSON text (public keys only); passed through as SUPABASE_JWKS. */
  SUPABASE_JWKS?: string;
}

/**
 * A worker's whole environment: the runtime's needs, the dotenv values, then the platform's
 * SUPABASE_* values. As with `supabase secrets set`, names starting with SUPABASE_ are reserved and
 * skipped from dotenv files. FUNCTIONS_PUBLIC_URL: the gateway's value, else the dotenv's, else
 * `${SUPABASE_URL}/functions/v1`. The keys come in the Supabase CLI's format
 * (serve/templates/main.ts): SUPABASE_PUBLISHABLE_KEYS and SUPABASE_SECRET_KEYS are JSON objects of
 * named keys, `{"default":"<key>"}`; SUPABASE_JWKS is the JWKS JSON. The legacy JWT secret and the
 * private signing key are never part of it.
 */
export function buildWorkerEnv(
  dotenv: Record<string, string>,
  platform: PlatformEnv,
  hostEnv: Record<string, string> = Deno.env.toObject(),
  warn: (msg: string) => void = () => {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of RUNTIME_ENV_NAMES) {
    if (hostEnv[name] !== undefined) env[name] = hostEnv[name];
  }
  for (const [name, value] of Object.entries(dotenv)) {
    if (name.startsWith("SUPABASE_")) {
      warn(`[gateway] env file: ${name} skipped (names starting with SUPABASE_ are reserved)`);
      continue;
    }
    env[name] = value;
  }
  env.SUPABASE_URL = platform.SUPABASE_URL;
  for (const name of ["SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL", "SUPABASE_JWKS"] as const) {
    if (platform[name]) env[name] = platform[name];
  }
  if (platform.SUPABASE_PUBLISHABLE_KEY) {
    env.SUPABASE_PUBLISHABLE_KEYS = JSON.stringify({ default: platform.SUPABASE_PUBLISHABLE_KEY });
  }
  if (platform.SUPABASE_SECRET_KEY) {
    env.SUPABASE_SECRET_KEYS = JSON.stringify({ default: platform.SUPABASE_SECRET_KEY });
  }
  env.FUNCTIONS_PUBLIC_URL = platform.FUNCTIONS_PUBLIC_URL || dotenv.FUNCTIONS_PUBLIC_URL ||
    `${platform.SUPABASE_URL.replace(/\/+$/, "")}/functions/v1`;
  return env;
}
