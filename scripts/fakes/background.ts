// `npm run stack -- up` leaves the stack running after it returns: the fakes then run as their own
// detached processes (as the gateway does), found again through pid files by `stack down|status`.
import { join } from "node:path";
import { REPO_ROOT } from "../local-supabase/cluster.ts";
import { processAlive } from "../local-supabase/gateway/spawn.ts";

const TWILIO_FAKE_MAIN = join(REPO_ROOT, "scripts", "fakes", "twilio.ts");
const STRIPE_FAKE_MAIN = join(REPO_ROOT, "scripts", "fakes", "stripe.ts");
const FAKE_MAINS = [TWILIO_FAKE_MAIN, STRIPE_FAKE_MAIN];

interface DetachedFake {
  port: number;
  envFile: string;
  logFile: string;
  pidFile: string;
}

/** Starts a fake's main detached on 127.0.0.1:`port`; resolves once it answers. */
async function spawnFakeDetached(name: string, main: string, opts: DetachedFake, extraArgs: string[] = []): Promise<void> {
  const cmd = [
    Deno.execPath(), "run", "-A", "--config", join(REPO_ROOT, "deno.json"),
    main, "--env-file", opts.envFile, "--port", String(opts.port), ...extraArgs,
  ];
  const child = new Deno.Command("setsid", {
    args: ["sh", "-c", `log=$1; shift; exec "$@" >>"$log" 2>&1 </dev/null`, "sh", opts.logFile, ...cmd],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  await Deno.writeTextFile(opts.pidFile, `${child.pid}\n`);
  // Bounded wait: a fake that does not answer within 60 s is reported, not waited on forever.
  for (let i = 0; i < 600; i++) {
    if (!processAlive(child.pid)) break;
    const ok = await fetch(`http://127.0.0.1:${opts.port}/`).then((r) => r.body?.cancel().then(() => r.ok), () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopBackgroundFake(opts.pidFile);
  throw new Error(`the fake ${name} did not start: see ${opts.logFile}`);
}

/** Starts `scripts/fakes/twilio.ts` detached on 127.0.0.1:`port`; resolves once it answers. */
export async function spawnTwilioFakeDetached(opts: DetachedFake): Promise<void> {
  await spawnFakeDetached("Twilio", TWILIO_FAKE_MAIN, opts);
}

/** Starts `scripts/fakes/stripe.ts` detached (events POSTed to `webhookUrl`); resolves once it answers. */
export async function spawnStripeFakeDetached(opts: DetachedFake & { webhookUrl: string }): Promise<void> {
  await spawnFakeDetached("Stripe", STRIPE_FAKE_MAIN, opts, ["--webhook-url", opts.webhookUrl]);
}

/** The recorded pid while it is still one of our fakes (a stale file's pid may belong to anything now). */
export async function runningFakePid(pidFile: string): Promise<number | null> {
  const pid = Number((await Deno.readTextFile(pidFile).catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    return FAKE_MAINS.some((main) => argv.includes(main)) ? pid : null;
  } catch {
    return processAlive(pid) ? pid : null;
  }
}

export async function stopBackgroundFake(pidFile: string): Promise<void> {
  const pid = await runningFakePid(pidFile);
  if (pid) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* already gone */ }
    for (let i = 0; i < 50 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
  await Deno.remove(pidFile).catch(() => {});
}
