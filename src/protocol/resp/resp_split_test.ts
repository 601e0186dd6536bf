import assert from "node:assert/strict";
import { BufferLease } from "../../io/buffer_pool.ts";
import {
  encodeArray,
  encodeBulk,
  encodeCommandText,
  encodeInteger,
  NULL_BULK_REPLY,
} from "./encoder.ts";
import { encodeCommand } from "./encoder.ts";
import {
  encodePart,
  encodePartView,
  groupKeys,
  type MergeKind,
  partArgv,
  RespSplit,
  type SplitPart,
} from "./resp_split.ts";
import { SplitMerge } from "../split_merge.ts";
import { concatBytes } from "../bytes.ts";

/**
 * A RESP split over `parts` (as the planner makes one), whose merged reply goes to
 * `answerMerged` (`isView`: the bytes are reused after the call).
 */
function _collector(
  request: {
    kind: MergeKind;
    parts: readonly SplitPart[];
    keyCount: number;
    firstKeyIndex: number;
  },
  answerMerged: (reply: Uint8Array, isView: boolean) => unknown,
): SplitMerge {
  const strategy = new RespSplit({
    kind: request.kind,
    argv: [],
    whole: false,
    parts: request.parts.length,
    keyCount: request.keyCount,
    firstKeyIndex: request.firstKeyIndex,
  });
  const split = new SplitMerge(request.parts, strategy);
  split.bind({
    answer: (reply) => answerMerged(reply, false),
    fill: (reply, isView) => answerMerged(reply, isView),
    onReply: (reply) => answerMerged(reply, true),
    onError: () => {},
  });
  return split;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function _argv(...args: string[]): Uint8Array[] {
  return args.map((arg) => encoder.encode(arg));
}

/** Runs a collector over `parts` with `replies` delivered in `order`; returns the merged text. */
function _merge(
  request: { kind: "mget" | "mset" | "sum" | "first"; parts: SplitPart[]; keyCount: number },
  replies: Uint8Array[],
  order: number[],
): string {
  let merged: Uint8Array | null = null;
  // Replies arrive as views into one reused buffer, overwritten after each delivery.
  const shared = new Uint8Array(4096);
  const collector = _collector(
    { ...request, firstKeyIndex: 1 },
    (reply, isView) => merged = isView ? reply.slice() : reply,
  );
  for (const index of order) {
    shared.set(replies[index]);
    collector.sinkFor(index).onReply(shared.subarray(0, replies[index].length));
    shared.fill(0x21);
  }
  assert.ok(merged !== null, "merged once every part answered");
  return decoder.decode(merged);
}

Deno.test("encodePart encodes exactly what encodeCommand(partArgv(...)) does", () => {
  const mget = _argv("MGET", "a", "bb", "", "dddd", "e".repeat(300));
  const mset = _argv("MSET", "a", "1", "b", "", "c", "x".repeat(1000));
  const cases: [typeof mget, "mget" | "mset", number[]][] = [
    [mget, "mget", [1, 3, 5]],
    [mget, "mget", [2, 4]],
    [mset, "mset", [1, 5]],
    [mset, "mset", [3]],
  ];
  for (const [argv, kind, keyIndexes] of cases) {
    const part = { group: 0, keyIndexes };
    assert.deepEqual(encodePart(kind, argv, part), encodeCommand(partArgv(kind, argv, part)));
  }
});

Deno.test("SplitMerge merges MGET values back into request key order", () => {
  // Keys 1..5 over groups [0, 1, 0, 2, 1].
  const parts = groupKeys([1, 2, 3, 4, 5], [0, 1, 0, 2, 1]);
  const replies = [
    encodeArray([encodeBulk("v1"), encodeBulk("v3")]),
    encodeArray([NULL_BULK_REPLY, encodeBulk("v5".repeat(100))]),
    encodeArray([encodeBulk("")]),
  ];
  const expected = decoder.decode(encodeArray([
    encodeBulk("v1"),
    NULL_BULK_REPLY,
    encodeBulk("v3"),
    encodeBulk(""),
    encodeBulk("v5".repeat(100)),
  ]));
  for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
    assert.equal(_merge({ kind: "mget", parts, keyCount: 5 }, replies, order), expected);
  }
});

