/**
 * The aster-proxy command line as users run it (main.ts): flags, exit codes, config file
 * selection, --check, a taken listen port, and signals.
 */

import assert from "node:assert/strict";
import { asterCommand, renderToml, startAster, UNDER_TEST } from "./helpers/aster.ts";
import { RespClient } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";
import { VERSION } from "../src/version.ts";

const DEFAULT_TOML = new URL("../default.toml", import.meta.url).pathname;
/** Longest any one CLI run may take before it is killed and the test fails. */
const RUN_TIMEOUT_MS = 15_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

Deno.test("--help and -h print usage mentioning --config and exit 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const run = await _run([flag]);
    assert.equal(run.code, 0, `${flag}: ${run.stderr}`);
    assert.match(run.stdout, /Usage: aster-proxy/);
    assert.match(run.stdout, /--config FILE/);
    assert.match(run.stdout, /--check/);
    assert.match(run.stdout, /AS_CFG/);
    assert.equal(run.stderr, "");
  }
});

Deno.test("-V and --version print the version and exit 0", async () => {
  for (const flag of ["-V", "--version"]) {
    const run = await _run([flag]);
    assert.equal(run.code, 0, `${flag}: ${run.stderr}`);
    const [first, second, ...rest] = run.stdout.split("\n");
    assert.equal(first, `aster-proxy ${VERSION}`);
    // The runtime and the target it was built for: "deno 2.9.6 x86_64-unknown-linux-gnu".
    assert.match(second, /^(deno|bun) \d+\.\d+\.\d+\S* [a-z0-9_]+-[a-z]+-[a-z]+(-[a-z]+)?$/);
    assert.deepEqual(rest, [""]);
  }
});

Deno.test("an unknown flag or a stray argument exits 2 with a message", async () => {
  const unknown = await _run(["--frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^aster-proxy: .*--frobnicate/);
  assert.match(unknown.stderr, /--help/);
  assert.equal(unknown.stdout, "");

  const stray = await _run(["extra.toml"]);
  assert.equal(stray.code, 2);
  assert.match(stray.stderr, /extra\.toml/);

  const noValue = await _run(["--config"]);
  assert.equal(noValue.code, 2);
  assert.match(noValue.stderr, /config/);
});

Deno.test("a missing config file exits 2 with 'cannot read config file'", async () => {
  await using dir = await _tempDir();
  const missing = `${dir.path}/nope.toml`;
  for (const args of [["--config", missing], ["-c", missing], ["--check", "--config", missing]]) {
    const run = await _run(args);
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, new RegExp(`cannot read config file ${_re(missing)}: no such file`));
  }
  const isDir = await _run(["--check", "--config", dir.path]);
  assert.equal(isDir.code, 2);
  assert.match(isDir.stderr, /cannot read config file/);
});

Deno.test({
  name: 'on Bun, io = "ffi" is refused at --check with exit 2, naming the runtime',
  ignore: UNDER_TEST === "deno",
  fn: async () => {
    await using dir = await _tempDir();
    const path = await dir.write(
      "ffi.toml",
      renderToml([{
        name: "raw",
        cache_type: "redis",
        listen_addr: `127.0.0.1:${await freePort()}`,
        io: "ffi",
        servers: ["127.0.0.1:6379"],
      }]),
    );
    const run = await _run(["--check", "--config", path]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /cluster raw: io = "ffi" runs on Deno only \(this is bun \S+\)/);
  },
});

Deno.test("--check on a valid file prints one line per cluster and exits 0", async () => {
  await using dir = await _tempDir();
  const [portA, portB] = [await freePort(), await freePort()];
  const path = await dir.write(
    "two.toml",
    renderToml([
      {
        name: "alpha",
        listen_addr: `127.0.0.1:${portA}`,
        cache_type: "redis",
        servers: ["127.0.0.1:7001:1 a", "127.0.0.1:7002:1 b"],
        thread: 2,
      },
      {
        name: "beta",
        listen_addr: `127.0.0.1:${portB}`,
        cache_type: "redis",
        servers: ["127.0.0.1:7003"],
      },
    ]),
  );
  const run = await _run(["--check", "--config", path]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trimEnd().split("\n"), [
    `alpha: redis on 127.0.0.1:${portA}, 2 servers, thread=2`,
    `beta: redis on 127.0.0.1:${portB}, 1 servers, thread=1`,
    `${path}: ok`,
  ]);
  // It only checks: nothing was left listening.
  await _assertNotListening(portA);
});

Deno.test("--check on a file with 3 errors exits 2 and prints all 3", async () => {
  await using dir = await _tempDir();
  const path = await dir.write(
    "bad.toml",
    [
      "[[clusters]]",
      'name = "bad"',
      'listen_addr = "127.0.0.1:9999"',
      'cache_type = "redis"',
      'servers = ["127.0.0.1:7001"]',
      "thread = 0",
      'read_timeout = "fast"',
      "bogus_key = 1",
      "",
    ].join("\n"),
  );
  for (const args of [["--check", "--config", path], ["--config", path]]) {
    const run = await _run(args);
    assert.equal(run.code, 2, args.join(" "));
    assert.equal(run.stdout, "");
    assert.match(run.stderr, new RegExp(`invalid config file ${_re(path)} \\(3 errors\\)`));
    assert.match(run.stderr, /cluster "bad": thread must be an integer > 0, got 0/);
    assert.match(run.stderr, /cluster "bad": read_timeout must be an integer .*"fast"/);
    assert.match(run.stderr, /cluster "bad": unknown key "bogus_key"/);
  }
  const toml = await dir.write("broken.toml", "[[clusters]]\nname = \n");
  const broken = await _run(["--check", "--config", toml]);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, new RegExp(`${_re(toml)}:2:\\d+: invalid TOML`));
});

