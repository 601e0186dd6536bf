/** A small seeded PRNG (mulberry32) for reproducible randomized tests. */

/** Deterministic random numbers from a 32-bit seed: the same seed gives the same stream. */
export class Random {
  #state: number;
  /** The seed it started from, to print when a test fails. */
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max], both included. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `count` random bytes. */
  bytes(count: number): Uint8Array {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = this.int(256);
    return out;
  }
}

/** The seed from env `ASTER_TEST_SEED` when set (to replay a failure), else `fallback`. */
export function testSeed(fallback: number): number {
  const fromEnv = Deno.env.get("ASTER_TEST_SEED");
  if (fromEnv === undefined || fromEnv === "") return fallback;
  const seed = Number(fromEnv);
  if (!Number.isInteger(seed)) {
    throw new Error(`ASTER_TEST_SEED must be an integer, got ${fromEnv}`);
  }
  return seed;
}
