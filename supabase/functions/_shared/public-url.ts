// The public URL of a function, as the provider that called it (Stripe, Twilio) sees and signs it.
//
// Behind Supabase's gateway (and the local one) a function's req.url is internal: its path is
// /<name>/<rest>, and its host is not necessarily the public one (tunnels, proxies). Providers
// sign the URL they called, so signature checks must rebuild it from FUNCTIONS_PUBLIC_URL:
//
//   FUNCTIONS_PUBLIC_URL  public base URL of the functions, e.g.
//                         https://<project-ref>.supabase.co/functions/v1 (hosted) or a tunnel's
//                         https://<id>.example.dev/functions/v1 (local). Default:
//                         ${SUPABASE_URL}/functions/v1, right on hosted Supabase.
//
// Both are read through env.ts: a malformed one throws SettingsError (→ 503 naming it).
import { type SettingsSource, settingsSource } from "./env.ts";

/** FUNCTIONS_PUBLIC_URL, else ${SUPABASE_URL}/functions/v1; no trailing slash. */
export function functionsPublicBaseUrl(source: SettingsSource = settingsSource()): string {
  const { FUNCTIONS_PUBLIC_URL } = source.get("FUNCTIONS_PUBLIC_URL");
  if (FUNCTIONS_PUBLIC_URL) return FUNCTIONS_PUBLIC_URL;
  return `${source.get("SUPABASE_URL").SUPABASE_URL}/functions/v1`;
}

/**
 * `${FUNCTIONS_PUBLIC_URL}/<name>/<rest>?<query>` for this request, with the path and query string
 * exactly as received (sliced from req.url, not re-encoded by `new URL()`), as signatures need.
 */
export function publicRequestUrl(req: Request, source: SettingsSource = settingsSource()): string {
  const url = req.url;
  const pathStart = url.indexOf("/", url.indexOf("://") + 3);
  let target = pathStart < 0 ? "/" : url.slice(pathStart);
  // Tolerate a runtime that keeps the gateway prefix in req.url.
  if (target.startsWith("/functions/v1/")) target = target.slice("/functions/v1".length);
  return functionsPublicBaseUrl(source) + target;
}
