import assert from "node:assert/strict";
import { md5 } from "./md5.ts";

const encoder = new TextEncoder();

function _hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("md5() matches the RFC 1321 test suite", () => {
  const vectors: [string, string][] = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    [
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f",
    ],
    ["1234567890".repeat(8), "57edf4a22be3c955ac49da2e2107b67a"],
  ];
  for (const [input, digest] of vectors) {
    assert.equal(_hex(md5(encoder.encode(input))), digest, JSON.stringify(input));
  }
});

Deno.test("md5() returns 16 bytes and reads a subarray view by its own bytes", () => {
  const whole = encoder.encode("--alpha-0--");
  const digest = md5(whole.subarray(2, 9));
  assert.equal(digest.length, 16);
  assert.deepEqual(digest, md5(encoder.encode("alpha-0")));
});
