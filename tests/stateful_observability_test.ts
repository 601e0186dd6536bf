/**
 * What INFO and /metrics say of stateful clients (issue 19, observability), in `redis` and
 * `redis_cluster` mode: blocked clients, clients in a transaction, pinned connections in use
 * per node, up while a client holds one and down once it is done or gone; and SLOWLOG leaves
 * out the time a blocking command waits by its own timeout, while a slow EVAL is still in it.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { encodeCommandText } from "../src/protocol/resp/encoder.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What one INFO section and /metrics say now. */
interface Seen {
  blocked: number;
  inTransaction: number;
  /** Summed over the nodes' `pinned=` in INFO backends. */
  pinned: number;
  metricBlocked: number;
  metricInTransaction: number;
  /** Summed over the nodes' aster_pinned_connections. */
  metricPinned: number;
}

async function _seen(client: RespClient, metricsPort: number): Promise<Seen> {
  const info = String(text(await client.command("INFO")));
  const field = (name: string) => Number(info.match(new RegExp(`^${name}:(\\d+)`, "m"))?.[1]);
  const pinned = [...info.matchAll(/,pinned=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const sample = (series: string) => {
    const line = body.split("\n").find((l) => l.startsWith(series + " "));
    return line === undefined ? NaN : Number(line.slice(series.length + 1));
  };
  const metricPinned = body.split("\n").filter((l) => l.startsWith("aster_pinned_connections{"))
    .reduce((sum, line) => sum + Number(line.split(" ")[1]), 0);
  return {
    blocked: field("blocked_clients"),
    inTransaction: field("transaction_clients"),
    pinned,
    metricBlocked: sample('aster_clients_in_state{cluster="c",state="blocked"}'),
    metricInTransaction: sample('aster_clients_in_state{cluster="c",state="in_transaction"}'),
    metricPinned,
  };
}

/** Polls until what is seen matches (the metrics endpoint gathers the workers' snapshots). */
async function _expect(
  client: RespClient,
  metricsPort: number,
  want: { blocked: number; inTransaction: number; pinned: number },
): Promise<void> {
  let seen: Seen | null = null;
  for (let i = 0; i < 40; i++) {
    seen = await _seen(client, metricsPort);
    if (
      seen.blocked === want.blocked && seen.metricBlocked === want.blocked &&
      seen.inTransaction === want.inTransaction &&
      seen.metricInTransaction === want.inTransaction &&
      seen.pinned === want.pinned && seen.metricPinned === want.pinned
    ) return;
    await sleep(50);
  }
  assert.fail(`wanted ${JSON.stringify(want)}, saw ${JSON.stringify(seen)}`);
}

/** A Lua loop that keeps the backend busy for `ms`: a slow command of its own making. */
const BUSY_SCRIPT = "local s = redis.call('TIME') repeat local n = redis.call('TIME') " +
  "until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > tonumber(ARGV[1]) * 1000 return 1";

async function _suite(t: Deno.TestContext, port: number, metricsPort: number): Promise<void> {
  await t.step("blocked, in a transaction, pinned: counted while held, 0 after", async () => {
    await using observer = await RespClient.connect(port);
    await _expect(observer, metricsPort, { blocked: 0, inTransaction: 0, pinned: 0 });
    await using blocked = await RespClient.connect(port);
    await blocked.sendRaw(encodeCommandText("BLPOP", "{q}obs", "0"));
    await _expect(observer, metricsPort, { blocked: 1, inTransaction: 0, pinned: 1 });
    const watcher = await RespClient.connect(port);
    assert.equal(await watcher.command("WATCH", "{q}w"), "OK");
    await _expect(observer, metricsPort, { blocked: 1, inTransaction: 1, pinned: 2 });
    assert.equal(await observer.command("LPUSH", "{q}obs", "v"), 1);
    assert.deepEqual(text(await blocked.readReply()), ["{q}obs", "v"]);
    await _expect(observer, metricsPort, { blocked: 0, inTransaction: 1, pinned: 1 });
    // MULTI before a key is a transaction too; a client that goes leaves the gauges.
    await using multi = await RespClient.connect(port);
    assert.equal(await multi.command("MULTI"), "OK");
    await _expect(observer, metricsPort, { blocked: 0, inTransaction: 2, pinned: 1 });
    assert.deepEqual(await multi.command("EXEC"), []);
    watcher.close();
    await _expect(observer, metricsPort, { blocked: 0, inTransaction: 0, pinned: 0 });
  });

  await t.step("SLOWLOG leaves out a BLPOP's own wait, keeps a slow EVAL", async () => {
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("SLOWLOG", "RESET"), "OK");
    assert.equal(await client.command("BLPOP", "{q}empty", "1"), null);
    assert.equal(await client.command("SLOWLOG", "LEN"), 0);
    assert.equal(await client.command("EVAL", BUSY_SCRIPT, "0", "400"), 1);
    assert.equal(await client.command("SLOWLOG", "LEN"), 1);
    const [entry] = text(await client.command("SLOWLOG", "GET")) as unknown[][];
    assert.equal((entry[3] as string[])[0], "EVAL");
    assert.ok((entry[2] as number) >= 300_000, `${entry[2]} µs`);
  });

  await t.step(
    "SLOWLOG times a request that waited for the client's slow one from its send",
    async () => {
      await using client = await RespClient.connect(port);
      assert.equal(await client.command("SLOWLOG", "RESET"), "OK");
      // MULTI and BLPOP go over other connections than the EVAL: they wait for its reply, as
      // redis-server runs them after it; that wait is not theirs.
      const replies = await client.pipeline([
        ["EVAL", BUSY_SCRIPT, "0", "400"],
        ["MULTI"],
        ["EXEC"],
        ["BLPOP", "{q}empty", "0.1"],
      ]);
      assert.deepEqual(replies, [1, "OK", [], null]);
      const entries = text(await client.command("SLOWLOG", "GET")) as unknown[][];
      assert.deepEqual(entries.map((entry) => (entry[3] as string[])[0]), ["EVAL"]);
    },
  );
}

/** 0.3 s: a BLPOP 1 waits longer, by its own timeout; the busy EVAL takes 0.4 s. */
const SLOWER_THAN_US = 300_000;

Deno.test("INFO and /metrics count blocked, transaction and pinned clients: redis mode", async (t) => {
  await using a = await startRedis();
  await using b = await startRedis();
  const metricsPort = await freePort();
  await using aster = await startAster([{
    name: "c",
    servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`],
    hash_tag: "{}",
    slowlog_slower_than: SLOWER_THAN_US,
  }], { args: ["-m", String(metricsPort)] });
  await _suite(t, aster.ports[0], metricsPort);
});

Deno.test("INFO and /metrics count blocked, transaction and pinned clients: redis_cluster mode", async (t) => {
  await using cluster = await startRedisCluster();
  const metricsPort = await freePort();
  await using aster = await startAster([{
    name: "c",
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    slowlog_slower_than: SLOWER_THAN_US,
  }], { args: ["-m", String(metricsPort)] });
  await _suite(t, aster.ports[0], metricsPort);
});
