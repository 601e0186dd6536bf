/**
 * The migration path end to end: a nutcracker.yml with several pools serves keys through a
 * real nutcracker; `aster-proxy import-twemproxy` converts it, `--check` accepts the result,
 * and Aster started on it (after nutcracker stops: the switch) puts every key on the same
 * backend nutcracker did.
 */

import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { asterCommand, type ClusterToml, startAster } from "./helpers/aster.ts";
import { MemcacheClient, valuesOn } from "./helpers/memcache_client.ts";
import { RespClient } from "./helpers/resp_client.ts";
import {
  freePort,
  type ServerProcess,
  startMemcached,
  startNutcrackerYaml,
  startRedis,
} from "./helpers/servers.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();

Deno.test("import-twemproxy: nutcracker.yml -> --check -> Aster places keys like nutcracker", async () => {
  await using stack = new AsyncDisposableStack();
  const redis: ServerProcess[] = [];
  for (let i = 0; i < 3; i++) redis.push(stack.use(await startRedis()));
  const memcached: ServerProcess[] = [];
  for (let i = 0; i < 2; i++) memcached.push(stack.use(await startMemcached()));
  const ports = { alpha: 0, beta: 0, gamma: 0, delta: 0 };
  for (const pool of Object.keys(ports) as (keyof typeof ports)[]) ports[pool] = await freePort();
  const [r0, r1, r2] = redis.map((server) => `${HOST}:${server.port}`);
  const [m0, m1] = memcached.map((server) => `${HOST}:${server.port}`);

  // Four pools: non-default hashes and distributions, names, weights, a hash tag, the
  // ejection keys, and keys with no Aster equivalent (preconnect, backlog).
  const yaml = `
alpha:
  listen: ${HOST}:${ports.alpha}
  redis: true
  hash: murmur
  distribution: modula
  hash_tag: "{}"
  timeout: 1000
  auto_eject_hosts: true
  server_failure_limit: 3
  server_retry_timeout: 5000
  server_connections: 2
  preconnect: true
  servers:
   - ${r0}:1 one
   - ${r1}:2
   - ${r2}:1 three
beta:
  listen: ${HOST}:${ports.beta}
  redis: true
  hash: jenkins
  distribution: ketama
  backlog: 1024
  client_connections: 100
  servers:
   - ${r0}:3
   - ${r1}:1 b1
   - ${r2}:2
gamma:
  listen: ${HOST}:${ports.gamma}
  hash: hsieh
  servers:
   - ${m0}:1
   - ${m1}:2 m-two
delta:
  listen: ${HOST}:${ports.delta}
  redis: true
  distribution: random
  servers:
   - ${r0}:1
   - ${r1}:1
`;
  const dir = await Deno.makeTempDir({ prefix: "aster-import-" });
  stack.defer(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
  const ymlPath = `${dir}/nutcracker.yml`;
  await Deno.writeTextFile(ymlPath, yaml);

  const alphaKeys = _redisKeys("alpha", 600, true);
  const betaKeys = _redisKeys("beta", 600, false);
  const gammaKeys = Array.from({ length: 400 }, (_, i) => `gamma:${i}`);
  const deltaKeys = _redisKeys("delta", 200, false);

  // Through nutcracker first.
  const before = await (async () => {
    await using nutcracker = await startNutcrackerYaml(yaml, Object.values(ports));
    assert.ok(nutcracker.port > 0);
    return {
      alpha: await _redisPlacement(ports.alpha, redis, alphaKeys),
      beta: await _redisPlacement(ports.beta, redis, betaKeys),
      gamma: await _memcachePlacement(ports.gamma, memcached, gammaKeys),
    };
  })();
  for (const [pool, holders] of Object.entries(before)) {
    const used = new Set(holders.flat());
    assert.ok(used.size >= 2, `${pool}: nutcracker used ${[...used]}: a weak test`);
  }
  await _flush(redis, memcached);

  // Import, then --check the result.
  const imported = await _run(["import-twemproxy", ymlPath]);
  assert.equal(imported.code, 0, imported.stderr);
  for (const word of ["preconnect", "backlog 1024", "auto_eject_hosts", "client_connections"]) {
    assert.ok(imported.stderr.includes(word), `stderr notes ${word}:\n${imported.stderr}`);
  }
  const tomlPath = `${dir}/aster.toml`;
  await Deno.writeTextFile(tomlPath, imported.stdout);
  const check = await _run(["--check", "--config", tomlPath]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  for (const pool of Object.keys(ports)) assert.match(check.stdout, new RegExp(`^${pool}: `, "m"));

  // The switch: the same ports, now served by Aster.
  const clusters = (parseToml(imported.stdout) as { clusters: ClusterToml[] }).clusters;
  await using aster = await startAster(clusters);
  assert.deepEqual(aster.ports, [ports.alpha, ports.beta, ports.gamma, ports.delta]);
  const after = {
    alpha: await _redisPlacement(ports.alpha, redis, alphaKeys),
    beta: await _redisPlacement(ports.beta, redis, betaKeys),
    gamma: await _memcachePlacement(ports.gamma, memcached, gammaKeys),
  };
  for (const pool of ["alpha", "beta", "gamma"] as const) {
    const wrong = before[pool].flatMap((holders, k) =>
      `${holders}` === `${after[pool][k]}`
        ? []
        : [`key ${k}: nutcracker ${holders}, aster ${after[pool][k]}`]
    );
    assert.deepEqual(wrong.slice(0, 5), [], `${pool}: ${wrong.length} keys placed differently`);
  }

  // random places no key anywhere in particular: every write lands, spread over both servers.
  const delta = await _redisPlacement(ports.delta, redis.slice(0, 2), deltaKeys);
  assert.ok(delta.every((holders) => holders.length === 1), "each key on exactly one server");
  assert.deepEqual(new Set(delta.flat()), new Set([0, 1]));
});

/** `count` keys; with `high`, one in five carries bytes >= 0x80 (signed-char hashing). */
function _redisKeys(prefix: string, count: number, high: boolean): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => {
    const key = encoder.encode(i % 7 === 0 ? `${prefix}:{tag${i % 20}}:${i}` : `${prefix}:${i}`);
    if (!high || i % 5 !== 0) return key;
    const out = new Uint8Array(key.length + 3);
    out.set(key);
    out.set([0xc3, 0xa9, 0x80 + (i % 100)], key.length);
    return out;
  });
}

