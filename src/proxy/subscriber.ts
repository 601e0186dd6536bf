/**
 * One client's Pub/Sub on the backends: a subscription connection per node it needs (taken
 * from the subscription pool, in push mode, closed when no longer needed or when the
 * client goes), each name subscribed on the node its mode puts it on, messages written to
 * the client at a reply boundary, confirmations answered once the backends confirmed.
 *
 * Where a name lives: in `redis` mode a channel or shard channel on the ring's node for its
 * name (where PUBLISH of that name goes), a pattern on every node (a PUBLISH reaches only
 * its channel's node); in `redis_cluster` a shard channel on its slot's master (where
 * SPUBLISH goes), classic channels and patterns on the master of slot 0, where Aster sends
 * every PUBLISH (the cluster carries it to every node anyway; on that one node PUBLISH
 * counts every subscriber of Aster's, as one redis-server would). When the routing changes (ejection, rejoin, new slot map, reload)
 * or a connection fails, the names that moved or were lost are subscribed again.
 */
import type { NodeConn, PushHandler } from "../backend/node_conn.ts";
import type { PinnedPool } from "../backend/pinned_pool.ts";
import { OWN_FROM } from "../io/write_batcher.ts";
import { logDebug, logWarn } from "../log.ts";
import type { ReplyTarget, SubscriptionChange, Subscriptions } from "../protocol/protocol.ts";
import {
  keyBytes,
  MARKER_PING,
  messageRunLength,
  messageSubscription,
  notificationPlacement,
  PushKind,
  pushKind,
  shardUnsubscribed,
  SubKind,
  type SubKindValue,
  subscriptionCommand,
} from "../protocol/resp/pubsub.ts";
import { CLASSIC_PUBSUB_GROUP, type Routing } from "./routing.ts";

/** Where the subscriber writes and counts. */
export interface SubscriberHost {
  /**
   * Writes a message frame to the client after the replies it is owed already; an
   * `outOfBand` one (RESP3) not after a blocked request's.
   */
  deliver(frame: Uint8Array, isView: boolean, outOfBand: boolean): void;
  /** The worker's gauges of subscribed clients, channels, patterns, shard channels. */
  readonly gauges: PubsubGauges;
}

/** Per worker and cluster: what its clients subscribe (INFO, /metrics). */
export interface PubsubGauges {
  clients: number;
  channels: number;
  patterns: number;
  shardChannels: number;
}

/** Where the subscriber finds the backends now (a reload replaces both). */
export interface SubscriberUpstream {
  readonly routing: Routing;
  readonly subscriptions: PinnedPool | null;
}

/** How often the placement is checked against the routing, ms. */
const CHECK_MS = 100;
/** Waits between attempts after a subscription connection failed, ms. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

/**
 * Done when every connection a change touched confirmed (the marker PING after it came
 * back, or the connection is gone): a client's confirmation, or the next step of a move.
 */
interface Confirmation {
  remaining: number;
  done(): void;
}

/** One subscription connection to one node. */
class SubConn implements PushHandler {
  /** Names placed here (every kind). */
  names = 0;
  /** Per marker PING sent, its confirmation (null: Aster's own re-subscription). */
  readonly markers: (Confirmation | null)[] = [];

  constructor(
    readonly node: number,
    readonly conn: NodeConn,
    readonly pool: PinnedPool,
    readonly owner: Subscriber,
  ) {}

  onFrame(frame: Uint8Array, owned: boolean): void {
    this.owner.onFrame(this, frame, owned);
  }

  onDown(reason: string): void {
    this.owner.onDown(this, reason);
  }

  takeRun(data: Uint8Array, start: number, end: number): number {
    return this.owner.takeRun(this, data, start, end);
  }
}

/** Names of one kind to (un)subscribe on one connection, in one command each way. */
type Batch = Map<SubConn, { add: string[][]; remove: string[][] }>;

