import assert from "node:assert/strict";
import { RingQueue } from "./ring_queue.ts";

Deno.test("RingQueue keeps FIFO order across growth and wrap-around", () => {
  const queue = new RingQueue<number>();
  const expected: number[] = [];
  let next = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < round % 13; i++) {
      queue.push(next);
      expected.push(next++);
    }
    for (let i = 0; i < round % 7 && expected.length > 0; i++) {
      assert.equal(queue.peek(), expected[0]);
      assert.equal(queue.shift(), expected.shift());
    }
    assert.equal(queue.size, expected.length);
  }
  assert.deepEqual(queue.drain(), expected);
  assert.equal(queue.shift(), undefined);
});
