import assert from "node:assert/strict";
import { ClientQuota } from "./client_quota.ts";

Deno.test("ClientQuota admits up to the limit over every worker's cell, and frees on release", () => {
  // Element 0: one past the highest cell in use; cells 1..4 for 4 workers.
  const counts = new Int32Array(new SharedArrayBuffer(4 * 8));
  counts[0] = 5;
  const workers = [1, 2, 3, 4].map((cell) => new ClientQuota(counts, cell));
  // max_clients 2 over 4 workers: 2 in all, whichever workers the clients reach.
  const admitted = [0, 1, 2, 3, 0, 1].map((w) => workers[w].tryTake(2));
  assert.deepEqual(admitted, [true, true, false, false, false, false]);
  assert.deepEqual([...counts.subarray(1, 5)], [1, 1, 0, 0]);
  workers[0].release();
  assert.ok(workers[3].tryTake(2), "a place freed on one worker serves another");
  assert.deepEqual([...counts.subarray(1, 5)], [0, 1, 0, 1]);
});
