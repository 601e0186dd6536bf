/** A client's place in its reply order: what a request's reply (or error) completes. */
import type { ReplyTarget } from "../protocol/protocol.ts";
import type { BufferLease } from "../io/buffer_pool.ts";

/** Where a slot's reply goes: its session. */
export interface SlotOwner {
  /**
   * Fills a slot. `isView` says the bytes live in a reused buffer (the session copies them
   * if it keeps them).
   */
  fill(slot: ReplySlot, reply: Uint8Array, isView: boolean, lease?: BufferLease): void;
  /** Fills a slot with a reply in pieces that stay valid (ReplyTarget.fillPieces). */
  fillPieces(slot: ReplySlot, pieces: readonly Uint8Array[], leases: readonly BufferLease[]): void;
  /** Fills a slot with the protocol's error reply for `message`. */
  fail(slot: ReplySlot, message: string): void;
  /** Writes part of a slot's reply now (ReplyTarget.stream). */
  stream(
    slot: ReplySlot,
    pieces: readonly Uint8Array[],
    leases: readonly (BufferLease | null)[],
    last: boolean,
  ): boolean;
  /** Writes on the part of a large reply that arrived (ReplySink.onPartial). */
  streamPartial(
    slot: ReplySlot,
    data: Uint8Array,
    start: number,
    end: number,
    lease: BufferLease,
  ): void;
}

/**
 * A reply slot. Requests take slots in order; a slot is filled by its backend reply, an
 * error, or a local answer, and replies leave strictly in slot order.
 */
export class ReplySlot implements ReplyTarget {
  /** The reply when it arrived before the slots ahead of it were sent. */
  data: Uint8Array | null = null;
  /** Close the client after this reply (QUIT, protocol errors). */
  closeAfter = false;
  /** Filled but not written to the client (CLIENT REPLY OFF, SKIP). */
  silent = false;
  /** For SLOWLOG: when the request was read (turnNow(): one clock read per batch) and its arguments. */
  startedAt = 0;
  /**
   * Where the request lies in the read buffer, valid while its epoch is still `bufferEpoch`;
   * -1 when not timed. Offsets, not the decoded arguments: a slot waiting for its reply keeps
   * no objects alive (40,000 requests in flight kept ~15 MB of argument views).
   */
  argStart = -1;
  argEnd = -1;
  bufferEpoch = 0;
  /** For SLOWLOG: how long the request may wait by its own timeout (a BLPOP's), not counted. */
  waitAllowedMs = 0;
  /**
   * A blocking request's: when the backend may have started on it (performance.now()): its
   * send, or its turn once the replies ahead of it are in (see Session's #watchBlockedHead).
   */
  blockedFrom = 0;
  /** Bytes of its reply already written while the rest arrives (0: none yet). */
  streamed = 0;
  /** A Pub/Sub message's slot (Session.deliver), not a request's. */
  message = false;
  readonly #owner: SlotOwner;

  constructor(owner: SlotOwner) {
    this.#owner = owner;
  }

  onReply(reply: Uint8Array, owned = false, lease?: BufferLease): void {
    this.#owner.fill(this, reply, !owned, lease);
  }

  onError(message: string): void {
    this.#owner.fail(this, message);
  }

  answer(reply: Uint8Array): void {
    this.#owner.fill(this, reply, false);
  }

  fill(reply: Uint8Array, isView: boolean): void {
    this.#owner.fill(this, reply, isView);
  }

  fillPieces(pieces: readonly Uint8Array[], leases: readonly BufferLease[]): void {
    this.#owner.fillPieces(this, pieces, leases);
  }

  stream(
    pieces: readonly Uint8Array[],
    leases: readonly (BufferLease | null)[],
    last: boolean,
  ): boolean {
    return this.#owner.stream(this, pieces, leases, last);
  }

  onPartial(data: Uint8Array, start: number, end: number, lease: BufferLease): void {
    this.#owner.streamPartial(this, data, start, end, lease);
  }
}
