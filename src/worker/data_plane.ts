/** Wires one cluster's data plane inside a worker: backends, routing, health, listener. */
import type { ClusterConfig } from "../config/schema.ts";
import { tickCoarseClock } from "../backend/coarse_clock.ts";
import { HealthChecker } from "../backend/health.ts";
import { NodePool, type PoolOptions } from "../backend/node_pool.ts";
import { ClusterTopology } from "../cluster/topology.ts";
import { ketamaName } from "../hash/ketama.ts";
import { encodeCommandText, PONG_REPLY } from "../protocol/resp/encoder.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { ClusterRouting } from "../proxy/cluster_routing.ts";
import { Listener } from "../proxy/listener.ts";
import { RedisFrontend } from "../proxy/redis_frontend.ts";
import { type RedisRouting, RingRouting } from "../proxy/redis_routing.ts";
import { RingRouter } from "../proxy/ring_router.ts";
import { logInfo } from "../log.ts";

/** How often timeouts are checked and the coarse clock moves, ms. */
const TICK_MS = 20;
const PING = encodeCommandText("PING");
const READONLY = encodeCommandText("READONLY");

/** A running data plane; close() stops it. */
export interface DataPlane {
  readonly listener: Listener;
  close(): void;
}

/** Settings of the data plane that come from the command line rather than the cluster. */
export interface PlaneOptions {
  reusePort: boolean;
  /** IP that CLUSTER SLOTS/NODES advertise; defaults to the listen host. */
  advertiseIp?: string;
}

/** Backends and routing of one mode, and how to stop them. */
interface Backend {
  routing: RedisRouting;
  pool: NodePool;
  stop(): void;
  /** Settles once the backend can route (the first slot map fetch, found or not). */
  ready?: Promise<void>;
}

function _poolOptions(cluster: ClusterConfig): PoolOptions {
  return {
    connectionsPerNode: cluster.nodeConnections,
    dialTimeout: cluster.dialTimeout,
    readTimeout: cluster.readTimeout,
    writeTimeout: cluster.writeTimeout,
    newFramer: () => new RespReplyFramer(),
  };
}

/** `redis`: a ketama ring over the servers, with optional auto-eject. */
function _shardedRedis(cluster: ClusterConfig): Backend {
  const nodes = cluster.servers.map((server) => ({
    name: server.alias ?? server.addr,
    host: server.host,
    port: server.port,
  }));
  const pool = new NodePool(nodes, _poolOptions(cluster));
  const router = new RingRouter(
    cluster.servers.map((server) => ({ name: ketamaName(server), weight: server.weight })),
    cluster.hashTag,
  );
  const health = cluster.pingFailLimit > 0
    ? new HealthChecker(nodes.map((_, node) => pool.connsOf(node)[0]), nodes.map((n) => n.name), {
      failLimit: cluster.pingFailLimit,
      intervalMs: cluster.pingInterval,
      ping: PING,
      isHealthy: (reply) => _sameBytes(reply, PONG_REPLY),
      onChange: (node, live) => router.setLive(node, live),
    })
    : null;
  return { routing: new RingRouting(router, pool), pool, stop: () => health?.stop() };
}

/** `redis_cluster`: slots from the seeds' CLUSTER SLOTS, redirects followed. */
function _redisCluster(cluster: ClusterConfig, options: PlaneOptions): Backend {
  const pool = new NodePool([], {
    ..._poolOptions(cluster),
    // Replicas serve reads only after READONLY; on a master it is harmless.
    handshake: cluster.readFromSlave ? [READONLY] : undefined,
  });
  const topology = new ClusterTopology(pool, {
    seeds: cluster.servers.map((server) => server.addr),
    fetchIntervalS: cluster.fetch,
  });
  const ip = options.advertiseIp ?? _advertisedHost(cluster.listenHost);
  const routing = new ClusterRouting(
    { topology, pool, identity: { ip, port: cluster.listenPort } },
    { readFromReplicas: cluster.readFromSlave },
  );
  return { routing, pool, stop: () => topology.close(), ready: topology.refresh() };
}

function _advertisedHost(listenHost: string): string {
  return listenHost === "0.0.0.0" || listenHost === "::" ? "127.0.0.1" : listenHost;
}

/**
 * Starts serving `cluster` in this worker, once its backend can route (a cluster's first
 * slot map fetch has answered or failed). Rejects when the listen address is unusable.
 */
export async function startDataPlane(
  cluster: ClusterConfig,
  options: PlaneOptions,
): Promise<DataPlane> {
  let backend: Backend;
  switch (cluster.cacheType) {
    case "redis":
      backend = _shardedRedis(cluster);
      break;
    case "redis_cluster":
      backend = _redisCluster(cluster, options);
      break;
    default:
      throw new Error(`cache_type ${cluster.cacheType} is not supported yet`);
  }
  const { routing, pool } = backend;
  const ticker = setInterval(() => pool.checkTimeouts(tickCoarseClock()), TICK_MS);
  const stop = () => {
    clearInterval(ticker);
    backend.stop();
    pool.close();
  };
  await backend.ready;
  let listener: Listener;
  try {
    listener = new Listener({
      hostname: cluster.listenHost,
      port: cluster.listenPort,
      reusePort: options.reusePort,
      newHandler: (session) => new RedisFrontend(session, routing),
    });
  } catch (err) {
    stop();
    throw err;
  }
  listener.serve();
  logInfo(
    `cluster ${cluster.name}: ${cluster.cacheType} on ${cluster.listenAddr}, ${cluster.servers.length} servers`,
  );
  return {
    listener,
    close() {
      listener.close();
      stop();
    },
  };
}

function _sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
