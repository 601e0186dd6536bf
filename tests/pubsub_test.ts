/**
 * Pub/Sub through Aster against real redis-servers: the confirmation and subscribed-state
 * bytes compared with a direct redis-server (RESP2 and RESP3), ioredis and node-redis (RESP2
 * and RESP3) subscribers fed from another connection, every message exactly once and in order
 * over channels spread on 3 nodes, PUBLISH's receiver count and PUBSUB merged over the nodes,
 * keyspace notifications, a subscriber that stops reading closed at the hard limit while
 * another is unaffected, subscription connections closed with their client, idle timeout,
 * and channels subscribed again where they move (ejection and rejoin, SIGHUP reload, slot
 * migration, failover); in `redis` mode, under `thread = 2`, and in `redis_cluster` mode.
 */
import assert from "node:assert/strict";
import { createClient } from "redis";
import { renderToml, startAster, testBothIo } from "./helpers/aster.ts";
import { ioredisClient, within } from "./helpers/ioredis_client.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { freePort, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { showRaw } from "./helpers/raw_reply.ts";
import { encodeCommand } from "../src/protocol/resp/encoder.ts";
import { keySlot } from "../src/hash/key_slot.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const encoder = new TextEncoder();

/** Raw requests whose replies (and pushed frames) must be redis-server's, byte for byte. */
const SUBSCRIBED_SESSION: string[][] = [
  ["UNSUBSCRIBE"],
  ["PUNSUBSCRIBE"],
  ["SUBSCRIBE", "a", "b"],
  ["GET", "x"],
  ["PING"],
  ["PING", "hi"],
  ["PING", "a", "b"],
  ["GET"],
  ["PUBSUB", "NUMPAT"],
  ["CLIENT", "LIST"],
  ["MULTI"],
  ["EXEC"],
  ["SSUBSCRIBE", "s"],
  ["UNSUBSCRIBE", "a"],
  ["UNSUBSCRIBE", "b"],
  ["PUNSUBSCRIBE"],
  ["SUNSUBSCRIBE"],
  ["SUNSUBSCRIBE"],
  ["PSUBSCRIBE", "p*"],
  ["UNSUBSCRIBE"],
  ["SUBSCRIBE", "a", "a"],
  ["UNSUBSCRIBE", "zz"],
  ["PUNSUBSCRIBE", "p*", "q*"],
  ["UNSUBSCRIBE"],
  ["ECHO", "out"],
  ["WATCH", "w"],
  ["SUBSCRIBE", "c"],
  ["EXEC"],
  ["RESET"],
  ["EXEC"],
  ["ECHO", "again"],
  ["SUBSCRIBE", "d"],
  ["QUIT"],
];

/** The same under RESP3: push frames, no subscribed state. */
const RESP3_SESSION: string[][] = [
  ["HELLO", "3"],
  ["UNSUBSCRIBE"],
  ["SUBSCRIBE", "a", "b"],
  ["PING"],
  ["ECHO", "x"],
  ["PSUBSCRIBE", "p*"],
  ["UNSUBSCRIBE", "a"],
  ["UNSUBSCRIBE", "b"],
  ["PUNSUBSCRIBE"],
  ["SSUBSCRIBE", "s"],
  ["SUNSUBSCRIBE", "s"],
  ["SUNSUBSCRIBE"],
  ["RESET"],
  ["QUIT"],
];

/** The bytes a server sends for SUBSCRIBED_SESSION, up to its close after QUIT. */
async function _sessionBytes(port: number, session = SUBSCRIBED_SESSION): Promise<Uint8Array[]> {
  await using client = await RespClient.connect(port);
  const out: Uint8Array[] = [];
  for (const args of session) {
    await client.sendRaw(encodeCommand(args.map((arg) => encoder.encode(arg))));
    // One frame per (un)subscribed name: read what this request brings.
    const frames = args[0].endsWith("SUBSCRIBE") ? Math.max(1, args.length - 1) : 1;
    const sub = args[0] === "UNSUBSCRIBE" && args.length === 1 ? await _pending(client) : frames;
    for (let i = 0; i < sub; i++) out.push(await client.readRawReply());
  }
  return out;
}

/** An argument-less UNSUBSCRIBE's frame count: one in these sessions (one or no channel). */
function _pending(_client: RespClient): Promise<number> {
  return Promise.resolve(1);
}

