/**
 * BullMQ through Aster (issue 19, proof with real clients): a queue with the hash-tagged
 * prefix `{bull}`, 1,000 jobs added, 4 Workers of concurrency 5; every job is completed
 * exactly once and no worker reports an error, in `redis` mode (3 shards) and
 * `redis_cluster` mode. BullMQ runs its Lua scripts (EVALSHA, EVAL after NOSCRIPT), blocks
 * on BZPOPMIN, and reads INFO's redis_version.
 */
import assert from "node:assert/strict";
import { Queue, Worker } from "bullmq";
import { startAster } from "./helpers/aster.ts";
import { within } from "./helpers/ioredis_client.ts";
import { RespClient } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { keySlot } from "../src/hash/key_slot.ts";

const JOBS = 1000;
const WORKERS = 4;
const CONCURRENCY = 5;
/** Longest the whole run may take: a hang fails the test instead of stalling it. */
const RUN_TIMEOUT_MS = 60_000;

/** BullMQ's connection options for Aster at `port`: no endless retries. */
function _connection(port: number) {
  return {
    host: "127.0.0.1",
    port,
    // Workers must not give up on a blocking call (BullMQ requires null for them).
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => (times > 5 ? null : 100),
  };
}

async function _runQueue(port: number, check: () => Promise<void>): Promise<void> {
  const name = `jobs-${crypto.randomUUID().slice(0, 8)}`;
  const queue = new Queue(name, { connection: _connection(port), prefix: "{bull}" });
  const done = new Map<number, number>();
  const errors: string[] = [];
  let allDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => allDone = resolve);
  const workers: Worker[] = [];
  try {
    await within(queue.waitUntilReady(), 10_000, "queue ready");
    const added = await within(
      queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: "n", data: { i } }))),
      20_000,
      "addBulk",
    );
    assert.equal(added.length, JOBS);
    for (let w = 0; w < WORKERS; w++) {
      const worker = new Worker(name, (job) => {
        const i = (job.data as { i: number }).i;
        done.set(i, (done.get(i) ?? 0) + 1);
        return Promise.resolve(i * 2);
      }, { connection: _connection(port), prefix: "{bull}", concurrency: CONCURRENCY });
      worker.on("error", (err) => errors.push(`worker ${w}: ${err.message}`));
      worker.on("failed", (job, err) => errors.push(`job ${job?.id} failed: ${err.message}`));
      worker.on("completed", () => {
        if (done.size === JOBS) allDone();
      });
      workers.push(worker);
    }
    await within(finished, RUN_TIMEOUT_MS, `${JOBS} jobs (done ${done.size})`);
    assert.deepEqual(errors, []);
    const twice = [...done].filter(([, count]) => count !== 1);
    assert.deepEqual(twice, [], "every job ran exactly once");
    // BullMQ's own bookkeeping agrees: all completed, none waiting or failed.
    const counts = await within(
      queue.getJobCounts("completed", "failed", "waiting", "active", "delayed"),
      5000,
      "job counts",
    );
    assert.deepEqual(counts, { completed: JOBS, failed: 0, waiting: 0, active: 0, delayed: 0 });
    await check();
  } finally {
    await within(Promise.all(workers.map((worker) => worker.close())), 10_000, "workers close")
      .catch((err) => errors.push(String(err)));
    await within(queue.obliterate({ force: true }), 10_000, "obliterate").catch(() => {});
    await within(queue.close(), 5000, "queue close").catch(() => {});
  }
  assert.deepEqual(errors, []);
}

Deno.test({
  name: "BullMQ: 1,000 jobs, 4 workers of concurrency 5, each job once, in redis mode (3 shards)",
  // BullMQ keeps timers of its own a little past close().
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using a = await startRedis();
    await using b = await startRedis();
    await using c = await startRedis();
    await using aster = await startAster([{
      servers: [a, b, c].map((s, i) => `127.0.0.1:${s.port}:1 shard${i}`),
      hash_tag: "{}",
    }]);
    await _runQueue(aster.ports[0], async () => {
      // Every key of the queue lives on the {bull} tag's shard.
      const sizes = await Promise.all([a, b, c].map(async (server) => {
        await using direct = await RespClient.connect(server.port);
        return await direct.command("DBSIZE") as number;
      }));
      assert.equal(sizes.filter((size) => size > JOBS).length, 1, `${sizes}`);
      assert.equal(sizes.filter((size) => size === 0).length, 2, `${sizes}`);
    });
  },
});

Deno.test({
  name: "BullMQ: 1,000 jobs, 4 workers of concurrency 5, each job once, in redis_cluster mode",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using cluster = await startRedisCluster();
    await using aster = await startAster([{
      cache_type: "redis_cluster",
      servers: cluster.seeds(),
    }]);
    await _runQueue(aster.ports[0], async () => {
      // The jobs are on the {bull} slot's master.
      const owner = await cluster.ownerOf(keySlot(new TextEncoder().encode("{bull}")));
      await using direct = await RespClient.connect(owner.port);
      assert.ok((await direct.command("DBSIZE") as number) > JOBS);
    });
  },
});
