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
import { RingRouting } from "../proxy/redis_routing.ts";
import type { ReplyFramer } from "../backend/node_conn.ts";
import type { RequestHandler, Session } from "../proxy/session.ts";
import { MemcacheTextFrontend, REPLY_KINDS } from "../proxy/memcache_text_frontend.ts";
import { MemcacheBinaryFrontend } from "../proxy/memcache_binary_frontend.ts";
import { MemcacheTextReplyFramer } from "../protocol/memcache/text_reply.ts";
import {
  BinaryOpcode,
  encodeBinaryRequest,
  MemcacheBinaryResponseFramer,
} from "../protocol/memcache/binary.ts";
import { RingRouter } from "../proxy/ring_router.ts";
import { logInfo } from "../log.ts";
import { ClusterMetrics, LatencyRecorder, type NodeSnapshot } from "../metrics/worker_metrics.ts";
import { Slowlog } from "../metrics/slowlog.ts";

/** Frames memcached text replies by the kind each request was sent with. */
class MemcacheTextFramer implements ReplyFramer {
  readonly #framer = new MemcacheTextReplyFramer({ maxValueBytes: 1024 * 1024 * 1024 });

  frame(buf: Uint8Array, start: number, end: number, kind: number): number {
    return this.#framer.frame(buf, start, end, REPLY_KINDS[kind]);
  }
}

/** How often timeouts are checked and the coarse clock moves, ms. */
const TICK_MS = 20;
const PING = encodeCommandText("PING");
const READONLY = encodeCommandText("READONLY");
const MEMCACHE_VERSION = new TextEncoder().encode("version\r\n");
const MEMCACHE_VERSION_REPLY = new TextEncoder().encode("VERSION ");
const MEMCACHE_BINARY_VERSION = encodeBinaryRequest({ opcode: BinaryOpcode.version });

/** A running data plane; close() stops it at once, drain() gracefully. */
export interface DataPlane {
  readonly listener: Listener;
  /** This cluster's counters in this worker. */
  readonly metrics: ClusterMetrics;
  close(): void;
  /** Stops accepting, lets clients get the replies they are owed (up to `shutdown_timeout`), stops. */
  drain(): Promise<void>;
}

/** Settings of the data plane that come from the command line rather than the cluster. */
export interface PlaneOptions {
  reusePort: boolean;
  /** IP that CLUSTER SLOTS/NODES advertise; defaults to the listen host. */
  advertiseIp?: string;
  /** This worker's index among the cluster's workers (for INFO). */
  workerIndex?: number;
}

/** Backends and request handling of one mode, and how to stop them. */
interface Backend {
  /** Each backend node's state and latency, for metrics. */
  nodes: () => NodeSnapshot[];
  newHandler: (session: Session) => RequestHandler;
  pool: NodePool;
  stop(): void;
  /** Settles once the backend can route (the first slot map fetch, found or not). */
  ready?: Promise<void>;
}

function _poolOptions(cluster: ClusterConfig, newFramer: () => ReplyFramer): PoolOptions {
  return {
    connectionsPerNode: cluster.nodeConnections,
    dialTimeout: cluster.dialTimeout,
    readTimeout: cluster.readTimeout,
    writeTimeout: cluster.writeTimeout,
    newFramer,
  };
}

/** How a ring mode's protocol talks to its servers: framing and the health ping. */
interface RingProtocol {
  newFramer: () => ReplyFramer;
  ping: Uint8Array;
  isHealthy: (reply: Uint8Array) => boolean;
}

const RESP_RING: RingProtocol = {
  newFramer: () => new RespReplyFramer(),
  ping: PING,
  isHealthy: (reply) => _sameBytes(reply, PONG_REPLY),
};

const MEMCACHE_TEXT_RING: RingProtocol = {
  newFramer: () => new MemcacheTextFramer(),
  ping: MEMCACHE_VERSION,
  isHealthy: (reply) => _startsWith(reply, MEMCACHE_VERSION_REPLY),
};

const MEMCACHE_BINARY_RING: RingProtocol = {
  newFramer: () => new MemcacheBinaryResponseFramer(),
  ping: MEMCACHE_BINARY_VERSION,
  isHealthy: (reply) => reply[6] === 0 && reply[7] === 0, // status ok
};

/** AUTH for every backend connection, when `backend_password` is set. */
function _backendAuth(cluster: ClusterConfig): Uint8Array[] {
  if (cluster.backendPassword === null) return [];
  return [
    cluster.backendUsername === null
      ? encodeCommandText("AUTH", cluster.backendPassword)
      : encodeCommandText("AUTH", cluster.backendUsername, cluster.backendPassword),
  ];
}

function _secret(text: string | null): Uint8Array | null {
  return text === null ? null : new TextEncoder().encode(text);
}

