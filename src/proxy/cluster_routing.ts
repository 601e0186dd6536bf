/** `redis_cluster` routing: the group is the key's slot; redirects are followed, never shown. */
import { keySlot } from "../hash/key_slot.ts";
import type { NodePool } from "../backend/node_pool.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import type { ClusterTopology } from "../cluster/topology.ts";
import { parseRedirect, SLOT_COUNT } from "../cluster/slot_table.ts";
import type { CommandSpec } from "../protocol/resp/commands.ts";
import { encodeCommandText, encodeError, OK_REPLY } from "../protocol/resp/encoder.ts";
import type { RedisRouting } from "./routing.ts";
import type { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { clusterForwardSlot, type ClusterIdentity, clusterLocalReply } from "./cluster_local.ts";
import { copies } from "../io/copy_slab.ts";

/** Most redirects or retries one request may take before it gets an error. */
const MAX_REDIRECTS = 5;
/** First retry delay after TRYAGAIN or CLUSTERDOWN, doubling each time, ms. */
const RETRY_BASE_MS = 25;
const ASKING = encodeCommandText("ASKING");
const MINUS = 0x2d; // "-"
const latin1 = new TextDecoder("latin1");

/** Ignores the reply to ASKING (the command after it carries the outcome). */
const DISCARD: ReplySink = { onReply() {}, onError() {} };

/** Routes by slot over a topology; reads may rotate over replicas. */
export class ClusterRouting implements RedisRouting {
  readonly topology: ClusterTopology;
  readonly pool: NodePool;
  readonly #readFromReplicas: boolean;
  readonly metrics: ClusterMetrics;
  readonly #identity: ClusterIdentity;
  #turn = 0;
  /** Per client, the last resend still waiting (absent when none). */
  readonly #resends = new Map<number, Promise<void>>();

  constructor(
    parts: { topology: ClusterTopology; pool: NodePool; identity: ClusterIdentity },
    options: { readFromReplicas: boolean; metrics: ClusterMetrics },
  ) {
    this.metrics = options.metrics;
    this.topology = parts.topology;
    this.pool = parts.pool;
    this.#identity = parts.identity;
    this.#readFromReplicas = options.readFromReplicas;
  }

  groupOf(key: Uint8Array): number {
    return keySlot(key);
  }

  send(
    slot: number,
    bytes: Uint8Array,
    sink: ReplySink,
    sessionId: number,
    readonly: boolean,
  ): void {
    const node = readonly && this.#readFromReplicas
      ? this.topology.readerOf(slot, this.#turn++)
      : this.topology.masterOf(slot);
    if (node < 0) {
      this.topology.requestRefresh();
      sink.onError(_clusterDown(this.topology.ready));
      return;
    }
    // The request keeps its own copy of the bytes: a redirect sends them again later.
    const request = new ClusterRequest(this, copies.copy(bytes), slot, sink, sessionId);
    if (this.#resends.size > 0 && this.#resends.has(sessionId)) {
      // An earlier request of this client waits to be sent again: keep the client's order.
      this.resendInOrder(sessionId, {
        delayMs: 0,
        send: () => request.sendTo(this.topology.masterOf(slot)),
      });
      return;
    }
    this.pool.connFor(node, sessionId).send(bytes, request);
  }

  /**
   * Sends a redirected or retried request again, after any resend of the same client still
   * waiting: a request retried later (TRYAGAIN, CLUSTERDOWN) must not be overtaken by the
   * client's next request, redirected at once (MOVED), or a read could miss the write before it.
   */
  resendInOrder(sessionId: number, resend: { delayMs: number; send: () => void }): void {
    const waiting = this.#resends.get(sessionId);
    if (waiting === undefined && resend.delayMs === 0) {
      resend.send();
      return;
    }
    const start = waiting ?? Promise.resolve();
    const next = start.then(() =>
      new Promise<void>((resolve) => {
        setTimeout(() => {
          resend.send();
          resolve();
        }, resend.delayMs);
      })
    );
    this.#resends.set(sessionId, next);
    next.then(() => {
      if (this.#resends.get(sessionId) === next) this.#resends.delete(sessionId);
    });
  }

  nodeOf(slot: number): number {
    return this.topology.masterOf(slot);
  }

  broadcastGroups(): number[] {
    return this.topology.shardSlots();
  }

  crossGroupError(): Uint8Array {
    return encodeError("CROSSSLOT Keys in request don't hash to the same slot");
  }

  localReply(spec: CommandSpec, argv: readonly Uint8Array[]): Uint8Array | null {
    switch (spec.name) {
      case "cluster":
        // COUNTKEYSINSLOT/GETKEYSINSLOT with valid arguments go to the slot's master.
        return clusterForwardSlot(argv) >= 0 ? null : clusterLocalReply(argv, this.#identity);
      // What a cluster node answers; Aster picks replicas by `read_from_slave` and follows
      // ASK itself, so a cluster-aware client's READONLY or ASKING changes nothing.
      case "readonly":
      case "readwrite":
      case "asking":
        return OK_REPLY;
      default:
        return null;
    }
  }

  forwardGroup(spec: CommandSpec, argv: readonly Uint8Array[]): number {
    return spec.name === "cluster" ? clusterForwardSlot(argv) : -1;
  }

  /** Redis Cluster's own rule (patternHashSlot, Redis 7.4+): the pattern's slot is fixed. */
  patternInGroup(pattern: Uint8Array, slot: number): boolean {
    let open = -1;
    for (let i = 0; i < pattern.length; i++) {
      const byte = pattern[i];
      // "*", "?", "[" (wildcards) or "\\" (an escape) before a complete tag: any slot.
      if (byte === 0x2a || byte === 0x3f || byte === 0x5b || byte === 0x5c) return false;
      if (open === -1 && byte === 0x7b /* "{" */) open = i;
      else if (open >= 0 && byte === 0x7d /* "}" */) {
        if (i === open + 1) open = -2; // "{}": the whole key is hashed
        else break;
      }
    }
    // The tag (or the whole pattern, naming one key) gives the slot as for a key.
    return keySlot(pattern) === slot;
  }

  sortPatternError(option: "BY" | "GET"): Uint8Array {
    return option === "BY" ? SORT_BY_DENIED : SORT_GET_DENIED;
  }
}

/** Redis Cluster's own refusals (Redis 7.4's wording). */
const SORT_BY_DENIED = encodeError(
  "ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in " +
    "different slots.",
);
const SORT_GET_DENIED = encodeError(
  "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in " +
    "different slots.",
);

function _clusterDown(ready: boolean): string {
  return ready
    ? "CLUSTERDOWN Hash slot not served"
    : "CLUSTERDOWN aster has no slot map yet: no seed node answered CLUSTER SLOTS";
}

/**
 * One request on its way through the cluster: it keeps its bytes so a MOVED, ASK,
 * TRYAGAIN or CLUSTERDOWN can send it again, up to MAX_REDIRECTS times.
 */
class ClusterRequest implements ReplySink {
  readonly #routing: ClusterRouting;
  /** The request's own copy of its bytes (they are sent again after a redirect). */
  readonly bytes: Uint8Array;
  readonly #slot: number;
  readonly #sink: ReplySink;
  readonly #sessionId: number;
  #redirects = 0;

  // Positional (not an options object): one of these is made per request.
  constructor(
    routing: ClusterRouting,
    bytes: Uint8Array,
    slot: number,
    sink: ReplySink,
    sessionId: number,
  ) {
    this.#routing = routing;
    this.bytes = bytes;
    this.#slot = slot;
    this.#sink = sink;
    this.#sessionId = sessionId;
  }

  onReply(reply: Uint8Array): void {
    if (reply[0] !== MINUS) {
      this.#sink.onReply(reply);
      return;
    }
    const message = latin1.decode(reply.subarray(1, reply.length - 2));
    const space = message.indexOf(" ");
    const code = space < 0 ? message : message.slice(0, space);
    if (code !== "MOVED" && code !== "ASK" && code !== "TRYAGAIN" && code !== "CLUSTERDOWN") {
      this.#sink.onReply(reply);
      return;
    }
    if (++this.#redirects > MAX_REDIRECTS) {
      this.#sink.onError(`too many redirects for slot ${this.#slot}, last: ${message}`);
      return;
    }
    const { topology, pool } = this.#routing;
    if (code === "TRYAGAIN" || code === "CLUSTERDOWN") {
      if (code === "CLUSTERDOWN") topology.requestRefresh();
      this.#routing.resendInOrder(this.#sessionId, {
        delayMs: RETRY_BASE_MS << (this.#redirects - 1),
        send: () => this.#resend(),
      });
      return;
    }
    const redirect = parseRedirect(message);
    if (redirect === null || redirect.slot >= SLOT_COUNT) {
      this.#sink.onReply(reply);
      return;
    }
    if (redirect.kind === "moved") this.#routing.metrics.moved++;
    else this.#routing.metrics.ask++;
    if (redirect.kind === "moved") {
      const node = topology.noteMoved(redirect.slot, redirect.addr);
      this.#routing.resendInOrder(this.#sessionId, {
        delayMs: 0,
        send: () => pool.connFor(node, this.#sessionId).send(this.bytes, this),
      });
    } else {
      this.#routing.resendInOrder(this.#sessionId, {
        delayMs: 0,
        send: () => {
          const conn = pool.connFor(topology.nodeFor(redirect.addr), this.#sessionId);
          conn.send(ASKING, DISCARD);
          conn.send(this.bytes, this);
        },
      });
    }
  }

  onError(message: string): void {
    // A lost connection may mean a failed master: look for its successor.
    this.#routing.topology.requestRefresh();
    this.#sink.onError(message);
  }

  #resend(): void {
    this.sendTo(this.#routing.topology.masterOf(this.#slot));
  }

  /** Sends (again) to `node`, or fails when the slot has no master now. */
  sendTo(node: number): void {
    if (node < 0) {
      this.#sink.onError(_clusterDown(this.#routing.topology.ready));
      return;
    }
    this.#routing.pool.connFor(node, this.#sessionId).send(this.bytes, this);
  }
}
