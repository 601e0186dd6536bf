/**
 * Blocking commands through Aster on dedicated connections, in `redis` mode and
 * `redis_cluster` mode: an ioredis BLPOP woken by a push from another connection, other
 * clients served while one is blocked, a blocked client that disconnects (the pushed element
 * stays in the list), keys on two nodes refused, and the `blocking_connections` cap.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { ioredisClient, within } from "./helpers/ioredis_client.ts";
import { ReplyTimeout, RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { keyOnAnotherServer } from "./helpers/keys.ts";
import { startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { encodeBulk, encodeCommandText } from "../src/protocol/resp/encoder.ts";
import { startFakeRedis } from "./helpers/fake_redis.ts";
import { createClient } from "redis";
import { BLOCKING_TIMEOUT_MARGIN_MS } from "../src/proxy/plan_runner.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What every mode must do; `far` is a key on another node (slot) than `{q}`'s. */
async function _suite(t: Deno.TestContext, port: number, far: string): Promise<void> {
  await t.step("ioredis blpop is woken by an lpush from another connection", async () => {
    const blocked = ioredisClient(port);
    const pusher = ioredisClient(port);
    try {
      await within(Promise.all([blocked.connect(), pusher.connect()]), 5000, "connect");
      const popped = blocked.blpop("{q}list", 0);
      await sleep(200);
      // Others are served while it is blocked.
      assert.equal(await within(pusher.set("{q}other", "v"), 1000, "SET"), "OK");
      assert.equal(await within(pusher.get("{q}other"), 1000, "GET"), "v");
      assert.equal(await pusher.lpush("{q}list", "job"), 1);
      assert.deepEqual(await within(popped, 5000, "BLPOP"), ["{q}list", "job"]);
      // Its connection went back: the same client blocks again and times out as Redis does.
      assert.equal(await within(blocked.brpop("{q}list", 0.2), 5000, "BRPOP timeout"), null);
    } finally {
      blocked.disconnect();
      pusher.disconnect();
    }
  });

  await t.step("node-redis (RESP2) blPop is woken by an lPush from another client", async () => {
    const blocked = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2 });
    const pusher = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2 });
    const errors: unknown[] = [];
    for (const c of [blocked, pusher]) c.on("error", (err) => errors.push(err));
    try {
      await within(Promise.all([blocked.connect(), pusher.connect()]), 5000, "connect");
      const popped = blocked.blPop("{q}node", 0);
      await sleep(200);
      assert.equal(await within(pusher.lPush("{q}node", "job"), 1000, "LPUSH"), 1);
      assert.deepEqual(await within(popped, 5000, "BLPOP"), { key: "{q}node", element: "job" });
      assert.equal(await within(blocked.blPop("{q}node", 0.2), 5000, "BLPOP timeout"), null);
      assert.deepEqual(errors, []);
    } finally {
      blocked.destroy();
      pusher.destroy();
    }
  });

  await t.step("a blocked client that disconnects does not take the element", async () => {
    const gone = await RespClient.connect(port);
    await gone.sendRaw(encodeCommandText("BLPOP", "{q}keep", "0"));
    await sleep(200);
    await gone[Symbol.asyncDispose]();
    await sleep(300);
    await using client = await RespClient.connect(port);
    // Blocked before it went: a push now would have been popped for it.
    assert.equal(await client.command("LPUSH", "{q}keep", "precious"), 1);
    await sleep(200);
    assert.deepEqual(text(await client.command("LRANGE", "{q}keep", "0", "-1")), ["precious"]);
  });

  await t.step("BLPOP 1 on an empty list answers nil after its timeout", async () => {
    await using client = await RespClient.connect(port);
    const started = performance.now();
    assert.equal(await client.command("BLPOP", "{q}empty", "1"), null);
    const waited = performance.now() - started;
    assert.ok(waited >= 900 && waited < 1000 + BLOCKING_TIMEOUT_MARGIN_MS, `${waited} ms`);
    assert.equal(await client.command("PING"), "PONG");
  });

  await t.step("keys on two nodes are refused", async () => {
    await using client = await RespClient.connect(port);
    const refused = await client.command("BLPOP", "{q}a", far, "1");
    assert.ok(refused instanceof RespErrorReply, Deno.inspect(refused));
  });

  await t.step("XREAD BLOCK and BZPOPMIN are served", async () => {
    await using client = await RespClient.connect(port);
    await using other = await RespClient.connect(port);
    assert.equal(await client.command("ZADD", "{q}z", "1", "m"), 1);
    assert.deepEqual(text(await client.command("BZPOPMIN", "{q}z", "1")), ["{q}z", "m", "1"]);
    const read = client.command("XREAD", "BLOCK", "0", "STREAMS", "{q}s", "$");
    await sleep(200);
    assert.equal(typeof text(await other.command("XADD", "{q}s", "*", "f", "v")), "string");
    const got = text(await within(read, 5000, "XREAD BLOCK")) as unknown[][];
    assert.equal(got[0][0], "{q}s");
  });
}

