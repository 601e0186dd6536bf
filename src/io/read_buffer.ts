/** A growable byte buffer that a connection reads into; bytes [start, end) are unread. */
import { releaseBuffer } from "./copy_slab.ts";
import { type BufferLease, giveBuffer, pooledSizeFor, takeBuffer } from "./buffer_pool.ts";

/**
 * Set while a session hands the requests of a large read buffer to the backends (`open`):
 * a backend connection may then queue a large request's view (LEND_FROM bytes and more) as
 * it is, uncopied, counted by `lease` (it sets `taken` and makes the lease), and the session
 * detaches the buffer afterwards so those bytes stay as they are until written; the lease
 * then gives the buffer to the pool.
 */
export const lentInput: { open: boolean; taken: boolean; lease: BufferLease | null } = {
  open: false,
  taken: false,
  lease: null,
};

/**
 * Requests from which a backend writes from the read buffer instead of copying: 100 KB
 * values at pipeline 16 were copied into backend write batches of several MB per turn.
 */
export const LEND_FROM = 64 * 1024;

/** Above this capacity a buffer grows 4x at a time (fewer copies; the memory is lazily mapped). */
const GROW_4X_FROM = 1024 * 1024;

/** Capacity a new buffer starts with unless told otherwise. */
export const INITIAL_READ_CAPACITY = 1024;
/**
 * Idle buffers larger than this are given back after use; full reads double a buffer up to
 * this size unless told otherwise (`growsTo`).
 */
const SHRINK_ABOVE = 64 * 1024;
/** Below this much free space a read would be too small to be worth it. */
const MIN_FREE = 512;

/** The bytes of a buffer that holds none: before its first read, and while parked. */
const NO_DATA = new Uint8Array(0);
/**
 * Parked buffers of INITIAL_READ_CAPACITY kept for the next read of any connection (at most
 * this many): a client waiting at pipeline 1 parks and takes one per request, and an array
 * push and pop cost less than a new ArrayBuffer (round 6: half a microsecond).
 */
const SPARE_MAX = 256;
const _spares: Uint8Array[] = [];

/** A buffer of `capacity` bytes, a spare one when there is one of that size. */
function _newBuffer(capacity: number): Uint8Array {
  return (capacity === INITIAL_READ_CAPACITY ? _spares.pop() : undefined) ??
    new Uint8Array(capacity);
}

/**
 * Keeps a buffer no view reads again for the next connection: one of INITIAL_READ_CAPACITY
 * as a spare (while there is room), a pooled size in the pool, any other to GC.
 */
function _recycle(buffer: Uint8Array): void {
  if (buffer.length === INITIAL_READ_CAPACITY) {
    if (_spares.length < SPARE_MAX) _spares.push(buffer);
  } else giveBuffer(buffer as Uint8Array<ArrayBuffer>);
}

/** Spare buffers held now (tests). */
export function spareReadBuffers(): number {
  return _spares.length;
}

