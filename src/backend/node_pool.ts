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

/** Connections to every node, opened eagerly and kept reconnecting. */
export class NodePool {
  readonly nodes: readonly PoolNode[];
  readonly #conns: NodeConn[][];

  constructor(nodes: readonly PoolNode[], options: PoolOptions) {
    this.nodes = nodes;
    this.#conns = nodes.map((node) =>
      Array.from(
        { length: options.connectionsPerNode },
        () => new NodeConn({ ...options, name: node.name, host: node.host, port: node.port }),
      )
    );
    for (const conns of this.#conns) for (const conn of conns) conn.connect();
  }

  /** The connection to `node` that client `sessionId` uses. */
  connFor(node: number, sessionId: number): NodeConn {
    const conns = this.#conns[node];
    return conns[sessionId % conns.length];
  }

  /** Every connection of one node (health checks use the first). */
  connsOf(node: number): readonly NodeConn[] {
    return this.#conns[node];
  }

  /** Fails late requests on every connection. */
  checkTimeouts(now: number): void {
    for (const conns of this.#conns) for (const conn of conns) conn.checkTimeouts(now);
  }

  /** Closes every connection for good. */
  close(): void {
    for (const conns of this.#conns) for (const conn of conns) conn.close();
  }
}
