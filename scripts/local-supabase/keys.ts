// A local stack's keys, as a hosted project created today has them:
//
// - an ES256 (P-256) JWT signing key with a `kid`, whose public half is the project's JWKS
//   (hosted: `${SUPABASE_URL}/auth/v1/.well-known/jwks.json`); GoTrue signs user sessions with it;
// - a publishable and a secret API key (`sb_publishable_…`, `sb_secret_…`): opaque strings sent in
//   the `apikey` header, not JWTs;
// - the legacy HS256 JWT secret and the legacy `anon` / `service_role` keys minted from it, with
//   `iss: "supabase"` and the project `ref` as hosted mints them (still valid until legacy keys are
//   switched off).
//
// Generated once per stack and kept in `<stateDir>/keys.json` (mode 0600; the state dirs are
// git-ignored or temporary), so restarting a stack keeps its keys and two stacks never share them.
// Only the gateway gets the legacy secret (to honour verify_jwt) and nobody but this module and the
// test helpers reads the private signing key: functions get the public JWKS.
import { SignJWT } from "jose";
import { join } from "node:path";
import { z } from "zod";

export const KEYS_FILE_NAME = "keys.json";

const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/);

const publicSigningJwk = z.object({
  kty: z.literal("EC"),
  crv: z.literal("P-256"),
  x: base64url,
  y: base64url,
  kid: z.string().min(1),
  alg: z.literal("ES256"),
  use: z.literal("sig"),
  key_ops: z.array(z.string()),
  ext: z.boolean(),
}).strict();

const privateSigningJwk = publicSigningJwk.extend({ d: base64url }).strict();

const keysFile = z.object({
  version: z.literal(1),
  /** Project reference: 20 lowercase letters, as hosted (the `<ref>` of `<ref>.supabase.co`). */
  ref: z.string().regex(/^[a-z]{20}$/),
  /** When the keys were made (seconds): the legacy keys' `iat`, so they never change afterwards. */
  createdAt: z.number().int().positive(),
  publishableKey: z.string().regex(/^sb_publishable_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/),
  secretKey: z.string().regex(/^sb_secret_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/),
  legacyJwtSecret: z.string().min(32),
  signingKey: privateSigningJwk,
}).strict();

export type PublicSigningJwk = z.infer<typeof publicSigningJwk>;
export type PrivateSigningJwk = z.infer<typeof privateSigningJwk>;
export interface Jwks {
  keys: PublicSigningJwk[];
}

export interface StackKeys {
  /** The file the keys are kept in (mode 0600). */
  file: string;
  ref: string;
  publishableKey: string;
  secretKey: string;
  /** The JWKS functions and callers verify user tokens with (public keys only). */
  jwks: Jwks;
  /** Private: only the token minter uses it. */
  signingKey: PrivateSigningJwk;
  /** Legacy HS256 secret: only the gateway gets it (verify_jwt), never a function. */
  legacyJwtSecret: string;
  /** Legacy `anon` key: an HS256 JWT. */
  anonKey: string;
  /** Legacy `service_role` key: an HS256 JWT. */
  serviceRoleKey: string;
}

