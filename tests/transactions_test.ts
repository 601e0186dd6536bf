/**
 * MULTI/EXEC/DISCARD/WATCH/UNWATCH through Aster, in `redis` mode (two redis-servers on a
 * ring) and `redis_cluster` mode (a real Redis Cluster): ioredis's multi/exec and watch, a
 * refused cross-node command (EXECABORT, nothing applied), a client that vanishes
 * mid-transaction, and the raw replies of a sequence compared byte for byte with a plain
 * redis-server's. In `redis` mode a transaction without WATCH goes over the shared
 * connection at EXEC (nothing pinned: the gauges say so), one past the bound of kept
 * commands moves to a pinned connection, and concurrent clients' transactions stay atomic.
 */
import assert from "node:assert/strict";
import { type ClusterToml, renderToml, startAster } from "./helpers/aster.ts";
import { ioredisClient, within } from "./helpers/ioredis_client.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { keyOnAnotherServer } from "./helpers/keys.ts";
import { freePort, startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { keySlot } from "../src/hash/key_slot.ts";
import { encodeCommandText } from "../src/protocol/resp/encoder.ts";
import { KEPT_BYTES_MAX, KEPT_COMMANDS_MAX } from "../src/protocol/resp/transaction.ts";
import { createClient } from "redis";

const decoder = new TextDecoder();

/** The same sequence for both modes; `{t}` keeps every key in one slot. */
const SEQUENCE: string[][] = [
  ["MULTI"],
  ["PING"],
  ["SET", "{t}a", "1"],
  ["INCR", "{t}a"],
  ["GET", "{t}a"],
  ["EXEC"],
  ["EXEC"],
  ["DISCARD"],
  ["WATCH", "{t}a", "{t}b"],
  ["GET", "{t}a"],
  ["MULTI"],
  ["MULTI"],
  ["LPUSH", "{t}l", "x", "y"],
  ["LRANGE", "{t}l", "0", "-1"],
  ["EXEC"],
  ["MULTI"],
  ["SET", "{t}c", "3"],
  ["DISCARD"],
  ["GET", "{t}c"],
  ["MULTI"],
  ["NOSUCHCOMMAND", "x"],
  ["SET", "{t}c", "4"],
  ["EXEC"],
  ["GET", "{t}c"],
  ["MULTI"],
  ["GET"],
  ["EXEC"],
  ["UNWATCH"],
  ["MULTI"],
  ["ECHO", "hi"],
  ["EXEC"],
  ["MULTI"],
  ["EXEC"],
  ["WATCH", "{t}a"],
  ["UNWATCH"],
  ["SET", "{t}a", "after"],
  ["GET", "{t}a"],
  // RESET ends a transaction (nothing queued is applied) and the watches, as Redis's does.
  ["MULTI"],
  ["SET", "{t}r", "queued"],
  ["RESET"],
  ["GET", "{t}r"],
  ["EXEC"],
  ["MULTI"],
  ["PING"],
  ["RESET"],
  ["EXEC"],
  ["WATCH", "{t}a"],
  ["RESET"],
  ["SET", "{t}a", "changed"],
  ["MULTI"],
  ["SET", "{t}a", "in-tx"],
  ["EXEC"],
  ["GET", "{t}a"],
  // A bad key count is Redis's to answer: queued in MULTI and failed inside EXEC's reply,
  // the rest applied (before a key chose the node, and after); outside MULTI, FCALL's
  // "Function not found" and EVALSHA's NOSCRIPT for a SHA not 40 long come first.
  ["MULTI"],
  ["EVAL", "return 1", "5", "{t}k"],
  ["SET", "{t}n", "applied"],
  ["ZUNIONSTORE", "{t}z", "x", "{t}a"],
  ["XREAD", "STREAMS", "{t}s1", "{t}s2", "0"],
  ["LMPOP", "0", "{t}l", "LEFT"],
  ["EXEC"],
  ["GET", "{t}n"],
  ["EVALSHA", "abc", "3", "{t}a"],
  ["FCALL", "nosuchfunction", "x"],
  ["EVAL", "return 1", "-1"],
  ["MSET", "{t}a", "1", "{t}b"],
  // EXEC refused before it runs (its arity) ends the transaction: EXECABORT because of it,
  // nothing applied, the client out of MULTI; outside MULTI the same words.
  ["MULTI"],
  ["SET", "{t}x", "queued"],
  ["EXEC", "extra"],
  ["GET", "{t}x"],
  ["EXEC"],
  ["MULTI"],
  ["PING"],
  ["EXEC", "extra"],
  ["EXEC"],
  ["EXEC", "extra"],
  // SELECT with no index at all is queued and fails in EXEC's reply, as in Redis.
  ["MULTI"],
  ["SELECT", "x"],
  ["SET", "{t}sel", "1"],
  ["EXEC"],
  ["GET", "{t}sel"],
  // An unsubscribe with no subscription is queued and answered in EXEC's reply, as Redis does.
  ["MULTI"],
  ["UNSUBSCRIBE"],
  ["PUNSUBSCRIBE", "p*"],
  ["SUNSUBSCRIBE", "{t}sh"],
  ["SET", "{t}u", "1"],
  ["EXEC"],
];

/**
 * Inside MULTI, an unsubscribe of several names is refused: redis-server answers one reply per
 * name, more than EXEC's array counts, so the extra ones would answer whatever request came
 * next on that backend connection (another client's).
 */
async function _multiNameUnsubscribe(port: number): Promise<void> {
  await using client = await RespClient.connect(port);
  await using other = await RespClient.connect(port);
  assert.equal(await other.command("SET", "{t}mu", "v"), "OK");
  assert.equal(await client.command("MULTI"), "OK");
  const refused = await client.command("UNSUBSCRIBE", "a", "b");
  assert.ok(refused instanceof RespErrorReply && /with several names/.test(refused.message));
  const exec = await client.command("EXEC");
  assert.ok(exec instanceof RespErrorReply && /^EXECABORT/.test(exec.message));
  for (let i = 0; i < 5; i++) assert.equal(text(await other.command("GET", "{t}mu")), "v");
}

/** Runs SEQUENCE on both ports, one command at a time, and compares the raw replies. */
async function _differential(asterPort: number, directPort: number): Promise<void> {
  await using proxied = await RespClient.connect(asterPort);
  await using direct = await RespClient.connect(directPort);
  for (const args of SEQUENCE) {
    const want = decoder.decode(await direct.rawCommand(...args));
    const got = decoder.decode(await proxied.rawCommand(...args));
    assert.equal(got, want, `${args.join(" ")}`);
  }
}

/**
 * The same sequence pipelined in one write: Aster sends its parts on the shared connection
 * and on the pinned one, yet each runs in the client's order, as on one redis-server.
 */
async function _pipelined(asterPort: number, directPort: number): Promise<void> {
  await using proxied = await RespClient.connect(asterPort);
  await using direct = await RespClient.connect(directPort);
  const sequence = [
    ["SET", "{t}o", "1"],
    ["MULTI"],
    ["INCR", "{t}o"],
    ["EXEC"],
    ["GET", "{t}o"],
    ["WATCH", "{t}o"],
    ["SET", "{t}o", "5"],
    ["MULTI"],
    ["INCR", "{t}o"],
    ["EXEC"],
    ["LPUSH", "{t}l", "old"],
    ["BLPOP", "{t}l", "1"],
    ["LPUSH", "{t}l", "new"],
    ["LRANGE", "{t}l", "0", "-1"],
    ["DEL", "{t}l"],
    // Blocked on an empty list: the LPUSH after it runs once it timed out, so it gets nil.
    ["BLPOP", "{t}e", "0.1"],
    ["LPUSH", "{t}e", "late"],
    ["LRANGE", "{t}e", "0", "-1"],
    ["DEL", "{t}e"],
  ];
  for (let round = 0; round < 10; round++) {
    const [want, got] = await Promise.all([
      direct.pipeline(sequence),
      proxied.pipeline(sequence),
    ]);
    assert.deepStrictEqual(got, want, `round ${round}`);
  }
  // QUIT right after a WATCH, a transaction, a BLPOP (on an empty list: it times out): their
  // replies come first, then the close.
  for (
    const quitting of [
      [["WATCH", "{t}q"], ["GET", "{t}q"], ["QUIT"]],
      [["MULTI"], ["INCR", "{t}q"], ["EXEC"], ["QUIT"]],
      [["BLPOP", "{t}qe", "0.2"], ["QUIT"]],
    ]
  ) {
    await using quitProxied = await RespClient.connect(asterPort);
    await using quitDirect = await RespClient.connect(directPort);
    const [want, got] = await Promise.all([
      quitDirect.rawPipeline(quitting),
      quitProxied.rawPipeline(quitting),
    ]);
    const text = (replies: Uint8Array[]) => replies.map((reply) => decoder.decode(reply));
    assert.deepStrictEqual(text(got), text(want), quitting.join(" "));
    assert.ok(await quitProxied.closedWithin(2000), "closed after QUIT");
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const texts = (replies: Uint8Array[]) => replies.map((reply) => decoder.decode(reply));

/** Pinned connections and clients in a transaction, as INFO and /metrics say them now. */
async function _gauges(
  client: RespClient,
  metricsPort: number,
): Promise<{ pinned: number; inTransaction: number; metricPinned: number }> {
  const info = String(text(await client.command("INFO")));
  const pinned = [...info.matchAll(/,pinned=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  const inTransaction = Number(info.match(/^transaction_clients:(\d+)/m)?.[1]);
  const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const metricPinned = body.split("\n").filter((l) => l.startsWith("aster_pinned_connections{"))
    .reduce((sum, line) => sum + Number(line.split(" ")[1]), 0);
  return { pinned, inTransaction, metricPinned };
}

/** Polls until the gauges are `want` (/metrics gathers the workers' snapshots). */
async function _expectGauges(
  client: RespClient,
  metricsPort: number,
  want: { pinned: number; inTransaction: number },
): Promise<void> {
  let seen = null;
  for (let i = 0; i < 40; i++) {
    seen = await _gauges(client, metricsPort);
    if (
      seen.pinned === want.pinned && seen.metricPinned === want.pinned &&
      seen.inTransaction === want.inTransaction
    ) return;
    await sleep(50);
  }
  assert.fail(`wanted ${JSON.stringify(want)}, saw ${JSON.stringify(seen)}`);
}

/** Writes `commands` in one write and reads `replies` raw replies (some may be silenced). */
async function _exchange(
  client: RespClient,
  commands: string[][],
  replies: number,
): Promise<string[]> {
  const parts = commands.map((args) => encodeCommandText(...args));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  await client.sendRaw(out);
  const got: Uint8Array[] = [];
  for (let i = 0; i < replies; i++) got.push(await client.readRawReply());
  return texts(got);
}

/** Pipelined transactions of every shape, each key its own: replies compared byte for byte. */
const PIPELINED_TRANSACTIONS: string[][] = [
  ["SET", "{s}a", "1"],
  ["MULTI"],
  ["SET", "{s}a", "2"],
  ["INCR", "{s}a"],
  ["GET", "{s}a"],
  ["EXEC"],
  ["GET", "{s}a"],
  // A run-time error inside: the others apply, the error is in EXEC's array.
  ["SET", "{s}str", "x"],
  ["MULTI"],
  ["INCR", "{s}str"],
  ["LPUSH", "{s}l", "1"],
  ["EXEC"],
  // Queue-time errors: EXECABORT, nothing applied.
  ["MULTI"],
  ["SET", "{s}n", "1"],
  ["NOSUCHCOMMAND"],
  ["EXEC"],
  ["MULTI"],
  ["SET", "{s}n", "1"],
  ["GET"],
  ["EXEC"],
  ["GET", "{s}n"],
  // Nested MULTI, EXEC and DISCARD without MULTI, DISCARD.
  ["MULTI"],
  ["MULTI"],
  ["INCR", "{s}a"],
  ["EXEC"],
  ["EXEC"],
  ["DISCARD"],
  ["MULTI"],
  ["INCR", "{s}a"],
  ["DISCARD"],
  ["GET", "{s}a"],
  // Keyless only, empty, a blocking command (it does not block inside MULTI).
  ["MULTI"],
  ["PING"],
  ["ECHO", "e"],
  ["EXEC"],
  ["MULTI"],
  ["EXEC"],
  ["MULTI"],
  ["BLPOP", "{s}empty", "0"],
  ["RPUSH", "{s}q", "v"],
  ["BLPOP", "{s}q", "0"],
  ["EXEC"],
  // RESET in a transaction: nothing applied.
  ["MULTI"],
  ["SET", "{s}r", "1"],
  ["RESET"],
  ["GET", "{s}r"],
  ["DEL", "{s}a", "{s}str", "{s}l", "{s}q"],
];

/**
 * A transaction without WATCH through Aster's `redis` mode: byte for byte as redis-server
 * (pipelined and one command at a time), nothing pinned (pinned with WATCH), DISCARD, an
 * error inside it, the fallback past the bound, RESP3, CLIENT REPLY, and atomicity under
 * concurrent clients. `port` is a cluster of one server, `metricsPort` Aster's /metrics.
 */
async function _shared(
  t: Deno.TestContext,
  port: number,
  directPort: number,
  metricsPort: number,
): Promise<void> {
  await t.step("a pipelined transaction's replies are redis-server's, byte for byte", async () => {
    await using proxied = await RespClient.connect(port);
    await using direct = await RespClient.connect(directPort);
    for (let round = 0; round < 3; round++) {
      const [want, got] = await Promise.all([
        direct.rawPipeline(PIPELINED_TRANSACTIONS),
        proxied.rawPipeline(PIPELINED_TRANSACTIONS),
      ]);
      assert.deepStrictEqual(texts(got), texts(want), `round ${round}`);
    }
  });

  await t.step("a transaction sent one command at a time: byte for byte", async () => {
    await using proxied = await RespClient.connect(port);
    await using direct = await RespClient.connect(directPort);
    for (const args of PIPELINED_TRANSACTIONS) {
      const want = decoder.decode(await direct.rawCommand(...args));
      const got = decoder.decode(await proxied.rawCommand(...args));
      assert.equal(got, want, args.join(" "));
    }
  });

  await t.step("RESP3 and CLIENT REPLY around a transaction: byte for byte", async () => {
    await using proxied = await RespClient.connect(port);
    await using direct = await RespClient.connect(directPort);
    // CLIENT REPLY SKIP silences MULTI's +OK; OFF silences the whole transaction.
    const silenced: [string[][], number] = [[
      ["CLIENT", "REPLY", "SKIP"],
      ["MULTI"],
      ["SET", "{s}cr", "1"],
      ["INCR", "{s}cr"],
      ["EXEC"],
      ["CLIENT", "REPLY", "OFF"],
      ["MULTI"],
      ["INCR", "{s}cr"],
      ["EXEC"],
      ["CLIENT", "REPLY", "ON"],
      ["GET", "{s}cr"],
      ["DEL", "{s}cr"],
    ], 6];
    assert.deepStrictEqual(
      await _exchange(proxied, ...silenced),
      await _exchange(direct, ...silenced),
    );
    // HELLO's own reply is Aster's (server, version): only what follows is compared.
    await proxied.rawCommand("HELLO", "3");
    await direct.rawCommand("HELLO", "3");
    const resp3 = [
      ["MULTI"],
      ["HSET", "{s}h", "f", "v"],
      ["HGETALL", "{s}h"],
      ["GET", "{s}missing"],
      ["EXEC"],
      ["DEL", "{s}h"],
    ];
    assert.deepStrictEqual(
      texts(await proxied.rawPipeline(resp3)),
      texts(await direct.rawPipeline(resp3)),
    );
  });

  await t.step("no pinned connection without WATCH; one with WATCH", async () => {
    await using observer = await RespClient.connect(port);
    await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 0 });
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("SET", "{s}g", "1"), "QUEUED");
    assert.equal(await client.command("INCR", "{s}g"), "QUEUED");
    await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 1 });
    // Nothing sent yet: the key is not set until EXEC.
    assert.equal(await observer.command("GET", "{s}g"), null);
    assert.deepEqual(await client.command("EXEC"), ["OK", 2]);
    await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 0 });
    // After WATCH the transaction stays on the pinned connection.
    assert.equal(await client.command("WATCH", "{s}g"), "OK");
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("INCR", "{s}g"), "QUEUED");
    await _expectGauges(observer, metricsPort, { pinned: 1, inTransaction: 1 });
    assert.deepEqual(await client.command("EXEC"), [3]);
    await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 0 });
    await observer.command("DEL", "{s}g");
  });

  await t.step("DISCARD drops the queued commands; nothing was sent", async () => {
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("SET", "{s}d", "1"), "QUEUED");
    assert.equal(await client.command("DISCARD"), "OK");
    assert.equal(await client.command("GET", "{s}d"), null);
    assert.ok(await client.command("EXEC") instanceof RespErrorReply, "EXEC without MULTI");
  });

  await t.step("an error inside MULTI: EXECABORT, nothing applied", async () => {
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("SET", "{s}e", "1"), "QUEUED");
    assert.ok(await client.command("SET", "{s}e") instanceof RespErrorReply, "arity");
    assert.equal(await client.command("INCR", "{s}e"), "QUEUED");
    const exec = await client.command("EXEC");
    assert.ok(exec instanceof RespErrorReply);
    assert.equal(exec.message, "EXECABORT Transaction discarded because of previous errors.");
    assert.equal(await client.command("GET", "{s}e"), null, "nothing applied");
    // Commands Aster answers itself are refused inside MULTI, saying why (docs/commands.md).
    for (const own of [["INFO"], ["HELLO"], ["AUTH", "x"], ["SLOWLOG", "LEN"]]) {
      assert.equal(await client.command("MULTI"), "OK");
      const refused = await client.command(...own);
      assert.ok(refused instanceof RespErrorReply, own.join(" "));
      assert.equal(
        refused.message,
        `ERR command '${own[0].toLowerCase()}' is not supported by aster inside MULTI: ` +
          "Aster answers it itself, outside transactions only",
      );
      assert.match((await client.command("EXEC") as RespErrorReply).message, /^EXECABORT /);
    }
  });

  await t.step(
    "past the bound of kept commands the transaction moves to a pinned connection",
    async () => {
      await using observer = await RespClient.connect(port);
      await using proxied = await RespClient.connect(port);
      await using direct = await RespClient.connect(directPort);
      // By count: KEPT_COMMANDS_MAX kept, the next one pins.
      const kept = Array.from({ length: KEPT_COMMANDS_MAX }, () => ["INCR", "{s}b"]);
      const both = async (commands: string[][]) => {
        const [want, got] = await Promise.all([
          direct.rawPipeline(commands),
          proxied.rawPipeline(commands),
        ]);
        assert.deepStrictEqual(texts(got), texts(want));
      };
      await both([["MULTI"], ...kept]);
      await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 1 });
      await both([["INCR", "{s}b"], ["INCR", "{s}b"]]);
      await _expectGauges(observer, metricsPort, { pinned: 1, inTransaction: 1 });
      await both([["EXEC"], ["GET", "{s}b"]]);
      await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 0 });
      // By bytes: two values that fit, a third that passes KEPT_BYTES_MAX.
      const value = "v".repeat(Math.floor(KEPT_BYTES_MAX / 3));
      await both([["MULTI"], ["APPEND", "{s}big", value], ["APPEND", "{s}big", value]]);
      await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 1 });
      await both([["APPEND", "{s}big", value], ["STRLEN", "{s}big"]]);
      await _expectGauges(observer, metricsPort, { pinned: 1, inTransaction: 1 });
      await both([["EXEC"], ["STRLEN", "{s}big"], ["DEL", "{s}b", "{s}big"]]);
      await _expectGauges(observer, metricsPort, { pinned: 0, inTransaction: 0 });
    },
  );

  await t.step("20 clients' concurrent transactions on one key stay atomic", async () => {
    const clients = 20;
    const rounds = 200;
    await using setup = await RespClient.connect(port);
    await setup.command("DEL", "{s}atomic");
    const run = async () => {
      await using client = await RespClient.connect(port);
      for (let i = 0; i < rounds; i++) {
        const replies = await client.pipeline([
          ["MULTI"],
          ["INCR", "{s}atomic"],
          ["INCR", "{s}atomic"],
          ["EXEC"],
        ]);
        assert.deepEqual(replies.slice(0, 3), ["OK", "QUEUED", "QUEUED"]);
        const [first, second] = replies[3] as number[];
        assert.equal(second, first + 1, `not consecutive: ${first}, ${second}`);
      }
    };
    await Promise.all(Array.from({ length: clients }, run));
    assert.equal(await setup.command("GET", "{s}atomic").then(text), String(clients * rounds * 2));
    await setup.command("DEL", "{s}atomic");
  });
}

