import assert from "node:assert/strict";
import { INITIAL_READ_CAPACITY, ReadBuffer, spareReadBuffers } from "./read_buffer.ts";

Deno.test("ReadBuffer keeps unread bytes while growing and compacting", () => {
  const buffer = new ReadBuffer();
  let written = 0;
  let consumed = 0;
  for (let i = 0; i < 200; i++) {
    const free = buffer.freeSpace();
    const n = Math.min(free.length, 300);
    for (let j = 0; j < n; j++) free[j] = (written + j) & 0xff;
    buffer.commit(n);
    written += n;
    // Consume a part, leaving a partial "request" behind.
    const take = Math.min(buffer.length, 250);
    for (let j = 0; j < take; j++) {
      assert.equal(buffer.data[buffer.start + j], (consumed + j) & 0xff);
    }
    buffer.start += take;
    consumed += take;
  }
  assert.ok(buffer.data.length <= 64 * 1024, "bounded by what stays unread");
});

Deno.test("ReadBuffer shrinks back when idle after a large request", () => {
  const buffer = new ReadBuffer();
  while (buffer.data.length < 1024 * 1024) buffer.commit(buffer.freeSpace().length);
  buffer.start = buffer.end;
  buffer.freeSpace();
  assert.equal(buffer.data.length, INITIAL_READ_CAPACITY);
});

Deno.test("ReadBuffer never overwrites read bytes within an epoch", () => {
  const buffer = new ReadBuffer();
  let epoch = buffer.epoch;
  let views: { view: Uint8Array; byte: number }[] = [];
  for (let i = 0; i < 500; i++) {
    const free = buffer.freeSpace();
    if (buffer.epoch !== epoch) {
      epoch = buffer.epoch;
      views = [];
    }
    const n = Math.min(free.length, 1 + (i * 37) % 200);
    free.fill(i & 0xff, 0, n);
    buffer.commit(n);
    views.push({ view: buffer.data.subarray(buffer.end - n, buffer.end), byte: i & 0xff });
    buffer.start = buffer.end; // everything consumed, as a session does
    for (const { view, byte } of views) assert.ok(view.every((b) => b === byte));
  }
  assert.ok(buffer.epoch > 0, "epochs turn over as the tail runs short");
});

Deno.test("ReadBuffer starts small and doubles when a read fills its free space", () => {
  const buffer = new ReadBuffer(256);
  assert.equal(buffer.freeSpace().length, 256);
  buffer.commit(100); // a partial fill: no growth
  assert.equal(buffer.freeSpace().length, 156);
  buffer.commit(156); // filled: the next read gets a doubled buffer, unread bytes kept
  const free = buffer.freeSpace();
  assert.equal(buffer.data.length, 512);
  assert.equal(buffer.length, 256);
  assert.equal(free.length, 256);
  buffer.start = buffer.end;
  assert.equal(buffer.freeSpace().length, 256, "compacts when everything was consumed");
});

Deno.test("ReadBuffer gives a burst's growth back once reads are small again", () => {
  const buffer = new ReadBuffer(1024);
  for (let i = 0; i < 10; i++) buffer.commit(buffer.freeSpace().length); // reads fill it
  assert.ok(buffer.data.length >= 64 * 1024, "grew during the burst");
  buffer.start = buffer.end;
  buffer.freeSpace();
  buffer.commit(30); // a small request after the burst
  buffer.start = buffer.end;
  buffer.freeSpace();
  assert.equal(buffer.data.length, 1024);
});

Deno.test("ReadBuffer: past 64 KB only large frames' full reads grow it, up to growsTo", () => {
  const grownBy = (buffer: ReadBuffer, frame: number) => {
    // Each read fills the free space and leaves a partial frame behind, as a backend
    // streaming replies of `frame` bytes does (announcing the size of a large one).
    for (let i = 0; i < 40; i++) {
      buffer.commit(buffer.freeSpace().length);
      buffer.start = buffer.end - 100;
      if (frame > buffer.data.length - buffer.start) buffer.expect(frame);
    }
    return buffer.data.length;
  };
  // 100 KB replies: a larger buffer takes several per read, and the partial one moves to the
  // front once per read rather than per reply.
  const shared = () => new ReadBuffer(16 * 1024, { keepGrown: true, growsTo: 1024 * 1024 });
  assert.equal(grownBy(shared(), 100 * 1024), 1024 * 1024);
  // 4 KB replies: 64 KB, as for any buffer (tests/faults_test.ts: RSS after a burst).
  assert.equal(grownBy(shared(), 4096), 64 * 1024);
  assert.equal(grownBy(new ReadBuffer(16 * 1024, { keepGrown: true }), 100 * 1024), 128 * 1024);
  assert.equal(grownBy(new ReadBuffer(1024), 4096), 64 * 1024);
});

