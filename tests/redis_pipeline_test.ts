/**
 * Redis mode through Aster over three redis-servers: deep pipelines, concurrent clients,
 * binary-safe and large values, many connections, local commands, inline requests, and
 * the errors for commands Aster refuses.
 */

import assert from "node:assert/strict";
import { type AsterProcess, type ClusterToml, startAster, testBothIo } from "./helpers/aster.ts";
import { Random } from "./helpers/random.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodeCommand } from "../src/protocol/resp/encoder.ts";

const encoder = new TextEncoder();

/** Three redis-servers and Aster sharding over them with hash_tag "{}". */
interface Cluster extends AsyncDisposable {
  shards: ServerProcess[];
  aster: AsterProcess;
  /** Aster's listen port. */
  port: number;
}

async function _startCluster(extra: ClusterToml = {}): Promise<Cluster> {
  const stack = new AsyncDisposableStack();
  try {
    const shards: ServerProcess[] = [];
    for (let i = 0; i < 3; i++) shards.push(stack.use(await startRedis()));
    const aster = stack.use(
      await startAster([{
        servers: shards.map((shard, i) => `127.0.0.1:${shard.port}:1 shard${i}`),
        hash_tag: "{}",
        ...extra,
      }]),
    );
    return {
      shards,
      aster,
      port: aster.ports[0],
      [Symbol.asyncDispose]: () => stack.disposeAsync(),
    };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}

/** Index of the shard holding `key` (asked of each redis-server directly), -1 if none. */
async function _shardOf(cluster: Cluster, key: string | Uint8Array): Promise<number> {
  let found = -1;
  for (const [i, shard] of cluster.shards.entries()) {
    await using client = await RespClient.connect(shard.port);
    if (await client.command("EXISTS", key) === 1) {
      assert.equal(found, -1, `key on shards ${found} and ${i}`);
      found = i;
    }
  }
  return found;
}

/** DBSIZE of each shard. */
async function _shardSizes(cluster: Cluster): Promise<number[]> {
  const sizes: number[] = [];
  for (const shard of cluster.shards) {
    await using client = await RespClient.connect(shard.port);
    sizes.push(await client.command("DBSIZE") as number);
  }
  return sizes;
}

/**
 * Asserts replies (bulk strings as text) equal the expected ones, reporting the first
 * difference with its index and command rather than a 10,000-line diff.
 */
function _assertReplies(
  actual: RespValue[],
  expected: unknown[],
  commands: (string | Uint8Array)[][],
): void {
  assert.equal(actual.length, expected.length, "reply count");
  for (let i = 0; i < expected.length; i++) {
    assert.deepStrictEqual(
      text(actual[i]),
      expected[i],
      `reply ${i} of ${expected.length} to ${JSON.stringify(text(commands[i] as RespValue))}`,
    );
  }
}

/** A key name whose varying part comes first, so neighbouring keys spread over nodes. */
function _key(i: number, label: string): string {
  return `${i}:${label}`;
}

/** Mixed SET/GET/INCR/MGET/MSET/DEL commands over `keys` keys and their expected replies. */
function _mixedPipeline(
  count: number,
  opts: { label: string; keys: number; rng: Random },
): { commands: string[][]; expected: unknown[] } {
  const { label, keys, rng } = opts;
  const values = new Map<string, string>();
  const counters = new Map<string, number>();
  const commands: string[][] = [];
  const expected: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const key = _key(rng.int(keys), `${label}:key`);
    switch (rng.int(5)) {
      case 0: {
        const value = `value-${i}-${rng.int(1e6)}`;
        values.set(key, value);
        commands.push(["SET", key, value]);
        expected.push("OK");
        break;
      }
      case 1:
        commands.push(["GET", key]);
        expected.push(values.get(key) ?? null);
        break;
      case 2: {
        const counter = _key(rng.int(20), `${label}:counter`);
        const next = (counters.get(counter) ?? 0) + 1;
        counters.set(counter, next);
        commands.push(["INCR", counter]);
        expected.push(next);
        break;
      }
      case 3: {
        const many = Array.from(
          { length: rng.range(2, 40) },
          () => _key(rng.int(keys), `${label}:key`),
        );
        commands.push(["MGET", ...many]);
        expected.push(many.map((k) => values.get(k) ?? null));
        break;
      }
      default: {
        // MSET and DEL over a few short-lived keys spread across shards: DEL's merged count
        // is the number of distinct keys that existed.
        const some = Array.from(
          { length: rng.range(1, 4) },
          () => _key(rng.int(30), `${label}:tmp`),
        );
        if (rng.chance(0.5)) {
          commands.push(["MSET", ...some.flatMap((k) => [k, `tmp-${i}`])]);
          for (const k of some) values.set(k, `tmp-${i}`);
          expected.push("OK");
        } else {
          const existing = new Set(some.filter((k) => values.has(k)));
          for (const k of existing) values.delete(k);
          commands.push(["DEL", ...some]);
          expected.push(existing.size);
        }
      }
    }
  }
  return { commands, expected };
}

