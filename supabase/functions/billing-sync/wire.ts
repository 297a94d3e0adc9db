// billing-sync's HTTP layer under the Stripe SDK: every request it makes goes through `wire.fetch`,
// given to the SDK as its fetch function (Stripe.createFetchHttpClient(fetch)), so that
//
//   * each request first takes a token from a client-side token bucket (BILLING_SYNC_RATE_LIMIT
//     requests per second, burst of the same size): a run stays well under Stripe's own limits
//     (25 requests/s in test mode, 100 in live mode, shared with the webhook's fetches and checkout);
//     a 429 halves the bucket's rate for the rest of the invocation;
//   * every request is counted, the SDK's own retries (connection errors, 5xx) included, so the
//     run's api_calls is what Stripe counts against the rate limit;
//   * the Date of each response is kept: a listed object is stored as seen at that time (the
//     watermark the SQL orders copies by).
//
// Waiting after a 429 is the engine's job (engine.ts: Retry-After, else exponential backoff, then
// the page is asked again from the checkpoint), not this layer's: a wait here would run inside the
// SDK's per-attempt timeout.

/** Token bucket: `rate` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Requests wait their turn in order: a chain of promises. */
  #queue: Promise<void> = Promise.resolve();

  constructor(rate: number, opts: { burst?: number; now?: () => number; sleep?: (ms: number) => Promise<void> } = {}) {
    if (!(rate > 0)) throw new RangeError("rate must be positive");
    this.#rate = rate;
    this.#burst = Math.max(1, opts.burst ?? Math.ceil(rate));
    this.#tokens = this.#burst;
    this.#now = opts.now ?? (() => performance.now());
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#last = this.#now();
  }

  get rate(): number {
    return this.#rate;
  }

  /** Halves the rate (not below `floor`) after a 429: Stripe is telling us we are too fast. */
  slowDown(floor = 1): void {
    this.#refill();
    this.#rate = Math.max(floor, this.#rate / 2);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
  }

  /** Resolves when a token is available (and takes it). */
  take(): Promise<void> {
    const turn = this.#queue.then(async () => {
      this.#refill();
      while (this.#tokens < 1) {
        await this.#sleep(Math.ceil(((1 - this.#tokens) / this.#rate) * 1000));
        this.#refill();
      }
      this.#tokens -= 1;
    });
    this.#queue = turn.catch(() => {});
    return turn;
  }
}

/** The wait a 429 asks for: Retry-After (delta-seconds or HTTP-date) in ms, else undefined. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 16_000;

/** Exponential backoff with jitter for the n-th retry (0-based): [1/2, 1] x min(16 s, 1 s x 2^n). */
export function backoffMs(n: number, random = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** n);
  return Math.round(ceiling * (0.5 + random() / 2));
}

export interface WireOptions {
  /** Requests per second (token bucket); burst of the same size. */
  ratePerSecond: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface Wire {
  /** The fetch function to give the SDK. */
  fetch: typeof fetch;
  bucket: TokenBucket;
  /** Requests sent (each attempt counts). */
  readonly calls: number;
  /** 429 answers met. */
  readonly rateLimited: number;
  /** Earliest response Date (epoch ms) since the last mark(); undefined if none carried one. */
  readonly earliestDateSinceMark: number | undefined;
  /** The Date of the last response (epoch ms), if it had one. */
  readonly lastDate: number | undefined;
  /** Starts a new window for earliestDateSinceMark (seeded with the last response's Date). */
  mark(): void;
}

/** A counting, rate-limited fetch for the Stripe SDK. */
export function createWire(opts: WireOptions): Wire {
  const baseFetch = opts.fetch ?? globalThis.fetch;
  const bucket = new TokenBucket(opts.ratePerSecond, { sleep: opts.sleep });
  let calls = 0;
  let rateLimited = 0;
  let lastDate: number | undefined;
  let earliest: number | undefined;

  const wireFetch: typeof fetch = async (input, init) => {
    await bucket.take();
    calls++;
    const res = await baseFetch(input, init);
    const at = Date.parse(res.headers.get("date") ?? "");
    if (Number.isFinite(at)) {
      lastDate = at;
      earliest = earliest === undefined ? at : Math.min(earliest, at);
    }
    if (res.status === 429) {
      rateLimited++;
      bucket.slowDown();
    }
    return res;
  };

  return {
    fetch: wireFetch,
    bucket,
    get calls() {
      return calls;
    },
    get rateLimited() {
      return rateLimited;
    },
    get earliestDateSinceMark() {
      return earliest;
    },
    get lastDate() {
      return lastDate;
    },
    mark() {
      earliest = lastDate;
    },
  };
}
