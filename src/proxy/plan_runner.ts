/**
 * Carries out the plans of one client's requests, the same for every protocol: a local
 * answer, a forward to one group, a fan-out and merge, or a request on the client's pinned
 * connection. The protocol's planner says what; this says how (slots, routing, pins).
 */
import type { NodeConn } from "../backend/node_conn.ts";
import type { PinnedPool } from "../backend/pinned_pool.ts";
import { Plan, PlanKind, type ReplySink, type RequestPlanner } from "../protocol/protocol.ts";
import type { RedisRouting, Routing } from "./routing.ts";
import { PinnedRedirects } from "./pinned_redirects.ts";
import { encodeCommandText } from "../protocol/resp/encoder.ts";
import type { ReplySlot } from "./reply_slot.ts";
import { type PubsubGauges, Subscriber } from "./subscriber.ts";
import type { ClientState } from "../metrics/worker_metrics.ts";

/**
 * How much longer than its own timeout a blocking command may wait for its reply before
 * Aster gives up on it (its dedicated connection has no read_timeout): the backend's own
 * timer, the network and a busy backend get this much slack.
 */
export const BLOCKING_TIMEOUT_MARGIN_MS = 1000;

/**
 * Where a data plane's sessions send what their plans forward. A reload replaces its fields
 * in place: clients use the new backends from their next request on.
 */
export interface Upstream {
  routing: Routing;
  /** Dedicated connections for pinned clients (null: no plan pins in this mode). */
  pins: PinnedPool | null;
  /** Subscription connections (Pub/Sub), a pool of their own (null: no Pub/Sub in this mode). */
  subscriptions: PinnedPool | null;
}

/** What the runner needs of its session. */
export interface PlanHost {
  readonly id: number;
  /** True when no more requests should be handled now (see Session.draining). */
  readonly draining: boolean;
  /** Takes the next reply slot in request order. */
  reserve(): ReplySlot;
  /** The next slot's reply is not written to the client (CLIENT REPLY OFF, SKIP). */
  silenceNext(): void;
  /** Answers the next slot with a local reply, then closes the client after it. */
  answerAndClose(reply: Uint8Array): void;
  /**
   * Times the request at `[start, end)` of `buf` for SLOWLOG from now (see
   * Session.noteRequest).
   */
  noteRequest(buf: Uint8Array, start: number, end: number): void;
  /** Writes a Pub/Sub message to the client after the replies owed before it. */
  deliver(frame: Uint8Array, isView: boolean): void;
  /** The worker's Pub/Sub gauges. */
  readonly gauges: PubsubGauges;
  /** Requests sent and not yet answered. */
  readonly inFlight: number;
  /** Handles no more requests until none is in flight, then calls `sendHeld()`. */
  waitForInFlight(): void;
  /** Gauges of the client's cluster: clients per state (see CLIENT_STATES). */
  readonly clientStates: Record<ClientState, number>;
}

/** A client's dedicated connection, and the node it goes to (for the pool it returns to). */
interface Pin {
  conn: NodeConn;
  node: number;
  /** The group it was taken for (a plan for another group does not use it). */
  group: number;
  /** The pool lane it was opened in (1: it said HELLO 3, for a RESP3 client). */
  lane: number;
  pins: PinnedPool;
}

/**
 * Gives the pinned connection back once the releasing request's reply is in. The client is
 * unpinned as soon as the request is sent, so a request pipelined after it (a new WATCH)
 * takes a fresh connection rather than one about to go back to the pool; until the reply,
 * the runner still closes it if the client goes (a BLPOP must not pop for a vanished client).
 */
class ReleaseAfterReply implements ReplySink {
  readonly #slot: ReplySink;
  readonly #pin: Pin;
  readonly #runner: PlanRunner;

  constructor(slot: ReplySink, pin: Pin, runner: PlanRunner) {
    this.#slot = slot;
    this.#pin = pin;
    this.#runner = runner;
  }

  onReply(reply: Uint8Array, owned?: boolean): void {
    this.#slot.onReply(reply, owned);
    this.#runner.released(this.#pin, false);
  }

