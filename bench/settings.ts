/**
 * What the bench's sections share: the host, client count, pipeline depths, key space,
 * the target names every section uses, the GET/SET workloads and the proxy columns.
 */
import type { Workload } from "./types.ts";

/** Where every backend, proxy and load generator listens or connects. */
export const HOST = "127.0.0.1";
/** Concurrent clients of every load generator. */
export const CLIENTS = 50;
/** Pipeline depths of the GET/SET rows. */
export const PIPELINES = [1, 16] as const;
/** Pipelined runs send this many times `--requests`, so they last about as long. */
export const PIPELINED_FACTOR = 10;
/** redis-servers behind the proxies in the MGET row, masters of the cluster. */
export const SHARDS = 3;
/** Key space of the memcache and cluster loads (`key:0` .. `key:9999`; `-r` of redis-benchmark). */
export const KEYSPACE = 10_000;
/** Value bytes of the memcache load. */
export const MEMCACHE_VALUE_SIZE = 32;

/** Target name of Aster at the `--baseline` revision. */
export const BASELINE = "aster-base";
/** Its column, shown only when it ran. */
export const BASELINE_COLUMN = { target: BASELINE, label: BASELINE };
/**
 * Aster kept inside Deno's sandbox: `io = "deno"` (Deno's socket ops), started without
 * --allow-ffi as `deno task start:sandboxed` runs it. Reported beside Aster, no targets.
 */
export const SANDBOXED = "aster-deno";

/** GET/SET at each pipeline depth. */
export function getSetWorkloads(requests: number): Workload[] {
  return PIPELINES.map((pipeline) => ({
    pipeline,
    requests: pipeline === 1 ? requests : requests * PIPELINED_FACTOR,
    tests: ["get", "set"],
  }));
}

/** A short pipelined GET/SET run. */
export const WARM_UP: Workload = { pipeline: 16, requests: 50_000, tests: ["get", "set"] };

/** Columns and ratios of the sections that put both Asters beside nutcracker and direct. */
export const PROXY_COLUMNS = [
  { target: "direct", label: "direct" },
  { target: "nutcracker", label: "nutcracker" },
  { target: "aster", label: "aster" },
  { target: SANDBOXED, label: SANDBOXED },
  BASELINE_COLUMN,
];
/** Their ratio columns: [numerator target, denominator target]. */
export const PROXY_RATIOS: [string, string][] = [
  ["aster", "nutcracker"],
  [SANDBOXED, "nutcracker"],
  ["aster", "direct"],
  ["aster", SANDBOXED],
  ["aster", BASELINE],
];