testBothIo(
  "redis mode: a 10,000-command pipeline in one write gets every reply, in order",
  async () => {
    await using cluster = await _startCluster();
    await using client = await RespClient.connect(cluster.port);
    const { commands, expected } = _mixedPipeline(10_000, {
      label: "deep",
      keys: 300,
      rng: new Random(10_000),
    });
    assert.ok(commands.filter((c) => c[0] === "MGET").length > 1500);
    const started = performance.now();
    const replies = await client.pipeline(commands);
    _assertReplies(replies, expected, commands);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 20_000, `pipeline took ${elapsed} ms`);
    // The keys behind those MGETs really were spread over all three shards.
    const sizes = await _shardSizes(cluster);
    assert.ok(sizes.every((n) => n > 30), `shard sizes ${sizes}`);

    // One MGET and one DEL over 10,000 keys (a third of them set), split three ways.
    const keys = Array.from({ length: 10_000 }, (_, i) => _key(i, "wide"));
    const set = keys.filter((_, i) => i % 3 === 0);
    assert.equal(await client.command("MSET", ...set.flatMap((k) => [k, `w${k}`])), "OK");
    const values = await client.command("mGeT", ...keys) as RespValue[];
    assert.equal(values.length, keys.length);
    keys.forEach((key, i) => {
      assert.deepStrictEqual(text(values[i]), i % 3 === 0 ? `w${key}` : null, `MGET ${key}`);
    });
    assert.equal(await client.command("EXISTS", ...keys, ...keys), 2 * set.length);
    assert.equal(await client.command("DEL", ...keys), set.length);
    assert.equal(await client.command("EXISTS", ...keys), 0);
  },
);