Deno.test("SplitMerge: a part's error answers, even when it arrived last as a view", () => {
  const parts = groupKeys([1, 2], [0, 1]);
  const error = encoder.encode("-ERR boom\r\n");
  const ok = encodeArray([encodeBulk("x")]);
  assert.equal(_merge({ kind: "mget", parts, keyCount: 2 }, [ok, error], [0, 1]), "-ERR boom\r\n");
  assert.equal(_merge({ kind: "mget", parts, keyCount: 2 }, [ok, error], [1, 0]), "-ERR boom\r\n");
  const first = encodeCommandText("PONG").subarray(0, 4);
  assert.equal(
    _merge({ kind: "first", parts, keyCount: 0 }, [first, first], [1, 0]),
    decoder.decode(first),
  );
});

Deno.test("SplitMerge sums integer replies and answers MSET with OK", () => {
  const parts = groupKeys([1, 2, 3], [0, 1, 0]);
  const sum = _merge({ kind: "sum", parts, keyCount: 3 }, [encodeInteger(2), encodeInteger(-1)], [
    1,
    0,
  ]);
  assert.equal(sum, ":1\r\n");
  const ok = encoder.encode("+OK\r\n");
  assert.equal(_merge({ kind: "mset", parts, keyCount: 3 }, [ok, ok], [0, 1]), "+OK\r\n");
});

Deno.test("SplitMerge refuses an MGET part reply of the wrong length", () => {
  const parts = groupKeys([1, 2], [0, 1]);
  const replies = [encodeArray([encodeBulk("a"), encodeBulk("b")]), encodeArray([encodeBulk("c")])];
  assert.match(
    _merge({ kind: "mget", parts, keyCount: 2 }, replies, [0, 1]),
    /^-ERR unexpected reply/,
  );
});

Deno.test("SplitMerge marks a merge in its shared scratch as a view", () => {
  const parts = groupKeys([1, 2], [0, 1]);
  const kept: Uint8Array[] = [];
  for (const value of ["first", "second"]) {
    const collector = _collector(
      { kind: "mget", parts, keyCount: 2, firstKeyIndex: 1 },
      (reply, isView) => kept.push(isView ? reply.slice() : reply),
    );
    collector.sinkFor(0).onReply(encodeArray([encodeBulk(value)]));
    collector.sinkFor(1).onReply(encodeArray([encodeBulk(value)]));
  }
  assert.deepEqual(kept.map((reply) => decoder.decode(reply)), [
    decoder.decode(encodeArray([encodeBulk("first"), encodeBulk("first")])),
    decoder.decode(encodeArray([encodeBulk("second"), encodeBulk("second")])),
  ]);
});

Deno.test("encodePartView equals encodePart until the next call", () => {
  const argv = _argv("MGET", "a", "b", "c");
  const part = { group: 0, keyIndexes: [1, 3] };
  assert.deepEqual(encodePartView("mget", argv, part), encodePart("mget", argv, part));
});

Deno.test("groupKeys keeps first-seen group order past the scanned parts (a Map then)", () => {
  // 20 groups, each key's group repeating: past SCANNED_PARTS the lookup switches to a Map.
  const keyIndexes = Array.from({ length: 60 }, (_, i) => i + 1);
  const groups = keyIndexes.map((_, i) => (i * 7) % 20);
  const parts = groupKeys(keyIndexes, groups);
  assert.equal(parts.length, 20);
  const seen: number[] = [];
  for (const group of groups) if (!seen.includes(group)) seen.push(group);
  assert.deepEqual(parts.map((part) => part.group), seen);
  for (const part of parts) {
    const expected = keyIndexes.filter((_, i) => groups[i] === part.group);
    assert.deepEqual(part.keyIndexes, expected);
  }
});

