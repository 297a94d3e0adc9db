// A function whose settings are wrong answers 503 naming each wrong setting and why, and neither
// its response nor anything it logs holds the value: env.ts + http.ts through a real gateway and
// worker. The gateway is started here, with an env file of its own, so the deliberately wrong
// values reach no other function (env files apply to every function a gateway serves).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startGateway } from "../../scripts/local-supabase/gateway/main.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/functions", import.meta.url));

// Fake values, wrong on purpose: a publishable key where the secret key belongs, a token that is not hex.
const WRONG_STRIPE_SECRET_KEY = ["pk", "live", "51SettingsFixtureNotARealKey7c2d"].join("_"); // built at run time: secret scanners
const WRONG_TWILIO_AUTH_TOKEN = "SettingsFixtureToken-not-hex-93ab";

/** Whether `text` holds `value` or an 8-character slice of it. */
function leaks(text: string, value: string): string | undefined {
  for (let i = 0; i + 8 <= value.length; i++) if (text.includes(value.slice(i, i + 8))) return value.slice(i, i + 8);
}

Deno.test("settings: wrong settings give 503 naming them and why, never their values (response and logs)", async () => {
  const home = await Deno.makeTempDir({ prefix: "settings-check-" });
  // Only settings-check runs: every other fixture is disabled in this gateway's config.
  const others: string[] = [];
  for await (const entry of Deno.readDir(FIXTURES)) {
    if (entry.isDirectory && !/^[._]/.test(entry.name) && entry.name !== "settings-check") others.push(entry.name);
  }
  const config = join(home, "config.toml");
  await Deno.writeTextFile(
    config,
    "[functions.settings-check]\nverify_jwt = false\n" +
      others.map((name) => `[functions.${name}]\nenabled = false\n`).join(""),
  );
  const envFile = join(home, ".env");
  await Deno.writeTextFile(
    envFile,
    `APP_URL=https://app.example.test\nSTRIPE_SECRET_KEY=${WRONG_STRIPE_SECRET_KEY}\nTWILIO_AUTH_TOKEN=${WRONG_TWILIO_AUTH_TOKEN}\n`,
  );

  const logs: string[] = [];
  const gateway = await startGateway({
    hostname: "127.0.0.1",
    port: 0,
    functionSources: [{ dir: FIXTURES, configFile: config }],
    envFiles: [envFile],
    netWorker: false,
    requestLog: (line) => logs.push(line),
    log: (line) => logs.push(line),
  });
  try {
    assert.deepEqual([...gateway.functions.keys()], ["settings-check"]);
    const res = await fetch(`${gateway.url}/functions/v1/settings-check`, { headers: { "x-request-id": "settings-1" } });
    const text = await res.text();
    assert.equal(res.status, 503, text);
    assert.equal(res.headers.get("x-request-id"), "settings-1");
    assert.deepEqual(JSON.parse(text), {
      settings: [
        { name: "STRIPE_SECRET_KEY", status: "malformed", reason: "is a publishable key: the secret key starts with sk_ or rk_" },
        { name: "TWILIO_AUTH_TOKEN", status: "malformed", reason: "must be 32 lower-case hexadecimal digits" },
      ],
      error: "settings_invalid",
      message: "the function is not configured correctly",
      request_id: "settings-1",
    });

    const report = await fetch(`${gateway.url}/functions/v1/settings-check?report=1`);
    const reportText = await report.text();
    assert.equal(report.status, 200, reportText);
    assert.deepEqual(
      (JSON.parse(reportText) as { name: string; status: string }[]).map((r) => [r.name, r.status]),
      [["APP_URL", "ok"], ["STRIPE_SECRET_KEY", "malformed"], ["TWILIO_AUTH_TOKEN", "malformed"]],
    );

    // The worker logged the problem (an operator must see it) without the values.
    await gateway.close();
    const everything = [text, reportText, ...logs].join("\n");
    assert.match(logs.join("\n"), /settings-1.*STRIPE_SECRET_KEY/);
    for (const value of [WRONG_STRIPE_SECRET_KEY, WRONG_TWILIO_AUTH_TOKEN]) {
      const slice = leaks(everything, value);
      assert.equal(slice, undefined, `a fragment of a value leaked: ${slice}`);
    }
  } finally {
    await gateway.close();
    await Deno.remove(home, { recursive: true });
  }
});
