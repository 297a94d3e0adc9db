// verify_jwt, as Supabase's edge gateway applies it before a request reaches a function, after the
// Supabase CLI's runtime (apps/cli-go/internal/functions/serve/templates/main.ts, verifyHybridJWT):
// `Authorization: Bearer <jwt>` where the JWT is either
//   - ES256 / RS256, signed by a key of the project's JWKS (user sessions from GoTrue), or
//   - HS256, signed with the legacy JWT secret (the legacy anon / service_role keys, old sessions).
// The algorithm in the token's header only chooses which check to run; each check pins its own
// algorithms and key material, so there is no algorithm confusion ("none", HS256 signed with a
// public key, …). Expiry (`exp`, `nbf`) is checked by jose. The new API keys (`sb_…`) are not JWTs:
// verify_jwt refuses them, as on hosted (functions called with them set verify_jwt = false).
//
// Self-contained (jose only), so it can run in the gateway or in a worker's wrapper.
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify, type JWTVerifyGetKey } from "jose";

export type JwtCheck = { ok: true; claims: Record<string, unknown> } | { ok: false; response: Response };

export interface JwtVerifierConfig {
  /** Legacy HS256 secret; omitted once legacy keys are switched off (HS256 tokens then fail). */
  legacySecret?: string;
  /** The project's JWKS (public keys only). */
  jwks?: JSONWebKeySet;
}

export interface JwtVerifier {
  /** Resolves the claims of a valid token; rejects otherwise (the reason is for logs only). */
  verify(token: string): Promise<Record<string, unknown>>;
}

const ASYMMETRIC_ALGORITHMS = ["ES256", "RS256"];

/** Members a JWK only has when it holds private or symmetric key material. */
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

/** Throws when a JWKS is not a set of public keys (it is handed to functions and served publicly). */
export function assertPublicJwks(jwks: unknown): asserts jwks is JSONWebKeySet {
  if (typeof jwks !== "object" || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new Error('the JWKS must be a JSON object {"keys": [...]}');
  }
  for (const key of (jwks as { keys: unknown[] }).keys) {
    if (typeof key !== "object" || key === null) throw new Error("the JWKS holds a key that is not an object");
    if (PRIVATE_JWK_MEMBERS.some((m) => m in key)) {
      throw new Error("the JWKS holds private or symmetric key material: publish public keys only");
    }
  }
}

export function createJwtVerifier(config: JwtVerifierConfig): JwtVerifier {
  if (config.jwks) assertPublicJwks(config.jwks);
  const keySet: JWTVerifyGetKey | undefined = config.jwks?.keys.length ? createLocalJWKSet(config.jwks) : undefined;
  // Imported once: jose would otherwise import the raw secret on every request.
  const hmacKey = config.legacySecret
    ? crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(config.legacySecret),
      {
        name: "HMAC",
        hash: "SHA-256",
      },
      false,
      ["verify"],
    )
    : undefined;
  return {
    async verify(token) {
      const { alg } = decodeProtectedHeader(token);
      if (alg === "HS256") {
        if (!hmacKey) throw new Error("HS256 token, but legacy JWT verification is off");
        return (await jwtVerify(token, await hmacKey, { algorithms: ["HS256"] })).payload as Record<string, unknown>;
      }
      if (typeof alg === "string" && ASYMMETRIC_ALGORITHMS.includes(alg)) {
        if (!keySet) throw new Error(`${alg} token, but no JWKS is configured`);
        // GoTrue always names the key that signed a session; a token without a kid is not one of its.
        if (!decodeProtectedHeader(token).kid) throw new Error("asymmetric token without a kid");
        return (await jwtVerify(token, keySet, { algorithms: ASYMMETRIC_ALGORITHMS })).payload as Record<
          string,
          unknown
        >;
      }
      throw new Error(`unsupported alg ${JSON.stringify(alg)}`);
    },
  };
}

function unauthorized(body: Record<string, unknown>, requestId: string): Response {
  return Response.json(body, { status: 401, headers: { "x-request-id": requestId } });
}

/** Checks the Authorization header; on failure returns the 401 Supabase would send. */
export async function checkJwt(
  authorization: string | null,
  verifier: JwtVerifier,
  requestId: string,
): Promise<JwtCheck> {
  if (!authorization) {
    return { ok: false, response: unauthorized({ msg: "Error: Missing authorization header" }, requestId) };
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) {
    return { ok: false, response: unauthorized({ msg: "Error: Auth header is not 'Bearer {token}'" }, requestId) };
  }
  try {
    return { ok: true, claims: await verifier.verify(match[1]) };
  } catch {
    return { ok: false, response: unauthorized({ code: 401, message: "Invalid JWT" }, requestId) };
  }
}