/** What both Redis modes must do; `hostOf(channel)` is the backend a channel lives on. */
async function _suite(
  t: Deno.TestContext,
  port: number,
  direct: number,
  channels = ["c0", "c1", "c2", "c3", "{x}c4", "c5"],
): Promise<void> {
  await t.step("confirmations and subscribed-state errors are redis-server's bytes", async () => {
    const want = await _sessionBytes(direct);
    const got = await _sessionBytes(port);
    assert.equal(got.length, want.length);
    for (const [i, bytes] of want.entries()) {
      // CLIENT LIST refused in the subscribed state: the same error (the list itself differs).
      assert.equal(showRaw(got[i]), showRaw(bytes), `frame ${i}`);
    }
  });

  await t.step("RESP3: push frames and no subscribed state, redis-server's bytes", async () => {
    const want = await _sessionBytes(direct, RESP3_SESSION);
    const got = await _sessionBytes(port, RESP3_SESSION);
    // HELLO's map differs (id, version, mode): the rest must not.
    assert.equal(got.length, want.length);
    for (const [i, bytes] of want.entries()) {
      if (i > 0) assert.equal(showRaw(got[i]), showRaw(bytes), `frame ${i}`);
    }
    // Messages come as pushes on a RESP3 subscription connection.
    await using subscriber = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    await subscriber.rawCommand("HELLO", "3");
    await subscriber.rawCommand("SUBSCRIBE", "r3");
    assert.equal(await publisher.command("PUBLISH", "r3", "pushed"), 1);
    assert.equal(
      showRaw(await subscriber.readRawReply()),
      showRaw(encoder.encode(">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$6\r\npushed\r\n")),
    );
    // Blocked in a BLPOP, the subscriber still gets its messages at once, before the BLPOP's
    // reply, as redis-server writes pushes to a blocked client; a PING pipelined after it
    // (which Aster answers itself, redis-server only after the BLPOP) does not hold them back.
    await subscriber.sendRaw(
      "*3\r\n$5\r\nBLPOP\r\n$6\r\nr3list\r\n$1\r\n2\r\n*1\r\n$4\r\nPING\r\n",
    );
    await sleep(200);
    const publishedAt = performance.now();
    assert.equal(await publisher.command("PUBLISH", "r3", "while-blocked"), 1);
    assert.equal(
      showRaw(await subscriber.readRawReply()),
      showRaw(encoder.encode(">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$13\r\nwhile-blocked\r\n")),
    );
    assert.ok(performance.now() - publishedAt < 1000, "the message did not wait for the BLPOP");
    assert.equal(showRaw(await subscriber.readRawReply()), showRaw(encoder.encode("_\r\n")));
    assert.equal(showRaw(await subscriber.readRawReply()), showRaw(encoder.encode("+PONG\r\n")));
    // And commands still run while subscribed, as in RESP3.
    assert.equal(await subscriber.command("SET", "r3key", "v"), "OK");
    assert.equal(text(await subscriber.command("GET", "r3key")), "v");
    // HELLO cannot change the protocol while subscribed.
    const refused = await subscriber.command("HELLO", "2");
    assert.ok(refused instanceof RespErrorReply && /while subscribed/.test(refused.message));
  });

  await t.step("ioredis subscribe and psubscribe get messages published elsewhere", async () => {
    const subscriber = ioredisClient(port);
    const publisher = ioredisClient(port);
    try {
      await within(Promise.all([subscriber.connect(), publisher.connect()]), 5000, "connect");
      const got: string[] = [];
      subscriber.on("message", (channel: string, message: string) => {
        got.push(`${channel}:${message}`);
      });
      subscriber.on("pmessage", (pattern: string, channel: string, message: string) => {
        got.push(`${pattern}/${channel}:${message}`);
      });
      assert.equal(await within(subscriber.subscribe("news", "sport"), 5000, "subscribe"), 2);
      assert.equal(await within(subscriber.psubscribe("w*"), 5000, "psubscribe"), 3);
      assert.equal(await publisher.publish("news", "n1"), 1);
      assert.equal(await publisher.publish("sport", "s1"), 1);
      assert.equal(await publisher.publish("weather", "w1"), 1);
      assert.equal(await publisher.publish("nobody", "x"), 0);
      for (let i = 0; got.length < 3 && i < 100; i++) await sleep(20);
      assert.deepEqual(got.sort(), ["news:n1", "sport:s1", "w*/weather:w1"]);
      assert.deepEqual(
        await publisher.pubsub("NUMSUB", "news", "sport", "none"),
        ["news", 1, "sport", 1, "none", 0],
      );
      assert.deepEqual(
        ((await publisher.pubsub("CHANNELS")) as string[]).filter((c) => c !== "").sort(),
        ["news", "sport"],
      );
      assert.equal(await publisher.pubsub("NUMPAT"), 1);
      await within(subscriber.unsubscribe("news"), 5000, "unsubscribe");
      assert.equal(await publisher.publish("news", "n2"), 0);
      assert.equal(await publisher.publish("sport", "s2"), 1);
      for (let i = 0; got.length < 4 && i < 100; i++) await sleep(20);
      assert.deepEqual(got.slice(3), ["sport:s2"]);
    } finally {
      subscriber.disconnect();
      publisher.disconnect();
    }
  });

  for (const RESP of [2, 3] as const) {
    await t.step(`node-redis (RESP${RESP}) subscribe and pSubscribe`, async () => {
      const subscriber = createClient({ url: `redis://127.0.0.1:${port}`, RESP });
      const publisher = createClient({ url: `redis://127.0.0.1:${port}`, RESP });
      subscriber.on("error", () => {});
      publisher.on("error", () => {});
      try {
        await within(Promise.all([subscriber.connect(), publisher.connect()]), 5000, "connect");
        const got: string[] = [];
        await within(
          subscriber.subscribe(
            `nr${RESP}-chan`,
            (message, channel) => got.push(`${channel}:${message}`),
          ),
          5000,
          "subscribe",
        );
        await within(
          subscriber.pSubscribe(
            `nr${RESP}-*`,
            (message, channel) => got.push(`p ${channel}:${message}`),
          ),
          5000,
          "pSubscribe",
        );
        assert.equal(await publisher.publish(`nr${RESP}-chan`, "hello"), 2);
        assert.equal(await publisher.publish(`nr${RESP}-other`, "world"), 1);
        for (let i = 0; got.length < 3 && i < 100; i++) await sleep(20);
        assert.deepEqual(got.sort(), [
          `nr${RESP}-chan:hello`,
          `p nr${RESP}-chan:hello`,
          `p nr${RESP}-other:world`,
        ]);
        await within(subscriber.unsubscribe(`nr${RESP}-chan`), 5000, "unsubscribe");
        await within(subscriber.pUnsubscribe(`nr${RESP}-*`), 5000, "pUnsubscribe");
        assert.equal(await publisher.publish(`nr${RESP}-chan`, "gone"), 0);
      } finally {
        await subscriber.quit().catch(() => {});
        await publisher.quit().catch(() => {});
      }
    });
  }

  await t.step("a 3 MB message and a pipeline of small ones arrive whole", async () => {
    await using subscriber = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    assert.deepEqual(text(await subscriber.command("SUBSCRIBE", "big")), ["subscribe", "big", 1]);
    const payload = "x".repeat(3 * 1024 * 1024 - 7) + "the end";
    const replies = await publisher.pipeline([
      ["PUBLISH", "big", "before"],
      ["PUBLISH", "big", payload],
      ["PUBLISH", "big", "after"],
    ]);
    assert.deepEqual(replies, [1, 1, 1]);
    assert.deepEqual(text(await subscriber.readReply()), ["message", "big", "before"]);
    const [, , got] = text(await subscriber.readReply()) as string[];
    assert.equal(got.length, payload.length);
    assert.ok(got === payload);
    assert.deepEqual(text(await subscriber.readReply()), ["message", "big", "after"]);
  });

  await t.step("2,000 messages over 6 channels: each once, in order per channel", async () => {
    const patterned6 = channels.map((channel) => channel.startsWith("c"));
    const subscriber = await RespClient.connect(port);
    const patterned = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    try {
      await subscriber.sendRaw(
        encodeCommand(["SUBSCRIBE", ...channels].map((c) => encoder.encode(c))),
      );
      for (let i = 0; i < channels.length; i++) await subscriber.readReply();
      assert.deepEqual(text(await patterned.command("PSUBSCRIBE", "c*")), ["psubscribe", "c*", 1]);
      const commands: string[][] = [];
      for (let i = 0; i < 2000; i++) {
        commands.push(["PUBLISH", channels[i % channels.length], `m${i}`]);
      }
      const counts = await publisher.pipeline(commands);
      // The channel's subscriber and the pattern's (c* does not match {x}c4).
      counts.forEach((count, i) => assert.equal(count, patterned6[i % 6] ? 2 : 1, `PUBLISH ${i}`));
      const seen = new Map<string, number>();
      for (let i = 0; i < 2000; i++) {
        const [kind, channel, message] = text(await subscriber.readReply()) as string[];
        assert.equal(kind, "message");
        const n = Number(message.slice(1));
        assert.equal(channels[n % 6], channel);
        assert.ok(n > (seen.get(channel) ?? -1), `order of ${channel}`);
        seen.set(channel, n);
      }
      let patternMessages = 0;
      const lastPer = new Map<string, number>();
      const matching = Array.from({ length: 2000 }, (_, i) => patterned6[i % 6]).filter(Boolean);
      while (patternMessages < matching.length) {
        const [kind, pattern, channel, message] = text(await patterned.readReply()) as string[];
        assert.equal(kind, "pmessage");
        assert.equal(pattern, "c*");
        const n = Number(message.slice(1));
        assert.ok(n > (lastPer.get(channel) ?? -1), `pattern order of ${channel}`);
        lastPer.set(channel, n);
        patternMessages++;
      }
      // Nothing more: each message was delivered once.
      subscriber.timeoutMs = 300;
      patterned.timeoutMs = 300;
      await assert.rejects(subscriber.readReply());
      await assert.rejects(patterned.readReply());
    } finally {
      subscriber.close();
      patterned.close();
    }
  });
}