Deno.test("AS_CFG names the config when --config is absent; --config wins over it", async () => {
  await using dir = await _tempDir();
  const fromEnv = await dir.write("env.toml", _oneCluster("from-env", await freePort()));
  const fromFlag = await dir.write("flag.toml", _oneCluster("from-flag", await freePort()));

  const env = await _run(["--check"], { AS_CFG: fromEnv });
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /^from-env: redis on /);
  assert.match(env.stdout, new RegExp(`${_re(fromEnv)}: ok`));

  const both = await _run(["--check", "--config", fromFlag], { AS_CFG: fromEnv });
  assert.equal(both.code, 0, both.stderr);
  assert.match(both.stdout, /^from-flag: redis on /);
  assert.doesNotMatch(both.stdout, /from-env/);

  const short = await _run(["--check", "-c", fromFlag], { AS_CFG: `${dir.path}/missing.toml` });
  assert.equal(short.code, 0, short.stderr);
  assert.match(short.stdout, /^from-flag: /);

  const badEnv = await _run(["--check"], { AS_CFG: `${dir.path}/missing.toml` });
  assert.equal(badEnv.code, 2);
  assert.match(badEnv.stderr, /cannot read config file .*missing\.toml/);

  const emptyEnv = await _run(["--check"], { AS_CFG: "" });
  assert.equal(emptyEnv.code, 2);
  assert.match(emptyEnv.stderr, /^aster-proxy: AS_CFG is empty/);
});

Deno.test("--check accepts the repository's default.toml", async () => {
  const run = await _run(["--check", "--config", DEFAULT_TOML]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^test-redis: redis on 127\.0\.0\.1:9001, 3 servers, thread=1$/m);
  assert.match(run.stdout, /default\.toml: ok$/m);
});

Deno.test("a listen port already in use: exits non-zero at once with a clear message", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 }); // no reusePort
  const port = (taken.addr as Deno.NetAddr).port;
  await using dir = await _tempDir();
  for (const thread of [1, 3]) {
    const path = await dir.write(`taken-${thread}.toml`, _oneCluster("busy", port, { thread }));
    const run = await _run(["--config", path], { ASTER_LOG: "info" });
    assert.notEqual(run.code, 0, `thread=${thread}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    assert.match(run.stderr, /in use/i);
    assert.ok(run.ms < 10_000, `took ${run.ms} ms to give up`);
  }
});

Deno.test("a listen port held by another running aster: the second one exits non-zero", async () => {
  // Workers bind with SO_REUSEPORT, and Linux lets a second socket with SO_REUSEPORT (same
  // user) join the port: a second proxy started by mistake would silently take a share of
  // the first one's clients instead of failing.
  await using redis = await startRedis();
  await using first = await startAster([{ servers: [`127.0.0.1:${redis.port}`] }]);
  const port = first.ports[0];
  await using dir = await _tempDir();
  const path = await dir.write(
    "second.toml",
    renderToml([{
      name: "second",
      listen_addr: `127.0.0.1:${port}`,
      cache_type: "redis",
      servers: [`127.0.0.1:${redis.port}`],
    }]),
  );
  const child = asterCommand(["--config", path], { ASTER_LOG: "info" }).spawn();
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    child.status.then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 3000)),
  ]);
  clearTimeout(timer);
  if (!exited) child.kill("SIGKILL");
  const out = await output;
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(exited, `a second aster is serving port ${port} next to the first:\n${stderr}`);
  assert.notEqual(out.code, 0, stderr);
  assert.match(stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
});

Deno.test("SIGTERM and SIGINT stop a running proxy with exit 0", async () => {
  await using redis = await startRedis();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`] }], {
      env: { ASTER_LOG: "info" },
    });
    {
      await using client = await RespClient.connect(aster.ports[0]);
      assert.equal(await client.command("SET", "cli:signal", signal), "OK");
    }
    const start = Date.now();
    aster.kill(signal);
    // The exit the signal itself causes (stop() would send a SIGTERM of its own).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([
      aster.exited,
      new Promise<number>((resolve) => timer = setTimeout(() => resolve(-1), 4000)),
    ]).finally(() => clearTimeout(timer));
    assert.equal(code, 0, aster.log());
    assert.ok(Date.now() - start < 4000, `${signal} took ${Date.now() - start} ms`);
    assert.match(aster.log(), new RegExp(`${signal}: stopping`));
    await _assertNotListening(aster.ports[0]);
  }
});

