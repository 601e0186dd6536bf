/**
 * Dedicated backend connections for pinned clients (SUBSCRIBE, BLPOP, MULTI/WATCH: state
 * on the backend connection that belongs to one client). A pinned client takes one
 * connection to a node for itself, outside the shared connections' FIFO, until it releases
 * it; each node has a cap. A connection whose client vanished while pinned is closed, not
 * returned: its backend state (a transaction, a subscription) is that client's.
 */
import { NodeConn, type NodeConnOptions } from "./node_conn.ts";
import type { NodePool } from "./node_pool.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import { coarseClock } from "../io/coarse_clock.ts";

/**
 * A pinned request whose reply must come within `within` ms of reaching the head of its
 * connection (a blocking command: its own timeout plus a margin).
 */
class ReplyDeadline implements ReplySink {
  constructor(
    readonly sink: ReplySink,
    readonly within: number,
    readonly queuedAt: number,
    readonly queue: DeadlineQueue,
  ) {}

  onReply(reply: Uint8Array, owned?: boolean): void {
    this.queue.met(this);
    this.sink.onReply(reply, owned);
  }

  onError(message: string): void {
    this.queue.met(this);
    this.sink.onError(message);
  }
}

/** The deadlines of one connection's requests, in the order they were sent. */
class DeadlineQueue {
  readonly entries: ReplyDeadline[] = [];
  /**
   * When the head's predecessor was answered, or when it was last seen behind another request
   * of its connection: the head has waited since then at most.
   */
  since = 0;

  met(entry: ReplyDeadline): void {
    const at = this.entries.indexOf(entry);
    if (at < 0) return;
    this.entries.splice(at, 1);
    this.since = coarseClock.now;
  }

  /**
   * How long the head is past its deadline at `now` (> 0: late), or -Infinity when none or
   * when `conn` still has a request ahead of it (a slow EVAL before a BLPOP: the backend runs
   * the BLPOP after it, so its wait has not begun).
   */
  lateBy(conn: NodeConn, now: number): number {
    const head = this.entries[0];
    if (head === undefined) return -Infinity;
    if (conn.headSink !== head) {
      this.since = now;
      return -Infinity;
    }
    return now - Math.max(head.queuedAt, this.since) - head.within;
  }
}

/** Settings of a pinned pool. */
export interface PinnedPoolOptions {
  /** Most dedicated connections open to one node (idle and pinned). */
  capPerNode: number;
  /** Makes a connection (tests use fakes); default: a NodeConn that connects at once. */
  newConn?: (options: NodeConnOptions) => NodeConn;
  /**
   * Once a connection's client left, the longest wait for one of its replies, ms, at least
   * the node's read_timeout (default LEFT_CLIENT_TIMEOUT_MS).
   */
  leftClientTimeout?: number;
}

/**
 * A leaving client's dedicated connection waits this long for each reply at most: long
 * enough for a slow EVAL or EXEC, which redis-server would still answer a half-closed
 * client, and bounded, so a backend gone quiet does not hold the session and connection.
 */
export const LEFT_CLIENT_TIMEOUT_MS = 30_000;

function _newConn(options: NodeConnOptions): NodeConn {
  const conn = new NodeConn(options);
  conn.connect();
  return conn;
}

/** The dedicated connections of one backend generation, per node. */
export class PinnedPool {
  readonly #nodes: NodePool;
  readonly #cap: number;
  readonly #newConn: (options: NodeConnOptions) => NodeConn;
  readonly #leftClientTimeout: number;
  /** Per node and lane (`_idleKey`): released connections waiting for the next pinned client. */
  readonly #idle = new Map<number, NodeConn[]>();
  /** The lane each connection was opened in (see NodePool's lanes: 1 said HELLO 3). */
  readonly #laneOf = new WeakMap<NodeConn, number>();
  /** Per node: connections open (idle or pinned). */
  readonly #open = new Map<number, Set<NodeConn>>();
  /** Connections with requests that must be answered in time (see expectReply). */
  readonly #deadlines = new Map<NodeConn, DeadlineQueue>();
  #closed = false;

  constructor(nodes: NodePool, options: PinnedPoolOptions) {
    this.#nodes = nodes;
    this.#cap = options.capPerNode;
    this.#newConn = options.newConn ?? _newConn;
    this.#leftClientTimeout = options.leftClientTimeout ?? LEFT_CLIENT_TIMEOUT_MS;
  }

  /** Connections open to `node`, idle or pinned. */
  openCount(node: number): number {
    return this.#open.get(node)?.size ?? 0;
  }

  /** Connections to `node` held by clients now (open and not idle). */
  inUseCount(node: number): number {
    let idle = 0;
    for (let lane = 0; lane < LANES; lane++) {
      idle += this.#idle.get(_idleKey(node, lane))?.length ?? 0;
    }
    return this.openCount(node) - idle;
  }

