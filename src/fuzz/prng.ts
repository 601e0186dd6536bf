/**
 * The fuzzer's seeded PRNG: one input is a pure function of (target, seed, index), so a
 * failure replays from those three numbers.
 */

/** sfc32, seeded through splitmix32 from (seed, stream): small, fast, good enough. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    let s = _mix32((seed >>> 0) ^ 0x6a09e667);
    s = _mix32(s ^ Math.imul((stream >>> 0) + 1, 0x9e3779b9));
    s = _mix32(s + Math.floor(stream / 0x100000000));
    this.#a = _mix32(s + 1);
    this.#b = _mix32(s + 2);
    this.#c = _mix32(s + 3);
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A uniform unsigned 32-bit integer. */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A uniform integer in [0, n) for 0 < n <= 2^32. */
  int(n: number): number {
    return Math.floor((this.next() / 0x100000000) * n);
  }

  /** A uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p * 0x100000000;
  }

  /** A uniform element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` uniform random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let v = this.next();
      for (let k = i; k < i + 4 && k < n; k++, v >>>= 8) out[k] = v & 0xff;
    }
    return out;
  }
}

function _mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
