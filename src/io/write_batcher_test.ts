import assert from "node:assert/strict";
import { OWN_FROM, type Writable, WriteBatcher } from "./write_batcher.ts";

/**
 * A socket whose writes complete after a delay and take the bytes only then, as a write
 * the kernel could not take at once does: a buffer reused before that would show.
 */
class SlowSocket implements Writable {
  received: number[] = [];
  writes = 0;
  constructor(readonly delayMs: number, readonly maxChunk = Infinity) {}

  write(bytes: Uint8Array): Promise<number> {
    this.writes++;
    const n = Math.min(bytes.length, this.maxChunk);
    return new Promise((resolve) =>
      setTimeout(() => {
        this.received.push(...bytes.subarray(0, n));
        resolve(n);
      }, this.delayMs)
    );
  }
}

function _bytes(from: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (from + i) & 0xff);
}

Deno.test("WriteBatcher coalesces the appends of one turn into one write", async () => {
  const socket = new SlowSocket(0);
  const batcher = new WriteBatcher(socket, (err) => assert.fail(String(err)));
  for (let i = 0; i < 10; i++) batcher.append(_bytes(i * 5, 5));
  await batcher.idle();
  assert.equal(socket.writes, 1);
  assert.deepEqual(socket.received, [..._bytes(0, 50)]);
});

Deno.test("WriteBatcher: batchers sharing the buffer pool never see each other's bytes", async () => {
  const sockets = Array.from({ length: 20 }, (_, i) => new SlowSocket(1 + (i % 4), 700));
  const batchers = sockets.map((socket) => new WriteBatcher(socket, (e) => assert.fail(String(e))));
  const sent: number[][] = sockets.map(() => []);
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < batchers.length; i++) {
      // Sizes around the pooled capacity, so buffers grow, shrink and change hands.
      const chunk = _bytes(round * 31 + i, 1 + ((round * 97 + i * 13) % 1500));
      batchers[i].append(chunk);
      sent[i].push(...chunk);
    }
    if (round % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await Promise.all(batchers.map((batcher) => batcher.idle()));
  for (let i = 0; i < sockets.length; i++) assert.deepEqual(sockets[i].received, sent[i]);
});

Deno.test("WriteBatcher holds no buffer once idle, and none after discard", async () => {
  const socket = new SlowSocket(1);
  const batcher = new WriteBatcher(socket, (err) => assert.fail(String(err)));
  assert.equal(batcher.heldCapacity, 0);
  batcher.append(_bytes(0, 100));
  assert.ok(batcher.heldCapacity > 0);
  await batcher.idle();
  assert.equal(batcher.heldCapacity, 0);
  batcher.append(_bytes(0, 5000)); // grows past the pooled size
  await batcher.idle();
  assert.equal(batcher.heldCapacity, 0);
  batcher.append(_bytes(0, 10));
  batcher.discard();
  assert.equal(batcher.heldCapacity, 0);
});

Deno.test("WriteBatcher queues until attached, then writes everything in order", async () => {
  const batcher = new WriteBatcher(null, (err) => assert.fail(String(err)));
  batcher.append(_bytes(0, 3));
  batcher.append(_bytes(3, 3));
  const socket = new SlowSocket(0);
  batcher.attach(socket);
  await batcher.idle();
  assert.deepEqual(socket.received, [..._bytes(0, 6)]);
});

Deno.test("WriteBatcher with keepBuffers reuses its grown buffer across batches", async () => {
  const socket = new SlowSocket(0);
  const batcher = new WriteBatcher(socket, (e) => assert.fail(String(e)), { keepBuffers: true });
  const sent: number[] = [];
  for (let round = 0; round < 5; round++) {
    const chunk = _bytes(round, 5000);
    batcher.append(chunk);
    sent.push(...chunk);
    await batcher.idle();
    assert.equal(batcher.heldCapacity, 8192, "the grown buffer stays for the next batch");
  }
  assert.deepEqual(socket.received, sent);
});

Deno.test("WriteBatcher drops what is appended after a write failed", async () => {
  let failures = 0;
  const failing: Writable = { write: () => Promise.reject(new Error("gone")) };
  const batcher = new WriteBatcher(failing, () => failures++);
  batcher.append(_bytes(0, 10));
  await batcher.idle();
  assert.equal(failures, 1);
  batcher.append(_bytes(0, 5000));
  assert.equal(batcher.queuedBytes, 0);
  assert.equal(batcher.heldCapacity, 0);
});

