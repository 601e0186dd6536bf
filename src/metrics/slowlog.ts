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

/** A bounded log of requests slower than a threshold. */
export class Slowlog {
  readonly slowerThanUs: number;
  readonly maxLen: number;
  #entries: SlowlogEntry[] = [];
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

  /** Copies what an entry would keep of a request (its arguments are views into a buffer). */
  static summarize(argv: readonly Uint8Array[]): Uint8Array[] {
    const kept = argv.slice(0, MAX_ARGS).map((arg) => arg.slice(0, MAX_ARG_BYTES));
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
    this.#entries.unshift({
      id: this.#nextId++,
      unixTime: Math.floor(Date.now() / 1000),
      durationUs: Math.round(durationUs),
      args,
    });
    if (this.#entries.length > this.maxLen) this.#entries.length = this.maxLen;
  }

  /** The newest `count` entries, newest first. */
  get(count: number): SlowlogEntry[] {
    return this.#entries.slice(0, Math.max(0, count));
  }

  /** Entries kept now. */
  get length(): number {
    return this.#entries.length;
  }

  /** Forgets every entry. */
  reset(): void {
    this.#entries = [];
  }
}
