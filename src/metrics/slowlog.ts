/** SLOWLOG: the slowest recent requests of one cluster in one worker. */

/** One logged request. */
export interface SlowlogEntry {
  id: number;
  /** Unix time, seconds, when the reply was ready. */
  unixTime: number;
  /** From request read to reply ready, microseconds. */
  durationUs: number;
  /** The first arguments, truncated like Redis (at most 32, each at most 128 bytes shown). */
  args: Uint8Array[];
}

/** Arguments kept per entry, and bytes kept per argument. */
const MAX_ARGS = 32;
const MAX_ARG_BYTES = 128;

/**
 * A bounded log of requests slower than a threshold. Under load most requests may qualify (1,000
 * clients at pipeline 1 wait over 10 ms each), so an entry costs one copy of its arguments into
 * one buffer and a slot in a ring, not an array shift.
 */
export class Slowlog {
  readonly slowerThanUs: number;
  readonly maxLen: number;
  /** The newest entries, oldest overwritten first; `#newest` is the last written. */
  #ring: SlowlogEntry[] = [];
  #newest = -1;
  #nextId = 0;

  /** `slowerThanUs` < 0 logs nothing; 0 logs everything. */
  constructor(slowerThanUs: number, maxLen: number) {
    this.slowerThanUs = slowerThanUs;
    this.maxLen = maxLen;
  }

  /** True when requests should be timed at all. */
  get enabled(): boolean {
    return this.slowerThanUs >= 0 && this.maxLen > 0;
  }

  /**
   * Copies what an entry would keep of a request (its arguments are views into a buffer):
   * into one new buffer, each argument a view of it.
   */
  static summarize(argv: readonly Uint8Array[]): Uint8Array[] {
    const count = Math.min(argv.length, MAX_ARGS);
    let size = 0;
    for (let i = 0; i < count; i++) size += Math.min(argv[i].length, MAX_ARG_BYTES);
    const store = new Uint8Array(size);
    const kept: Uint8Array[] = new Array(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const length = Math.min(argv[i].length, MAX_ARG_BYTES);
      store.set(argv[i].subarray(0, length), at);
      kept[i] = store.subarray(at, at + length);
      at += length;
    }
    if (argv.length > MAX_ARGS) {
      kept[MAX_ARGS - 1] = new TextEncoder().encode(
        `... (${argv.length - MAX_ARGS + 1} more arguments)`,
      );
    }
    return kept;
  }

  /** Logs a request that took `durationUs`, when over the threshold. */
  record(durationUs: number, args: Uint8Array[]): void {
    if (!this.enabled || durationUs < this.slowerThanUs) return;
    this.#newest = (this.#newest + 1) % this.maxLen;
    this.#ring[this.#newest] = {
      id: this.#nextId++,
      unixTime: Math.floor(Date.now() / 1000),
      durationUs: Math.round(durationUs),
      args,
    };
  }

  /** The newest `count` entries, newest first. */
  get(count: number): SlowlogEntry[] {
    const out: SlowlogEntry[] = [];
    const length = this.length;
    for (let i = 0; i < Math.min(count, length); i++) {
      out.push(this.#ring[(this.#newest - i + this.maxLen) % this.maxLen]);
    }
    return out;
  }

  /** Entries kept now. */
  get length(): number {
    return this.#ring.length;
  }

  /** Forgets every entry. */
  reset(): void {
    this.#ring = [];
    this.#newest = -1;
  }
}
