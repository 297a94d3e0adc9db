// Who is calling this function: a signed-in user, the service (our own backend: pg_cron, other
// functions, scripts), or nobody. One way for every function, the same locally and hosted.
//
// - A user: `Authorization: Bearer <JWT>` issued by Supabase Auth, verified here against the
//   project's JWKS (SUPABASE_JWKS) with jose: asymmetric only (ES256/RS256), `kid` required, `exp`
//   required and checked, `sub` required. An HS256 token (the legacy anon key, a session signed with
//   the legacy secret) is not a user: functions never hold the legacy secret.
// - The service: a secret API key (`sb_secret_…`) in `apikey` (or `Authorization: Bearer sb_secret_…`,
//   as supabase-js sends it), equal to one of SUPABASE_SECRET_KEYS; or, while legacy keys are still
//   on, the legacy service_role JWT equal to SUPABASE_SERVICE_ROLE_KEY. Service identification never
//   needs the legacy key: with it switched off (omitted from the config) secret keys keep working.
// - Nobody: no credential, a publishable/anon key only, or a credential that does not check out.
//   A credential that is present but wrong never falls back to a weaker answer.
//
// Pure functions over an explicit AuthConfig, plus createCallerIdentifier, which prepares the
// config once; `identifyCaller(req)` is the one call functions make: it builds the worker's
// identifier once from its settings (read and validated by `_shared/env.ts`, never Deno.env here).
// Nothing here logs or returns a key or a token.
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { type Settings, settings } from "./env.ts";

export interface AuthConfig {
  /** Named secret API keys, as SUPABASE_SECRET_KEYS holds them: `{"default": "sb_secret_…"}`. */
  secretKeys: Record<string, string>;
  /** SUPABASE_SERVICE_ROLE_KEY while legacy keys are on; omit it to refuse the legacy key. */
  legacyServiceRoleKey?: string;
  /** SUPABASE_JWKS: the public keys user sessions are signed with. */
  jwks: JSONWebKeySet;
  /** When set, a user token's `iss` must equal it (`${SUPABASE_URL}/auth/v1`). */
  issuer?: string;
}

export type Caller =
  | { kind: "user"; userId: string; role: string; claims: JWTPayload }
  | { kind: "service"; via: "secret_key"; keyName: string }
  | { kind: "service"; via: "legacy_service_role_key" }
  | { kind: "nobody"; reason: NobodyReason };

/** Why a caller is nobody: for logs and metrics, never shown with the credential itself. */
export type NobodyReason =
  | "no_credentials"
  | "malformed_authorization"
  | "invalid_token"
  | "invalid_secret_key";

const USER_TOKEN_ALGORITHMS = ["ES256", "RS256"];
const encoder = new TextEncoder();

