/**
 * Transactions and blocking commands under `thread = 2`, in `redis` and `redis_cluster` mode:
 * clients spread over two workers, each with its own pinned connections. A BLPOP in one
 * worker is woken by a push through the other; a WATCH is broken by a write through the other; 20 clients increment one counter
 * with WATCH/MULTI/EXEC retries and none of the 200 increments is lost or doubled.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import type { ClusterToml } from "./helpers/aster.ts";

const CLIENTS = 20;
const INCREMENTS = 10;
/** Most EXEC retries of one increment (each retry means another client won the race). */
const MAX_RETRIES = 200;

/** The checks, through an Aster of `thread = 2` serving `cluster` as "wk". */
async function _acrossWorkers(cluster: ClusterToml): Promise<void> {
  await using aster = await startAster([{ name: "wk", thread: 2, ...cluster }], {
    env: { ASTER_LOG: "debug" },
  });
  const port = aster.ports[0];
  for (let i = 0; i < 400 && !/INFO serving wk: /.test(aster.log()); i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.match(aster.log(), /INFO serving wk: \S+ on .*thread=2/);

  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, () => RespClient.connect(port)),
  );
  try {
    // Pairs: the first blocks, its partner (likely in the other worker at times) pushes.
    await Promise.all(Array.from({ length: CLIENTS / 2 }, async (_, p) => {
      const [blocked, pusher] = [clients[2 * p], clients[2 * p + 1]];
      const popped = blocked.command("BLPOP", `{p${p}}q`, "5");
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await pusher.command("LPUSH", `{p${p}}q`, `v${p}`), 1);
      assert.deepEqual(text(await popped), [`{p${p}}q`, `v${p}`]);
    }));

    // A WATCH broken by the partner's write: EXEC is nil; then, untouched, it applies.
    await Promise.all(Array.from({ length: CLIENTS / 2 }, async (_, p) => {
      const [watcher, writer] = [clients[2 * p], clients[2 * p + 1]];
      const key = `{w${p}}k`;
      assert.equal(await watcher.command("WATCH", key), "OK");
      assert.equal(await writer.command("SET", key, "theirs"), "OK");
      assert.deepEqual(await watcher.pipeline([["MULTI"], ["SET", key, "mine"], ["EXEC"]]), [
        "OK",
        "QUEUED",
        null,
      ]);
      assert.equal(text(await writer.command("GET", key)), "theirs");
      assert.equal(await watcher.command("WATCH", key), "OK");
      assert.deepEqual(await watcher.pipeline([["MULTI"], ["SET", key, "mine"], ["EXEC"]]), [
        "OK",
        "QUEUED",
        ["OK"],
      ]);
    }));

    // Optimistic increments of one counter from every client: none lost, none doubled.
    let retries = 0;
    await Promise.all(clients.map(async (client) => {
      for (let n = 0; n < INCREMENTS; n++) {
        for (let attempt = 0;; attempt++) {
          assert.ok(attempt < MAX_RETRIES, "an increment never got through");
          assert.equal(await client.command("WATCH", "{cnt}c"), "OK");
          const value = Number(text(await client.command("GET", "{cnt}c")) ?? 0);
          const replies = await client.pipeline([
            ["MULTI"],
            ["SET", "{cnt}c", String(value + 1)],
            ["EXEC"],
          ]);
          if (replies[2] !== null) break;
          retries++;
        }
      }
    }));
    await using check = await RespClient.connect(port);
    assert.equal(text(await check.command("GET", "{cnt}c")), String(CLIENTS * INCREMENTS));
    assert.ok(retries > 0, "the clients never raced: the test proves nothing");
  } finally {
    for (const client of clients) client.close();
  }

  // Both workers served some of the clients.
  const leftBy = Date.now() + 5000;
  let served = new Set<string>();
  for (let i = 0; i < 200 && Date.now() < leftBy; i++) {
    const left = [...aster.log().matchAll(/\[(wk#\d+)\] client \d+ left/g)];
    served = new Set(left.map((m) => m[1]));
    if (left.length >= CLIENTS && served.size > 1) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.equal(served.size, 2, `clients served by ${[...served]}`);
  assert.equal(await aster.stop(), 0);
}

Deno.test("thread = 2, redis mode: transactions and blocking commands across workers", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  await _acrossWorkers({
    hash_tag: "{}",
    servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`],
  });
});

Deno.test("thread = 2, redis_cluster mode: transactions and blocking commands across workers", async () => {
  await using cluster = await startRedisCluster();
  await _acrossWorkers({ cache_type: "redis_cluster", servers: cluster.seeds() });
});