/**
 * The read side of a connection: one buffer owned by it, grown geometrically, shrunk when
 * idle. A read that fills the free space doubles the buffer for the next read (up to 64 KB,
 * or `growsTo` once a large frame grew it past that), so a connection that starts small grows
 * in a few reads once it streams; once everything is consumed and a read used under a quarter
 * of a grown buffer, it goes back to its initial size (an idle client must not keep what one
 * burst grew).
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
  /**
   * Views of the unread bytes are lent under this lease (a large reply written on while it
   * arrives): they must not be moved or written over. A growth leaves the old buffer to the
   * lease (back to the pool once its views are written) and clears this.
   */
  lease: BufferLease | null = null;

  /** A large buffer stays while reads fill it (see constructor). */
  readonly #keepGrown: boolean;
  /** Full reads double the buffer while it is smaller than this. */
  readonly #growsTo: number;

  /**
   * `keepGrown`: once empty, a large buffer shrinks only after a small read (the burst is
   * over), not at once: a backend connection carrying large replies one after another would
   * otherwise grow it anew for each. (After a large reply is handed on, detach() leaves a
   * fresh buffer whose pages are not mapped until written.)
   *
   * `growsTo` (default 64 KB): how large full reads may grow it once an announced large frame
   * grew it past 64 KB (expect(); announced sizes may grow it further).
   */
  constructor(
    capacity = INITIAL_READ_CAPACITY,
    options: { keepGrown?: boolean; growsTo?: number } = {},
  ) {
    this.#keepGrown = options.keepGrown ?? false;
    this.#growsTo = options.growsTo ?? SHRINK_ABOVE;
    this.#initialCapacity = capacity;
    this.#minFree = Math.min(MIN_FREE, capacity >> 1);
    // Allocated by the first freeSpace(): a connection that never sends holds none.
    this.data = NO_DATA;
  }

  /** Bytes of memory held now (0 before the first read and while parked). */
  get capacity(): number {
    return this.data.length;
  }

  /**
   * Gives the buffer up while it holds nothing unread (an idle connection waiting for its
   * socket): the next freeSpace() takes one again. Views of read bytes become stale (the
   * epoch changes). A grown one goes to the pool; a lent one must be detached first.
   */
  park(): void {
    if (this.start !== this.end || this.data === NO_DATA) return;
    const data = this.data;
    this.data = NO_DATA;
    this.start = this.end = 0;
    this.epoch++;
    this.#grow = false;
    this.#expected = 0;
    _recycle(data);
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
    if (this.data === NO_DATA) this.data = _newBuffer(this.#initialCapacity);
    if (this.#expected > 0) {
      const expected = this.#expected;
      this.#expected = 0;
      if (expected > this.data.length) {
        // The unread request is known to need `expected` bytes: one step, one copy.
        this.#grow = false;
        this.#replace(pooledSizeFor(expected + this.#minFree));
      }
    }
    const grown = this.data.length > this.#initialCapacity;
    if (
      this.start === this.end && grown && !this.#grow &&
      ((this.data.length > SHRINK_ABOVE && !this.#keepGrown) ||
        this.#lastRead < this.data.length >> 2)
    ) {
      this.#shrink();
    }
    if (this.#grow) {
      this.#grow = false;
      this.#replace(this.data.length * 2);
    } else if (this.data.length - this.end < this.#minFree) {
      // Read bytes are kept until the tail runs short, so views stay valid meanwhile.
      const unread = this.end - this.start;
      const capacity = this.data.length;
      if (
        this.lease === null &&
        (unread === 0 || capacity - unread >= Math.max(this.#minFree, capacity / 2))
      ) {
        this.epoch++;
        this.data.copyWithin(0, this.start, this.end);
        this.start = 0;
        this.end = unread;
      } else {
        this.#replace(capacity * (capacity >= GROW_4X_FROM ? 4 : 2));
      }
    }
    this.#offered = this.data.length - this.end;
    return this.data.subarray(this.end);
  }

  /**
   * The free tail as it is, without moving or growing anything: views of the bytes read so
   * far stay valid (a request held back while more is read). Empty when the tail is full.
   */
  tailSpace(): Uint8Array {
    this.#offered = this.data.length - this.end;
    return this.data.subarray(this.end);
  }

  #shrink(): void {
    // No view reads the old bytes again (a lent buffer was detached): it goes to the pool.
    this.#retire(this.data);
    this.data = _newBuffer(this.#initialCapacity);
    this.start = this.end = 0;
    this.epoch++;
    this.#grow = false;
  }

  /** Bytes the unread data at `start` is known to need in all, for the next freeSpace(). */
  #expected = 0;

  /**
   * Says the unread bytes begin a request of `bytes` in all (0: unknown): the next
   * freeSpace() makes room for all of it at once instead of growing step by step.
   */
  expect(bytes: number): void {
    this.#expected = bytes;
  }

  /** Records `n` bytes just read into the free tail. */
  commit(n: number): void {
    this.end += n;
    this.#lastRead = n;
    // Past 64 KB only a buffer an announced large frame grew (expect) doubles on: small frames
    // need no more, and a larger buffer freed raises glibc's mmap threshold, after which a
    // burst's write batches come from the heap and keep their pages (tests/faults_test.ts).
    const limit = this.data.length > SHRINK_ABOVE ? this.#growsTo : SHRINK_ABOVE;
    if (n === this.#offered && n > 0 && this.data.length < limit) this.#grow = true;
  }

  /**
   * Gives the bytes read so far away: views of them stay valid, as the buffer is never
   * written again; the unread bytes move to a new buffer (a large reply handed on uncopied).
   * Returns the old buffer (for a lease to give back once its lent views are written).
   *
   * `keepSize`: the new buffer is as large as the old one, so the next large reply or request
   * needs no growth again (its pages are mapped only once written; the buffer shrinks once it
   * is empty after a small read). Without it the new buffer holds twice the unread bytes: a
   * reader that announces sizes (expect) grows it to the next large one in a step, from the
   * pool, whose warm pages a fresh buffer of the old size would not reuse.
   */
  detach(keepSize = true): Uint8Array<ArrayBuffer> {
    const old = this.data as Uint8Array<ArrayBuffer>;
    const unread = this.end - this.start;
    const capacity = keepSize
      ? Math.max(this.data.length, unread * 2)
      : pooledSizeFor(Math.max(this.#initialCapacity, unread * 2));
    const fresh = takeBuffer(capacity);
    fresh.set(this.data.subarray(this.start, this.end));
    this.data = fresh;
    this.start = 0;
    this.end = unread;
    this.epoch++;
    this.#grow = false;
    // A large value went by: the buffer stays large until a small read says the burst is over.
    this.#lastRead = capacity;
    return old;
  }

  /**
   * Frees the buffer's memory now (the connection is closed): views of it become empty.
   * A buffer no larger than it started is left to GC.
   */
  release(): void {
    if (this.data.length <= this.#initialCapacity || this.lease !== null) return;
    releaseBuffer(this.data);
    this.data = new Uint8Array(0);
    this.start = this.end = 0;
    this.epoch++;
  }

  /** A replaced buffer goes to the pool, or to the lease its views are lent under. */
  #retire(old: Uint8Array): void {
    const lease = this.lease;
    this.lease = null;
    if (lease !== null) lease.seal(old as Uint8Array<ArrayBuffer>);
    // A client's first buffer replaced by a large request's goes back to the spares: each
    // 100 KB SET at pipeline 1 took one there and returned none, so every later request
    // made a new ArrayBuffer (3 us of its 30 us of user time).
    else _recycle(old);
  }

  /** Moves the unread bytes into a new buffer of `capacity`. */
  #replace(capacity: number): void {
    const grown = takeBuffer(capacity);
    grown.set(this.data.subarray(this.start, this.end));
    this.end -= this.start;
    this.start = 0;
    // Nothing reads the old bytes again (views of them lived only during the calls that got
    // them; lent ones were detached): a pooled size goes back for the next connection.
    this.#retire(this.data);
    this.data = grown;
    this.epoch++;
  }
}
