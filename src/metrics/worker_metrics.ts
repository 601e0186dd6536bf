import { Slowlog } from "./slowlog.ts";
import { DEFAULT_REDIS_VERSION, type ReportedVersion } from "../backend/backend_version.ts";

/** One worker's counters: updated on the data path, summed by the supervisor for /metrics. */

/** Upper bounds (seconds) of the backend latency histogram buckets; +Inf is implied. */
export const LATENCY_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
] as const;

/** Latency observations of one backend node. */
export interface LatencyHistogram {
  /** Count per bucket (non-cumulative), the last one for +Inf. */
  counts: number[];
  /** Sum of the observed seconds. */
  sum: number;
}

/** A node's view from one worker. */
export interface NodeSnapshot {
  cluster: string;
  node: string;
  /** 1 when a connection to it is up. */
  up: number;
  /** 1 when ejected from the ring by failed pings. */
  ejected: number;
  /** Requests sent and not answered yet. */
  pending: number;
  /** Dedicated (pinned) connections held by clients now (transactions, blocking commands). */
  pinned: number;
  latency: LatencyHistogram;
}

/** Everything one worker reports, plain data so it can be posted to the supervisor. */
export interface MetricsSnapshot {
  /** Per cluster name. */
  clients: Record<string, { current: number; total: number; rejected: number }>;
  /** "cluster\tcommand" -> count. */
  commands: Record<string, number>;
  /** "cluster\tkind" -> count. */
  errors: Record<string, number>;
  /** "cluster\tmoved|ask" -> count. */
  redirects: Record<string, number>;
  /** "cluster\tstate" -> clients in that state now (see CLIENT_STATES). */
  clientStates: Record<string, number>;
  /** Per cluster name. */
  topologyRefreshes: Record<string, number>;
  bytesIn: Record<string, number>;
  bytesOut: Record<string, number>;
  /** Per cluster name: subscribed clients and their subscriptions by kind. */
  pubsub: Record<string, PubsubCounts>;
  nodes: NodeSnapshot[];
}

/** Pub/Sub now: clients in the subscribed state and the subscriptions they hold. */
export interface PubsubCounts {
  clients: number;
  channels: number;
  patterns: number;
  shardChannels: number;
}

/** Error kinds counted in `aster_errors_total`. */
export type ErrorKind =
  | "protocol"
  | "backend"
  | "refused"
  | "noauth"
  | "max_clients"
  | "output_limit";

/**
 * Gauges of clients by state, per cluster, all in one place: each shows in INFO's Clients
 * section under the name given here, and in /metrics as `aster_clients_in_state{state}`.
 * A new state (pub/sub's subscribed clients) is one more line here.
 */
export const CLIENT_STATES = {
  /** Waiting for the reply of a blocking command (BLPOP, XREAD BLOCK...). */
  blocked: "blocked_clients",
  /** Between MULTI and EXEC/DISCARD, or with keys watched. */
  in_transaction: "transaction_clients",
} as const;

/** One of CLIENT_STATES' names. */
export type ClientState = keyof typeof CLIENT_STATES;

/** A counter per client state, all zero. */
export function newClientStates(): Record<ClientState, number> {
  const states = {} as Record<ClientState, number>;
  for (const state of Object.keys(CLIENT_STATES) as ClientState[]) states[state] = 0;
  return states;
}

/** Facts INFO reports about the data plane (never secrets). */
export interface PlaneFacts {
  cacheType: string;
  listenAddr: string;
  workerIndex: number;
  workerCount: number;
  startedAt: number;
}

/** Counters of one cluster in one worker: plain fields, cheap to bump on the hot path. */
export class ClusterMetrics {
  readonly cluster: string;
  /** The slowest recent requests (disabled unless configured). */
  slowlog = new Slowlog(-1, 0);
  facts: PlaneFacts = {
    cacheType: "",
    listenAddr: "",
    workerIndex: 0,
    workerCount: 1,
    startedAt: Date.now(),
  };
  clientsCurrent = 0;
  clientsTotal = 0;
  clientsRejected = 0;
  bytesIn = 0;
  bytesOut = 0;
  moved = 0;
  ask = 0;
  topologyRefreshes = 0;
  /** Pub/Sub now: subscribed clients and what they subscribe (gauges). */
  readonly pubsub: PubsubCounts = { clients: 0, channels: 0, patterns: 0, shardChannels: 0 };
  /** Clients in each state now (gauges, see CLIENT_STATES). */
  readonly clientStates = newClientStates();
  readonly commands = new Map<string, number>();
  readonly errors = new Map<string, number>();
  /** Filled in by the data plane when a snapshot is taken. */
  nodeSource: () => NodeSnapshot[] = () => [];
  /** The backends' lowest Redis version, for INFO and HELLO (set by Redis data planes). */
  redisVersion: () => ReportedVersion = () => ({
    version: DEFAULT_REDIS_VERSION,
    source: "default",
  });

  constructor(cluster: string) {
    this.cluster = cluster;
  }

  /** Counts one command by name. */
  command(name: string): void {
    this.commands.set(name, (this.commands.get(name) ?? 0) + 1);
  }

  /** Counts one error by kind. */
  error(kind: ErrorKind): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  /** Adds this cluster's counters to `into`. */
  snapshotInto(into: MetricsSnapshot): void {
    const name = this.cluster;
    into.clients[name] = {
      current: this.clientsCurrent,
      total: this.clientsTotal,
      rejected: this.clientsRejected,
    };
    for (const [command, count] of this.commands) into.commands[`${name}\t${command}`] = count;
    for (const [kind, count] of this.errors) into.errors[`${name}\t${kind}`] = count;
    into.redirects[`${name}\tmoved`] = this.moved;
    into.redirects[`${name}\task`] = this.ask;
    into.topologyRefreshes[name] = this.topologyRefreshes;
    for (const [state, count] of Object.entries(this.clientStates)) {
      into.clientStates[`${name}\t${state}`] = count;
    }
    into.bytesIn[name] = this.bytesIn;
    into.bytesOut[name] = this.bytesOut;
    into.pubsub[name] = { ...this.pubsub };
    into.nodes.push(...this.nodeSource());
  }
}

/** An empty snapshot to fill. */
export function emptySnapshot(): MetricsSnapshot {
  return {
    clients: {},
    commands: {},
    errors: {},
    redirects: {},
    clientStates: {},
    topologyRefreshes: {},
    bytesIn: {},
    bytesOut: {},
    pubsub: {},
    nodes: [],
  };
}

/** A histogram to observe into. */
export class LatencyRecorder implements LatencyHistogram {
  counts: number[] = new Array(LATENCY_BUCKETS.length + 1).fill(0);
  sum = 0;

  /** Records one latency in milliseconds. */
  observeMs(ms: number): void {
    const seconds = ms / 1000;
    this.sum += seconds;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    this.counts[i]++;
  }
}
