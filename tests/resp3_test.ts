/**
 * RESP3 through Aster (HELLO 3), in both Redis modes and on both io paths: every reply
 * byte for byte what redis-server 7 sends a RESP3 client, but for the HELLO reply's `id`.
 * A seeded command stream (the differential suite's) goes to a plain redis-server and
 * through Aster, both after HELLO 3; then the RESP3 types Redis commands make (maps,
 * doubles, nulls, sets, and through Lua big numbers, verbatim strings, booleans), the
 * replies Aster builds or merges (MGET, DEL, INFO, CLIENT, SCAN, CLUSTER), pinned
 * connections (MULTI/EXEC, BLPOP), and the switches back (HELLO 2, RESET).
 *
 * Replay a failure with `ASTER_TEST_SEED=<seed> deno test -A tests/resp3_test.ts`.
 */
import assert from "node:assert/strict";
import { createClient } from "redis";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { Random, testSeed } from "./helpers/random.ts";
import { normalizeReply, RedisCommandGenerator, showReply } from "./helpers/redis_commands.ts";
import { sameBytes, showRaw } from "./helpers/raw_reply.ts";
import { RespClient } from "./helpers/resp_client.ts";
import { within } from "./helpers/ioredis_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { decodeReplyValue } from "../src/protocol/resp/reply_value.ts";

const SEED = testSeed(0x2e5b_0003);
const COMMANDS = 1500;
const MAX_BATCH = 40;
const STREAM_DEADLINE_MS = 30_000;
/** Longest a client library run may take before the test calls it hung. */
const CLIENT_TIMEOUT_MS = 20_000;
const decoder = new TextDecoder();

testBothIo("redis mode: RESP3 replies are redis-server's byte for byte", async () => {
  await using reference = await startRedis();
  const shards = [await startRedis(), await startRedis(), await startRedis()];
  try {
    await using aster = await startAster([{
      servers: shards.map((shard, i) => `127.0.0.1:${shard.port}:1 shard${i}`),
      hash_tag: "{}",
      // CONFIG GET's reply is a map under RESP3 (allowed, it goes to every backend).
      allow_commands: ["config"],
    }]);
    await _compareResp3(reference.port, aster.ports[0], () => aster.log());
  } finally {
    for (const shard of shards) await shard.stop();
  }
});

testBothIo("redis_cluster mode: RESP3 replies are redis-server's byte for byte", async () => {
  await using reference = await startRedis();
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    allow_commands: ["config"],
  }]);
  const port = aster.ports[0];
  await _compareResp3(reference.port, port, () => aster.log());
  // CLUSTER emulation as a cluster node answers a RESP3 client: SHARDS in maps, SLOTS'
  // node metadata an empty map, NODES and INFO verbatim.
  await using client = await RespClient.connect(port);
  await client.rawCommand("HELLO", "3");
  const id = decoder.decode(await client.rawCommand("CLUSTER", "MYID")).split("\r\n")[1];
  const bulk = (text: string) => `$${text.length}\r\n${text}\r\n`;
  assert.equal(
    decoder.decode(await client.rawCommand("CLUSTER", "SLOTS")),
    `*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n${bulk("127.0.0.1")}:${port}\r\n${bulk(id)}%0\r\n`,
  );
  assert.equal(
    decoder.decode(await client.rawCommand("CLUSTER", "SHARDS")),
    `*1\r\n%2\r\n${bulk("slots")}*2\r\n:0\r\n:16383\r\n${bulk("nodes")}*1\r\n%7\r\n` +
      [
        ["id", bulk(id)],
        ["port", `:${port}\r\n`],
        ["ip", bulk("127.0.0.1")],
        ["endpoint", bulk("127.0.0.1")],
        ["role", bulk("master")],
        ["replication-offset", ":0\r\n"],
        ["health", bulk("online")],
      ].map(([key, value]) => bulk(key) + value).join(""),
  );
  for (const sub of ["NODES", "INFO"]) {
    const reply = decoder.decode(await client.rawCommand("CLUSTER", sub));
    assert.match(reply, /^=\d+\r\ntxt:/, sub);
    // The same text a RESP2 client gets as a bulk string.
    await using resp2 = await RespClient.connect(port);
    const text = decodeReplyValue(await resp2.rawCommand("CLUSTER", sub)).value as Uint8Array;
    assert.equal(reply, `=${text.length + 4}\r\ntxt:${decoder.decode(text)}\r\n`, sub);
  }
});

