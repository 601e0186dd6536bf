/** A growable byte buffer that a connection reads into; bytes [start, end) are unread. */

/** Capacity a new buffer starts with: small, so idle connections stay cheap. */
export const INITIAL_READ_CAPACITY = 1024;
/** Idle buffers larger than this are given back after use. */
const SHRINK_ABOVE = 64 * 1024;
/** Below this much free space a read would be too small to be worth it. */
const MIN_FREE = 512;

/** The read side of a connection: one buffer owned by it, grown geometrically, shrunk when idle. */
export class ReadBuffer {
  data: Uint8Array;
  start = 0;
  end = 0;
  /**
   * Changes whenever bytes already read may be overwritten (a reset, compaction or shrink):
   * a view taken at the same epoch still holds what was read.
   */
  epoch = 0;

  constructor(capacity = INITIAL_READ_CAPACITY) {
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
    if (this.start === this.end && this.data.length > SHRINK_ABOVE) {
      this.data = new Uint8Array(INITIAL_READ_CAPACITY);
      this.start = this.end = 0;
      this.epoch++;
    }
    if (this.data.length - this.end < MIN_FREE) {
      // Read bytes are kept until the tail runs short, so views stay valid meanwhile.
      this.epoch++;
      if (this.start === this.end) {
        this.start = this.end = 0;
        return this.data.subarray(0);
      }
      const unread = this.end - this.start;
      if (this.start > 0 && this.data.length - unread >= Math.max(MIN_FREE, this.data.length / 2)) {
        this.data.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(this.data.length * 2);
        grown.set(this.data.subarray(this.start, this.end));
        this.data = grown;
      }
      this.start = 0;
      this.end = unread;
    }
    return this.data.subarray(this.end);
  }

  /** Records `n` bytes just read into the free tail. */
  commit(n: number): void {
    this.end += n;
  }
}