testBothIo(
  "redis mode: local replies after large ones and a change of connection are all written",
  async () => {
    // A local reply's slot counts as in flight while reserved: after large replies (a large
    // mean reply size) it alone filled the in-flight budget, and with nothing in flight no
    // reply came to go on, so the next ECHO waited for the client to send more.
    await using redis = await startRedis();
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1 r1`] }]);
    await using client = await RespClient.connect(aster.ports[0]);
    client.timeoutMs = 5000;
    const big = "x".repeat(2_000_000);
    assert.equal(await client.command("SET", "big", big), "OK");
    for (const change of [["HELLO", "3"], ["WATCH", "big"], ["BLPOP", "nolist", "0.01"]]) {
      const commands = [
        ["GET", "big"],
        change,
        ...Array.from({ length: 4 }, () => ["MGET", "big", "big"]),
        ["ECHO", "a"],
        ["ECHO", "b"],
        ["ECHO", "c"],
      ];
      const replies = await client.pipeline(commands);
      assert.equal(replies.length, commands.length);
      assert.deepEqual(replies.slice(-3).map(text), ["a", "b", "c"], change.join(" "));
      await client.command("HELLO", "2");
      await client.command("UNWATCH");
    }
  },
);

testBothIo(
  "redis mode: concurrent clients pipelining their own keys each get their own replies",
  async () => {
    // Two workers and two connections per node: clients multiplexed over several sockets.
    await using cluster = await _startCluster({ thread: 2, node_connections: 2 });
    const clients = 8;
    const rounds = 4;
    await Promise.all(Array.from({ length: clients }, async (_, id) => {
      await using client = await RespClient.connect(cluster.port);
      const rng = new Random(id + 1);
      // One model per client across rounds: the key label is unique to the client.
      const { commands, expected } = _mixedPipeline(rounds * 1000, {
        label: `client${id}`,
        keys: 100,
        rng,
      });
      for (let round = 0; round < rounds; round++) {
        const from = round * 1000;
        const batch = commands.slice(from, from + 1000);
        const replies = await client.pipeline(batch);
        _assertReplies(replies, expected.slice(from, from + 1000), batch);
      }
    }));
    const sizes = await _shardSizes(cluster);
    assert.ok(sizes.every((n) => n > 0), `shard sizes ${sizes}`);
  },
);

testBothIo(
  "redis mode: keys and values are binary-safe, and a 5 MB value round-trips exactly",
  async () => {
    await using cluster = await _startCluster();
    await using client = await RespClient.connect(cluster.port);
    client.timeoutMs = 15_000;

    const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const reversed = allBytes.slice().reverse();
    const lookalike = encoder.encode("a\r\nb\r\n\r\n$3\r\n*1\r\n-ERR no\r\n+OK\r\n:1\r\n");
    const crlfKey = encoder.encode("key\r\nwith\r\n$-1\r\ncrlf");
    const pairs: [Uint8Array, Uint8Array][] = [
      [allBytes, reversed],
      [reversed, allBytes],
      [crlfKey, lookalike],
      [encoder.encode("empty:value"), new Uint8Array(0)],
      [new Uint8Array(0), encoder.encode("the empty key")],
      [encoder.encode("nul\0key"), encoder.encode("\0\0\0")],
    ];
    for (const [key, value] of pairs) {
      assert.equal(await client.command("SET", key, value), "OK");
    }
    for (const [key, value] of pairs) {
      _assertBytes(await client.command("GET", key), value, `GET ${Deno.inspect(key)}`);
    }
    // The same through one pipelined MGET spanning the shards.
    const mget = await client.command("MGET", ...pairs.map(([key]) => key)) as RespValue[];
    assert.equal(mget.length, pairs.length);
    pairs.forEach(([, value], i) => _assertBytes(mget[i], value, `MGET element ${i}`));
    assert.equal(await client.command("STRLEN", allBytes), 256);
    assert.equal(await client.command("EXISTS", ...pairs.map(([key]) => key)), pairs.length);

    // A 5 MB value of random bytes: SET, GET, MGET with small keys on the other shards.
    const big = new Random(5).bytes(5 * 1024 * 1024);
    const bigKey = "big:{blob}";
    assert.equal(await client.command("SET", bigKey, big), "OK");
    _assertBytes(await client.command("GET", bigKey), big, "GET 5 MB");
    const others = Array.from({ length: 12 }, (_, i) => _key(i, "small"));
    for (const key of others) await client.command("SET", key, `small ${key}`);
    const homes = new Set<number>();
    for (const key of [bigKey, ...others]) homes.add(await _shardOf(cluster, key));
    assert.equal(homes.size, 3, "the MGET below should span all three shards");
    const keys = [others[0], bigKey, ...others.slice(1), "missing:key", bigKey];
    const replies = await client.command("MGET", ...keys) as RespValue[];
    assert.equal(replies.length, keys.length);
    for (const [i, key] of keys.entries()) {
      const want = key === bigKey
        ? big
        : key === "missing:key"
        ? null
        : encoder.encode(`small ${key}`);
      if (want === null) assert.equal(replies[i], null);
      else _assertBytes(replies[i], want, `MGET element ${i} (${key})`);
    }
    // Pipelined: the big value in and out twice in one write, replies still in order.
    const piped = await client.pipeline([
      ["SET", "big2:{blob}", big],
      ["GET", "big2:{blob}"],
      ["STRLEN", bigKey],
      ["GET", bigKey],
      ["PING"],
    ]);
    assert.equal(piped[0], "OK");
    _assertBytes(piped[1], big, "pipelined GET");
    assert.equal(piped[2], big.length);
    _assertBytes(piped[3], big, "pipelined GET 2");
    assert.equal(piped[4], "PONG");

    // Large array replies framed across many backend reads: a 100,000-element list and a
    // stream of 5,000 entries (nested arrays).
    const items = Array.from({ length: 100_000 }, (_, i) => `item-${i}`);
    for (let i = 0; i < items.length; i += 10_000) {
      assert.equal(
        await client.command("RPUSH", "big:list", ...items.slice(i, i + 10_000)),
        i + 10_000,
      );
    }
    assert.deepStrictEqual(text(await client.command("LRANGE", "big:list", "0", "-1")), items);
    const entries = Array.from(
      { length: 5000 },
      (_, i) => [`${i + 1}-1`, ["f", `v${i}`, "pad", "x".repeat(i % 64)]],
    );
    await client.pipeline(
      entries.map(([id, fields]) => ["XADD", "big:stream", id as string, ...fields]),
    );
    assert.deepStrictEqual(text(await client.command("XRANGE", "big:stream", "-", "+")), entries);
  },
);

function _assertBytes(actual: RespValue, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: not bulk bytes: ${Deno.inspect(actual)}`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

testBothIo("redis mode: 500 concurrent client connections each get their own answers", async () => {
  await using cluster = await _startCluster({ thread: 2 });
  const count = 500;
  const clients = await Promise.all(
    Array.from({ length: count }, () => RespClient.connect(cluster.port)),
  );
  try {
    const started = performance.now();
    await Promise.all(clients.map(async (client, i) => {
      client.timeoutMs = 20_000;
      const own = _key(i, "conn:own");
      const second = _key(i, "conn:second");
      assert.equal(await client.command("SET", own, `v${i}`), "OK");
      assert.equal(await client.command("SET", second, `w${i}`), "OK");
      assert.deepStrictEqual(text(await client.command("GET", own)), `v${i}`);
      assert.deepStrictEqual(
        text(await client.command("MGET", second, _key(i, "conn:missing"), own)),
        [`w${i}`, null, `v${i}`],
      );
      assert.equal(typeof await client.command("INCR", "shared:counter"), "number");
      assert.equal(await client.command("PING"), "PONG");
    }));
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 30_000, `500 clients took ${elapsed} ms`);
    // Every INCR landed exactly once.
    assert.equal(text(await clients[0].command("GET", "shared:counter")), `${count}`);
    // The 1,000 keys are all there, spread over the shards.
    const sizes = await _shardSizes(cluster);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 2 * count + 1, `shard sizes ${sizes}`);
    assert.ok(sizes.every((n) => n > 100), `shard sizes ${sizes}`);
  } finally {
    for (const client of clients) client.close();
  }
});

