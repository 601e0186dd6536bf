/**
 * docker/integration.sh, the checks compose.yaml's integration-tests service runs against
 * the aster container, run here as plain processes: three redis-servers, a real 3+3 Redis
 * Cluster and two memcached behind one Aster with the four listeners of docker/aster.toml.
 * The script must pass against Aster, with its multi-key requests reaching every backend,
 * and fail at the first check that does not hold (a dead listener, a plain redis-server
 * instead of Aster).
 */

import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { nodeCommand, startRedisCluster } from "./helpers/redis_cluster.ts";
import { text } from "./helpers/resp_client.ts";
import { freePort, type ServerProcess, startMemcached, startRedis } from "./helpers/servers.ts";

const SCRIPT = new URL("../docker/integration.sh", import.meta.url).pathname;
/** Longest run of the script; a passing run takes about a second. */
const SCRIPT_TIMEOUT_MS = 20_000;
/** Longest wait for a memcached `stats` reply. */
const STATS_TIMEOUT_MS = 2000;
/** Checks the script makes when everything passes (it prints the count). */
const MIN_CHECKS = 80;

/** What one run of the script printed, and how it ended. */
interface ScriptRun {
  code: number;
  output: string;
}

Deno.test("docker/integration.sh passes against Aster and fails on the first broken check", async (t) => {
  const shards = await Promise.all([startRedis(), startRedis(), startRedis()]);
  await using _shards = _all(shards);
  const memcacheds = await Promise.all([startMemcached(), startMemcached()]);
  await using _memcacheds = _all(memcacheds);
  await using cluster = await startRedisCluster();
  const memcacheServers = memcacheds.map((m, i) => `127.0.0.1:${m.port}:1 memcached-${i + 1}`);
  await using aster = await startAster([
    {
      cache_type: "redis",
      servers: shards.map((s, i) => `127.0.0.1:${s.port}:1 redis-${i + 1}`),
      hash_tag: "{}",
    },
    { cache_type: "redis_cluster", servers: cluster.seeds() },
    { cache_type: "memcache", servers: memcacheServers },
    { cache_type: "memcache_binary", servers: memcacheServers },
  ]);
  const [redisPort, clusterPort, memcachePort, binaryPort] = aster.ports;
  const env = {
    REDIS_PORT: `${redisPort}`,
    CLUSTER_PORT: `${clusterPort}`,
    MEMCACHE_PORT: `${memcachePort}`,
    MEMCACHE_BINARY_PORT: `${binaryPort}`,
  };

  await t.step("passes, listing every check, with requests reaching every backend", async () => {
    const run = await _runScript({ ...env, RUN_ID: "native" });
    assert.equal(run.code, 0, run.output);
    assert.doesNotMatch(run.output, /^not ok/m);
    const passed = Number(/^all (\d+) checks passed$/m.exec(run.output)?.[1]);
    assert.ok(passed >= MIN_CHECKS, `only ${passed} checks:\n${run.output}`);
    const listed = run.output.split("\n").filter((line) => /^ok \d+ - /.test(line));
    assert.equal(listed.length, passed, run.output);
    for (const mode of ["redis", "redis_cluster", "memcache", "memcache_binary"]) {
      assert.ok(
        listed.filter((line) => line.includes(` - ${mode}: `)).length >= 8,
        `too few ${mode} checks:\n${run.output}`,
      );
    }
    for (
      const check of [
        "redis: MGET of 12 keys and a missing one, in request order",
        "redis: KEYS is refused by Aster",
        "redis_cluster: MSET of 12 keys",
        "redis_cluster: a multi-key command over two slots is CROSSSLOT",
        "memcache: get of 6 keys and a missing one, merged in key order",
        "memcache_binary: getkq over servers then noop: only the hits, in order",
      ]
    ) {
      assert.match(run.output, new RegExp(`^ok \\d+ - ${_escape(check)}$`, "m"));
    }
    // The split MSETs reached every shard and every master, the sets both memcached.
    for (const node of [...shards, ...await cluster.masters()]) {
      const stats = String(text(await nodeCommand(node.port, ["INFO", "commandstats"])));
      assert.match(stats, /^cmdstat_mset:calls=[1-9]/m, `no MSET reached ${node.port}`);
    }
    for (const memcached of memcacheds) {
      const sets = Number(/^STAT cmd_set (\d+)\r$/m.exec(await _stats(memcached.port))?.[1]);
      assert.ok(sets > 0, `no set reached memcached ${memcached.port}`);
    }
  });

  await t.step("fails at the first redis_cluster check when that port is dead", async () => {
    const dead = await freePort();
    const run = await _runScript({
      ...env,
      CLUSTER_PORT: `${dead}`,
      WAIT_SECONDS: "1",
      RUN_ID: "dead",
    });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /^ok \d+ - redis: DEL of the hash-tagged keys$/m);
    const failed = /^not ok (\d+) - (.*)\n(.*)\nFAILED after (\d+) passed checks\n$/m.exec(
      run.output,
    );
    assert.ok(failed, run.output);
    assert.equal(failed[2], "redis_cluster: the three masters answer");
    assert.equal(
      failed[3],
      `  not ready within 1 s (last probe: Could not connect to Redis at 127.0.0.1:${dead}: ` +
        "Connection refused)",
    );
    assert.equal(Number(failed[4]), Number(failed[1]) - 1);
    assert.doesNotMatch(run.output, /^(not )?ok \d+ - memcache/m);
  });

  await t.step("fails when the redis port is a plain redis-server, not Aster", async () => {
    const run = await _runScript({
      ...env,
      REDIS_PORT: `${shards[0].port}`,
      WAIT_SECONDS: "1",
      RUN_ID: "plain",
    });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /^not ok \d+ - redis: KEYS is refused by Aster$/m);
    assert.doesNotMatch(run.output, /^(not )?ok \d+ - redis_cluster/m);
  });

  assert.equal(await aster.stop(), 0, aster.log());
});

/** Runs the script with 127.0.0.1 as the Aster host and `env` on top. */
async function _runScript(env: Record<string, string>): Promise<ScriptRun> {
  const output = await new Deno.Command("bash", {
    args: [SCRIPT],
    env: { ASTER_HOST: "127.0.0.1", WAIT_SECONDS: "10", IO_TIMEOUT: "5", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(SCRIPT_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    output: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

/** memcached's `stats` reply on `port`. */
async function _stats(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let closed = false;
  const close = () => {
    if (!closed) conn.close();
    closed = true;
  };
  const timer = setTimeout(close, STATS_TIMEOUT_MS); // a silent server fails the read below
  try {
    await conn.write(new TextEncoder().encode("stats\r\n"));
    const decoder = new TextDecoder();
    const buf = new Uint8Array(16384);
    let reply = "";
    while (!reply.endsWith("END\r\n")) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`memcached ${port} closed before END:\n${reply}`);
      reply += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    return reply;
  } finally {
    clearTimeout(timer);
    close();
  }
}

/** Stops every server when disposed. */
function _all(servers: ServerProcess[]): AsyncDisposable {
  return {
    [Symbol.asyncDispose]: async () => {
      await Promise.all(servers.map((server) => server.stop()));
    },
  };
}

function _escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