/**
 * Six channel names starting with "c", two on each of the three servers (found by
 * subscribing candidates through Aster and asking each server which it holds).
 */
async function _spreadChannels(port: number, servers: ServerProcess[]): Promise<string[]> {
  await using probe = await RespClient.connect(port);
  const candidates = Array.from({ length: 90 }, (_, i) => `c${(i * 7919) % 1000}-${i}`);
  await probe.sendRaw(encodeCommand(["SUBSCRIBE", ...candidates].map((c) => encoder.encode(c))));
  for (let i = 0; i < candidates.length; i++) await probe.readReply();
  const chosen: string[] = [];
  for (const server of servers) {
    await using direct = await RespClient.connect(server.port);
    const held = text(await direct.command("PUBSUB", "CHANNELS")) as string[];
    assert.ok(held.length >= 2, `two candidates on port ${server.port}`);
    chosen.push(...held.slice(0, 2));
  }
  // Unsubscribed (confirmed by the servers) before the channels are used.
  await probe.sendRaw(encodeCommand([encoder.encode("UNSUBSCRIBE")]));
  for (let i = 0; i < candidates.length; i++) await probe.readReply();
  return chosen;
}

/**
 * Keyspace notifications (turned on in every backend): SETs of 30 keys through Aster raise
 * each key's `__keyevent@0__:set` exactly once for a pattern subscriber, and a
 * `__keyspace@0__:<key>` subscriber hears its key whichever node holds it.
 */
