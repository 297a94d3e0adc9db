// Run-once shutdown for the entry points (test runner, stack, benchmarks): undo steps registered as
// things get started, run in reverse order exactly once, whoever asks first (the normal end, an
// error, or Ctrl-C / SIGTERM).

export interface Shutdown {
  /** Registers an undo step (run last-in, first-out). Once shutdown has begun, it runs at once. */
  defer(step: () => unknown): void;
  /** Runs the steps, once, however many callers ask; a failing step is logged and the rest still run. */
  run(): Promise<void>;
  /** Shutdown has begun. */
  readonly started: boolean;
  /** A signal started it. */
  readonly interrupted: boolean;
  /**
   * On the first SIGINT/SIGTERM: `onSignal()`, then the steps. The interrupted flow is expected to end
   * by itself once what it waits on is gone; if the process still runs `graceMs` after the steps,
   * `beforeExit()` then `Deno.exit(exitCode)`. Later signals are ignored (cleanup is under way).
   */
  trapSignals(opts: { onSignal?: () => void; exitCode?: number; graceMs?: number; beforeExit?: () => void }): void;
  /** Removes the signal listeners (for a caller that returns instead of exiting). */
  releaseSignals(): void;
}

export function createShutdown(log: (line: string) => void = (l) => console.error(l)): Shutdown {
  const steps: (() => unknown)[] = [];
  let running: Promise<void> | undefined;
  let interrupted = false;
  let listener: (() => void) | undefined;
  const runStep = async (step: () => unknown) => {
    try {
      await step();
    } catch (e) {
      log(`cleanup: ${e instanceof Error ? e.message : e}`);
    }
  };
  const shutdown: Shutdown = {
    defer(step) {
      if (running) void runStep(step);
      else steps.push(step);
    },
    run() {
      running ??= (async () => {
        while (steps.length) await runStep(steps.pop()!);
      })();
      return running;
    },
    get started() {
      return running !== undefined;
    },
    get interrupted() {
      return interrupted;
    },
    trapSignals({ onSignal, exitCode = 130, graceMs = 0, beforeExit }) {
      shutdown.releaseSignals();
      listener = () => {
        if (interrupted) return;
        interrupted = true;
        onSignal?.();
        void shutdown.run().then(() =>
          setTimeout(() => {
            beforeExit?.();
            Deno.exit(exitCode);
          }, graceMs)
        );
      };
      Deno.addSignalListener("SIGINT", listener);
      Deno.addSignalListener("SIGTERM", listener);
    },
    releaseSignals() {
      if (!listener) return;
      Deno.removeSignalListener("SIGINT", listener);
      Deno.removeSignalListener("SIGTERM", listener);
      listener = undefined;
    },
  };
  return shutdown;
}
