/**
 * RESP request decoding: a pipeline of 16 SET + 16 GET requests, and one large SET, fed
 * whole and in chunks the way a session feeds them (the buffer grows, `end` moves on, the
 * decoder resumes where it stopped).
 */
import assert from "node:assert/strict";
import { frameInWindows } from "../replay_chunks.ts";
import { type RespRequest, RespRequestDecoder } from "./request_decoder.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function _command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`;
}

/** 16 x (SET key:NNNN <32-byte value>, GET key:NNNN): 32 requests. */
const PIPELINE_COMMANDS: string[][] = [];
for (let i = 0; i < 16; i++) {
  const key = `key:${String(i).padStart(4, "0")}`;
  PIPELINE_COMMANDS.push(["SET", key, `value-${key}-`.padEnd(32, "x")]);
  PIPELINE_COMMANDS.push(["GET", key]);
}
const PIPELINE = encoder.encode(PIPELINE_COMMANDS.map((args) => _command(...args)).join(""));

/** One SET with a 16 KiB value. */
const LARGE_VALUE = "v".repeat(16 * 1024);
const LARGE_SET = encoder.encode(_command("SET", "big", LARGE_VALUE));

/**
 * Decodes every request in `input`, making `chunk` more bytes visible at a time; calls
 * `each` per request and returns how many there were.
 */
function _decodeAll(
  input: Uint8Array,
  options: { decoder: RespRequestDecoder; chunk: number; each?: (req: RespRequest) => void },
): number {
  const { decoder, chunk, each } = options;
  return frameInWindows(input, chunk, (start, end) => {
    const request = decoder.decode(input, start, end);
    if (request === null) return -1;
    each?.(request);
    return request.size;
  });
}

// Check once, at every chunk size benched, that the decoder frames what was sent.
for (const chunk of [PIPELINE.length, 64, 1]) {
  const seen: string[][] = [];
  const count = _decodeAll(PIPELINE, {
    decoder: new RespRequestDecoder(),
    chunk,
    each: (req) => seen.push(req.argv.map((a) => decoder.decode(a))),
  });
  assert.equal(count, 32, `chunk ${chunk}`);
  assert.deepEqual(seen, PIPELINE_COMMANDS, `chunk ${chunk}`);
}
for (const chunk of [LARGE_SET.length, 1460, 64]) {
  let value = 0;
  const count = _decodeAll(LARGE_SET, {
    decoder: new RespRequestDecoder(),
    chunk,
    each: (req) => value = req.argv[2].length,
  });
  assert.equal(count, 1);
  assert.equal(value, LARGE_VALUE.length);
}

const pipelineDecoder = new RespRequestDecoder();

Deno.bench("32 requests, whole", { group: "decode 16 SET + 16 GET", baseline: true }, () => {
  _decodeAll(PIPELINE, { decoder: pipelineDecoder, chunk: PIPELINE.length });
});

Deno.bench("32 requests, 64-byte chunks", { group: "decode 16 SET + 16 GET" }, () => {
  _decodeAll(PIPELINE, { decoder: pipelineDecoder, chunk: 64 });
});

Deno.bench("32 requests, 1-byte chunks", { group: "decode 16 SET + 16 GET" }, () => {
  _decodeAll(PIPELINE, { decoder: pipelineDecoder, chunk: 1 });
});

const largeDecoder = new RespRequestDecoder();

Deno.bench("SET 16 KiB, whole", { group: "decode SET 16 KiB", baseline: true }, () => {
  _decodeAll(LARGE_SET, { decoder: largeDecoder, chunk: LARGE_SET.length });
});

Deno.bench("SET 16 KiB, 1460-byte chunks", { group: "decode SET 16 KiB" }, () => {
  _decodeAll(LARGE_SET, { decoder: largeDecoder, chunk: 1460 });
});

Deno.bench("SET 16 KiB, 64-byte chunks", { group: "decode SET 16 KiB" }, () => {
  _decodeAll(LARGE_SET, { decoder: largeDecoder, chunk: 64 });
});