/** A subscribed client's connections and placements. */
export class Subscriber {
  readonly #host: SubscriberHost;
  readonly #upstream: SubscriberUpstream;
  #subs: Subscriptions | null = null;
  /** The routing and pool the placements were made with. */
  #routing: Routing | null = null;
  #pool: PinnedPool | null = null;
  #version = -1;
  /** Per kind: name -> nodes it is subscribed on. */
  readonly #placed: [Map<string, number[]>, Map<string, number[]>, Map<string, number[]>] = [
    new Map(),
    new Map(),
    new Map(),
  ];
  readonly #conns = new Map<number, SubConn>();
  /** Some names are not where they should be: check again (after #retryAt). */
  #dirty = false;
  #retryAt = 0;
  #backoff = 0;
  #closed = false;
  /** Client unsubscriptions whose confirmation has not been answered yet. */
  #unsubscribing = 0;
  /** What this client adds to the gauges now. */
  readonly #reported = [0, 0, 0];
  #reportedClient = false;

  /** The lane of the subscription connections: 1 (their handshake said HELLO 3) for RESP3. */
  readonly #lane: number;

  /**
   * `lane`: the backend connections' lane of the client's protocol (see PinnedPool): a
   * RESP3 client's subscription connections say HELLO 3, so messages come as `>` pushes.
   */
  constructor(host: SubscriberHost, upstream: SubscriberUpstream, lane = 0) {
    this.#host = host;
    this.#upstream = upstream;
    this.#lane = lane;
  }

  /** The lane of its subscription connections (1: RESP3). */
  get lane(): number {
    return this.#lane;
  }

  /** True while the client subscribes to anything. */
  get subscribed(): boolean {
    return (this.#subs?.total ?? 0) > 0;
  }

  /** Connections open now (tests). */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /**
   * The client's subscriptions changed (`changes`): subscribe or unsubscribe them on the
   * nodes they live on, then answer `reply` to `target` once those nodes confirmed.
   */
  change(
    subs: Subscriptions,
    changes: readonly SubscriptionChange[],
    reply: Uint8Array,
    target: ReplyTarget,
  ): void {
    this.#subs = subs;
    if (this.#closed) {
      target.answer(reply);
      return;
    }
    this.#followRouting();
    // While an unsubscription is on its way, messages are checked against what the client
    // still subscribes (see onFrame); otherwise they need no look at their name.
    const unsubscribing = changes.some((change) => !change.subscribe && change.changed.length > 0);
    if (unsubscribing) this.#unsubscribing++;
    const confirmation: Confirmation = {
      remaining: 0,
      done: () => {
        if (unsubscribing) this.#unsubscribing--;
        target.answer(reply);
      },
    };
    const batch: Batch = new Map();
    for (const change of changes) {
      const placed = this.#placed[change.kind];
      for (const key of change.changed) {
        if (change.subscribe) this.#place(change.kind, key, batch);
        else {
          for (const node of placed.get(key) ?? []) {
            const sub = this.#conns.get(node);
            if (sub !== undefined) _entry(batch, sub).remove[change.kind].push(key);
          }
          this.#unplace(change.kind, key);
        }
      }
    }
    this.#send(batch, confirmation);
    this.#report();
    if (confirmation.remaining === 0) confirmation.done();
    this.#closeIdle();
    this.#keepChecking();
  }

  /** The client is gone: every subscription connection is closed (never pooled). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    _unwatch(this);
    for (const sub of [...this.#conns.values()]) this.#drop(sub);
    for (const placed of this.#placed) placed.clear();
    this.#subs = null;
    this.#report();
  }

  /**
   * The messages at `start` of a subscription connection's buffer, written to the client as
   * one run (one copy); none while an unsubscription is on its way (each message's name is
   * checked then, in onFrame) or from a connection no longer in use.
   */
  takeRun(sub: SubConn, data: Uint8Array, start: number, end: number): number {
    if (this.#unsubscribing > 0 || this.#conns.get(sub.node) !== sub) return 0;
    // A frame of OWN_FROM bytes or more goes through onFrame, handed on without a copy.
    const length = messageRunLength(data, start, end, OWN_FROM);
    if (length > 0) {
      this.#host.deliver(data.subarray(start, start + length), true, this.#lane === 1);
    }
    return length;
  }

  /** A frame from a subscription connection. */
  onFrame(sub: SubConn, frame: Uint8Array, owned: boolean): void {
    if (this.#conns.get(sub.node) !== sub) return;
    switch (pushKind(frame)) {
      case PushKind.message: {
        if (this.#unsubscribing > 0) {
          // A message of a name the client no longer subscribes (its UNSUBSCRIBE is planned
          // already) is not written after the confirmation.
          const subs = this.#subs;
          const target = messageSubscription(frame);
          if (subs === null || target === null || !subs.sets[target.kind].has(target.key)) return;
        }
        this.#host.deliver(frame, !owned, this.#lane === 1);
        return;
      }
      case PushKind.pong: {
        const confirmation = sub.markers.shift();
        // Everything before the marker went through: the next failure waits little again.
        if (!this.#dirty) this.#backoff = 0;
        if (confirmation != null && --confirmation.remaining === 0) confirmation.done();
        this.#closeIdle();
        this.#keepChecking();
        return;
      }
      case PushKind.confirmation: {
        // Redis Cluster unsubscribes a shard channel whose slot moved away: place it again.
        const key = shardUnsubscribed(frame);
        if (key === null || !this.#placedOn(SubKind.shard, key, sub.node)) return;
        this.#lose(SubKind.shard, key, sub);
        this.#routing?.refreshPlacement?.();
        return;
      }
      case PushKind.error: {
        // A shard channel sent to a node that no longer owns its slot (MOVED): every shard
        // channel of this connection is placed again once the slot map is fresh.
        logDebug(`subscription on node ${sub.node}: ${new TextDecoder().decode(frame).trim()}`);
        for (const [key, nodes] of this.#placed[SubKind.shard]) {
          if (nodes.includes(sub.node)) this.#lose(SubKind.shard, key, sub);
        }
        this.#routing?.refreshPlacement?.();
        this.#delayRetry();
        return;
      }
    }
  }

  /** A subscription connection failed: its names are placed again after a pause. */
  onDown(sub: SubConn, reason: string): void {
    if (this.#conns.get(sub.node) !== sub) return;
    logDebug(`subscription connection to node ${sub.node} lost: ${reason}`);
    // A lost node may be a failed master: its names go where a fresh map says.
    this.#routing?.refreshPlacement?.();
    this.#delayRetry();
    this.#drop(sub);
    this.#dirty = true;
  }

  /** The next placement attempt waits longer each time one fails (100 ms up to 2 s). */
  #delayRetry(): void {
    this.#backoff = Math.min(RETRY_MAX_MS, this.#backoff === 0 ? RETRY_MIN_MS : this.#backoff * 2);
    this.#retryAt = performance.now() + this.#backoff;
  }

  /** Subscribes `key` where it lives, adding to `batch`; unplaceable names wait for a check. */
  #place(kind: SubKindValue, key: string, batch: Batch): void {
    const nodes = this.#placed[kind].get(key) ?? [];
    for (const node of this.#targets(kind, key)) {
      if (nodes.includes(node)) continue;
      const sub = this.#connFor(node);
      if (sub === null) {
        this.#dirty = true;
        continue;
      }
      nodes.push(node);
      sub.names++;
      _entry(batch, sub).add[kind].push(key);
    }
    if (nodes.length > 0) this.#placed[kind].set(key, nodes);
  }

  /** Forgets where `key` is subscribed (its connections' counts go down). */
  #unplace(kind: SubKindValue, key: string): void {
    const placed = this.#placed[kind];
    for (const node of placed.get(key) ?? []) {
      const sub = this.#conns.get(node);
      if (sub !== undefined) sub.names--;
    }
    placed.delete(key);
  }

  /** `key` is no longer subscribed on `sub`'s node (the backend said so). */
  #lose(kind: SubKindValue, key: string, sub: SubConn): void {
    const nodes = this.#placed[kind].get(key);
    if (nodes === undefined) return;
    const at = nodes.indexOf(sub.node);
    if (at < 0) return;
    nodes.splice(at, 1);
    sub.names--;
    if (nodes.length === 0) this.#placed[kind].delete(key);
    this.#dirty = true;
  }

  #placedOn(kind: SubKindValue, key: string, node: number): boolean {
    return this.#placed[kind].get(key)?.includes(node) ?? false;
  }

  /** The nodes `key` must be subscribed on now. */
  #targets(kind: SubKindValue, key: string): number[] {
    const routing = this.#routing!;
    const notification = notificationPlacement(kind, key);
    if (notification === "every") return _everyNode(routing);
    if (notification !== null) {
      // A key's notifications come from the node of that key.
      const group = routing.groupOf(notification);
      const node = group < 0 ? -1 : routing.nodeOf(group);
      return node < 0 ? [] : [node];
    }
    if (routing.sharedPubsub === true && kind !== SubKind.shard) {
      // Redis Cluster: classic channels and patterns on one node, where PUBLISH goes too,
      // so its receiver count is every subscriber's (see CLASSIC_PUBSUB_GROUP).
      const node = routing.nodeOf(CLASSIC_PUBSUB_GROUP);
      return node < 0 ? [] : [node];
    }
    if (kind === SubKind.pattern || routing.scattered === true) return _everyNode(routing);
    const group = routing.groupOf(keyBytes(key));
    const node = group < 0 ? -1 : routing.nodeOf(group);
    return node < 0 ? [] : [node];
  }

  /** This client's connection to `node`, opened on first use; null when none can be had. */
  #connFor(node: number): SubConn | null {
    const existing = this.#conns.get(node);
    if (existing !== undefined) return existing;
    const pool = this.#pool;
    const conn = pool?.acquire(node, this.#lane) ?? null;
    if (conn === null) {
      // At the cap, or the node is gone: tried again later, less and less often.
      if (this.#backoff < RETRY_MAX_MS) {
        logWarn(`subscription connection to node ${node}: none available (cap or node closed)`);
      }
      this.#backoff = RETRY_MAX_MS;
      this.#retryAt = performance.now() + this.#backoff;
      return null;
    }
    const sub = new SubConn(node, conn, pool!, this);
    this.#conns.set(node, sub);
    conn.setPushHandler(sub);
    return sub;
  }

  /** Writes each connection's (un)subscribe commands and a marker PING after them. */
  #send(batch: Batch, confirmation: Confirmation | null): void {
    for (const [sub, { add, remove }] of batch) {
      let sent = true;
      for (const kind of [SubKind.channel, SubKind.pattern, SubKind.shard]) {
        if (remove[kind].length > 0) {
          sent &&= sub.conn.sendPush(subscriptionCommand(kind, false, remove[kind].map(keyBytes)));
        }
        if (add[kind].length > 0) {
          sent &&= sub.conn.sendPush(subscriptionCommand(kind, true, add[kind].map(keyBytes)));
        }
      }
      if (!sent || !sub.conn.sendPush(MARKER_PING)) continue;
      sub.markers.push(confirmation);
      if (confirmation !== null) confirmation.remaining++;
    }
  }

  /** Closes a connection and forgets what was placed on it; its confirmations are answered. */
  #drop(sub: SubConn): void {
    if (this.#conns.get(sub.node) === sub) this.#conns.delete(sub.node);
    sub.conn.setPushHandler(null);
    sub.pool.discard(sub.node, sub.conn);
    for (const placed of this.#placed) {
      for (const [key, nodes] of placed) {
        const at = nodes.indexOf(sub.node);
        if (at < 0) continue;
        nodes.splice(at, 1);
        if (nodes.length === 0) placed.delete(key);
      }
    }
    // Their subscriptions are recorded and will be placed again: not kept waiting.
    for (const confirmation of sub.markers.splice(0)) {
      if (confirmation !== null && --confirmation.remaining === 0) confirmation.done();
    }
  }

  /** Closes connections with nothing subscribed and nothing awaited. */
  #closeIdle(): void {
    for (const sub of [...this.#conns.values()]) {
      if (sub.names <= 0 && sub.markers.length === 0) this.#drop(sub);
    }
  }

  /**
   * A reload gave sessions a new routing and pool: every connection of the old generation
   * is closed and every name placed anew.
   */
  #followRouting(): void {
    const upstream = this.#upstream;
    if (this.#routing === upstream.routing && this.#pool === upstream.subscriptions) return;
    for (const sub of [...this.#conns.values()]) this.#drop(sub);
    this.#routing = upstream.routing;
    this.#pool = upstream.subscriptions;
    this.#version = this.#routing.placementVersion?.() ?? 0;
    this.#dirty = true;
  }

  /** Keeps the placement checked while the client subscribes anything (see _checked). */
  #keepChecking(): void {
    if ((this.#subs?.total ?? 0) > 0 || this.#conns.size > 0) _watch(this);
    else _unwatch(this);
  }

  /** Places again what moved (a new ring or slot map, a reload) or was lost (the ticker). */
  check(): void {
    if (this.#closed || this.#subs === null) return;
    const upstream = this.#upstream;
    const moved = this.#routing !== upstream.routing || this.#pool !== upstream.subscriptions ||
      (this.#routing.placementVersion?.() ?? 0) !== this.#version;
    if (!moved && !(this.#dirty && performance.now() >= this.#retryAt)) return;
    this.#followRouting();
    this.#version = this.#routing!.placementVersion?.() ?? 0;
    this.#dirty = false;
    const batch: Batch = new Map();
    // Where every node gets every PUBLISH (Redis Cluster), a name subscribed on two nodes
    // at once would get each message twice: it is unsubscribed on the old node first, and
    // subscribed on the new one once the old confirmed. Elsewhere (the ring) a PUBLISH
    // reaches one node: subscribed on the new node first, so nothing is missed.
    const breakFirst = this.#routing!.sharedPubsub === true;
    let broken = false;
    for (const kind of [SubKind.channel, SubKind.pattern, SubKind.shard]) {
      for (const key of this.#subs.sets[kind]) {
        const targets = this.#targets(kind, key);
        const nodes = this.#placed[kind].get(key);
        const stale = nodes?.some((node) => !targets.includes(node)) ?? false;
        if (stale && breakFirst) broken = true;
        else this.#place(kind, key, batch);
        if (nodes === undefined) continue;
        for (const node of [...nodes]) {
          if (targets.includes(node)) continue;
          const sub = this.#conns.get(node);
          if (sub === undefined) continue;
          _entry(batch, sub).remove[kind].push(key);
          sub.names--;
          nodes.splice(nodes.indexOf(node), 1);
        }
        if (nodes.length === 0) this.#placed[kind].delete(key);
      }
    }
    // After a break, the names are placed again once the old nodes confirmed.
    const next: Confirmation | null = broken
      ? {
        remaining: 0,
        done: () => {
          this.#dirty = true;
          this.#retryAt = 0;
          this.check();
        },
      }
      : null;
    for (const [sub, { add, remove }] of batch) {
      logDebug(
        `subscriptions on node ${sub.node}: +${add.flat().length} -${remove.flat().length}` +
          (broken ? " (moved off first)" : ""),
      );
    }
    this.#send(batch, next);
    if (next !== null && next.remaining === 0) this.#dirty = true;
    this.#closeIdle();
    this.#keepChecking();
  }

  /** Brings the gauges to this client's counts. */
  #report(): void {
    const gauges = this.#host.gauges;
    const sets = this.#subs?.sets;
    const now = [sets?.[0].size ?? 0, sets?.[1].size ?? 0, sets?.[2].size ?? 0];
    gauges.channels += now[0] - this.#reported[0];
    gauges.patterns += now[1] - this.#reported[1];
    gauges.shardChannels += now[2] - this.#reported[2];
    this.#reported.splice(0, 3, ...now);
    const subscribed = now[0] + now[1] + now[2] > 0;
    if (subscribed !== this.#reportedClient) gauges.clients += subscribed ? 1 : -1;
    this.#reportedClient = subscribed;
  }
}

/** Every node (every master) of the routing, once each. */
function _everyNode(routing: Routing): number[] {
  const nodes: number[] = [];
  for (const group of routing.broadcastGroups()) {
    const node = routing.nodeOf(group);
    if (node >= 0 && !nodes.includes(node)) nodes.push(node);
  }
  return nodes;
}

function _entry(batch: Batch, sub: SubConn): { add: string[][]; remove: string[][] } {
  let entry = batch.get(sub);
  if (entry === undefined) {
    entry = { add: [[], [], []], remove: [[], [], []] };
    batch.set(sub, entry);
  }
  return entry;
}

/**
 * The subscribers whose placement is checked, by one timer per worker (not one per client):
 * each check costs a few comparisons unless the routing moved.
 */
const _checked = new Set<Subscriber>();
let _ticker: ReturnType<typeof setInterval> | undefined;

function _watch(subscriber: Subscriber): void {
  _checked.add(subscriber);
  _ticker ??= setInterval(_checkAll, CHECK_MS);
}

function _unwatch(subscriber: Subscriber): void {
  _checked.delete(subscriber);
  if (_checked.size === 0 && _ticker !== undefined) {
    clearInterval(_ticker);
    _ticker = undefined;
  }
}

function _checkAll(): void {
  for (const subscriber of _checked) subscriber.check();
}
