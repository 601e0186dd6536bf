/** Wires one cluster's data plane inside a worker: backends, router, health, listener. */
import type { ClusterConfig } from "../config/schema.ts";
import { tickCoarseClock } from "../backend/coarse_clock.ts";
import { HealthChecker } from "../backend/health.ts";
import { NodePool } from "../backend/node_pool.ts";
import { ketamaName } from "../hash/ketama.ts";
import { encodeCommandText, PONG_REPLY } from "../protocol/resp/encoder.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { Listener } from "../proxy/listener.ts";
import { RedisFrontend } from "../proxy/redis_frontend.ts";
import { RingRouter } from "../proxy/ring_router.ts";
import { RingRouting } from "../proxy/redis_routing.ts";
import { logInfo } from "../log.ts";

/** How often timeouts are checked and the coarse clock moves, ms. */
const TICK_MS = 20;

/** A running data plane; close() stops it. */
export interface DataPlane {
  readonly listener: Listener;
  close(): void;
}

const PING = encodeCommandText("PING");

/** Starts serving `cluster` in this worker. Throws when the listen address is unusable. */
export function startDataPlane(cluster: ClusterConfig, options: { reusePort: boolean }): DataPlane {
  if (cluster.cacheType !== "redis") {
    throw new Error(`cache_type ${cluster.cacheType} is not supported yet`);
  }
  const nodes = cluster.servers.map((server) => ({
    name: server.alias ?? server.addr,
    host: server.host,
    port: server.port,
  }));
  const pool = new NodePool(nodes, {
    connectionsPerNode: cluster.nodeConnections,
    dialTimeout: cluster.dialTimeout,
    readTimeout: cluster.readTimeout,
    writeTimeout: cluster.writeTimeout,
    newFramer: () => new RespReplyFramer(),
  });
  const router = new RingRouter(
    cluster.servers.map((server) => ({ name: ketamaName(server), weight: server.weight })),
    cluster.hashTag,
  );
  const routing = new RingRouting(router, pool);
  const health = cluster.pingFailLimit > 0
    ? new HealthChecker(nodes.map((_, node) => pool.connsOf(node)[0]), nodes.map((n) => n.name), {
      failLimit: cluster.pingFailLimit,
      intervalMs: cluster.pingInterval,
      ping: PING,
      isHealthy: (reply) => _sameBytes(reply, PONG_REPLY),
      onChange: (node, live) => router.setLive(node, live),
    })
    : null;
  const ticker = setInterval(() => pool.checkTimeouts(tickCoarseClock()), TICK_MS);
  let listener: Listener;
  try {
    listener = new Listener({
      hostname: cluster.listenHost,
      port: cluster.listenPort,
      reusePort: options.reusePort,
      newHandler: (session) => new RedisFrontend(session, routing),
    });
  } catch (err) {
    clearInterval(ticker);
    health?.stop();
    pool.close();
    throw err;
  }
  listener.serve();
  logInfo(
    `cluster ${cluster.name}: ${cluster.cacheType} on ${cluster.listenAddr}, ${nodes.length} servers`,
  );
  return {
    listener,
    close() {
      listener.close();
      clearInterval(ticker);
      health?.stop();
      pool.close();
    },
  };
}

function _sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