  onError(message: string): void {
    this.#slot.onError(message);
    this.#runner.released(this.#pin, true);
  }
}

/**
 * A blocked client, counted until its blocking request's reply (or error) is in; its
 * runner knows the connection meanwhile (see PlanRunner.halfCloseBlocked).
 */
class BlockedUntilReply implements ReplySink {
  readonly #sink: ReplySink;
  readonly #runner: PlanRunner;
  readonly #conn: NodeConn;

  constructor(sink: ReplySink, runner: PlanRunner, conn: NodeConn) {
    this.#sink = sink;
    this.#runner = runner;
    this.#conn = conn;
    runner.blockedOn(conn, 1);
  }

  onReply(reply: Uint8Array, owned?: boolean): void {
    this.#runner.blockedOn(this.#conn, -1);
    this.#sink.onReply(reply, owned);
  }

  onError(message: string): void {
    this.#runner.blockedOn(this.#conn, -1);
    this.#sink.onError(message);
  }
}

/** Sent before a blocking request an ASK sent elsewhere (redis_cluster mode). */
const ASKING = encodeCommandText("ASKING");

/** Drops the replies of a plan's prelude (its client already had them answered). */
const DROP_REPLY: ReplySink = { onReply() {}, onError() {} };

/** `#lastConn` when the last request went over the client's subscription connections. */
const SUBSCRIPTIONS = -1;

/** The executor of one session's plans. */
export class PlanRunner {
  readonly #host: PlanHost;
  readonly #planner: RequestPlanner;
  readonly #upstream: Upstream;
  /** One plan, refilled for every request: no object per request. */
  readonly #plan = new Plan();
  /** SLOWLOG times requests only for planners that can show their arguments again. */
  readonly #timed: boolean;
  #pin: Pin | null = null;
  /** The client is gone (close()): nothing more is sent for it. */
  #closed = false;

  /**
   * True once the client is gone and its dedicated connections closed, or leaving (a blocked
   * request's connection half-closed at its EOF): nothing new is sent for it.
   */
  get clientGone(): boolean {
    return this.#closed || this.#leaving;
  }

