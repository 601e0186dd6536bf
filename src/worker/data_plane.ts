/**
 * Wires one cluster's data plane inside a worker, in named steps: the socket API, the
 * backends (src/worker/backends.ts), the mode's protocol, the clock and timeouts ticker,
 * the listener; then reloads swap the backends under the connected sessions.
 */
import type { ClientCells } from "./messages.ts";
import { ClientQuota } from "../proxy/client_quota.ts";
import type { ClusterConfig } from "../config/schema.ts";
import { tickCoarseClock } from "../io/coarse_clock.ts";
import { trimBufferPool } from "../io/buffer_pool.ts";
import { runtime } from "../runtime/runtime.ts";
import { BurstRelease } from "./burst_release.ts";
import { BackendVersionProbe } from "../backend/backend_version.ts";
import type { NodePool } from "../backend/node_pool.ts";
import { RespProtocol } from "../protocol/resp/resp_protocol.ts";
import { MemcacheTextProtocol } from "../protocol/memcache_text/text_protocol.ts";
import { MemcacheBinaryProtocol } from "../protocol/memcache_binary/binary_protocol.ts";
import { Listener } from "../proxy/listener.ts";
import type { SessionMode } from "../proxy/session.ts";
import { logInfo } from "../log.ts";
import { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { Slowlog } from "../metrics/slowlog.ts";
import { type TlsServerCredentials, useSockets } from "../io/sockets.ts";
import type { RawFdTable } from "./messages.ts";
import { type Backend, type BackendContext, buildBackend, type PlaneSharing } from "./backends.ts";
import { rawSocketsFor } from "./socket_choice.ts";

export type { PlaneSharing } from "./backends.ts";

/** How often timeouts are checked and the coarse clock moves, ms. */
const TICK_MS = 20;

/** A running data plane; close() stops it at once, drain() gracefully. */
export interface DataPlane {
  readonly listener: Listener;
  /** This cluster's counters in this worker. */
  readonly metrics: ClusterMetrics;
  close(): void;
  /**
   * Stops accepting (then calls `stoppedAccepting`: the port is free), lets clients get the
   * replies they are owed (up to `shutdown_timeout`), stops.
   */
  drain(stoppedAccepting?: () => void): Promise<void>;
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
  /**
   * The cluster's clients per worker, shared by its workers, and this worker's cell
   * (max_clients over all of them); absent: this worker takes max_clients / thread.
   */
  clientQuota?: ClientCells;
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
  const raw = await rawSocketsFor(cluster, options.fds);
  if (raw !== null) useSockets(raw);
  const plane = new PlaneState(cluster, options);
  await plane.start();
  return plane;
}

/** A data plane's moving parts, one method per step of its life. */
class PlaneState implements DataPlane {
  readonly metrics: ClusterMetrics;
  readonly #options: PlaneOptions;
  #config: ClusterConfig;
  #backend: Backend;
  /** Generations replaced by a reload, until their requests in flight are answered. */
  readonly #retiring = new Set<Backend>();
  /** A generation being built by a reload: it also needs the leader's decisions. */
  #incoming: Backend | null = null;
  /** What sessions read per request: a reload swaps the fields, sessions stay connected. */
  readonly #mode: SessionMode;
  /** The settings the mode's planners read (RedisSettings or MemcacheSettings), updated in place. */
  readonly #settings: object;
  readonly #versions: BackendVersionProbe | null;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #listener: Listener | null = null;

  constructor(cluster: ClusterConfig, options: PlaneOptions) {
    this.#config = cluster;
    this.#options = options;
    this.metrics = new ClusterMetrics(cluster.name);
    this.#backend = this.#build(cluster);
    const { mode, settings } = _sessionMode(cluster.cacheType, this.#backend);
    this.#mode = mode;
    this.#settings = settings;
    this.#versions = this.#probeVersions();
  }

  get listener(): Listener {
    return this.#listener!;
  }

  /** Ticks, follows the leader, waits for the backend to route, then listens. */
  async start(): Promise<void> {
    this.#startTicker();
    this.#applyLimits(this.#config);
    this.#followLeader();
    await this.#backend.ready;
    // redis_cluster: the nodes are known only now.
    this.#versions?.probeNow();
    await this.#listen();
    const cluster = this.#config;
    logInfo(
      `cluster ${cluster.name}: ${cluster.cacheType} on ${cluster.listenAddr}, ${cluster.servers.length} servers`,
    );
  }

  close(): void {
    this.#listener?.close();
    this.#stop();
  }

  /** Stops accepting (then `stoppedAccepting`), finishes the requests in flight, stops. */
  async drain(stoppedAccepting: () => void = () => {}): Promise<void> {
    if (this.#listener === null) stoppedAccepting();
    else await this.#listener.drain(this.#config.shutdownTimeout, stoppedAccepting);
    this.#stop();
  }

  refresh(): void {
    this.#backend.refresh?.();
  }

  async reconfigure(next: ClusterConfig): Promise<void> {
    const fresh = this.#build(next, this.#backend.pool);
    this.#incoming = fresh;
    await fresh.ready;
    this.#incoming = null;
    const old = this.#backend;
    const oldReadTimeout = this.#config.readTimeout;
    this.#backend = fresh;
    this.#config = next;
    this.#switchSessions(fresh);
    this.#applyLimits(next);
    this.#listener?.update(_listenerLimits(next, this.#options.clientQuota !== undefined));
    const tls = _frontTls(next);
    if (tls !== null) this.#listener?.setTlsCredentials(tls);
    this.#versions?.probeNow();
    await this.#retire(old, oldReadTimeout);
    logInfo(`cluster ${next.name}: reloaded (${next.servers.length} servers)`);
  }

  #build(config: ClusterConfig, previous?: NodePool): Backend {
    const context: BackendContext = {
      previous,
      sharing: this.#options.sharing,
      metrics: this.metrics,
      identity: {
        ip: this.#options.advertiseIp ?? _advertisedHost(config.listenHost),
        port: config.listenPort,
      },
    };
    return buildBackend(config, context);
  }

  /** Redis modes report the backends' lowest version (INFO, HELLO): clients gate on it. */
  #probeVersions(): BackendVersionProbe | null {
    if (this.#backend.redis === undefined) return null;
    const versions = new BackendVersionProbe(() => this.#backend.pool, this.#config.pingInterval);
    this.metrics.redisVersion = () => versions.current();
    versions.probeNow();
    return versions;
  }

  /** Moves the coarse clock and fails late requests, on every generation still in use. */
  #startTicker(): void {
    const burst = new BurstRelease();
    this.#ticker = setInterval(() => {
      const now = tickCoarseClock();
      trimBufferPool(now);
      if (burst.observe(this.metrics.clientsCurrent, now)) {
        runtime.releaseMemory();
        logInfo(
          `cluster ${this.#config.name}: a burst of clients left, memory given back ` +
            `(${Math.round(performance.now() - now)} ms)`,
        );
      }
      for (const backend of [this.#backend, ...this.#retiring]) {
        backend.pool.checkTimeouts(now);
        backend.pins.checkTimeouts(now);
        backend.subscriptions.checkTimeouts(now);
      }
    }, TICK_MS);
  }

  /** The leader's decisions (ejections, slot maps) reach the current and incoming backends. */
  #followLeader(): void {
    this.#options.sharing?.subscribe((state) => {
      this.#backend.applyShared(state);
      this.#incoming?.applyShared(state);
    });
  }

  #applyLimits(config: ClusterConfig): void {
    const metrics = this.metrics;
    metrics.slowlog = new Slowlog(config.slowlogSlowerThan, config.slowlogMaxLen);
    metrics.facts = {
      cacheType: config.cacheType,
      listenAddr: config.listenAddr,
      workerIndex: this.#options.workerIndex ?? 0,
      workerCount: config.thread,
      startedAt: metrics.facts.startedAt,
    };
    metrics.nodeSource = () => this.#backend.nodes();
  }

  async #listen(): Promise<void> {
    const cluster = this.#config;
    const tls = _frontTls(cluster);
    let opened: Listener | null = null;
    try {
      opened = new Listener({
        hostname: cluster.listenHost,
        port: cluster.listenPort,
        reusePort: this.#options.reusePort,
        mode: this.#mode,
        metrics: this.metrics,
        ..._listenerLimits(cluster, this.#options.clientQuota !== undefined),
        quota: this.#options.clientQuota === undefined
          ? undefined
          : new ClientQuota(this.#options.clientQuota.counts, this.#options.clientQuota.cell),
        // With TLS and no tls_listen_addr, listen_addr is the TLS listener.
        plain: tls === null || cluster.tlsListenHost !== null,
      });
      if (tls !== null) {
        const hostname = cluster.tlsListenHost ?? cluster.listenHost;
        await opened.listenTls(
          { hostname, port: cluster.tlsListenPort ?? cluster.listenPort },
          tls,
        );
      }
    } catch (err) {
      opened?.close();
      this.#stop();
      throw err;
    }
    this.#listener = opened;
    opened.serve();
  }

  /** Sessions switch at their next request; requests in flight finish on the old generation. */
  #switchSessions(fresh: Backend): void {
    const mode = this.#mode;
    Object.assign(mode.upstream, fresh.upstream);
    Object.assign(this.#settings, fresh.redis ?? fresh.memcache);
  }

  /** Stops an old generation once its replies in flight are in (bounded by its read_timeout). */
  async #retire(old: Backend, readTimeout: number): Promise<void> {
    this.#retiring.add(old);
    old.stop();
    await _drainPool(old.pool, readTimeout + 1000);
    old.pool.close();
    old.pins.close();
    old.subscriptions.close();
    this.#retiring.delete(old);
  }

  #stop(): void {
    clearInterval(this.#ticker);
    this.#versions?.stop();
    for (const old of [this.#backend, ...this.#retiring]) {
      old.stop();
      old.pool.close();
      old.pins.close();
      old.subscriptions.close();
    }
  }
}