Deno.test("ReadBuffer.detach: views of bytes read stay as they are; unread bytes move on", () => {
  const buffer = new ReadBuffer(16);
  const space = buffer.freeSpace();
  space.set([1, 2, 3, 4, 5, 6]);
  buffer.commit(6);
  const lentView = buffer.data.subarray(0, 4);
  buffer.start = 4;
  buffer.detach();
  assert.deepEqual([...lentView], [1, 2, 3, 4]);
  assert.deepEqual([...buffer.data.subarray(buffer.start, buffer.end)], [5, 6]);
  // Reading on never writes into the lent bytes.
  buffer.start = buffer.end;
  for (let i = 0; i < 4; i++) {
    const free = buffer.freeSpace();
    free.fill(9);
    buffer.commit(free.length);
    buffer.start = buffer.end;
  }
  assert.deepEqual([...lentView], [1, 2, 3, 4]);
});

Deno.test("ReadBuffer grows to an expected request size in one step, keeping the unread bytes", () => {
  const buffer = new ReadBuffer();
  const head = new TextEncoder().encode("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000000\r\n");
  buffer.freeSpace().set(head);
  buffer.commit(head.length);
  buffer.expect(head.length + 20_000_002);
  const free = buffer.freeSpace();
  assert.ok(buffer.data.length >= head.length + 20_000_002, "room for the whole request");
  assert.ok(buffer.data.length <= 32 * 1024 * 1024, "the pooled size for it, not 4x beyond");
  assert.equal(free.length, buffer.data.length - head.length);
  assert.deepStrictEqual(buffer.data.subarray(buffer.start, buffer.end), head);
  // Told nothing (0), or a size that already fits: the buffer is left as it is.
  const capacity = buffer.data.length;
  buffer.expect(0);
  buffer.freeSpace();
  buffer.expect(1000);
  buffer.freeSpace();
  assert.equal(buffer.data.length, capacity);
});

Deno.test("ReadBuffer holds no memory before its first read and while parked", () => {
  const buffer = new ReadBuffer();
  assert.equal(buffer.capacity, 0, "nothing allocated at construction");
  const free = buffer.freeSpace();
  assert.equal(buffer.capacity, INITIAL_READ_CAPACITY);
  free.set([1, 2, 3]);
  buffer.commit(3);
  buffer.park();
  assert.equal(buffer.capacity, INITIAL_READ_CAPACITY, "unread bytes keep the buffer");
  buffer.start = buffer.end;
  const spares = spareReadBuffers();
  const epoch = buffer.epoch;
  buffer.park();
  assert.equal(buffer.capacity, 0);
  assert.equal(buffer.length, 0);
  assert.notEqual(buffer.epoch, epoch, "views of the parked bytes are stale");
  assert.equal(spareReadBuffers(), spares + 1, "the buffer is kept for the next read");
  assert.equal(buffer.freeSpace().length, INITIAL_READ_CAPACITY);
  assert.equal(spareReadBuffers(), spares, "the next read takes the spare");
});

Deno.test("ReadBuffer: a large request's growth gives the first buffer back to the spares", () => {
  // A client at pipeline 1 sending 100 KB values: each request starts in a spare buffer and
  // grows; the spares must not run dry one buffer per request.
  const idle = new ReadBuffer();
  idle.freeSpace();
  idle.park(); // one spare at least
  const spares = spareReadBuffers();
  for (let i = 0; i < 3; i++) {
    const buffer = new ReadBuffer();
    buffer.commit(buffer.freeSpace().length); // the first KB of a large request, in a spare
    assert.equal(spareReadBuffers(), spares - 1);
    buffer.expect(100 * 1024);
    assert.ok(buffer.freeSpace().length >= 99 * 1024, "grown to the request at once");
    assert.equal(spareReadBuffers(), spares, `request ${i}: the first buffer is a spare again`);
  }
});
