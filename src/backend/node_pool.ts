/** The backend connections of one worker: `node_connections` NodeConns per node. */
import {
  NodeConn,
  type NodeConnOptions,
  type NodeConnTraits,
  SHARED_READ_BUFFER_GROWS_TO,
} from "./node_conn.ts";

/** The pool's shared connections carry many clients' replies: larger reads (see the constant). */
const SHARED: NodeConnTraits = { readBufferGrowsTo: SHARED_READ_BUFFER_GROWS_TO };

/** One backend node as the pool knows it. */
export interface PoolNode {
  /** The alias, or "host:port". */
  name: string;
  host: string;
  port: number;
}

/** Shared settings of every connection in a pool. */
export type PoolOptions = Omit<NodeConnOptions, "name" | "host" | "port"> & {
  /** Connections per node; a client always uses the same one, so its requests stay ordered. */
  connectionsPerNode: number;
  /**
   * The handshakes of the pool's other lanes: lane `i` (from 1) is a second set of
   * connections per node, opened on its first use, that say `handshake` and then
   * `laneHandshakes[i - 1]` (the Redis modes' lane 1: `HELLO 3`, for RESP3 clients).
   */
  laneHandshakes?: readonly (readonly Uint8Array[])[];
};

/**
 * Connections to every node, opened eagerly and kept reconnecting. Nodes are numbered in
 * the order they are added; a cluster topology adds nodes as they appear and closes those
 * that leave (their number stays reserved, and is reused if the same address returns).
 */
export class NodePool {
  readonly #options: PoolOptions;
  readonly #nodes: PoolNode[] = [];
  readonly #conns: (NodeConn[] | null)[] = [];
  /** Per lane from 1: per node, that lane's connections (made on first use), or null. */
  readonly #laneConns: (NodeConn[] | null)[][] = [];
  readonly #byName = new Map<string, number>();
  /** Connections handed to a newer pool: used, counted and closed by it, not by this one. */
  readonly #lent = new Set<NodeConn>();

