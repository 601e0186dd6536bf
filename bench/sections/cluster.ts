/**
 * The `cluster` section: `redis-benchmark -r 10000` GET and SET against a 3+3 Redis Cluster
 * direct (`--cluster`: the benchmark talks to every master itself), through Aster in
 * `redis_cluster` mode, and through Aster in `redis` mode over three cluster-enabled
 * redis-servers that each own every slot of a cluster of their own, each with one replica
 * like the cluster's masters (the same load and the same kind of backends, over a ring
 * instead of the slot table; `bench/one_master_clusters.ts`).
 */
import { type ClusterToml, startAster } from "../../tests/helpers/aster.ts";
import { startRedisCluster } from "../../tests/helpers/redis_cluster.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { startOneMasterClusters } from "../one_master_clusters.ts";
import { commandReply, serverEntry, startAsters } from "../proxies.ts";
import { rowLabel } from "../results.ts";
import {
  BASELINE,
  BASELINE_COLUMN,
  getSetWorkloads,
  KEYSPACE,
  PIPELINES,
  SHARDS,
  WARM_UP,
} from "../settings.ts";
import { ratioCheck, ratioOf } from "../targets.ts";
import type { Section, SectionRun, Stage, TargetCheck } from "../types.ts";

/**
 * Requests factor of the cluster section: redis-benchmark --cluster (threaded) times a
 * run in 250 ms ticks, so its runs must last a few seconds for a small error.
 */
const CLUSTER_FACTOR = 2;
/** Warm-up requests per target of the cluster section (GET and SET, pipeline 16). */
const CLUSTER_WARM_UP_REQUESTS = 500_000;

/** How long the replicas of the `redis`-mode side of the cluster section get to sync, ms. */
const REPLICA_SYNC_TIMEOUT_MS = 10_000;
/** Pause between replication probes, ms. */
const REPLICA_SYNC_POLL_MS = 100;

/** A field of an `INFO` reply, or "" when absent. */
function _infoField(info: unknown, name: string): string {
  if (typeof info !== "string") return "";
  return new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim() ?? "";
}

/** Why the master on `master` and its replica on `replica` are not in sync, or null. */
async function _replicationProblem(master: number, replica: number): Promise<string | null> {
  try {
    const masterInfo = await commandReply(master, ["INFO", "replication"]);
    const slaves = _infoField(masterInfo, "connected_slaves");
    if (slaves !== "1") return `master ${master}: connected_slaves:${slaves}`;
    const replicaInfo = await commandReply(replica, ["INFO", "replication"]);
    const link = _infoField(replicaInfo, "master_link_status");
    if (link !== "up") return `replica ${replica}: master_link_status:${link}`;
    return null;
  } catch (error) {
    return `${master}/${replica}: ${error instanceof Error ? error.message : error}`;
  }
}

/**
 * Resolves once every master of `pairs` reports `connected_slaves:1` and its replica
 * `master_link_status:up`; throws after `REPLICA_SYNC_TIMEOUT_MS`.
 */
async function _waitForReplicas(pairs: { master: number; replica: number }[]): Promise<void> {
  const deadline = Date.now() + REPLICA_SYNC_TIMEOUT_MS;
  const maxTries = Math.ceil(REPLICA_SYNC_TIMEOUT_MS / REPLICA_SYNC_POLL_MS) + 1;
  let problem: string | null = "not probed";
  for (let i = 0; i < maxTries && Date.now() < deadline; i++) {
    problem = null;
    for (const { master, replica } of pairs) {
      problem = await _replicationProblem(master, replica);
      if (problem !== null) break;
    }
    if (problem === null) return;
    await new Promise((resolve) => setTimeout(resolve, REPLICA_SYNC_POLL_MS));
  }
  throw new Error(
    `replicas not in sync within ${REPLICA_SYNC_TIMEOUT_MS} ms (${problem})`,
  );
}

/**
 * A 3+3 Redis Cluster direct (`redis-benchmark --cluster`) and behind Aster in
 * `redis_cluster` mode, and `SHARDS` one-master clusters (a cluster-enabled master owning
 * every slot, with one replica) behind Aster in `redis` mode.
 */
