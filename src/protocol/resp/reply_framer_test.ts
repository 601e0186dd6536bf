import assert from "node:assert/strict";
import { RespReplyFramer } from "./reply_framer.ts";
import { ProtocolError } from "../protocol_error.ts";
import {
  arrayElementSlices,
  decodeReplyValue,
  RespErrorReply,
  type RespValue,
} from "./reply_value.ts";
import { everySplit, replayChunks } from "../replay_chunks.ts";

const enc = new TextEncoder();

function frameAll(input: Uint8Array, cuts: number[]): number[] {
  const framer = new RespReplyFramer();
  const sizes: number[] = [];
  const left = replayChunks(input, cuts, (buf, start, end) => {
    let at = start;
    for (let size = framer.frame(buf, at, end); size >= 0; size = framer.frame(buf, at, end)) {
      sizes.push(size);
      at += size;
    }
    return at - start;
  });
  assert.equal(left, 0, "every byte framed");
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
  for (const { cuts, label } of everySplit(input.length)) {
    assert.deepEqual(frameAll(input, cuts), expected, label);
  }
});

/** Every RESP3 type, as redis-server 7 sends them after HELLO 3 (DEBUG PROTOCOL among them). */
const resp3Replies = [
  "_\r\n",
  ",3.141\r\n",
  ",-inf\r\n",
  ",nan\r\n",
  ",1e+300\r\n",
  "#t\r\n",
  "#f\r\n",
  "(1234567999999999999999999999999999999\r\n",
  "(-12\r\n",
  "!21\r\nSYNTAX invalid syntax\r\n",
  "=29\r\ntxt:This is a verbatim\nstring\r\n",
  "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
  "%0\r\n",
  "~3\r\n:0\r\n:1\r\n:2\r\n",
  "~0\r\n",
  ">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n",
  // An attribute and the reply it describes are one reply.
  "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\n" +
  "Some real reply following the attribute\r\n",
  "|0\r\n:5\r\n",
  // Nested: an attribute on a map's value, a set in an array, maps in maps.
  "*3\r\n%1\r\n+a\r\n|1\r\n+ttl\r\n:3\r\n~2\r\n_\r\n#t\r\n,0.5\r\n" +
  "%1\r\n%1\r\n:1\r\n(2\r\n=7\r\ntxt:abc\r\n",
  "*2\r\n_\r\n$1\r\nx\r\n",
];

Deno.test("frame() finds every RESP3 reply boundary at every chunk split", () => {
  const input = enc.encode(resp3Replies.join(""));
  const expected = resp3Replies.map((r) => enc.encode(r).length);
  for (const { cuts, label } of everySplit(input.length)) {
    assert.deepEqual(frameAll(input, cuts), expected, label);
  }
});

Deno.test("frame() refuses streamed RESP3 replies and malformed RESP3 values clearly", () => {
  for (const streamed of ["$?\r\n;4\r\nabcd\r\n;0\r\n", "*?\r\n:1\r\n.\r\n", "%?\r\n"]) {
    const input = enc.encode(streamed);
    assert.throws(
      () => new RespReplyFramer().frame(input, 0, input.length),
      /streamed RESP3 replies are not supported/,
    );
  }
  const bad = ["_x\r\n", "#x\r\n", "#tt\r\n", ",\r\n", ",1;2\r\n"];
  for (const reply of [...bad, "%-1\r\n", "~-1\r\n", "=-1\r\n", "!-1\r\n", "=3\r\nabcd\r\n"]) {
    const input = enc.encode(reply);
    assert.throws(() => new RespReplyFramer().frame(input, 0, input.length), ProtocolError, reply);
  }
});

Deno.test("frame() takes any big number text, however long, as redis-server writes a script's", () => {
  // redis-server writes {big_number = "..."} as it is: refusing one failed a shared connection.
  const digits = "9".repeat(200_000);
  for (const reply of ["(1.5\r\n", "(\r\n", "(abc\r\n", "(+5\r\n", `(${digits}\r\n`]) {
    const input = enc.encode(`*2\r\n${reply}:1\r\n`);
    assert.equal(
      new RespReplyFramer().frame(input, 0, input.length),
      input.length,
      reply.slice(0, 9),
    );
    // Arriving in 64 KiB reads, the long one too.
    const framer = new RespReplyFramer();
    let size = -1;
    for (
      let end = Math.min(65_536, input.length);
      size < 0;
      end = Math.min(end + 65_536, input.length)
    ) {
      size = framer.frame(input, 0, end);
      if (end === input.length) break;
    }
    assert.equal(size, input.length, `${reply.slice(0, 9)} in chunks`);
  }
  assert.equal(decodeReplyValue(enc.encode("(1.5\r\n")).value, "1.5");
  assert.equal(decodeReplyValue(enc.encode("(-12\r\n")).value, -12n);
});