Deno.test("WriteBatcher: large owned buffers go out uncopied, in order with copied appends", async () => {
  const socket = new SlowSocket(1, 50_000);
  const batcher = new WriteBatcher(socket, (err) => assert.fail(String(err)));
  let flushes = 0;
  let written = 0;
  batcher.onFlush = () => flushes++;
  batcher.onWritten = () => written++;
  const big = _bytes(7, OWN_FROM + 3);
  const expected: number[] = [];
  const add = (bytes: Uint8Array, owned: boolean) => {
    for (const byte of bytes) expected.push(byte);
    if (owned) batcher.appendOwned(bytes);
    else batcher.append(bytes);
  };
  add(_bytes(0, 10), false);
  add(big, true);
  add(_bytes(50, 20), false);
  await new Promise((resolve) => setTimeout(resolve, 0));
  add(_bytes(90, 5), false); // while the first flush is being written
  add(_bytes(3, OWN_FROM), true);
  assert.equal(batcher.queuedBytes > 0, true);
  await batcher.idle();
  assert.equal(socket.received.length, expected.length);
  assert.deepEqual(socket.received, expected);
  assert.equal(written, flushes, "each flush reports once when wholly written");
  assert.equal(batcher.queuedBytes, 0);
});

Deno.test("WriteBatcher: lent bytes go out in order, and their lease is told once written or dropped", async () => {
  const { BufferLease, pooledBytes, takeBuffer, trimBufferPool } = await import("./buffer_pool.ts");
  trimBufferPool(0);
  trimBufferPool(1e9);
  const socket = new SlowSocket(1, 50_000);
  const batcher = new WriteBatcher(socket, (err) => assert.fail(String(err)));
  const lent = takeBuffer(128 * 1024);
  lent.set(_bytes(7, 100_000));
  const lease = new BufferLease();
  batcher.append(_bytes(0, 7));
  batcher.appendLent(lent.subarray(0, 100_000), lease);
  batcher.append(_bytes(100_007 & 0xff, 3));
  lease.seal(lent);
  assert.equal(pooledBytes(), 0, "queued: not given back");
  await batcher.idle();
  assert.deepEqual(socket.received, [..._bytes(0, 100_010)]);
  assert.equal(pooledBytes(), 128 * 1024, "written: back in the pool");
  // Dropped unwritten (the connection is gone): the lease is told too.
  const other = takeBuffer(128 * 1024);
  const dropped = new BufferLease();
  const gone = new WriteBatcher(null, () => {});
  gone.appendLent(other.subarray(0, 70_000), dropped);
  dropped.seal(other);
  gone.discard();
  assert.equal(pooledBytes(), 128 * 1024);
  trimBufferPool(1e9 + 1);
  trimBufferPool(1e9 + 5000);
});

/** A socket that takes up to `takeNow` bytes at once (tryWrite), the rest through write(). */
class TrySocket extends SlowSocket {
  tries = 0;
  constructor(readonly takeNow: number) {
    super(0);
  }

  tryWrite(bytes: Uint8Array): number {
    this.tries++;
    const n = Math.min(bytes.length, this.takeNow);
    this.received.push(...bytes.subarray(0, n));
    return n;
  }
}

Deno.test("WriteBatcher.appendView writes a large view through an idle socket, in order", async () => {
  // The socket takes it all: no copy, no write() at all.
  const all = new TrySocket(1 << 20);
  const batcher = new WriteBatcher(all, (err) => assert.fail(String(err)));
  const view = _bytes(0, 20_000);
  batcher.appendView(view);
  assert.equal(batcher.queuedBytes, 0);
  assert.equal(all.received.length, 20_000);
  // It takes part: the rest is copied and follows; what comes next follows that.
  const part = new TrySocket(5_000);
  const partly = new WriteBatcher(part, (err) => assert.fail(String(err)));
  partly.appendView(_bytes(0, 20_000));
  partly.append(_bytes(20_000 & 0xff, 10));
  assert.equal(partly.queuedBytes, 15_010);
  await partly.idle();
  assert.deepEqual(part.received, [..._bytes(0, 20_010)]);
  // Bytes already queued: the view is queued behind them, not written ahead.
  const busy = new TrySocket(1 << 20);
  const queued = new WriteBatcher(busy, (err) => assert.fail(String(err)));
  queued.append(_bytes(0, 10));
  queued.appendView(_bytes(10, 20_000));
  assert.equal(busy.tries, 0);
  await queued.idle();
  assert.deepEqual(busy.received, [..._bytes(0, 20_010)]);
});
