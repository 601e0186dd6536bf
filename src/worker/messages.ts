/** Every message between the supervisor and a worker: the one place they are defined. */
import type { ClusterConfig } from "../config/schema.ts";
import type { LogLevel } from "../log.ts";
import type { MetricsSnapshot } from "../metrics/worker_metrics.ts";
import type { SlotMap } from "../cluster/slot_table.ts";
import type { RawFdTable } from "../runtime/sockets.ts";

/**
 * State one worker (a cluster's leader, worker 0) decides for all of them: which ring
 * nodes are ejected, and the Redis Cluster slot map.
 */
export type SharedState =
  | { kind: "health"; live: boolean[] }
  | { kind: "slots"; map: SlotMap };

/** A cluster's shared client counts and the cell one worker counts in. */
export interface ClientCells {
  counts: Int32Array;
  cell: number;
}

/** Supervisor -> worker: serve this cluster. */
export interface StartMessage {
  type: "start";
  cluster: ClusterConfig;
  /** Index of this worker among the cluster's `thread` workers. */
  workerIndex: number;
  logLevel: LogLevel;
  /** IP advertised by the emulated CLUSTER SLOTS/NODES (from --ip). */
  advertiseIp?: string;
  /** The leader pings and fetches for the cluster; the others follow its SharedState. */
  leader: boolean;
  /** Listen with SO_REUSEPORT (false where the platform lacks it: one worker then). */
  reusePort: boolean;
  /** The latest shared state, replayed to a (re)started worker. */
  shared: SharedState[];
  /** Where raw descriptors are recorded (`FdOwners`), when the process may use FFI. */
  fds?: RawFdTable;
  /**
   * The cluster's clients per worker (a SharedArrayBuffer's view) and this worker's cell in it:
   * max_clients over all of them.
   */
  clientQuota?: ClientCells;
}

/** The supervisor's table of raw descriptors and the id this worker records them under. */
export type { RawFdTable };

/** Supervisor -> worker: stop accepting, close clients and backends. */
export interface StopMessage {
  type: "stop";
}

/** Supervisor -> worker: send your counters (answered with a MetricsMessage). */
export interface MetricsRequest {
  type: "metrics";
  id: number;
}

/** Supervisor -> worker: crash on purpose (tests of the restart path, ASTER_TEST_HOOKS=1). */
export interface CrashMessage {
  type: "crash";
}

/** Supervisor -> worker: apply a changed config of the same cluster (answered "reconfigured"). */
export interface ReconfigureMessage {
  type: "reconfigure";
  cluster: ClusterConfig;
}

/** Supervisor -> follower: state the leader decided. Supervisor -> leader: a follower wants a refresh. */
export interface SharedMessage {
  type: "shared";
  state: SharedState;
}

/** Supervisor -> leader: a follower saw signs of a stale slot map. */
export interface RefreshMessage {
  type: "refresh";
}

/** Messages a worker receives. */
export type ToWorker =
  | SharedMessage
  | RefreshMessage
  | StartMessage
  | StopMessage
  | MetricsRequest
  | CrashMessage
  | ReconfigureMessage;

/**
 * Worker -> supervisor: its message handler is set (its modules, some loaded by a top-level
 * await, are evaluated); the supervisor sends StartMessage only then, so no runtime can drop
 * it for want of a handler.
 */
export interface ReadyMessage {
  type: "ready";
}

/** Worker -> supervisor: the listener is up. */
export interface ListeningMessage {
  type: "listening";
  address: string;
}

/** Worker -> supervisor: the worker cannot serve (e.g. the port is taken). */
export interface FailedMessage {
  type: "failed";
  error: string;
}

/** Worker -> supervisor: after a StopMessage, its listeners are closed (the port is free). */
export interface StoppedAcceptingMessage {
  type: "stopped-accepting";
}

/** Worker -> supervisor: stopped after a StopMessage. */
export interface StoppedMessage {
  type: "stopped";
}

/** Worker -> supervisor: the counters asked for by MetricsRequest `id`. */
export interface MetricsMessage {
  type: "metrics";
  id: number;
  snapshot: MetricsSnapshot;
}

/** Worker -> supervisor: a ReconfigureMessage was applied (or failed, with `error`). */
export interface ReconfiguredMessage {
  type: "reconfigured";
  error?: string;
}

/** Worker -> supervisor: a follower asks the leader for a slot map refresh. */
export interface RefreshWantedMessage {
  type: "refresh-wanted";
}

/** Messages a worker sends (a leader also sends SharedMessage). */
export type FromWorker =
  | SharedMessage
  | RefreshWantedMessage
  | ReadyMessage
  | ListeningMessage
  | FailedMessage
  | StoppedAcceptingMessage
  | StoppedMessage
  | MetricsMessage
  | ReconfiguredMessage;