const clusterStage: Stage = {
  title: `GET/SET, redis cluster (${SHARDS} masters) and ${SHARDS} one-master clusters`,
  async start(stack, options) {
    const cluster = stack.use(await startRedisCluster());
    const onCluster: ClusterToml = {
      name: "bench-cluster",
      cache_type: "redis_cluster",
      servers: cluster.seeds(),
      thread: 1,
    };
    const onClusterAsters = await startAsters(stack, [onCluster], options.baseline);
    // Cluster-enabled masters with one replica each, as in the cluster: both sides pay
    // for replication and for cluster mode's bookkeeping, and differ only in routing.
    const ring = await startOneMasterClusters(stack, SHARDS);
    await _waitForReplicas(
      ring.map(({ master, replica }) => ({ master: master.port, replica: replica.port })),
    );
    const onRing: ClusterToml = {
      name: "bench-ring",
      cache_type: "redis",
      servers: ring.map(({ master }, i) => serverEntry(master.port, i)),
      thread: 1,
    };
    const asterRing = stack.use(await startAster([onRing]));
    const keyspace = KEYSPACE;
    const seed = (await cluster.masters())[0].port;
    return {
      targets: [
        redisBenchmarkTarget("direct", { port: seed, cluster: true, keyspace }),
        ...onClusterAsters.map(({ name, port, log, pid }) =>
          redisBenchmarkTarget(name, { port, keyspace, log, pid })
        ),
        redisBenchmarkTarget("aster-redis", {
          port: asterRing.ports[0],
          keyspace,
          log: asterRing.log,
          pid: asterRing.pid,
        }),
      ],
      workloads: getSetWorkloads(options.requests * CLUSTER_FACTOR),
      // Longer than elsewhere: the first rounds over fresh cluster nodes ran slower.
      warmUp: { ...WARM_UP, requests: CLUSTER_WARM_UP_REQUESTS },
      notes: [
        `redis-benchmark -r ${keyspace}: random keys over ${SHARDS} masters / ` +
        `${SHARDS} shards. "direct" is redis-benchmark --cluster --threads 1 talking to ` +
        `every master itself; "aster-redis" is Aster in redis mode over ${SHARDS} ` +
        `cluster-enabled redis-servers that each own every slot of a cluster of their own ` +
        `(bench/one_master_clusters.ts). Both sides run ${SHARDS} masters each with one ` +
        `replica. Both Asters run as deno task start runs them (io = "auto": raw sockets). ` +
        `Runs send ${CLUSTER_FACTOR}x the requests of the other sections.`,
      ],
    };
  },
};

/**
 * The cluster section's targets: slot routing within 5% of ring routing (issue 23; round 1
 * asked 0.9x), Aster's CPU per request in both modes (the steadiest figure) and direct as
 * info.
 */
function clusterChecks(run: SectionRun): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const pipeline of PIPELINES) {
    for (const test of ["GET", "SET"]) {
      const row = rowLabel(test, pipeline);
      const ring = ratioOf(run.results, row, {
        target: "aster",
        base: "aster-redis",
        field: "rps",
      });
      checks.push(
        ratioCheck(`cluster ${row} req/s, aster/aster-redis`, ring, { min: CLUSTER_MIN }),
      );
      const direct = ratioOf(run.results, row, {
        target: "aster",
        base: "direct",
        field: "rps",
      });
      checks.push(ratioCheck(`cluster ${row} req/s, aster/direct --cluster`, direct, {}));
    }
    const cpu = ratioOf(run.results, rowLabel("GET", pipeline), {
      target: "aster",
      base: "aster-redis",
      field: "targetCpuUs",
    });
    const what = `cluster GET+SET P${pipeline} proxy CPU per request, aster/aster-redis`;
    checks.push(ratioCheck(what, cpu, {}));
  }
  return checks;
}

/** redis_cluster mode's req/s against redis mode's on the same load, at least. */
const CLUSTER_MIN = 0.95;

/** The `cluster` section (slot routing against ring routing and redis-server direct). */
export const clusterSection: Section = {
  name: "cluster",
  title: "cluster: redis-benchmark, Redis Cluster of 3 masters + 3 replicas (aster: " +
    "redis_cluster mode; aster-redis: redis mode over 3 cluster-enabled masters, each " +
    "owning every slot of its own cluster, + 3 replicas)",
  columns: [
    { target: "direct", label: "direct" },
    { target: "aster", label: "aster" },
    { target: "aster-redis", label: "aster-redis" },
    BASELINE_COLUMN,
  ],
  ratios: [
    ["aster", "direct"],
    ["aster", "aster-redis"],
    ["aster", BASELINE],
  ],
  stages: [clusterStage],
  pinned: true,
  checks: clusterChecks,
};
