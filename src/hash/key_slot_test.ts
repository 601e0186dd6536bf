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
