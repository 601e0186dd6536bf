import assert from "node:assert/strict";
import { BURST_CLIENTS, BURST_QUIET_MS, BurstRelease } from "./burst_release.ts";

/** The times at which `observe` said to release, for `counts` sampled every `step` ms. */
function releases(counts: number[], step = 500): number[] {
  const burst = new BurstRelease();
  const at: number[] = [];
  counts.forEach((clients, i) => {
    if (burst.observe(clients, i * step)) at.push(i * step);
  });
  return at;
}

Deno.test("BurstRelease: one release once a burst has left and the count stayed low", () => {
  const quietSteps = BURST_QUIET_MS / 500;
  const counts = [10, 5000, 10_000, 20, ...Array(quietSteps + 4).fill(20)];
  // Low from index 3 on: due BURST_QUIET_MS later, and only once.
  assert.deepEqual(releases(counts), [(3 + quietSteps) * 500]);
});

Deno.test("BurstRelease: a steady load, a small drop or a drop to over half never release", () => {
  assert.deepEqual(releases(Array(20).fill(8000)), []);
  assert.deepEqual(releases([BURST_CLIENTS - 1, ...Array(20).fill(0)]), []);
  assert.deepEqual(releases([5000, ...Array(20).fill(2600)]), []);
});

Deno.test("BurstRelease: clients coming back before the quiet time end the wait", () => {
  const counts = [5000, 0, 0, 5000, 0, 0, 5000];
  assert.deepEqual(releases(counts), []);
});