async function _notifications(port: number, backends: number[]): Promise<void> {
  for (const backend of backends) {
    await using direct = await RespClient.connect(backend);
    assert.equal(await direct.command("CONFIG", "SET", "notify-keyspace-events", "KEA"), "OK");
  }
  await using events = await RespClient.connect(port);
  await using keyspace = await RespClient.connect(port);
  await using writer = await RespClient.connect(port);
  assert.deepEqual(text(await events.command("PSUBSCRIBE", "__keyevent@0__:s*")), [
    "psubscribe",
    "__keyevent@0__:s*",
    1,
  ]);
  const keys = Array.from({ length: 30 }, (_, i) => `note${i}`);
  await keyspace.sendRaw(
    encodeCommand(
      ["SUBSCRIBE", ...keys.map((k) => `__keyspace@0__:${k}`)].map((a) => encoder.encode(a)),
    ),
  );
  for (let i = 0; i < keys.length; i++) await keyspace.readReply();
  const replies = await writer.pipeline(keys.map((key) => ["SET", key, "v"]));
  assert.ok(replies.every((reply) => reply === "OK"));
  const heard: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const [kind, pattern, channel, key] = text(await events.readReply()) as string[];
    assert.deepEqual([kind, pattern, channel], [
      "pmessage",
      "__keyevent@0__:s*",
      "__keyevent@0__:set",
    ]);
    heard.push(key);
  }
  assert.deepEqual(heard.sort(), [...keys].sort());
  const spaced: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const [kind, channel, event] = text(await keyspace.readReply()) as string[];
    assert.deepEqual([kind, event], ["message", "set"]);
    spaced.push(channel);
  }
  assert.deepEqual(spaced.sort(), keys.map((k) => `__keyspace@0__:${k}`).sort());
  // Once each: nothing more comes.
  events.timeoutMs = 300;
  await assert.rejects(events.readReply());
}

/** Subscription connections a backend has (`CLIENT LIST` lines with sub or psub above 0). */
async function _subscriptionClients(port: number): Promise<number> {
  await using probe = await RespClient.connect(port);
  const list = text(await probe.command("CLIENT", "LIST")) as string;
  return list.split("\n").filter((line) => / (sub|psub|ssub)=[1-9]/.test(line)).length;
}

