/**
 * One generation of a cluster's backends, per mode: the connections (shared and pinned),
 * the routing (ring or slots), health checks or topology. A reload builds a new generation,
 * switches the sessions to it and retires the old one once its requests are answered.
 */
import type { ClusterConfig } from "../config/schema.ts";
import { HealthChecker } from "../backend/health.ts";
import { NodePool, type PoolOptions } from "../backend/node_pool.ts";
import { PinnedPool } from "../backend/pinned_pool.ts";
import { ClusterTopology } from "../cluster/topology.ts";
import { ketamaName } from "../hash/ketama.ts";
import type { BackendProtocol } from "../protocol/protocol.ts";
import { encodeCommandText } from "../protocol/resp/encoder.ts";
import { RESP_BACKEND } from "../protocol/resp/resp_protocol.ts";
import type { RedisSettings } from "../protocol/resp/resp_planner.ts";
import { MEMCACHE_TEXT_BACKEND } from "../protocol/memcache_text/text_protocol.ts";
import type { MemcacheSettings } from "../protocol/memcache_text/text_planner.ts";
import { MEMCACHE_BINARY_BACKEND } from "../protocol/memcache_binary/binary_protocol.ts";
import { ClusterRouting } from "../proxy/cluster_routing.ts";
import type { Upstream } from "../proxy/plan_runner.ts";
import { type RedisRouting, RingRouting } from "../proxy/routing.ts";
import { RingRouter } from "../proxy/ring_router.ts";
import { ClusterMetrics, LatencyRecorder, type NodeSnapshot } from "../metrics/worker_metrics.ts";
import type { SharedState } from "./messages.ts";
import type { TlsClientOptions } from "../io/sockets.ts";

const READONLY = encodeCommandText("READONLY");
/**
 * The Redis pools' lane 1: connections that say HELLO 3 after the handshake, for RESP3
 * clients (their replies are forwarded as the backend sends them, not translated).
 */
const RESP3_LANES = [[encodeCommandText("HELLO", "3")]];
/** The worker's link to the others of its cluster, through the supervisor. */
export interface PlaneSharing {
  /** True for the one worker that pings and fetches for all. */
  leader: boolean;
  /** Leader: send a decision to the other workers. */
  publish(state: SharedState): void;
  /** Follower: ask the leader for a slot map refresh. */
  askLeader(): void;
  /** Receives the leader's decisions (queued ones first) from now on. */
  subscribe(apply: (state: SharedState) => void): void;
}

/** One generation of backends. */
export interface Backend {
  /** Each backend node's state and latency, for metrics. */
  nodes: () => NodeSnapshot[];
  /** Where sessions send: the routing and the pinned connections. */
  upstream: Upstream;
  /** What Redis planners read (Redis modes). */
  redis?: RedisSettings;
  /** What memcache planners read (memcache modes). */
  memcache?: MemcacheSettings;
  pool: NodePool;
  pins: PinnedPool;
  /** Pub/Sub subscription connections: at most one per client per node, so capped by max_clients. */
  subscriptions: PinnedPool;
  stop(): void;
  /** Settles once the backend can route (the first slot map fetch, found or not). */
  ready?: Promise<void>;
  /** Applies state the cluster's leader decided. */
  applyShared(state: SharedState): void;
  /** Refreshes the slot map now (the leader, when a follower asks). */
  refresh?(): void;
}

/** What building a generation needs beyond the config. */
export interface BackendContext {
  /** The generation being replaced (a reload): its connections to nodes that stay move over. */
  previous?: NodePool;
  sharing?: PlaneSharing;
  metrics: ClusterMetrics;
  /** The address `redis_cluster` advertises in CLUSTER SLOTS/NODES. */
  identity: { ip: string; port: number };
}

/** Builds the backends of `config`'s mode. */
export function buildBackend(config: ClusterConfig, context: BackendContext): Backend {
  switch (config.cacheType) {
    case "redis":
      return _shardedRedis(config, context);
    case "redis_cluster":
      return _redisCluster(config, context);
    case "memcache":
    case "memcache_binary":
      return _memcache(config, context);
  }
}

