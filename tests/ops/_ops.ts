// Running `npm run ops` as a subprocess (the real entry point, scripts/ops.ts) against the test
// runner's throwaway stack: the default target pointed at the runner's files the way an operator's
// `npm start` stack is found (STACK_STATE_DIR: the runner's keys.json and fakes.env;
// STACK_API_PORT / STACK_DB_PORT: its ports; OPS_FUNCTIONS_ENV_FILE: the functions' settings file
// the runner gave the gateway), or a hosted-style --env-file written from the same values.
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { env, type Sql, withDb } from "../_helpers.ts";
import { fixtureSettings } from "../functions/twilio_helpers.ts";
import { StripeFakeControl } from "../../scripts/fakes/stripe-control.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const FIXTURE_ENV_FILE = fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url));

export interface OpsRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment that points the default (local) target at the runner's stack. */
export function localTargetEnv(): Record<string, string> {
  return {
    STACK_STATE_DIR: dirname(env.keysFile),
    STACK_API_PORT: new URL(env.supabaseUrl).port,
    STACK_DB_PORT: new URL(env.dbUrl).port,
    OPS_FUNCTIONS_ENV_FILE: FIXTURE_ENV_FILE,
  };
}

/**
 * `deno run -A scripts/ops.ts …args` from the repository root, as `npm run ops -- …args` runs it.
 * `stdin`: text piped to it (default: none, stdin closed).
 */
export async function ops(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Promise<OpsRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${REPO_ROOT}deno.json`, `${REPO_ROOT}scripts/ops.ts`, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...localTargetEnv(), ...opts.env },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const r = await child.output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr) };
}

/** `ops(args + --json)`, its stdout parsed (and checked to be one JSON document only). */
export async function opsJson(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) {
  const run = await ops(["--json", ...args], opts);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(run.stdout);
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
  return { ...run, json };
}

/** Values a hosted project's env file would hold, for the runner's stack. */
export function hostedValues(): Record<string, string> {
  return {
    SUPABASE_URL: env.supabaseUrl,
    SUPABASE_SECRET_KEY: env.secretKey,
    SUPABASE_DB_URL: env.dbUrl,
    TWILIO_ACCOUNT_SID: fixtureSettings.TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: fixtureSettings.TWILIO_AUTH_TOKEN,
    TWILIO_MESSAGING_SERVICE_SID: fixtureSettings.TWILIO_MESSAGING_SERVICE_SID,
    TWILIO_PHONE_NUMBER: fixtureSettings.TWILIO_PHONE_NUMBER,
    OWNER_MOBILE: fixtureSettings.OWNER_MOBILE,
    PUBLIC_CONTACT_NUMBER: fixtureSettings.PUBLIC_CONTACT_NUMBER,
  };
}

/** A temporary dotenv file with `values`; removed after `fn`. */
export async function withEnvFile<T>(values: Record<string, string>, fn: (file: string) => Promise<T>): Promise<T> {
  const file = await Deno.makeTempFile({ prefix: "ops-test-", suffix: ".env" });
  await Deno.writeTextFile(file, Object.entries(values).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
  try {
    return await fn(file);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/** A JavaScript stack trace line ("    at fn (file:…)"): never in the CLI's output. */
export const STACK_TRACE = /^\s+at .+[:(]/m;

/** The messages the runner's fake Twilio holds for `to`. */
export async function messagesAt(to: string): Promise<{ sid: string; to: string; body: string; status: string }[]> {
  const base = Deno.env.get("TWILIO_API_BASE");
  if (!base) throw new Error("the runner sets TWILIO_API_BASE");
  const res = await fetch(
    `${base}/2010-04-01/Accounts/${fixtureSettings.TWILIO_ACCOUNT_SID}/Messages.json?To=${encodeURIComponent(to)}`,
    { headers: { authorization: `Basic ${btoa(`${fixtureSettings.TWILIO_ACCOUNT_SID}:${fixtureSettings.TWILIO_AUTH_TOKEN}`)}` } },
  );
  if (res.status !== 200) throw new Error(`fake Twilio answered ${res.status}`);
  return (await res.json()).messages;
}

export interface TenantFixture {
  sql: Sql;
  tenant: string;
  site(name: string): Promise<string>;
  worker(phone: string, opts?: { consent?: boolean; verified?: boolean; language?: "fr" | "en"; site?: string; name?: string }): Promise<string>;
}

/** A tenant of its own (so worker numbers never collide with other tests' tenants). */
export async function withTenant<T>(label: string, fn: (f: TenantFixture) => Promise<T>): Promise<T> {
  return await withDb(async (sql) => {
    const [{ id: tenant }] = await sql`insert into public.tenants (name) values (${`ops ${label} ${crypto.randomUUID()}`}) returning id`;
    return await fn({
      sql,
      tenant,
      async site(name) {
        const [{ id }] = await sql`insert into public.sites (tenant_id, name) values (${tenant}, ${name}) returning id`;
        return id;
      },
      async worker(phone, opts = {}) {
        const [{ id }] = await sql`
          insert into public.workers (tenant_id, site_id, full_name, phone, sms_consent, phone_verified, preferred_language)
          values (${tenant}, ${opts.site ?? null}, ${opts.name ?? "Ops test"}, ${phone}, ${opts.consent ?? true},
                  ${opts.verified ?? true}, ${opts.language ?? "fr"}) returning id`;
        return id;
      },
    });
  });
}

/**
 * Removes a tenant made by a test (or by `billing checkout-test`) with its billing rows, once the
 * runner's fake Stripe has delivered every event (stripe-webhook writes them), and its users that
 * belong to no other tenant. Audit rows and billing_events stay (append-only / no tenant).
 */
export async function removeTenant(tenantId: string): Promise<void> {
  const base = Deno.env.get("STRIPE_API_BASE");
  if (base) await new StripeFakeControl(base).settled().catch(() => undefined);
  await withDb(async (sql) => {
    const users = (await sql<{ user_id: string }[]>`select user_id::text from public.tenant_members where tenant_id = ${tenantId}`)
      .map((r) => r.user_id);
    await sql`delete from public.invoices where tenant_id = ${tenantId}`;
    await sql`delete from public.subscriptions where tenant_id = ${tenantId}`;
    await sql`delete from public.customers where tenant_id = ${tenantId}`;
    await sql`delete from public.tenants where id = ${tenantId}`;
    for (const uid of users) {
      await sql`delete from auth.users where id = ${uid} and not exists (select from public.tenant_members where user_id = ${uid})`;
    }
  });
}

export { fixtureSettings };
