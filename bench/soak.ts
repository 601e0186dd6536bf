/**
 * `deno task soak`: mixed traffic through Aster for a while (10 minutes by default), RSS
 * sampled as it runs; exits 1 when RSS after warm-up grows more than 10% or any request
 * fails. Not part of `deno task test` (too long); run it before a release.
 *
 *   deno task soak [--minutes 10] [--clients 50]
 */
import { parseArgs } from "node:util";
import { startAster } from "../tests/helpers/aster.ts";
import { RespClient, text } from "../tests/helpers/resp_client.ts";
import { startMemcached, startRedis } from "../tests/helpers/servers.ts";
import { rssKiB } from "../tests/helpers/process_stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    clients: { type: "string", default: "50" },
  },
});
const minutes = Number(values.minutes);
const clientCount = Number(values.clients);
if (!(minutes > 0) || !(clientCount > 0)) {
  console.error("usage: deno task soak [--minutes N] [--clients N]");
  Deno.exit(2);
}

/** Runs the soak; the servers it starts are stopped when it returns (before the exit). */
async function soak(): Promise<number> {
  await using shards = new AsyncDisposableStack();
  const redis = await Promise.all([0, 1, 2].map(() => startRedis()));
  for (const server of redis) shards.use(server);
  shards.use(await startMemcached());
  const aster = shards.use(
    await startAster([{
      servers: redis.map((server, i) => `127.0.0.1:${server.port}:1 r${i}`),
      thread: 2,
    }]),
  );
  const endAt = Date.now() + minutes * 60_000;
  let requests = 0;
  let failures = 0;
  const samples: number[] = [];
  const sampler = setInterval(async () => {
    try {
      samples.push(await rssKiB(aster.pid));
    } catch (err) {
      // A throw here would end the process before the servers are stopped.
      console.error(`RSS sample failed: ${err}`);
      return;
    }
    const elapsed = Math.round((Date.now() - (endAt - minutes * 60_000)) / 1000);
    console.log(
      `${elapsed}s: ${requests} requests, ${failures} failures, RSS ${samples.at(-1)} KiB`,
    );
  }, 10_000);

  /** One client: pipelines of SET/GET/MGET/DEL/INCR with values of varied sizes, reconnecting now and then. */
  async function client(id: number): Promise<void> {
    let conn = await RespClient.connect(aster.ports[0]);
    for (let round = 0; Date.now() < endAt; round++) {
      const size = [10, 1000, 100_000][round % 3];
      const key = `soak:${id}:${round % 100}`;
      const value = "v".repeat(size);
      const replies = await conn.pipeline([
        ["SET", key, value],
        ["GET", key],
        ["MGET", key, `soak:${id}:x`, `soak:${(id + 1) % clientCount}:${round % 100}`],
        ["INCR", `soak:${id}:n`],
        ["DEL", `soak:${id}:x`],
      ]);
      requests += 5;
      if (replies[0] !== "OK" || text(replies[1]) !== value) failures++;
      if (round % 500 === 499) {
        conn.close();
        conn = await RespClient.connect(aster.ports[0]);
      }
    }
    conn.close();
  }

  await Promise.all(Array.from({ length: clientCount }, (_, id) => client(id)));
  clearInterval(sampler);
  // Compare the end with the RSS once warm (after the first fifth of the run).
  const warm = samples[Math.floor(samples.length / 5)] ?? samples[0];
  const last = samples.at(-1) ?? warm;
  const growth = (last - warm) / warm;
  console.log(
    `soak: ${requests} requests, ${failures} failures; RSS warm ${warm} KiB, end ${last} KiB ` +
      `(${(growth * 100).toFixed(1)}%)`,
  );
  return failures === 0 && growth <= 0.1 ? 0 : 1;
}

// Deno.exit skips `await using`: exit only once soak() has stopped every server.
Deno.exit(await soak());