/** Every server's subscription connections, once none is left or after 2 s. */
async function _settledCounts(servers: ServerProcess[]): Promise<number[]> {
  let counts: number[] = [];
  for (let i = 0; i < 100; i++) {
    counts = await Promise.all(servers.map((s) => _subscriptionClients(s.port)));
    if (counts.every((n) => n === 0)) break;
    await sleep(20);
  }
  return counts;
}

/** Three redis-servers and Aster's `redis` mode in front of them. */
async function _ring(
  fn: (servers: ServerProcess[], port: number) => Promise<void>,
  extra: Record<string, string | number | boolean> = {},
): Promise<void> {
  await using a = await startRedis();
  await using b = await startRedis();
  await using c = await startRedis();
  const servers = [a, b, c];
  await using aster = await startAster([{
    servers: servers.map((s) => `127.0.0.1:${s.port}:1`),
    hash_tag: "{}",
    ...extra,
  }]);
  await fn(servers, aster.ports[0]);
}

testBothIo("pub/sub in redis mode over 3 nodes", async () => {
  await _ring(async (servers, port) => {
    await using direct = await startRedis();
    const t = _steps();
    await _suite(t, port, direct.port, await _spreadChannels(port, servers));
    await t.step("a client's subscription connections close with it", async () => {
      // The earlier steps' subscribers are gone, and so are their connections.
      assert.deepEqual(await _settledCounts(servers), [0, 0, 0]);
      const client = await RespClient.connect(port);
      await client.sendRaw(encodeCommand(["PSUBSCRIBE", "x*"].map((c) => encoder.encode(c))));
      await client.readReply();
      const during = await Promise.all(servers.map((s) => _subscriptionClients(s.port)));
      // A pattern is subscribed on every node.
      assert.deepEqual(during, [1, 1, 1]);
      client.close();
      assert.deepEqual(await _settledCounts(servers), [0, 0, 0]);
    });
  });
});

/**
 * Publishes `message` through Aster until a subscriber receives it (the channel may be
 * between nodes for a moment), within `ms`; returns the subscriber's frame.
 */
async function _publishUntilReceived(
  publisher: RespClient,
  subscriber: RespClient,
  channel: string,
  ms: number,
  command = "PUBLISH",
): Promise<string[]> {
  const deadline = Date.now() + ms;
  // Read only once a subscriber counted it (a timed-out read would lose bytes).
  subscriber.timeoutMs = 5000;
  for (let round = 0; Date.now() < deadline; round++) {
    const count = await publisher.command(command, channel, `try${round}`);
    if (count === 1) {
      const frame = text(await subscriber.readReply()) as string[];
      return frame;
    }
    await sleep(50);
  }
  throw new Error(`${channel}: no subscriber within ${ms} ms`);
}

Deno.test("pub/sub: keyspace notifications of every node in redis mode", async () => {
  await _ring((servers, port) => _notifications(port, servers.map((s) => s.port)));
});

Deno.test("pub/sub with distribution = random: every PUBLISH reaches the subscriber once", async () => {
  await _ring(async (_servers, port) => {
    await using subscriber = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    assert.deepEqual(text(await subscriber.command("SUBSCRIBE", "anywhere")), [
      "subscribe",
      "anywhere",
      1,
    ]);
    for (let i = 0; i < 30; i++) {
      assert.equal(await publisher.command("PUBLISH", "anywhere", `m${i}`), 1);
      assert.deepEqual(text(await subscriber.readReply()), ["message", "anywhere", `m${i}`]);
    }
  }, { distribution: "random" });
});