function base64urlOf(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomLetters(count: number): string {
  // 26 does not divide 256: draw bytes below 234 (9 × 26) so every letter is equally likely.
  let out = "";
  while (out.length < count) {
    for (const b of crypto.getRandomValues(new Uint8Array(count * 2))) {
      if (b < 234 && out.length < count) out += String.fromCharCode(97 + (b % 26));
    }
  }
  return out;
}

/**
 * An API key in the current format: `sb_<kind>_` + 22 base64url characters (128 random bits) +
 * `_` + an 8-character checksum, the shape of hosted keys and of the Supabase CLI's local ones.
 * Hosted's checksum algorithm is not public; ours is the first 6 bytes of SHA-256 over the rest,
 * which only serves to make the shape (and a typo) recognisable. Nothing may rely on it.
 */
export async function generateApiKey(kind: "publishable" | "secret"): Promise<string> {
  const body = `sb_${kind}_${base64urlOf(crypto.getRandomValues(new Uint8Array(16)))}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  return `${body}_${base64urlOf(digest.subarray(0, 6))}`;
}

/** A P-256 signing key as a JWK with a `kid`, as `supabase gen signing-key --algorithm ES256` writes it. */
export async function generateSigningKey(): Promise<PrivateSigningJwk> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  return privateSigningJwk.parse({
    kty: "EC",
    crv: "P-256",
    x: jwk.x,
    y: jwk.y,
    d: jwk.d,
    kid: crypto.randomUUID(),
    alg: "ES256",
    use: "sig",
    key_ops: ["sign", "verify"],
    ext: true,
  });
}

/** The public half, as GoTrue publishes it in its JWKS: no `d`, `key_ops` reduced to verify. */
export function publicJwk(key: PrivateSigningJwk): PublicSigningJwk {
  const { d: _private, ...rest } = key;
  return publicSigningJwk.parse({ ...rest, key_ops: ["verify"] });
}

/**
 * Mints a legacy API key as hosted does: HS256, claims `{iss: "supabase", ref, role, iat, exp}`
 * (exp ten years after iat). Deterministic: the same secret, ref and iat give the same key.
 */
export function mintLegacyKey(
  secret: string,
  claims: { ref: string; role: "anon" | "service_role"; issuedAt: number },
): Promise<string> {
  return new SignJWT({ iss: "supabase", ref: claims.ref, role: claims.role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(claims.issuedAt)
    .setExpirationTime(claims.issuedAt + 10 * 365 * 24 * 3600)
    .sign(new TextEncoder().encode(secret));
}

type KeysFile = z.infer<typeof keysFile>;

async function generateKeysFile(): Promise<KeysFile> {
  return keysFile.parse({
    version: 1,
    ref: randomLetters(20),
    createdAt: Math.floor(Date.now() / 1000),
    publishableKey: await generateApiKey("publishable"),
    secretKey: await generateApiKey("secret"),
    legacyJwtSecret: `local-legacy-jwt-secret-${base64urlOf(crypto.getRandomValues(new Uint8Array(32)))}`,
    signingKey: await generateSigningKey(),
  });
}

async function expand(file: string, stored: KeysFile): Promise<StackKeys> {
  const mint = (role: "anon" | "service_role") =>
    mintLegacyKey(stored.legacyJwtSecret, { ref: stored.ref, role, issuedAt: stored.createdAt });
  return {
    file,
    ref: stored.ref,
    publishableKey: stored.publishableKey,
    secretKey: stored.secretKey,
    jwks: { keys: [publicJwk(stored.signingKey)] },
    signingKey: stored.signingKey,
    legacyJwtSecret: stored.legacyJwtSecret,
    anonKey: await mint("anon"),
    serviceRoleKey: await mint("service_role"),
  };
}

/** Reads the keys kept in `file`; a clear error (never the values) when it is unreadable or damaged. */
export async function readStackKeys(file: string): Promise<StackKeys> {
  const text = await Deno.readTextFile(file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON: delete it to generate new keys for this stack`);
  }
  const parsed = keysFile.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join(".") || "(root)"))].join(", ");
    throw new Error(`${file} is damaged (${fields}): delete it to generate new keys for this stack`);
  }
  return await expand(file, parsed.data);
}

/**
 * The stack's keys from `<stateDir>/keys.json`, generated on first use. Creation is atomic and
 * never overwrites: the file is written aside (0600) and hard-linked into place, so two commands
 * starting the same stack at once end up with the same keys.
 */
