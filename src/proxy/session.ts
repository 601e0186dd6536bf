/** One client connection: reads requests, keeps reply slots in request order, writes replies. */
import { LEND_FROM, lentInput, ReadBuffer } from "../io/read_buffer.ts";
import { RingQueue } from "../io/ring_queue.ts";
import { OWN_FROM, WriteBatcher } from "../io/write_batcher.ts";
import { BufferLease } from "../io/buffer_pool.ts";

import { copies } from "../io/copy_slab.ts";
import { logDebug, logWarn } from "../log.ts";
import { coarseClock, turnNow } from "../io/coarse_clock.ts";
import { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { Slowlog } from "../metrics/slowlog.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import type { Protocol } from "../protocol/protocol.ts";
import type { ProxyConn } from "../io/sockets.ts";
import type { ClientState } from "./redis_local.ts";
import { PlanRunner, type Upstream } from "./plan_runner.ts";
import { ReplySlot, type SlotOwner } from "./reply_slot.ts";
import { socketPeer } from "./proxy_protocol.ts";
import type { PubsubGauges } from "./subscriber.ts";

export { ReplySlot } from "./reply_slot.ts";

/** What a protocol's planner may know of a session's client. */
export interface SessionClient {
  readonly id: number;
  /** The counters of the client's cluster in this worker. */
  readonly metrics: ClusterMetrics;
  /** The client's `host:port`, "" when unknown. */
  readonly peer: string;
  /** When it connected and last sent bytes (coarse clock, ms). */
  readonly createdAt: number;
  readonly lastActiveAt: number;
  /** What its planner records of it for other clients to see (CLIENT LIST), or null. */
  connState: ClientState | null;
  /** The clients of the same listener, this one included (CLIENT LIST, CLIENT KILL). */
  readonly peers: Iterable<SessionClient>;
  readonly closed: boolean;
  close(): void;
}

/** The held reply of a slot whose reply is not written (CLIENT REPLY OFF, SKIP). */
const SILENT = new Uint8Array(0);

/** How a session speaks and where it sends: its mode's protocol and the shared upstream. */
export interface SessionMode {
  protocol: Protocol<SessionClient>;
  upstream: Upstream;
}

function _coarseNow(): number {
  return coarseClock.now;
}

/** Bounds on the replies a session may owe its client. */
export interface OutputLimits {
  /** Above this many bytes owed, stop reading requests until the client catches up. */
  softLimit: number;
  /** Above this many bytes owed, close the client. */
  hardLimit: number;
}

/** What SLOWLOG shows when a slow request's bytes were already reused. */
const ARGS_GONE = new TextEncoder().encode("(arguments no longer buffered)");

/**
 * Read buffer a client starts with (it doubles when a read fills it). Not smaller: SLOWLOG
 * shows a request's arguments only while the buffer still holds them, and a small buffer
 * is reused after a few requests (256 bytes lost them after 5 short SETs).
 */
const CLIENT_READ_CAPACITY = 1024;

/** Reads handled by direct calls before one goes through a microtask (see #readNow). */
const SYNC_READS = 16;

const DEFAULT_LIMITS: OutputLimits = { softLimit: 8 * 2 ** 20, hardLimit: 256 * 2 ** 20 };

/**
 * Reply bytes (estimated) a client may have in flight at the backends. Past it, the session
 * stops handling requests until replies come back: one client's pipeline must not queue
 * hundreds of MB of replies on a backend connection that other clients share (they would
 * wait behind all of it), nor past the output limits once they arrive.
 */
const IN_FLIGHT_BYTES = 2 ** 20;
/** Requests a client may have in flight, whatever their replies' size. */
const MAX_IN_FLIGHT = 4096;
/**
 * The reply size assumed before any reply came back: large, so that a new client's first
 * burst puts at most 16 requests in flight; small replies bring the mean down within tens.
 */
const FIRST_REPLY_ESTIMATE = 64 * 1024;
/**
 * Unread request bytes a client may send while a request waits for the ones in flight on
 * another backend connection (see waitForInFlight; a BLPOP's client is blocked): reading goes
 * on up to this, so that a client that leaves is seen at once, then pauses.
 */
const HELD_READ_LIMIT = 64 * 1024;

/** Lent bytes from which the writer queues them where they lie rather than copying them. */
const LENT_WRITE_FROM = 16 * 1024;

/**
 * How long a blocking request next in line at a client's EOF may take to be answered, from
 * its send or its turn, before the client is closed with it, when its connection cannot be
 * half-closed: a BLPOP served at once is answered within a round trip and the backend's
 * queue. Short: an element pushed meanwhile is popped for a client that may be gone.
 */
export const BLOCKED_AT_EOF_MS = 20;

/** Counters a worker keeps over its sessions. */
export interface SessionStats {
  open: number;
  total: number;
}

/** One client connection served until it closes. */
export class Session implements SessionClient, SlotOwner {
  readonly id: number;
  readonly conn: ProxyConn;
  /** The mode's wire protocol: error replies. */
  readonly protocol: Protocol<SessionClient>;
  /** Plans this client's requests and carries the plans out. */
  readonly #runner: PlanRunner;
  #slots = new RingQueue<ReplySlot>();
  #writer: WriteBatcher;
  #closed = false;
  /** No more requests will be read: close once every reply is out. */
  #draining = false;
  /** A reply closes the client after it (QUIT, a protocol error): see #endOfInput. */
  #closing = false;
  /**
   * Draining after QUIT while a dedicated connection's reply is owed: reading goes on, its
   * bytes dropped, only to see the client leave (as redis-server reads a blocked client).
   */
  #readingToEnd = false;
  /**
   * The client sent EOF: nothing more is read, but the requests read before it are still
   * planned as they become due (held behind another connection's replies, or at the
   * in-flight budget), as redis-server runs every request it read before a client's EOF.
   */
  #inputEnded = false;
  readonly #limits: OutputLimits;
  /** Bytes of replies kept in slots until the slots ahead of them are answered. */
  #heldBytes = 0;
  /** Slots answered and kept behind an unanswered one (the rest of #slots is in flight). */
  #heldCount = 0;
  /** Pub/Sub messages among #slots, waiting for the replies ahead of them. */
  #queuedMessages = 0;
  /** Running mean of this client's reply sizes: what a request in flight will likely bring. */
  #replyEstimate = FIRST_REPLY_ESTIMATE;
  /** Too many replies in flight: requests are not handled until enough come back. */
  #full = false;
  /**
   * The runner holds a planned request that goes over another backend connection than the
   * requests still in flight (see PlanRunner): requests wait until those are answered.
   */
  #ordering = false;
  /** When the client last sent bytes (coarse clock, ms). */
  lastActiveAt = coarseClock.now;
  /** When it connected (coarse clock, ms). */
  readonly createdAt = coarseClock.now;
  connState: ClientState | null = null;
  readonly peers: Iterable<SessionClient>;
  /** The next slot's reply is not written (CLIENT REPLY OFF, SKIP): see silenceNext. */
  #silenceNext = false;
  #nextStart = 0;
  #nextEnd = -1;
  #nextStartedAt = 0;
  /** The read buffer's epoch that `#nextStart`/`#nextEnd` refer to (-1: none, args gone). */
  #nextEpoch = -1;
  readonly #buffer = new ReadBuffer(CLIENT_READ_CAPACITY);

  /** The counters of this session's cluster in this worker. */
  readonly metrics: ClusterMetrics;
  /** Its cluster's gauges of clients per state (the plan runner counts blocked clients). */
  get clientStates(): ClusterMetrics["clientStates"] {
    return this.metrics.clientStates;
  }
  /** The client's `host:port` (its PROXY header's with `proxy_protocol`), "" when unknown. */
  get peer(): string {
    return this.#peer ??= socketPeer(this.conn);
  }
  /** null until asked for when the socket knows it: no string kept per idle client. */
  #peer: string | null;

  constructor(
    id: number,
    conn: ProxyConn,
    options: SessionMode & {
      limits?: OutputLimits;
      metrics?: ClusterMetrics;
      /** Default: the socket's, when first asked for. */
      peer?: string | null;
      peers?: Iterable<SessionClient>;
    },
  ) {
    this.id = id;
    this.peers = options.peers ?? [this];
    this.protocol = options.protocol;
    this.#peer = options.peer ?? null;
    this.conn = conn;
    this.#readsNow = conn.tryRead !== undefined && conn.whenReadable !== undefined;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.metrics = options.metrics ?? new ClusterMetrics("");
    this.#writer = new WriteBatcher(conn, () => this.close(), { clock: _coarseNow });
    this.#runner = new PlanRunner(this, options.protocol.newPlanner(this), options.upstream);
  }

  /** Bytes of read buffer held now: none while idle on a socket that reads without a promise. */
  get readBufferBytes(): number {
    return this.#buffer.capacity;
  }

  /** Bytes of replies owed to the client and not yet handed to the socket. */
  get owedBytes(): number {
    return this.#writer.queuedBytes + this.#heldBytes;
  }

  /**
   * True when the client has sent nothing since `since` and is owed nothing. A subscribed
   * client waits for messages, never idle (as redis-server exempts it from `timeout`).
   */
  idleSince(since: number): boolean {
    return this.lastActiveAt < since && this.#slots.size === 0 && !this.#writer.busy &&
      !this.#runner.subscribed;
  }

  /** True once the client is gone or being closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * True when no further requests should be handled now: after QUIT or a protocol error,
   * or for a while, when too many replies are in flight (see IN_FLIGHT_BYTES).
   */
  get draining(): boolean {
    return this.#draining || this.#full || this.#ordering;
  }

  /** Requests sent and not yet answered (held replies are answered). */
  get inFlight(): number {
    return this.#slots.size - this.#heldCount;
  }

  /**
   * Stops handling requests until every one in flight is answered; then the runner sends the
   * request it holds (`PlanRunner.sendHeld`) and handling goes on. Reading goes on meanwhile,
   * up to HELD_READ_LIMIT, so a client that leaves is seen (and its BLPOP's connection closed).
   */
  waitForInFlight(): void {
    this.#ordering = true;
  }

  /** Replies in flight, estimated, are over the budget (or over half of it: `resume`). */
  #overBudget(resume: boolean): boolean {
    const inFlight = this.#slots.size - this.#heldCount;
    const bytes = inFlight * this.#replyEstimate;
    return resume
      ? bytes > IN_FLIGHT_BYTES / 2 || inFlight > MAX_IN_FLIGHT / 2
      : bytes > IN_FLIGHT_BYTES || inFlight >= MAX_IN_FLIGHT;
  }

  /** The next slot's reply is filled as usual but not written to the client. */
  silenceNext(): void {
    this.#silenceNext = true;
  }

  /** Takes the next reply slot in request order. */
  reserve(): ReplySlot {
    const slot = new ReplySlot(this);
    if (this.#silenceNext) {
      slot.silent = true;
      this.#silenceNext = false;
    }
    if (this.#nextEnd >= 0) {
      slot.argStart = this.#nextStart;
      slot.argEnd = this.#nextEnd;
      slot.startedAt = this.#nextStartedAt;
      slot.bufferEpoch = this.#nextEpoch;
      this.#nextEnd = -1;
    }
    this.#slots.push(slot);
    if (this.#overBudget(false)) this.#full = true;
    return slot;
  }

  /**
   * Times the request about to take a slot, for SLOWLOG (when enabled); it lies at
   * `[start, end)` of `buf`, the buffer handed to the planner. Its arguments are decoded again and
   * copied only if it turns out slow, and only while the read buffer still holds them (no copy
   * per request on the hot path; a request held while the buffer was detached has lost them).
   */
  noteRequest(buf: Uint8Array, start: number, end: number): void {
    if (!this.metrics.slowlog.enabled) return;
    this.#nextStart = start;
    this.#nextEnd = end;
    this.#nextStartedAt = turnNow();
    this.#nextEpoch = buf === this.#buffer.data ? this.#buffer.epoch : -1;
  }

  #recordSlow(slot: ReplySlot): void {
    const slowlog = this.metrics.slowlog;
    const waited = turnNow() - slot.startedAt;
    const micros = Math.max(0, waited - slot.waitAllowedMs) * 1000;
    if (micros >= slowlog.slowerThanUs) {
      const argv = slot.bufferEpoch === this.#buffer.epoch
        ? this.#runner.requestArgs(this.#buffer.data, slot.argStart, slot.argEnd)
        : null;
      slowlog.record(micros, argv ? Slowlog.summarize(argv) : [ARGS_GONE]);
    }
    slot.argEnd = -1;
  }

  /** The worker's Pub/Sub gauges (this cluster's). */
  get gauges(): PubsubGauges {
    return this.metrics.pubsub;
  }

  /**
   * Writes a Pub/Sub message at a reply boundary: at once when no reply is owed, else
   * after the replies owed now (a confirmation still waiting for a backend comes first).
   * An `outOfBand` one (a RESP3 push, which a client reads between any two replies) does
   * not wait when the first reply owed is a blocked request's, as Redis writes pushes to a
   * blocked client: the requests behind it are ones Redis would run only after it, even
   * those Aster answered already. Behind a message still queued it keeps its place: the
   * order holds. Bounded by the output limits like any reply: past the hard limit the
   * client is closed.
   */
  deliver(frame: Uint8Array, isView: boolean, outOfBand = false): void {
    if (this.#closed) return;
    if (this.#slots.size > 0 && !(outOfBand && this.#headBlocked())) {
      // A slot of its own, not reserve()'s: answered at once, it is no request in flight
      // (it must not stop the requests read next) and takes no request's SLOWLOG note or silence.
      const slot = new ReplySlot(this);
      slot.message = true;
      this.#queuedMessages++;
      this.#slots.push(slot);
      this.fill(slot, frame, isView);
      return;
    }
    if (isView) this.#writer.append(frame);
    else this.#writer.appendOwned(frame);
    this.metrics.bytesOut += frame.length;
    this.#checkHardLimit();
  }

  /** The first reply owed is a blocked request's (BLPOP...), none of it written, no message queued. */
  #headBlocked(): boolean {
    const head = this.#slots.peek();
    return head !== undefined && head.waitAllowedMs > 0 && head.streamed === 0 &&
      this.#queuedMessages === 0;
  }

  /** Answers a slot with bytes the session may keep (a local reply or an error). */
  answer(slot: ReplySlot, reply: Uint8Array): void {
    this.fill(slot, reply, false);
  }

  /** A request failed at the backend: its slot gets the protocol's error reply. */
  fail(slot: ReplySlot, message: string): void {
    if (slot === this.#blockedHead) {
      // Its connection was half-closed for the client's leaving, and the backend freed that
      // client: the client leaves too, with no reply for it (see #watchBlockedHead).
      this.close();
      return;
    }
    this.metrics.error("backend");
    if (slot.streamed > 0) {
      // Part of its reply is out already: no error can follow it, the client is closed
      // (as when a backend closes in the middle of a reply nutcracker forwards).
      logDebug(`client ${this.id}: reply cut after ${slot.streamed} bytes: ${message}`);
      this.close();
      return;
    }
    this.fill(slot, this.protocol.errorReply(message), false);
  }

  /** Answers the next slot with a local reply, then closes the client after it. */
  answerAndClose(reply: Uint8Array): void {
    const slot = this.reserve();
    slot.closeAfter = true;
    this.#draining = true;
    this.#closing = true;
    this.fill(slot, reply, false);
  }

  /**
   * Fills a slot. `isView` says the bytes live in a reused buffer: they are copied, into
   * the output when the slot is next in line, else into a slab (`copies`) for the slot.
   */
  fill(slot: ReplySlot, reply: Uint8Array, isView: boolean, lease?: BufferLease): void {
    if (this.#closed) return;
    if (slot.argEnd >= 0) this.#recordSlow(slot);
    // A mean over about the last 8 replies: no state per reply.
    this.#replyEstimate += (reply.length - this.#replyEstimate) / 8;
    if (this.#slots.peek() !== slot) {
      slot.data = slot.silent ? SILENT : isView ? copies.copy(reply) : reply;
      this.#heldBytes += slot.data.length;
      this.#heldCount++;
      this.#checkHardLimit();
      if (this.#paused) this.#resumeWhenDue();
      this.#feedWhenDue();
      return;
    }
    this.#slots.shift();
    if (slot.streamed > 0) {
      // Its start was written as it arrived (streamPartial): the rest follows.
      const rest = reply.subarray(slot.streamed);
      if (isView) this.#writer.append(rest);
      else this.#writeLent(rest, lease ?? null);
      lease?.drop();
      this.metrics.bytesOut += reply.length - slot.streamed;
    } else if (!slot.silent) {
      // Bytes the session may keep are queued as they are when large (no copy of a big
      // value). CLIENT REPLY OFF or SKIP: the request ran and its slot is done, unwritten.
      if (isView) this.#writer.appendView(reply);
      else if (lease !== undefined) {
        // Written from the backend's buffer, which goes back to the pool once written.
        this.#writer.appendLent(reply, lease);
        lease.drop();
      } else this.#writer.appendOwned(reply);
      this.metrics.bytesOut += reply.length;
    }
    this.#afterHead(slot);
  }

  /**
   * Fills a slot with a reply in pieces that stay valid (a large MGET merge): next in line,
   * each piece is queued where it lies (large ones uncopied); else they are joined into one
   * reply the slot keeps.
   */
  fillPieces(slot: ReplySlot, pieces: readonly Uint8Array[], leases: readonly BufferLease[]): void {
    if (this.#closed || this.#slots.peek() !== slot || slot.silent) {
      if (!this.#closed) this.fill(slot, concatBytes(pieces), false);
      for (const lease of leases) lease.drop();
      return;
    }
    let size = 0;
    for (const piece of pieces) size += piece.length;
    if (slot.argEnd >= 0) this.#recordSlow(slot);
    this.#replyEstimate += (size - this.#replyEstimate) / 8;
    this.#slots.shift();
    if (leases.length === 0) {
      for (const piece of pieces) this.#writer.appendOwned(piece);
    } else {
      // One lease over the pieces: the part replies' buffers go back once all are written.
      const group = BufferLease.over(leases);
      // Small pieces are copied (one may be a view of a reused buffer); large ones lie in
      // the owned part replies.
      for (const piece of pieces) {
        if (piece.length < OWN_FROM) this.#writer.append(piece);
        else this.#writer.appendLent(piece, group);
      }
      group.seal(null);
    }
    this.metrics.bytesOut += size;
    this.#afterHead(slot);
  }

  /**
   * Writes part of a slot's reply now, if it is next in line (or already under way): each
   * piece lent under its lease (null: bytes that stay valid). With `last` the reply is
   * complete. False when it cannot start now; nothing was written then.
   */
  stream(
    slot: ReplySlot,
    pieces: readonly Uint8Array[],
    leases: readonly (BufferLease | null)[],
    last: boolean,
  ): boolean {
    if (this.#closed) return true; // dropped, as every late reply of a closed client
    if (!this.#mayStream(slot)) return false;
    let size = 0;
    for (let i = 0; i < pieces.length; i++) {
      this.#writeLent(pieces[i], leases[i]);
      size += pieces[i].length;
    }
    slot.streamed += size;
    this.metrics.bytesOut += size;
    if (!last) {
      this.#checkHardLimit();
      return true;
    }
    if (slot.argEnd >= 0) this.#recordSlow(slot);
    this.#replyEstimate += (slot.streamed - this.#replyEstimate) / 8;
    this.#slots.shift();
    this.#afterHead(slot);
    return true;
  }

  /**
   * Cut-through: the bytes of a large reply that arrived since the last call are written
   * now when its slot is next in line; fill() then writes the rest.
   */
  streamPartial(
    slot: ReplySlot,
    data: Uint8Array,
    start: number,
    end: number,
    lease: BufferLease,
  ): void {
    const from = start + slot.streamed;
    if (this.#closed || end <= from || !this.#mayStream(slot)) return;
    this.#writeLent(data.subarray(from, end), lease);
    slot.streamed = end - start;
    this.metrics.bytesOut += end - from;
    this.#checkHardLimit();
  }

  /** A slot's reply may go out in parts now: it is under way, or next in line and written. */
  #mayStream(slot: ReplySlot): boolean {
    return slot.streamed > 0 || (this.#slots.peek() === slot && !slot.silent);
  }

  /**
   * Queues bytes lent under `lease`, uncopied unless small (a reply streamed as it arrives
   * comes a read at a time, often 64 KB), or bytes that stay valid (null).
   */
  #writeLent(bytes: Uint8Array, lease: BufferLease | null): void {
    if (lease !== null && bytes.length >= LENT_WRITE_FROM) this.#writer.appendLent(bytes, lease);
    else if (lease === null) this.#writer.appendOwned(bytes);
    else this.#writer.append(bytes);
  }

  /** The head slot was written: writes the replies that waited behind it, in order. */
  #afterHead(slot: ReplySlot): void {
    if (slot.closeAfter) {
      this.#finish();
      return;
    }
    for (let next = this.#slots.peek(); next?.data; next = this.#slots.peek()) {
      this.#slots.shift();
      if (next.message) this.#queuedMessages--;
      if (next.data !== SILENT) this.#writer.appendOwned(next.data);
      this.metrics.bytesOut += next.data.length;
      this.#heldBytes -= next.data.length;
      this.#heldCount--;
      next.data = null;
      if (next.closeAfter) {
        this.#finish();
        return;
      }
    }
    // A blocking request's turn at the backend comes once the replies ahead of it are in.
    const head = this.#slots.peek();
    if (head !== undefined && head.waitAllowedMs > 0) {
      head.blockedFrom = performance.now();
      if (this.#inputEnded && this.#watchBlockedHead()) return;
    }
    if (this.#slots.size === 0) {
      if (this.#draining) this.#finish();
      // The last reply owed is out and the socket has nothing to read: idle until it has.
      else if (this.#awaitingReadable && !this.#ordering && !this.#detachPending) {
        this.#buffer.park();
      }
    }
    this.#checkHardLimit();
    if (this.#paused) this.#resumeWhenDue();
    this.#feedWhenDue();
  }

  /** The held request's send is on its way (one microtask, see #onFeedDue). */
  #feedScheduled = false;
  /**
   * #onFeedDue stopped at the in-flight budget while a read was in flight: the requests left
   * in the buffer are planned once replies made room, not at the next read (the client may
   * send nothing more until they are answered).
   */
  #feedOnRoom = false;

  /** After a fill: the held request, or the requests left at the budget, may go now. */
  #feedWhenDue(): void {
    if (
      (this.#ordering && this.inFlight === 0) || (this.#feedOnRoom && !this.#overBudget(true))
    ) {
      this.#scheduleFeed();
    }
  }
  /** Reading paused at HELD_READ_LIMIT while a request is held: no read in flight. */
  #heldPaused = false;

  /** The last reply in flight came in while a request is held: it may go now. */
  #scheduleFeed(): void {
    if (this.#feedScheduled || this.#closed) return;
    this.#feedScheduled = true;
    // Not from inside a backend's reply loop.
    queueMicrotask(() => this.#onFeedDue());
  }

  /**
   * Sends the held request and plans the requests read meanwhile (or, `#feedOnRoom`, plans
   * those left at the in-flight budget once replies made room). Reading went on meanwhile
   * (a read may be in flight): this only consumes what is buffered, and lends nothing of the
   * buffer to the backends. After the client's EOF it goes on with what was read before it
   * (#endOfInput); a graceful stop drops the held request (no new requests are handled).
   */
  #onFeedDue(): void {
    this.#feedScheduled = false;
    if (this.#closed) return;
    if (this.#ordering) {
      if (this.inFlight > 0) return;
      this.#ordering = false;
      if (this.#draining) {
        this.#runner.dropHeld();
        if (this.#slots.size === 0) this.#finish();
        return;
      }
    } else if (this.#feedOnRoom && !this.#overBudget(true)) this.#full = false;
    else return;
    this.#feedOnRoom = false;
    const buffer = this.#buffer;
    try {
      this.#runner.sendHeld();
      buffer.start += this.#runner.feed(buffer.data, buffer.start, buffer.end);
    } catch (err) {
      if (!this.#answerPlanError(err)) return;
    }
    // A read may be in flight into the lent buffer's tail: it is detached once that read is in
    // (#handleBuffered) or before the next one (#readNext), never under a read.
    // Reading stopped at HELD_READ_LIMIT: on again (or to its end, after a protocol error).
    if (this.#heldPaused && (!this.#ordering || this.#draining)) {
      this.#heldPaused = false;
      this.#readNext();
    } else if (this.#full && !this.#paused && !this.#heldPaused) {
      this.#feedOnRoom = true;
      // Room already when what filled the budget was answered at once (a local reply's slot
      // counts while it is reserved): no reply in flight would come to go on, so go on now.
      this.#feedWhenDue();
    }
    // After the client's EOF: on with what is left, or close once all of it is answered.
    if (this.#inputEnded) this.#endOfInput(true);
  }

  /**
   * While reading is paused: schedules the resume once it is due. Over the soft limit,
   * when the writer has written what is owed (held replies wait for a later fill); under
   * it, once the replies in flight fell to half the budget (in a microtask: not from
   * inside a backend's reply loop).
   */
  #resumeWhenDue(): void {
    if (this.#resumeScheduled || this.#closed) return;
    if (this.owedBytes > this.#limits.softLimit) {
      if (!this.#writer.busy) return;
      this.#resumeScheduled = true;
      this.#writer.idle().then(() => this.#onCaughtUp());
      return;
    }
    if (this.#full && this.#overBudget(true)) return;
    this.#resumeScheduled = true;
    queueMicrotask(() => this.#onCaughtUp());
  }

  /** A resume is on its way (one promise or microtask per pause, not one per reply). */
  #resumeScheduled = false;

  /**
   * Reads and handles requests until the client leaves or is closed; resolves then (replies
   * still owed are written after). See `serve`.
   */
  run(): Promise<void> {
    return new Promise((resolve) => this.serve(() => resolve()));
  }

  /**
   * Reads and handles requests until the client leaves or is closed, then calls `onEnd`
   * once, with this session (replies still owed are written after). The loop runs on
   * callbacks made once per session, not an async function: no frame kept per idle client,
   * no extra promise hop per read; a listener passes one `onEnd` for all its clients.
   */
  serve(onEnd: (session: Session) => void): void {
    this.#loopEnded = onEnd;
    this.#readNext();
  }

  #loopEnded: ((session: Session) => void) | null = null;
  /**
   * Callbacks of the promise reads (`io = "deno"`) and of the socket's readiness (`io =
   * "ffi"`): made at the first read that needs them, so a session makes only its path's.
   */
  #onRead: ((n: number | null) => void) | null = null;
  #onReadFailed: ((err: unknown) => void) | null = null;
  #onReadable: (() => void) | null = null;
  /**
   * Reading waits for the client to take its replies (owed bytes over the soft limit) or
   * for replies in flight to come back.
   */
  #paused = false;
  #onCaughtUp(): void {
    this.#resumeScheduled = false;
    if (!this.#paused) return; // one resume per pause: never two reads at once
    this.#paused = false;
    if (this.#full && !this.#overBudget(true)) this.#full = false;
    // Requests read before the pause come first: the client may send nothing more.
    if (
      !this.draining && !this.#closed && this.#buffer.length > 0 &&
      this.owedBytes <= this.#limits.softLimit
    ) {
      this.#handleBuffered();
      return;
    }
    this.#readNext();
  }

  #readNext(): void {
    if (this.#closed || (this.#draining && !this.#readingToEnd)) {
      this.#endOfInput(false);
      return;
    }
    if (this.#inputEnded) {
      this.#endOfInput(true); // never read past the client's EOF
      return;
    }
    if (this.#detachPending && !this.#ordering) this.#detachLent();
    if (
      this.#ordering &&
      (this.#buffer.length >= HELD_READ_LIMIT || this.#buffer.tailSpace().length === 0)
    ) {
      // Held back and enough read (or no tail left: the held request's views must not
      // move): #onFeedDue reads on once the request is sent.
      this.#heldPaused = true;
      return;
    }
    if (this.#full && !this.#overBudget(true)) {
      this.#full = false;
      // Requests read before the budget filled come first: the client may send nothing more
      // (a local reply alone can fill it, and be answered at once).
      if (!this.draining && this.#buffer.length > 0 && this.owedBytes <= this.#limits.softLimit) {
        this.#handleBuffered();
        return;
      }
    }
    if (this.owedBytes > this.#limits.softLimit || this.#full) {
      // Backpressure: wait until the writer has written what is owed, or until replies in
      // flight come back. When the bytes are replies held behind a slower one (the writer
      // is idle), fill() resumes instead: waiting on an idle writer would resume at once
      // and spin without yielding.
      this.#paused = true;
      this.#resumeWhenDue();
      return;
    }
    const conn = this.conn;
    if (this.#readsNow) {
      this.#readNow(conn);
      return;
    }
    let pending: Promise<number | null>;
    try {
      pending = conn.read(this.#readSpace());
    } catch (err) {
      this.#stopOnError(err);
      return;
    }
    pending.then(
      this.#onRead ??= (n) => this.#handleRead(n),
      this.#onReadFailed ??= (err) => this.#stopOnError(err),
    );
  }

  /**
   * Where the next read goes: only the free tail while a held request views the buffer or
   * lent requests wait for its detach (nothing in it may move).
   */
  #readSpace(): Uint8Array {
    return this.#ordering || this.#detachPending
      ? this.#buffer.tailSpace()
      : this.#buffer.freeSpace();
  }

  /** The socket calls #onReadable when the client sends: no read holds the buffer. */
  #awaitingReadable = false;
  /** The socket reads without a promise (`tryRead` and `whenReadable`, as `io = "ffi"`'s do). */
  readonly #readsNow: boolean;

  /**
   * Reads on a socket that can read without a promise (`io = "ffi"`): what is there now is
   * handled at once, else the socket calls back when more comes. Every SYNC_READS reads in a
   * row it goes through a microtask, so one busy client does not recurse without end.
   */
  #readNow(conn: ProxyConn): void {
    let n: number | null | undefined;
    try {
      n = conn.tryRead!(this.#readSpace());
    } catch (err) {
      this.#stopOnError(err);
      return;
    }
    if (n === undefined) {
      this.#syncReads = 0;
      this.#awaitingReadable = true;
      // Idle (nothing unread, nothing owed): the buffer goes until the client sends again.
      if (this.#slots.size === 0 && !this.#ordering && !this.#detachPending) this.#buffer.park();
      conn.whenReadable!(
        this.#onReadable ??= () => {
          this.#awaitingReadable = false;
          this.#readNext();
        },
      );
      return;
    }
    if (++this.#syncReads >= SYNC_READS) {
      this.#syncReads = 0;
      queueMicrotask(() => this.#handleRead(n));
      return;
    }
    this.#handleRead(n);
  }

  /** Reads handled in a row without going through the event loop (see #readNow). */
  #syncReads = 0;

  #handleRead(n: number | null): void {
    if (n === null || this.#draining || this.#closed) {
      if (n !== null && this.#readingToEnd && !this.#closed) {
        // After QUIT: what the client sends is not run, only its leaving matters.
        this.metrics.bytesIn += n;
        this.#readNext();
        return;
      }
      this.#endOfInput(n === null);
      return;
    }
    const buffer = this.#buffer;
    buffer.commit(n);
    this.metrics.bytesIn += n;
    this.lastActiveAt = coarseClock.now;
    this.#handleBuffered();
  }

  /** The buffer lent requests were taken from waits for a held request too (see #detachLent). */
  #detachPending = false;
  #lentLease: BufferLease | null = null;

  /**
   * Reading goes on in a new buffer; the old one, which requests were lent from, goes to
   * their lease (to the pool once the backends wrote them). Not while a held request views
   * it (`#detachPending`): reads go to its free tail meanwhile, so nothing in it moves.
   */
  #detachLent(): void {
    const lease = this.#lentLease;
    this.#detachPending = false;
    this.#lentLease = null;
    const old = this.#buffer.detach();
    lease?.seal(old);
  }

  /** Handles the complete requests in the read buffer, then reads on. */
  #handleBuffered(): void {
    // No read in flight now: lent requests' buffer goes (a read into its tail is committed).
    if (this.#detachPending && !this.#ordering) this.#detachLent();
    const buffer = this.#buffer;
    // A buffer large enough to hold a large request lends it to the backends uncopied.
    const lend = buffer.data.length >= LEND_FROM;
    try {
      if (lend) {
        lentInput.open = true;
        lentInput.taken = false;
      }
      try {
        buffer.start += this.#runner.feed(buffer.data, buffer.start, buffer.end);
        // A large value announced: the buffer grows to hold it at once, not 4x at a time
        // (each step copied what had arrived and faulted in a fresh buffer).
        // (Asked only when the last read filled the buffer: only then does it grow.)
        if (buffer.end > buffer.start && buffer.end === buffer.data.length) {
          const needed = this.#runner.neededBytes;
          if (needed > buffer.data.length - buffer.start) buffer.expect(needed);
        }
      } finally {
        if (lend) {
          lentInput.open = false;
          // Lent bytes stay as they are: reading goes on in a new buffer, and the old one
          // goes to the pool once the backends wrote them.
          if (lentInput.taken) {
            this.#lentLease = lentInput.lease;
            lentInput.lease = null;
            // A held request may view this buffer too: detached once it is sent.
            if (!this.#ordering) this.#detachLent();
            else this.#detachPending = true;
          }
        }
      }
    } catch (err) {
      if (this.#answerPlanError(err)) this.#endOfInput(false);
      return;
    }
    this.#readNext();
  }

  /**
   * Planning or sending failed: a protocol error is answered, after the replies owed, and the
   * client closed after it (true); anything else closes the client and ends the read loop
   * at once (false).
   */
  #answerPlanError(err: unknown): boolean {
    if (!(err instanceof ProtocolError)) {
      this.#stopOnError(err);
      return false;
    }
    logDebug(`client ${this.id}: protocol error: ${err.message}`);
    this.metrics.error("protocol");
    this.answerAndClose(this.protocol.protocolErrorReply(err.message));
    return true;
  }

  /**
   * The read loop is over (no read in flight): the read buffer's memory goes back now, not at
   * a GC, which an idle worker may not run for long (clients vanishing in a burst).
   */
  #endLoop(): void {
    // Lent bytes may still wait to be written: their buffer goes to their lease, not back.
    if (this.#detachPending) this.#detachLent();
    this.#buffer.release();
    const ended = this.#loopEnded;
    this.#loopEnded = null;
    ended?.(this);
  }

  /** A read or a plan failed: the client is closed. */
  #stopOnError(err: unknown): void {
    if (!this.#closed) logDebug(`client ${this.id}: ${err instanceof Error ? err.message : err}`);
    this.close();
    this.#endLoop();
  }

  /**
   * The client sent EOF (`eof`) or QUIT, or is being closed: send what is owed, then close.
   */
  #endOfInput(eof: boolean): void {
    if (eof && !this.#closed) {
      // As redis-server does at a client's EOF: every request read before it is run and
      // answered, then the client is closed with its dedicated connections (a transaction
      // left open is dropped); a blocked request (BLPOP) is dropped with it, not waited for.
      this.#inputEnded = true;
      if (this.#watchBlockedHead()) return;
      // Requests read and not yet planned: #onFeedDue plans them and comes back.
      if (!this.#draining && (this.#ordering || this.#feedOnRoom)) return;
      this.#draining = true;
      // All sent: replies on dedicated connections (no read_timeout) get a bound now.
      if (this.#runner.holdsDedicated) this.#runner.clientLeft();
      if (this.#slots.size === 0) this.#finish();
    } else if (!this.#closed && this.#runner.holdsDedicated) {
      if (this.#closing) {
        // QUIT (or a protocol error) after a WATCH, an EXEC or a BLPOP: their replies come
        // first, as in redis-server; reading goes on to see the client leave meanwhile.
        this.#readingToEnd = true;
        this.#readNext();
        return;
      }
      // Draining for a graceful stop: a BLPOP may wait long, a transaction is dropped.
      this.close();
    } else if (!this.#closed) {
      this.#draining = true;
      if (this.#slots.size === 0) this.#finish();
    }
    this.#endLoop();
  }

  /** The blocked request watched after the client's EOF (see #watchBlockedHead). */
  #blockedHead: ReplySlot | null = null;
  #blockedTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  /**
   * After the client's EOF: a blocking request next in line (a BLPOP) may have been served at
   * once (its list had an element: redis-server answers it) or be blocked (redis-server frees
   * the client at its EOF, popping nothing). Its connection is half-closed, so the backend
   * tells which: its reply comes, or it closes the connection and the client is closed
   * (`fail`; NodeConn bounds the wait). A socket that cannot half-close gets BLOCKED_AT_EOF_MS
   * from the request's send or turn for a reply instead. True when the client was closed now.
   */
  #watchBlockedHead(): boolean {
    const head = this.#slots.peek();
    if (
      head === undefined || head.waitAllowedMs <= 0 || head.streamed > 0 ||
      head === this.#blockedHead
    ) return false;
    this.#blockedHead = head;
    if (this.#runner.halfCloseBlocked()) return false;
    const wait = head.blockedFrom + BLOCKED_AT_EOF_MS - performance.now();
    if (wait <= 0) {
      this.close();
      return true;
    }
    clearTimeout(this.#blockedTimer);
    this.#blockedTimer = setTimeout(() => {
      // One more turn: a reply already read (a busy loop ran this timer first) goes first.
      this.#blockedTimer = setTimeout(() => {
        if (this.#slots.peek() === head) this.close();
      }, 0);
    }, wait);
    return false;
  }

  #checkHardLimit(): void {
    const owed = this.owedBytes;
    if (owed <= this.#limits.hardLimit || this.#closed) return;
    logWarn(`client ${this.id}: ${owed} bytes of replies unread, over the hard limit: closed`);
    this.metrics.error("output_limit");
    this.close();
  }

  /** Stops taking requests (for a graceful stop): closes once the replies owed are out. */
  shutdown(): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    if (this.#slots.size === 0) this.#finish();
  }

  /** Closes once queued replies are written. */
  #finish(): void {
    this.#draining = true;
    this.#writer.idle().then(() => this.close());
  }

  /**
   * Called once when the session is closed: its read loop may have ended long before, while
   * the replies owed were still being written (a half-closed client, a graceful stop).
   */
  onClosed: ((session: Session) => void) | null = null;

  /** Closes the client now; late replies for its slots are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#draining = true;
    this.#slots.drain();
    this.#writer.discard();
    clearTimeout(this.#blockedTimer);
    // A dedicated backend connection is closed, not returned: its state is this client's.
    this.#runner.close();
    // A paused read loop ends too, so run() resolves.
    if (this.#paused) queueMicrotask(() => this.#onCaughtUp());
    else if (this.#inputEnded) queueMicrotask(() => this.#endLoop());
    else if (this.#heldPaused) {
      this.#heldPaused = false;
      queueMicrotask(() => this.#readNext());
    }
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    const onClosed = this.onClosed;
    this.onClosed = null;
    onClosed?.(this);
  }
}