Deno.test("--ip takes only what the config takes: a dotted quad or an RFC 4291 IPv6 address", async () => {
  for (const ip of ["010.0.0.1", "127.1", ":::", "1::2::3", "fe80::1%eth0"]) {
    const run = await _run(["--ip", ip, "--check"]);
    assert.equal(run.code, 2, `${ip}: ${run.stderr}`);
    assert.match(run.stderr, /--ip needs an IPv4 or IPv6 address/);
  }
});

Deno.test("a SIGHUP while the workers start is a reload once they run, not the end", async () => {
  await using redis = await startRedis();
  await using dir = await _tempDir();
  const port = await freePort();
  const config = await dir.write(
    "hup.toml",
    renderToml([{
      name: "hup",
      listen_addr: `127.0.0.1:${port}`,
      cache_type: "redis",
      servers: [`127.0.0.1:${redis.port}`],
      thread: 8, // a start long enough to send the signal into
    }]),
  );
  const child = asterCommand(["--config", config], { ASTER_LOG: "info" }).spawn();
  const stdout: string[] = [];
  const stderr: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) into.push(chunk);
  };
  const reading = Promise.all([collect(child.stdout, stdout), collect(child.stderr, stderr)]);
  try {
    const waitFor = async (what: RegExp, lines: string[]) => {
      for (let i = 0; i < 300 && !what.test(lines.join("")); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.match(lines.join(""), what);
    };
    await waitFor(/starting with/, stderr);
    child.kill("SIGHUP");
    await waitFor(/ready/, stdout);
    // (On a host fast enough to be ready before the signal, it is a plain reload.)
    await waitFor(/SIGHUP( during start)?: reloading/, stderr);
    await waitFor(/reloaded: nothing changed/, stderr);
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("PING"), "PONG");
  } finally {
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, stderr.join(""));
    await reading;
  }
});

/** Runs main.ts with `args`; kills it (and fails) if it outlives RUN_TIMEOUT_MS. */
async function _run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const start = Date.now();
  const child = asterCommand(args, env).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, RUN_TIMEOUT_MS);
  try {
    const out = await child.output();
    const decoder = new TextDecoder();
    const run = {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      ms: Date.now() - start,
    };
    assert.ok(!timedOut, `aster ${args.join(" ")} still running after ${RUN_TIMEOUT_MS} ms`);
    return run;
  } finally {
    clearTimeout(timer);
  }
}

function _oneCluster(name: string, port: number, extra: Record<string, number> = {}): string {
  return renderToml([{
    name,
    listen_addr: `127.0.0.1:${port}`,
    cache_type: "redis",
    servers: ["127.0.0.1:7001"],
    ...extra,
  }]);
}

/** A temporary directory removed on dispose; `write` puts a file in it. */
async function _tempDir() {
  const path = await Deno.makeTempDir({ prefix: "aster-cli-" });
  return {
    path,
    async write(name: string, content: string): Promise<string> {
      const file = `${path}/${name}`;
      await Deno.writeTextFile(file, content);
      return file;
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

async function _assertNotListening(port: number): Promise<void> {
  const refused = await Deno.connect({ hostname: "127.0.0.1", port }).then(
    (conn) => {
      conn.close();
      return false;
    },
    () => true,
  );
  assert.ok(refused, `something still listens on ${port}`);
}

function _re(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
