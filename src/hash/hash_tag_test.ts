import assert from "node:assert/strict";
import { hashTagSlice } from "./hash_tag.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const BRACES = encoder.encode("{}");

function _slice(key: string, tag: Uint8Array | null = BRACES): string {
  return decoder.decode(hashTagSlice(encoder.encode(key), tag));
}

Deno.test("hashTagSlice() returns the bytes between the tags", () => {
  assert.equal(_slice("user{42}:a"), "42");
  assert.equal(_slice("{42}"), "42");
  assert.equal(_slice("a{b}c{d}"), "b");
});

Deno.test("hashTagSlice() pairs the first open tag with the first close tag after it", () => {
  assert.equal(_slice("a{b{c}d}"), "b{c");
  assert.equal(_slice("}a{b}"), "b");
});

Deno.test("hashTagSlice() returns the whole key without a non-empty tagged part", () => {
  for (const key of ["plain", "user{}:a", "open{only", "close}only", "}{", "}x{"]) {
    assert.equal(_slice(key), key);
  }
});

Deno.test("hashTagSlice() returns the key itself when no tag is configured", () => {
  const key = encoder.encode("user{42}:a");
  assert.equal(hashTagSlice(key, null), key);
});

Deno.test("hashTagSlice() works with the same byte as both tags", () => {
  assert.equal(_slice("a$b$c", encoder.encode("$$")), "b");
  assert.equal(_slice("a$$c", encoder.encode("$$")), "a$$c");
});

Deno.test("hashTagSlice() returns views into the key, never copies", () => {
  const key = encoder.encode("user{42}:a");
  const slice = hashTagSlice(key, BRACES);
  assert.equal(slice.buffer, key.buffer);
  assert.equal(slice.byteOffset, key.byteOffset + 5);
  assert.equal(slice.length, 2);
});