/** The stream and the fixed RESP3 checks against `referencePort`, through `asterPort`. */
async function _compareResp3(
  referencePort: number,
  asterPort: number,
  asterLog: () => string,
): Promise<void> {
  await using direct = await RespClient.connect(referencePort);
  await using proxied = await RespClient.connect(asterPort);
  const both = async (...args: string[]) => {
    const [want, got] = await Promise.all([
      direct.rawCommand(...args),
      proxied.rawCommand(...args),
    ]);
    return { want, got };
  };
  const same = async (...args: string[]) => {
    const { want, got } = await both(...args);
    assert.ok(
      sameBytes(got, want),
      `${args.join(" ")}\n  redis: ${showRaw(want)}\n  aster: ${showRaw(got)}`,
    );
    return got;
  };

  // HELLO 3: the same map but for the server fields (the client id, the mode, and the
  // version, Aster's default until it has read the backends').
  const hello = async (version: string) => {
    const { want, got } = await both("HELLO", version);
    const serverFieldsOut = (reply: Uint8Array) =>
      decoder.decode(reply).replace(/(\$2\r\nid\r\n):\d+\r\n/, "$1:N\r\n")
        .replace(/(\$4\r\nmode\r\n)\$\d+\r\n\w+\r\n/, "$1MODE")
        .replace(/(\$7\r\nversion\r\n)\$\d+\r\n[\d.]+\r\n/, "$1VERSION");
    assert.equal(serverFieldsOut(got), serverFieldsOut(want));
    return decoder.decode(got);
  };
  assert.match(await hello("3"), /^%7\r\n/);

  // Replies Aster builds or merges, on an empty keyspace first (INFO keyspace, RANDOMKEY).
  await same("RANDOMKEY");
  await same("INFO", "keyspace");
  await same("CLIENT", "GETNAME");
  await same("MSET", "{a}1", "x", "b2", "y", "c3", "z");
  await same("MGET", "{a}1", "nokey", "b2", "c3", "other");
  await same("EXISTS", "{a}1", "b2", "nokey");
  await same("HSET", "h", "f1", "v1", "f2", "2");
  await same("HGETALL", "h");
  await same("HGETALL", "nokey");
  await same("ZADD", "z", "1.5", "one", "-inf", "low", "2e10", "big");
  await same("ZSCORE", "z", "one");
  await same("ZRANGE", "z", "0", "-1", "WITHSCORES");
  await same("ZINCRBY", "z", "0.25", "one");
  await same("SADD", "s", "only");
  await same("SMEMBERS", "s");
  await same("SISMEMBER", "s", "only");
  await same("OBJECT", "ENCODING", "h");
  await same("CONFIG", "GET", "maxmemory-policy");
  await same("GET", "nokey");
  await same("LPOP", "nokey");
  await same("INFO", "keyspace");
  await same("DEL", "{a}1", "b2", "nokey");
  await same("PING");
  await same("ECHO", "hi");
  await same("CLIENT", "SETNAME", "resp3");
  await same("CLIENT", "GETNAME");
  // Lua's RESP3 conversions: what DEBUG PROTOCOL would show (Aster refuses DEBUG).
  for (
    const script of [
      "return {double=3.25}",
      "return {double=-1/0}",
      "return {big_number='1234567999999999999999999999999999999'}",
      // Any text: redis-server writes it as it is (refusing it failed the shared connection).
      "return {big_number='1.5'}",
      "return {big_number=''}",
      "return {1, {big_number='abc'}}",
      "return {big_number=string.rep('7', 200000)}",
      "return {map={a=1}}",
      "return {set={x=true}}",
      "return {verbatim_string={format='txt', string='a verbatim\\nstring'}}",
      "return true",
      "return false",
      "return nil",
      "redis.setresp(3); return redis.call('HGETALL', KEYS[1])",
      "redis.setresp(3); return redis.call('ZSCORE', KEYS[1], 'one')",
    ]
  ) {
    const keys = script.includes("KEYS[1]") ? ["1", script.includes("ZSCORE") ? "z" : "h"] : ["0"];
    await same("EVAL", script, ...keys);
    // The connection it came on is still the one the next request takes.
    await same("GET", "nokey");
  }
  // Pinned connections say HELLO 3 too: a transaction's replies, a blocking timeout's null.
  // (One hash tag: in redis_cluster mode a transaction's keys share a slot.)
  await same("MULTI");
  await same("HSET", "{x}h", "f", "1");
  await same("HGETALL", "{x}h");
  await same("ZADD", "{x}z", "0.5", "m");
  await same("ZSCORE", "{x}z", "m");
  await same("EXEC");
  await same("BLPOP", "nolist", "0.01");
  // Errors, local refusals of the version, and CLIENT INFO's verbatim text.
  await same("HGETALL");
  await same("HELLO", "4");
  const info = decoder.decode(await proxied.rawCommand("CLIENT", "INFO"));
  assert.match(info, /^=\d+\r\ntxt:id=\d+ .* name=resp3 .* resp=3 /);
  assert.match(decoder.decode(await proxied.rawCommand("INFO", "server")), /^=\d+\r\ntxt:# Server/);

  // The seeded stream: byte for byte, or (an unordered reply) of the same type and elements.
  const rng = new Random(SEED);
  try {
    const generator = new RedisCommandGenerator(rng);
    const deadline = Date.now() + STREAM_DEADLINE_MS;
    let sent = 0;
    while (sent < COMMANDS) {
      assert.ok(Date.now() < deadline, `stream not done after ${STREAM_DEADLINE_MS} ms`);
      const batch = Array.from(
        { length: Math.min(rng.range(1, MAX_BATCH), COMMANDS - sent) },
        () => generator.next(),
      );
      const argv = batch.map((cmd) => cmd.args);
      const [expected, actual] = await Promise.all([
        direct.rawPipeline(argv),
        proxied.rawPipeline(argv),
      ]);
      for (const [i, cmd] of batch.entries()) {
        const label = `command #${sent + i}: ${JSON.stringify(cmd.args)}`;
        if (cmd.norm === "none") {
          assert.ok(
            sameBytes(actual[i], expected[i]),
            `${label}\n  redis: ${showRaw(expected[i])}\n  aster: ${showRaw(actual[i])}`,
          );
          continue;
        }
        assert.equal(actual[i][0], expected[i][0], `${label}: reply type`);
        const wantValue = normalizeReply(decodeReplyValue(expected[i]).value, cmd.norm);
        const gotValue = normalizeReply(decodeReplyValue(actual[i]).value, cmd.norm);
        assert.deepStrictEqual(
          gotValue,
          wantValue,
          `${label}\n  redis: ${showReply(wantValue)}\n  aster: ${showReply(gotValue)}`,
        );
      }
      sent += batch.length;
    }
  } catch (err) {
    console.error(
      `\nresp3_test stream failed with seed ${rng.seed}; replay with ` +
        `ASTER_TEST_SEED=${rng.seed}\naster log:\n${asterLog().slice(-2000)}`,
    );
    throw err;
  }

  // SCAN to the end: every key, each reply a two-element array as redis-server's.
  const keys = async (client: RespClient) => {
    const seen: string[] = [];
    let cursor = "0";
    for (let i = 0; i < 10_000; i++) {
      const reply = await client.rawCommand("SCAN", cursor, "COUNT", "50");
      assert.match(decoder.decode(reply.subarray(0, 5)), /^\*2\r\n\$/);
      const [next, batch] = decodeReplyValue(reply).value as [Uint8Array, Uint8Array[]];
      seen.push(...batch.map((key) => decoder.decode(key)));
      cursor = decoder.decode(next);
      if (cursor === "0") return [...new Set(seen)].sort();
    }
    throw new Error("SCAN did not end");
  };
  assert.deepEqual(await keys(proxied), await keys(direct));
  await same("DBSIZE");

  // Back to RESP2: by HELLO 2 and by RESET, for the client and its backend connections.
  assert.match(await hello("2"), /^\*14\r\n/);
  await same("HGETALL", "h");
  await same("ZSCORE", "z", "one");
  await same("CLIENT", "GETNAME");
  assert.match(await hello("3"), /^%7\r\n/);
  await same("ZSCORE", "z", "one");
  await same("HELLO", "5");
  await same("RESET");
  await same("HGETALL", "h");
  await same("ZSCORE", "z", "one");
  await same("CLIENT", "GETNAME");

  // Aster's own limit: no change of protocol while keys are watched (the pinned connection
  // speaks the protocol the WATCH began with); HELLO of the same protocol still answers.
  assert.equal(decoder.decode(await proxied.rawCommand("WATCH", "h")), "+OK\r\n");
  assert.match(
    decoder.decode(await proxied.rawCommand("HELLO", "3")),
    /^-ERR HELLO cannot change the protocol inside a transaction or with watched keys/,
  );
  assert.match(decoder.decode(await proxied.rawCommand("HELLO", "2")), /^\*14\r\n/);
  assert.equal(decoder.decode(await proxied.rawCommand("UNWATCH")), "+OK\r\n");
  assert.match(decoder.decode(await proxied.rawCommand("HELLO", "3")), /^%7\r\n/);
}

testBothIo(
  "node-redis 6 with RESP3 (its default): the same results through Aster as from redis-server",
  async () => {
    await using redis = await startRedis();
    await using reference = await startRedis();
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
    const direct = await _nodeRedisRun(reference.port);
    const proxied = await _nodeRedisRun(aster.ports[0]);
    assert.deepEqual(proxied, direct);
  },
);

testBothIo(
  "node-redis 6 with RESP3 through Aster in redis_cluster mode: the same results as from redis-server",
  async () => {
    await using reference = await startRedis();
    await using cluster = await startRedisCluster();
    await using aster = await startAster([{
      cache_type: "redis_cluster",
      servers: cluster.seeds(),
    }]);
    const direct = await _nodeRedisRun(reference.port);
    const proxied = await _nodeRedisRun(aster.ports[0]);
    assert.deepEqual(proxied, direct);
  },
);

/** node-redis (RESP3, its default): connect, MGET, a pipeline, HGETALL, SCAN to the end. */
async function _nodeRedisRun(port: number): Promise<unknown> {
  const client = createClient({
    url: `redis://127.0.0.1:${port}`,
    name: "resp3-run",
    socket: { reconnectStrategy: false },
  });
  const errors: string[] = [];
  client.on("error", (err: Error) => errors.push(err.message));
  const run = async () => {
    await client.connect();
    const out: Record<string, unknown> = {};
    out.hello = ((await client.hello()) as { proto: number }).proto;
    for (let i = 0; i < 120; i++) await client.set(`nr3:${i}`, `v${i}`);
    out.mget = await client.mGet(["nr3:1", "nr3:none", "nr3:77"]);
    out.pipeline = await client.multi()
      .set("nr3:p", "1")
      .incr("nr3:p")
      .get("nr3:p")
      .hSet("nr3:h", { a: "1", b: "x" })
      .execAsPipeline();
    out.hgetall = await client.hGetAll("nr3:h");
    out.zscore = await client.zAdd("nr3:z", { score: 2.5, value: "m" }).then(() =>
      client.zScore("nr3:z", "m")
    );
    out.name = await client.clientGetName();
    const scanned: string[] = [];
    for await (const keys of client.scanIterator({ COUNT: 20 })) scanned.push(...keys);
    out.scan = [...new Set(scanned)].sort();
    return out;
  };
  try {
    const result = await within(run(), CLIENT_TIMEOUT_MS, "node-redis RESP3 run");
    assert.deepEqual(errors, []);
    return result;
  } finally {
    client.destroy();
  }
}
