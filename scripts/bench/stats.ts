// What every benchmark needs: integer options, medians and percentiles, a sleep.

/** `--name=N` or `--name N` from the arguments (else `fallback`); an integer of at least `min`, or a clear error. */
export function intOption(args: string[], name: string, fallback: number, min: number): number {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  const at = args.indexOf(`--${name}`);
  const text = arg ? arg.slice(name.length + 3) : at >= 0 ? args[at + 1] ?? "" : undefined;
  const value = text === undefined ? fallback : text.trim() === "" ? NaN : Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return value;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The p-quantile (0..1) of an ascending array; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Awaits `running`, or fails once `ms` have passed. On the deadline the caller's cleanup stops the
 * processes under the running work: its failure then is expected, and must not surface as an
 * unhandled rejection that kills the run before cleanup.
 */
export async function withDeadline<T>(running: Promise<T>, ms: number): Promise<T> {
  running.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      running,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`benchmark exceeded ${ms / 60_000} min`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
