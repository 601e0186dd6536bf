/**
 * Keyspace-wide commands through Aster, over 3 shards and over a real Redis Cluster: SCAN
 * to the end with node-redis's scanIterator, ioredis's scanStream and redis-py's scan_iter
 * returns exactly the keys written; DBSIZE, RANDOMKEY, INFO keyspace and TIME answer.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { runRedisPy } from "./helpers/redis_py.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

const KEYS = Array.from({ length: 300 }, (_, i) => `ks:${i * 7919}`);
const CLIENT_TIMEOUT_MS = 20_000;

const REDIS_PY_SCRIPT = `
import json, sys
import redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=5)
print(json.dumps(sorted(k.decode() for k in r.scan_iter(match="ks:*", count=50))))
`;

/** Writes KEYS through Aster and checks every keyspace command against them. */
async function _checkKeyspace(port: number): Promise<void> {
  await using raw = await RespClient.connect(port);
  for (const key of KEYS) assert.equal(await raw.command("SET", key, "v"), "OK");
  assert.equal(await raw.command("EXPIRE", KEYS[0], "1000"), 1);
  assert.equal(await raw.command("DBSIZE"), KEYS.length);
  const random = text(await raw.command("RANDOMKEY")) as string;
  assert.ok(KEYS.includes(random), `RANDOMKEY gave ${random}`);
  const info = String(text(await raw.command("INFO", "keyspace")));
  assert.match(info, new RegExp(`^# Keyspace\\r\\ndb0:keys=${KEYS.length},expires=1,avg_ttl=\\d+`));
  // With other sections: Aster's own first (in its order, as Redis 7 orders several), then
  // the backends' summed keyspace, sections once each.
  for (const args of [["keyspace", "server"], ["SERVER", "keyspace", "server", "clients"]]) {
    const both = String(text(await raw.command("INFO", ...args)));
    const titles = [...both.matchAll(/^# (\w+)\r$/gm)].map((m) => m[1]);
    assert.deepEqual(
      titles,
      args.length === 2 ? ["Server", "Keyspace"] : [
        "Server",
        "Clients",
        "Keyspace",
      ],
      both,
    );
    assert.match(both, new RegExp(`\\r\\n\\r\\n# Keyspace\\r\\ndb0:keys=${KEYS.length},`));
  }
  assert.equal(text(await raw.command("INFO", "nosuch")), "");
  const time = text(await raw.command("TIME")) as string[];
  assert.equal(time.length, 2);
  for (const malformed of ["abc", " 1", "-", "18446744073709551616"]) {
    const bad = await raw.command("SCAN", malformed);
    assert.ok(bad instanceof RespErrorReply && bad.message === "ERR invalid cursor", malformed);
  }
  // What redis-server's strtoul takes: "" and "+0" start a scan, a cursor from past the last
  // node (a negative one wraps past 2^63) ends it.
  for (const start of ["", "+0"]) {
    const reply = text(await raw.command("SCAN", start, "COUNT", "1000")) as [string, string[]];
    assert.ok(reply[1].length > 0, `SCAN "${start}" starts the scan`);
  }
  assert.deepEqual(text(await raw.command("SCAN", "-1")), ["0", []]);

  // A scan by hand: cursors move from node to node and end at 0.
  const seen = new Set<string>();
  let cursor = "0";
  do {
    const [next, keys] = text(await raw.command("SCAN", cursor, "COUNT", "40")) as [
      string,
      string[],
    ];
    for (const key of keys) seen.add(key);
    cursor = next;
  } while (cursor !== "0");
  assert.deepEqual([...seen].sort(), [...KEYS].sort());

  const node = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2 });
  node.on("error", () => {});
  await node.connect();
  try {
    const found: string[] = [];
    for await (const batch of node.scanIterator({ MATCH: "ks:*", COUNT: 50 })) {
      if (Array.isArray(batch)) found.push(...batch);
      else found.push(batch as string);
    }
    assert.deepEqual(found.sort(), [...KEYS].sort(), "node-redis scanIterator");
  } finally {
    node.destroy();
  }

  const io = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 });
  try {
    const found: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = io.scanStream({ match: "ks:*", count: 50 });
      stream.on("data", (keys: string[]) => found.push(...keys));
      stream.on("end", () => resolve());
      stream.on("error", reject);
    });
    assert.deepEqual(found.sort(), [...KEYS].sort(), "ioredis scanStream");
  } finally {
    io.disconnect();
  }

  assert.deepEqual(
    await runRedisPy(REDIS_PY_SCRIPT, [String(port)], CLIENT_TIMEOUT_MS),
    [...KEYS].sort(),
  );
}

testBothIo(
  "keyspace commands over 3 shards: SCAN by every client, DBSIZE, RANDOMKEY, INFO",
  async () => {
    await using a = await startRedis();
    await using b = await startRedis();
    await using c = await startRedis();
    await using aster = await startAster([{
      servers: [`127.0.0.1:${a.port}:1 a`, `127.0.0.1:${b.port}:1 b`, `127.0.0.1:${c.port}:1 c`],
    }]);
    await using raw = await RespClient.connect(aster.ports[0]);
    assert.equal(await raw.command("RANDOMKEY"), null, "nil when every node is empty");
    assert.equal(await raw.command("DBSIZE"), 0);
    await _checkKeyspace(aster.ports[0]);
    // Every shard holds some: the scan crossed nodes.
    for (const server of [a, b, c]) {
      await using direct = await RespClient.connect(server.port);
      assert.ok((await direct.command("DBSIZE") as number) > 0);
    }
  },
);

testBothIo("keyspace commands over a Redis Cluster: SCAN visits every master", async () => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  await _checkKeyspace(aster.ports[0]);
});
