/**
 * Backends for the `redis` mode side of the cluster comparison: redis-servers that run
 * with `cluster-enabled yes` like the Redis Cluster's masters, each the only master of its
 * own one-master cluster (it owns all 16384 slots, so it takes any key), with one replica.
 *
 * Why not plain redis-servers: with cluster mode on, redis-server does more per write
 * (per-slot key bookkeeping); over 2M SETs at pipeline 16 the cluster's masters used about
 * 1.25x the CPU of plain masters for the same load. Comparing `redis_cluster` mode against
 * `redis` mode over plain servers measured that difference of the backends as much as the
 * routing. With cluster-enabled masters on both sides, the two modes differ only in how
 * Aster routes.
 *
 * They stand in for plain servers only for single-key commands: a cluster-enabled
 * redis-server refuses a multi-key command whose keys span slots (CROSSSLOT), which an
 * MGET part over the ring would be. The cluster section runs GET and SET only.
 */
import { nodeCommand } from "../tests/helpers/redis_cluster.ts";
import { text } from "../tests/helpers/resp_client.ts";
import { freePort, type ServerProcess, startRedis } from "../tests/helpers/servers.ts";

/** Bound on each wait (a replica learning of its master, a master's state turning ok), ms. */
const WAIT_TIMEOUT_MS = 10_000;
const WAIT_POLL_MS = 50;

/** One master and its replica. */
export interface MasterWithReplica {
  master: ServerProcess;
  replica: ServerProcess;
}

/**
 * Starts `count` one-master clusters (a master owning every slot plus its replica) on
 * `stack`; resolves once each replica has been told to replicate its master (callers wait
 * for the replication link themselves).
 */
export async function startOneMasterClusters(
  stack: AsyncDisposableStack,
  count: number,
): Promise<MasterWithReplica[]> {
  const pairs: MasterWithReplica[] = [];
  for (let i = 0; i < count; i++) {
    const { node: master, busPort } = await _startClusterNode();
    stack.use(master);
    const replica = stack.use((await _startClusterNode()).node);
    await _expectOk(master.port, ["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    const meet = ["CLUSTER", "MEET", "127.0.0.1", `${master.port}`, `${busPort}`];
    await _expectOk(replica.port, meet);
    const masterId = String(await _command(master.port, ["CLUSTER", "MYID"]));
    await _waitUntilKnown(replica.port, masterId);
    await _expectOk(replica.port, ["CLUSTER", "REPLICATE", masterId]);
    pairs.push({ master, replica });
  }
  // A master that just took its slots answers CLUSTERDOWN for a while (Redis waits before
  // a fresh master turns its state to ok).
  for (const { master } of pairs) {
    await _waitFor(() => _clusterOk(master.port), `cluster state ok on ${master.port}`);
  }
  return pairs;
}

/** A cluster-enabled redis-server with its own bus port (port + 10000 may be taken). */
async function _startClusterNode(): Promise<{ node: ServerProcess; busPort: number }> {
  const port = await freePort();
  let busPort = await freePort();
  for (let i = 0; i < 20 && busPort === port; i++) busPort = await freePort();
  const node = await startRedis({
    port,
    args: [
      ...["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`],
      ...["--cluster-port", `${busPort}`, "--repl-diskless-sync-delay", "0"],
    ],
  });
  return { node, busPort };
}

/** Resolves once the node on `port` lists `nodeId` in CLUSTER NODES; throws after a bound. */
async function _waitUntilKnown(port: number, nodeId: string): Promise<void> {
  await _waitFor(
    async () => String(await _command(port, ["CLUSTER", "NODES"])).includes(nodeId),
    `node ${port} to learn of ${nodeId}`,
  );
}

async function _clusterOk(port: number): Promise<boolean> {
  return /^cluster_state:ok\r?$/m.test(String(await _command(port, ["CLUSTER", "INFO"])));
}

/** Polls `check` until it holds; throws after `WAIT_TIMEOUT_MS`. */
async function _waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const tries = Math.ceil(WAIT_TIMEOUT_MS / WAIT_POLL_MS);
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
  throw new Error(`waited ${WAIT_TIMEOUT_MS} ms for ${what}`);
}

async function _command(port: number, args: string[]): Promise<unknown> {
  return text(await nodeCommand(port, args));
}

async function _expectOk(port: number, args: string[]): Promise<void> {
  const reply = await _command(port, args);
  if (reply !== "OK") {
    throw new Error(`${args.join(" ")} on ${port} answered ${JSON.stringify(reply)}`);
  }
}