function _poolOptions(cluster: ClusterConfig, wire: BackendProtocol): PoolOptions {
  return {
    connectionsPerNode: cluster.nodeConnections,
    dialTimeout: cluster.dialTimeout,
    readTimeout: cluster.readTimeout,
    writeTimeout: cluster.writeTimeout,
    newFramer: wire.newReplyFramer,
    handshakeRefusal: wire.handshakeRefusal,
    tls: _backendTls(cluster),
  };
}

/** How backend connections use TLS (`backend_tls`), null for plain TCP. */
function _backendTls(cluster: ClusterConfig): TlsClientOptions | null {
  const pem = cluster.backendTlsPem;
  if (!cluster.backendTls || pem === null) return null;
  return { ca: pem.ca, cert: pem.cert, key: pem.key, serverName: cluster.backendTlsServerName };
}

/** AUTH for every backend connection, when `backend_password` is set. */
function _backendAuth(cluster: ClusterConfig): Uint8Array[] {
  if (cluster.backendPassword === null) return [];
  return [
    cluster.backendUsername === null
      ? encodeCommandText("AUTH", cluster.backendPassword)
      : encodeCommandText("AUTH", cluster.backendUsername, cluster.backendPassword),
  ];
}

/** SELECT of `database` for every backend connection (shared, pinned, health), when not 0. */
function _select(cluster: ClusterConfig): Uint8Array[] {
  return cluster.database === 0 ? [] : [encodeCommandText("SELECT", String(cluster.database))];
}

/** What the Redis sessions of a cluster route with, and its AUTH and allowed commands. */
function _redisSettings(cluster: ClusterConfig, routing: RedisRouting): RedisSettings {
  const password = cluster.password === null ? null : new TextEncoder().encode(cluster.password);
  return { routing, password, allowed: new Set(cluster.allowCommands), database: cluster.database };
}

/** A ring mode's generation, before the mode adds its settings. */
type RingParts = Omit<Backend, "redis" | "memcache" | "ready" | "refresh">;

/** The ketama modes: servers on a twemproxy-compatible ring, with optional auto-eject. */
function _ring(cluster: ClusterConfig, wire: BackendProtocol, context: BackendContext): RingParts {
  const nodes = cluster.servers.map((server) => ({
    name: server.alias ?? server.addr,
    host: server.host,
    port: server.port,
  }));
  const pool = new NodePool(nodes, {
    ..._poolOptions(cluster, wire),
    handshake: wire === RESP_BACKEND ? [..._backendAuth(cluster), ..._select(cluster)] : [],
    laneHandshakes: wire === RESP_BACKEND ? RESP3_LANES : [],
  }, context.previous);
  const router = new RingRouter(
    cluster.servers.map((server) => ({ name: ketamaName(server), weight: server.weight })),
    cluster.hashTag,
    { hash: cluster.hash, distribution: cluster.distribution },
  );
  const sharing = context.sharing;
  // One worker pings for the whole cluster; the others apply its ejections.
  const pings = cluster.pingFailLimit > 0 && (sharing === undefined || sharing.leader);
  const health = pings
    ? new HealthChecker(nodes.map((_, node) => pool.connsOf(node)[0]), nodes.map((n) => n.name), {
      failLimit: cluster.pingFailLimit,
      intervalMs: cluster.pingInterval,
      ping: wire.ping,
      isHealthy: wire.isHealthy,
      onChange: (node, live) => {
        router.setLive(node, live);
        sharing?.publish({ kind: "health", live: nodes.map((_, n) => router.isLive(n)) });
      },
    })
    : null;
  const pins = new PinnedPool(pool, { capPerNode: cluster.blockingConnections });
  const subscriptions = _subscriptionPool(cluster, pool);
  return {
    upstream: { routing: new RingRouting(router, pool), pins, subscriptions },
    pool,
    pins,
    subscriptions,
    stop: () => health?.stop(),
    nodes: () => _nodeSnapshots(cluster.name, pool, pins, (node) => router.isLive(node) ? 0 : 1),
    applyShared: (state: SharedState) => {
      if (state.kind !== "health" || state.live.length !== nodes.length) return;
      state.live.forEach((live, node) => router.setLive(node, live));
    },
  };
}