/** SETs every key through the proxy on `port`; which backends hold each key. */
async function _redisPlacement(
  port: number,
  backends: ServerProcess[],
  keys: Uint8Array[],
): Promise<number[][]> {
  {
    await using client = await RespClient.connect(port);
    const replies = await client.pipeline(keys.map((key) => ["SET", key, "v"]));
    assert.deepEqual(new Set(replies), new Set(["OK"]), `SETs through ${port}`);
  }
  const holders: number[][] = keys.map(() => []);
  for (const [b, backend] of backends.entries()) {
    await using client = await RespClient.connect(backend.port);
    const replies = await client.pipeline(keys.map((key) => ["EXISTS", key]));
    replies.forEach((reply, k) => {
      if (reply === 1) holders[k].push(b);
    });
  }
  return holders;
}

/** Sets every key through the memcache proxy on `port`; which backends hold each key. */
async function _memcachePlacement(
  port: number,
  backends: ServerProcess[],
  keys: string[],
): Promise<number[][]> {
  {
    await using client = await MemcacheClient.connect(port);
    for (const key of keys) {
      assert.equal(await client.request(`set ${key} 0 0 1\r\nv\r\n`), "STORED\r\n");
    }
  }
  const holders: number[][] = keys.map(() => []);
  for (const [b, backend] of backends.entries()) {
    const found = await valuesOn(backend.port, keys);
    keys.forEach((key, k) => {
      if (found.has(key)) holders[k].push(b);
    });
  }
  return holders;
}

async function _flush(redis: ServerProcess[], memcached: ServerProcess[]): Promise<void> {
  for (const server of redis) {
    await using client = await RespClient.connect(server.port);
    assert.equal(await client.command("FLUSHALL"), "OK");
  }
  for (const server of memcached) {
    await using client = await MemcacheClient.connect(server.port);
    assert.equal(await client.request("flush_all\r\n"), "OK\r\n");
  }
}

async function _run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await asterCommand(args).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("import-twemproxy: usage errors, unreadable files and unconvertible pools exit 2", async () => {
  const none = await _run(["import-twemproxy"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /import-twemproxy needs exactly one file/);
  const two = await _run(["import-twemproxy", "a.yml", "b.yml"]);
  assert.equal(two.code, 2);

  const dir = await Deno.makeTempDir({ prefix: "aster-import-" });
  try {
    const missing = await _run(["import-twemproxy", `${dir}/absent.yml`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read twemproxy config .*absent\.yml/);

    await Deno.writeTextFile(`${dir}/bad.yml`, "alpha: [unclosed\n");
    const bad = await _run(["import-twemproxy", `${dir}/bad.yml`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cannot read twemproxy config .*bad\.yml/);

    // One pool Aster cannot serve (a unix socket): the others are still printed.
    await Deno.writeTextFile(
      `${dir}/mixed.yml`,
      'unix:\n  listen: /tmp/nc.sock\n  servers: ["127.0.0.1:6379:1"]\n' +
        'tcp:\n  listen: 127.0.0.1:22199\n  redis: true\n  servers: ["127.0.0.1:6379:1"]\n',
    );
    const mixed = await _run(["import-twemproxy", `${dir}/mixed.yml`]);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /error: pool "unix": listens on a unix socket/);
    const clusters = (parseToml(mixed.stdout) as { clusters: ClusterToml[] }).clusters;
    assert.deepEqual(clusters.map((c) => c.name), ["tcp"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--help mentions import-twemproxy", async () => {
  const help = await _run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /aster-proxy import-twemproxy nutcracker\.yml/);
  const subHelp = await _run(["import-twemproxy", "--help"]);
  assert.equal(subHelp.code, 0);
  assert.match(subHelp.stdout, /import-twemproxy/);
});