// Both socket paths: raw sockets (`io = "auto"`) and Deno's ops (sandboxed).
for (const sandboxed of [false, true]) {
  Deno.test(`blocking commands in redis mode${sandboxed ? " [io = deno]" : ""}`, async (t) => {
    await using a = await startRedis();
    await using b = await startRedis();
    await using c = await startRedis();
    await using aster = await startAster([
      { servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`], hash_tag: "{}" },
      { servers: [`127.0.0.1:${c.port}:1`], blocking_connections: 1 },
    ], { sandboxed });
    await using onA = await RespClient.connect(a.port);
    await using onB = await RespClient.connect(b.port);
    await using client = await RespClient.connect(aster.ports[0]);
    // A key on the other server than {q}'s. The ring is named by the random ports: spread
    // keys find one on every ring (f0, f1, ... hash into a few clumps, and missed 1 in 100).
    const far = await keyOnAnotherServer(client, [onA, onB], "{q}probe", "far");
    await _suite(t, aster.ports[0], far);

    await t.step("past blocking_connections a blocking command gets a clear error", async () => {
      await using first = await RespClient.connect(aster.ports[1]);
      await using second = await RespClient.connect(aster.ports[1]);
      const waiting = first.command("BLPOP", "cap", "1");
      await sleep(200);
      const refused = await second.command("BLPOP", "cap", "1");
      assert.ok(refused instanceof RespErrorReply);
      assert.match(refused.message, /blocking_connections/);
      assert.equal(await waiting, null);
    });
  });
}

Deno.test("blocking commands in redis_cluster mode", async (t) => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  await _suite(t, aster.ports[0], "{far}x");
});

/** A backend that answers everything but blocking commands, which it never answers. */
function _neverBlocks() {
  const encoder = new TextEncoder();
  return startFakeRedis((argv) => {
    const name = argv[0].toLowerCase();
    if (name === "ping") return encoder.encode("+PONG\r\n");
    if (name === "info") return encodeBulk("# Server\r\nredis_version:7.0.0\r\n");
    if (name === "blpop" || name === "xread") return null;
    return encoder.encode("+OK\r\n");
  });
}

testBothIo(
  "a blocking command past its timeout plus the margin times out; 0 waits on",
  async () => {
    await using fake = _neverBlocks();
    await using aster = await startAster([{ servers: [`127.0.0.1:${fake.port}:1 stuck`] }]);
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("SET", "k", "v"), "OK");
    const closedBefore = fake.closed;
    const started = performance.now();
    const reply = await client.command("BLPOP", "k", "0.2");
    const waited = performance.now() - started;
    assert.ok(reply instanceof RespErrorReply, Deno.inspect(reply));
    assert.match(reply.message, /^ERR backend stuck: timed out/);
    // Deadlines run on the coarse clock, which lags a busy event loop by up to a few ticks:
    // the margin absorbs that, so the command's own timeout is never cut short.
    assert.ok(waited >= 200 + BLOCKING_TIMEOUT_MARGIN_MS - 250, `${waited} ms`);
    assert.ok(waited < 200 + BLOCKING_TIMEOUT_MARGIN_MS + 1500, `${waited} ms`);
    // Its dedicated connection was closed, not returned to the pool.
    for (let i = 0; i < 50 && fake.closed === closedBefore; i++) await sleep(20);
    assert.equal(fake.closed, closedBefore + 1);
    // XREAD BLOCK counts in ms.
    const started2 = performance.now();
    const xread = await client.command("XREAD", "BLOCK", "100", "STREAMS", "s", "$");
    assert.ok(xread instanceof RespErrorReply && /timed out/.test(xread.message));
    assert.ok(performance.now() - started2 < 100 + BLOCKING_TIMEOUT_MARGIN_MS + 1500);
    // The client goes on; BLPOP 0 is never cut short.
    assert.equal(await client.command("GET", "k"), "OK");
    await client.sendRaw(encodeCommandText("BLPOP", "k", "0"));
    client.timeoutMs = BLOCKING_TIMEOUT_MARGIN_MS + 800;
    await assert.rejects(client.readReply(), ReplyTimeout);
  },
);

Deno.test("timeouts in C's float forms block as long as redis-server blocks them", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  // 0x1.8 is 1.5 s; -0.0009 s is 0 ms, which blocks until a push (past Aster's own 1 s
  // margin for an invalid timeout, which these were taken for).
  for (const [key, timeout] of [["hexwait", "0x1.8"], ["tinywait", "-0.0009"]]) {
    const replies: string[] = [];
    for (const port of [redis.port, aster.ports[0]]) {
      await using blocked = await RespClient.connect(port);
      await using pusher = await RespClient.connect(port);
      blocked.timeoutMs = 5000;
      const started = performance.now();
      await blocked.sendRaw(encodeCommandText("BLPOP", `${key}:${port}`, timeout));
      if (timeout === "-0.0009") {
        await sleep(BLOCKING_TIMEOUT_MARGIN_MS + 300);
        assert.equal(await pusher.command("RPUSH", `${key}:${port}`, "v"), 1);
      }
      const reply = new TextDecoder().decode(await blocked.readRawReply());
      const waited = performance.now() - started;
      replies.push(reply);
      if (timeout === "0x1.8") assert.ok(waited > 1300 && waited < 3000, `${port}: ${waited} ms`);
    }
    assert.equal(
      replies[1].replaceAll(String(aster.ports[0]), "P"),
      replies[0].replaceAll(String(redis.port), "P"),
      timeout,
    );
  }
});