  /**
   * A connection to `node` in `lane` for one client alone: an idle one, or a new one under
   * the cap (shared by the node's lanes). Null at the cap, for a closed node, or once the
   * pool is closed.
   */
  acquire(node: number, lane = 0): NodeConn | null {
    if (this.#closed || node < 0 || !this.#nodes.isOpen(node)) return null;
    const idle = this.#idle.get(_idleKey(node, lane));
    while (idle !== undefined && idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.state !== "closed") return conn;
      this.#open.get(node)?.delete(conn);
    }
    let open = this.#open.get(node);
    if (open === undefined) {
      open = new Set();
      this.#open.set(node, open);
    }
    if (open.size >= this.#cap && !this.#closeIdleOtherLane(node, lane)) return null;
    // Exempt from read_timeout: a blocked BLPOP or a subscription waits as long as it likes.
    // Once its client left, a reply may take a while (a long EVAL) but not forever.
    const options = this.#nodes.optionsOf(node, lane);
    const conn = this.#newConn({
      ...options,
      readTimeout: Infinity,
      leftClientTimeout: Math.max(options.readTimeout, this.#leftClientTimeout),
    });
    open.add(conn);
    this.#laneOf.set(conn, lane);
    return conn;
  }

  /** At the cap: closes an idle connection of another lane of `node` to make room. */
  #closeIdleOtherLane(node: number, lane: number): boolean {
    for (let other = 0; other < LANES; other++) {
      const conn = other === lane ? undefined : this.#idle.get(_idleKey(node, other))?.[0];
      if (conn !== undefined) {
        this.discard(node, conn);
        return true;
      }
    }
    return false;
  }

  /**
   * Takes back a connection whose client released it with no request in flight; one that
   * still waits for replies, or that failed, is closed instead.
   */
  release(node: number, conn: NodeConn): void {
    if (this.#closed || conn.pendingCount > 0 || conn.state === "closed" || conn.writeClosed) {
      this.discard(node, conn);
      return;
    }
    const key = _idleKey(node, this.#laneOf.get(conn) ?? 0);
    let idle = this.#idle.get(key);
    if (idle === undefined) {
      idle = [];
      this.#idle.set(key, idle);
    }
    idle.push(conn);
  }

  /**
   * Wraps the sink of a request about to be sent on `conn`: its reply must come within
   * `within` ms of the request reaching the head of the connection, else the connection is
   * closed for good and the request (and any behind it) fails with an error that says
   * `timed out` (checkTimeouts). The connection is exempt from read_timeout: this is its bound
   * for a blocking command. `within` may be Infinity (BLPOP 0): the requests behind it then
   * count their wait from its reply.
   */
  expectReply(conn: NodeConn, within: number, sink: ReplySink): ReplySink {
    let queue = this.#deadlines.get(conn);
    if (queue === undefined) {
      queue = new DeadlineQueue();
      queue.since = coarseClock.now;
      this.#deadlines.set(conn, queue);
    }
    const entry = new ReplyDeadline(sink, within, coarseClock.now, queue);
    queue.entries.push(entry);
    return entry;
  }

  /** Closes a connection for good (its client vanished while pinned): never handed out again. */
  discard(node: number, conn: NodeConn): void {
    this.#deadlines.delete(conn);
    this.#open.get(node)?.delete(conn);
    const idle = this.#idle.get(_idleKey(node, this.#laneOf.get(conn) ?? 0));
    const at = idle?.indexOf(conn) ?? -1;
    if (at >= 0) idle!.splice(at, 1);
    conn.close();
  }

  /** Fails late dials and writes (read_timeout does not apply, see acquire()). */
  checkTimeouts(now: number): void {
    for (const open of this.#open.values()) for (const conn of open) conn.checkTimeouts(now);
    if (this.#deadlines.size === 0) return;
    let late: [NodeConn, number][] | null = null;
    for (const [conn, queue] of this.#deadlines) {
      if (queue.entries.length === 0 && conn.state === "closed") this.#deadlines.delete(conn);
      else if (queue.lateBy(conn, now) > 0) (late ??= []).push([conn, queue.entries[0].within]);
    }
    for (const [conn, within] of late ?? []) {
      this.#deadlines.delete(conn);
      for (const open of this.#open.values()) open.delete(conn);
      // Its sinks fail now: the pinned client's runner lets go of it.
      conn.abort(`timed out: no reply to a blocking command within ${within} ms`);
    }
  }

  /** Requests in flight over every dedicated connection. */
  pendingCount(): number {
    let count = 0;
    for (const open of this.#open.values()) for (const conn of open) count += conn.pendingCount;
    return count;
  }

  /** Closes every connection; later acquire() calls get null. */
  close(): void {
    this.#closed = true;
    for (const open of this.#open.values()) for (const conn of open) conn.close();
    this.#open.clear();
    this.#idle.clear();
  }
}

/** Lanes a node may have (NodePool's: 0 and RESP3's 1, room for more). */
const LANES = 4;

/** The idle list of a node's lane. */
function _idleKey(node: number, lane: number): number {
  return node * LANES + lane;
}
