/**
 * Issue 26 (COMMAND, FUNCTION) and issue 27 (SORT patterns) in the `redis_cluster` mode, in
 * front of a real 3+3 Redis Cluster: COMMAND is a master's own answer, FUNCTION LOAD /
 * DELETE / RESTORE / FLUSH reach every master so FCALL works on every slot, and SORT BY/GET
 * patterns outside the key's slot get Redis Cluster's own refusal.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { sameBytes, showRaw } from "./helpers/raw_reply.ts";
import { nodeCommand, settledMasters, startRedisCluster } from "./helpers/redis_cluster.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import type { ServerProcess } from "./helpers/servers.ts";
import { keySlot } from "../src/hash/key_slot.ts";

const encoder = new TextEncoder();

const LIBRARY = [
  "#!lua name=clusterlib",
  "redis.register_function('cl_set', function(keys, args)",
  "  return redis.call('SET', keys[1], args[1]) end)",
  "redis.register_function{function_name='cl_get', callback=function(keys, args)",
  "  return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
].join("\n");

function slotOf(key: string): number {
  return keySlot(encoder.encode(key));
}

/** The master serving `key`'s slot, per CLUSTER SLOTS of a master. */
async function ownerOf(masters: ServerProcess[], key: string): Promise<ServerProcess> {
  const slots = await nodeCommand(masters[0].port, ["CLUSTER", "SLOTS"]) as RespValue[][];
  const slot = slotOf(key);
  for (const range of slots) {
    if ((range[0] as number) <= slot && slot <= (range[1] as number)) {
      const port = (range[2] as RespValue[])[1] as number;
      const owner = masters.find((m) => m.port === port);
      if (owner) return owner;
    }
  }
  throw new Error(`no master serves slot ${slot}`);
}