testBothIo("pub/sub: channels of an ejected node move, and move back when it rejoins", async () => {
  await _ring(async (servers, port) => {
    const channels = Array.from({ length: 12 }, (_, i) => `moving${i}`);
    await using subscriber = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    await subscriber.sendRaw(
      encodeCommand(["SUBSCRIBE", ...channels].map((c) => encoder.encode(c))),
    );
    for (let i = 0; i < channels.length; i++) await subscriber.readReply();
    // Right after start a node may be out of the ring for a moment (its first pings fail
    // before it is connected); its channels come to it when it joins. The victim is the
    // server with the most channels then.
    await sleep(500);
    const listed = await Promise.all(servers.map(async (server) => {
      await using probe = await RespClient.connect(server.port);
      return text(await probe.command("PUBSUB", "CHANNELS")) as string[];
    }));
    const most = listed.reduce(
      (best, names, i) => names.length > listed[best].length ? i : best,
      0,
    );
    const victim = servers[most];
    const channel = listed[most][0];
    assert.equal(listed.flat().length, channels.length);
    await victim.stop();
    // Ejected after 2 failed pings 100 ms apart: the channel moves to a live node, where
    // Aster subscribes it again and PUBLISH now goes.
    const moved = await _publishUntilReceived(publisher, subscriber, channel, 5000);
    assert.equal(moved[0], "message");
    assert.equal(moved[1], channel);
    const holders = await Promise.all(
      servers.filter((server) => server !== victim).map(async (server) => {
        await using probe = await RespClient.connect(server.port);
        return (text(await probe.command("PUBSUB", "CHANNELS")) as string[]).includes(channel);
      }),
    );
    assert.deepEqual(holders.filter(Boolean), [true], "the channel is on one live server");
    // Back on the same port: the node rejoins the ring and the channel moves back to it.
    await using restarted = await startRedis({ port: victim.port });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      await using probe = await RespClient.connect(restarted.port);
      if ((text(await probe.command("PUBSUB", "CHANNELS")) as string[]).includes(channel)) break;
      await sleep(50);
    }
    const back = await _publishUntilReceived(publisher, subscriber, channel, 5000);
    assert.deepEqual(back.slice(0, 2), ["message", channel]);
    // Every subscribed channel still gets its messages exactly once.
    subscriber.timeoutMs = 2000;
    for (const name of channels) {
      assert.equal(await publisher.command("PUBLISH", name, "last"), 1, name);
      assert.deepEqual(text(await subscriber.readReply()), ["message", name, "last"]);
    }
  }, { ping_fail_limit: 2, ping_interval: 100, dial_timeout: 200, read_timeout: 300 });
});

