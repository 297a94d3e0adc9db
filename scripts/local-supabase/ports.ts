// The stack's ports, and whether one can be listened on.
//
// Ports come from supabase/config.toml ([api] port, [db] port), as `supabase start` reads them;
// STACK_API_PORT / STACK_DB_PORT override them (several stacks side by side).
//
// "Can we listen on it?" has three answers, not two. A port a program listens on is taken. A port
// only held by a closing connection is not: when that connection's socket was a *client's* (an
// ephemeral port that happens to be 54321/54322 — they lie in Linux's default ephemeral range
// 32768–60999), the kernel refuses to bind it, even with SO_REUSEADDR (which Deno and PostgreSQL
// both set, and which covers a server's own TIME-WAIT sockets), until TIME-WAIT ends (60 s). Such a
// port is worth waiting for, not an error about "another program".
import { parse as parseToml } from "smol-toml";
import { fileURLToPath } from "node:url";

export const CONFIG_TOML = fileURLToPath(new URL("../../supabase/config.toml", import.meta.url));

export interface StackPorts {
  /** [api] port: the functions gateway (http://127.0.0.1:<api>/functions/v1). */
  api: number;
  /** [db] port: PostgreSQL. */
  db: number;
}

function validPort(value: unknown, where: string): number {
  const port = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${where} must be a TCP port (1-65535), got ${JSON.stringify(value)}`);
  }
  return port;
}

/** The stack's ports: config.toml's, unless STACK_API_PORT / STACK_DB_PORT say otherwise. */
export async function configuredPorts(
  configFile = CONFIG_TOML,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<StackPorts> {
  // deno-lint-ignore no-explicit-any
  const config = parseToml(await Deno.readTextFile(configFile)) as any;
  const pick = (override: string, section: string) => {
    const given = env(override);
    return given
      ? validPort(given, override)
      : validPort(config?.[section]?.port, `[${section}] port in ${configFile}`);
  };
  return { api: pick("STACK_API_PORT", "api"), db: pick("STACK_DB_PORT", "db") };
}

export type PortState =
  /** Bindable now. */
  | "free"
  /** Nothing listens, but closing connections hold it (TIME-WAIT): bindable within 60 s. */
  | "closing"
  /** Something accepts connections on it. */
  | "in-use";

/** What holds `port` on `hostname` (the stack listens on 127.0.0.1 only). */
export async function probePort(port: number, hostname = "127.0.0.1"): Promise<PortState> {
  try {
    Deno.listen({ hostname, port }).close();
    return "free";
  } catch (e) {
    if (!(e instanceof Deno.errors.AddrInUse)) throw e;
  }
  // The listen error alone cannot tell a listener from a lingering connection: whether anything
  // accepts a connection can.
  try {
    const conn = await Deno.connect({ hostname, port });
    conn.close();
    return "in-use";
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return "closing";
    throw e;
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** The kernel's ephemeral port range (net.ipv4.ip_local_port_range), when readable. */
async function ephemeralRange(): Promise<[number, number] | undefined> {
  try {
    const [low, high] = (await Deno.readTextFile("/proc/sys/net/ipv4/ip_local_port_range")).trim().split(/\s+/)
      .map(Number);
    return [low, high];
  } catch {
    return undefined;
  }
}

/**
 * Returns once `port` can be listened on. Throws at once when a program listens on it (`what` and
 * `override` name it and the setting that moves it); waits (saying so) while only closing
 * connections hold it, up to `maxWaitMs` (TIME-WAIT lasts 60 s on Linux).
 */
export async function waitForPort(
  port: number,
  what: string,
  opts: { override?: string; log?: (line: string) => void; maxWaitMs?: number; hostname?: string } = {},
): Promise<void> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const taken = () =>
    new Error(
      `port ${port} (${what}) is taken by another program` +
        (opts.override ? ` (set ${opts.override} to use another one)` : ""),
    );
  let state = await probePort(port, opts.hostname);
  if (state === "free") return;
  if (state === "in-use") throw taken();
  const range = await ephemeralRange();
  const hint = range && port >= range[0] && port <= range[1]
    ? `; the port is in the kernel's ephemeral range ${range[0]}-${range[1]}, ` +
      `\`sysctl -w net.ipv4.ip_local_reserved_ports=${port}\` keeps clients off it`
    : "";
  log(
    `port ${port} (${what}) is held by connections closing on it (TCP TIME-WAIT): waiting for the kernel to release it${hint}`,
  );
  const maxWaitMs = opts.maxWaitMs ?? 65_000;
  for (let waited = 0; waited < maxWaitMs; waited += 500) {
    await sleep(500);
    state = await probePort(port, opts.hostname);
    if (state === "free") return;
    if (state === "in-use") throw taken();
  }
  throw new Error(`port ${port} (${what}) is still not free after ${maxWaitMs / 1000} s, though nothing listens on it`);
}
