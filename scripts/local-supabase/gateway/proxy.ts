// Forwards one request to a worker exactly as received. fetch() would not do: it normalises the
// URL (resolves dot segments, percent-encodes ' and "), replaces Host and adds accept,
// accept-language and user-agent headers the client never sent. node:http writes the request
// target and headers as given, streams the body unchanged and pools keep-alive connections.
import http from "node:http";

/** Connection-level headers: they describe the client's hop, not the request. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
  "expect",
]);

/** Bodies up to this size are read whole (one write, one Response buffer): cheaper than streaming. */
const BUFFER_LIMIT = 1024 * 1024;

export interface ForwardRequest {
  port: number;
  method: string;
  /** Raw request target for the worker, e.g. `/echo/a?b=1&b=2`, sent as is. */
  target: string;
  /** The client's headers, forwarded minus hop-by-hop ones... */
  headers: Headers;
  /** ...plus these (lower-case names), which replace the client's. */
  extraHeaders: Record<string, string>;
  body: ReadableStream<Uint8Array> | null;
  /** The whole body when the gateway already read it (small requests with a content-length). */
  bufferedBody?: Uint8Array;
  signal: AbortSignal;
  /** The worker must start its response within this time, else WorkerTimeout. */
  timeoutMs?: number;
}

export class WorkerUnreachable extends Error {
  /** True when the worker refused the connection: nothing of the request reached it. */
  constructor(message: string, readonly refused = false) {
    super(message);
  }
}
export class WorkerTimeout extends Error {}

/** True when the request declares a body small enough to read whole before forwarding. */
export function worthBuffering(headers: Headers): boolean {
  const length = headers.get("content-length");
  return length !== null && /^\d+$/.test(length) && Number(length) <= BUFFER_LIMIT;
}

export class WorkerProxy {
  #agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });

  forward(r: ForwardRequest): Promise<Response> {
    const headers: Record<string, string> = {};
    r.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) headers[name] = value;
    });
    Object.assign(headers, r.extraHeaders);
    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };
      const upstream = http.request({
        host: "127.0.0.1",
        port: r.port,
        method: r.method,
        path: r.target,
        headers,
        agent: this.#agent,
      }, (res) => {
        const responseHeaders = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = raw[i].toLowerCase();
          if (!HOP_BY_HOP.has(name) && name !== "transfer-encoding") responseHeaders.append(raw[i], raw[i + 1]);
        }
        const status = res.statusCode ?? 502;
        const init = { status, statusText: res.statusMessage, headers: responseHeaders };
        clearTimeout(timer);
        if (r.method === "HEAD" || status === 204 || status === 304) {
          settled = true;
          res.resume();
          resolve(new Response(null, init));
          return;
        }
        const length = Number(res.headers["content-length"] ?? NaN);
        if (length <= BUFFER_LIMIT) {
          // Small and sized: collect it, so Deno.serve sends one buffer instead of pulling a JS stream.
          const chunks: Uint8Array[] = [];
          res.on("data", (chunk: Uint8Array) => chunks.push(new Uint8Array(chunk)));
          res.on("end", () => {
            settled = true;
            resolve(new Response(concat(chunks, length), init));
          });
          res.on("error", (e: Error) => fail(new WorkerUnreachable(e.message)));
          res.on("aborted", () => fail(new WorkerUnreachable("worker closed the response early")));
          return;
        }
        settled = true;
        resolve(new Response(readableFrom(res), init));
      });
      upstream.on("error", (e: Error & { code?: string }) => {
        fail(new WorkerUnreachable(e.message, e.code === "ECONNREFUSED"));
      });
      if (r.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (settled) return;
          fail(new WorkerTimeout(`no response within ${r.timeoutMs} ms`));
          upstream.destroy(); // the worker sees the client go away; it keeps serving others
        }, r.timeoutMs);
      }
      const onAbort = () => upstream.destroy(new Error("gateway shutting down"));
      r.signal.addEventListener("abort", onAbort, { once: true });
      upstream.on("close", () => r.signal.removeEventListener("abort", onAbort));
      if (r.bufferedBody) upstream.end(r.bufferedBody);
      else pipeBody(r.body, upstream).catch((e) => upstream.destroy(e));
    });
  }

  close() {
    this.#agent.destroy();
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk.subarray(0, length - at), at);
    at += chunk.length;
  }
  return out;
}

/** Writes the client's body chunks to the worker unchanged, honouring backpressure. */
async function pipeBody(body: ReadableStream<Uint8Array> | null, upstream: http.ClientRequest): Promise<void> {
  if (!body) {
    upstream.end();
    return;
  }
  for await (const chunk of body) {
    if (!upstream.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          upstream.off("drain", done);
          upstream.off("close", done);
          resolve();
        };
        upstream.on("drain", done);
        upstream.on("close", done);
      });
    }
    if (upstream.destroyed) return;
  }
  upstream.end();
}

/** The worker's response body as a web stream, pausing the socket when the client reads slowly. */
function readableFrom(res: http.IncomingMessage): ReadableStream<Uint8Array> {
  let finished = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      res.on("data", (chunk: Uint8Array) => {
        if (finished) return;
        controller.enqueue(new Uint8Array(chunk)); // a copy: node may reuse the chunk's memory
        if ((controller.desiredSize ?? 1) <= 0) res.pause();
      });
      res.on("end", () => {
        if (finished) return;
        finished = true;
        controller.close();
      });
      const abort = (e: Error) => {
        if (finished) return;
        finished = true;
        controller.error(e);
      };
      res.on("error", abort);
      res.on("aborted", () => abort(new Error("worker closed the response early")));
    },
    pull() {
      res.resume();
    },
    cancel() {
      finished = true;
      res.destroy();
    },
  });
}
