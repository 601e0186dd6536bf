import assert from "node:assert/strict";
import { RespReplyFramer } from "./reply_framer.ts";
import { ProtocolError } from "../protocol_error.ts";
import { arrayElementSlices, decodeReplyValue, RespErrorReply } from "./reply_value.ts";

const enc = new TextEncoder();

function frameAll(input: Uint8Array, cut: number): number[] {
  const framer = new RespReplyFramer();
  const sizes: number[] = [];
  let start = 0;
  for (const end of [cut, input.length]) {
    for (;;) {
      const size = framer.frame(input, start, end);
      if (size < 0) break;
      sizes.push(size);
      start += size;
    }
  }
  assert.equal(start, input.length);
  return sizes;
}

const replies = [
  "+OK\r\n",
  "-ERR wrong\r\n",
  ":-42\r\n",
  "$5\r\nhe\r\no\r\n",
  "$-1\r\n",
  "*-1\r\n",
  "*0\r\n",
  "*3\r\n$1\r\na\r\n*2\r\n:1\r\n*1\r\n+x\r\n$-1\r\n",
  "*2\r\n*0\r\n*1\r\n*1\r\n:7\r\n",
];

Deno.test("frame() finds every reply boundary at every chunk split", () => {
  const input = enc.encode(replies.join(""));
  const expected = replies.map((r) => r.length);
  for (let cut = 0; cut <= input.length; cut++) {
    assert.deepEqual(frameAll(input, cut), expected, `cut at ${cut}`);
  }
});

Deno.test("frame() rejects malformed replies", () => {
  for (const bad of ["?x\r\n", ":12a\r\n", "$-2\r\n", "*-5\r\n", "$1\r\nabc\r\n"]) {
    const input = enc.encode(bad);
    assert.throws(() => new RespReplyFramer().frame(input, 0, input.length), ProtocolError, bad);
  }
});

Deno.test("decodeReplyValue() turns framed replies into values", () => {
  const input = enc.encode("*4\r\n+OK\r\n-ERR x\r\n:3\r\n$2\r\nab\r\n");
  const { value, size } = decodeReplyValue(input);
  assert.equal(size, input.length);
  assert.ok(Array.isArray(value));
  assert.equal(value[0], "OK");
  assert.deepEqual(value[1], new RespErrorReply("ERR x"));
  assert.equal(value[2], 3);
  assert.deepEqual(value[3], enc.encode("ab"));
});

Deno.test("arrayElementSlices() returns each element's raw bytes", () => {
  const input = enc.encode("*3\r\n$1\r\na\r\n$-1\r\n:5\r\n");
  const slices = arrayElementSlices(input)?.map((s) => new TextDecoder().decode(s));
  assert.deepEqual(slices, ["$1\r\na\r\n", "$-1\r\n", ":5\r\n"]);
  assert.equal(arrayElementSlices(enc.encode("+OK\r\n")), null);
});
