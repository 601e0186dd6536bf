/**
 * redis_cluster mode against a real 3-master, 3-replica Redis Cluster, through Aster, with
 * ordinary (non-cluster) clients: the random command stream of the redis differential test
 * gives the same replies as one plain redis-server, a deep pipeline over many slots comes
 * back right and in order, cross-slot commands get CROSSSLOT, reads go to replicas with
 * `read_from_slave`, dead seeds are survived, and cluster-aware clients see a one-node
 * cluster at Aster's address.
 *
 * Failovers, a killed master and live resharding are in redis_cluster_failover_test.ts.
 *
 * Replay the differential stream with
 * `ASTER_TEST_SEED=<seed> deno test -A tests/redis_cluster_test.ts`.
 */

import assert from "node:assert/strict";
import { type ClusterToml, startAster } from "./helpers/aster.ts";
import { Random, testSeed } from "./helpers/random.ts";
import {
  nodeCommand,
  type RedisCluster,
  settledMasters,
  startRedisCluster,
} from "./helpers/redis_cluster.ts";
import {
  ALL_KEYS,
  assertStreamCoverage,
  type Cmd,
  compareAllKeys,
  compareCommandStream,
  NUMBERS,
  STRINGS,
  TAG_GROUPS,
} from "./helpers/redis_commands.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { freePort, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { keySlot } from "../src/hash/key_slot.ts";
import { commandKeyIndexes, lookupCommand } from "../src/protocol/resp/commands.ts";

const encoder = new TextEncoder();
const SEED = testSeed(0xc105_7e12);
/** Commands in the differential stream and its largest pipelined batch. */
const STREAM_COMMANDS = 3000;
const STREAM_MAX_BATCH = 50;
const STREAM_DEADLINE_MS = 30_000;
/** Commands in the one deep pipeline. */
const PIPELINE_COMMANDS = 10_000;
/** Redis's own CROSSSLOT message, as a cluster node says it. */
const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";