export async function loadOrCreateStackKeys(stateDir: string): Promise<StackKeys> {
  const file = join(stateDir, KEYS_FILE_NAME);
  try {
    return await readStackKeys(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(stateDir, { recursive: true });
  const aside = `${file}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(aside, JSON.stringify(await generateKeysFile(), null, 2) + "\n", {
    mode: 0o600,
    createNew: true,
  });
  await Deno.chmod(aside, 0o600); // the umask cannot widen it, but an odd one could narrow it oddly
  try {
    await Deno.link(aside, file);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  } finally {
    await Deno.remove(aside).catch(() => {});
  }
  return await readStackKeys(file);
}

// ---- user session tokens (what GoTrue would issue; there is no GoTrue locally) ----------------

/** GoTrue refuses a JWT expiry above one week (`jwt_expiry` ≤ 604800 s). */
export const MAX_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** "90s", "15m", "1h", "7d" → seconds; undefined for anything else or above a week. */
export function parseLifetime(text: string): number | undefined {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
  return seconds <= MAX_TOKEN_LIFETIME_SECONDS ? seconds : undefined;
}

export interface UserTokenOptions {
  /** The API URL: the token's issuer is `${supabaseUrl}/auth/v1`, as GoTrue sets it. */
  supabaseUrl: string;
  userId: string;
  /** Default `authenticated`. */
  role?: string;
  /** Seconds; default 3600 (GoTrue's default `jwt_expiry`). */
  lifetimeSeconds?: number;
  email?: string;
  /** Default: now. For tests of expiry. */
  issuedAt?: number;
  /** Extra or overriding claims (tests). */
  extraClaims?: Record<string, unknown>;
}

/**
 * A user session access token as GoTrue issues it with asymmetric signing keys: ES256 with the
 * key's `kid`, claims iss, sub, aud "authenticated", exp, iat, email, phone, app_metadata,
 * user_metadata, role, aal, amr, session_id, is_anonymous.
 */
export function mintUserSessionToken(signingKey: PrivateSigningJwk, options: UserTokenOptions): Promise<string> {
  if (!UUID.test(options.userId)) throw new Error("the user id must be a UUID");
  const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const claims = {
    iss: `${options.supabaseUrl.replace(/\/+$/, "")}/auth/v1`,
    sub: options.userId.toLowerCase(),
    aud: "authenticated",
    exp: iat + (options.lifetimeSeconds ?? 3600),
    iat,
    email: options.email ?? "",
    phone: "",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    role: options.role ?? "authenticated",
    aal: "aal1",
    amr: [{ method: "password", timestamp: iat }],
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    ...options.extraClaims,
  };
  return signEs256(signingKey, claims, { kid: signingKey.kid, typ: "JWT" });
}

/** Signs `claims` with `key` (ES256) under the protected header `{alg: "ES256", ...header}`. */
export async function signEs256(
  key: PrivateSigningJwk,
  claims: Record<string, unknown>,
  header: Record<string, unknown>,
): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ ...header, alg: "ES256" }).sign(await importSigningKey(key));
}

function importSigningKey(jwk: PrivateSigningJwk): Promise<CryptoKey> {
  const { kty, crv, x, y, d } = jwk;
  return crypto.subtle.importKey("jwk", { kty, crv, x, y, d }, { name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
}

export class UsageError extends Error {}

export const TOKEN_USAGE =
  "usage: npm run stack -- token --user <uuid> [--role <role>] [--expires <n>s|m|h|d (max 7d)] [--email <address>]";

/** Parses `token` arguments; a UsageError for anything unexpected (the caller prints TOKEN_USAGE). */
export function parseTokenArgs(args: string[]): Omit<UserTokenOptions, "supabaseUrl"> {
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--(user|role|expires|email)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const value = m[2] ?? args[++i];
    if (value === undefined || value === "") throw new UsageError(`--${m[1]} needs a value`);
    if (m[1] in values) throw new UsageError(`--${m[1]} given twice`);
    values[m[1]] = value;
  }
  if (!values.user) throw new UsageError("--user is required");
  if (!UUID.test(values.user)) throw new UsageError("--user must be a UUID");
  const role = values.role ?? "authenticated";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new UsageError("--role must be a Postgres role name");
  let lifetimeSeconds = 3600;
  if (values.expires !== undefined) {
    const parsed = parseLifetime(values.expires);
    if (parsed === undefined) throw new UsageError("--expires must look like 90s, 15m, 1h or 7d (at most 7d)");
    lifetimeSeconds = parsed;
  }
  if (values.email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(values.email)) {
    throw new UsageError("--email must be an email address");
  }
  return { userId: values.user, role, lifetimeSeconds, email: values.email };
}
