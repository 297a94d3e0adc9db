// verify_jwt, as Supabase's edge gateway applies it before a request reaches the function: a
// `Authorization: Bearer <jwt>` header signed HS256 with the project's JWT secret, not expired.
import { jwtVerify } from "jose";

export type JwtCheck = { ok: true; claims: Record<string, unknown> } | { ok: false; response: Response };

function unauthorized(body: Record<string, unknown>, requestId: string): Response {
  return Response.json(body, { status: 401, headers: { "x-request-id": requestId } });
}

/** The HMAC key, imported once: jose would otherwise import the raw secret on every request. */
export function jwtKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
}

/** Checks the Authorization header; on failure returns the 401 Supabase would send. */
export async function checkJwt(authorization: string | null, key: CryptoKey, requestId: string): Promise<JwtCheck> {
  if (!authorization) {
    return { ok: false, response: unauthorized({ msg: "Error: Missing authorization header" }, requestId) };
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) {
    return { ok: false, response: unauthorized({ msg: "Error: Auth header is not 'Bearer {token}'" }, requestId) };
  }
  try {
    // jose checks the signature, the algorithm (HS256 only: no "none", no RS/HS confusion) and exp/nbf.
    const { payload } = await jwtVerify(match[1], key, { algorithms: ["HS256"] });
    return { ok: true, claims: payload as Record<string, unknown> };
  } catch {
    return { ok: false, response: unauthorized({ code: 401, message: "Invalid JWT" }, requestId) };
  }
}
