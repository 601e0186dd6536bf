/** Coalesces the bytes queued on one socket during an event-loop turn into one write. */
import { releaseBuffer } from "./copy_slab.ts";
import { type BufferLease, giveBuffer, isPooledSize, takeBuffer } from "./buffer_pool.ts";

/** The writing side of a socket: a runtime connection or a test double. */
export interface Writable {
  write(bytes: Uint8Array): Promise<number>;
  /**
   * Writes what the socket takes now, without waiting: bytes written, 0 when it takes
   * nothing yet (then write() waits). Sockets that can (`io = "ffi"`) save a promise per flush.
   */
  tryWrite?(bytes: Uint8Array): number;
}

const INITIAL_CAPACITY = 1024;
/** A spare buffer above this size is dropped after a write instead of kept for reuse. */
const KEEP_SPARE_BELOW = 256 * 1024;
/** Views from which appendView() first tries to write them as they lie. */
const WRITE_THROUGH_FROM = 16 * 1024;
/** Bytes from which appendOwned() queues a buffer as it is instead of copying it. */
export const OWN_FROM = 256 * 1024;
/** Most idle INITIAL_CAPACITY buffers kept in the pool of this isolate. */
const POOL_MAX = 256;
/**
 * Buffers of INITIAL_CAPACITY no batcher holds. A batcher takes one when bytes are appended
 * and gives it back once written, so an idle socket holds no output buffer at all (10,000
 * idle clients would otherwise keep 10,000 of them).
 */
const pool: Uint8Array<ArrayBuffer>[] = [];

function _takeBuffer(): Uint8Array<ArrayBuffer> {
  return pool.pop() ?? new Uint8Array(INITIAL_CAPACITY);
}

function _giveBack(buf: Uint8Array<ArrayBuffer>): void {
  if (buf.length === INITIAL_CAPACITY && pool.length < POOL_MAX) pool.push(buf);
  else if (isPooledSize(buf.length)) giveBuffer(buf); // a grown one, for the next to grow
  else releaseBuffer(buf); // written or never to be: its memory goes back now, not at a GC
}

/** A buffer queued whole (appendOwned), or a batch buffer sealed ahead of one (`own`). */
interface Segment {
  bytes: Uint8Array;
  /** The batcher's own buffer: released once written. Else the caller's: left to GC. */
  own: boolean;
  /** Bytes lent from a read buffer: the lease is told once they are written or dropped. */
  lease: BufferLease | null;
}

/**
 * Appends copy bytes into a buffer; the first append of a turn schedules a flush in a
 * microtask, and while a write is in flight further appends go to a second buffer.
 * A client's batcher holds buffers only while bytes are queued or being written; a
 * backend's (`keepBuffers`: few sockets, each carrying many clients' requests) keeps its
 * grown buffer between batches instead of growing a new one every turn.
 */
export class WriteBatcher {
  #out: Writable | null;
  /** Queued bytes are [0, #len); null while nothing is queued. */
  #buf: Uint8Array<ArrayBuffer> | null = null;
  #len = 0;
  #spare: Uint8Array<ArrayBuffer> | null = null;
  #writing = false;
  #scheduled = false;
  #failed = false;
  /** When the write in flight started (the batcher's clock, ms), or -1 with none in flight. */
  writeStartedAt = -1;
  readonly #onError: (err: unknown) => void;
  /** Called as each batch starts its write, with the time (the batcher's clock). */
  onFlush: ((startedAt: number) => void) | null = null;
  /** Callers of idle() waiting (null until the first: most batchers never have one). */
  #idleWaiters: (() => void)[] | null = null;
  /**
   * Large buffers queued whole, in order, ahead of #buf (null until the first: only big
   * values use them, and then the queue is `#segments`, then `#buf`).
   */
  #segments: Segment[] | null = null;
  #segmentBytes = 0;
  /** Segments left in the flush being written (0: the flush is #buf alone, as usual). */
  #flushSegments = 0;
  /** Called once each flush's bytes were all handed to the socket. */
  onWritten: (() => void) | null = null;
  readonly #keepBuffers: boolean;
  /** Times each write (writeStartedAt); a coarse clock saves an op call per flush. */
  readonly #clock: () => number;

  /** `out` may be null until the socket is connected; bytes queue meanwhile. */
  constructor(
    out: Writable | null,
    onError: (err: unknown) => void,
    options: { keepBuffers?: boolean; clock?: () => number } = {},
  ) {
    this.#out = out;
    this.#onError = onError;
    this.#keepBuffers = options.keepBuffers ?? false;
    this.#clock = options.clock ?? performance.now.bind(performance);
  }

