// What the system-status (and db-status) tests share: a gateway of their own serving only the
// functions under test, with an env file they choose (settings present, missing, malformed), a
// database URL they choose (the real one, or a closed port), and every log line captured, so a
// test can scan responses and logs for each secret value. Env files apply to every function a
// gateway serves, so deliberately wrong settings never reach the runner's gateway.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startGateway } from "../../../scripts/local-supabase/gateway/main.ts";
import { toDotenv } from "../../../scripts/local-supabase/local-config.ts";
import { env } from "../../_helpers.ts";

const FUNCTIONS = fileURLToPath(new URL("../../../supabase/functions", import.meta.url));

export interface OwnGateway {
  url: string;
  /** Request log lines, worker output, gateway messages. */
  logs: string[];
  functionUrl(name: string, rest?: string): string;
  close(): Promise<void>;
}

/** A gateway serving `functions` (verify_jwt off) of supabase/functions with `settings` as its env file. */
export async function startOwnGateway(opts: {
  functions: string[];
  settings: Record<string, string>;
  /** Default: the test database. */
  dbUrl?: string;
  /** Run the pg_net worker (default false: the runner's gateway already runs one on this database). */
  netWorker?: boolean;
}): Promise<OwnGateway> {
  const home = await Deno.makeTempDir({ prefix: "own-gateway-" });
  const others: string[] = [];
  for await (const entry of Deno.readDir(FUNCTIONS)) {
    if (entry.isDirectory && !/^[._]/.test(entry.name) && !opts.functions.includes(entry.name)) others.push(entry.name);
  }
  const config = join(home, "config.toml");
  await Deno.writeTextFile(
    config,
    opts.functions.map((name) => `[functions.${name}]\nverify_jwt = false\n`).join("") +
      others.map((name) => `[functions.${name}]\nenabled = false\n`).join(""),
  );
  const envFile = join(home, ".env");
  await Deno.writeTextFile(envFile, toDotenv(opts.settings), { mode: 0o600 });
  const logs: string[] = [];
  let gateway;
  try {
    gateway = await startGateway({
      hostname: "127.0.0.1",
      port: 0,
      functionSources: [{ dir: FUNCTIONS, configFile: config }],
      envFiles: [envFile],
      netWorker: opts.netWorker ?? false,
      dbUrl: opts.dbUrl ?? env.dbUrl,
      publishableKey: env.publishableKey,
      secretKey: env.secretKey,
      jwks: env.jwks,
      anonKey: env.anonKey,
      serviceRoleKey: env.serviceRoleKey,
      jwtSecret: env.jwtSecret,
      requestLog: (line) => logs.push(line),
      log: (line) => logs.push(line),
    });
  } catch (error) {
    await Deno.remove(home, { recursive: true });
    throw error;
  }
  const started = gateway;
  let closing: Promise<void> | undefined;
  return {
    url: started.url,
    logs,
    functionUrl: (name, rest = "") => `${started.url}/functions/v1/${name}${rest}`,
    close: () =>
      closing ??= (async () => {
        await started.close();
        await Deno.remove(home, { recursive: true });
      })(),
  };
}

/** Public parts of a format (prefixes), which a reason may name: not a leak. */
const FORMAT_PARTS = /(sk|rk|pk)_(test|live)_|whsec_|sb_secret_|sb_publishable_|price_|https?:\/\/|["{}:,\[\] ]/g;

/**
 * The first 8-character slice of `value` (outside its format's public prefixes) found in `text`,
 * or undefined. A value shorter than 8 characters is looked for whole.
 */
export function leakedFragment(text: string, value: string): string | undefined {
  if (value.length < 8) return text.includes(value) ? value : undefined;
  if (text.includes(value)) return value;
  for (const part of value.split(FORMAT_PARTS).filter((p) => p && p.length >= 8)) {
    for (let i = 0; i + 8 <= part.length; i++) {
      const slice = part.slice(i, i + 8);
      if (text.includes(slice)) return slice;
    }
  }
  return undefined;
}

/** Every secret a function of this stack holds: the settings given, and the platform's keys. */
export function secretValues(settings: Record<string, string>): string[] {
  const platform = [env.secretKey, env.serviceRoleKey, env.jwtSecret, env.anonKey, env.publishableKey];
  // Phone numbers, country codes, booleans, numbers and loopback URLs are not secrets (and the
  // fictional numbers legitimately appear elsewhere in logs).
  const own = Object.entries(settings)
    .filter(([name, value]) => value && !/(PHONE|MOBILE|CONTACT_NUMBER|COUNTRY|ADVANCED_OPT_OUT|QUOTA_MB|_URL|_BASE)$/.test(name))
    .map(([, value]) => value);
  return [...platform, ...own];
}