Deno.test("pub/sub: a SIGHUP reload moves channels to the new ring; INFO and /metrics count them", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  await using c = await startRedis();
  const metricsPort = await freePort();
  const cluster = (servers: ServerProcess[]) => ({
    name: "ps",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${listenPort}`,
    servers: servers.map((s) => `127.0.0.1:${s.port}:1`),
  });
  const listenPort = await freePort();
  await using aster = await startAster([cluster([a, b])], {
    args: ["-m", String(metricsPort)],
  });
  const port = aster.ports[0];
  const channels = Array.from({ length: 12 }, (_, i) => `reload${i}`);
  await using subscriber = await RespClient.connect(port);
  await using publisher = await RespClient.connect(port);
  await subscriber.sendRaw(encodeCommand(["SUBSCRIBE", ...channels].map((n) => encoder.encode(n))));
  for (let i = 0; i < channels.length; i++) await subscriber.readReply();
  assert.deepEqual(text(await subscriber.command("PSUBSCRIBE", "r*")), ["psubscribe", "r*", 13]);
  const info = text(await publisher.command("INFO", "clients")) as string;
  assert.match(info, /pubsub_clients:1\r\n/);
  assert.match(info, /pubsub_channel_subscriptions:12\r\n/);
  assert.match(info, /pubsub_pattern_subscriptions:1\r\n/);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /^aster_pubsub_clients\{cluster="ps"\} 1$/m);
  assert.match(metrics, /^aster_pubsub_subscriptions\{cluster="ps",kind="channel"\} 12$/m);
  assert.match(metrics, /^aster_pubsub_subscriptions\{cluster="ps",kind="pattern"\} 1$/m);

  await Deno.writeTextFile(aster.configPath, renderToml([cluster([a, b, c])]));
  aster.kill("SIGHUP");
  // The added server gets the pattern (and the channels the ring now gives it); every
  // channel is on one server only.
  let onC = 0;
  for (let i = 0; i < 100 && onC === 0; i++) {
    await sleep(50);
    onC = await _subscriptionClients(c.port);
  }
  assert.equal(onC, 1, aster.log());
  const listed: string[] = [];
  for (const server of [a, b, c]) {
    await using probe = await RespClient.connect(server.port);
    listed.push(...text(await probe.command("PUBSUB", "CHANNELS")) as string[]);
  }
  assert.deepEqual(listed.sort(), [...channels].sort());
  subscriber.timeoutMs = 2000;
  for (const name of channels) {
    // The channel's subscription and the pattern's, once each.
    assert.equal(await publisher.command("PUBLISH", name, "after"), 2, name);
    const frames = [text(await subscriber.readReply()), text(await subscriber.readReply())];
    assert.deepEqual(frames.sort(), [["message", name, "after"], [
      "pmessage",
      "r*",
      name,
      "after",
    ]]);
  }
  await subscriber.sendRaw(encodeCommand([encoder.encode("RESET")]));
  assert.equal(await subscriber.readReply(), "RESET");
  const after = text(await publisher.command("INFO", "clients")) as string;
  assert.match(after, /pubsub_clients:0\r\n/);
  assert.match(after, /pubsub_channel_subscriptions:0\r\n/);
  assert.equal(await _subscriptionClients(c.port), 0);
});

Deno.test("pub/sub: client_idle_timeout closes idle clients but not subscribers", async () => {
  await _ring(async (_servers, port) => {
    await using idle = await RespClient.connect(port);
    await using subscriber = await RespClient.connect(port);
    assert.equal(await idle.command("PING"), "PONG");
    assert.deepEqual(text(await subscriber.command("SUBSCRIBE", "quiet")), [
      "subscribe",
      "quiet",
      1,
    ]);
    assert.ok(await idle.closedWithin(4000), "the idle client is closed");
    await using publisher = await RespClient.connect(port);
    assert.equal(await publisher.command("PUBLISH", "quiet", "still here"), 1);
    assert.deepEqual(text(await subscriber.readReply()), ["message", "quiet", "still here"]);
  }, { client_idle_timeout: 1 });
});

Deno.test("pub/sub under thread = 2: subscribers on either worker get every message", async () => {
  await _ring(async (_servers, port) => {
    const subscribers: RespClient[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const client = await RespClient.connect(port);
        subscribers.push(client);
        assert.deepEqual(text(await client.command("SUBSCRIBE", "both")), ["subscribe", "both", 1]);
      }
      await using publisher = await RespClient.connect(port);
      for (let i = 0; i < 20; i++) {
        assert.equal(await publisher.command("PUBLISH", "both", `m${i}`), 6);
      }
      for (const client of subscribers) {
        for (let i = 0; i < 20; i++) {
          assert.deepEqual(text(await client.readReply()), ["message", "both", `m${i}`]);
        }
      }
      assert.equal(text(await publisher.command("PUBSUB", "NUMSUB", "both"))?.toString(), "both,6");
    } finally {
      for (const client of subscribers) client.close();
    }
  }, { thread: 2 });
});

testBothIo("pub/sub: a subscriber that stops reading is closed at the hard limit", async () => {
  await _ring(async (_servers, port) => {
    await using slow = await RespClient.connect(port);
    await using reader = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    assert.deepEqual(text(await slow.command("SUBSCRIBE", "flood")), ["subscribe", "flood", 1]);
    assert.deepEqual(text(await reader.command("SUBSCRIBE", "calm")), ["subscribe", "calm", 1]);
    const payload = "x".repeat(64 * 1024);
    // `slow` reads nothing: past the 1 MB hard limit (plus the socket buffers) it is closed.
    let closed = false;
    for (let round = 0; round < 40 && !closed; round++) {
      await publisher.pipeline(Array.from({ length: 50 }, () => ["PUBLISH", "flood", payload]));
      assert.equal(await publisher.command("PUBLISH", "calm", `r${round}`), 1);
      assert.deepEqual(text(await reader.readReply()), ["message", "calm", `r${round}`]);
      closed = await publisher.command("PUBSUB", "NUMSUB", "flood").then((reply) =>
        (reply as RespValue[])[1] === 0
      );
    }
    assert.ok(closed, "the slow subscriber was closed");
    assert.ok(await slow.closedWithin(5000));
    assert.equal(await publisher.command("PING"), "PONG");
  }, { client_output_soft_limit: 262144, client_output_hard_limit: 1048576 });
});

Deno.test("pub/sub in redis_cluster mode: classic, pattern and sharded channels", async (t) => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  await using direct = await startRedis();
  const port = aster.ports[0];
  await _suite(t, port, direct.port);
  await t.step("keyspace notifications of every master", async () => {
    await _notifications(port, (await cluster.masters()).map((m) => m.port));
  });
  await t.step("SSUBSCRIBE and SPUBLISH meet on the slot's master", async () => {
    await using subscriber = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    assert.deepEqual(text(await subscriber.command("SSUBSCRIBE", "{s1}a")), [
      "ssubscribe",
      "{s1}a",
      1,
    ]);
    const refused = await subscriber.command("SSUBSCRIBE", "{s1}b", "{s2}c");
    assert.ok(refused instanceof RespErrorReply && /CROSSSLOT/.test(refused.message));
    assert.equal(await publisher.command("SPUBLISH", "{s1}a", "hello"), 1);
    assert.deepEqual(text(await subscriber.readReply()), ["smessage", "{s1}a", "hello"]);
    assert.deepEqual(text(await publisher.command("PUBSUB", "SHARDNUMSUB", "{s1}a")), [
      "{s1}a",
      1,
    ]);
    assert.deepEqual(text(await publisher.command("PUBSUB", "SHARDCHANNELS")), ["{s1}a"]);
  });
  await t.step("a sharded channel whose slot moves is subscribed on the new owner", async () => {
    await using subscriber = await RespClient.connect(port);
    await using publisher = await RespClient.connect(port);
    const channel = "{move}ch";
    assert.deepEqual(text(await subscriber.command("SSUBSCRIBE", channel)), [
      "ssubscribe",
      channel,
      1,
    ]);
    assert.equal(await publisher.command("SPUBLISH", channel, "before"), 1);
    assert.deepEqual(text(await subscriber.readReply()), ["smessage", channel, "before"]);
    const slot = keySlot(encoder.encode(channel));
    const owner = await cluster.ownerOf(slot);
    const target = (await cluster.masters()).find((m) => m.port !== owner.port)!;
    await cluster.migrateSlot(slot, target);
    // Redis unsubscribes it on the old owner (Aster does not pass that on) and Aster
    // subscribes it on the new one.
    const got = await _publishUntilReceived(publisher, subscriber, channel, 10000, "SPUBLISH");
    assert.equal(got[0], "smessage");
    assert.equal(got[1], channel);
  });
  await t.step(
    "after a failover of their masters, channels are subscribed on the new ones",
    async () => {
      await using subscriber = await RespClient.connect(port);
      await using publisher = await RespClient.connect(port);
      const shard = "{fo}ch";
      assert.deepEqual(text(await subscriber.command("SUBSCRIBE", "fo")), ["subscribe", "fo", 1]);
      assert.deepEqual(text(await subscriber.command("SSUBSCRIBE", shard)), [
        "ssubscribe",
        shard,
        1,
      ]);
      // Slot 0's master holds the classic subscriptions; the shard channel's slot its own.
      const owners = [
        await cluster.ownerOf(0),
        await cluster.ownerOf(keySlot(encoder.encode(shard))),
      ];
      const seen = new Set<number>();
      for (const owner of owners) {
        if (seen.has(owner.port)) continue;
        seen.add(owner.port);
        const [replica] = await cluster.replicasOf(owner);
        await cluster.failover(replica);
      }
      // Writes to both slots meet MOVED at the old masters: Aster's slot map follows.
      let slotZeroKey = "";
      for (let i = 0; slotZeroKey === "" && i < 200_000; i++) {
        if (keySlot(encoder.encode(`z${i}`)) === 0) slotZeroKey = `z${i}`;
      }
      assert.equal(await publisher.command("SET", slotZeroKey, "1"), "OK");
      assert.equal(await publisher.command("SET", "{fo}key", "1"), "OK");
      // Until the new masters have them, messages may come through the old ones (now
      // replicas, which the cluster still tells): published until the count is 1 again.
      for (const [command, channel] of [["PUBLISH", "fo"], ["SPUBLISH", shard]]) {
        const deadline = Date.now() + 10000;
        while (await publisher.command(command, channel, "probe") !== 1) {
          assert.ok(Date.now() < deadline, `${channel} subscribed again on its new master`);
          await sleep(50);
        }
      }
      // Read past the probes (a timed-out read would lose bytes: none is used here), then
      // each message once: a second copy would come before the next message.
      subscriber.timeoutMs = 5000;
      for (
        const [command, channel, kind] of [
          ["PUBLISH", "fo", "message"],
          ["SPUBLISH", shard, "smessage"],
        ]
      ) {
        assert.equal(await publisher.command(command, channel, "final"), 1);
        let frame = text(await subscriber.readReply()) as string[];
        while (frame.at(-1) === "probe") frame = text(await subscriber.readReply()) as string[];
        assert.deepEqual(frame, [kind, channel, "final"]);
        assert.equal(await publisher.command(command, channel, "after"), 1);
        frame = text(await subscriber.readReply()) as string[];
        while (frame.at(-1) === "probe") frame = text(await subscriber.readReply()) as string[];
        assert.deepEqual(frame, [kind, channel, "after"]);
      }
      // No subscription left behind on the old masters: each message arrived once.
      subscriber.timeoutMs = 300;
      await assert.rejects(subscriber.readReply());
    },
  );
});
/** A minimal step runner for suites shared with Deno.test's own steps. */
function _steps(): Deno.TestContext {
  return {
    step: async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        throw new Error(`step "${name}": ${err instanceof Error ? err.stack : err}`);
      }
      return true;
    },
  } as unknown as Deno.TestContext;
}
