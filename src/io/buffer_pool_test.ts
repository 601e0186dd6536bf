import assert from "node:assert/strict";
import {
  BufferLease,
  giveBuffer,
  isPooledSize,
  pooledBytes,
  pooledSizeFor,
  takeBuffer,
  trimBufferPool,
} from "./buffer_pool.ts";

Deno.test("buffer pool: a buffer given back is the next one taken of its size", () => {
  trimBufferPool(0);
  const a = takeBuffer(128 * 1024);
  giveBuffer(a);
  assert.equal(pooledBytes(), 128 * 1024);
  assert.equal(takeBuffer(256 * 1024).length, 256 * 1024, "another size: a new buffer");
  assert.equal(takeBuffer(128 * 1024), a);
  assert.equal(pooledBytes(), 0);
});

Deno.test("buffer pool: sizes outside the range and views are freed, not kept", () => {
  trimBufferPool(0);
  const small = new Uint8Array(32 * 1024);
  giveBuffer(small);
  const odd = new Uint8Array(100_000);
  giveBuffer(odd);
  const view = new Uint8Array(256 * 1024).subarray(0, 128 * 1024);
  giveBuffer(view);
  assert.equal(pooledBytes(), 0);
  assert.equal(odd.length, 0, "freed at once (detached)");
  assert.ok(!isPooledSize(32 * 1024) && isPooledSize(64 * 1024) && !isPooledSize(100_000));
  assert.equal(pooledSizeFor(100_000), 128 * 1024);
  assert.equal(pooledSizeFor(20 * 1024 * 1024), 32 * 1024 * 1024);
  assert.equal(pooledSizeFor(200 * 1024 * 1024), 200 * 1024 * 1024, "above the range: as asked");
});

Deno.test("buffer pool: spares unused for a second are freed by the ticker", () => {
  trimBufferPool(0);
  const a = takeBuffer(64 * 1024);
  giveBuffer(a);
  trimBufferPool(10_000); // notes the last use
  trimBufferPool(10_500);
  assert.equal(pooledBytes(), 64 * 1024, "used half a second ago: kept");
  trimBufferPool(11_001);
  assert.equal(pooledBytes(), 0);
  assert.equal(a.length, 0, "its memory went back (detached)");
});

Deno.test("BufferLease gives the buffer back once sealed and every lent segment is done", () => {
  trimBufferPool(0);
  for (const sealFirst of [true, false]) {
    trimBufferPool(1e9);
    const buffer = takeBuffer(64 * 1024);
    const lease = new BufferLease();
    lease.hold();
    lease.hold();
    if (sealFirst) lease.seal(buffer);
    lease.drop();
    assert.equal(pooledBytes(), 0, "one segment still queued");
    lease.drop();
    assert.equal(pooledBytes(), sealFirst ? 64 * 1024 : 0, "sealed and done: back");
    if (!sealFirst) {
      lease.seal(buffer);
      assert.equal(pooledBytes(), 64 * 1024, "done, then sealed: back");
    }
    assert.equal(takeBuffer(64 * 1024), buffer);
  }
});

Deno.test("buffer pool: a spare that does not fit frees older ones of other sizes first", () => {
  trimBufferPool(0);
  trimBufferPool(1e9);
  const mib = 1024 * 1024;
  const olds = [0, 1, 2, 3, 4, 5].map(() => takeBuffer(64 * mib));
  for (const old of olds) giveBuffer(old);
  assert.equal(pooledBytes(), 384 * mib, "the pool is full");
  const large = takeBuffer(128 * mib);
  giveBuffer(large);
  assert.equal(pooledBytes(), 384 * mib, "two 64 MiB spares made room");
  assert.equal(olds.filter((old) => old.length === 0).length, 2, "freed (detached)");
  assert.equal(takeBuffer(128 * mib), large, "the newest is kept");
  trimBufferPool(0);
  trimBufferPool(2e9);
});

Deno.test("BufferLease.over drops its parts once every segment over them is done", () => {
  trimBufferPool(0);
  trimBufferPool(3e9);
  const buffers = [takeBuffer(64 * 1024), takeBuffer(128 * 1024)];
  const parts = buffers.map((buffer) => {
    const part = new BufferLease();
    part.hold(); // the reader's hold, passed on to the group
    part.seal(buffer);
    return part;
  });
  const group = BufferLease.over(parts);
  group.hold();
  group.hold();
  group.seal(null);
  group.drop();
  assert.equal(pooledBytes(), 0, "a segment is still queued");
  group.drop();
  assert.equal(pooledBytes(), 192 * 1024, "both read buffers are back");
  assert.equal(takeBuffer(128 * 1024), buffers[1]);
});
