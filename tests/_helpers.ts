// Shared helpers for the Deno tests. The tests run against the REAL local stack: the orchestrator
// sets SUPABASE_URL (the gateway), SUPABASE_DB_URL, SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY,
// SUPABASE_JWKS, the legacy SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY and SUPABASE_JWT_SECRET, and
// LOCAL_STACK_KEYS_FILE (the stack's keys.json, whose private signing key mints user tokens), and has
// the gateway running with the fixture functions:
//   deno run -A scripts/local-supabase/gateway/main.ts --functions supabase/functions=supabase/config.toml \
//     --functions tests/fixtures/functions=tests/fixtures/functions/config.toml \
//     --env-file tests/fixtures/functions/.env.test
import postgres from "postgres";
import { type JSONWebKeySet, SignJWT } from "jose";
import { mintUserSessionToken, readStackKeys, type UserTokenOptions } from "../scripts/local-supabase/keys.ts";

function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(`${name} is not set: run the tests through the test orchestrator (see tests/_helpers.ts)`);
  }
  return value;
}

export const env = {
  get supabaseUrl() {
    return requireEnv("SUPABASE_URL").replace(/\/+$/, "");
  },
  get dbUrl() {
    return requireEnv("SUPABASE_DB_URL");
  },
  get anonKey() {
    return requireEnv("SUPABASE_ANON_KEY");
  },
  get serviceRoleKey() {
    return requireEnv("SUPABASE_SERVICE_ROLE_KEY");
  },
  /** Legacy HS256 secret (the gateway's verify_jwt; never given to functions). */
  get jwtSecret() {
    return requireEnv("SUPABASE_JWT_SECRET");
  },
  get publishableKey() {
    return requireEnv("SUPABASE_PUBLISHABLE_KEY");
  },
  get secretKey() {
    return requireEnv("SUPABASE_SECRET_KEY");
  },
  get jwks(): JSONWebKeySet {
    return JSON.parse(requireEnv("SUPABASE_JWKS"));
  },
  get keysFile() {
    return requireEnv("LOCAL_STACK_KEYS_FILE");
  },
};

/**
 * A user session token as GoTrue issues it (ES256, the stack's signing key and kid, iss
 * `${SUPABASE_URL}/auth/v1`, aud "authenticated", session_id, aal…), as `npm run stack -- token` mints it.
 */
export async function mintUserToken(
  userId: string = crypto.randomUUID(),
  opts: Omit<UserTokenOptions, "userId" | "supabaseUrl"> = {},
): Promise<string> {
  const keys = await readStackKeys(env.keysFile);
  return await mintUserSessionToken(keys.signingKey, { supabaseUrl: env.supabaseUrl, userId, ...opts });
}

/** `${SUPABASE_URL}/functions/v1/<name><rest>`; `rest` is appended verbatim (path and/or ?query). */
export function functionUrl(name: string, rest = ""): string {
  return `${env.supabaseUrl}/functions/v1/${name}${rest}`;
}

/** A legacy HS256 JWT, signed with `secret` (the project's legacy JWT secret unless told otherwise). */
export async function mintJwt(
  claims: Record<string, unknown>,
  opts: { secret?: string; expiresAt?: number; issuedAt?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(opts.issuedAt ?? now)
    .setExpirationTime(opts.expiresAt ?? now + 3600)
    .sign(new TextEncoder().encode(opts.secret ?? env.jwtSecret));
}

export type Sql = postgres.Sql;

/** Runs `fn` with a small connection pool as `postgres` (not a superuser, as on hosted), and always closes the pool. */
export async function withDb<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(env.dbUrl, { max: 2, onnotice: () => {}, connection: { application_name: "deno tests" } });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export interface RecordedHit {
  method: string;
  path: string;
  query: string;
  headers: Headers;
  body: Uint8Array;
}

export interface HitServer {
  /** http://127.0.0.1:<port> */
  url: string;
  hits: RecordedHit[];
  hitsFor(path: string): RecordedHit[];
  close(): Promise<void>;
}

/**
 * A local HTTP server on 127.0.0.1:<free port> that records every request it receives, to count
 * what really went over the wire. `respond` decides the answer (default: 200 JSON {ok:true}).
 */
export function startHitServer(
  respond: (hit: RecordedHit) => Response | Promise<Response> = () => Response.json({ ok: true }),
): Promise<HitServer> {
  const hits: RecordedHit[] = [];
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => {
        resolve({
          url: `http://127.0.0.1:${port}`,
          hits,
          hitsFor: (path) => hits.filter((h) => h.path === path),
          close: () => server.shutdown(),
        });
      },
    }, async (req) => {
      const url = new URL(req.url);
      const hit: RecordedHit = {
        method: req.method,
        path: url.pathname,
        query: url.search,
        headers: req.headers,
        body: new Uint8Array(await req.arrayBuffer()),
      };
      hits.push(hit);
      return await respond(hit);
    });
  });
}

/** Polls `probe` until it returns a value other than undefined/null/false, or fails after timeoutMs. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${what}`);
    await delay(opts.intervalMs ?? 100);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What the echo fixtures (tests/fixtures/functions/_shared/echo.ts) answer. */
export interface EchoReply {
  function: string;
  method: string;
  url: string;
  path: string;
  query: string | null;
  headers: [string, string][];
  bodyLength: number;
  bodySha256: string;
  env: {
    names: string[];
    fixtureSecret: string | null;
    fixtureExported: string | null;
    fixtureQuoted: string | null;
    fixtureSingle: string | null;
    fixtureInline: string | null;
    jwtSecretVisible: boolean;
    gatewayPortVisible: boolean;
    supabaseUrl: string | null;
    anonKeySet: boolean;
    serviceRoleKeySet: boolean;
    dbUrlSet: boolean;
    functionsPublicUrl: string | null;
    publishableKeys: string | null;
    secretKeysSha256: string | null;
    jwks: string | null;
  };
  functionsPublicBaseUrl: string;
  publicUrl: string;
  pid: number;
}

export function header(reply: EchoReply, name: string): string | undefined {
  return reply.headers.find(([k]) => k === name.toLowerCase())?.[1];
}

/**
 * Sends one raw HTTP/1.1 request over TCP (`head` uses \n line ends; each char is one byte, so
 * "\xe9" sends byte 0xE9) and returns the response. fetch() cannot test byte-exact pass-through:
 * it normalises the URL (dot segments, quotes) and adds headers before sending.
 */
export async function rawHttp(
  baseUrl: string,
  head: string,
  body: Uint8Array = new Uint8Array(),
): Promise<{ status: number; headers: Headers; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  let bytes: Uint8Array;
  try {
    await conn.write(latin1(head.replaceAll("\n", "\r\n") + "\r\n"));
    if (body.length) await conn.write(body);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    bytes = concat(chunks);
  } finally {
    conn.close();
  }
  const headEnd = indexOfCrlfCrlf(bytes);
  const [statusLine, ...lines] = String.fromCharCode(...bytes.subarray(0, headEnd)).split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let payload = bytes.subarray(headEnd + 4);
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") payload = dechunk(payload);
  return { status: Number(statusLine.split(" ")[1]), headers, body: new TextDecoder().decode(payload) };
}

export function latin1(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

function indexOfCrlfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  throw new Error("no end of headers in the response");
}

/** Decodes an HTTP/1.1 chunked body (no trailers expected). */
function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    let eol = at;
    while (!(bytes[eol] === 13 && bytes[eol + 1] === 10)) eol++;
    const size = parseInt(String.fromCharCode(...bytes.subarray(at, eol)), 16);
    if (!size) return concat(parts);
    parts.push(bytes.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

export function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