Deno.test("SplitMerge: MGET merges stay right when a short part follows a long one", () => {
  // The merge reuses one offsets array: a 1-key part after a 3-key part must not see the
  // longer part's stale offsets.
  const parts = groupKeys([1, 2, 3, 4], [0, 0, 0, 1]);
  const replies = [
    encodeArray([encodeBulk("a"), encodeBulk("bb"), encodeBulk("ccc")]),
    encodeArray([encodeBulk("dddd")]),
  ];
  const expected = decoder.decode(
    encodeArray([encodeBulk("a"), encodeBulk("bb"), encodeBulk("ccc"), encodeBulk("dddd")]),
  );
  for (const order of [[0, 1], [1, 0]]) {
    assert.equal(_merge({ kind: "mget", parts, keyCount: 4 }, replies, order), expected);
  }
  // A part whose reply has fewer elements than keys is an error, not stale offsets.
  const short = [replies[0], encodeArray([])];
  assert.match(_merge({ kind: "mget", parts, keyCount: 4 }, short, [0, 1]), /^-ERR unexpected/);
});

Deno.test("SplitMerge: a large MGET merges as pieces of the owned part replies, uncopied", () => {
  // Keys 1..4 over groups [0, 1, 1, 0]: values of 200 KB, so the parts total over 256 KB.
  const parts = groupKeys([1, 2, 3, 4], [0, 1, 1, 0]);
  const values = ["a", "b", "c", "d"].map((c) => encodeBulk(c.repeat(200 * 1024)));
  const replies = [encodeArray([values[0], values[3]]), encodeArray([values[1], values[2]])];
  const strategy = new RespSplit({
    kind: "mget",
    argv: [],
    whole: false,
    parts: 2,
    keyCount: 4,
    firstKeyIndex: 1,
  });
  let pieces: readonly Uint8Array[] = [];
  let leases: readonly BufferLease[] = [];
  const split = new SplitMerge(parts, strategy);
  split.bind({
    answer: () => assert.fail("merged as pieces"),
    fill: () => assert.fail("merged as pieces"),
    fillPieces: (got, held) => [pieces, leases] = [got, held],
    onReply: () => assert.fail("merged as pieces"),
    onError: () => {},
  });
  // The read buffers of owned replies come with leases: passed on with the pieces, so the
  // buffers go back to the pool once the pieces are written.
  const partLeases = [new BufferLease(), new BufferLease()];
  split.sinkFor(1).onReply(replies[1], true, partLeases[1]);
  split.sinkFor(0).onReply(replies[0], true, partLeases[0]);
  assert.deepStrictEqual(leases, [partLeases[1], partLeases[0]]);
  // The header, then a, then b and c lying next to each other in part 1's reply, then d.
  assert.equal(pieces.length, 4);
  assert.equal(pieces[2].buffer, replies[1].buffer, "part 1's values are not copied");
  assert.equal(pieces[2].length, values[1].length + values[2].length);
  assert.equal(decoder.decode(concatBytes(pieces)), decoder.decode(encodeArray(values)));
});

Deno.test("SplitMerge: a small MGET or a part's error is merged whole, not in pieces", () => {
  const parts = groupKeys([1, 2], [0, 1]);
  const cases: [string, Uint8Array][] = [
    ["x", encodeArray([encodeBulk("y")])],
    ["x".repeat(300 * 1024), encoder.encode("-ERR boom\r\n")],
  ];
  for (const [first, second] of cases) {
    const strategy = new RespSplit({
      kind: "mget",
      argv: [],
      whole: false,
      parts: 2,
      keyCount: 2,
      firstKeyIndex: 1,
    });
    const split = new SplitMerge(parts, strategy);
    let merged = "";
    split.bind({
      answer: () => {},
      fill: (reply) => merged = decoder.decode(reply),
      fillPieces: () => assert.fail("a small merge is one reply"),
      onReply: () => {},
      onError: () => {},
    });
    split.sinkFor(0).onReply(encodeArray([encodeBulk(first)]), true);
    split.sinkFor(1).onReply(second);
    assert.ok(merged.startsWith(second[0] === 0x2d ? "-ERR boom" : "*2\r\n"));
  }
});
