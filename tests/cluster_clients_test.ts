/**
 * Cluster-aware clients pointed at Aster in `redis_cluster` mode, in front of a real 3+3
 * Redis Cluster: INFO's `# Cluster` section, CLUSTER SHARDS / COUNTKEYSINSLOT /
 * GETKEYSINSLOT and their errors against a real cluster node, then the cluster clients of
 * redis-py, ioredis and node-redis, each seeing Aster as a one-node cluster and running
 * SET, GET, a hash-tagged MGET and a pipeline whose keys end up on the real masters.
 */
import assert from "node:assert/strict";
import Redis from "ioredis";
import { createCluster } from "redis";
import { startAster } from "./helpers/aster.ts";
import { runRedisPy } from "./helpers/redis_py.ts";
import {
  nodeCommand,
  type RedisCluster,
  settledMasters,
  startRedisCluster,
} from "./helpers/redis_cluster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { keySlot } from "../src/hash/key_slot.ts";
import { encodeCommand } from "../src/protocol/resp/encoder.ts";

const encoder = new TextEncoder();
/** Longest a client library run may take before the test calls it hung. */
const CLIENT_TIMEOUT_MS = 20_000;

Deno.test("cluster-aware clients see Aster in redis_cluster mode as a one-node cluster", async (t) => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  const port = aster.ports[0];
  const masters = await settledMasters(cluster);

  await t.step("INFO and INFO cluster have # Cluster with cluster_enabled:1", async () => {
    await using client = await RespClient.connect(port);
    // The section as a cluster node sends it, byte for byte.
    const nodeSection = text(await nodeCommand(masters[0].port, ["INFO", "cluster"]));
    assert.equal(nodeSection, "# Cluster\r\ncluster_enabled:1\r\n");
    assert.equal(text(await client.command("INFO", "cluster")), nodeSection);
    assert.equal(text(await client.command("INFO", "CLUSTER")), nodeSection);
    for (const form of [["INFO"], ["INFO", "all"], ["INFO", "everything"], ["INFO", "default"]]) {
      const info = String(text(await client.command(...form)));
      assert.match(info, /(^|\r\n)# Cluster\r\ncluster_enabled:1\r\n/, form.join(" "));
      assert.match(info, /^# Server\r\n/, form.join(" "));
    }
  });

  await t.step("CLUSTER SHARDS and SLOTS: one shard, one master at Aster's address", async () => {
    await using client = await RespClient.connect(port);
    const id = text(await client.command("CLUSTER", "MYID"));
    assert.deepEqual(text(await client.command("CLUSTER", "SHARDS")), [[
      "slots",
      [0, 16383],
      "nodes",
      [[
        "id",
        id,
        "port",
        port,
        "ip",
        "127.0.0.1",
        "endpoint",
        "127.0.0.1",
        "role",
        "master",
        "replication-offset",
        0,
        "health",
        "online",
      ]],
    ]]);
    // A real node's reply has the same layout: the same keys in the same order per node.
    const real = text(await nodeCommand(masters[0].port, ["CLUSTER", "SHARDS"])) as unknown[][];
    const realNode = (real[0][3] as unknown[][])[0];
    assert.deepEqual(realNode.filter((_, i) => i % 2 === 0), [
      "id",
      "port",
      "ip",
      "endpoint",
      "role",
      "replication-offset",
      "health",
    ]);
    assert.deepEqual(real[0].filter((_, i) => i % 2 === 0), ["slots", "nodes"]);
    // CLUSTER SLOTS as Redis 7 has it: each node ends with a map of other endpoints.
    assert.deepEqual(text(await client.command("CLUSTER", "SLOTS")), [
      [0, 16383, ["127.0.0.1", port, id, []]],
    ]);
    const realSlots = text(await nodeCommand(masters[0].port, ["CLUSTER", "SLOTS"])) as unknown[][];
    assert.deepEqual((realSlots[0][2] as unknown[]).slice(3), [[]]);
    const info = String(text(await client.command("CLUSTER", "INFO")));
    assert.match(info, /^cluster_state:ok\r\n/);
    assert.match(info, /\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n$/);
  });

  await t.step("COUNTKEYSINSLOT and GETKEYSINSLOT answer from the slot's master", async () => {
    await using client = await RespClient.connect(port);
    const keys = Array.from({ length: 5 }, (_, i) => `{slotkeys}:${i}`);
    const slot = keySlot(encoder.encode(keys[0]));
    for (const key of keys) assert.equal(await client.command("SET", key, "v"), "OK");
    const owner = await cluster.ownerOf(slot);
    // Only the owner holds the keys: any other node would count 0.
    assert.equal(await client.command("CLUSTER", "COUNTKEYSINSLOT", `${slot}`), 5);
    assert.equal(
      await client.command("CLUSTER", "COUNTKEYSINSLOT", `${slot}`),
      await nodeCommand(owner.port, ["CLUSTER", "COUNTKEYSINSLOT", `${slot}`]),
    );
    const listed = text(await client.command("CLUSTER", "GETKEYSINSLOT", `${slot}`, "10"));
    assert.deepEqual((listed as string[]).sort(), keys);
    assert.equal(
      (text(await client.command("CLUSTER", "GETKEYSINSLOT", `${slot}`, "2")) as string[]).length,
      2,
    );
    const other = (slot + 8192) % 16384;
    assert.equal(await client.command("CLUSTER", "COUNTKEYSINSLOT", `${other}`), 0);
  });

  await t.step("CLUSTER errors are a cluster node's, byte for byte", async () => {
    await using client = await RespClient.connect(port);
    await using node = await RespClient.connect(masters[0].port);
    const cases = [
      ["CLUSTER", "COUNTKEYSINSLOT"],
      ["CLUSTER", "COUNTKEYSINSLOT", "x"],
      ["CLUSTER", "COUNTKEYSINSLOT", "16384"],
      ["CLUSTER", "COUNTKEYSINSLOT", "-1"],
      ["CLUSTER", "COUNTKEYSINSLOT", "99999999999999999999"],
      ["CLUSTER", "COUNTKEYSINSLOT", "1", "2"],
      ["CLUSTER", "GETKEYSINSLOT", "1"],
      ["CLUSTER", "GETKEYSINSLOT", "x", "1"],
      ["CLUSTER", "GETKEYSINSLOT", "1", "x"],
      ["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
      ["CLUSTER", "GETKEYSINSLOT", "16384", "1"],
      ["CLUSTER", "KEYSLOT"],
      ["CLUSTER", "KEYSLOT", "a", "b"],
      ["CLUSTER", "SLOTS", "x"],
      ["CLUSTER", "SHARDS", "x"],
      ["CLUSTER", "NODES", "x"],
      ["CLUSTER", "INFO", "x"],
      ["CLUSTER", "MYID", "x"],
      ["CLUSTER", "NoSuchThing"],
      ["CLUSTER", "constructor"],
      ["CLUSTER"],
      ["READONLY"],
      ["READWRITE"],
      ["ASKING"],
      ["CLUSTER", "KEYSLOT", "{user1000}.following"],
    ];
    for (const args of cases) {
      const expected = await _raw(node, args);
      assert.equal(await _raw(client, args), expected, args.join(" "));
    }
    // Subcommands that would change the cluster are refused by name.
    const refusal = await client.command("CLUSTER", "SETSLOT", "1", "STABLE");
    assert.ok(refusal instanceof RespErrorReply);
    assert.match(refusal.message, /^ERR CLUSTER SETSLOT is not supported by aster/);
  });

  await t.step("redis-py RedisCluster: SET, GET, MGET with a hash tag, a pipeline", async () => {
    await _redisPy(cluster, port, "py");
  });

  await t.step("redis-py RedisCluster with a password: AUTH first, as to a node", async () => {
    await using guarded = await startAster([{
      cache_type: "redis_cluster",
      servers: cluster.seeds(),
      password: "cluster-secret",
    }]);
    await _redisPy(cluster, guarded.ports[0], "pyauth", "cluster-secret");
    await using client = await RespClient.connect(guarded.ports[0]);
    for (const args of [["INFO", "cluster"], ["CLUSTER", "SLOTS"], ["PING"]]) {
      const reply = await client.command(...args);
      assert.ok(reply instanceof RespErrorReply, args.join(" "));
      assert.equal(reply.message, "NOAUTH Authentication required.");
    }
  });

  await t.step({
    name: "ioredis Cluster: SET, GET, MGET with a hash tag, a pipeline",
    fn: async () => {
      const client = new Redis.Cluster([{ host: "127.0.0.1", port }], {
        clusterRetryStrategy: () => null,
        redisOptions: { connectTimeout: 5000, maxRetriesPerRequest: 1 },
      });
      try {
        const run = async () => {
          assert.equal(await client.set("{io}:a", "io-1"), "OK");
          await client.set("{io}:b", "io-2");
          assert.equal(await client.get("{io}:a"), "io-1");
          assert.deepEqual(await client.mget("{io}:a", "{io}:b", "{io}:none"), [
            "io-1",
            "io-2",
            null,
          ]);
          const replies = await client.pipeline()
            .set("io:pipe:0", "io-pipe-0")
            .set("io:pipe:1", "io-pipe-1")
            .get("io:pipe:0")
            .incr("io:pipe:n")
            .exec();
          assert.deepEqual(replies, [
            [null, "OK"],
            [null, "OK"],
            [null, "io-pipe-0"],
            [null, 1],
          ]);
          const nodes = client.nodes("all").map((n) => `${n.options.host}:${n.options.port}`);
          assert.deepEqual(nodes, [`127.0.0.1:${port}`]);
        };
        await _within(CLIENT_TIMEOUT_MS, "ioredis", run());
      } finally {
        await client.quit().catch(() => client.disconnect());
      }
      await _assertStoredOnOwners(cluster, {
        "{io}:a": "io-1",
        "{io}:b": "io-2",
        "io:pipe:0": "io-pipe-0",
        "io:pipe:1": "io-pipe-1",
        "io:pipe:n": "1",
      });
    },
  });

  // node-redis 6 says HELLO 3 by default (RESP3); RESP: 2 is its other protocol.
  for (const resp of [3, 2] as const) {
    const p = `nr${resp}`;
    await t.step({
      name: `node-redis createCluster (RESP${resp}): SET, GET, MGET with a hash tag, a pipeline`,
      fn: async () => {
        const client = createCluster({
          rootNodes: [{ socket: { host: "127.0.0.1", port, reconnectStrategy: false } }],
          RESP: resp,
        });
        client.on("error", () => {});
        try {
          const run = async () => {
            await client.connect();
            assert.equal(await client.set(`{${p}}:a`, `${p}-1`), "OK");
            await client.set(`{${p}}:b`, `${p}-2`);
            assert.equal(await client.get(`{${p}}:a`), `${p}-1`);
            assert.deepEqual(await client.mGet([`{${p}}:a`, `{${p}}:b`, `{${p}}:none`]), [
              `${p}-1`,
              `${p}-2`,
              null,
            ]);
            // node-redis pipelines the commands of one tick on each node's connection.
            const replies = await Promise.all([
              client.set(`${p}:pipe:0`, `${p}-pipe-0`),
              client.set(`${p}:pipe:1`, `${p}-pipe-1`),
              client.get(`${p}:pipe:0`),
              client.incr(`${p}:pipe:n`),
            ]);
            assert.deepEqual(replies, ["OK", "OK", `${p}-pipe-0`, 1]);
            const multi = await client.multi()
              .get(`{${p}}:a`)
              .get(`{${p}}:b`)
              .execAsPipeline();
            assert.deepEqual(multi, [`${p}-1`, `${p}-2`]);
            const masters = client.masters.map((m) => `${m.host}:${m.port}`);
            assert.deepEqual(masters, [`127.0.0.1:${port}`]);
          };
          await _within(CLIENT_TIMEOUT_MS, "node-redis", run());
        } finally {
          await client.close().catch(() => client.destroy());
        }
        await _assertStoredOnOwners(cluster, {
          [`{${p}}:a`]: `${p}-1`,
          [`{${p}}:b`]: `${p}-2`,
          [`${p}:pipe:0`]: `${p}-pipe-0`,
          [`${p}:pipe:1`]: `${p}-pipe-1`,
          [`${p}:pipe:n`]: "1",
        });
      },
    });
  }
});

Deno.test("redis mode: INFO's # Cluster says cluster_enabled:0, as a standalone redis-server", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`] }]);
  await using client = await RespClient.connect(aster.ports[0]);
  const expected = text(await nodeCommand(redis.port, ["INFO", "cluster"]));
  assert.equal(expected, "# Cluster\r\ncluster_enabled:0\r\n");
  assert.equal(text(await client.command("INFO", "cluster")), expected);
  assert.match(
    String(text(await client.command("INFO"))),
    /\r\n# Cluster\r\ncluster_enabled:0\r\n/,
  );
  // CLUSTER stays refused outside redis_cluster mode.
  const refused = await client.command("CLUSTER", "COUNTKEYSINSLOT", "1");
  assert.ok(refused instanceof RespErrorReply);
  assert.match(refused.message, /not supported by aster/);
});

/**
 * redis-py's cluster client (Debian's python3-redis): connects to the one seed, then runs
 * the commands and prints what it got as JSON.
 */
const REDIS_PY_SCRIPT = `
import json, sys
from redis.cluster import RedisCluster
host, port, p = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password = sys.argv[4] if len(sys.argv) > 4 else None
rc = RedisCluster(host=host, port=port, password=password, socket_timeout=5,
                  socket_connect_timeout=5)
out = {"nodes": sorted(n.name for n in rc.get_nodes())}
out["set"] = rc.set("{%s}:a" % p, "1")
rc.set("{%s}:b" % p, "2")
out["get"] = rc.get("{%s}:a" % p).decode()
keys = ["{%s}:%s" % (p, k) for k in ("a", "b", "none")]
out["mget"] = [v.decode() if v is not None else None for v in rc.mget(*keys)]
pipe = rc.pipeline()
pipe.set("%s:pipe:0" % p, "p0")
pipe.set("%s:pipe:1" % p, "p1")
pipe.get("%s:pipe:0" % p)
pipe.incr("%s:pipe:n" % p)
replies = pipe.execute()
replies[2] = replies[2].decode()
pair = rc.mget_nonatomic("%s:pipe:0" % p, "%s:pipe:1" % p)
replies.append([v.decode() for v in pair])
out["pipeline"] = replies
rc.close()
print(json.dumps(out))
`;

/** The reply's RESP bytes, as text. */
async function _raw(client: RespClient, args: string[]): Promise<string> {
  await client.sendRaw(encodeCommand(args.map((arg) => encoder.encode(arg))));
  return new TextDecoder().decode(await client.readRawReply());
}

/**
 * redis-py's RedisCluster on Aster at `port`: one node, and SET/GET/MGET/pipeline replies
 * and stored values as expected, keys prefixed with `prefix`.
 */
async function _redisPy(
  cluster: RedisCluster,
  port: number,
  prefix: string,
  password?: string,
): Promise<void> {
  const args = ["127.0.0.1", `${port}`, prefix, ...(password ? [password] : [])];
  assert.deepEqual(await runRedisPy(REDIS_PY_SCRIPT, args, CLIENT_TIMEOUT_MS), {
    nodes: [`127.0.0.1:${port}`],
    set: true,
    get: "1",
    mget: ["1", "2", null],
    pipeline: [true, true, "p0", 1, ["p0", "p1"]],
  });
  await _assertStoredOnOwners(cluster, {
    [`{${prefix}}:a`]: "1",
    [`{${prefix}}:b`]: "2",
    [`${prefix}:pipe:0`]: "p0",
    [`${prefix}:pipe:1`]: "p1",
    [`${prefix}:pipe:n`]: "1",
  });
}

/** Each key holds its value on the master that owns its slot (so Aster routed it). */
async function _assertStoredOnOwners(
  cluster: RedisCluster,
  expected: Record<string, string>,
): Promise<void> {
  for (const [key, value] of Object.entries(expected)) {
    const owner = await cluster.ownerOf(keySlot(encoder.encode(key)));
    assert.equal(text(await nodeCommand(owner.port, ["GET", key])), value, key);
  }
}

/** `work`, or a failure naming `what` after `ms`. */
async function _within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