Deno.test("redis_cluster mode: COMMAND is a master's, FUNCTION reaches every master, SORT patterns follow the slot rule", async (t) => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    allow_commands: ["function"],
  }]);
  const masters = await settledMasters(cluster);
  await using proxied = await RespClient.connect(aster.ports[0]);

  await t.step("COMMAND forms are answered as a master answers them", async () => {
    await using raw = await RespClient.connect(aster.ports[0]);
    const direct = await Promise.all(masters.map((m) => RespClient.connect(m.port)));
    try {
      for (
        const form of [
          ["COMMAND", "COUNT"],
          ["COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting"],
          ["COMMAND", "INFO", "get", "eval", "sort", "nosuch"],
          ["COMMAND", "DOCS", "set"],
          ["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
          ["COMMAND", "GETKEYSANDFLAGS", "SORT", "k", "STORE", "d"],
          ["COMMAND", "NOSUCH"],
          ["COMMAND"],
        ]
      ) {
        const got = await raw.rawCommand(...form);
        const wants = await Promise.all(direct.map((c) => c.rawCommand(...form)));
        assert.ok(
          wants.some((want) => sameBytes(got, want)),
          `${form.join(" ")}: aster ${showRaw(got)}, a master ${showRaw(wants[0])}`,
        );
      }
    } finally {
      for (const client of direct) client.close();
    }
  });

  // Keys covering all three masters.
  const keys = Array.from({ length: 24 }, (_, i) => `fn:${i}`);
  const owners = new Set<number>();
  for (const key of keys) owners.add((await ownerOf(masters, key)).port);
  assert.equal(owners.size, 3, "the FCALL keys do not cover the three masters");

  await t.step(
    "FUNCTION LOAD / DELETE / RESTORE / FLUSH reach every master; FCALL works",
    async () => {
      const notFound = await proxied.command("FCALL", "cl_set", "1", keys[0], "x");
      assert.ok(notFound instanceof RespErrorReply, Deno.inspect(notFound));
      assert.equal(text(await proxied.command("FUNCTION", "LOAD", LIBRARY)), "clusterlib");
      for (const master of masters) {
        const list = await nodeCommand(master.port, ["FUNCTION", "LIST"]) as unknown[];
        assert.equal(list.length, 1, `master ${master.port} misses the library`);
      }
      for (const key of keys) {
        assert.equal(await proxied.command("FCALL", "cl_set", "1", key, `v-${key}`), "OK", key);
        assert.equal(text(await proxied.command("FCALL_RO", "cl_get", "1", key)), `v-${key}`);
      }
      const again = await proxied.command("FUNCTION", "LOAD", LIBRARY);
      assert.ok(again instanceof RespErrorReply && /already exists/.test(again.message));
      const dump = await proxied.command("FUNCTION", "DUMP") as Uint8Array;
      assert.ok(dump instanceof Uint8Array && dump.length > 10);
      assert.equal(await proxied.command("FUNCTION", "DELETE", "clusterlib"), "OK");
      for (const master of masters) {
        assert.deepEqual(await nodeCommand(master.port, ["FUNCTION", "LIST"]), []);
      }
      const gone = await proxied.command("FCALL", "cl_set", "1", keys[1], "x");
      const direct = await nodeCommand((await ownerOf(masters, keys[1])).port, [
        "FCALL",
        "cl_set",
        "1",
        keys[1],
        "x",
      ]);
      assert.deepEqual(gone, direct);
      assert.equal(await proxied.command("FUNCTION", "RESTORE", dump), "OK");
      for (const key of keys) {
        assert.equal(await proxied.command("FCALL", "cl_set", "1", key, "again"), "OK", key);
      }
      assert.equal(await proxied.command("FUNCTION", "FLUSH"), "OK");
      for (const master of masters) {
        assert.deepEqual(await nodeCommand(master.port, ["FUNCTION", "LIST"]), []);
      }
    },
  );

  await t.step("SORT BY/GET patterns: the key's slot forwarded, other slots refused", async () => {
    for (const command of [["RPUSH", "{u}list", "3", "1", "2"], ["RPUSH", "list", "3", "1", "2"]]) {
      assert.equal(await proxied.command(...command), 3);
    }
    for (const [i, weight] of [[1, 30], [2, 10], [3, 20]]) {
      assert.equal(await proxied.command("SET", `{u}w_${i}`, `${weight}`), "OK");
      assert.equal(await proxied.command("SET", `{u}o_${i}`, `object-${i}`), "OK");
    }
    // A tag of another slot.
    assert.notEqual(slotOf("{far}x"), slotOf("{u}x"));
    const owner = await ownerOf(masters, "{u}list");
    // Forwarded: the owning master's own answer (a 7.0 node refuses any pattern itself).
    for (
      const args of [
        ["SORT", "{u}list"],
        ["SORT", "{u}list", "BY", "nosort"],
        ["SORT", "{u}list", "BY", "{u}w_*"],
        ["SORT", "{u}list", "BY", "{u}w_*", "GET", "#", "GET", "{u}o_*"],
        ["SORT_RO", "{u}list", "GET", "#"],
        ["SORT", "{u}list", "NOSUCH", "BY", "w_*"],
        ["SORT", "{u}list", "BY", "{u}w_*", "STORE", "{u}dest"],
      ]
    ) {
      const got = await proxied.command(...args);
      const want = await nodeCommand(owner.port, args);
      assert.deepEqual(text(got), text(want), args.join(" "));
    }
    // Refused by Aster with Redis Cluster 7.4's own words.
    const denied = (option: string) =>
      `${option} option of SORT denied in Cluster mode when keys formed by the pattern may be ` +
      "in different slots.";
    for (
      const [args, option] of [
        [["SORT", "list", "BY", "w_*"], "BY"],
        [["SORT", "list", "GET", "o_*"], "GET"],
        [["SORT_RO", "{u}list", "BY", "{far}w_*"], "BY"],
        [["SORT", "{u}list", "GET", "#", "GET", "{far}o_*"], "GET"],
        [["SORT", "{u}list", "BY", "*{u}"], "BY"],
      ] as const
    ) {
      const reply = await proxied.command(...args);
      assert.deepEqual(reply, new RespErrorReply(`ERR ${denied(option)}`), args.join(" "));
    }
    // STORE elsewhere: Redis's own CROSSSLOT.
    const cross = await proxied.command("SORT", "{u}list", "STORE", "{far}dest");
    assert.deepEqual(
      cross,
      new RespErrorReply("CROSSSLOT Keys in request don't hash to the same slot"),
    );
    assert.equal(await proxied.command("PING"), "PONG");
  });
});
