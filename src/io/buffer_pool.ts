/**
 * Spare read buffers of 64 KiB to 128 MiB, by power-of-two size, for this isolate. A
 * connection streaming 100 KB values grew its read buffer from 1 KiB in eight steps for every
 * request and shrank it back once the request was handed on: each step a fresh ArrayBuffer,
 * zeroed by calloc and faulted in page by page (a third of a profile of 100 KB SETs). A
 * buffer given back here is handed to the next connection that grows to its size, its pages
 * already mapped.
 *
 * Only a buffer no view will read again may be given back: one a read buffer replaces or
 * shrinks (views of its bytes are used only during the call that gets them, or were lent
 * and the buffer detached, see ReadBuffer.detach). What stays unused for IDLE_MS is freed
 * (`trimBufferPool`, from the worker's ticker), so a burst leaves no memory behind.
 */
import { releaseBuffer } from "./copy_slab.ts";

/** Smallest and largest pooled capacity (powers of two). */
export const POOLED_FROM = 64 * 1024;
export const POOLED_UP_TO = 128 * 1024 * 1024;
/**
 * Most bytes kept spare in all: a pipeline of 5 x 16 MB SETs leaves six 32 MiB buffers, the
 * MGET of them two 64 MiB ones (over 2 shards); both stay warm.
 */
const POOL_MAX_BYTES = 384 * 1024 * 1024;
/** A spare buffer unused this long is freed. */
const IDLE_MS = 1000;

/** Spare buffers by log2 of their capacity. */
const _spares: Uint8Array<ArrayBuffer>[][] = [];
let _pooledBytes = 0;
/** When the pool was last used (a take or a give), by the ticker's clock; -1: never. */
let _lastUse = -1;

/** True when `capacity` is a size the pool keeps. */
export function isPooledSize(capacity: number): boolean {
  return capacity >= POOLED_FROM && capacity <= POOLED_UP_TO && (capacity & (capacity - 1)) === 0;
}

/** The smallest pooled size that holds `bytes`, or `bytes` itself when above the range. */
export function pooledSizeFor(bytes: number): number {
  if (bytes > POOLED_UP_TO) return bytes;
  let size = POOLED_FROM;
  while (size < bytes) size *= 2;
  return size;
}

/** A buffer of `capacity` bytes (contents undefined): a spare one when the pool has it. */
export function takeBuffer(capacity: number): Uint8Array<ArrayBuffer> {
  if (isPooledSize(capacity)) {
    _lastUse = 0;
    const spare = _spares[Math.log2(capacity)]?.pop();
    if (spare !== undefined && !spare.buffer.detached) {
      _pooledBytes -= capacity;
      return spare;
    }
  }
  return new Uint8Array(capacity);
}

/** Gives back a buffer nothing will read or write again; freed when the pool is full. */
export function giveBuffer(buffer: Uint8Array<ArrayBuffer>): void {
  const capacity = buffer.length;
  if (
    !isPooledSize(capacity) || buffer.byteOffset !== 0 || buffer.buffer.byteLength !== capacity
  ) {
    releaseBuffer(buffer);
    return;
  }
  // The newest buffer is the likeliest to be asked for again: older spares make room for it.
  _evictFor(capacity);
  _lastUse = 0;
  (_spares[Math.log2(capacity)] ??= []).push(buffer);
  _pooledBytes += capacity;
}

/** Frees spares, those of other sizes first, until `capacity` more bytes fit under the cap. */
function _evictFor(capacity: number): void {
  const own = Math.log2(capacity);
  for (let pass = 0; pass < 2 && _pooledBytes + capacity > POOL_MAX_BYTES; pass++) {
    for (let size = _spares.length - 1; size >= 0; size--) {
      const spares = _spares[size];
      if (spares === undefined || (pass === 0 && size === own)) continue;
      while (spares.length > 0 && _pooledBytes + capacity > POOL_MAX_BYTES) {
        _pooledBytes -= 2 ** size;
        releaseBuffer(spares.pop()!);
      }
    }
  }
}

/** Bytes held spare now (tests, metrics). */
export function pooledBytes(): number {
  return _pooledBytes;
}

/**
 * Frees every spare buffer once the pool went unused for IDLE_MS; call it periodically with
 * a clock in ms. (A take or give marks the pool used; the next call notes the time.)
 */
export function trimBufferPool(now: number): void {
  if (_pooledBytes === 0) return;
  if (_lastUse === 0) {
    _lastUse = now;
    return;
  }
  if (now - _lastUse < IDLE_MS) return;
  for (const spares of _spares) {
    if (spares === undefined) continue;
    for (const spare of spares.splice(0)) releaseBuffer(spare);
  }
  _pooledBytes = 0;
  _lastUse = -1;
}

/**
 * A read buffer's bytes lent to write batchers (large requests written from where they were
 * read): counts the segments still queued or in flight, and gives the buffer to the pool
 * once the reader has let it go (`seal`) and the last of them is written or dropped.
 */
export class BufferLease {
  #refs = 0;
  #buffer: Uint8Array<ArrayBuffer> | null = null;
  #sealed = false;
  /** Leases this one stands for (a merged reply written from several read buffers). */
  #parts: readonly BufferLease[] = [];

  /** A lease whose release drops `parts` (each once), as one lease over their segments. */
  static over(parts: readonly BufferLease[]): BufferLease {
    const lease = new BufferLease();
    lease.#parts = parts;
    return lease;
  }

  /** A segment of the buffer was queued. */
  hold(): void {
    this.#refs++;
  }

  /** A segment was written or dropped. */
  drop(): void {
    if (--this.#refs === 0 && this.#sealed) this.#giveBack();
  }

  /**
   * The reader detached `buffer` and reads on in another: nothing but the segments holds it.
   * (null: a lease `over` others, sealed once all its segments are queued.)
   */
  seal(buffer: Uint8Array<ArrayBuffer> | null): void {
    this.#buffer = buffer;
    this.#sealed = true;
    if (this.#refs === 0) this.#giveBack();
  }

  #giveBack(): void {
    const buffer = this.#buffer;
    this.#buffer = null;
    if (buffer !== null) giveBuffer(buffer);
    const parts = this.#parts;
    this.#parts = [];
    for (const part of parts) part.drop();
  }
}
