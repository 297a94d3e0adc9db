// The local pg_net executor. pg_net is not packaged for Debian, so scripts/local-supabase/pg_net/pg_net.sql
// reproduces its SQL side (net.http_post & co. insert into net.http_request_queue) and this worker
// plays its background worker: it takes committed requests from the queue, sends them and records
// each outcome in net._http_response, as pg_net does.
//
// Delivery is at most once: a request is deleted from the queue, and that deletion committed,
// before it is sent. A request whose transaction rolled back never existed for us; a committed one
// is sent exactly once unless the worker dies between claiming and sending it.
//
// Started by scripts/local-supabase/gateway/main.ts (unless --no-net-worker), or alone:
//   SUPABASE_DB_URL=postgresql://... deno run -A scripts/local-supabase/pg_net/worker.ts
import postgres from "postgres";

export interface NetWorkerOptions {
  dbUrl: string;
  log?: (line: string) => void;
  /** Safety net besides LISTEN (a missed notification, requests queued while we were down). */
  pollIntervalMs?: number;
  /** How many requests one claim takes; pg_net's default batch size is 200. */
  batchSize?: number;
}

export interface NetWorker {
  /** Processes whatever is queued now; resolves when the queue was found empty. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

interface QueuedRequest {
  id: string; // bigint: kept as text, never as a JS number
  method: "GET" | "POST" | "DELETE"; // net.http_method allows any case: upper-cased when claimed
  url: string;
  headers: Record<string, unknown> | null;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

/** pg_net keeps responses for 6 hours (pg_net.ttl) and deletes older ones. */
const RESPONSE_TTL = "6 hours";
const CLEANUP_EVERY_MS = 60_000;

export async function startNetWorker(options: NetWorkerOptions): Promise<NetWorker> {
  const log = options.log ?? ((line: string) => console.error(line));
  const batchSize = options.batchSize ?? 200;
  const sql = postgres(options.dbUrl, {
    max: 4,
    onnotice: () => {},
    connection: { application_name: "local pg_net worker" },
  });
  let closed = false;
  let draining: Promise<void> | null = null;
  let wakeAgain = false;
  const inFlight = new Set<Promise<void>>();
  let lastError = "";

  const claim = (limit: number) =>
    sql<QueuedRequest[]>`
      delete from net.http_request_queue
       where id in (select id from net.http_request_queue order by id limit ${limit} for update skip locked)
      returning id::text, upper(method) as method, url, headers, body, timeout_milliseconds`;

  async function send(request: QueuedRequest): Promise<void> {
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (value !== null && value !== undefined) headers.set(name, String(value));
    }
    let row: Record<string, unknown>;
    try {
      const response = await fetch(request.url, {
        method: request.method,
        headers,
        body: request.body && request.method !== "GET" ? new Uint8Array(request.body) : undefined,
        redirect: "manual", // pg_net (libcurl defaults) does not follow redirects
        // The timeout covers the whole exchange, body included, as libcurl's CURLOPT_TIMEOUT_MS.
        signal: AbortSignal.timeout(request.timeout_milliseconds),
      });
      const content = await response.text();
      const responseHeaders: Record<string, string> = {};
      response.headers.forEach((value, name) => responseHeaders[name] = value);
      row = {
        id: request.id,
        status_code: response.status,
        content_type: response.headers.get("content-type"),
        headers: sql.json(responseHeaders),
        content,
        timed_out: false,
        error_msg: null,
      };
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      row = {
        id: request.id,
        status_code: null,
        content_type: null,
        headers: null,
        content: null,
        timed_out: timedOut,
        error_msg: timedOut
          ? `Timeout of ${request.timeout_milliseconds} ms reached`
          : (error instanceof Error ? error.message : String(error)),
      };
    }
    try {
      await sql`insert into net._http_response ${
        sql(row, "id", "status_code", "content_type", "headers", "content", "timed_out", "error_msg")
      }`;
    } catch (error) {
      log(`[net] request ${request.id}: could not record the response: ${(error as Error).message}`);
    }
  }

  async function drainOnce(): Promise<void> {
    while (!closed) {
      // At most batchSize requests in flight, as pg_net works batch by batch: a claimed request is
      // gone from the queue, so claiming far ahead of sending would only widen what a crash loses.
      while (inFlight.size >= batchSize) await Promise.race(inFlight);
      const room = batchSize - inFlight.size;
      const batch = await claim(room);
      for (const request of batch) {
        const sending = send(request).finally(() => inFlight.delete(sending));
        inFlight.add(sending);
      }
      if (batch.length < room) return;
    }
  }

  /** Single-flight: a wake-up during a drain makes that drain look again instead of racing it. */
  function wake(): Promise<void> {
    if (closed) return Promise.resolve();
    if (draining) {
      wakeAgain = true;
      return draining;
    }
    draining = (async () => {
      do {
        wakeAgain = false;
        try {
          await drainOnce();
          lastError = "";
        } catch (error) {
          const message = (error as Error).message;
          if (message !== lastError) log(`[net] claiming queued requests failed: ${message}`);
          lastError = message;
        }
      } while (wakeAgain && !closed);
    })().finally(() => draining = null);
    return draining;
  }

  // Throws when the database is unreachable: the caller should not start half-working.
  const subscription = await sql.listen("net_http_request_queue", () => void wake(), () => void wake());
  const poll = setInterval(() => void wake(), options.pollIntervalMs ?? 1000);
  const cleanup = setInterval(() => {
    sql`delete from net._http_response where created < now() - ${RESPONSE_TTL}::interval`
      .catch((e) => log(`[net] response cleanup failed: ${e.message}`));
  }, CLEANUP_EVERY_MS);

  return {
    drain: async () => {
      await wake();
      await Promise.allSettled([...inFlight]);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      clearInterval(cleanup);
      await subscription.unlisten().catch(() => {});
      await draining;
      // Claimed requests are no longer in the queue: finish sending them (each has its timeout).
      await Promise.allSettled([...inFlight]);
      await sql.end({ timeout: 5 });
    },
  };
}

if (import.meta.main) {
  const dbUrl = Deno.env.get("SUPABASE_DB_URL");
  if (!dbUrl) {
    console.error("net-worker: set SUPABASE_DB_URL");
    Deno.exit(2);
  }
  const worker = await startNetWorker({ dbUrl });
  console.error("net-worker: listening on net_http_request_queue");
  const stop = async () => {
    await worker.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
