/**
 * When to give a burst's memory back. After thousands of clients leave, V8 runs no GC in an
 * idle worker and malloc keeps what their sessions freed: RSS stayed ~33 MB above its idle
 * level (bench/README.md, round 10). Once the clients fell well below their peak and stayed
 * there for a while, the worker collects and trims once (`Runtime.releaseMemory`); never
 * on a steady load, nor on every small drop.
 */

/** Fewest clients that must have left since the peak for it to count as a burst. */
export const BURST_CLIENTS = 1000;
/** How long the count must stay low before the release (a new burst may come at once), ms. */
export const BURST_QUIET_MS = 2000;

export class BurstRelease {
  /** Most clients seen since the last release. */
  #peak = 0;
  /** When the count first fell low enough, -1 while it is not. */
  #lowSince = -1;

  /**
   * Takes the worker's client count at `now` (ms); true when the memory should be released
   * now (once per burst).
   */
  observe(clients: number, now: number): boolean {
    if (clients > this.#peak) this.#peak = clients;
    const left = this.#peak - clients;
    if (left < BURST_CLIENTS || clients > this.#peak / 2) {
      this.#lowSince = -1;
      return false;
    }
    if (this.#lowSince < 0) this.#lowSince = now;
    if (now - this.#lowSince < BURST_QUIET_MS) return false;
    this.#peak = clients;
    this.#lowSince = -1;
    return true;
  }
}