/** The ketama modes: servers on a twemproxy-compatible ring, with optional auto-eject. */
function _ring(
  cluster: ClusterConfig,
  protocol: RingProtocol,
): { router: RingRouter; pool: NodePool; stop(): void; nodes: () => NodeSnapshot[] } {
  const nodes = cluster.servers.map((server) => ({
    name: server.alias ?? server.addr,
    host: server.host,
    port: server.port,
  }));
  const pool = new NodePool(nodes, {
    ..._poolOptions(cluster, protocol.newFramer),
    handshake: protocol === RESP_RING ? _backendAuth(cluster) : [],
  });
  const router = new RingRouter(
    cluster.servers.map((server) => ({ name: ketamaName(server), weight: server.weight })),
    cluster.hashTag,
  );
  const health = cluster.pingFailLimit > 0
    ? new HealthChecker(nodes.map((_, node) => pool.connsOf(node)[0]), nodes.map((n) => n.name), {
      failLimit: cluster.pingFailLimit,
      intervalMs: cluster.pingInterval,
      ping: protocol.ping,
      isHealthy: protocol.isHealthy,
      onChange: (node, live) => router.setLive(node, live),
    })
    : null;
  const nodeSnapshots = () =>
    _nodeSnapshots(cluster.name, pool, (node) => router.isLive(node) ? 0 : 1);
  return { router, pool, stop: () => health?.stop(), nodes: nodeSnapshots };
}

/** The snapshot of every open node of a pool, latency summed over its connections. */
function _nodeSnapshots(
  cluster: string,
  pool: NodePool,
  ejected: (node: number) => number,
): NodeSnapshot[] {
  const out: NodeSnapshot[] = [];
  pool.nodes.forEach((info, node) => {
    const conns = pool.connsOf(node);
    if (conns.length === 0) return;
    const latency = new LatencyRecorder();
    for (const conn of conns) {
      latency.sum += conn.latency.sum;
      conn.latency.counts.forEach((count, i) => latency.counts[i] += count);
    }
    out.push({
      cluster,
      node: info.name,
      up: conns.some((conn) => conn.state === "up") ? 1 : 0,
      ejected: ejected(node),
      latency,
    });
  });
  return out;
}

/** `redis`: RESP clients over the ring. */
function _shardedRedis(cluster: ClusterConfig): Backend {
  const { router, pool, stop, nodes } = _ring(cluster, RESP_RING);
  const routing = new RingRouting(router, pool);
  const password = _secret(cluster.password);
  return {
    newHandler: (session) => new RedisFrontend(session, routing, password),
    pool,
    stop,
    nodes,
  };
}

/** `memcache` and `memcache_binary`: memcached clients over the ring. */
function _memcache(cluster: ClusterConfig, binary: boolean): Backend {
  const { router, pool, stop, nodes } = _ring(
    cluster,
    binary ? MEMCACHE_BINARY_RING : MEMCACHE_TEXT_RING,
  );
  const backend = { router, pool, maxValueBytes: cluster.maxValueSize };
  const newHandler = binary
    ? (session: Session) => new MemcacheBinaryFrontend(session, backend)
    : (session: Session) => new MemcacheTextFrontend(session, backend);
  return { newHandler, pool, stop, nodes };
}

/** `redis_cluster`: slots from the seeds' CLUSTER SLOTS, redirects followed. */
function _redisCluster(
  cluster: ClusterConfig,
  options: PlaneOptions,
  metrics: ClusterMetrics,
): Backend {
  const pool = new NodePool([], {
    ..._poolOptions(cluster, RESP_RING.newFramer),
    // Replicas serve reads only after READONLY; on a master it is harmless.
    handshake: [..._backendAuth(cluster), ...(cluster.readFromSlave ? [READONLY] : [])],
  });
  const topology = new ClusterTopology(pool, {
    seeds: cluster.servers.map((server) => server.addr),
    fetchIntervalS: cluster.fetch,
  });
  const ip = options.advertiseIp ?? _advertisedHost(cluster.listenHost);
  const routing = new ClusterRouting(
    { topology, pool, identity: { ip, port: cluster.listenPort } },
    { readFromReplicas: cluster.readFromSlave, metrics },
  );
  const password = _secret(cluster.password);
  return {
    newHandler: (session) => new RedisFrontend(session, routing, password),
    pool,
    stop: () => topology.close(),
    ready: topology.refresh(),
    nodes: () => {
      metrics.topologyRefreshes = topology.refreshes;
      return _nodeSnapshots(cluster.name, pool, () => 0);
    },
  };
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
  const metrics = new ClusterMetrics(cluster.name);
  metrics.slowlog = new Slowlog(cluster.slowlogSlowerThan, cluster.slowlogMaxLen);
  metrics.facts = {
    cacheType: cluster.cacheType,
    listenAddr: cluster.listenAddr,
    workerIndex: options.workerIndex ?? 0,
    workerCount: cluster.thread,
    startedAt: Date.now(),
  };
  let backend: Backend;
  switch (cluster.cacheType) {
    case "redis":
      backend = _shardedRedis(cluster);
      break;
    case "redis_cluster":
      backend = _redisCluster(cluster, options, metrics);
      break;
    case "memcache":
    case "memcache_binary":
      backend = _memcache(cluster, cluster.cacheType === "memcache_binary");
      break;
  }
  const { pool } = backend;
  metrics.nodeSource = backend.nodes;
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
      newHandler: backend.newHandler,
      // reusePort spreads clients evenly over the workers: each takes its share.
      maxClients: Math.ceil(cluster.maxClients / cluster.thread),
      idleTimeoutMs: cluster.clientIdleTimeout * 1000,
      outputLimits: {
        softLimit: cluster.clientOutputSoftLimit,
        hardLimit: cluster.clientOutputHardLimit,
      },
      metrics,
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
    metrics,
    close() {
      listener.close();
      stop();
    },
    async drain() {
      await listener.drain(cluster.shutdownTimeout);
      stop();
    },
  };
}

function _startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && _sameBytes(bytes.subarray(0, prefix.length), prefix);
}

function _sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
