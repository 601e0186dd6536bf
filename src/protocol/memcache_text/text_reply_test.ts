import assert from "node:assert/strict";
import {
  blockKey,
  type MemcacheReplyKind,
  MemcacheTextReplyFramer,
  type MemcacheTextReplyFramerOptions,
  mergeRetrieval,
  replyKind,
  splitRetrievalReply,
  textLine,
  valueBlocks,
} from "./text_reply.ts";
import { ProtocolError } from "../protocol_error.ts";
import { everySplit, replayChunks } from "../replay_chunks.ts";

const latin1 = new TextDecoder("latin1");
const str = (bytes: Uint8Array) => latin1.decode(bytes);
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** Frames `input` (replies of the given kinds, in order) delivered in pieces ending at `cuts`. */
function frameAll(
  input: Uint8Array,
  kinds: MemcacheReplyKind[],
  cuts: number[],
  opts?: MemcacheTextReplyFramerOptions,
): number[] {
  const framer = new MemcacheTextReplyFramer(opts);
  const sizes: number[] = [];
  const left = replayChunks(input, cuts, (buf, start, end) => {
    let at = start;
    while (sizes.length < kinds.length) {
      const size = framer.frame(buf, at, end, kinds[sizes.length]);
      if (size < 0) break;
      sizes.push(size);
      at += size;
    }
    return at - start;
  });
  assert.equal(left, 0, "every byte framed");
  return sizes;
}

/** Frames at every single cut and byte by byte; returns the reply sizes. */
function frameEverySplit(
  replies: [MemcacheReplyKind, string][],
  opts?: MemcacheTextReplyFramerOptions,
): void {
  const input = bytes(replies.map(([, text]) => text).join(""));
  const kinds = replies.map(([kind]) => kind);
  const expected = replies.map(([, text]) => text.length);
  for (const { cuts, label } of everySplit(input.length)) {
    assert.deepEqual(frameAll(input, kinds, cuts, opts), expected, label);
  }
}

const replies: [MemcacheReplyKind, string][] = [
  ["retrieval", "END\r\n"],
  ["retrieval", "VALUE k 0 5\r\nhello\r\nEND\r\n"],
  ["retrieval", "VALUE a 1 2 99\r\n\r\n\r\nVALUE bb 0 0\r\n\r\nVALUE a 1 2 99\r\nEN\r\nEND\r\n"],
  ["retrieval", "VALUE k 0 3\r\nEND\r\nEND\r\n"],
  ["retrieval", "SERVER_ERROR out of memory\r\n"],
  ["retrieval", "VALUE a 0 1\r\nx\r\nCLIENT_ERROR bad command line format\r\n"],
  ["retrieval", "ERROR\r\n"],
  ["line", "STORED\r\n"],
  ["line", "NOT_FOUND\r\n"],
  ["line", "42  \r\n"],
  ["line", "VERSION 1.6.18\r\n"],
  ["line", "CLIENT_ERROR bad data chunk\r\n"],
  ["line", "OK\n"],
  ["meta", "VA 5 f0 t-1\r\nhello\r\n"],
  ["meta", "VA 0\r\n\r\n"],
  ["meta", "VA 4 kfoo b\r\nVA 1\r\n"],
  ["meta", "HD\r\n"],
  ["meta", "EN\r\n"],
  ["meta", "NF\r\n"],
  ["meta", "MN\r\n"],
  ["meta", "ME k exp=-1 la=0 cas=2 fetch=no cls=1 size=63\r\n"],
  ["meta", "SERVER_ERROR object too large for cache\r\n"],
];

Deno.test("frame() finds every reply boundary at every chunk split", () => {
  frameEverySplit(replies);
});

Deno.test("frame() frames each reply alone at every chunk split", () => {
  for (const reply of replies) frameEverySplit([reply]);
});

Deno.test("frame() frames a large value arriving in many chunks", () => {
  const value = "v".repeat(3000);
  frameEverySplit([["retrieval", `VALUE big 0 ${value.length}\r\n${value}\r\nEND\r\n`]]);
  const huge = bytes(`VA 1048576\r\n${"x".repeat(1048576)}\r\n`);
  const cuts = Array.from({ length: 1024 }, (_, i) => i * 1024);
  assert.deepEqual(frameAll(huge, ["meta"], cuts), [huge.length]);
});

function assertMalformed(kind: MemcacheReplyKind, text: string, pattern: RegExp, max?: number) {
  const input = bytes(text);
  for (const { cuts, label } of everySplit(input.length, false)) {
    const framer = new MemcacheTextReplyFramer({ maxValueBytes: max });
    assert.throws(
      () =>
        replayChunks(input, cuts, (buf, start, end) => {
          if (framer.frame(buf, start, end, kind) >= 0) throw new Error("framed a malformed reply");
          return 0;
        }),
      (err: unknown) => err instanceof ProtocolError && pattern.test(err.message),
      `${JSON.stringify(text)} ${label}`,
    );
  }
}

