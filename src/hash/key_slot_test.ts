import assert from "node:assert/strict";
import { keySlot } from "./key_slot.ts";

const enc = new TextEncoder();

Deno.test("keySlot() matches Redis's CRC16 slots and hash-tag rules", () => {
  assert.equal(keySlot(enc.encode("123456789")), 0x31c3 & 0x3fff);
  assert.equal(keySlot(enc.encode("foo")), 12182);
  assert.equal(keySlot(enc.encode("{user1000}.following")), keySlot(enc.encode("user1000")));
  // An empty tag "{}" hashes the whole key; only the first "{" counts.
  assert.notEqual(keySlot(enc.encode("{}a")), keySlot(enc.encode("")));
  assert.equal(keySlot(enc.encode("a{b}{c}")), keySlot(enc.encode("b")));
  // Raw bytes, not UTF-8 re-encoding: 0xff stays one byte.
  assert.equal(keySlot(new Uint8Array([0xff])), keySlot(new Uint8Array([0xff])));
  assert.ok(keySlot(new Uint8Array([0xff, 0xfe, 0x00])) < 16384);
});

Deno.test("keySlot(): an empty first tag hashes the whole key, as Redis does", () => {
  // Redis's own slots (CLUSTER KEYSLOT on redis-server 7): the CRC of every byte.
  assert.equal(keySlot(enc.encode("{}a}b")), 5168);
  assert.equal(keySlot(enc.encode("{}a")), 10875);
  assert.notEqual(keySlot(enc.encode("{}a}b")), keySlot(enc.encode("a")));
});

/** Redis's keyHashSlot() written out plainly: bitwise CRC16, first "{" and first "}" after it. */
function _referenceSlot(key: Uint8Array): number {
  let from = 0;
  let to = key.length;
  const open = key.indexOf(0x7b);
  if (open >= 0) {
    const close = key.indexOf(0x7d, open + 1);
    if (close > open + 1) [from, to] = [open + 1, close];
  }
  let crc = 0;
  for (let i = from; i < to; i++) {
    crc ^= key[i] << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc & 0x3fff;
}

Deno.test("keySlot() agrees with Redis's keyHashSlot written out and with npm's cluster-key-slot", async () => {
  const { default: calculateSlot } = await import("cluster-key-slot");
  // xorshift32 from a fixed seed: the same keys every run, few repeats.
  let seed = 777;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) >>> 8;
  };
  for (let n = 0; n < 5000; n++) {
    const key = new Uint8Array(next() % 24);
    // Bytes 0x7b "{" and 0x7d "}" often, so tags of every shape occur.
    for (let i = 0; i < key.length; i++) {
      key[i] = next() % 3 === 0 ? [0x7b, 0x7d][next() % 2] : next() & 0xff;
    }
    assert.equal(keySlot(key), _referenceSlot(key), `key ${key}`);
    // cluster-key-slot goes on past an empty first tag "{}"; Redis hashes the whole key then.
    const open = key.indexOf(0x7b);
    if (open >= 0 && key[open + 1] === 0x7d) continue;
    assert.equal(keySlot(key), calculateSlot(key as unknown as string), `key ${key}`);
  }
  for (
    const text of ["", "{", "}", "{}", "{}{a}", "a{", "a{}", "{a", "}{a}", "{{a}}", "a{b}c{d}"]
  ) {
    assert.equal(keySlot(enc.encode(text)), _referenceSlot(enc.encode(text)), text);
  }
});
