/** Coalesces the bytes queued on one socket during an event-loop turn into one write. */

/** The writing side of a socket: a Deno.Conn or a test double. */
export interface Writable {
  write(bytes: Uint8Array): Promise<number>;
}

const INITIAL_CAPACITY = 1024;
/** A spare buffer above this size is dropped after a write instead of kept for reuse. */
const KEEP_SPARE_BELOW = 256 * 1024;

/**
 * Appends copy bytes into an owned buffer; the first append of a turn schedules a flush
 * in a microtask, and while a write is in flight further appends go to a second buffer.
 */
export class WriteBatcher {
  #out: Writable | null;
  #buf = new Uint8Array(INITIAL_CAPACITY);
  #len = 0;
  #spare: Uint8Array<ArrayBuffer> | null = null;
  #writing = false;
  #scheduled = false;
  #failed = false;
  /** When the write in flight started (performance.now()), or -1 with none in flight. */
  writeStartedAt = -1;
  readonly #onError: (err: unknown) => void;
  /** Called as each batch starts its write, with the time (performance.now()). */
  onFlush: ((startedAt: number) => void) | null = null;
  #idleWaiters: (() => void)[] = [];

  /** `out` may be null until the socket is connected; bytes queue meanwhile. */
  constructor(out: Writable | null, onError: (err: unknown) => void) {
    this.#out = out;
    this.#onError = onError;
  }

  /** Bytes queued and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.#len;
  }

  /** True while bytes are queued or a write is in flight. */
  get busy(): boolean {
    return this.#len > 0 || this.#writing;
  }

  /** Resolves once nothing is queued or in flight (at once when already idle, or after a failure). */
  idle(): Promise<void> {
    if (!this.busy || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Attaches the socket once connected and flushes what queued meanwhile. */
  attach(out: Writable): void {
    this.#out = out;
    this.#failed = false;
    this.#schedule();
  }

  /** Drops queued bytes (the connection they were meant for is gone). */
  discard(): void {
    this.#len = 0;
    this.#out = null;
    this.#failed = true;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Copies `bytes` into the batch. */
  append(bytes: Uint8Array): void {
    const need = this.#len + bytes.length;
    if (need > this.#buf.length) {
      let capacity = this.#buf.length * 2;
      while (capacity < need) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(bytes, this.#len);
    this.#len = need;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || this.#out === null) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#flush());
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#writing || this.#failed) return;
    this.#writing = true;
    try {
      while (this.#len > 0 && this.#out !== null) {
        const out = this.#out;
        const chunk = this.#buf;
        const size = this.#len;
        this.#buf = this.#spare ?? new Uint8Array(INITIAL_CAPACITY);
        this.#spare = null;
        this.#len = 0;
        this.writeStartedAt = performance.now();
        this.onFlush?.(this.writeStartedAt);
        let at = 0;
        while (at < size) at += await out.write(chunk.subarray(at, size));
        if (chunk.length < KEEP_SPARE_BELOW) this.#spare = chunk;
      }
    } catch (err) {
      this.#failed = true;
      this.#len = 0;
      this.#onError(err);
    } finally {
      this.#writing = false;
      this.writeStartedAt = -1;
      if (this.#idleWaiters.length > 0 && (this.#len === 0 || this.#failed)) {
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
      }
    }
  }
}