Deno.test("redis_cluster mode: a plain client through Aster in front of a real 3+3 Redis Cluster", async (t) => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([_clusterToml(cluster)]);
  const port = aster.ports[0];
  const masters = await settledMasters(cluster);

  // First, on the empty cluster: it counts every key the stream leaves.
  await t.step(
    "random command stream gives the same replies as one plain redis-server",
    async () => {
      await using reference = await startRedis();
      const rng = new Random(SEED);
      try {
        await using direct = await RespClient.connect(reference.port);
        await using proxied = await RespClient.connect(port);
        const stats = await compareCommandStream({ direct, proxied }, {
          rng,
          commands: STREAM_COMMANDS,
          maxBatch: STREAM_MAX_BATCH,
          deadlineMs: STREAM_DEADLINE_MS,
          check: _assertOneSlotUnlessSplit,
        });
        await compareAllKeys({ direct, proxied });

        // Every key is on the master that owns its slot (and, by the sizes, nowhere else),
        // and the keys are spread over all three masters.
        const total = await direct.command("DBSIZE") as number;
        assert.ok(total > 20, `only ${total} keys exist at the end: the stream is too destructive`);
        const sizes: number[] = [];
        for (const master of masters) {
          sizes.push(
            await nodeCommand(master.port, ["DBSIZE"]) as number,
          );
        }
        assert.equal(sizes.reduce((a, b) => a + b, 0), total, `master sizes ${sizes} vs ${total}`);
        for (const [i, size] of sizes.entries()) {
          assert.ok(size > 0, `master ${masters[i].port} holds no keys`);
        }
        const home = new Map<string, number>();
        for (const key of ALL_KEYS) {
          const owner = await cluster.ownerOf(_slot(key));
          home.set(key, owner.port);
          const exists = await direct.command("EXISTS", key);
          assert.equal(await nodeCommand(owner.port, ["EXISTS", key]), exists, key);
        }
        for (const group of TAG_GROUPS) {
          assert.equal(new Set(group.map(_slot)).size, 1, `tag group ${group} spans slots`);
        }
        // MSET/MGET/DEL/EXISTS really did split: their keys are on every master.
        const stringHomes = new Set([...STRINGS, ...NUMBERS].map((k) => home.get(k)));
        assert.equal(stringHomes.size, 3, `string keys only on masters ${[...stringHomes]}`);
        assertStreamCoverage(stats);
      } catch (err) {
        console.error(
          `\nredis_cluster_test stream failed with seed ${rng.seed}; replay with ` +
            `ASTER_TEST_SEED=${rng.seed}\naster log:\n${aster.log().slice(-2000)}`,
        );
        throw err;
      }
    },
  );

  await t.step(
    "a 10,000-command pipeline over many slots comes back right and in order",
    async () => {
      const rng = new Random(SEED ^ 0x9e37);
      const keys = Array.from({ length: 500 }, (_, i) => `pipe:${i}:value`);
      const counters = Array.from({ length: 100 }, (_, i) => `pipe:${i}:counter`);
      const model = new Map<string, string>();
      const commands: string[][] = [];
      const expected: RespValue[] = [];
      const slots = new Set<number>();
      let crossSlotMgets = 0;
      for (let i = 0; i < PIPELINE_COMMANDS; i++) {
        const roll = rng.int(100);
        if (roll < 30) {
          const key = rng.pick(keys);
          const value = `v${i}`;
          commands.push(["SET", key, value]);
          expected.push("OK");
          model.set(key, value);
        } else if (roll < 55) {
          const key = rng.pick(keys);
          commands.push(["GET", key]);
          expected.push(_bulk(model.get(key)));
        } else if (roll < 75) {
          const key = rng.pick(counters);
          const next = Number(model.get(key) ?? "0") + 1;
          commands.push(["INCR", key]);
          expected.push(next);
          model.set(key, `${next}`);
        } else if (roll < 92) {
          const picked = _distinct(rng, [...keys, ...counters], rng.range(2, 8));
          if (new Set(picked.map(_slot)).size > 1) crossSlotMgets++;
          commands.push(["MGET", ...picked]);
          expected.push(picked.map((key) => _bulk(model.get(key))));
        } else {
          const picked = _distinct(rng, [...keys, ...counters], rng.range(1, 3));
          commands.push(["DEL", ...picked]);
          expected.push(picked.filter((key) => model.has(key)).length);
          for (const key of picked) model.delete(key);
        }
        for (const arg of commands[i].slice(1)) if (arg.startsWith("pipe:")) slots.add(_slot(arg));
      }
      assert.ok(slots.size > 500, `only ${slots.size} slots`);
      assert.ok(crossSlotMgets > 1000, `only ${crossSlotMgets} cross-slot MGETs`);

      await using client = await RespClient.connect(port);
      client.timeoutMs = 10_000;
      const started = Date.now();
      const replies = await client.pipeline(commands);
      const ms = Date.now() - started;
      assert.equal(replies.length, commands.length);
      for (let i = 0; i < commands.length; i++) {
        assert.deepStrictEqual(
          text(replies[i]),
          text(expected[i]),
          `reply #${i} to ${JSON.stringify(commands[i])}`,
        );
      }
      if (Deno.env.get("ASTER_TEST_VERBOSE")) console.log(`10k pipeline: ${ms} ms`);
      // The keys really are on all three masters.
      const owners = new Set<number>();
      for (const key of keys.slice(0, 30)) owners.add((await cluster.ownerOf(_slot(key))).port);
      assert.equal(owners.size, 3);
    },
  );

  await t.step(
    "cross-slot multi-key commands get CROSSSLOT, same-tag ones and MGET work",
    async () => {
      await using client = await RespClient.connect(port);
      const [a, b] = _keysInDifferentSlots("xslot:a", "xslot:b");
      assert.notEqual(_slot(a), _slot(b));
      // A real cluster node words it so.
      const real = await nodeCommand(masters[0].port, ["SINTER", a, b]);
      assert.ok(real instanceof RespErrorReply);
      assert.equal(real.message, CROSSSLOT);

      assert.equal(await client.command("SADD", a, "m1", "m2"), 2);
      assert.equal(await client.command("SADD", b, "m2", "m3"), 2);
      for (
        const args of [
          ["SINTER", a, b],
          ["SUNIONSTORE", a, a, b],
          ["SMOVE", a, b, "m1"],
          ["RENAME", a, b],
          ["MSETNX", `${a}:s`, "1", `${b}:s`, "2"],
          ["LMOVE", `${a}:l`, `${b}:l`, "LEFT", "RIGHT"],
          ["ZUNIONSTORE", `${a}:z`, "2", `${a}:z`, `${b}:z`],
          ["EVAL", "return 1", "2", a, b],
        ]
      ) {
        const reply = await client.command(...args);
        assert.ok(reply instanceof RespErrorReply, `${args[0]}: ${JSON.stringify(text(reply))}`);
        assert.equal(reply.message, CROSSSLOT, args[0]);
      }
      // Nothing was changed by the refused commands.
      assert.deepEqual((text(await client.command("SMEMBERS", a)) as string[]).sort(), [
        "m1",
        "m2",
      ]);

      const tagA = "xslot:{team}:a";
      const tagB = "xslot:{team}:b";
      assert.equal(await client.command("SADD", tagA, "m1", "m2", "m4"), 3);
      assert.equal(await client.command("SADD", tagB, "m2", "m4", "m5"), 3);
      assert.deepEqual((text(await client.command("SINTER", tagA, tagB)) as string[]).sort(), [
        "m2",
        "m4",
      ]);
      assert.equal(await client.command("SMOVE", tagA, tagB, "m1"), 1);
      assert.equal(await client.command("RENAME", tagB, "xslot:{team}:c"), "OK");
      assert.equal(await client.command("SCARD", "xslot:{team}:c"), 4);

      // The splittable ones span slots (and masters).
      const many = Array.from({ length: 20 }, (_, i) => `xslot:mget:${i}`);
      assert.ok(new Set(many.map(_slot)).size > 10);
      const pairs = many.flatMap((key, i) => i % 3 === 2 ? [] : [key, `val-${i}`]);
      assert.equal(await client.command("MSET", ...pairs), "OK");
      assert.deepEqual(
        text(await client.command("MGET", ...many)),
        many.map((_, i) => i % 3 === 2 ? null : `val-${i}`),
      );
      assert.equal(await client.command("EXISTS", ...many, many[0]), 15);
      assert.equal(await client.command("DEL", ...many), 14);
    },
  );

  await t.step(
    "CLUSTER SLOTS/NODES/INFO/MYID/KEYSLOT describe one node at Aster's address",
    async () => {
      await using client = await RespClient.connect(port);
      const id = text(await client.command("CLUSTER", "MYID")) as string;
      assert.match(id, /^[0-9a-f]{40}$/);
      assert.deepEqual(text(await client.command("CLUSTER", "SLOTS")), [
        [0, 16383, ["127.0.0.1", port, id, []]],
      ]);
      const nodes = (text(await client.command("CLUSTER", "NODES")) as string).trim().split("\n");
      assert.equal(nodes.length, 1, `${nodes}`);
      const fields = nodes[0].split(" ");
      assert.equal(fields[0], id);
      assert.equal(fields[1].split("@")[0], `127.0.0.1:${port}`);
      assert.deepEqual(fields[2].split(",").sort(), ["master", "myself"]);
      assert.equal(fields[3], "-");
      assert.equal(fields[7], "connected");
      assert.deepEqual(fields.slice(8), ["0-16383"]);
      const info = text(await client.command("CLUSTER", "INFO")) as string;
      assert.match(info, /^cluster_state:ok\r$/m);
      assert.match(info, /^cluster_slots_assigned:16384\r$/m);
      assert.match(info, /^cluster_known_nodes:1\r$/m);
      assert.match(info, /^cluster_size:1\r$/m);
      for (const key of ["a", "foo", "{user1000}.following", "xslot:{team}:a", ""]) {
        assert.equal(
          await client.command("CLUSTER", "KEYSLOT", key),
          await nodeCommand(masters[0].port, ["CLUSTER", "KEYSLOT", key]),
          `KEYSLOT ${JSON.stringify(key)}`,
        );
      }
    },
  );

  await t.step(
    "--ip 10.1.2.3 is what CLUSTER SLOTS/NODES advertise; Aster still serves",
    async () => {
      await using advertised = await startAster([_clusterToml(cluster)], {
        args: ["--ip", "10.1.2.3"],
      });
      const port = advertised.ports[0];
      await using client = await RespClient.connect(port);
      const id = text(await client.command("CLUSTER", "MYID")) as string;
      assert.deepEqual(text(await client.command("CLUSTER", "SLOTS")), [
        [0, 16383, ["10.1.2.3", port, id, []]],
      ]);
      const nodes = text(await client.command("CLUSTER", "NODES")) as string;
      assert.equal(nodes.split(" ")[1].split("@")[0], `10.1.2.3:${port}`);
      assert.equal(await client.command("SET", "ip:key", "served"), "OK");
      assert.equal(text(await client.command("GET", "ip:key")), "served");
    },
  );

  await t.step(
    "redis-cli -c (a cluster-aware client) sets and gets keys of many slots",
    async () => {
      const keys = Array.from({ length: 60 }, (_, i) => `cli:${i}:key`);
      assert.ok(new Set(keys.map(_slot)).size > 50);
      const input = [
        ...keys.map((key, i) => `SET ${key} cli-${i}`),
        ...keys.map((key) => `GET ${key}`),
        "CLUSTER KEYSLOT cli:0:key",
      ].join("\n") + "\n";
      const child = new Deno.Command("redis-cli", {
        args: ["-c", "-h", "127.0.0.1", "-p", `${port}`],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(10_000),
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(encoder.encode(input));
      await writer.close();
      const out = await child.output();
      const stdout = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.deepEqual(stdout.trim().split("\n"), [
        ...keys.map(() => "OK"),
        ...keys.map((_, i) => `cli-${i}`),
        `${_slot("cli:0:key")}`,
      ]);
      // Really stored in the cluster, on the master owning each slot.
      for (const key of keys.slice(0, 10)) {
        const owner = await cluster.ownerOf(_slot(key));
        assert.equal(text(await nodeCommand(owner.port, ["GET", key])), `cli-${keys.indexOf(key)}`);
      }
    },
  );

  await t.step(
    "read_from_slave = true spreads reads over replicas and keeps writes on masters",
    async () => {
      // CLUSTER SLOTS lists a replica only once the cluster has heard of its replication
      // offset (not at once on a new cluster), and Aster reads replicas from that map.
      await _waitReplicasListed(cluster);
      await using reader = await startAster([_clusterToml(cluster, { read_from_slave: true })]);
      const keys = Array.from({ length: 300 }, (_, i) => `rfs:${i}:key`);
      await using client = await RespClient.connect(reader.ports[0]);
      const written = await client.pipeline(keys.map((key, i) => ["SET", key, `r${i}`]));
      assert.ok(written.every((reply) => reply === "OK"), "writes through the reader");
      await _waitReplicasCaughtUp(cluster, masters);
      await Promise.all(
        cluster.nodes.map((node) => nodeCommand(node.port, ["CONFIG", "RESETSTAT"])),
      );

      for (let round = 0; round < 4; round++) {
        const replies = await client.pipeline(keys.map((key) => ["GET", key]));
        assert.deepEqual(text(replies), keys.map((_, i) => `r${i}`), `GET round ${round}`);
      }
      let replicaGets = 0;
      let masterGets = 0;
      for (const master of masters) {
        const mine = _commandStat(await _info(master.port, "commandstats"), "get");
        masterGets += mine.calls;
        for (const replica of await cluster.replicasOf(master)) {
          const stats = await _info(replica.port, "commandstats");
          const get = _commandStat(stats, "get");
          assert.ok(get.calls > 0, `replica ${replica.port} served no GET: ${stats}`);
          assert.equal(get.rejected, 0, `replica ${replica.port} redirected GETs (no READONLY?)`);
          assert.doesNotMatch(stats, /^cmdstat_set:/m, `replica ${replica.port} got a SET`);
          replicaGets += get.calls;
        }
      }
      assert.equal(replicaGets + masterGets, keys.length * 4, `${replicaGets} + ${masterGets}`);
      assert.ok(replicaGets >= keys.length, `replicas served only ${replicaGets} GETs`);

      // Writes go to masters only: a write sent to a replica would be refused there with
      // MOVED (a rejected call); a replica's own SET calls are the replication stream's.
      const more = await client.pipeline(keys.map((key, i) => ["SET", key, `w${i}`]));
      assert.ok(more.every((reply) => reply === "OK"));
      let masterSets = 0;
      for (const master of masters) {
        masterSets += _commandStat(await _info(master.port, "commandstats"), "set").calls;
        for (const replica of await cluster.replicasOf(master)) {
          const set = _commandStat(await _info(replica.port, "commandstats"), "set");
          assert.equal(set.rejected, 0, `replica ${replica.port} was sent ${set.rejected} SETs`);
        }
      }
      assert.equal(masterSets, keys.length);
    },
  );

  await t.step("a dead first seed does not matter", async () => {
    const dead = await freePort();
    await using proxy = await startAster([
      _clusterToml(cluster, { servers: [`127.0.0.1:${dead}`, ...cluster.seeds()] }),
    ]);
    await using client = await RespClient.connect(proxy.ports[0]);
    const keys = Array.from({ length: 30 }, (_, i) => `seed:${i}:key`);
    assert.equal(await client.command("MSET", ...keys.flatMap((key) => [key, key])), "OK");
    assert.deepEqual(text(await client.command("MGET", ...keys)), keys);
  });

  await t.step(
    "with every seed dead Aster starts, answers CLUSTERDOWN fast, and recovers",
    async () => {
      const dead = await _distinctFreePorts(2);
      await using proxy = await startAster([
        _clusterToml(cluster, { servers: dead.map((p) => `127.0.0.1:${p}`) }),
      ]);
      await using client = await RespClient.connect(proxy.ports[0]);
      client.timeoutMs = 3000;
      for (const args of [["GET", "down:a"], ["SET", "down:b", "1"], ["MGET", "down:a", "x:b"]]) {
        const started = Date.now();
        const reply = await client.command(...args);
        const ms = Date.now() - started;
        assert.ok(reply instanceof RespErrorReply, `${args[0]}: ${JSON.stringify(text(reply))}`);
        assert.match(reply.message, /^CLUSTERDOWN /);
        assert.ok(ms < 1000, `${args[0]} took ${ms} ms to fail`);
      }
      // The first seed comes back (a forwarder to a real node on its port): Aster retries
      // with backoff (at most 2 s apart) and serves without a restart.
      await using _forwarder = _forward(dead[0], cluster.nodes[0].port);
      const deadline = Date.now() + 8000;
      let reply: RespValue = null;
      for (let i = 0; i < 200 && Date.now() < deadline; i++) {
        reply = await client.command("SET", "down:b", "back");
        if (reply === "OK") break;
        await _sleep(50);
      }
      assert.equal(reply, "OK", `still ${JSON.stringify(text(reply))} after the seed came back`);
      assert.equal(text(await client.command("GET", "down:b")), "back");
    },
  );
});

// ---------------------------------------------------------------------------

function _clusterToml(cluster: RedisCluster, extra: ClusterToml = {}): ClusterToml {
  return { cache_type: "redis_cluster", servers: cluster.seeds(), ...extra };
}

function _slot(key: string): number {
  return keySlot(encoder.encode(key));
}

function _bulk(value: string | undefined): string | null {
  return value ?? null;
}

/** `count` distinct items of `items`. */
function _distinct(rng: Random, items: readonly string[], count: number): string[] {
  const picked = new Set<string>();
  for (let i = 0; i < count * 10 && picked.size < count; i++) picked.add(rng.pick(items));
  return [...picked];
}

/** The generator keeps every non-split multi-key command in one slot (so the stream fits). */
function _assertOneSlotUnlessSplit(cmd: Cmd): void {
  const argv = cmd.args.map((arg) => encoder.encode(arg));
  const spec = lookupCommand(argv[0]);
  if (spec === undefined || spec.kind === "multi") return;
  const keys = commandKeyIndexes(spec, argv);
  if (keys === null) return;
  const slots = new Set(keys.map((index) => keySlot(argv[index])));
  assert.ok(slots.size <= 1, `generated ${JSON.stringify(cmd.args)} spans slots ${[...slots]}`);
}

/** `a` and a variant of `b` whose slot differs from `a`'s. */
function _keysInDifferentSlots(a: string, b: string): [string, string] {
  for (let i = 0; i < 100; i++) {
    const other = `${b}${i}`;
    if (_slot(other) !== _slot(a)) return [a, other];
  }
  throw new Error("no key in another slot");
}

async function _info(port: number, section: string): Promise<string> {
  return text(await nodeCommand(port, ["INFO", section])) as string;
}

/** calls and rejected_calls of `cmdstat_<name>` (0 when the line is absent). */
function _commandStat(info: string, name: string): { calls: number; rejected: number } {
  const line = new RegExp(`^cmdstat_${name}:(.*)$`, "m").exec(info)?.[1] ?? "";
  const field = (key: string) => Number(new RegExp(`(?:^|,)${key}=(\\d+)`).exec(line)?.[1] ?? 0);
  return { calls: field("calls"), rejected: field("rejected_calls") };
}

/** Waits until every replica of `masters` has the replication offset of its master. */
async function _waitReplicasCaughtUp(cluster: RedisCluster, masters: ServerProcess[]) {
  for (const master of masters) {
    const offset = (info: string, name: string) =>
      Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? -1);
    const target = offset(await _info(master.port, "replication"), "master_repl_offset");
    for (const replica of await cluster.replicasOf(master)) {
      let got = -1;
      for (let i = 0; i < 100 && got < target; i++) {
        got = offset(await _info(replica.port, "replication"), "slave_repl_offset");
        if (got < target) await _sleep(20);
      }
      assert.ok(got >= target, `replica ${replica.port} at offset ${got} of ${target}`);
    }
  }
}

