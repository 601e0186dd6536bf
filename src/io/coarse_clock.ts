/** A clock read on the hot path without a call: one tick per worker updates it. */
export const coarseClock = { now: performance.now() };

/** Moves the coarse clock to the current time (called by the worker's ticker). */
export function tickCoarseClock(): number {
  coarseClock.now = performance.now();
  return coarseClock.now;
}

let turnTime = -1;

function _endTurn(): void {
  turnTime = -1;
}

/**
 * Wall-clock ms (Date.now()) read once per batch of work: the first call reads the clock and
 * later calls reuse it until the microtasks queued so far have run. Requests framed from
 * one read, or replies from one backend chunk, share one clock read instead of one each
 * (a clock read was ~4% of a pipelined profile).
 */
export function turnNow(): number {
  if (turnTime < 0) {
    turnTime = Date.now();
    queueMicrotask(_endTurn);
  }
  return turnTime;
}