/**
 * Subscription connections: one per subscribed client per node it needs, so never more than
 * max_clients per node (which bounds the cluster's clients over its workers, whichever worker
 * the clients reach).
 */
function _subscriptionPool(cluster: ClusterConfig, pool: NodePool): PinnedPool {
  return new PinnedPool(pool, { capPerNode: cluster.maxClients });
}

/** The snapshot of every open node of a pool, latency summed over its connections. */
function _nodeSnapshots(
  cluster: string,
  pool: NodePool,
  pins: PinnedPool,
  ejected: (node: number) => number,
): NodeSnapshot[] {
  const out: NodeSnapshot[] = [];
  pool.nodes.forEach((info, node) => {
    const conns = pool.allConnsOf(node);
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
      pending: conns.reduce((sum, conn) => sum + conn.pendingCount, 0),
      pinned: pins.inUseCount(node),
      latency,
    });
  });
  return out;
}

/** `redis`: RESP clients over the ring. */
function _shardedRedis(cluster: ClusterConfig, context: BackendContext): Backend {
  const ring = _ring(cluster, RESP_BACKEND, context);
  return { ...ring, redis: _redisSettings(cluster, ring.upstream.routing as RingRouting) };
}

/** `memcache` and `memcache_binary`: memcached clients over the ring. */
function _memcache(cluster: ClusterConfig, context: BackendContext): Backend {
  const binary = cluster.cacheType === "memcache_binary";
  const ring = _ring(cluster, binary ? MEMCACHE_BINARY_BACKEND : MEMCACHE_TEXT_BACKEND, context);
  const memcache: MemcacheSettings = {
    routing: ring.upstream.routing,
    maxValueBytes: cluster.maxValueSize,
    maxRetrievalLineBytes: cluster.maxMultigetLine,
  };
  return { ...ring, memcache };
}

/** `redis_cluster`: slots from the seeds' CLUSTER SLOTS, redirects followed. */
function _redisCluster(cluster: ClusterConfig, context: BackendContext): Backend {
  const { metrics, previous, sharing } = context;
  // After a reload, the nodes already known keep their connections when they still fit.
  const known = previous?.nodes.filter((_, node) => previous.isOpen(node)) ?? [];
  const pool = new NodePool(known, {
    ..._poolOptions(cluster, RESP_BACKEND),
    // Replicas serve reads only after READONLY; on a master it is harmless.
    handshake: [..._backendAuth(cluster), ...(cluster.readFromSlave ? [READONLY] : [])],
    laneHandshakes: RESP3_LANES,
  }, previous);
  const topology = new ClusterTopology(pool, {
    seeds: cluster.servers.map((server) => server.addr),
    fetchIntervalS: cluster.fetch,
    retireAfterMs: cluster.readTimeout + 1000,
    wantReplicas: cluster.readFromSlave,
    sharing: sharing && {
      leader: sharing.leader,
      publish: (map) => sharing.publish({ kind: "slots", map }),
      askLeader: () => sharing.askLeader(),
    },
  });
  const routing = new ClusterRouting(
    { topology, pool, identity: context.identity },
    { readFromReplicas: cluster.readFromSlave, metrics },
  );
  const pins = new PinnedPool(pool, { capPerNode: cluster.blockingConnections });
  const subscriptions = _subscriptionPool(cluster, pool);
  return {
    upstream: { routing, pins, subscriptions },
    redis: _redisSettings(cluster, routing),
    pool,
    pins,
    subscriptions,
    stop: () => topology.close(),
    ready: topology.refresh(),
    nodes: () => {
      metrics.topologyRefreshes = topology.refreshes;
      return _nodeSnapshots(cluster.name, pool, pins, () => 0);
    },
    applyShared: (state) => {
      if (state.kind === "slots") topology.applyShared(state.map);
    },
    refresh: () => topology.requestRefresh(),
  };
}
