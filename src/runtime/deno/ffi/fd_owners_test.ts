import assert from "node:assert/strict";
import { FdOwners } from "./fd_owners.ts";

Deno.test("FdOwners: reap takes only what the owner still holds, once", () => {
  const owners = new FdOwners(FdOwners.memory(64));
  owners.own(3, 1);
  owners.own(7, 2);
  owners.own(9, 1);
  owners.own(12, 1);
  assert.equal(owners.release(9, 1), true); // closed by its worker before the crash
  assert.deepEqual(owners.reap(1), [3, 12]);
  assert.deepEqual(owners.reap(1), []);
  assert.deepEqual(owners.reap(2), [7]);
});

Deno.test("FdOwners: a dying worker does not close a number reaped and reused by another", () => {
  const owners = new FdOwners(FdOwners.memory(16));
  owners.own(5, 1);
  assert.deepEqual(owners.reap(1), [5]); // the supervisor closes 5
  owners.own(5, 2); // another worker's new socket gets number 5
  assert.equal(owners.release(5, 1), false); // the dying worker must not close it
  assert.equal(owners.release(5, 2), true);
  assert.equal(owners.release(5, 2), false); // and not twice
});

Deno.test("FdOwners: descriptors past the table are untracked and always closed by their owner", () => {
  const owners = new FdOwners(FdOwners.memory(4));
  owners.own(10, 1);
  assert.deepEqual(owners.reap(1), []);
  assert.equal(owners.release(10, 1), true);
});

Deno.test("FdOwners: two views of the same memory agree (as the supervisor and a worker)", () => {
  const memory = FdOwners.memory(8);
  new FdOwners(memory).own(4, 3);
  assert.deepEqual(new FdOwners(memory).reap(3), [4]);
});
