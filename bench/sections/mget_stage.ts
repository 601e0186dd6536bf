/**
 * The MGET stage of the `redis` and `io` sections: ten keys spread over three redis-servers
 * (4/3/3 on the ketama ring both proxies use), written through Aster, checked through each
 * proxy, then read back with one MGET per request.
 */
import { fnv1a64 } from "../../src/hash/fnv.ts";
import { KetamaRing } from "../../src/hash/ketama.ts";
import { type ServerProcess, startRedis } from "../../tests/helpers/servers.ts";
import {
  backendAlias,
  commandReply,
  redisProxyTargets,
  serverEntry,
  startProxies,
} from "../proxies.ts";
import { SHARDS } from "../settings.ts";
import type { Stage, Workload } from "../types.ts";

const encoder = new TextEncoder();
/** Keys of the MGET row (4/3/3 over the shards), populated before it runs. */
export const MGET_KEYS = spreadKeys(10, SHARDS);
/**
 * Requests factor of MGET runs: at about 50k MGET/s, runs of 100k requests (2 s) measured
 * the same proxy at 38k-60k req/s within one bench run.
 */
export const MGET_FACTOR = 2;

/**
 * The first `count` keys of `k1`, `k2`, ... that fill `shards` aliased backends evenly
 * (the ketama ring of both proxies, fnv1a_64), so an MGET of them fans out to every shard.
 */
function spreadKeys(count: number, shards: number): string[] {
  const ring = new KetamaRing(
    Array.from({ length: shards }, (_, i) => ({ name: backendAlias(i), weight: 1 })),
  );
  const quota = Array.from(
    { length: shards },
    (_, i) => Math.floor(count / shards) + (i < count % shards ? 1 : 0),
  );
  const keys: string[] = [];
  for (let i = 1; keys.length < count && i <= 100_000; i++) {
    const key = `k${i}`;
    const shard = ring.pick(fnv1a64(encoder.encode(key)));
    if (quota[shard] === 0) continue;
    quota[shard]--;
    keys.push(key);
  }
  if (keys.length < count) throw new Error(`no ${count} keys spread over ${shards} shards`);
  return keys;
}

/** Fails unless MGET through `target` returns every populated value. */
async function _checkMget(name: string, port: number): Promise<void> {
  const reply = await commandReply(port, ["MGET", ...MGET_KEYS]);
  const expected = MGET_KEYS.map((key) => `v-${key}`);
  if (JSON.stringify(reply) !== JSON.stringify(expected)) {
    throw new Error(`MGET through ${name} answered ${JSON.stringify(reply)}`);
  }
}

/**
 * `SHARDS` redis-servers behind nutcracker, Aster and Aster in Deno's sandbox (and the
 * baseline, unless `inIo`: the io section measures the socket floor), with `MGET_KEYS`
 * written through Aster and read back through each.
 */
export function mgetStage(opts: { inIo: boolean }): Stage {
  return {
    title: `MGET, ${SHARDS} redis-servers`,
    async start(stack, options) {
      const redis: ServerProcess[] = [];
      for (let i = 0; i < SHARDS; i++) redis.push(stack.use(await startRedis()));
      const servers = redis.map((server, i) => serverEntry(server.port, i));
      // The io section measures the socket floor: no baseline there.
      const baseline = opts.inIo ? null : options.baseline;
      const proxies = await startProxies(stack, { servers, baseline, sandboxed: true });
      const pairs = MGET_KEYS.flatMap((key) => [key, `v-${key}`]);
      const reply = await commandReply(proxies[0].port, ["MSET", ...pairs]);
      if (reply !== "OK") throw new Error(`MSET answered ${JSON.stringify(reply)}`);
      for (const { name, port } of proxies) await _checkMget(name, port);
      const targets = redisProxyTargets(proxies);
      const keysPerShard: number[] = [];
      for (const server of redis) {
        keysPerShard.push(Number(await commandReply(server.port, ["DBSIZE"])));
      }
      const label = `MGET x${MGET_KEYS.length}`;
      const mget: Workload = {
        pipeline: 1,
        requests: options.requests * MGET_FACTOR,
        tests: { command: ["MGET", ...MGET_KEYS], label },
      };
      return {
        targets,
        workloads: [mget],
        warmUp: { ...mget, requests: 10_000 },
        notes: [
          `${label}: ${SHARDS} redis-servers behind each proxy, keys per shard ` +
          `${keysPerShard.join("/")}; no direct target (one MGET spans shards).`,
        ],
      };
    },
  };
}