testBothIo(
  "redis mode: PING, ECHO, SELECT, COMMAND, QUIT are answered locally; inline commands work",
  async () => {
    await using cluster = await _startCluster();
    await using client = await RespClient.connect(cluster.port);
    assert.equal(await client.command("PING"), "PONG");
    assert.equal(await client.command("ping"), "PONG");
    assert.deepStrictEqual(text(await client.command("PING", "hello there")), "hello there");
    assert.deepStrictEqual(text(await client.command("ECHO", "echo\r\nme")), "echo\r\nme");
    assert.equal(await client.command("SELECT", "0"), "OK");
    const select1 = await client.command("SELECT", "1");
    assert.ok(select1 instanceof RespErrorReply, `SELECT 1 gave ${Deno.inspect(select1)}`);
    assert.match(select1.message, /^ERR DB index is out of range/);
    const count = await client.command("COMMAND", "COUNT");
    assert.ok(typeof count === "number" && count > 200, `COMMAND COUNT gave ${count}`);
    const info = await client.command("COMMAND", "INFO", "get") as RespValue[][];
    assert.deepStrictEqual(text(info[0][0]), "get");
    assert.equal(info[0][1], 2);

    // Inline (telnet-style) requests, alone and pipelined, CRLF or bare LF.
    await client.sendRaw("PING\r\n");
    assert.equal(await client.readReply(), "PONG");
    await client.sendRaw("SET inline:key hello\r\n");
    assert.equal(await client.readReply(), "OK");
    assert.deepStrictEqual(text(await client.command("GET", "inline:key")), "hello");
    await client.sendRaw('SET "inline quoted" "a b\\r\\n"\r\nGET "inline quoted"\nPING\n');
    assert.equal(await client.readReply(), "OK");
    assert.deepStrictEqual(text(await client.readReply()), "a b\r\n");
    assert.equal(await client.readReply(), "PONG");
    await client.sendRaw("MGET inline:key 0:nothing 'inline quoted'\r\n");
    assert.deepStrictEqual(text(await client.readReply()), ["hello", null, "a b\r\n"]);
    // A quote inside a word opens a quoted part of that argument, as in redis-server.
    await client.sendRaw(`SET inline:a"b c" v\r\nGET "inline:ab c"\r\nECHO x"y" pre'a b'\r\n`);
    assert.equal(await client.readReply(), "OK");
    assert.deepStrictEqual(text(await client.readReply()), "v");
    const echoed = await client.readReply();
    assert.ok(echoed instanceof RespErrorReply && /wrong number of arguments/.test(echoed.message));
    // Blank lines and empty multibulks are skipped without a reply, as Redis does.
    await client.sendRaw("\r\n\n*0\r\n*-1\r\nECHO after-blanks\r\n");
    assert.deepStrictEqual(text(await client.readReply()), "after-blanks");
    // Inline and RESP mixed in one write.
    await client.sendRaw("INCR inline:n\r\n*2\r\n$4\r\nINCR\r\n$8\r\ninline:n\r\nGET inline:n\r\n");
    assert.deepStrictEqual([await client.readReply(), await client.readReply()], [1, 2]);
    assert.deepStrictEqual(text(await client.readReply()), "2");

    // QUIT: +OK, then the connection closes; requests after it in the same write go unanswered.
    await using quitter = await RespClient.connect(cluster.port);
    // A forwarded SET and a split MGET are still pending when QUIT is read.
    await quitter.sendRaw(
      "*3\r\n$3\r\nSET\r\n$4\r\nquit\r\n$1\r\n1\r\nMGET quit inline:key 0:nothing 1:nothing\r\n" +
        "*1\r\n$4\r\nQUIT\r\n",
    );
    await quitter.sendRaw("*3\r\n$3\r\nSET\r\n$4\r\nquit\r\n$1\r\n2\r\n");
    assert.equal(await quitter.readReply(), "OK");
    assert.deepStrictEqual(text(await quitter.readReply()), ["1", "hello", null, null]);
    assert.equal(await quitter.readReply(), "OK");
    assert.equal(await quitter.closedWithin(2000), true, "QUIT did not close the connection");
    assert.deepStrictEqual(text(await client.command("GET", "quit")), "1");
    await using inlineQuitter = await RespClient.connect(cluster.port);
    await inlineQuitter.sendRaw("QUIT\r\n");
    assert.equal(await inlineQuitter.readReply(), "OK");
    assert.equal(await inlineQuitter.closedWithin(2000), true);
    assert.equal(await client.command("PING"), "PONG");
  },
);

