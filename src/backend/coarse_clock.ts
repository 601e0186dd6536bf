/** A clock read on the hot path without a call: one tick per worker updates it. */
export const coarseClock = { now: performance.now() };

/** Moves the coarse clock to the current time (called by the worker's ticker). */
export function tickCoarseClock(): number {
  coarseClock.now = performance.now();
  return coarseClock.now;
}
