/**
 * Carries out the plans of one client's requests, the same for every protocol: a local
 * answer, a forward to one group, a fan-out and merge, or a request on the client's pinned
 * connection. The protocol's planner says what; this says how (slots, routing, pins).
 */
import type { NodeConn } from "../backend/node_conn.ts";
import type { PinnedPool } from "../backend/pinned_pool.ts";
import { Plan, PlanKind, type ReplySink, type RequestPlanner } from "../protocol/protocol.ts";
import type { Routing } from "./routing.ts";
import type { ReplySlot } from "./reply_slot.ts";

/**
 * Where a data plane's sessions send what their plans forward. A reload replaces its fields
 * in place: clients use the new backends from their next request on.
 */
export interface Upstream {
  routing: Routing;
  /** Dedicated connections for pinned clients (null: no plan pins in this mode). */
  pins: PinnedPool | null;
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
  /** Times the request at `[start, end)` for SLOWLOG (see Session.noteRequest). */
  noteRequest(start: number, end: number): void;
}

/** A client's dedicated connection, and the node it goes to (for the pool it returns to). */
interface Pin {
  conn: NodeConn;
  node: number;
  pins: PinnedPool;
}

/** Gives the pinned connection back once the releasing request's reply is in. */
class ReleaseAfterReply implements ReplySink {
  readonly #slot: ReplySlot;
  readonly #runner: PlanRunner;

  constructor(slot: ReplySlot, runner: PlanRunner) {
    this.#slot = slot;
    this.#runner = runner;
  }

  onReply(reply: Uint8Array, owned?: boolean): void {
    this.#slot.onReply(reply, owned);
    this.#runner.unpin(false);
  }

  onError(message: string): void {
    this.#slot.onError(message);
    this.#runner.unpin(true);
  }
}

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

  constructor(host: PlanHost, planner: RequestPlanner, upstream: Upstream) {
    this.#host = host;
    this.#planner = planner;
    this.#upstream = upstream;
    this.#timed = planner.requestArgs !== undefined;
  }

  /** The planner's view of a request's arguments (for SLOWLOG). */
  requestArgs(buf: Uint8Array, start: number, end: number): readonly Uint8Array[] | null {
    return this.#planner.requestArgs?.(buf, start, end) ?? null;
  }

  /** True while the client holds a dedicated connection. */
  get pinned(): boolean {
    return this.#pin !== null;
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
        if (this.#timed) host.noteRequest(at, at + size);
        if (plan.silent) host.silenceNext();
        this.#run(plan);
        plan.clear();
      }
      at += size;
    }
    return at - start;
  }

  #run(plan: Plan): void {
    const host = this.#host;
    switch (plan.kind) {
      case PlanKind.local:
        if (plan.closeAfter) host.answerAndClose(plan.reply);
        else host.reserve().answer(plan.reply);
        return;
      case PlanKind.forward: {
        const slot = host.reserve();
        const sink = plan.sink;
        const routing = this.#upstream.routing;
        if (sink === null) {
          routing.send(plan.group, plan.bytes, slot, host.id, plan.readonly, plan.replyKind);
          return;
        }
        sink.bind(slot);
        routing.send(plan.group, plan.bytes, sink, host.id, plan.readonly, plan.replyKind);
        return;
      }
      case PlanKind.fanOut: {
        const fanOut = plan.fanOut!;
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
          );
        }
        return;
      }
      case PlanKind.pinned:
        this.#runPinned(plan);
        return;
    }
  }

  /** Sends on the client's dedicated connection, taking one first when it has none. */
  #runPinned(plan: Plan): void {
    const slot = this.#host.reserve();
    let pin = this.#pin;
    if (pin === null) {
      const pins = this.#upstream.pins;
      const node = this.#upstream.routing.nodeOf(plan.group);
      if (pins === null || node < 0) {
        slot.onError("no backend available for a pinned connection");
        return;
      }
      const conn = pins.acquire(node);
      if (conn === null) {
        slot.onError("too many pinned connections to this backend (cap reached)");
        return;
      }
      pin = { conn, node, pins };
      this.#pin = pin;
    }
    const sink = plan.release ? new ReleaseAfterReply(slot, this) : slot;
    pin.conn.send(plan.bytes, sink, plan.replyKind);
  }

  /**
   * Ends the client's pin: the connection goes back to its pool, or is closed when `close`
   * (the client vanished, or the connection failed).
   */
  unpin(close: boolean): void {
    const pin = this.#pin;
    if (pin === null) return;
    this.#pin = null;
    if (close) pin.pins.discard(pin.node, pin.conn);
    else pin.pins.release(pin.node, pin.conn);
  }
}