// ---- constant-time comparison -------------------------------------------------------------------

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** Equal digests, compared without an early exit (digests hide the keys' lengths and contents). */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

interface PreparedConfig {
  secretKeyDigests: [name: string, digest: Uint8Array][];
  legacyServiceRoleDigest?: Uint8Array;
  keySet?: JWTVerifyGetKey;
  issuer?: string;
}

async function prepare(config: AuthConfig): Promise<PreparedConfig> {
  return {
    secretKeyDigests: await Promise.all(
      Object.entries(config.secretKeys).map(async ([name, key]) => [name, await sha256(key)] as [string, Uint8Array]),
    ),
    legacyServiceRoleDigest: config.legacyServiceRoleKey ? await sha256(config.legacyServiceRoleKey) : undefined,
    keySet: config.jwks.keys.length ? createLocalJWKSet(config.jwks) : undefined,
    issuer: config.issuer,
  };
}

/** The name of the secret key equal to `candidate` (every key is compared), or undefined. */
async function matchSecretKey(candidate: string, prepared: PreparedConfig): Promise<string | undefined> {
  const digest = await sha256(candidate);
  let found: string | undefined;
  for (const [name, keyDigest] of prepared.secretKeyDigests) {
    if (sameDigest(digest, keyDigest) && found === undefined) found = name;
  }
  return found;
}

// ---- identification -----------------------------------------------------------------------------

/** Verifies a user session token against the JWKS; the claims, or undefined. */
async function verifyUserToken(token: string, prepared: PreparedConfig): Promise<JWTPayload | undefined> {
  if (!prepared.keySet) return undefined;
  try {
    const header = decodeProtectedHeader(token);
    if (typeof header.alg !== "string" || !USER_TOKEN_ALGORITHMS.includes(header.alg) || !header.kid) return undefined;
    const { payload } = await jwtVerify(token, prepared.keySet, {
      algorithms: USER_TOKEN_ALGORITHMS,
      requiredClaims: ["exp", "sub"],
      issuer: prepared.issuer,
    });
    return typeof payload.sub === "string" && payload.sub !== "" ? payload : undefined;
  } catch {
    return undefined;
  }
}

async function identifyWithPrepared(headers: Headers, prepared: PreparedConfig): Promise<Caller> {
  const authorization = headers.get("authorization");
  const apikey = headers.get("apikey");
  let bearer: string | undefined;
  if (authorization !== null) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return { kind: "nobody", reason: "malformed_authorization" };
    bearer = match[1];
  }

  const isLegacyServiceKey = async (candidate: string) =>
    prepared.legacyServiceRoleDigest !== undefined &&
    sameDigest(await sha256(candidate), prepared.legacyServiceRoleDigest);
  const candidates = [bearer, apikey ?? undefined].filter((c): c is string => c !== undefined && c !== "");

  // 1. A secret key that matches none of the project's: refused, whatever else came with it.
  const secretKeyNames: string[] = [];
  for (const candidate of candidates.filter((c) => c.startsWith("sb_secret_"))) {
    const keyName = await matchSecretKey(candidate, prepared);
    if (keyName === undefined) return { kind: "nobody", reason: "invalid_secret_key" };
    secretKeyNames.push(keyName);
  }

  // 2. A bearer that is neither an API key (`sb_…`) nor the legacy service key is a user token: it
  //    must verify. A user session sent along with a secret key acts as the user (least privilege).
  if (bearer !== undefined && !bearer.startsWith("sb_") && !(await isLegacyServiceKey(bearer))) {
    const claims = await verifyUserToken(bearer, prepared);
    if (!claims) return { kind: "nobody", reason: "invalid_token" };
    return {
      kind: "user",
      userId: claims.sub as string,
      role: typeof claims.role === "string" ? claims.role : "authenticated",
      claims,
    };
  }

  // 3. The service: a secret key, else the exact legacy service_role key (only while configured).
  if (secretKeyNames.length) return { kind: "service", via: "secret_key", keyName: secretKeyNames[0] };
  for (const candidate of candidates) {
    if (await isLegacyServiceKey(candidate)) return { kind: "service", via: "legacy_service_role_key" };
  }
  return { kind: "nobody", reason: "no_credentials" };
}

/** Identifies the caller of one request from its headers (prepares `config` on every call). */
export async function identifyCaller(headers: Headers, config: AuthConfig): Promise<Caller> {
  return identifyWithPrepared(headers, await prepare(config));
}

export interface CallerIdentifier {
  identify(request: Request | Headers): Promise<Caller>;
}

/**
 * The per-worker identifier: the config is prepared once (key digests, the JWKS imported once by
 * jose), then each request is only compared and verified. Typical wiring, in a function:
 *
 *   const callers = createCallerIdentifier(authConfigFromSettings(settings("SUPABASE_SECRET_KEYS", …))); // module level
 *   const caller = await callers.identify(req);
 *   if (caller.kind !== "service") return jsonError(401, "unauthorized");
 */
export function createCallerIdentifier(config: AuthConfig): CallerIdentifier {
  const prepared = prepare(config);
  return {
    async identify(request) {
      return identifyWithPrepared(request instanceof Request ? request.headers : request, await prepared);
    },
  };
}

/** The AuthConfig of settings env.ts has read and validated (the key sets and the JWKS parsed there). */
export function authConfigFromSettings(
  s: Pick<Settings, "SUPABASE_SECRET_KEYS" | "SUPABASE_JWKS" | "SUPABASE_SERVICE_ROLE_KEY">,
): AuthConfig {
  return { secretKeys: s.SUPABASE_SECRET_KEYS, jwks: s.SUPABASE_JWKS, legacyServiceRoleKey: s.SUPABASE_SERVICE_ROLE_KEY };
}

let workerIdentifier: CallerIdentifier | undefined;

/**
 * Who is calling, with this worker's keys: SUPABASE_SECRET_KEYS, SUPABASE_JWKS and, while legacy
 * keys are on, SUPABASE_SERVICE_ROLE_KEY. Throws SettingsError (answered 503 by http.ts `handle`)
 * when those settings are missing or malformed. The identifier is built on the first call.
 */
export function callerOf(request: Request | Headers): Promise<Caller> {
  workerIdentifier ??= createCallerIdentifier(
    authConfigFromSettings(settings("SUPABASE_SECRET_KEYS", "SUPABASE_JWKS", "SUPABASE_SERVICE_ROLE_KEY")),
  );
  return workerIdentifier.identify(request);
}
