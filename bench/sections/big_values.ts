/**
 * The `bigvalues` section (issue 23, issue 17 point 6): large values through nutcracker and
 * Aster (`thread = 1`, as `deno task start` runs it), alternating, each against goal 1.0x:
 * - redis-benchmark `-d 102400` (100 KB values) GET and SET at pipeline 1 and 16, one
 *   redis-server;
 * - memcache get and set of 500 KB values (bench/memcache_load.ts), one memcached;
 * - a pipeline of 5 SETs of 16 MB and then an MGET of the 5 keys over 2 redis-servers
 *   (`bench/big_values.ts`: the MGET is split in two parts), as rounds per second.
 */
import { startMemcached, startRedis } from "../../tests/helpers/servers.ts";
import { bigValueRun, memcacheTarget, redisBenchmarkTarget } from "../load_tools.ts";
import { runMemcacheLoad } from "../memcache_load.ts";
import { type Endpoint, redisProxyTargets, serverEntry, startProxies } from "../proxies.ts";
import { rowLabel } from "../results.ts";
import { BASELINE, BASELINE_COLUMN } from "../settings.ts";
import { ratioCheck, ratioOf } from "../targets.ts";
import type { Results, Sample, Section, Stage, Target, TargetCheck, Workload } from "../types.ts";

const REDIS_VALUE = 102_400;
const MEMCACHE_VALUE = 500_000;
/** Memcache keys: 50 x 500 KB = 25 MB stored. */
const MEMCACHE_KEYS = 50;
const BIG_MB = 16;
/** Timed 16 MB rounds per run, after one warm-up round (bench/big_value_round.ts). */
const BIG_ROUNDS = 5;
/** Row labels of the 16 MB rounds (the pipeline column reads 1). */
const SET_16MB = "SET 5x16MB";
const MGET_16MB = "MGET 5x16MB";

/** `target` with its rows renamed "GET" -> "GET 100KB": the stages' rows share one table. */
function _labelled(target: Target, suffix: string): Target {
  return {
    ...target,
    run: async (workload, signal) => {
      const samples = await target.run(workload, signal);
      return new Map([...samples].map(([test, sample]) => [`${test} ${suffix}`, sample]));
    },
  };
}

/** Requests of each run: fewer than the small-value sections (each moves 100 KB-500 KB). */
function _requests(options: { requests: number }, per: number): number {
  return Math.max(1000, Math.round(options.requests / per));
}

const redisStage: Stage = {
  title: "redis-benchmark -d 102400, one redis-server",
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const proxies = await startProxies(stack, {
      servers: [serverEntry(redis.port, 0)],
      baseline: options.baseline,
    });
    const requests = _requests(options, 20);
    const workloads: Workload[] = [1, 16].map((pipeline) => ({
      pipeline,
      requests: pipeline === 1 ? requests : requests * 2,
      tests: ["get", "set"],
      valueSize: REDIS_VALUE,
    }));
    return {
      targets: [
        redisBenchmarkTarget("direct", { port: redis.port }),
        ...redisProxyTargets(proxies),
      ].map((target) => _labelled(target, "100KB")),
      workloads,
      warmUp: { ...workloads[1], requests: 2000 },
      notes: [`redis-benchmark -d ${REDIS_VALUE}: 50 clients, ${requests} requests at P1.`],
    };
  },
};

const memcacheStage: Stage = {
  title: "memcache 500 KB values, one memcached",
  async start(stack, options) {
    const memcached = stack.use(await startMemcached());
    const proxies = await startProxies(stack, {
      servers: [serverEntry(memcached.port, 0, "memcached")],
      memcache: true,
      baseline: options.baseline,
    });
    await runMemcacheLoad({
      port: memcached.port,
      op: "set",
      populate: true,
      requests: 1,
      connections: 1,
      warmupMs: 0,
      keys: MEMCACHE_KEYS,
      valueSize: MEMCACHE_VALUE,
    });
    const endpoints: Endpoint[] = [{ name: "direct", port: memcached.port }, ...proxies];
    const workload: Workload = {
      pipeline: 1,
      requests: _requests(options, 50),
      clients: 20,
      tests: ["get", "set"],
      valueSize: MEMCACHE_VALUE,
      keys: MEMCACHE_KEYS,
    };
    return {
      targets: endpoints.map(({ name, port, pid, log }) =>
        _labelled(memcacheTarget(name, { port, threads: 1, log, pid }), "mc 500KB")
      ),
      workloads: [workload],
      warmUp: { ...workload, requests: 500 },
      notes: [
        `memcache_load: ${MEMCACHE_VALUE}-byte values over ${MEMCACHE_KEYS} keys, ` +
        `${workload.requests} requests per run, every reply checked.`,
      ],
    };
  },
};

