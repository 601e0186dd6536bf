/** `redis_cluster` routing: the group is the key's slot; redirects are followed, never shown. */
import { keySlot } from "../hash/key_slot.ts";
import type { NodePool } from "../backend/node_pool.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import type { BufferLease } from "../io/buffer_pool.ts";
import type { ClusterTopology } from "../cluster/topology.ts";
import { parseRedirect, SLOT_COUNT } from "../cluster/slot_table.ts";
import { type CommandSpec, KEYLESS_SCRIPT_REPLY } from "../protocol/resp/commands.ts";
import { encodeCommandText, encodeError, OK_REPLY } from "../protocol/resp/encoder.ts";
import type { RedisRouting } from "./routing.ts";
import type { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { clusterForwardSlot, type ClusterIdentity, clusterLocalReply } from "./cluster_local.ts";
import { copies } from "../io/copy_slab.ts";
import { logDebug } from "../log.ts";

/** Most redirects or retries one request may take before it gets an error. */
const MAX_REDIRECTS = 5;
/** Longest a script's MOVED waits for a fresh slot map before it is passed on as sent, ms. */
const SCRIPT_MAP_WAIT_MS = 1000;
/** First retry delay after TRYAGAIN or CLUSTERDOWN, doubling each time, ms. */
const RETRY_BASE_MS = 25;
const ASKING = encodeCommandText("ASKING");
const MINUS = 0x2d; // "-"
const latin1 = new TextDecoder("latin1");

/** Ignores the reply to ASKING (the command after it carries the outcome). */
const DISCARD: ReplySink = { onReply() {}, onError() {} };

/**
 * Requests of one slot held back until the slot's requests in flight at another node are
 * answered. Resends (redirected or retried requests) go first: each was sent before any
 * request still waiting here arrived. Within each list, arrival order.
 */
interface SlotQueue {
  resends: Waiting[];
  fresh: Waiting[];
  /** True while #release runs for this slot (a send failing at once re-enters it). */
  releasing: boolean;
}

/** A held request and where it goes: resolved when its turn comes (the map may change). */
interface Waiting {
  request: ClusterRequest;
  /** The node a MOVED named; -1: the slot's master then. */
  node: number;
  /** The node an ASK named (ASKING goes first); null otherwise. */
  askAddr: string | null;
}

/**
 * Routes by slot over a topology; reads may rotate over replicas.
 *
 * Ordering: a client's requests for one slot go out on one connection in order, so a node
 * runs them in order. That breaks when the slot's owner changes while some are still in
 * flight at the old one: a later request would go straight to the new owner and run before
 * the earlier ones come back redirected (a GET before the SET it follows: a stale read).
 * So each slot's requests to masters are in flight at one node at a time: a request for
 * another node waits until the slot's requests at the old node are answered (or have
 * failed), and a redirected request is sent again before any request that waited.
 */
export class ClusterRouting implements RedisRouting {
  readonly topology: ClusterTopology;
  readonly pool: NodePool;
  readonly #readFromReplicas: boolean;
  readonly metrics: ClusterMetrics;
  readonly #identity: ClusterIdentity;
  #turn = 0;
  /** The cluster carries every PUBLISH to every node. */
  readonly sharedPubsub = true;
  /** Per client, the last resend still waiting (absent when none). */
  readonly #resends = new Map<number, Promise<void>>();
  /** Per slot: requests in flight at `#slotNode[slot]` (counted ones: not replica reads). */
  readonly #inFlight = new Int32Array(SLOT_COUNT);
  readonly #slotNode = new Int32Array(SLOT_COUNT).fill(-1);
  /** Slots with requests held back (see the class comment); empty almost always. */
  readonly #waiting = new Map<number, SlotQueue>();

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
    kind = 0,
    lane = 0,
  ): void {
    const master = this.topology.masterOf(slot);
    const node = readonly && this.#readFromReplicas
      ? this.topology.readerOf(slot, this.#turn++)
      : master;
    if (node < 0) {
      this.topology.requestRefresh();
      sink.onError(_clusterDown(this.topology.ready));
      return;
    }
    // The request keeps its own copy of the bytes: a redirect sends them again later.
    const request = new ClusterRequest(this, copies.copy(bytes), slot, sink, sessionId, lane);
    request.script = kind;
    if (this.#resends.size > 0 && this.#resends.has(sessionId)) {
      // An earlier request of this client waits to be sent again: keep the client's order.
      this.resendInOrder(sessionId, {
        delayMs: 0,
        send: () => this.dispatch(request, -1, null, false),
      });
      return;
    }
    if (node !== master) {
      // A replica read: replicas may lag anyway, so it neither waits nor holds others.
      request.node = node;
      this.pool.connFor(node, sessionId, lane).send(bytes, request);
      return;
    }
    this.dispatch(request, node, null, false);
  }

  /**
   * Sends `request` to `node` (-1: the slot's master; `askAddr`: ASKING first, there) now
   * when no request of its slot is in flight at another node and none waits before it;
   * else holds it until they are answered. `resend`: a redirected or retried request, which
   * goes before every new request held.
   */
  dispatch(
    request: ClusterRequest,
    node: number,
    askAddr: string | null,
    resend: boolean,
  ): void {
    const slot = request.slot;
    const queue = this.#waiting.size > 0 ? this.#waiting.get(slot) : undefined;
    if (queue === undefined || (resend && queue.resends.length === 0)) {
      const target = this.#targetOf(slot, node, askAddr);
      if (this.#inFlight[slot] === 0 || this.#slotNode[slot] === target || target < 0) {
        this.#sendNow(request, target, askAddr !== null);
        return;
      }
    }
    let held = queue;
    if (held === undefined) {
      held = { resends: [], fresh: [], releasing: false };
      this.#waiting.set(slot, held);
      logDebug(
        `slot ${slot}: requests wait for ${this.#inFlight[slot]} in flight at ` +
          `${this.pool.nodes[this.#slotNode[slot]]?.name} before going to another node`,
      );
    }
    // A new request goes where the map says once its turn comes, not where it said now.
    (resend ? held.resends : held.fresh).push({ request, node: resend ? node : -1, askAddr });
  }

  /** A counted request of `slot` left its node (answered, failed, or about to be resent). */
  settle(slot: number): void {
    if (--this.#inFlight[slot] === 0 && this.#waiting.size > 0) this.#release(slot);
  }

  /** Sends the held requests of `slot` in order, while they may go (see dispatch). */
  #release(slot: number): void {
    const queue = this.#waiting.get(slot);
    if (queue === undefined || queue.releasing) return;
    queue.releasing = true;
    try {
      for (const list of [queue.resends, queue.fresh]) {
        while (list.length > 0) {
          const { request, node, askAddr } = list[0];
          const target = this.#targetOf(slot, node, askAddr);
          const busy = this.#inFlight[slot] > 0 && this.#slotNode[slot] !== target;
          if (busy && target >= 0) return;
          list.shift();
          this.#sendNow(request, target, askAddr !== null);
        }
      }
    } finally {
      queue.releasing = false;
      if (queue.resends.length === 0 && queue.fresh.length === 0) this.#waiting.delete(slot);
    }
  }

  #targetOf(slot: number, node: number, askAddr: string | null): number {
    if (askAddr !== null) return this.topology.nodeFor(askAddr);
    // A node a MOVED named may have left the map (and been closed) since.
    if (node >= 0 && this.pool.isOpen(node)) return node;
    return this.topology.masterOf(slot);
  }

  /** Sends and counts `request` at `node`, or fails it when the slot has no master now. */
  #sendNow(request: ClusterRequest, node: number, asking: boolean): void {
    if (node < 0 || !this.pool.isOpen(node)) {
      request.fail(_clusterDown(this.topology.ready));
      return;
    }
    const slot = request.slot;
    this.#slotNode[slot] = node;
    this.#inFlight[slot]++;
    request.counted = true;
    request.node = node;
    const conn = this.pool.connFor(node, request.sessionId, request.lane);
    if (asking) conn.send(ASKING, DISCARD);
    conn.send(request.bytes, request);
  }

  /**
   * Sends a redirected or retried request again, after any resend of the same client still
   * waiting: a request retried later (TRYAGAIN, CLUSTERDOWN) must not be overtaken by the
   * client's next request, redirected at once (MOVED), or a read could miss the write before it.
   */
  resendInOrder(
    sessionId: number,
    resend: { delayMs: number; send: () => void; after?: Promise<unknown> },
  ): void {
    const waiting = this.#resends.get(sessionId);
    if (waiting === undefined && resend.delayMs === 0 && resend.after === undefined) {
      resend.send();
      return;
    }
    const start = (waiting ?? Promise.resolve()).then(() => resend.after);
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

  redirectNode(redirect: { kind: "moved" | "ask"; slot: number; addr: string }): number {
    if (redirect.kind === "ask") {
      this.metrics.ask++;
      return this.topology.nodeFor(redirect.addr);
    }
    this.metrics.moved++;
    return this.topology.noteMoved(redirect.slot, redirect.addr);
  }

  placementVersion(): number {
    return this.topology.refreshes;
  }

  refreshPlacement(): void {
    this.topology.requestRefresh();
  }

  broadcastGroups(): number[] {
    return this.topology.shardSlots();
  }

  crossGroupError(): Uint8Array {
    return encodeError("CROSSSLOT Keys in request don't hash to the same slot");
  }

  localReply(spec: CommandSpec, argv: readonly Uint8Array[], resp3 = false): Uint8Array | null {
    switch (spec.name) {
      case "cluster":
        // COUNTKEYSINSLOT/GETKEYSINSLOT with valid arguments go to the slot's master.
        return clusterForwardSlot(argv) >= 0
          ? null
          : clusterLocalReply(argv, this.#identity, resp3);
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
  readonly slot: number;
  readonly #sink: ReplySink;
  readonly sessionId: number;
  /** The pool lane its client uses (1: a RESP3 client's HELLO 3 connections). */
  readonly lane: number;
  /** True while counted in flight at a node for its slot (see ClusterRouting). */
  counted = false;
  /** The node it was last sent to (-1 before). */
  node = -1;
  /** A script's reply kind (SCRIPT_REPLY, KEYLESS_SCRIPT_REPLY), else 0: see #scriptError. */
  script = 0;
  #redirects = 0;

  // Positional (not an options object): one of these is made per request.
  constructor(
    routing: ClusterRouting,
    bytes: Uint8Array,
    slot: number,
    sink: ReplySink,
    sessionId: number,
    lane: number,
  ) {
    this.#routing = routing;
    this.bytes = bytes;
    this.slot = slot;
    this.#sink = sink;
    this.sessionId = sessionId;
    this.lane = lane;
  }

  onReply(reply: Uint8Array, owned?: boolean, lease?: BufferLease): void {
    if (reply[0] !== MINUS) {
      this.#leave();
      this.#sink.onReply(reply, owned, lease);
      return;
    }
    const message = latin1.decode(reply.subarray(1, reply.length - 2));
    const space = message.indexOf(" ");
    const code = space < 0 ? message : message.slice(0, space);
    if (code !== "MOVED" && code !== "ASK" && code !== "TRYAGAIN" && code !== "CLUSTERDOWN") {
      this.#leave();
      this.#sink.onReply(reply);
      return;
    }
    if (this.script !== 0) {
      this.#scriptError(reply, code, message);
      return;
    }
    const routing = this.#routing;
    const topology = routing.topology;
    if (++this.#redirects > MAX_REDIRECTS) {
      this.#leave();
      // The cluster's own error once retries are spent: clients match on its code.
      if (code === "TRYAGAIN" || code === "CLUSTERDOWN") this.#sink.onReply(reply);
      else this.#sink.onError(`too many redirects for slot ${this.slot}, last: ${message}`);
      return;
    }
    if (code === "TRYAGAIN" || code === "CLUSTERDOWN") {
      if (code === "CLUSTERDOWN") topology.requestRefresh();
      // It stays counted at this node while it waits: nothing of its slot may go elsewhere
      // before it.
      routing.resendInOrder(this.sessionId, {
        delayMs: RETRY_BASE_MS << (this.#redirects - 1),
        send: () => this.#resend(-1, null),
      });
      return;
    }
    const redirect = parseRedirect(message);
    if (redirect === null || redirect.slot >= SLOT_COUNT) {
      this.#leave();
      this.#sink.onReply(reply);
      return;
    }
    if (redirect.kind === "moved") {
      routing.metrics.moved++;
      const node = topology.noteMoved(redirect.slot, redirect.addr);
      routing.resendInOrder(this.sessionId, { delayMs: 0, send: () => this.#resend(node, null) });
    } else {
      routing.metrics.ask++;
      routing.resendInOrder(this.sessionId, {
        delayMs: 0,
        send: () => this.#resend(-1, redirect.addr),
      });
    }
  }

  /**
   * A script's error that reads as a redirect: the script may have run and returned it
   * (`redis.error_reply("MOVED ...")`), so it is never followed on trust. Sent again only
   * when a slot map fetched after it shows the node that answered serves the slot no more
   * (Redis checks a script's keys before running it, so it did not run there); otherwise the
   * client gets the error as Redis sent it. Without keys Redis never redirects: as sent.
   * ASK, TRYAGAIN and CLUSTERDOWN are passed on (the script may have run before failing).
   */
  #scriptError(reply: Uint8Array, code: string, message: string): void {
    const routing = this.#routing;
    const topology = routing.topology;
    if (code !== "MOVED" || this.script === KEYLESS_SCRIPT_REPLY) {
      if (code !== "TRYAGAIN") topology.requestRefresh();
      this.#leave();
      this.#sink.onReply(reply);
      return;
    }
    const redirect = parseRedirect(message);
    if (redirect === null || redirect.slot !== this.slot || ++this.#redirects > MAX_REDIRECTS) {
      topology.requestRefresh();
      this.#leave();
      this.#sink.onReply(reply);
      return;
    }
    const answered = this.node;
    const error = reply.slice(); // a view of the read buffer: kept past this call
    routing.resendInOrder(this.sessionId, {
      delayMs: 0,
      after: topology.freshMap(SCRIPT_MAP_WAIT_MS),
      send: () => {
        // A replica that answered (EVAL_RO with read_from_slave) still serves the slot.
        if (
          answered >= 0 && topology.masterOf(this.slot) >= 0 &&
          !topology.serves(this.slot, answered)
        ) {
          routing.metrics.moved++;
          this.#resend(-1, null);
        } else {
          this.#leave();
          this.#sink.onReply(error);
        }
      },
    });
  }

  /** A large reply under way is no redirect (those are one line): its sink may stream it. */
  onPartial(data: Uint8Array, start: number, end: number, lease: BufferLease): void {
    this.#sink.onPartial?.(data, start, end, lease);
  }

  onError(message: string): void {
    this.#leave();
    // A lost connection may mean a failed master: look for its successor.
    this.#routing.topology.requestRefresh();
    this.#sink.onError(message);
  }

  /** Fails without having been sent (the slot has no master now). */
  fail(message: string): void {
    this.#sink.onError(message);
  }

  /**
   * Sends again (queued behind its slot's requests at another node, if any), and only then
   * stops counting at the node that redirected it: requests of the slot held back must not
   * be let go before it.
   */
  #resend(node: number, askAddr: string | null): void {
    const wasCounted = this.counted;
    this.counted = false;
    this.#routing.dispatch(this, node, askAddr, true);
    if (wasCounted) this.#routing.settle(this.slot);
  }

  /** The request is done at its node (answered or failed). */
  #leave(): void {
    if (!this.counted) return;
    this.counted = false;
    this.#routing.settle(this.slot);
  }
}