  /**
   * `adoptFrom`: a pool being replaced (a reload); connections to nodes that stay, with the
   * same handshake and count, move here instead of reconnecting, so a client's requests to
   * such a node keep their order across the reload.
   */
  constructor(nodes: readonly PoolNode[], options: PoolOptions, adoptFrom?: NodePool) {
    this.#options = options;
    for (const node of nodes) {
      const adopted = adoptFrom === undefined ? null : adoptFrom.#giveUp(node, {
        options: this.#connOptions(node),
        count: options.connectionsPerNode,
      });
      if (adopted) {
        this.#nodes.push(node);
        this.#conns.push(adopted);
        this.#byName.set(node.name, this.#nodes.length - 1);
        // Its lanes' connections too (a RESP3 client's order holds across the reload).
        for (let lane = 1; lane <= (options.laneHandshakes?.length ?? 0); lane++) {
          const conns = adoptFrom!.#giveUp(node, {
            options: this.#connOptions(node, lane),
            count: options.connectionsPerNode,
          }, lane);
          if (conns) (this.#laneConns[lane - 1] ??= [])[this.#nodes.length - 1] = conns;
        }
      } else this.add(node);
    }
  }

  #connOptions(node: PoolNode, lane = 0): NodeConnOptions {
    const options = { ...this.#options, name: node.name, host: node.host, port: node.port };
    const more = lane === 0 ? undefined : this.#options.laneHandshakes?.[lane - 1];
    if (more === undefined) return options;
    return { ...options, handshake: [...(options.handshake ?? []), ...more] };
  }

  /**
   * Hands this pool's connections to `node` (in `lane`) over to a new pool, when they fit
   * its options.
   */
  #giveUp(
    node: PoolNode,
    wanted: { options: NodeConnOptions; count: number },
    lane = 0,
  ): NodeConn[] | null {
    const index = this.#nodes.findIndex((n) => n.host === node.host && n.port === node.port);
    const conns = index < 0
      ? null
      : lane === 0
      ? this.#conns[index]
      : this.#laneConns[lane - 1]?.[index];
    if (!conns || conns.length !== wanted.count) return null;
    if (!conns.every((conn) => conn.canServe(wanted.options))) return null;
    for (const conn of conns) {
      conn.adopt(wanted.options);
      // Shared until this pool retires: it keeps routing here meanwhile, but not closing.
      this.#lent.add(conn);
    }
    return conns;
  }

  /** Every node ever added, by index. */
  get nodes(): readonly PoolNode[] {
    return this.#nodes;
  }

  /** The index of the node named `node.name`, connecting to it first if it is new or closed. */
  add(node: PoolNode): number {
    let index = this.#byName.get(node.name);
    if (index === undefined) {
      index = this.#nodes.length;
      this.#nodes.push(node);
      this.#conns.push(null);
      this.#byName.set(node.name, index);
    }
    if (this.#conns[index] === null) {
      const conns = Array.from(
        { length: this.#options.connectionsPerNode },
        () => new NodeConn(this.#connOptions(node), SHARED),
      );
      this.#conns[index] = conns;
      for (const conn of conns) conn.connect();
    }
    return index;
  }

  /** The settings of a new connection to `node` in `lane` (a pinned one, see PinnedPool). */
  optionsOf(node: number, lane = 0): NodeConnOptions {
    return this.#connOptions(this.#nodes[node], lane);
  }

  /** The index of a node by name, or undefined. */
  indexOf(name: string): number | undefined {
    return this.#byName.get(name);
  }

  /** True while the node has open (or reconnecting) connections. */
  isOpen(node: number): boolean {
    return this.#conns[node] != null;
  }

  /**
   * The connection to `node` that client `sessionId` uses in `lane` (0: the default
   * connections). Throws for a closed node.
   */
  connFor(node: number, sessionId: number, lane = 0): NodeConn {
    const conns = lane === 0 ? this.#conns[node]! : this.#laneOf(node, lane);
    return conns[sessionId % conns.length];
  }

  /** A lane's connections to an open node, opened on first use. */
  #laneOf(node: number, lane: number): NodeConn[] {
    if (this.#conns[node] == null) throw new Error(`node ${node} is closed`);
    const byNode = this.#laneConns[lane - 1] ??= [];
    let conns = byNode[node];
    if (conns == null) {
      const options = this.#connOptions(this.#nodes[node], lane);
      conns = Array.from(
        { length: this.#options.connectionsPerNode },
        () => new NodeConn(options, SHARED),
      );
      byNode[node] = conns;
      for (const conn of conns) conn.connect();
    }
    return conns;
  }

  /** Every lane's connections, each node's list (lane 0 first). */
  *#allConns(): Iterable<readonly NodeConn[]> {
    for (const conns of this.#conns) if (conns) yield conns;
    for (const byNode of this.#laneConns) for (const conns of byNode) if (conns) yield conns;
  }

  /** Every connection of one node (health checks use the first). */
  connsOf(node: number): readonly NodeConn[] {
    return this.#conns[node] ?? [];
  }

  /** Every connection of one node in every lane (metrics: latency, pending requests). */
  allConnsOf(node: number): NodeConn[] {
    const conns = [...this.connsOf(node)];
    for (const byNode of this.#laneConns) conns.push(...(byNode[node] ?? []));
    return conns;
  }

  /** Closes one node's connections; waiting requests get an error. */
  closeNode(node: number): void {
    for (const conn of this.#conns[node] ?? []) if (!this.#lent.has(conn)) conn.close();
    this.#conns[node] = null;
    for (const byNode of this.#laneConns) {
      for (const conn of byNode[node] ?? []) if (!this.#lent.has(conn)) conn.close();
      byNode[node] = null;
    }
  }

  /** Requests sent and not yet answered, over every connection of every lane. */
  pendingCount(): number {
    let count = 0;
    for (const conns of this.#allConns()) for (const conn of conns) count += conn.pendingCount;
    return count;
  }

  /** Fails late requests on every connection of every lane. */
  checkTimeouts(now: number): void {
    for (const conns of this.#allConns()) for (const conn of conns) conn.checkTimeouts(now);
  }

  /** Closes every connection for good. */
  close(): void {
    for (let node = 0; node < this.#conns.length; node++) this.closeNode(node);
  }
}