Deno.test("frame() rejects malformed replies", () => {
  assertMalformed("retrieval", "VALUE k 0 x\r\nabc\r\nEND\r\n", /bad value header/);
  assertMalformed("retrieval", "VALUE k 0\r\nabc\r\nEND\r\n", /bad value header/);
  assertMalformed("retrieval", "VALUE k 0 1 2 3\r\nabc\r\nEND\r\n", /bad value header/);
  assertMalformed("retrieval", "VALUE k 0 -1\r\n\r\nEND\r\n", /bad value header/);
  assertMalformed("retrieval", "VALUE k 0 1\r\nxy\r\nEND\r\n", /not terminated/);
  assertMalformed("retrieval", "STORED\r\n", /unexpected line/);
  assertMalformed("retrieval", "VALUE k 0 1\r\nx\r\nENDX\r\n", /unexpected line/);
  assertMalformed("retrieval", "ERRORS\r\n", /unexpected line/);
  assertMalformed("retrieval", "VALUE k 0 9\r\n123456789\r\nEND\r\n", /bad value header/, 8);
  assertMalformed("meta", "VA x\r\n", /bad value header/);
  assertMalformed("meta", "VA 2\r\nabc\r\n", /not terminated/);
  assertMalformed("line", "x".repeat(8 * 1024 + 1), /too long/);
  assertMalformed("retrieval", "x".repeat(8 * 1024 + 1) + "\r\n", /too long/);
});

Deno.test("frame() accepts values at the size limit", () => {
  frameEverySplit([["retrieval", "VALUE k 0 8\r\n12345678\r\nEND\r\n"], [
    "meta",
    "VA 8\r\n12345678\r\n",
  ]], {
    maxValueBytes: 8,
  });
});

Deno.test("splitRetrievalReply() cuts a multiget reply into raw blocks and its tail", () => {
  const reply = bytes("VALUE a 0 1\r\nx\r\nVALUE bb 5 3 77\r\n\r\n \r\nEND\r\n");
  const { blocks, tail } = splitRetrievalReply(reply);
  assert.deepEqual(blocks.map(str), ["VALUE a 0 1\r\nx\r\n", "VALUE bb 5 3 77\r\n\r\n \r\n"]);
  assert.equal(str(tail), "END\r\n");
  assert.deepEqual(blocks.map(blockKey).map(str), ["a", "bb"]);
  assert.equal(blocks[0].buffer, reply.buffer, "views, not copies");
  assert.deepEqual(valueBlocks(reply).map(str), blocks.map(str));
  assert.deepEqual(valueBlocks(bytes("END\r\n")), []);
  const failed = splitRetrievalReply(bytes("VALUE a 0 1\r\nx\r\nSERVER_ERROR busy\r\n"));
  assert.equal(failed.blocks.length, 1);
  assert.equal(str(failed.tail), "SERVER_ERROR busy\r\n");
  assert.throws(() => splitRetrievalReply(bytes("VALUE a 0 5\r\nx\r\n")), ProtocolError);
});

Deno.test("mergeRetrieval() orders blocks by the request's keys and ends with one END", () => {
  // Request: get a b c a d; servers: 0 has a, c, a; 1 has b, d (d missing).
  const keys = ["a", "b", "c", "a", "d"].map(bytes);
  const merged = mergeRetrieval(keys, [
    { keys: [0, 2, 3], reply: bytes("VALUE a 0 1\r\n1\r\nVALUE a 0 1\r\n1\r\nEND\r\n") },
    { keys: [1, 4], reply: bytes("VALUE b 0 1\r\n2\r\nEND\r\n") },
  ]);
  assert.equal(
    str(merged),
    "VALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nVALUE a 0 1\r\n1\r\nEND\r\n",
  );
  // All misses.
  assert.equal(
    str(mergeRetrieval(keys.slice(0, 2), [
      { keys: [0], reply: bytes("END\r\n") },
      { keys: [1], reply: bytes("END\r\n") },
    ])),
    "END\r\n",
  );
});

Deno.test("mergeRetrieval() ends with a part's error line and keeps unplaced blocks", () => {
  const keys = ["a", "b", "c"].map(bytes);
  const merged = mergeRetrieval(keys, [
    { keys: [0, 2], reply: bytes("VALUE c 0 1\r\n3\r\nVALUE a 0 1\r\n1\r\nEND\r\n") },
    { keys: [1], reply: bytes("SERVER_ERROR backend down\r\n") },
  ]);
  // "c" came out of order from its server (memcached answers in key order): the walk places
  // it at its own key, and "a", found nowhere in order, is kept at the end, not dropped.
  assert.equal(
    str(merged),
    "VALUE c 0 1\r\n3\r\nVALUE a 0 1\r\n1\r\nSERVER_ERROR backend down\r\n",
  );
});

Deno.test("replyKind() picks the framing for each command", () => {
  assert.equal(replyKind("get"), "retrieval");
  assert.equal(replyKind("gats"), "retrieval");
  assert.equal(replyKind("mg"), "meta");
  assert.equal(replyKind("mn"), "meta");
  assert.equal(replyKind("set"), "line");
  assert.equal(replyKind("incr"), "line");
  assert.equal(replyKind("version"), "line");
  assert.equal(str(textLine("CLIENT_ERROR line too long")), "CLIENT_ERROR line too long\r\n");
});
