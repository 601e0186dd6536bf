/**
 * `max_clients` over all of a cluster's workers: each worker counts its clients in its own
 * cell of a shared Int32Array (the supervisor zeroes a crashed worker's cell; element 0 is
 * one past the highest cell ever handed out, so a sum reads only those), and a client
 * is admitted when the sum, its own count included, stays within the limit. The count goes
 * up before the sum is read, so two workers admitting at once may both refuse, never both
 * admit past the limit.
 */
export class ClientQuota {
  readonly #counts: Int32Array;
  readonly #cell: number;

  constructor(counts: Int32Array, cell: number) {
    this.#counts = counts;
    this.#cell = cell;
  }

  /** Counts one more client when the cluster has fewer than `limit`; false (nothing counted) else. */
  tryTake(limit: number): boolean {
    const counts = this.#counts;
    Atomics.add(counts, this.#cell, 1);
    let total = 0;
    const cells = Atomics.load(counts, 0);
    for (let i = 1; i < cells; i++) total += Atomics.load(counts, i);
    if (total <= limit) return true;
    Atomics.sub(counts, this.#cell, 1);
    return false;
  }

  /** A counted client left. */
  release(): void {
    Atomics.sub(this.#counts, this.#cell, 1);
  }
}