Deno.test("decodeReplyValue() decodes RESP3 values; element bounds measure them", () => {
  const decode = (reply: string) => decodeReplyValue(enc.encode(reply)).value;
  assert.equal(decode("_\r\n"), null);
  assert.equal(decode("#t\r\n"), true);
  assert.equal(decode(",-inf\r\n"), -Infinity);
  assert.equal(decode(",2.5\r\n"), 2.5);
  assert.equal(decode("(-99999999999999999999\r\n"), -99999999999999999999n);
  assert.deepEqual(decode("!3\r\nE x\r\n"), new RespErrorReply("E x"));
  assert.deepEqual(decode("=7\r\ntxt:abc\r\n"), enc.encode("txt:abc"));
  assert.deepEqual(decode("%1\r\n+a\r\n~1\r\n:1\r\n"), ["a", [1]]);
  assert.deepEqual(decode("|1\r\n+k\r\n+v\r\n*1\r\n|0\r\n:7\r\n"), [7]);
  for (const reply of resp3Replies) {
    const bytes = enc.encode(reply);
    assert.equal(decodeReplyValue(bytes).size, bytes.length, reply);
  }
  const array = enc.encode(`*${resp3Replies.length}\r\n${resp3Replies.join("")}`);
  const slices = arrayElementSlices(array)!.map((s) => new TextDecoder().decode(s));
  assert.deepEqual(slices, resp3Replies);
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

/** What redis-server sends for a Lua table that holds itself: `depth` arrays, then an error. */
function _deepReply(depth: number, leaf = "-ERR reached lua stack limit\r\n"): string {
  return "*1\r\n".repeat(depth) + leaf;
}

Deno.test("frame() frames replies nested as deep as redis-server makes them, in any chunks", () => {
  // 7995 levels is what redis-server 7 returned for `local a = {}; local b = {a}; a[1] = b;
  // return a`; 100000 is far past it (a module may nest deeper).
  for (const depth of [65, 7995, 100_000]) {
    const replies = [
      "+OK\r\n",
      _deepReply(depth),
      ":1\r\n",
      _deepReply(depth, "*2\r\n:1\r\n$-1\r\n"),
    ];
    const input = enc.encode(replies.join(""));
    const expected = replies.map((r) => r.length);
    // Cuts inside the deep part, at its leaf, and one byte at a time over a stretch.
    const cuts = [1, 7, depth * 2, depth * 4 + 4, depth * 4 + 6, input.length - 3];
    for (const cut of cuts) assert.deepEqual(frameAll(input, [cut]), expected, `depth ${depth}`);
    const chunked = Array.from({ length: 200 }, (_, i) => i * 7 + 3).filter((cut) =>
      cut < input.length
    );
    assert.deepEqual(frameAll(input, chunked), expected, `depth ${depth}, chunked`);
  }
});

Deno.test("decodeReplyValue() decodes a reply 100000 arrays deep without recursion", () => {
  const depth = 100_000;
  const input = enc.encode(_deepReply(depth, ":7\r\n") + "+next\r\n");
  const { value, size } = decodeReplyValue(input);
  assert.equal(size, depth * 4 + 4);
  let inner: RespValue = value;
  for (let i = 0; i < depth; i++) {
    assert.ok(Array.isArray(inner) && inner.length === 1, `level ${i}`);
    inner = inner[0];
  }
  assert.equal(inner, 7);
  assert.deepEqual(decodeReplyValue(input, size).value, "next");
  // Element bounds (merges) measure deep elements the same way.
  const array = enc.encode(`*2\r\n${_deepReply(depth, "$1\r\nx\r\n")}:5\r\n`);
  const slices = arrayElementSlices(array)!;
  assert.deepEqual(slices.map((s) => s.length), [depth * 4 + 7, 4]);
});

Deno.test("frame() waits on an array of more elements than any request may carry", () => {
  // LRANGE of a 20M-element list is a valid reply: refusing its header would break the
  // backend connection every client shares.
  const header = enc.encode("*20000000\r\n:1\r\n:2\r\n");
  const framer = new RespReplyFramer();
  assert.equal(framer.frame(header, 0, header.length), -1);
  const small = enc.encode("*3\r\n:1\r\n:2\r\n:3\r\n");
  assert.equal(new RespReplyFramer().frame(small, 0, small.length), small.length);
});

Deno.test("neededBytes estimates a large partial reply as values of the size seen so far", () => {
  const framer = new RespReplyFramer();
  const big = 1_000_000;
  const element = `$${big}\r\n`.length + big + 2;
  // An MGET of 3 large values, its first one under way: 3 elements of the first's size.
  const head = enc.encode(`*3\r\n$${big}\r\nxyz`);
  assert.equal(framer.frame(head, 0, head.length), -1);
  assert.equal(framer.neededBytes, 4 + 3 * element);
  // Further along (the second value), counted from the reply's start.
  const reply = new Uint8Array(4 + 2 * element + 100);
  reply.set(enc.encode(`*3\r\n`));
  for (let i = 0; i < 3; i++) {
    const at = 4 + i * element;
    reply.set(enc.encode(`$${big}\r\n`), at);
    if (i < 2) reply.set(enc.encode("\r\n"), at + element - 2);
  }
  const later = new RespReplyFramer();
  assert.equal(later.frame(reply, 0, reply.length), -1);
  assert.equal(later.neededBytes, 4 + 3 * element);
  // A single large bulk string: its own size; small ones and complete replies: unknown (0).
  const single = new RespReplyFramer();
  assert.equal(single.frame(enc.encode(`$${big}\r\nab`), 0, 12), -1);
  assert.equal(single.neededBytes, element);
  const small = new RespReplyFramer();
  assert.equal(small.frame(enc.encode("*2\r\n$5\r\nab"), 0, 10), -1);
  assert.equal(small.neededBytes, 0);
  const done = new RespReplyFramer();
  assert.equal(done.frame(head, 0, head.length), -1);
  const rest = new Uint8Array(4 + 3 * element);
  rest.set(head);
  for (let i = 0; i < 3; i++) {
    const at = 4 + i * element;
    rest.set(enc.encode(`$${big}\r\n`), at);
    rest.set(enc.encode("\r\n"), at + element - 2);
  }
  assert.equal(done.frame(rest, 0, rest.length), rest.length);
  assert.equal(done.neededBytes, 0, "a complete reply leaves no estimate");
});
