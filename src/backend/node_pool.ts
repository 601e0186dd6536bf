/** The backend connections of one worker: `node_connections` NodeConns per node. */
import { NodeConn, type NodeConnOptions } from "./node_conn.ts";

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
  readonly #byName = new Map<string, number>();

  constructor(nodes: readonly PoolNode[], options: PoolOptions) {
    this.#options = options;
    for (const node of nodes) this.add(node);
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
        () => new NodeConn({ ...this.#options, name: node.name, host: node.host, port: node.port }),
      );
      this.#conns[index] = conns;
      for (const conn of conns) conn.connect();
    }
    return index;
  }

  /** The index of a node by name, or undefined. */
  indexOf(name: string): number | undefined {
    return this.#byName.get(name);
  }

  /** True while the node has open (or reconnecting) connections. */
  isOpen(node: number): boolean {
    return this.#conns[node] != null;
  }

  /** The connection to `node` that client `sessionId` uses. Throws for a closed node. */
  connFor(node: number, sessionId: number): NodeConn {
    const conns = this.#conns[node]!;
    return conns[sessionId % conns.length];
  }

  /** Every connection of one node (health checks use the first). */
  connsOf(node: number): readonly NodeConn[] {
    return this.#conns[node] ?? [];
  }

  /** Closes one node's connections; waiting requests get an error. */
  closeNode(node: number): void {
    for (const conn of this.#conns[node] ?? []) conn.close();
    this.#conns[node] = null;
  }

  /** Fails late requests on every connection. */
  checkTimeouts(now: number): void {
    for (const conns of this.#conns) {
      if (conns) {
        for (const conn of conns) conn.checkTimeouts(now);
      }
    }
  }

  /** Closes every connection for good. */
  close(): void {
    for (let node = 0; node < this.#conns.length; node++) this.closeNode(node);
  }
}
