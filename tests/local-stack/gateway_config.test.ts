// The gateway's configuration logic, without the running stack: command line, config.toml,
// dotenv parsing and the worker environment.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildWorkerEnv,
  discoverFunctions,
  parseDotenv,
  parseGatewayArgs,
  RUNTIME_ENV_NAMES,
} from "../../scripts/local-supabase/gateway/config.ts";
import { captureServeArgs } from "../../scripts/local-supabase/gateway/worker.ts";

Deno.test("config: command line defaults and repeated options", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const defaults = await parseGatewayArgs([], cwd);
    assert.deepEqual(defaults.functionSources, [{
      dir: join(cwd, "supabase/functions"),
      configFile: join(cwd, "supabase/config.toml"),
    }]);
    assert.deepEqual(defaults.envFiles, [], "no default env file when supabase/functions/.env is absent");
    assert.equal(defaults.netWorker, true);

    await Deno.mkdir(join(cwd, "supabase/functions"), { recursive: true });
    await Deno.writeTextFile(join(cwd, "supabase/functions/.env"), "A=1\n");
    assert.deepEqual((await parseGatewayArgs([], cwd)).envFiles, [join(cwd, "supabase/functions/.env")]);

    const explicit = await parseGatewayArgs([
      "--functions",
      "a=a/config.toml",
      "--functions=b=b/c.toml",
      "--env-file",
      "one.env",
      "--env-file=two.env",
      "--no-net-worker",
    ], cwd);
    assert.deepEqual(explicit.functionSources, [
      { dir: join(cwd, "a"), configFile: join(cwd, "a/config.toml") },
      { dir: join(cwd, "b"), configFile: join(cwd, "b/c.toml") },
    ]);
    assert.deepEqual(explicit.envFiles, [join(cwd, "one.env"), join(cwd, "two.env")]);
    assert.equal(explicit.netWorker, false);
    await assert.rejects(parseGatewayArgs(["--functions", "no-config"], cwd), /<dir>=<config.toml>/);
    await assert.rejects(parseGatewayArgs(["--bogus"], cwd), /unknown argument/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("config: functions are the folders with an index.ts, minus _shared code and disabled ones", async () => {
  const dir = new URL("../fixtures/functions/", import.meta.url).pathname;
  const specs = await discoverFunctions({ dir, configFile: join(dir, "config.toml") });
  assert.deepEqual(
    specs.map((s) => [s.name, s.verifyJwt]),
    [["boom", false], ["bytes", false], ["crash", false], ["echo", true], ["echo-public", false], ["settings-check", false], ["whoami", false]],
  );
});

Deno.test("config: dotenv parsing", () => {
  assert.deepEqual(
    parseDotenv([
      "# comment",
      "",
      "PLAIN=value",
      "export EXPORTED=x",
      'DOUBLE="a # b\\n\\"c\\""',
      "SINGLE='a\\nb'",
      "INLINE=v # comment",
      "EQUALS=a=b=c",
      "EMPTY=",
      "not a line",
    ].join("\n")),
    {
      PLAIN: "value",
      EXPORTED: "x",
      DOUBLE: 'a # b\n"c"',
      SINGLE: "a\\nb",
      INLINE: "v",
      EQUALS: "a=b=c",
      EMPTY: "",
    },
  );
});

Deno.test("config: a worker's env holds only the runtime's needs, the env files and the platform's values", () => {
  const warnings: string[] = [];
  const env = buildWorkerEnv(
    { STRIPE_SECRET_KEY: "sk_test_x", SUPABASE_URL: "http://evil.invalid" },
    { SUPABASE_URL: "http://127.0.0.1:54321/", SUPABASE_ANON_KEY: "anon" },
    { PATH: "/usr/bin", HOME: "/root", SUPABASE_JWT_SECRET: "secret", GATEWAY_PORT: "1", AWS_SECRET: "x" },
    (w) => warnings.push(w),
  );
  assert.deepEqual(env, {
    PATH: "/usr/bin",
    HOME: "/root",
    STRIPE_SECRET_KEY: "sk_test_x",
    SUPABASE_URL: "http://127.0.0.1:54321/",
    SUPABASE_ANON_KEY: "anon",
    FUNCTIONS_PUBLIC_URL: "http://127.0.0.1:54321/functions/v1",
  });
  assert.equal(warnings.length, 1);
  assert.ok(RUNTIME_ENV_NAMES.every((n) => !n.startsWith("SUPABASE_")));
  const explicit = buildWorkerEnv({ FUNCTIONS_PUBLIC_URL: "https://from-env-file.example.test/functions/v1" }, {
    SUPABASE_URL: "http://127.0.0.1:54321",
  }, {});
  assert.equal(explicit.FUNCTIONS_PUBLIC_URL, "https://from-env-file.example.test/functions/v1");
  const gatewayWins = buildWorkerEnv({ FUNCTIONS_PUBLIC_URL: "https://from-env-file.example.test" }, {
    SUPABASE_URL: "http://127.0.0.1:54321",
    FUNCTIONS_PUBLIC_URL: "https://tunnel.example.test/functions/v1",
  }, {});
  assert.equal(gatewayWins.FUNCTIONS_PUBLIC_URL, "https://tunnel.example.test/functions/v1");
});

Deno.test("config: every Deno.serve overload yields the function's handler", () => {
  const handler = () => new Response("ok");
  assert.equal(captureServeArgs([handler]).handler, handler);
  assert.equal(captureServeArgs([{ port: 8000 }, handler]).handler, handler);
  assert.equal(captureServeArgs([{ port: 8000, handler }]).handler, handler);
  const onError = () => new Response("custom", { status: 500 });
  assert.equal(captureServeArgs([{ handler, onError }]).options.onError, onError);
  assert.throws(() => captureServeArgs([{ port: 8000 }]), /no handler/);
});
