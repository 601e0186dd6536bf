/** A large MGET over several parts is written while the parts arrive (SplitMerge + MergeStream). */
import assert from "node:assert/strict";
import { BufferLease, takeBuffer } from "../../io/buffer_pool.ts";
import { encodeArray, encodeBulk } from "./encoder.ts";
import { groupKeys, RespSplit } from "./resp_split.ts";
import { SplitMerge } from "../split_merge.ts";
import { concatBytes } from "../bytes.ts";
import type { ReplyTarget } from "../protocol.ts";

const latin1 = new TextDecoder("latin1");

/** What a client's slot saw: the streamed bytes in order, and how the reply ended. */
class StreamTarget implements ReplyTarget {
  written: Uint8Array[] = [];
  ended = false;
  error: string | null = null;
  /** False while the slot is not next in line. */
  head = true;
  /** Views are copied when written, as a writer that wrote them would no longer need them. */
  stream(pieces: readonly Uint8Array[], _leases: unknown, last: boolean): boolean {
    if (!this.head && this.written.length === 0) return false;
    for (const piece of pieces) this.written.push(piece.slice());
    if (last) this.ended = true;
    return true;
  }
  fillPieces(pieces: readonly Uint8Array[]): void {
    this.written.push(concatBytes(pieces));
    this.ended = true;
  }
  fill(reply: Uint8Array): void {
    this.written.push(reply.slice());
    this.ended = true;
  }
  answer(reply: Uint8Array): void {
    this.fill(reply);
  }
  onReply(reply: Uint8Array): void {
    this.fill(reply);
  }
  onError(message: string): void {
    this.error = message;
  }
  text(): string {
    return latin1.decode(concatBytes(this.written));
  }
}

/** MGET of keys 1..5 over two groups, interleaved as [0, 1, 0, 1, 0], values of `size` bytes. */
function _mget(size: number) {
  const parts = groupKeys([1, 2, 3, 4, 5], [0, 1, 0, 1, 0]);
  const values = ["a", "b", "c", "d", "e"].map((c) => encodeBulk(c.repeat(size)));
  const replies = [
    encodeArray([values[0], values[2], values[4]]),
    encodeArray([values[1], values[3]]),
  ];
  const strategy = new RespSplit({
    kind: "mget",
    argv: [],
    whole: false,
    parts: 2,
    keyCount: 5,
    firstKeyIndex: 1,
  });
  return { split: new SplitMerge(parts, strategy), replies, merged: encodeArray(values) };
}

/** Shows part `part` its reply's first `end` bytes, lying at `offset` in a larger buffer. */
function _partial(split: SplitMerge, part: number, reply: Uint8Array, end: number): void {
  const offset = 7;
  const data = new Uint8Array(offset + reply.length);
  data.set(reply.subarray(0, end), offset);
  split.sinkFor(part).onPartial!(data, offset, offset + end, new BufferLease());
}

Deno.test("MGET stream: the first values go out while the parts still arrive, in key order", () => {
  const { split, replies, merged } = _mget(1000);
  const target = new StreamTarget();
  split.bind(target);
  // Part 1 (keys 2, 4) is half in: key 1 (part 0) is not, so nothing can go yet.
  _partial(split, 1, replies[1], 1200);
  assert.equal(target.text(), "");
  // Part 0's first value is in: the header, a, then b (part 1's first value) go out, then
  // what part 0 has of c, which is next in line.
  _partial(split, 0, replies[0], 1100);
  const [a, b, c] = ["a", "b", "c"].map((c) => latin1.decode(encodeBulk(c.repeat(1000))));
  const cSoFar = 1100 - 4 - a.length;
  assert.equal(target.text(), `*5\r\n${a}${b}${c.slice(0, cSoFar)}`);
  // More of c goes on as it arrives; part 1 completes, but d waits for the rest of c.
  _partial(split, 0, replies[0], 1500);
  split.sinkFor(1).onReply(replies[1], true);
  assert.equal(target.text(), `*5\r\n${a}${b}${c.slice(0, cSoFar + 400)}`);
  assert.equal(target.ended, false);
  split.sinkFor(0).onReply(replies[0], true);
  assert.equal(target.ended, true);
  assert.equal(target.text(), latin1.decode(merged));
  assert.equal(target.error, null);
});

Deno.test("MGET stream: a slot not yet next in line starts once it is, with nothing lost", () => {
  const { split, replies, merged } = _mget(1000);
  const target = new StreamTarget();
  target.head = false;
  split.bind(target);
  _partial(split, 0, replies[0], 2100);
  _partial(split, 1, replies[1], 1100);
  assert.equal(target.text(), "");
  target.head = true;
  _partial(split, 1, replies[1], 1500);
  assert.ok(target.text().startsWith("*5\r\n$1000\r\n"), "a, b and c are out");
  assert.ok(target.text().length > 4 + 3 * 1007, "and the start of d");
  split.sinkFor(0).onReply(replies[0], true);
  split.sinkFor(1).onReply(replies[1], true);
  assert.equal(target.text(), latin1.decode(merged));
});

Deno.test("MGET stream: a slot that never got its turn is merged whole, as before", () => {
  const { split, replies, merged } = _mget(1000);
  const target = new StreamTarget();
  target.head = false;
  split.bind(target);
  _partial(split, 0, replies[0], 2100);
  split.sinkFor(0).onReply(replies[0], true);
  split.sinkFor(1).onReply(replies[1], true);
  assert.equal(target.ended, true);
  assert.equal(target.text(), latin1.decode(merged));
});

Deno.test("MGET stream: a part that fails once the reply started cuts it (the client closes)", () => {
  const { split, replies } = _mget(1000);
  const target = new StreamTarget();
  split.bind(target);
  _partial(split, 0, replies[0], 1100);
  assert.ok(target.text().startsWith("*5\r\n"));
  split.sinkFor(1).onError("backend b: Connection reset by peer");
  split.sinkFor(0).onReply(replies[0], true);
  assert.equal(target.ended, false);
  assert.match(target.error ?? "", /merged reply cut: a part failed/);
});

Deno.test("MGET stream: a buffer lent to it goes back once nothing taken from it waits", () => {
  const { split, replies } = _mget(100 * 1024);
  const target = new StreamTarget();
  target.head = false; // value a is taken from the buffer, and waits for its turn
  split.bind(target);
  // Part 0's reply so far lies in a pooled buffer lent under a lease, which its connection
  // seals when it reads on elsewhere: the buffer is free once what was taken is written.
  const size = 512 * 1024;
  const buffer = takeBuffer(size);
  buffer.set(replies[0].subarray(0, 150 * 1024));
  const lease = new BufferLease();
  split.sinkFor(0).onPartial!(buffer, 0, 150 * 1024, lease);
  lease.seal(buffer);
  assert.notEqual(takeBuffer(size), buffer, "still lent: not in the pool");
  split.sinkFor(1).onReply(replies[1], true);
  split.sinkFor(0).onReply(replies[0], true);
  assert.equal(takeBuffer(size), buffer, "given back once the merge is done");
});
