/** Wires one cluster's data plane inside a worker: backends, routing, health, listener. */
import type { ClusterConfig } from "../config/schema.ts";
import { tickCoarseClock } from "../io/coarse_clock.ts";
import { HealthChecker } from "../backend/health.ts";
import { BackendVersionProbe } from "../backend/backend_version.ts";
import { NodePool, type PoolOptions } from "../backend/node_pool.ts";
import { ClusterTopology } from "../cluster/topology.ts";
import { ketamaName } from "../hash/ketama.ts";
import { encodeCommandText, PONG_REPLY } from "../protocol/resp/encoder.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { ClusterRouting } from "../proxy/cluster_routing.ts";
import { Listener } from "../proxy/listener.ts";
import { RedisFrontend, type RedisSettings } from "../proxy/redis_frontend.ts";
import { type RedisRouting, RingRouting } from "../proxy/redis_routing.ts";
import { bytesAre, startsWith } from "../protocol/bytes.ts";
import type { ReplyFramer } from "../backend/node_conn.ts";
import type { RequestHandler, Session } from "../proxy/session.ts";
import {
  type MemcacheBackend,
  MemcacheTextFrontend,
  MemcacheTextNodeFramer,
} from "../proxy/memcache_text_frontend.ts";
import { MemcacheBinaryFrontend } from "../proxy/memcache_binary_frontend.ts";
import {
  BinaryOpcode,
  encodeBinaryRequest,
  MemcacheBinaryResponseFramer,
} from "../protocol/memcache_binary/binary.ts";
import { RingRouter } from "../proxy/ring_router.ts";
import { logInfo, logWarn } from "../log.ts";
import { ClusterMetrics, LatencyRecorder, type NodeSnapshot } from "../metrics/worker_metrics.ts";
import { Slowlog } from "../metrics/slowlog.ts";
import type { RawFdTable, SharedState } from "./messages.ts";
import { type SocketApi, useSockets } from "../io/sockets.ts";
import { runtime } from "../runtime/runtime.ts";

let ffiSocketApi: Promise<SocketApi> | null = null;

/** This isolate's raw-socket API (`io = "ffi"`), loaded on first use: it opens libc. */
function _ffiSockets(fds: RawFdTable | undefined): Promise<SocketApi> {
  ffiSocketApi ??= runtime.loadRawSockets(fds);
  return ffiSocketApi;
}

/**
 * The raw-socket API when `io` asks for it and may have it: always for "ffi" (the config
 * loader already refused a process that cannot), for "auto" only on Linux with the FFI
 * permission and a libc that loads; null means Deno's socket ops.
 */
async function _rawSocketsFor(
  cluster: ClusterConfig,
  fds: RawFdTable | undefined,
): Promise<SocketApi | null> {
  if (cluster.io === "deno") return null;
  if (cluster.io === "ffi") return await _ffiSockets(fds);
  const missing = runtime.rawSocketsUnavailable();
  if (missing === "not linux") return null;
  if (missing === "no ffi permission") {
    logInfo(`cluster ${cluster.name}: io = "auto" uses Deno's socket ops (no --allow-ffi)`);
    return null;
  }
  try {
    return await _ffiSockets(fds);
  } catch (err) {
    ffiSocketApi = null;
    logWarn(
      `cluster ${cluster.name}: io = "auto" uses Deno's socket ops: raw sockets failed to ` +
        `load (${err instanceof Error ? err.message : err})`,
    );
    return null;
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
  /**
   * Applies a changed config of the same cluster (same listen address, mode and thread
   * count): new backends, timeouts, limits and password, without closing clients.
   */
  reconfigure(next: ClusterConfig): Promise<void>;
  /** Leader: refresh the slot map now, for a follower that saw it stale. */
  refresh(): void;
}

/** Settings of the data plane that come from the command line rather than the cluster. */
export interface PlaneOptions {
  reusePort: boolean;
  /** IP that CLUSTER SLOTS/NODES advertise; defaults to the listen host. */
  advertiseIp?: string;
  /** This worker's index among the cluster's workers (for INFO). */
  workerIndex?: number;
  /**
   * How this worker shares ejections and slot maps with the cluster's other workers.
   * Absent: it decides alone (a single worker, or tests).
   */
  sharing?: PlaneSharing;
  /** The supervisor's table of raw descriptors (closed by it if this worker dies). */
  fds?: RawFdTable;
}

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

/**
 * One generation of backends: a reload builds a new one, switches the sessions to it and
 * retires the old one once its requests in flight are answered.
 */
interface Backend {
  /** Each backend node's state and latency, for metrics. */
  nodes: () => NodeSnapshot[];
  /** What Redis sessions route with (Redis modes). */
  redis?: RedisSettings;
  /** What memcache sessions route with (memcache modes). */
  memcache?: MemcacheBackend;
  pool: NodePool;
  stop(): void;
  /** Settles once the backend can route (the first slot map fetch, found or not). */
  ready?: Promise<void>;
  /** Applies state the cluster's leader decided. */
  applyShared(state: SharedState): void;
  /** Refreshes the slot map now (the leader, when a follower asks). */
  refresh?(): void;
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
  isHealthy: (reply) => bytesAre(reply, 0, reply.length, PONG_REPLY),
};

const MEMCACHE_TEXT_RING: RingProtocol = {
  newFramer: () => new MemcacheTextNodeFramer(),
  ping: MEMCACHE_VERSION,
  isHealthy: (reply) => startsWith(reply, 0, reply.length, MEMCACHE_VERSION_REPLY),
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

/** What the Redis sessions of a cluster route with, and its AUTH and allowed commands. */
function _redisSettings(cluster: ClusterConfig, routing: RedisRouting): RedisSettings {
  const password = cluster.password === null ? null : new TextEncoder().encode(cluster.password);
  return { routing, password, allowed: new Set(cluster.allowCommands) };
}

/** The ketama modes: servers on a twemproxy-compatible ring, with optional auto-eject. */
function _ring(
  cluster: ClusterConfig,
  protocol: RingProtocol,
  context: { previous?: NodePool; sharing?: PlaneSharing },
): {
  router: RingRouter;
  pool: NodePool;
  stop(): void;
  nodes: () => NodeSnapshot[];
  applyShared(state: SharedState): void;
} {
  const nodes = cluster.servers.map((server) => ({
    name: server.alias ?? server.addr,
    host: server.host,
    port: server.port,
  }));
  const pool = new NodePool(nodes, {
    ..._poolOptions(cluster, protocol.newFramer),
    handshake: protocol === RESP_RING ? _backendAuth(cluster) : [],
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
      ping: protocol.ping,
      isHealthy: protocol.isHealthy,
      onChange: (node, live) => {
        router.setLive(node, live);
        sharing?.publish({ kind: "health", live: nodes.map((_, n) => router.isLive(n)) });
      },
    })
    : null;
  const nodeSnapshots = () =>
    _nodeSnapshots(cluster.name, pool, (node) => router.isLive(node) ? 0 : 1);
  const applyShared = (state: SharedState) => {
    if (state.kind !== "health" || state.live.length !== nodes.length) return;
    state.live.forEach((live, node) => router.setLive(node, live));
  };
  return { router, pool, stop: () => health?.stop(), nodes: nodeSnapshots, applyShared };
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
      pending: conns.reduce((sum, conn) => sum + conn.pendingCount, 0),
      latency,
    });
  });
  return out;
}