testBothIo(
  "redis mode: refused and unknown commands get an error naming them; the connection stays usable",
  async () => {
    await using cluster = await _startCluster();
    await using direct = await RespClient.connect(cluster.shards[0].port);
    await using client = await RespClient.connect(cluster.port);
    assert.equal(await client.command("SET", "some:key", "1"), "OK");
    const refused: [string[], string][] = [
      [["KEYS", "*"], "keys"],
      [["FLUSHALL"], "flushall"],
      [["FLUSHDB"], "flushdb"],
      [["CONFIG", "GET", "x"], "config"],
      [["MONITOR"], "monitor"],
      [["FOO"], "foo"],
      [["foo", "bar", "baz"], "foo"],
    ];
    for (const [command, name] of refused) {
      const reply = await client.command(...command);
      assert.ok(
        reply instanceof RespErrorReply,
        `${command.join(" ")} gave ${Deno.inspect(reply)}`,
      );
      assert.match(reply.message, /^ERR /, command.join(" "));
      assert.ok(
        reply.message.toLowerCase().includes(`'${name}'`),
        `${command.join(" ")}: "${reply.message}" does not name '${name}'`,
      );
      assert.equal(await client.command("PING"), "PONG", `after ${command.join(" ")}`);
      assert.deepStrictEqual(text(await client.command("GET", "some:key")), "1");
    }
    // The same refusals pipelined between normal commands keep their order.
    const piped = await client.pipeline(refused.flatMap(([command]) => [command, ["INCR", "n"]]));
    refused.forEach((_, i) => {
      assert.ok(
        piped[2 * i] instanceof RespErrorReply,
        `piped ${i}: ${Deno.inspect(piped[2 * i])}`,
      );
      assert.equal(piped[2 * i + 1], i + 1);
    });
    // Nothing refused reached a backend: the data is intact.
    assert.deepStrictEqual(text(await client.command("GET", "some:key")), "1");

    // Wrong arity: Redis's own words, checked against a redis-server directly.
    for (
      const command of [["GET"], ["GET", "a", "b"], ["SET", "k"], ["MGET"], ["HSET", "h", "f"]]
    ) {
      const reply = await client.command(...command);
      const fromRedis = await direct.command(...command);
      assert.ok(fromRedis instanceof RespErrorReply);
      assert.match(fromRedis.message, /wrong number of arguments/);
      assert.deepStrictEqual(reply, fromRedis, command.join(" "));
    }
    // An unknown command's error, byte for byte: the arguments while under 128 bytes, each
    // up to a NUL, "\r" and "\n" as spaces, other bytes as sent.
    const bytes = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
    for (
      const command of [
        ["FOO", "a", "b", "c", "d", "e"],
        ["FOO", "x".repeat(100), "y".repeat(100), "z"],
        ["F\x00OO", "a\rb", "c\nd", "\tz", "\xe9\xff", "n\x00ul"],
        ["N".repeat(200)],
      ].map((args) => args.map(bytes))
    ) {
      const want = await direct.rawCommand(...command);
      assert.deepStrictEqual(await client.rawCommand(...command), want, Deno.inspect(want));
    }
    // MSET with a key but no value is an arity error too, not a split.
    const msetOdd = await client.command("MSET", "a", "1", "b");
    assert.ok(msetOdd instanceof RespErrorReply);
    assert.match(msetOdd.message, /wrong number of arguments for 'mset' command/);

    // EVAL: keys on different servers are refused and nothing runs; with one tag it runs.
    const script = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); " +
      "return redis.call('GET', KEYS[1])";
    const [first, second] = await _keysOnTwoShards(cluster, client);
    const split = await client.command("EVAL", script, "2", first, second, "changed");
    assert.ok(split instanceof RespErrorReply, `EVAL over two shards gave ${Deno.inspect(split)}`);
    assert.match(split.message, /^ERR .*eval/i);
    assert.deepStrictEqual(text(await client.command("MGET", first, second)), ["before", "before"]);
    const tagged = await client.command("EVAL", script, "2", "a:{t}", "b:{t}", "ran");
    assert.deepStrictEqual(text(tagged), "ran");
    assert.deepStrictEqual(text(await client.command("MGET", "a:{t}", "b:{t}")), ["ran", "ran"]);
    assert.equal(await client.command("EVAL", "return 7", "0"), 7);
    const badCount = await client.command("EVAL", "return 1", "3", "only-one");
    assert.ok(badCount instanceof RespErrorReply);
    assert.equal(await client.command("PING"), "PONG");
  },
);

