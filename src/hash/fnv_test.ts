import assert from "node:assert/strict";
import { fnv1a64 } from "./fnv.ts";

const encoder = new TextEncoder();
const MASK64 = (1n << 64n) - 1n;

/** Full 64-bit FNV-1a in BigInt; `signedBytes` XORs bytes as a signed C `char`. */
function _reference(key: Uint8Array, signedBytes: boolean): number {
  let hash = 0xcbf29ce484222325n;
  for (const byte of key) {
    const value = signedBytes && byte >= 0x80 ? BigInt(byte) - 256n : BigInt(byte);
    hash = ((hash ^ (value & MASK64)) * 0x100000001b3n) & MASK64;
  }
  return Number(hash & 0xffffffffn);
}

function _bytes(seed: number, length: number, max: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = (seed >>> 16) % (max + 1);
  }
  return out;
}

Deno.test("fnv1a64() returns the low 32 bits of the published 64-bit FNV-1a vectors", () => {
  assert.equal(fnv1a64(encoder.encode("")), 0x84222325); // 0xcbf29ce484222325
  assert.equal(fnv1a64(encoder.encode("a")), 0x8601ec8c); // 0xaf63dc4c8601ec8c
  assert.equal(fnv1a64(encoder.encode("foobar")), 0xf73967e8); // 0x85944171f73967e8
});

Deno.test("fnv1a64() matches a BigInt 64-bit FNV-1a on ASCII keys", () => {
  for (let length = 0; length < 300; length++) {
    const key = _bytes(length + 1, length, 0x7f);
    assert.equal(fnv1a64(key), _reference(key, false), `length ${length}`);
  }
});

Deno.test("fnv1a64() sign-extends bytes >= 0x80 like twemproxy's signed char on x86-64", () => {
  for (let length = 1; length < 300; length++) {
    const key = _bytes(length * 7, length, 0xff);
    assert.equal(fnv1a64(key), _reference(key, true), `length ${length}`);
  }
  const high = new Uint8Array([0xc3, 0xa9]); // "é"
  assert.notEqual(fnv1a64(high), _reference(high, false));
});

Deno.test("fnv1a64() returns an unsigned 32-bit integer", () => {
  for (let i = 0; i < 1000; i++) {
    const hash = fnv1a64(encoder.encode(`key:${i}`));
    assert.ok(Number.isInteger(hash) && hash >= 0 && hash <= 0xffffffff, `${hash}`);
  }
});

Deno.test("fnv1a64() hashes a subarray view by its own bytes only", () => {
  const whole = encoder.encode("xxuser:42yy");
  assert.equal(fnv1a64(whole.subarray(2, 9)), fnv1a64(encoder.encode("user:42")));
});