/** `redis`: RESP clients over the ring. */
function _shardedRedis(
  cluster: ClusterConfig,
  context: { previous?: NodePool; sharing?: PlaneSharing },
): Backend {
  const { router, pool, stop, nodes, applyShared } = _ring(cluster, RESP_RING, context);
  const routing = new RingRouting(router, pool);
  return {
    redis: _redisSettings(cluster, routing),
    pool,
    stop,
    nodes,
    applyShared,
  };
}

/** `memcache` and `memcache_binary`: memcached clients over the ring. */
function _memcache(
  cluster: ClusterConfig,
  context: { previous?: NodePool; sharing?: PlaneSharing },
): Backend {
  const binary = cluster.cacheType === "memcache_binary";
  const { router, pool, stop, nodes, applyShared } = _ring(
    cluster,
    binary ? MEMCACHE_BINARY_RING : MEMCACHE_TEXT_RING,
    context,
  );
  const memcache = {
    router,
    pool,
    maxValueBytes: cluster.maxValueSize,
    maxRetrievalLineBytes: cluster.maxMultigetLine,
  };
  return { memcache, pool, stop, nodes, applyShared };
}

/** `redis_cluster`: slots from the seeds' CLUSTER SLOTS, redirects followed. */
function _redisCluster(
  cluster: ClusterConfig,
  context: { options: PlaneOptions; metrics: ClusterMetrics; previous?: NodePool },
): Backend {
  const { options, metrics, previous } = context;
  // After a reload, the nodes already known keep their connections when they still fit.
  const known = previous?.nodes.filter((_, node) => previous.isOpen(node)) ?? [];
  const pool = new NodePool(known, {
    ..._poolOptions(cluster, RESP_RING.newFramer),
    // Replicas serve reads only after READONLY; on a master it is harmless.
    handshake: [..._backendAuth(cluster), ...(cluster.readFromSlave ? [READONLY] : [])],
  }, previous);
  const sharing = options.sharing;
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
  const ip = options.advertiseIp ?? _advertisedHost(cluster.listenHost);
  const routing = new ClusterRouting(
    { topology, pool, identity: { ip, port: cluster.listenPort } },
    { readFromReplicas: cluster.readFromSlave, metrics },
  );
  return {
    redis: _redisSettings(cluster, routing),
    pool,
    stop: () => topology.close(),
    ready: topology.refresh(),
    nodes: () => {
      metrics.topologyRefreshes = topology.refreshes;
      return _nodeSnapshots(cluster.name, pool, () => 0);
    },
    applyShared: (state) => {
      if (state.kind === "slots") topology.applyShared(state.map);
    },
    refresh: () => topology.requestRefresh(),
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
  // Before any backend connects or the listener binds; one cluster per worker isolate.
  const raw = await _rawSocketsFor(cluster, options.fds);
  if (raw !== null) useSockets(raw);
  const metrics = new ClusterMetrics(cluster.name);
  const build = (config: ClusterConfig, previous?: NodePool): Backend => {
    const sharing = options.sharing;
    switch (config.cacheType) {
      case "redis":
        return _shardedRedis(config, { previous, sharing });
      case "redis_cluster":
        return _redisCluster(config, { options, metrics, previous });
      case "memcache":
      case "memcache_binary":
        return _memcache(config, { previous, sharing });
    }
  };
  let current = cluster;
  let backend = build(cluster);
  // What sessions read per request: a reload swaps the fields, sessions stay connected.
  const redis = backend.redis;
  const memcache = backend.memcache;
  const newHandler = _handlerFactory(cluster.cacheType, { redis, memcache });
  const retiring = new Set<Backend>();
  // Redis modes report the backends' lowest version (INFO, HELLO): clients gate on it.
  const versions = redis ? new BackendVersionProbe(() => backend.pool, cluster.pingInterval) : null;
  if (versions !== null) {
    metrics.redisVersion = () => versions.current();
    versions.probeNow();
  }
  const ticker = setInterval(() => {
    const now = tickCoarseClock();
    backend.pool.checkTimeouts(now);
    for (const old of retiring) old.pool.checkTimeouts(now);
  }, TICK_MS);
  const applyLimits = (config: ClusterConfig) => {
    metrics.slowlog = new Slowlog(config.slowlogSlowerThan, config.slowlogMaxLen);
    metrics.facts = {
      cacheType: config.cacheType,
      listenAddr: config.listenAddr,
      workerIndex: options.workerIndex ?? 0,
      workerCount: config.thread,
      startedAt: metrics.facts.startedAt,
    };
    metrics.nodeSource = () => backend.nodes();
  };
  const listenerLimits = (config: ClusterConfig) => ({
    // reusePort spreads clients evenly over the workers: each takes its share.
    maxClients: Math.ceil(config.maxClients / config.thread),
    idleTimeoutMs: config.clientIdleTimeout * 1000,
    proxyProtocol: config.proxyProtocol,
    outputLimits: {
      softLimit: config.clientOutputSoftLimit,
      hardLimit: config.clientOutputHardLimit,
    },
  });
  const stop = () => {
    clearInterval(ticker);
    versions?.stop();
    for (const old of [backend, ...retiring]) {
      old.stop();
      old.pool.close();
    }
  };
  applyLimits(cluster);
  // A backend being built by a reload also needs the leader's decisions (its first map).
  let incoming: Backend | null = null;
  options.sharing?.subscribe((state) => {
    backend.applyShared(state);
    incoming?.applyShared(state);
  });
  await backend.ready;
  // redis_cluster: the nodes are known only now.
  versions?.probeNow();
  let listener: Listener;
  try {
    listener = new Listener({
      hostname: cluster.listenHost,
      port: cluster.listenPort,
      reusePort: options.reusePort,
      newHandler,
      metrics,
      ...listenerLimits(cluster),
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
      await listener.drain(current.shutdownTimeout);
      stop();
    },
    refresh() {
      backend.refresh?.();
    },
    async reconfigure(next: ClusterConfig) {
      const fresh = build(next, backend.pool);
      incoming = fresh;
      await fresh.ready;
      incoming = null;
      const old = backend;
      const oldReadTimeout = current.readTimeout;
      backend = fresh;
      current = next;
      // Sessions switch at their next request; requests in flight finish on the old pool.
      if (redis && fresh.redis) Object.assign(redis, fresh.redis);
      if (memcache && fresh.memcache) Object.assign(memcache, fresh.memcache);
      applyLimits(next);
      listener.update(listenerLimits(next));
      versions?.probeNow();
      retiring.add(old);
      old.stop();
      // Replies in flight are bounded by the old read_timeout.
      await _drainPool(old.pool, oldReadTimeout + 1000);
      old.pool.close();
      retiring.delete(old);
      logInfo(`cluster ${next.name}: reloaded (${next.servers.length} servers)`);
    },
  };
}

/** The session handler of a mode, reading the shared (reloadable) settings. */
function _handlerFactory(
  cacheType: ClusterConfig["cacheType"],
  shared: { redis?: RedisSettings; memcache?: MemcacheBackend },
): (session: Session) => RequestHandler {
  switch (cacheType) {
    case "redis":
    case "redis_cluster":
      return (session) => new RedisFrontend(session, shared.redis!);
    case "memcache":
      return (session) => new MemcacheTextFrontend(session, shared.memcache!);
    case "memcache_binary":
      return (session) => new MemcacheBinaryFrontend(session, shared.memcache!);
  }
}

/** Waits until no request is in flight on `pool`, at most `timeoutMs`. */
async function _drainPool(pool: NodePool, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (pool.pendingCount() > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