/** Two keys that Aster places on different shards, both set to "before". */
async function _keysOnTwoShards(cluster: Cluster, client: RespClient): Promise<[string, string]> {
  const byShard = new Map<number, string>();
  for (let i = 0; i < 50 && byShard.size < 2; i++) {
    const key = _key(i, "eval");
    assert.equal(await client.command("SET", key, "before"), "OK");
    byShard.set(await _shardOf(cluster, key), key);
  }
  assert.ok(byShard.size >= 2, "50 keys all landed on one shard");
  const [first, second] = [...byShard.values()];
  return [first, second];
}

testBothIo("redis mode: requests trickling in a few bytes per write are framed right", async () => {
  await using cluster = await _startCluster();
  await using client = await RespClient.connect(cluster.port);
  const rng = new Random(3);
  const value = rng.bytes(20_000);
  const parts = [
    encodeCommand([encoder.encode("SET"), encoder.encode("trickle"), value]),
    encodeCommand(["GET", "trickle"].map((s) => encoder.encode(s))),
    encoder.encode("PING\r\n"),
    encodeCommand(["MGET", "0:x", "trickle", "1:x"].map((s) => encoder.encode(s))),
    encoder.encode("INCR 'trickle n'\r\n"),
    encodeCommand(["ECHO", "a\r\nb"].map((s) => encoder.encode(s))),
  ];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, part) => (bytes.set(part, at), at + part.length), 0);
  let writes = 0;
  for (let at = 0; at < bytes.length && writes < 10_000; writes++) {
    const size = Math.min(rng.range(1, 64), bytes.length - at);
    await client.sendRaw(bytes.subarray(at, at + size));
    at += size;
    if (writes % 32 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.ok(writes > 300, `only ${writes} writes`);
  assert.equal(await client.readReply(), "OK");
  _assertBytes(await client.readReply(), value, "GET after trickled SET");
  assert.equal(await client.readReply(), "PONG");
  const mget = await client.readReply() as RespValue[];
  assert.equal(mget.length, 3);
  assert.equal(mget[0], null);
  _assertBytes(mget[1], value, "MGET after trickled SET");
  assert.equal(mget[2], null);
  assert.equal(await client.readReply(), 1);
  assert.deepStrictEqual(text(await client.readReply()), "a\r\nb");
});

