/** A growable byte buffer that a connection reads into; bytes [start, end) are unread. */
import { releaseBuffer } from "./copy_slab.ts";

/** Capacity a new buffer starts with unless told otherwise. */
export const INITIAL_READ_CAPACITY = 1024;
/** Idle buffers larger than this are given back after use. */
const SHRINK_ABOVE = 64 * 1024;
/** Below this much free space a read would be too small to be worth it. */
const MIN_FREE = 512;

/**
 * The read side of a connection: one buffer owned by it, grown geometrically, shrunk when
 * idle. A read that fills the free space doubles the buffer for the next read, so a
 * connection that starts small grows in a few reads once it streams; once everything is
 * consumed and a read used under a quarter of a grown buffer, it goes back to its initial
 * size (an idle client must not keep what one burst grew).
 */
export class ReadBuffer {
  data: Uint8Array;
  start = 0;
  end = 0;
  /**
   * Changes whenever bytes already read may be overwritten (a reset, compaction or shrink):
   * a view taken at the same epoch still holds what was read.
   */
  epoch = 0;
  readonly #initialCapacity: number;
  readonly #minFree: number;
  /** Free bytes the last freeSpace() offered; a read of all of them asks for growth. */
  #offered = 0;
  #grow = false;
  /** Bytes the last read brought: a small one after a grown buffer means the burst is over. */
  #lastRead = 0;

  constructor(capacity = INITIAL_READ_CAPACITY) {
    this.#initialCapacity = capacity;
    this.#minFree = Math.min(MIN_FREE, capacity >> 1);
    this.data = new Uint8Array(capacity);
  }

  /** Unread byte count. */
  get length(): number {
    return this.end - this.start;
  }

  /**
   * Makes room for the next read and returns the free tail to read into. Unread bytes move
   * to the front when that frees enough space; otherwise the buffer doubles.
   */
  freeSpace(): Uint8Array {
    const grown = this.data.length > this.#initialCapacity;
    if (
      this.start === this.end && grown && !this.#grow &&
      (this.data.length > SHRINK_ABOVE || this.#lastRead < this.data.length >> 2)
    ) {
      this.data = new Uint8Array(this.#initialCapacity);
      this.start = this.end = 0;
      this.epoch++;
      this.#grow = false;
    }
    if (this.#grow) {
      this.#grow = false;
      this.#replace(this.data.length * 2);
    } else if (this.data.length - this.end < this.#minFree) {
      // Read bytes are kept until the tail runs short, so views stay valid meanwhile.
      const unread = this.end - this.start;
      const capacity = this.data.length;
      if (unread === 0 || capacity - unread >= Math.max(this.#minFree, capacity / 2)) {
        this.epoch++;
        this.data.copyWithin(0, this.start, this.end);
        this.start = 0;
        this.end = unread;
      } else {
        this.#replace(capacity * 2);
      }
    }
    this.#offered = this.data.length - this.end;
    return this.data.subarray(this.end);
  }

  /** Records `n` bytes just read into the free tail. */
  commit(n: number): void {
    this.end += n;
    this.#lastRead = n;
    if (n === this.#offered && n > 0 && this.data.length < SHRINK_ABOVE) this.#grow = true;
  }

  /**
   * Frees the buffer's memory now (the connection is closed): views of it become empty.
   * A buffer no larger than it started is left to GC.
   */
  release(): void {
    if (this.data.length <= this.#initialCapacity) return;
    releaseBuffer(this.data);
    this.data = new Uint8Array(0);
    this.start = this.end = 0;
    this.epoch++;
  }

  /** Moves the unread bytes into a new buffer of `capacity`. */
  #replace(capacity: number): void {
    const grown = new Uint8Array(capacity);
    grown.set(this.data.subarray(this.start, this.end));
    this.end -= this.start;
    this.start = 0;
    this.data = grown;
    this.epoch++;
  }
}