/** Waits until every node's CLUSTER SLOTS lists a replica for each of the three masters. */
async function _waitReplicasListed(cluster: RedisCluster): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last: unknown = null;
  for (let i = 0; i < 500 && Date.now() < deadline; i++) {
    const maps = await Promise.all(
      cluster.nodes.map((node) => nodeCommand(node.port, ["CLUSTER", "SLOTS"])),
    );
    last = text(maps[0]);
    const listed = (map: RespValue) =>
      Array.isArray(map) && map.length >= 3 &&
      map.every((range) => Array.isArray(range) && range.length === 4);
    if (maps.every(listed)) return;
    await _sleep(20);
  }
  throw new Error(`replicas not in CLUSTER SLOTS: ${JSON.stringify(last)}`);
}

async function _distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < count * 20 && ports.size < count; i++) ports.add(await freePort());
  assert.equal(ports.size, count);
  return [...ports];
}

/**
 * A TCP forwarder from 127.0.0.1:`port` to 127.0.0.1:`target`; disposing it closes the
 * listener and every forwarded connection, and waits for them.
 */
function _forward(port: number, target: number): AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const conns = new Set<Deno.Conn>();
  const pumps: Promise<void>[] = [];
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(16384);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        for (let at = 0; at < n;) at += await to.write(buf.subarray(at, n));
      }
    } catch { /* closed */ }
    for (const conn of [from, to]) {
      if (conns.delete(conn)) conn.close();
    }
  };
  const accepting = (async () => {
    try {
      for await (const inbound of listener) {
        conns.add(inbound);
        try {
          const outbound = await Deno.connect({ hostname: "127.0.0.1", port: target });
          conns.add(outbound);
          pumps.push(pipe(inbound, outbound), pipe(outbound, inbound));
        } catch {
          if (conns.delete(inbound)) inbound.close();
        }
      }
    } catch { /* listener closed */ }
  })();
  return {
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await accepting;
      for (const conn of conns) conn.close();
      conns.clear();
      await Promise.all(pumps);
    },
  };
}

function _sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