/** What every mode must do; `other` is a key on another node than `{t}`'s. */
async function _suite(t: Deno.TestContext, port: number, other: string): Promise<void> {
  await t.step("ioredis multi().set().get().exec()", async () => {
    const client = ioredisClient(port);
    try {
      await within(client.connect(), 5000, "connect");
      const result = await within(
        client.multi().set("{t}m", "v").get("{t}m").exec(),
        5000,
        "exec",
      );
      assert.deepEqual(result, [[null, "OK"], [null, "v"]]);
    } finally {
      client.disconnect();
    }
  });

  await t.step("ioredis watch, a conflicting write from another client: EXEC is null", async () => {
    const client = ioredisClient(port);
    const other = ioredisClient(port);
    try {
      await within(Promise.all([client.connect(), other.connect()]), 5000, "connect");
      assert.equal(await client.watch("{t}w"), "OK");
      assert.equal(await other.set("{t}w", "theirs"), "OK");
      const result = await within(client.multi().set("{t}w", "mine").exec(), 5000, "exec");
      assert.equal(result, null);
      assert.equal(await other.get("{t}w"), "theirs");
      // Without a conflict the same client's next transaction applies.
      assert.equal(await client.watch("{t}w"), "OK");
      const applied = await within(client.multi().set("{t}w", "mine").exec(), 5000, "exec");
      assert.deepEqual(applied, [[null, "OK"]]);
      assert.equal(await other.get("{t}w"), "mine");
    } finally {
      client.disconnect();
      other.disconnect();
    }
  });

  await t.step("node-redis (RESP2) multi/exec and watch", async () => {
    const client = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2 });
    const other = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2 });
    const errors: unknown[] = [];
    for (const c of [client, other]) c.on("error", (err) => errors.push(err));
    try {
      await within(Promise.all([client.connect(), other.connect()]), 5000, "connect");
      const result = await within(
        client.multi().set("{t}node:n", "v").incr("{t}node:i").get("{t}node:n").exec(),
        5000,
        "exec",
      );
      assert.deepEqual(result, ["OK", 1, "v"]);
      await client.watch("{t}node:w");
      assert.equal(await other.set("{t}node:w", "theirs"), "OK");
      // node-redis reports the broken WATCH (a null EXEC) as its WatchError.
      const broken = await within(
        client.multi().set("{t}node:w", "mine").exec().then(
          (result) => result,
          (err: Error) => err,
        ),
        5000,
        "exec",
      );
      assert.ok(broken instanceof Error, Deno.inspect(broken));
      assert.match(broken.message, /watched keys has been changed/);
      assert.equal(await other.get("{t}node:w"), "theirs");
      await client.watch("{t}node:w");
      assert.deepEqual(await within(client.multi().set("{t}node:w", "mine").exec(), 5000, "exec"), [
        "OK",
      ]);
      assert.equal(await other.get("{t}node:w"), "mine");
      assert.deepEqual(errors, []);
    } finally {
      client.destroy();
      other.destroy();
    }
  });

  await t.step("a command on another node is refused and the transaction aborts", async () => {
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("SET", "{t}x", "1"), "QUEUED");
    const refused = await client.command("SET", other, "1");
    assert.ok(refused instanceof RespErrorReply, "refused");
    const exec = await client.command("EXEC");
    assert.ok(exec instanceof RespErrorReply);
    assert.equal(exec.message, "EXECABORT Transaction discarded because of previous errors.");
    assert.equal(await client.command("GET", "{t}x"), null, "nothing applied");
    assert.equal(await client.command("GET", other), null, "nothing applied");
  });

  await t.step(
    "SCRIPT and FUNCTION commands Aster sends to every node abort a transaction",
    async () => {
      await using client = await RespClient.connect(port);
      for (
        const command of [
          ["SCRIPT", "LOAD", "return 1"],
          ["SCRIPT", "FLUSH"],
          [
            "FUNCTION",
            "LOAD",
            "#!lua name=txlib\nredis.register_function('txf', function() return 1 end)",
          ],
          ["FUNCTION", "FLUSH"],
          ["FUNCTION", "DELETE", "txlib"],
        ]
      ) {
        assert.equal(await client.command("MULTI"), "OK");
        assert.equal(await client.command("SET", "{t}fan", "1"), "QUEUED");
        const refused = await client.command(...command);
        assert.ok(refused instanceof RespErrorReply, command.join(" "));
        assert.match(refused.message, /inside MULTI: Aster sends it to every backend/);
        const exec = await client.command("EXEC");
        assert.ok(exec instanceof RespErrorReply && /^EXECABORT/.test(exec.message));
        assert.equal(await client.command("GET", "{t}fan"), null, "nothing applied");
      }
      // SCRIPT EXISTS reads: queued as any command.
      assert.equal(await client.command("MULTI"), "OK");
      assert.equal(await client.command("SCRIPT", "EXISTS", "a".repeat(40)), "QUEUED");
      assert.deepEqual(await client.command("EXEC"), [[0]]);
    },
  );

  await t.step("a client that vanishes mid-transaction leaves nothing behind", async () => {
    const gone = await RespClient.connect(port);
    assert.equal(await gone.command("MULTI"), "OK");
    assert.equal(await gone.command("SET", "{t}gone", "1"), "QUEUED");
    await gone[Symbol.asyncDispose]();
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("INCR", "{t}gone"), "QUEUED");
    assert.deepEqual(await client.command("EXEC"), [1]);
  });
}

