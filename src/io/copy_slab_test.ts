import assert from "node:assert/strict";
import { CopySlab, MAX_SLAB_COPY, SLAB_BYTES } from "./copy_slab.ts";

Deno.test("CopySlab: copies keep their bytes after the source changes, small ones share a slab", () => {
  const slab = new CopySlab();
  const source = new Uint8Array([1, 2, 3, 4, 5]);
  const first = slab.copy(source.subarray(1, 4));
  source.fill(9);
  const second = slab.copy(source.subarray(0, 2));
  assert.deepEqual([...first], [2, 3, 4]);
  assert.deepEqual([...second], [9, 9]);
  assert.equal(first.buffer, second.buffer);
  assert.equal(first.buffer.byteLength, SLAB_BYTES);
  assert.equal(second.byteOffset, first.byteOffset + first.length);
});

Deno.test("CopySlab: a full slab is replaced, not overwritten, and large copies get their own buffer", () => {
  const slab = new CopySlab();
  const count = SLAB_BYTES / MAX_SLAB_COPY + 1;
  const kept = Array.from(
    { length: count },
    (_, i) => slab.copy(new Uint8Array(MAX_SLAB_COPY).fill(i)),
  );
  assert.equal(kept[0].buffer, kept[count - 2].buffer);
  assert.notEqual(kept[0].buffer, kept[count - 1].buffer);
  kept.forEach((copy, i) => assert.ok(copy.every((byte) => byte === i), `copy ${i}`));
  const large = slab.copy(new Uint8Array(MAX_SLAB_COPY + 1).fill(3));
  assert.equal(large.buffer.byteLength, MAX_SLAB_COPY + 1);
  assert.equal(slab.copy(new Uint8Array(0)).length, 0);
});
