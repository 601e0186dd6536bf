/**
 * Differential test: a seeded random command stream goes both to one plain redis-server
 * and through Aster to three sharded redis-servers, in pipelined batches of random size;
 * every reply must be the same (errors included, text and all), and the keys must really
 * be spread over the three shards. The stream and the comparison are in
 * helpers/redis_commands.ts, shared with the redis_cluster differential test.
 *
 * Replay a failure with `ASTER_TEST_SEED=<seed> deno test -A tests/redis_differential_test.ts`.
 */

import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { Random, testSeed } from "./helpers/random.ts";
import {
  ALL_KEYS,
  assertStreamCoverage,
  compareAllKeys,
  compareCommandStream,
  NUMBERS,
  STRINGS,
  TAG_GROUPS,
} from "./helpers/redis_commands.ts";
import { RespClient } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import {
  assertStatefulCoverage,
  compareStatefulStream,
  STATEFUL_KEYS,
} from "./helpers/redis_stateful_stream.ts";

const SEED = testSeed(0x5eed_a57e);
const COMMANDS = 3000;
const MAX_BATCH = 50;
/** Bound on the whole stream, so a stalled proxy fails the test instead of hanging it. */
const STREAM_DEADLINE_MS = 40_000;

Deno.test("redis mode: random command stream gives the same replies as one plain redis-server", async () => {
  await using reference = await startRedis();
  await using shard0 = await startRedis();
  await using shard1 = await startRedis();
  await using shard2 = await startRedis();
  const shards = [shard0, shard1, shard2];
  // Aliases: placement depends on the names, not on the random ports, so a seed replays
  // exactly.
  await using aster = await startAster([{
    servers: shards.map((shard, i) => `127.0.0.1:${shard.port}:1 shard${i}`),
    hash_tag: "{}",
  }]);
  const rng = new Random(SEED);
  try {
    await using direct = await RespClient.connect(reference.port);
    await using proxied = await RespClient.connect(aster.ports[0]);
    const stats = await compareCommandStream({ direct, proxied }, {
      rng,
      commands: COMMANDS,
      maxBatch: MAX_BATCH,
      deadlineMs: STREAM_DEADLINE_MS,
    });

    // Every key holds the same data on both sides (reads by type, unordered ones sorted).
    await compareAllKeys({ direct, proxied });

    // The keys really are spread over the shards, each on exactly one of them, and the
    // keys of a hash-tag group together.
    const shardClients = await Promise.all(shards.map((s) => RespClient.connect(s.port)));
    try {
      const sizes: number[] = [];
      for (const client of shardClients) sizes.push(await client.command("DBSIZE") as number);
      const total = await direct.command("DBSIZE") as number;
      assert.ok(total > 20, `only ${total} keys exist at the end: the stream is too destructive`);
      assert.equal(sizes.reduce((a, b) => a + b, 0), total, `shard sizes ${sizes} vs ${total}`);
      for (const [i, size] of sizes.entries()) assert.ok(size > 0, `shard ${i} holds no keys`);
      const home = new Map<string, number>();
      for (const key of ALL_KEYS) {
        const holders: number[] = [];
        for (const [i, client] of shardClients.entries()) {
          if (await client.command("EXISTS", key) === 1) holders.push(i);
        }
        const exists = await direct.command("EXISTS", key);
        assert.equal(holders.length, exists, `${key} is on shards [${holders}]`);
        if (holders.length === 1) home.set(key, holders[0]);
      }
      // Where would the keys that are gone live? Probe them (the comparison is over).
      for (const key of ALL_KEYS.filter((k) => !home.has(k))) {
        assert.equal(await proxied.command("SET", key, "probe"), "OK");
        for (const [i, client] of shardClients.entries()) {
          if (await client.command("EXISTS", key) === 1) home.set(key, i);
        }
        assert.equal(await proxied.command("DEL", key), 1);
        assert.ok(home.has(key), `probe ${key} landed nowhere`);
      }
      for (const group of TAG_GROUPS) {
        const homes = new Set(group.map((k) => home.get(k)));
        assert.equal(homes.size, 1, `tag group ${group} is split over shards ${[...homes]}`);
      }
      // MSET/MGET/DEL/EXISTS really did split: their keys live on every shard.
      const stringHomes = new Set([...STRINGS, ...NUMBERS].map((k) => home.get(k)));
      assert.equal(stringHomes.size, 3, `string keys only on shards ${[...stringHomes]}`);
    } finally {
      for (const client of shardClients) client.close();
    }
    // Sanity: the stream covered what it claims to.
    assertStreamCoverage(stats);
  } catch (err) {
    console.error(
      `\nredis_differential_test failed with seed ${rng.seed}; replay with ` +
        `ASTER_TEST_SEED=${rng.seed}\naster (pid ${aster.pid}, ${_alive(aster.pid)}, port ${
          aster.ports[0]
        }) log:\n` +
        aster.log().slice(-2000),
    );
    throw err;
  }
});

/** Episodes of the stateful stream (transactions, WATCH, blocking commands). */
const EPISODES = 300;

/** The stateful stream through Aster at `port` against a plain redis-server `referencePort`. */
async function _statefulStream(port: number, referencePort: number): Promise<void> {
  const rng = new Random(SEED);
  const clients = {
    direct: await RespClient.connect(referencePort),
    directOther: await RespClient.connect(referencePort),
    proxied: await RespClient.connect(port),
    proxiedOther: await RespClient.connect(port),
  };
  try {
    const stats = await compareStatefulStream(clients, {
      rng,
      episodes: EPISODES,
      deadlineMs: STREAM_DEADLINE_MS,
    });
    assertStatefulCoverage(stats);
    // The data agrees at the end too.
    for (const key of STATEFUL_KEYS) {
      const dump = async (client: RespClient) => [
        await client.command("TYPE", key),
        await client.command("DUMP", key),
      ];
      const [want, got] = [await dump(clients.direct), await dump(clients.proxied)];
      assert.deepStrictEqual(got, want, `final ${key}`);
    }
  } catch (err) {
    console.error(`\nstateful stream failed with seed ${rng.seed}; replay with ASTER_TEST_SEED`);
    throw err;
  } finally {
    for (const client of Object.values(clients)) client.close();
  }
}

Deno.test("redis mode: transactions, WATCH and blocking commands give one redis-server's replies", async () => {
  await using reference = await startRedis();
  await using shard0 = await startRedis();
  await using shard1 = await startRedis();
  await using shard2 = await startRedis();
  await using aster = await startAster([{
    servers: [shard0, shard1, shard2].map((shard, i) => `127.0.0.1:${shard.port}:1 shard${i}`),
    hash_tag: "{}",
  }]);
  await _statefulStream(aster.ports[0], reference.port);
});

Deno.test("redis_cluster mode: transactions, WATCH and blocking commands give one redis-server's replies", async () => {
  await using reference = await startRedis();
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  await _statefulStream(aster.ports[0], reference.port);
});

/** Whether process `pid` still runs (Linux), for failure messages. */
function _alive(pid: number): string {
  try {
    Deno.statSync(`/proc/${pid}`);
    return "running";
  } catch {
    return "exited";
  }
}
