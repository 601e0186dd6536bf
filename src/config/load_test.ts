import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";
import { ConfigError, loadConfig } from "./load.ts";
import { CLUSTER_KEYS, validate } from "./schema.ts";

/** What an unknown key's error ends with: where every key is documented. */
const KEYS_DOC = " (see docs/configuration.md#cluster-keys)";

const DEFAULT_TOML = fileURLToPath(new URL("../../default.toml", import.meta.url));

/** A temp directory removed when the test's `await using` scope ends. */
async function _tempDir(): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix: "aster_config_" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

async function _rejects(path: string): Promise<ConfigError> {
  try {
    await loadConfig(path);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    assert.equal(err.name, "ConfigError");
    assert.ok(err.errors.length > 0);
    return err;
  }
  return assert.fail("expected loadConfig() to throw");
}

const VALID = `
[[clusters]]
name = "cache-a"
listen_addr = "127.0.0.1:9001"
cache_type = "redis"
servers = ["127.0.0.1:7001:1 redis-1", "127.0.0.1:7002"]
read_timeout = 500
`;

Deno.test("loadConfig() reads, parses and validates a config file", async () => {
  await using dir = await _tempDir();
  const path = `${dir.path}/aster.toml`;
  await Deno.writeTextFile(path, VALID);
  const config = await loadConfig(path);
  assert.equal(config.clusters.length, 1);
  const [c] = config.clusters;
  assert.equal(c.name, "cache-a");
  assert.equal(c.readTimeout, 500);
  assert.equal(c.writeTimeout, 2000);
  assert.deepEqual(c.servers.map((s) => [s.addr, s.weight, s.alias]), [
    ["127.0.0.1:7001", 1, "redis-1"],
    ["127.0.0.1:7002", 1, null],
  ]);
});

Deno.test("loadConfig() reports a missing file", async () => {
  await using dir = await _tempDir();
  const path = `${dir.path}/missing.toml`;
  const err = await _rejects(path);
  assert.equal(err.message, `cannot read config file ${path}: no such file`);
  assert.deepEqual(err.errors, [err.message]);
});

Deno.test("loadConfig() reports a directory given as the config file", async () => {
  await using dir = await _tempDir();
  const err = await _rejects(dir.path);
  assert.match(err.message, /^cannot read config file .*: /);
});

Deno.test("loadConfig() reports a TOML syntax error with line and column", async () => {
  await using dir = await _tempDir();
  const path = `${dir.path}/bad.toml`;
  await Deno.writeTextFile(path, `[[clusters]]\nname = "a"\nthread = = 2\n`);
  const err = await _rejects(path);
  assert.equal(err.errors.length, 1);
  assert.match(err.errors[0], new RegExp(`^${_escape(path)}:3:\\d+: invalid TOML: `));
  assert.ok(err.message.startsWith(err.errors[0]));
  assert.match(err.message, /thread = = 2/); // the parser's code excerpt follows
});

Deno.test("loadConfig() reports a TOML duplicate key as a syntax error", async () => {
  await using dir = await _tempDir();
  const path = `${dir.path}/dup.toml`;
  await Deno.writeTextFile(path, `[[clusters]]\nname = "a"\nname = "b"\n`);
  const err = await _rejects(path);
  assert.match(err.errors[0], new RegExp(`^${_escape(path)}:3:\\d+: invalid TOML: `));
});

Deno.test("loadConfig() reports every validation error", async () => {
  await using dir = await _tempDir();
  const path = `${dir.path}/invalid.toml`;
  await Deno.writeTextFile(
    path,
    `${VALID}read_timout = 3\nthread = 0\n\n[[clusters]]\nname = "cache-b"\n` +
      `listen_addr = "0.0.0.0:9001"\ncache_type = "memcache"\nservers = ["127.0.0.1:11211"]\n`,
  );
  const err = await _rejects(path);
  assert.deepEqual(err.errors, [
    `cluster "cache-a": unknown key "read_timout" (did you mean "read_timeout"?)${KEYS_DOC}`,
    `cluster "cache-a": thread must be an integer > 0, got 0`,
    `cluster "cache-b": listen_addr "0.0.0.0:9001" clashes with cluster "cache-a" ` +
    `(listen_addr "127.0.0.1:9001"): same port 9001`,
  ]);
  assert.equal(
    err.message,
    [`invalid config file ${path} (3 errors):`, ...err.errors.map((e) => `  ${e}`)].join("\n"),
  );
});

Deno.test("default.toml validates and loads", async () => {
  const text = await Deno.readTextFile(DEFAULT_TOML);
  const result = validate(parse(text));
  assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
  const config = await loadConfig(DEFAULT_TOML);
  assert.deepEqual(config, result.config);
  assert.equal(config.clusters.length, 1);
  const [c] = config.clusters;
  assert.equal(c.cacheType, "redis");
  assert.equal(c.listenAddr, "127.0.0.1:9001");
  assert.deepEqual(c.servers.map((s) => `${s.addr}:${s.weight} ${s.alias}`), [
    "127.0.0.1:7001:1 redis-1",
    "127.0.0.1:7002:1 redis-2",
    "127.0.0.1:7003:1 redis-3",
  ]);
});

Deno.test("default.toml documents every cluster key", async () => {
  const text = await Deno.readTextFile(DEFAULT_TOML);
  const keys = CLUSTER_KEYS;
  for (const key of keys) {
    assert.match(text, new RegExp(`^# ${key} `, "m"), `no comment documents ${key}`);
  }
  // The commented-out examples (redis_cluster, memcache) are valid once uncommented.
  const example = text.slice(text.indexOf("# [[clusters]]")).split("\n")
    .filter((line) => /^# (\[\[clusters\]\]|[a-z_]+ = |# )/.test(line))
    .map((line) => line.slice(2)).join("\n");
  const result = validate(parse(example));
  assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
  assert.deepEqual(result.config.clusters.map((c) => c.cacheType), ["redis_cluster", "memcache"]);
});

function _escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
