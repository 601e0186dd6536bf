/**
 * RESP reply framing: 16 pipelined replies of each common shape framed whole, and an MGET
 * pipeline fed in chunks the way a backend connection reads it.
 */
import assert from "node:assert/strict";
import { frameInWindows } from "../replay_chunks.ts";
import { RespReplyFramer } from "./reply_framer.ts";

const encoder = new TextEncoder();

function _bulk(text: string): string {
  return `$${text.length}\r\n${text}\r\n`;
}

function _value(i: number): string {
  return `value-${String(i).padStart(4, "0")}-`.padEnd(32, "x");
}

const STATUS = "+OK\r\n";
const INTEGER = ":1234567\r\n";
const BULK = _bulk(_value(0));
/** MGET of 10 keys: 8 values of 32 bytes and 2 misses. */
const MGET = `*10\r\n${
  Array.from({ length: 10 }, (_, i) => i % 5 === 4 ? "$-1\r\n" : _bulk(_value(i))).join("")
}`;
/** SCAN: a cursor and a nested array of 10 keys. */
const SCAN = `*2\r\n${_bulk("1792")}*10\r\n${
  Array.from({ length: 10 }, (_, i) => _bulk(`key:${String(i).padStart(4, "0")}`)).join("")
}`;

/** 16 copies of `reply`, as one pipelined read. */
function _pipeline(reply: string): { bytes: Uint8Array; size: number } {
  return { bytes: encoder.encode(reply.repeat(16)), size: encoder.encode(reply).length };
}

const PIPELINES = {
  status: _pipeline(STATUS),
  integer: _pipeline(INTEGER),
  bulk: _pipeline(BULK),
  mget: _pipeline(MGET),
  scan: _pipeline(SCAN),
};

/** Frames every reply in `input`, `chunk` more bytes visible at a time; returns the count. */
function _frameAll(
  input: Uint8Array,
  options: { framer: RespReplyFramer; chunk: number; sizes?: number[] },
): number {
  const { framer, chunk, sizes } = options;
  return frameInWindows(input, chunk, (start, end) => {
    const size = framer.frame(input, start, end);
    if (size >= 0) sizes?.push(size);
    return size;
  });
}

// Check once that every input frames into its 16 replies, at each chunk size benched.
for (const [name, { bytes, size }] of Object.entries(PIPELINES)) {
  for (const chunk of [bytes.length, 64, 1]) {
    const sizes: number[] = [];
    _frameAll(bytes, { framer: new RespReplyFramer(), chunk, sizes });
    assert.deepEqual(sizes, new Array(16).fill(size), `${name}, chunk ${chunk}`);
  }
}

const framer = new RespReplyFramer();

function _whole(input: Uint8Array): void {
  _frameAll(input, { framer, chunk: input.length });
}

Deno.bench("16 x +OK", { group: "frame 16 replies, whole", baseline: true }, () => {
  _whole(PIPELINES.status.bytes);
});

Deno.bench("16 x :integer", { group: "frame 16 replies, whole" }, () => {
  _whole(PIPELINES.integer.bytes);
});

Deno.bench("16 x $32 bulk", { group: "frame 16 replies, whole" }, () => {
  _whole(PIPELINES.bulk.bytes);
});

Deno.bench("16 x MGET 10 (array of bulks)", { group: "frame 16 replies, whole" }, () => {
  _whole(PIPELINES.mget.bytes);
});

Deno.bench("16 x SCAN (nested array)", { group: "frame 16 replies, whole" }, () => {
  _whole(PIPELINES.scan.bytes);
});

const MGET_BYTES = PIPELINES.mget.bytes;

Deno.bench("16 x MGET 10, whole", { group: "frame MGET 10, chunked", baseline: true }, () => {
  _frameAll(MGET_BYTES, { framer, chunk: MGET_BYTES.length });
});

Deno.bench("16 x MGET 10, 64-byte chunks", { group: "frame MGET 10, chunked" }, () => {
  _frameAll(MGET_BYTES, { framer, chunk: 64 });
});

Deno.bench("16 x MGET 10, 1-byte chunks", { group: "frame MGET 10, chunked" }, () => {
  _frameAll(MGET_BYTES, { framer, chunk: 1 });
});