/** A target whose run is one big_value_round.ts round: its two rows in rounds per second. */
function _bigValueTarget(name: string, port: number, pid?: number): Target {
  return {
    name,
    pid,
    run: async (_workload, signal) => {
      const { set, mget } = await bigValueRun(port, { mb: BIG_MB, rounds: BIG_ROUNDS }, signal);
      const sample = (seconds: number): Sample => ({
        rps: 1 / seconds,
        p50Ms: null,
        p99Ms: null,
        cpu: null,
        targetCpuUs: null,
        elapsedMs: seconds * 1000,
        tickMs: null,
      });
      return new Map([[SET_16MB, sample(set)], [MGET_16MB, sample(mget)]]);
    },
  };
}

const sixteenMbStage: Stage = {
  title: "5 x 16 MB SET pipeline and MGET, two redis-servers",
  async start(stack, options) {
    const redis1 = stack.use(await startRedis());
    const redis2 = stack.use(await startRedis());
    const proxies = await startProxies(stack, {
      servers: [serverEntry(redis1.port, 0), serverEntry(redis2.port, 1)],
      baseline: options.baseline,
    });
    // Requests: the rounds a run makes, so CPU per request is per SET pipeline or MGET.
    const workload: Workload = { pipeline: 1, requests: BIG_ROUNDS + 1, tests: [] };
    return {
      targets: proxies.map(({ name, port, pid }) => _bigValueTarget(name, port, pid)),
      workloads: [workload],
      warmUp: workload,
      notes: [
        "5 x 16 MB: one client (bench/big_value_round.ts, on the load generators' core) sends " +
        "5 SETs of 16 MB in one pipeline, then MGET of the 5 keys (2 parts over the 2 " +
        `servers); a run is one warm-up round and ${BIG_ROUNDS} timed ones, their median shown; ` +
        "rows in rounds per second, so higher is better; proxy CPU per request is per SET " +
        "pipeline or MGET over the whole run (both rows share it).",
      ],
    };
  },
};

function _checks(results: Results): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const vs = (row: string, label: string) =>
    checks.push(
      ratioCheck(
        `${label}, aster/nutcracker`,
        ratioOf(results, row, { target: "aster", base: "nutcracker", field: "rps" }),
        { min: 1.0 },
      ),
    );
  for (const pipeline of [1, 16]) {
    for (const test of ["GET", "SET"]) {
      vs(rowLabel(`${test} 100KB`, pipeline), `redis 100 KB ${test} P${pipeline} req/s`);
    }
  }
  for (const test of ["GET", "SET"]) {
    vs(rowLabel(`${test} mc 500KB`, 1), `memcache 500 KB ${test} req/s`);
  }
  vs(rowLabel(SET_16MB, 1), "5 x 16 MB SET pipeline over 2 shards, rounds/s");
  vs(rowLabel(MGET_16MB, 1), "5 x 16 MB MGET over 2 shards, rounds/s");
  return checks;
}

/** The `bigvalues` section. */
export const bigValuesSection: Section = {
  name: "bigvalues",
  title: "bigvalues: 100 KB, 500 KB and 16 MB values",
  columns: [
    { target: "direct", label: "direct" },
    { target: "nutcracker", label: "nutcracker" },
    { target: "aster", label: "aster" },
    BASELINE_COLUMN,
  ],
  ratios: [["aster", "nutcracker"], ["aster", "direct"], ["aster", BASELINE]],
  stages: [redisStage, memcacheStage, sixteenMbStage],
  pinned: true,
  checks: (run) => _checks(run.results),
};
