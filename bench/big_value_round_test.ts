import assert from "node:assert/strict";
import { MgetReplyCheck } from "./big_value_round.ts";

const encoder = new TextEncoder();
const VALUE = new Uint8Array(100).fill(0x61);
/** The MGET reply of the bench's 5 keys, each holding VALUE. */
const REPLY = encoder.encode("*5\r\n" + ("$100\r\n" + "a".repeat(100) + "\r\n").repeat(5));

function _feedAll(bytes: Uint8Array, chunk: number): MgetReplyCheck {
  const check = new MgetReplyCheck(VALUE);
  for (let at = 0; at < bytes.length; at += chunk) check.feed(bytes.subarray(at, at + chunk));
  return check;
}

Deno.test("the big-value client accepts the MGET reply at every chunk size", () => {
  for (const chunk of [1, 2, 5, 7, 99, 100, 101, REPLY.length]) {
    assert.equal(_feedAll(REPLY, chunk).done, true, `chunk ${chunk}`);
  }
  assert.equal(_feedAll(REPLY.subarray(0, REPLY.length - 1), 7).done, false);
});

Deno.test("the big-value client refuses a reply that is not the values it set", () => {
  const at = (value: number, offset: number) => 4 + value * 108 + 6 + offset;
  const cases: [string, number][] = [
    ["a value's first byte", at(1, 0)],
    ["a value's last byte", at(4, 99)],
    ["the CR after a value", at(2, 100)],
    ["the LF after a value", at(0, 101)],
  ];
  for (const [what, offset] of cases) {
    const bad = REPLY.slice();
    bad[offset] = 0x62;
    for (const chunk of [1, 64, REPLY.length]) {
      assert.throws(
        () => _feedAll(bad, chunk),
        /MGET: value \d differs/,
        `${what}, chunk ${chunk}`,
      );
    }
  }
  assert.throws(() => _feedAll(encoder.encode("*5\r\n$99\r\n"), 3), /MGET: got "\$99\\r"/);
  assert.throws(() => _feedAll(encoder.encode("*4\r\n"), 1), /MGET: got/);
  assert.throws(() => _feedAll(encoder.encode("$-1\r\n"), 1), /MGET: got/);
  const extra = new Uint8Array(REPLY.length + 1);
  extra.set(REPLY);
  assert.throws(() => _feedAll(extra, 64), /bytes after the reply/);
});