  /** Bytes queued and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.#len + this.#segmentBytes;
  }

  /** Capacity of the buffers this batcher holds now (0 when idle: they went back to the pool). */
  get heldCapacity(): number {
    return (this.#buf?.length ?? 0) + (this.#spare?.length ?? 0);
  }

  /** True while bytes are queued or a write is in flight. */
  get busy(): boolean {
    return this.#len > 0 || this.#segmentBytes > 0 || this.#writing;
  }

  /** Resolves once nothing is queued or in flight (at once when already idle, or after a failure). */
  idle(): Promise<void> {
    if (!this.busy || this.#failed) return Promise.resolve();
    return new Promise((resolve) => (this.#idleWaiters ??= []).push(resolve));
  }

  /** Attaches the socket once connected and flushes what queued meanwhile. */
  attach(out: Writable): void {
    this.#out = out;
    this.#failed = false;
    this.#schedule();
  }

  /** Drops queued bytes (the connection they were meant for is gone). */
  discard(): void {
    this.#dropSegments();
    if (this.#buf !== null) _giveBack(this.#buf);
    if (this.#spare !== null) _giveBack(this.#spare);
    this.#buf = null;
    this.#spare = null;
    this.#len = 0;
    this.#out = null;
    this.#failed = true;
    this.#wakeIdleWaiters();
  }

  /**
   * Queues `bytes` without copying when large (OWN_FROM and more): the caller gives them up,
   * nothing may change them until written. Smaller ones are copied as by append().
   */
  appendOwned(bytes: Uint8Array): void {
    if (bytes.length < OWN_FROM) {
      this.append(bytes);
      return;
    }
    if (this.#failed) return;
    const segments = this.#segments ??= [];
    if (this.#len > 0) {
      // What was appended before goes out first: the batch buffer is sealed as a segment.
      segments.push({ bytes: this.#buf!.subarray(0, this.#len), own: true, lease: null });
      this.#segmentBytes += this.#len;
      this.#buf = null;
      this.#len = 0;
    }
    segments.push({ bytes, own: false, lease: null });
    this.#segmentBytes += bytes.length;
    this.#schedule();
  }

  /**
   * Queues `bytes` lent from a read buffer, uncopied: `lease` holds the buffer until they
   * are written or dropped.
   */
  appendLent(bytes: Uint8Array, lease: BufferLease): void {
    if (this.#failed) return;
    const segments = this.#segments ??= [];
    if (this.#len > 0) {
      segments.push({ bytes: this.#buf!.subarray(0, this.#len), own: true, lease: null });
      this.#segmentBytes += this.#len;
      this.#buf = null;
      this.#len = 0;
    }
    lease.hold();
    segments.push({ bytes, own: false, lease });
    this.#segmentBytes += bytes.length;
    this.#schedule();
  }

  #dropSegments(): void {
    if (this.#segments === null) return;
    for (const segment of this.#segments) {
      if (segment.own) releaseBuffer(segment.bytes);
      segment.lease?.drop();
    }
    this.#segments = null;
    this.#segmentBytes = 0;
    this.#flushSegments = 0;
  }

  /**
   * Like append(), but a large view (WRITE_THROUGH_FROM bytes and more) meeting an idle
   * batcher is first offered to the socket as it lies (`tryWrite`): at pipeline 1 the
   * client's socket takes a 100 KB reply whole, and the copy into a batch is saved. What the
   * socket does not take is copied as by append(), behind nothing, so the order holds.
   */
  appendView(bytes: Uint8Array): void {
    const out = this.#out;
    if (
      bytes.length >= WRITE_THROUGH_FROM && out?.tryWrite !== undefined && !this.#failed &&
      !this.#writing && !this.#scheduled && this.#len === 0 && this.#segmentBytes === 0
    ) {
      let n = 0;
      try {
        n = out.tryWrite(bytes);
      } catch {
        n = 0; // the flush of the copy meets the error and reports it
      }
      if (n === bytes.length) return;
      bytes = bytes.subarray(n);
    }
    this.append(bytes);
  }

  /** Copies `bytes` into the batch (dropped once a write failed: the socket is gone). */
  append(bytes: Uint8Array): void {
    if (this.#failed) return;
    const need = this.#len + bytes.length;
    let buf = this.#buf ?? this.#spare ?? _takeBuffer();
    if (buf === this.#spare) this.#spare = null;
    if (need > buf.length) {
      let capacity = buf.length * 2;
      while (capacity < need) capacity *= 2;
      const grown = takeBuffer(capacity);
      grown.set(buf.subarray(0, this.#len));
      _giveBack(buf);
      buf = grown;
    }
    buf.set(bytes, this.#len);
    this.#buf = buf;
    this.#len = need;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || this.#out === null) return;
    this.#scheduled = true;
    queueMicrotask(this.#flushTask ??= () => this.#flush());
  }

  // Callbacks made once per batcher: a flush runs per request at pipeline 1, so it makes
  // no closure, async frame or clock op call of its own.
  /** Callbacks made at their first use (a batcher whose writes complete at once needs no promise's). */
  #flushTask: (() => void) | null = null;
  #onWritten: ((n: number) => void) | null = null;
  #onWriteFailed: ((err: unknown) => void) | null = null;
  /** The chunk being written, its size and how much of it the socket took so far. */
  #chunk: Uint8Array | null = null;
  /** The chunk is a segment (not a batch buffer to keep or pool); its `own` flag. */
  #chunkSegment = false;
  #chunkOwn = false;
  /** The lease of a lent chunk, told once the chunk is written or its write failed. */
  #chunkLease: BufferLease | null = null;
  #chunkSize = 0;
  #chunkWritten = 0;

  #flush(): void {
    this.#scheduled = false;
    if (this.#writing || this.#failed) return;
    this.#writing = true;
    this.#writeNextChunk();
  }

  /** Starts writing what is queued, or ends the flush when nothing is. */
  #writeNextChunk(): void {
    if (this.#flushSegments > 0) {
      this.#writeSegment();
      return;
    }
    if (this.#segmentBytes > 0 && this.#out !== null) {
      // A flush with segments: all of them and what #buf holds now, sealed last.
      const segments = this.#segments!;
      if (this.#len > 0) {
        segments.push({ bytes: this.#buf!.subarray(0, this.#len), own: true, lease: null });
        this.#segmentBytes += this.#len;
        this.#buf = null;
        this.#len = 0;
      }
      this.#flushSegments = segments.length;
      this.writeStartedAt = this.#clock();
      this.onFlush?.(this.writeStartedAt);
      this.#writeSegment();
      return;
    }
    if (this.#len === 0 || this.#out === null) {
      this.#endFlush();
      return;
    }
    this.#chunk = this.#buf!;
    this.#chunkSegment = false;
    this.#chunkSize = this.#len;
    this.#chunkWritten = 0;
    this.#buf = null;
    this.#len = 0;
    this.writeStartedAt = this.#clock();
    this.onFlush?.(this.writeStartedAt);
    this.#writeRest();
  }

  /** Writes the next segment of the flush, whole, from where it lies. */
  #writeSegment(): void {
    const segment = this.#segments!.shift()!;
    this.#segmentBytes -= segment.bytes.length;
    this.#flushSegments--;
    this.#chunk = segment.bytes;
    this.#chunkSegment = true;
    this.#chunkOwn = segment.own;
    this.#chunkLease = segment.lease;
    this.#chunkSize = segment.bytes.length;
    this.#chunkWritten = 0;
    this.#writeRest();
  }

  #writeRest(): void {
    const out = this.#out!;
    const rest = this.#chunk!.subarray(this.#chunkWritten, this.#chunkSize);
    let pending: Promise<number>;
    try {
      // A partial write leaves the socket full: the next try takes 0 and write() waits.
      const now = out.tryWrite?.(rest) ?? 0;
      if (now > 0) {
        this.#written(now);
        return;
      }
      pending = out.write(rest);
    } catch (err) {
      this.#writeFailed(err);
      return;
    }
    pending.then(
      this.#onWritten ??= (n) => this.#written(n),
      this.#onWriteFailed ??= (err) => this.#writeFailed(err),
    );
  }

  #written(n: number): void {
    if (this.#failed || this.#out === null) {
      this.#chunk = null;
      this.#dropChunkLease(); // the write is over: nothing reads the lent bytes any more
      this.#endFlush();
      return;
    }
    this.#chunkWritten += n;
    if (this.#chunkWritten < this.#chunkSize) {
      this.#writeRest();
      return;
    }
    const chunk = this.#chunk!;
    this.#chunk = null;
    if (this.#chunkSegment) {
      if (this.#chunkOwn) releaseBuffer(chunk);
      this.#dropChunkLease();
      if (this.#flushSegments > 0) {
        this.#writeSegment();
        return;
      }
      this.onWritten?.();
      this.#writeNextChunk();
      return;
    }
    this.onWritten?.();
    // More queued meanwhile (or a backend): a grown buffer is worth keeping.
    const keep = this.#len > 0 || this.#keepBuffers;
    if (keep && chunk.length < KEEP_SPARE_BELOW && this.#spare === null) {
      this.#spare = chunk as Uint8Array<ArrayBuffer>;
    } else _giveBack(chunk as Uint8Array<ArrayBuffer>);
    this.#writeNextChunk();
  }

  #dropChunkLease(): void {
    const lease = this.#chunkLease;
    this.#chunkLease = null;
    lease?.drop();
  }

  #writeFailed(err: unknown): void {
    this.#chunk = null;
    this.#dropChunkLease();
    this.#dropSegments();
    const first = !this.#failed;
    this.#failed = true;
    // What queued meanwhile will never be written: its buffer goes back now.
    if (this.#buf !== null) _giveBack(this.#buf);
    this.#buf = null;
    this.#len = 0;
    if (first) this.#onError(err);
    this.#endFlush();
  }

  #endFlush(): void {
    if (this.#spare !== null && this.#len === 0 && !this.#keepBuffers) {
      _giveBack(this.#spare);
      this.#spare = null;
    }
    this.#writing = false;
    this.writeStartedAt = -1;
    if (
      this.#idleWaiters !== null &&
      ((this.#len === 0 && this.#segmentBytes === 0) || this.#failed)
    ) {
      this.#wakeIdleWaiters();
    }
  }

  #wakeIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = null;
    if (waiters !== null) { for (const resolve of waiters) resolve(); }
  }
}