/**
 * The mode's protocol over a copy of the backend's settings, and the sessions' upstream:
 * copies, so that a reload assigns the next generation's fields into them.
 */
function _sessionMode(
  cacheType: ClusterConfig["cacheType"],
  backend: Backend,
): { mode: SessionMode; settings: object } {
  const upstream = { ...backend.upstream };
  let mode: SessionMode;
  let settings: object;
  switch (cacheType) {
    case "redis":
    case "redis_cluster": {
      const redis = { ...backend.redis! };
      mode = { protocol: new RespProtocol(redis), upstream };
      settings = redis;
      break;
    }
    case "memcache":
    case "memcache_binary": {
      const memcache = { ...backend.memcache! };
      const protocol = cacheType === "memcache"
        ? new MemcacheTextProtocol(memcache)
        : new MemcacheBinaryProtocol(memcache);
      mode = { protocol, upstream };
      settings = memcache;
      break;
    }
  }
  return { mode, settings };
}

function _listenerLimits(config: ClusterConfig, counted: boolean) {
  return {
    // Counted over the workers, the cluster's limit; else each worker takes its share.
    maxClients: counted ? config.maxClients : Math.ceil(config.maxClients / config.thread),
    idleTimeoutMs: config.clientIdleTimeout * 1000,
    proxyProtocol: config.proxyProtocol,
    outputLimits: {
      softLimit: config.clientOutputSoftLimit,
      hardLimit: config.clientOutputHardLimit,
    },
  };
}

function _advertisedHost(listenHost: string): string {
  return listenHost === "0.0.0.0" || listenHost === "::" ? "127.0.0.1" : listenHost;
}

/** Waits until no request is in flight on `pool`, at most `timeoutMs`. */
async function _drainPool(pool: NodePool, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (pool.pendingCount() > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The front end's TLS certificate, key and client CA, null without `tls_cert`. */
function _frontTls(cluster: ClusterConfig): TlsServerCredentials | null {
  const pem = cluster.tlsPem;
  if (pem === null || pem.cert === null || pem.key === null) return null;
  return { cert: pem.cert, key: pem.key, ca: pem.ca };
}
