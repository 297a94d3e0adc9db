// What `npm run stack -- env` prints, in one place: the stack's URLs and keys, the functions'
// settings (supabase/functions/.env) and the fakes' URLs (.stack/fakes.env). scripts/stack.ts prints
// it; `npm run ops` reads it to reach the local stack (scripts/ops/target.ts).
import { join } from "node:path";
import { clusterAt, REPO_ROOT } from "./cluster.ts";
import { parseDotenv } from "./gateway/config.ts";
import { KEYS_FILE_NAME, readStackKeys, type StackKeys } from "./keys.ts";
import { FUNCTIONS_ENV_FILE } from "./local-config.ts";
import { configuredPorts } from "./ports.ts";

/** The stack's state folder: `.stack`, or STACK_STATE_DIR (another stack's, e.g. the test runner's). */
export function stackStateDir(): string {
  return Deno.env.get("STACK_STATE_DIR") || join(REPO_ROOT, ".stack");
}

/** The fakes' URLs (TWILIO_API_BASE, STRIPE_API_BASE), written at each start: the gateway's second env file. */
export const FAKES_ENV_FILE_NAME = "fakes.env";

/** The platform part: what hosted Supabase gives a caller (URLs, API keys, JWKS, legacy keys). */
export function platformEnv(apiUrl: string, dbUrl: string, keys: StackKeys): Record<string, string> {
  return {
    SUPABASE_URL: apiUrl,
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
    SUPABASE_SECRET_KEY: keys.secretKey,
    SUPABASE_JWKS: JSON.stringify(keys.jwks),
    // Legacy JWT-based keys (hosted retires them by the end of 2026) and their secret.
    SUPABASE_ANON_KEY: keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
    SUPABASE_JWT_SECRET: keys.legacyJwtSecret,
    FUNCTIONS_URL: `${apiUrl}/functions/v1`,
  };
}

/**
 * Everything `stack env` prints: the platform part, the keys file, the functions' settings, the
 * fakes' URLs. A SUPABASE_* name in a settings file is skipped, as the gateway skips it (and
 * `supabase secrets set` refuses it): the platform's value is the one functions get.
 */
export function composeStackEnv(
  platform: Record<string, string>,
  keys: StackKeys,
  functionSettings: Record<string, string>,
  fakes: Record<string, string>,
): Record<string, string> {
  const settings = Object.fromEntries(Object.entries({ ...functionSettings, ...fakes }).filter(([name]) => !name.startsWith("SUPABASE_")));
  return { ...platform, LOCAL_STACK_KEYS_FILE: keys.file, ...settings };
}

/** A file `readStackEnv` needs is not there: the stack was never started here. */
export class StackNotFoundError extends Error {
  constructor(readonly file: string) {
    super(`${file} does not exist: the local stack has not been started here (npm start)`);
    this.name = "StackNotFoundError";
  }
}

async function readOrNotFound(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new StackNotFoundError(file);
    throw error;
  }
}

/**
 * What `npm run stack -- env` would print, read-only: nothing is created (no keys, no settings
 * file), so a stack that was never started is a StackNotFoundError, not a new empty one. Ports as
 * the stack's (config.toml, STACK_API_PORT / STACK_DB_PORT); `functionsEnvFile` defaults to
 * supabase/functions/.env.
 */
export async function readStackEnv(
  opts: { stateDir?: string; functionsEnvFile?: string } = {},
): Promise<Record<string, string>> {
  const stateDir = opts.stateDir ?? stackStateDir();
  const ports = await configuredPorts();
  const keysFile = join(stateDir, KEYS_FILE_NAME);
  await readOrNotFound(keysFile);
  const keys = await readStackKeys(keysFile);
  const settings = parseDotenv(await readOrNotFound(opts.functionsEnvFile ?? FUNCTIONS_ENV_FILE));
  const fakes = parseDotenv(await Deno.readTextFile(join(stateDir, FAKES_ENV_FILE_NAME)).catch(() => ""));
  const platform = platformEnv(`http://127.0.0.1:${ports.api}`, clusterAt(join(stateDir, "db"), ports.db).url, keys);
  return composeStackEnv(platform, keys, settings, fakes);
}
