/**
 * How requests reach backends, the same for every protocol: by ketama node (`redis`,
 * `memcache`, `memcache_binary`) or by slot (`redis_cluster`, src/proxy/cluster_routing.ts).
 */
import type { NodePool } from "../backend/node_pool.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import type { CommandSpec } from "../protocol/resp/commands.ts";
import { encodeError } from "../protocol/resp/encoder.ts";
import type { RingRouter } from "./ring_router.ts";
import { hashTagSlice } from "../hash/hash_tag.ts";

/**
 * Keys fall into groups (a node on the ring, a slot in a cluster). A request whose keys
 * share one group goes out whole; multi-key requests are split per group.
 */
export interface Routing {
  /** The group of a key, or -1 when no backend can take it. */
  groupOf(key: Uint8Array): number;
  /**
   * Sends one encoded request (copied, so it may be a view) to the backend of `group`, on
   * the connection client `sessionId` uses; `readonly` requests may go to replicas; `kind`
   * goes to the reply framer with the reply (0 unless the protocol needs it); `lane` picks
   * the node's set of connections (0 the default; 1 those that said HELLO 3: see NodePool).
   */
  send(
    group: number,
    bytes: Uint8Array,
    sink: ReplySink,
    sessionId: number,
    readonly: boolean,
    kind?: number,
    lane?: number,
  ): void;
  /** One group per backend that a server-wide command must reach (every node, every master). */
  broadcastGroups(): number[];
  /** The node a group's requests go to now (its master), or -1: where a pinned client connects. */
  nodeOf(group: number): number;
  /**
   * A number that changes when groups may have moved to other nodes (an ejection, a new
   * slot map): subscription connections check where their channels live then.
   */
  placementVersion?(): number;
  /**
   * True when a PUBLISH reaches the subscribers of every node (Redis Cluster carries it):
   * classic Pub/Sub then lives in one group, CLASSIC_PUBSUB_GROUP.
   */
  readonly sharedPubsub?: boolean;
  /**
   * True when a key has no node of its own (`distribution = random`): a PUBLISH may land on
   * any node, so every channel is subscribed on every node.
   */
  readonly scattered?: boolean;
  /**
   * Asks for the placement to be checked again soon (a subscription connection was told
   * its channel moved: a MOVED, an unasked sunsubscribe).
   */
  refreshPlacement?(): void;
}

/**
 * The group of classic Pub/Sub (PUBLISH, SUBSCRIBE, PSUBSCRIBE) where every PUBLISH reaches
 * every node's subscribers (`sharedPubsub`): slot 0 in `redis_cluster`.
 */
export const CLASSIC_PUBSUB_GROUP = 0;

/**
 * What the Redis modes add: a command whose keys span groups is refused unless it splits,
 * and the mode answers some commands itself (CLUSTER in `redis_cluster`).
 */
export interface RedisRouting extends Routing {
  /** The refusal for a command whose keys span groups. */
  crossGroupError(spec: CommandSpec): Uint8Array;
  /**
   * The reply to a command this mode answers itself (e.g. CLUSTER), or null; `resp3`: as a
   * RESP3 client gets it (maps, verbatim strings).
   */
  localReply(spec: CommandSpec, argv: readonly Uint8Array[], resp3?: boolean): Uint8Array | null;
  /**
   * Whether every key a SORT BY/GET `pattern` can form (its "*" replaced by an element)
   * is in `group`, the group of the sorted key: only then may the backend read them.
   */
  patternInGroup(pattern: Uint8Array, group: number): boolean;
  /** The refusal of a SORT whose BY or GET pattern may name keys of other groups. */
  sortPatternError(option: "BY" | "GET"): Uint8Array;
  /**
   * The group to send a keyless command to that this mode forwards by an argument
   * (CLUSTER COUNTKEYSINSLOT <slot>: the slot's master), or -1.
   */
  forwardGroup(spec: CommandSpec, argv: readonly Uint8Array[]): number;
  /**
   * `redis_cluster` mode: the node a MOVED or ASK that the cluster itself sent names (a
   * MOVED also updates the slot map until the next fetch), or -1. Absent in modes without
   * redirects.
   */
  redirectNode?(redirect: { kind: "moved" | "ask"; slot: number; addr: string }): number;
}

/** twemproxy-style routing: the group is the node the ketama ring picks. */
export class RingRouting implements RedisRouting {
  readonly #router: RingRouter;
  readonly #pool: NodePool;

  constructor(router: RingRouter, pool: NodePool) {
    this.#router = router;
    this.#pool = pool;
  }

  groupOf(key: Uint8Array): number {
    return this.#router.pick(key);
  }

  send(
    group: number,
    bytes: Uint8Array,
    sink: ReplySink,
    sessionId: number,
    _readonly: boolean,
    kind = 0,
    lane = 0,
  ): void {
    this.#pool.connFor(group, sessionId, lane).send(bytes, sink, kind);
  }

  nodeOf(group: number): number {
    return group;
  }

  placementVersion(): number {
    return this.#router.version;
  }

  get scattered(): boolean {
    return this.#router.scattered;
  }

  crossGroupError(spec: CommandSpec): Uint8Array {
    return encodeError(`ERR keys of '${spec.name}' map to different servers; use a hash tag`);
  }

  broadcastGroups(): number[] {
    return this.#router.liveNodes();
  }

  localReply(): Uint8Array | null {
    return null;
  }

  patternInGroup(pattern: Uint8Array, group: number): boolean {
    const star = pattern.indexOf(0x2a /* "*" */);
    // No "*": redis-server reads no key for it (a constant BY does not sort at all).
    if (star < 0) return true;
    if (this.#router.liveNodes().length <= 1) return true;
    // A hash tag closed before the "*" is the tag of every key formed: they share a node.
    const prefix = pattern.subarray(0, star);
    if (hashTagSlice(prefix, this.#router.hashTag) === prefix) return false;
    return this.#router.pick(prefix) === group;
  }

  sortPatternError(option: "BY" | "GET"): Uint8Array {
    return encodeError(
      `ERR ${option} option of SORT denied by aster when keys formed by the pattern may be on ` +
        "other servers than the key; give the pattern the key's hash tag before its '*'",
    );
  }

  forwardGroup(): number {
    return -1;
  }
}