testBothIo(
  "redis mode: a client reading its replies late still gets all of them, in order",
  async () => {
    await using cluster = await _startCluster();
    await using slow = await RespClient.connect(cluster.port);
    await using other = await RespClient.connect(cluster.port);
    const value = new Random(11).bytes(256 * 1024);
    assert.equal(await slow.command("SET", "late:{big}", value), "OK");
    // About 30 MB of replies to a client that does not read for a second.
    const count = 120;
    const commands = [];
    for (let i = 0; i < count; i++) commands.push(["GET", "late:{big}"], ["INCR", "late:n"]);
    commands.push(["PING"]);
    const bytes = commands.map((args) => encodeCommand(args.map((a) => encoder.encode(a))));
    await slow.sendRaw(_concat(bytes));
    for (let i = 0; i < 10; i++) {
      assert.deepStrictEqual(text(await other.command("ECHO", `meanwhile ${i}`)), `meanwhile ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (let i = 0; i < count; i++) {
      _assertBytes(await slow.readReply(), value, `late GET ${i}`);
      assert.equal(await slow.readReply(), i + 1, `late INCR ${i}`);
    }
    assert.equal(await slow.readReply(), "PONG");
    assert.equal(await other.command("GET", "late:n").then(text), `${count}`);
  },
);

function _concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

testBothIo(
  "redis mode: a client that half-closes after its requests still gets every reply",
  async () => {
    await using cluster = await _startCluster();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: cluster.port });
    try {
      await conn.write(encoder.encode(
        "PING\r\n*3\r\n$3\r\nSET\r\n$2\r\nhc\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$2\r\nhc\r\n" +
          "MGET hc 0:none 1:none\r\nDEL hc 2:none\r\n",
      ));
      await conn.closeWrite();
      const received: number[] = [];
      const buf = new Uint8Array(4096);
      const deadline = Date.now() + 5000;
      for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const n = await Promise.race([
          conn.read(buf),
          new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), 5000)),
        ]);
        clearTimeout(timer);
        assert.notEqual(n, "timeout", `no EOF; got ${JSON.stringify(_ascii(received))}`);
        if (n === null) break;
        received.push(...buf.subarray(0, n as number));
      }
      assert.equal(
        _ascii(received),
        "+PONG\r\n+OK\r\n$5\r\nhello\r\n*3\r\n$5\r\nhello\r\n$-1\r\n$-1\r\n:1\r\n",
      );
    } finally {
      conn.close();
    }
  },
);

testBothIo(
  "redis mode: a half-closed client owed 10 MB gets it all, and its last write runs",
  async () => {
    // Past the socket's buffers, a write waited on Bun was refused at the client's FIN:
    // replies were cut short and requests not yet read (a SET) dropped.
    await using cluster = await _startCluster();
    await using setter = await RespClient.connect(cluster.port);
    const value = "h".repeat(100_000);
    assert.equal(await setter.command("SET", "{hc}big", value), "OK");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: cluster.port });
    try {
      const count = 100;
      await conn.write(encoder.encode(
        "*2\r\n$3\r\nGET\r\n$7\r\n{hc}big\r\n".repeat(count) + "SET {hc}last 1\r\n",
      ));
      await conn.closeWrite();
      await new Promise((resolve) => setTimeout(resolve, 500)); // the buffers fill meanwhile
      const expected = count * (`$${value.length}\r\n`.length + value.length + 2) + 5;
      const buf = new Uint8Array(1 << 20);
      let received = 0;
      let tail = "";
      for (let i = 0; i < 10_000 && received <= expected; i++) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const n = await Promise.race([
          conn.read(buf),
          new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 10_000)),
        ]);
        clearTimeout(timer);
        assert.notEqual(n, "late", `stuck after ${received} bytes`);
        if (n === null || n === "late") break;
        received += n;
        tail = (tail + new TextDecoder().decode(buf.subarray(Math.max(0, n - 16), n))).slice(-16);
      }
      assert.equal(received, expected);
      assert.ok(tail.endsWith("\r\n+OK\r\n"), JSON.stringify(tail));
      assert.equal(text(await setter.command("GET", "{hc}last")), "1");
    } finally {
      conn.close();
    }
  },
);

/** Sends `bytes`, half-closes, and reads until the server closes (bounded: 10 s). */
async function _sendAndReadToEnd(port: number, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    await conn.closeWrite();
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(1 << 16);
    const deadline = Date.now() + 10_000;
    for (let i = 0; i < 100_000; i++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (n === "late") throw new Error(`no EOF within 10 s after ${chunks.length} reads`);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(_concat(chunks));
  } finally {
    conn.close();
  }
}

testBothIo(
  "redis mode: a client that half-closes after WATCH, MULTI or BLPOP gets what redis-server sends",
  async () => {
    // Aster closed a client holding a dedicated connection at its EOF, replies owed and all,
    // and dropped requests held behind another connection's replies (a BLPOP after SETs).
    await using stack = new AsyncDisposableStack();
    const direct = stack.use(await startRedis());
    const behind = stack.use(await startRedis());
    const aster = stack.use(await startAster([{ servers: [`127.0.0.1:${behind.port}:1 r`] }]));
    const many = (line: string, n: number) => line.repeat(n);
    const scripts: [string, string][] = [
      [
        "served BLPOP",
        "RPUSH l x\r\n" + many("SET a 1\r\n", 3) + "BLPOP l 1\r\n" + many("GET a\r\n", 3),
      ],
      [
        "WATCH and EXEC",
        many("PING\r\n", 3) + "WATCH a\r\nGET a\r\nMULTI\r\nSET a 2\r\nEXEC\r\n" +
        many("GET a\r\n", 3),
      ],
      ["WATCH left open", "WATCH a\r\n" + many("GET a\r\n", 3)],
      ["MULTI left open", "MULTI\r\n" + many("SET a 3\r\n", 3)],
      ["many behind WATCH", many("SET a 4\r\n", 2000) + "WATCH a\r\n" + many("GET a\r\n", 2000)],
      ["blocked BLPOP", "DEL e\r\n" + many("GET a\r\n", 3) + "BLPOP e 0\r\nGET a\r\n"],
    ];
    for (const [name, script] of scripts) {
      const bytes = encoder.encode(script);
      const expected = await _sendAndReadToEnd(direct.port, bytes);
      const got = await _sendAndReadToEnd(aster.ports[0], bytes);
      assert.equal(got, expected, name);
    }
    // The blocked BLPOP's connection is gone with its client: it pops nothing pushed later.
    for (const port of [direct.port, aster.ports[0]]) {
      await using client = await RespClient.connect(port);
      assert.equal(await client.command("RPUSH", "e", "later"), 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(await client.command("LLEN", "e"), 1, `port ${port}`);
    }
    // Nor for clients that close at once, their dedicated connections still being dialled.
    for (const port of [direct.port, aster.ports[0]]) {
      await using client = await RespClient.connect(port);
      const gone = await Promise.all(
        [0, 1, 2, 3, 4].map(() => Deno.connect({ hostname: "127.0.0.1", port })),
      );
      await Promise.all(gone.map((conn, i) => conn.write(encoder.encode(`BLPOP fresh${i} 0\r\n`))));
      for (const conn of gone) conn.close();
      await new Promise((resolve) => setTimeout(resolve, 20));
      for (let i = 0; i < gone.length; i++) await client.command("RPUSH", `fresh${i}`, "x");
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (let i = 0; i < gone.length; i++) {
        assert.equal(
          await client.command("LLEN", `fresh${i}`),
          1,
          `port ${port}: fresh${i} popped`,
        );
      }
    }
    // Nor for a client that closes 5 ms into its BLPOP: an element pushed 10 ms later stays.
    for (const port of [direct.port, aster.ports[0]]) {
      await using client = await RespClient.connect(port);
      const blocked = await Deno.connect({ hostname: "127.0.0.1", port });
      await blocked.write(encoder.encode("BLPOP gone 0\r\n"));
      await new Promise((resolve) => setTimeout(resolve, 5));
      blocked.close();
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(await client.command("RPUSH", "gone", "x"), 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(
        await client.command("LLEN", "gone"),
        1,
        `port ${port}: popped for a client gone`,
      );
    }
  },
);

function _ascii(bytes: number[]): string {
  return String.fromCharCode(...bytes);
}

testBothIo("redis mode: local commands check their arguments as Redis does", async () => {
  await using cluster = await _startCluster();
  await using client = await RespClient.connect(cluster.port);
  await using direct = await RespClient.connect(cluster.shards[0].port);
  const mismatches: string[] = [];
  for (
    const command of [
      ["PING", "a", "b"],
      ["PING", "a", "b", "c"],
      ["ECHO"],
      ["ECHO", "a", "b"],
      ["SELECT"],
      ["COMMAND", "COUNT", "x"],
    ]
  ) {
    const got = await client.command(...command);
    const want = await direct.command(...command);
    if (
      !Deno.inspect(got).includes("wrong number of arguments") ||
      Deno.inspect(got) !== Deno.inspect(want)
    ) {
      mismatches.push(
        `${command.join(" ")}: aster ${Deno.inspect(text(got))}, redis ${Deno.inspect(text(want))}`,
      );
    }
    assert.equal(await client.command("PING"), "PONG");
  }
  assert.deepStrictEqual(mismatches, []);
});
