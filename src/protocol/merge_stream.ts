/**
 * A split reply written while its parts still arrive: a large MGET over two shards starts
 * going to the client with its first value, not once the last byte of the last part is in.
 * The merged reply is a header, then elements taken in order from the parts' replies; each
 * element is written as soon as it and every element before it are complete.
 */
import type { BufferLease } from "../io/buffer_pool.ts";
import type { ReplyTarget } from "./protocol.ts";

/** Finds the complete elements of one part's reply as its bytes arrive. */
export interface ElementScanner {
  /**
   * Appends to `bounds` the [start, end) offsets, from the reply's start at `data[start]`,
   * of each element completed in `data[start, end)` since the last call (the bytes before
   * were seen already, possibly in another buffer). False when the reply is not one whose
   * elements can be taken as they come (an error, nested values).
   */
  scan(data: Uint8Array, start: number, end: number, bounds: number[]): boolean;
  /** Elements found so far. */
  readonly seen: number;
  /** Where the element under way starts, from the reply's start; -1 when none is. */
  readonly pendingFrom: number;
}

/** How a strategy's merge is streamed (SplitStrategy.streamOrder). */
export interface StreamOrder {
  /** The merged reply's first bytes (an array header). */
  header: Uint8Array;
  /** For each element of the merged reply, in order: the part it comes from... */
  partOf: Int32Array;
  /** ...and its index among that part's elements. */
  indexInPart: Int32Array;
  /** A fresh scanner for one part's reply. */
  newScanner(): ElementScanner;
}

/** Reused by every capture (a capture runs to its end synchronously). */
const _bounds: number[] = [];

/**
 * The streaming state of one split request. Captured elements are views held under the
 * lease of the buffer they lie in (one hold each) until they are written.
 */
export class MergeStream {
  readonly #order: StreamOrder;
  readonly #scanners: ElementScanner[];
  /** Per part: element index -> position in the merged reply. */
  readonly #positionOf: Int32Array[];
  /** Per position: the element's bytes once complete, until written. */
  readonly #pieces: (Uint8Array | null)[];
  readonly #leases: (BufferLease | null)[];
  /** The first position not written yet. */
  #next = 0;
  /** Some of the reply was written: it must be ended, or cut (the client closed). */
  started = false;
  /** A part's reply cannot be streamed: nothing more is captured. */
  broken = false;
  /**
   * The bytes so far of the element under way in the part captured last, valid only until
   * the write that follows the capture (its buffer is not held): if that element is next in
   * line, they are written at once (a 16 MB value goes on while it arrives).
   */
  #tailPosition = -1;
  #tail: Uint8Array | null = null;
  #tailLease: BufferLease | null = null;
  /** Bytes of the element at `#next` written before it was complete. */
  #nextSent = 0;

  constructor(order: StreamOrder, parts: number) {
    this.#order = order;
    this.#scanners = Array.from({ length: parts }, () => order.newScanner());
    const counts = new Int32Array(parts);
    for (const part of order.partOf) counts[part]++;
    this.#positionOf = Array.from(counts, (count) => new Int32Array(count).fill(-1));
    order.partOf.forEach((part, position) => {
      this.#positionOf[part][order.indexInPart[position]] = position;
    });
    this.#pieces = new Array(order.partOf.length).fill(null);
    this.#leases = new Array(order.partOf.length).fill(null);
  }

  /**
   * Takes part `part`'s elements completed in `data[start, end)` (its reply so far, or all
   * of it), each held under `lease` (null: bytes that stay valid).
   */
  capture(
    part: number,
    data: Uint8Array,
    start: number,
    end: number,
    lease: BufferLease | null,
  ): void {
    if (this.broken) return;
    const scanner = this.#scanners[part];
    const first = scanner.seen;
    _bounds.length = 0;
    if (!scanner.scan(data, start, end, _bounds)) {
      this.broken = true;
      return;
    }
    const positions = this.#positionOf[part];
    for (let i = 0; i < _bounds.length; i += 2) {
      const index = first + i / 2;
      if (index >= positions.length) {
        this.broken = true; // more values than keys asked
        return;
      }
      const position = positions[index];
      this.#pieces[position] = data.subarray(start + _bounds[i], start + _bounds[i + 1]);
      this.#leases[position] = lease;
      lease?.hold();
    }
    const pending = scanner.pendingFrom;
    if (pending >= 0 && start + pending < end) {
      this.#tailPosition = positions[scanner.seen];
      this.#tail = data.subarray(start + pending, end);
      this.#tailLease = lease;
    }
  }

  /** Writes the elements ready in order, if the target can take them now. */
  flush(target: ReplyTarget): void {
    if (!this.broken) this.#write(target, false);
  }

  /**
   * Every part is in: writes the rest and ends the reply. A part that did not bring its
   * elements cuts the reply instead (the client is closed).
   */
  finish(target: ReplyTarget, failure: string): void {
    if (this.broken || this.#scanners.some((s, part) => s.seen !== this.#positionOf[part].length)) {
      this.release();
      target.onError(failure);
      return;
    }
    this.#write(target, true);
  }

  /** Drops the holds of elements not written (the merge ends another way). */
  release(): void {
    for (let position = this.#next; position < this.#pieces.length; position++) {
      this.#leases[position]?.drop();
      this.#leases[position] = null;
      this.#pieces[position] = null;
    }
  }

  #write(target: ReplyTarget, last: boolean): void {
    const pieces: Uint8Array[] = [];
    const leases: (BufferLease | null)[] = [];
    if (!this.started) {
      pieces.push(this.#order.header);
      leases.push(null);
    }
    let position = this.#next;
    while (position < this.#pieces.length && this.#pieces[position] !== null) {
      // The element's start may have gone out while it arrived.
      const skip = position === this.#next ? this.#nextSent : 0;
      pieces.push(this.#pieces[position]!.subarray(skip));
      leases.push(this.#leases[position]);
      position++;
    }
    // The start of the element under way, when it is next in line.
    const tail = this.#tail;
    const tailLease = this.#tailLease;
    const sentBefore = position === this.#next ? this.#nextSent : 0;
    let tailBytes = 0;
    if (!last && tail !== null && this.#tailPosition === position && tail.length > sentBefore) {
      pieces.push(tail.subarray(sentBefore));
      leases.push(tailLease);
      tailBytes = tail.length - sentBefore;
    }
    this.#tail = this.#tailLease = null;
    this.#tailPosition = -1;
    if (position === this.#next && tailBytes === 0 && !last) return;
    if (!target.stream!(pieces, leases, last)) return;
    this.started = true;
    for (let i = this.#next; i < position; i++) {
      this.#leases[i]?.drop(); // the target holds what it queued
      this.#leases[i] = null;
      this.#pieces[i] = null;
    }
    this.#nextSent = sentBefore + tailBytes;
    this.#next = position;
  }
}