  /** A blocking request on `conn` was sent (`delta` 1) or answered (-1): counted, per client too. */
  blockedOn(conn: NodeConn, delta: 1 | -1): void {
    this.#host.clientStates.blocked += delta;
    const count = (this.#blockedConns.get(conn) ?? 0) + delta;
    if (count > 0) this.#blockedConns.set(conn, count);
    else this.#blockedConns.delete(conn);
  }

  /**
   * The client ended its input while blocked: each connection a blocking request of its is in
   * flight on is half-closed, so the backend frees that client as redis-server frees one that
   * leaves (nothing popped), after any reply it sent first, which still arrives; the
   * connection's close then fails what is left on it. False when none is, or one cannot be
   * half-closed (the session then closes the client itself).
   */
  halfCloseBlocked(): boolean {
    if (this.#blockedConns.size === 0) return false;
    this.#leaving = true;
    let all = true;
    for (const conn of this.#blockedConns.keys()) all = conn.closeWrite() && all;
    return all;
  }

  /**
   * The client ended its input and every request it sent is planned: its dedicated
   * connections' replies are still written, but each within a bound (NodeConn.clientLeft),
   * so a backend gone quiet does not keep the session.
   */
  clientLeft(): void {
    this.#pin?.conn.clientLeft();
    for (const pin of this.#releasing ?? []) pin.conn.clientLeft();
  }
  /** Pins whose releasing request waits for its reply (closed if the client goes first). */
  #releasing: Pin[] | null = null;
  /** The client's Pub/Sub connections, made on its first (un)subscribe. */
  #subscriber: Subscriber | null = null;
  /** Dedicated connections with a blocking request of this client's in flight, and how many. */
  readonly #blockedConns = new Map<NodeConn, number>();
  /** halfCloseBlocked() was called: the client is leaving (see clientGone). */
  #leaving = false;
  /**
   * The backend connection the last request went over: a shared lane (its number) or a
   * dedicated NodeConn. Redis runs one connection's requests in order, not two connections';
   * so a request for another connection waits until the ones in flight are answered (a GET
   * after WATCH/MULTI/SET/EXEC must see the SET, a BLPOP after an RPUSH must find the element).
   */
  #lastConn: number | NodeConn = 0;
  /** `#plan` holds a request waiting for that (see PlanHost.waitForInFlight). */
  #holding = false;
  /** Where the held request lies, for SLOWLOG: its buffer and `[start, end)` in it. */
  #heldBuf: Uint8Array | null = null;
  #heldStart = 0;
  #heldEnd = 0;

  constructor(host: PlanHost, planner: RequestPlanner, upstream: Upstream) {
    this.#host = host;
    this.#planner = planner;
    this.#upstream = upstream;
    this.#timed = planner.requestArgs !== undefined;
  }

  /** Bytes the partial request left in the buffer is known to need (RequestPlanner.neededBytes). */
  get neededBytes(): number {
    return this.#planner.neededBytes ?? 0;
  }

  /** The planner's view of a request's arguments (for SLOWLOG). */
  requestArgs(buf: Uint8Array, start: number, end: number): readonly Uint8Array[] | null {
    return this.#planner.requestArgs?.(buf, start, end) ?? null;
  }

  /** True while the client holds a dedicated connection. */
  get pinned(): boolean {
    return this.#pin !== null;
  }

  /** True while the client holds a dedicated connection or waits for a reply on one. */
  get holdsDedicated(): boolean {
    return this.#pin !== null || (this.#releasing !== null && this.#releasing.length > 0);
  }

  /**
   * Plans and carries out every complete request in `buf[start, end)` until the session
   * stops taking requests; returns the bytes consumed. Throws ProtocolError.
   */
  feed(buf: Uint8Array, start: number, end: number): number {
    const host = this.#host;
    const plan = this.#plan;
    let at = start;
    while (!host.draining) {
      const size = this.#planner.next(buf, at, end, plan);
      if (size < 0) break;
      if (plan.kind !== PlanKind.none) {
        if (host.inFlight > 0 && this.#changesConnection(plan)) {
          // The plan's views stay valid: the session reads nothing until sendHeld(). Its
          // SLOWLOG time starts then, as redis-server's starts once the ones before ran.
          this.#holding = true;
          this.#heldBuf = buf;
          this.#heldStart = at;
          this.#heldEnd = at + size;
          host.waitForInFlight();
          return at + size - start;
        }
        this.#start(plan, buf, at, at + size);
      }
      at += size;
    }
    return at - start;
  }

  /** Sends the request held until the ones in flight were answered. */
  sendHeld(): void {
    if (!this.#holding) return;
    this.#holding = false;
    const buf = this.#heldBuf!;
    this.#heldBuf = null;
    this.#start(this.#plan, buf, this.#heldStart, this.#heldEnd);
  }

  /** Drops the held request unsent (its client is gone). */
  dropHeld(): void {
    this.#holding = false;
    this.#heldBuf = null;
    this.#plan.clear();
  }

  /** Times, silences if it must, and runs the request at `[start, end)` of `buf`. */
  #start(plan: Plan, buf: Uint8Array, start: number, end: number): void {
    const host = this.#host;
    if (this.#timed) host.noteRequest(buf, start, end);
    if (plan.silent) host.silenceNext();
    this.#run(plan);
    plan.clear();
  }

  /** True when `plan` goes over another backend connection than the last request. */
  #changesConnection(plan: Plan): boolean {
    switch (plan.kind) {
      case PlanKind.forward:
      case PlanKind.fanOut:
        return this.#lastConn !== plan.lane;
      case PlanKind.pinned: {
        const pin = this.#pin;
        const reuses = pin !== null && !(plan.release && plan.group !== pin.group);
        return !reuses || this.#lastConn !== pin.conn;
      }
      case PlanKind.subscribe:
        return this.#lastConn !== SUBSCRIPTIONS;
      default:
        return false;
    }
  }

  #run(plan: Plan): void {
    const host = this.#host;
    switch (plan.kind) {
      case PlanKind.local:
        if (plan.closeAfter) host.answerAndClose(plan.reply);
        else host.reserve().answer(plan.reply);
        return;
      case PlanKind.forward: {
        this.#lastConn = plan.lane;
        const slot = host.reserve();
        const sink = plan.sink;
        const routing = this.#upstream.routing;
        const prelude = plan.prelude;
        if (prelude !== null) {
          // A transaction's MULTI and queued commands, their replies dropped: sent in this
          // one synchronous step with the request after them, so nothing else on the shared
          // connection comes between (it appends to one write batch, in order).
          for (const bytes of prelude) {
            routing.send(plan.group, bytes, DROP_REPLY, host.id, false, 0, plan.lane);
          }
        }
        if (sink === null) {
          routing.send(
            plan.group,
            plan.bytes,
            slot,
            host.id,
            plan.readonly,
            plan.replyKind,
            plan.lane,
          );
          return;
        }
        sink.bind(slot);
        routing.send(
          plan.group,
          plan.bytes,
          sink,
          host.id,
          plan.readonly,
          plan.replyKind,
          plan.lane,
        );
        return;
      }
      case PlanKind.fanOut: {
        const fanOut = plan.fanOut!;
        this.#lastConn = plan.lane;
        fanOut.bind(host.reserve());
        const routing = this.#upstream.routing;
        for (let i = 0; i < fanOut.parts; i++) {
          const bytes = fanOut.requestOf(i);
          routing.send(
            fanOut.groupOf(i),
            bytes,
            fanOut.sinkFor(i),
            host.id,
            plan.readonly,
            plan.replyKind,
            plan.lane,
          );
        }
        return;
      }
      case PlanKind.pinned:
        this.#runPinned(plan);
        return;
      case PlanKind.subscribe: {
        const slot = host.reserve();
        // RESET of a client that watched keys: its pinned connection closes (unwatched).
        if (plan.release) this.unpin(true);
        this.#lastConn = SUBSCRIPTIONS;
        // A client that changed protocol since its last subscription gets connections of
        // its new lane (HELLO is refused while it subscribes anything).
        if (this.#subscriber !== null && this.#subscriber.lane !== plan.lane) {
          this.#subscriber.close();
          this.#subscriber = null;
        }
        this.#subscriber ??= new Subscriber(host, this.#upstream, plan.lane);
        this.#subscriber.change(plan.subscriptions!, plan.changes!, plan.reply, slot);
        return;
      }
    }
  }

  /** True while the client subscribes to anything (Pub/Sub). */
  get subscribed(): boolean {
    return this.#subscriber?.subscribed ?? false;
  }

  /** Subscription connections open now (tests). */
  get subscriptionConnections(): number {
    return this.#subscriber?.connectionCount ?? 0;
  }

  /** The client is gone: its pinned and subscription connections are closed. */
  close(): void {
    this.#closed = true;
    this.dropHeld();
    this.unpin(true);
    this.#subscriber?.close();
  }

  /** Sends on the client's dedicated connection, taking one first when it has none. */
  #runPinned(plan: Plan): void {
    const slot = this.#host.reserve();
    let pin = this.#pin;
    // A releasing request for another group than the pin's (a BLPOP elsewhere while keys
    // are watched) takes a connection of its own for that one request.
    if (pin === null || (plan.release && plan.group !== pin.group)) {
      const fresh = this.#acquire(plan.group, plan.lane);
      if (typeof fresh === "string") {
        slot.onError(fresh);
        return;
      }
      if (pin === null) this.#pin = fresh;
      pin = fresh;
    }
    let sink: ReplySink = slot;
    if (plan.sink !== null) {
      plan.sink.bind(slot);
      sink = plan.sink;
    }
    const blockMs = plan.blockMs;
    const routing = this.#upstream.routing as RedisRouting;
    if (routing.redirectNode !== undefined) {
      // A blocking request is sent again where a redirect points: with its own bytes (the
      // read buffer's are reused) and the pool of this routing's nodes (a reload may swap
      // both meanwhile).
      const pins = this.#upstream.pins;
      const resend = plan.release && blockMs >= 0 && pins !== null
        ? this.#resendBlocking.bind(
          this,
          pins,
          plan.bytes.slice(),
          plan.replyKind,
          blockMs,
          plan.lane,
        )
        : null;
      sink = new PinnedRedirects(sink, routing, resend, this);
    }
    if (plan.release) {
      sink = new ReleaseAfterReply(sink, pin, this);
      (this.#releasing ??= []).push(pin);
      if (this.#pin === pin) this.#pin = null;
    }
    const prelude = plan.prelude;
    if (prelude !== null) { for (const bytes of prelude) pin.conn.send(bytes, DROP_REPLY, 0); }
    if (blockMs >= 0) {
      // SLOWLOG leaves out the time it may block by its own timeout, as Redis does.
      slot.waitAllowedMs = blockMs;
      slot.blockedFrom = performance.now();
      sink = new BlockedUntilReply(sink, this, pin.conn);
      // Forever (Infinity) too: a request queued behind it waits for its reply first.
      sink = pin.pins.expectReply(pin.conn, blockMs + BLOCKING_TIMEOUT_MARGIN_MS, sink);
    }
    this.#lastConn = pin.conn;
    pin.conn.send(plan.bytes, sink, plan.replyKind);
  }

  /**
   * Sends a blocking request that was redirected again on a connection of its own to `node`
   * (ASKING first for an ASK), released after its reply like the first; false when the
   * client is gone or no connection is to be had (the client then gets the redirect).
   */
  #resendBlocking(
    pins: PinnedPool,
    bytes: Uint8Array,
    replyKind: number,
    blockMs: number,
    lane: number,
    node: number,
    asking: boolean,
    inner: ReplySink,
  ): boolean {
    if (this.clientGone) return false;
    const conn = pins.acquire(node, lane);
    if (conn === null) return false;
    const pin: Pin = { conn, node, group: -1, lane, pins };
    (this.#releasing ??= []).push(pin);
    let sink: ReplySink = new ReleaseAfterReply(inner, pin, this);
    sink = new BlockedUntilReply(sink, this, conn);
    sink = pins.expectReply(conn, blockMs + BLOCKING_TIMEOUT_MARGIN_MS, sink);
    if (asking) conn.send(ASKING, DROP_REPLY, 0);
    conn.send(bytes, sink, replyKind);
    return true;
  }

  /** A dedicated connection to `group`'s node in `lane`, or why there is none. */
  #acquire(group: number, lane: number): Pin | string {
    const pins = this.#upstream.pins;
    const node = this.#upstream.routing.nodeOf(group);
    if (pins === null || node < 0) return "no backend available for a pinned connection";
    const conn = pins.acquire(node, lane);
    if (conn === null) {
      return "too many dedicated connections to this backend (blocking_connections reached)";
    }
    return { conn, node, group, lane, pins };
  }

  /**
   * Ends the client's pin: the connection goes back to its pool, or is closed when `close`
   * (the client vanished, or the connection failed).
   */
  unpin(close: boolean): void {
    if (close) this.#planner.clientGone?.();
    const releasing = this.#releasing;
    if (close && releasing !== null) {
      this.#releasing = null;
      for (const pin of releasing) pin.pins.discard(pin.node, pin.conn);
    }
    const pin = this.#pin;
    if (pin === null) return;
    this.#pin = null;
    if (close) pin.pins.discard(pin.node, pin.conn);
    else pin.pins.release(pin.node, pin.conn);
  }

  /** A releasing request's reply is in: its connection goes back (or is closed, `close`). */
  released(pin: Pin, close: boolean): void {
    const releasing = this.#releasing;
    const at = releasing?.indexOf(pin) ?? -1;
    // Not listed: the client went first and the connection is closed already.
    if (at < 0) return;
    releasing!.splice(at, 1);
    if (close) pin.pins.discard(pin.node, pin.conn);
    else pin.pins.release(pin.node, pin.conn);
  }
}