// Both socket paths: raw sockets (`io = "auto"`) and Deno's ops (sandboxed).
for (const sandboxed of [false, true]) {
  Deno.test(`transactions in redis mode: ioredis, WATCH, refusals, vanishing clients, byte for byte${sandboxed ? " [io = deno]" : ""}`, async (t) => {
    await using a = await startRedis();
    await using b = await startRedis();
    await using single = await startRedis();
    await using direct = await startRedis();
    const metricsPort = await freePort();
    await using aster = await startAster([
      { servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`], hash_tag: "{}" },
      { servers: [`127.0.0.1:${single.port}:1`] },
    ], { sandboxed, args: ["-m", String(metricsPort)] });
    await using onA = await RespClient.connect(a.port);
    await using onB = await RespClient.connect(b.port);
    await using client = await RespClient.connect(aster.ports[0]);
    // A key on the other server than {t}'s. The ring is named by the random ports: spread
    // keys find one on every ring (o0, o1, ... hash into a few clumps, and missed 1 in 100).
    const other = await keyOnAnotherServer(client, [onA, onB], "{t}probe", "other");
    await _suite(t, aster.ports[0], other);
    await t.step("the replies of a sequence are redis-server's, byte for byte", async () => {
      await _differential(aster.ports[1], direct.port);
    });
    await t.step("an unsubscribe of several names inside MULTI is refused", async () => {
      await _multiNameUnsubscribe(aster.ports[1]);
    });

    await t.step("pipelined around a transaction and a BLPOP: the client's order", async () => {
      await _pipelined(aster.ports[1], direct.port);
    });

    await _shared(t, aster.ports[1], direct.port, metricsPort);
  });
}

Deno.test("transactions in redis_cluster mode: ioredis, WATCH, refusals, byte for byte", async (t) => {
  await using cluster = await startRedisCluster();
  await using direct = await startRedis();
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  await _suite(t, aster.ports[0], "{other}x");
  await t.step("a slot that moves mid-transaction fails it with a clear error", async () => {
    const slot = keySlot(new TextEncoder().encode("{mv}"));
    const source = await cluster.ownerOf(slot);
    const target = (await cluster.masters()).find((m) => m !== source)!;
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("MULTI"), "OK");
    assert.equal(await client.command("SET", "{mv}a", "1"), "QUEUED");
    await cluster.migrateSlot(slot, target);
    const moved = await client.command("SET", "{mv}b", "1");
    assert.ok(moved instanceof RespErrorReply, Deno.inspect(moved));
    assert.match(moved.message, /^ERR the slot moved during the transaction \(MOVED /);
    const exec = await client.command("EXEC");
    assert.ok(exec instanceof RespErrorReply);
    // The node refuses EXEC itself (its queued keys left it): the same clear error.
    assert.match(exec.message, /^(EXECABORT|ERR the slot moved during the transaction)/);
    assert.equal(await client.command("GET", "{mv}a"), null, "nothing applied");
  });
  await t.step("an MSET without its last value for another node: no raw MOVED", async () => {
    // Aster finds no keys in it (Redis answers its arity), but a node does and redirects.
    const slotOf = (tag: string) => keySlot(new TextEncoder().encode(tag));
    assert.notEqual(await cluster.ownerOf(slotOf("{t}")), await cluster.ownerOf(slotOf("{o2}")));
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("WATCH", "{t}w"), "OK");
    assert.equal(await client.command("MULTI"), "OK");
    const moved = await client.command("MSET", "{o2}a", "1", "{o2}b");
    assert.ok(moved instanceof RespErrorReply, Deno.inspect(moved));
    assert.match(moved.message, /^ERR the slot moved during the transaction \(MOVED /);
    assert.equal(await client.command("DISCARD"), "OK");
  });
  await t.step("the replies of a sequence are redis-server's, byte for byte", async () => {
    await _differential(aster.ports[0], direct.port);
  });
  await t.step(
    "PUBLISH names no key: queued beside a key of any slot, as a node does",
    async () => {
      const slotOf = (name: string) => keySlot(new TextEncoder().encode(name));
      assert.notEqual(slotOf("user:1"), slotOf("user-events"));
      await using client = await RespClient.connect(aster.ports[0]);
      for (const order of [["set", "publish"], ["publish", "set"]]) {
        assert.equal(await client.command("MULTI"), "OK");
        for (const command of order) {
          const reply = command === "set"
            ? await client.command("SET", "user:1", "v")
            : await client.command("PUBLISH", "user-events", "msg");
          assert.equal(reply, "QUEUED", `${order.join(", ")}: ${command}`);
        }
        const exec = await client.command("EXEC");
        assert.deepEqual(exec, order.map((command) => command === "set" ? "OK" : 0));
      }
    },
  );
  await t.step("an unsubscribe of several names inside MULTI is refused", async () => {
    await _multiNameUnsubscribe(aster.ports[0]);
  });

  await t.step("pipelined around a transaction and a BLPOP: the client's order", async () => {
    await _pipelined(aster.ports[0], direct.port);
  });
});

Deno.test("a reload between a transaction's first key and EXEC: its keys pick the server again", async () => {
  await using first = await startRedis();
  await using second = await startRedis();
  const port = await freePort();
  const cluster = (servers: string[]): ClusterToml => ({
    name: "cache",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${port}`,
    servers,
  });
  const a = `127.0.0.1:${first.port}:1 a`;
  const b = `127.0.0.1:${second.port}:1 b`;
  await using aster = await startAster([cluster([a])], { env: { ASTER_LOG: "info" } });
  const reload = async (servers: string[], count: number) => {
    await Deno.writeTextFile(aster.configPath, renderToml([cluster(servers)]));
    aster.kill("SIGHUP");
    const done = () => (aster.log().match(/reloaded: reconfigured cache/g) ?? []).length >= count;
    for (let i = 0; i < 100 && !done(); i++) await sleep(50);
    assert.ok(done(), aster.log());
  };
  await using client = await RespClient.connect(port);
  await using onFirst = await RespClient.connect(first.port);
  await using onSecond = await RespClient.connect(second.port);
  // Moved to another server: the transaction runs there, as one begun after the reload.
  assert.equal(await client.command("MULTI"), "OK");
  assert.equal(await client.command("SET", "{r}k", "1"), "QUEUED");
  await reload([b], 1);
  assert.equal(await client.command("INCR", "{r}k"), "QUEUED");
  assert.deepEqual(await client.command("EXEC"), ["OK", 2]);
  assert.equal(text(await onSecond.command("GET", "{r}k")), "2");
  assert.equal(await onFirst.command("GET", "{r}k"), null);
  // Spread over two servers by the reload: discarded, nothing applied.
  const keys = Array.from({ length: 20 }, (_, i) => `spread${i}`);
  assert.equal(await client.command("MULTI"), "OK");
  for (const key of keys) assert.equal(await client.command("SET", key, "1"), "QUEUED");
  await reload([a, b], 2);
  const exec = await client.command("EXEC");
  assert.ok(exec instanceof RespErrorReply, Deno.inspect(exec));
  assert.match(exec.message, /^EXECABORT .*reloaded/);
  for (const direct of [onFirst, onSecond]) {
    assert.equal(await direct.command("EXISTS", ...keys), 0, "nothing applied");
  }
});
