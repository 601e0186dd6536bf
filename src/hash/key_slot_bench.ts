/**
 * Redis Cluster slots of 1000 keys, with and without a {hash tag}: our `keySlot` on raw
 * bytes against npm cluster-key-slot on strings (its usual input), and against decoding
 * each key to a string first (what keeping keys as bytes saves).
 */
import assert from "node:assert/strict";
import calculateSlot from "cluster-key-slot";
import { keySlot } from "./key_slot.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const PLAIN = Array.from({ length: 1000 }, (_, i) => `user:${String(i * 7919).padStart(7, "0")}`);
const TAGGED = PLAIN.map((key) => `{${key}}:followers`);
const PLAIN_BYTES = PLAIN.map((key) => encoder.encode(key));
const TAGGED_BYTES = TAGGED.map((key) => encoder.encode(key));

// Check once: Redis's reference slots, and the same slot from bytes and from strings.
assert.equal(keySlot(encoder.encode("foo")), 12182);
assert.equal(keySlot(encoder.encode("123456789")), 0x31c3);
assert.deepEqual(PLAIN_BYTES.map(keySlot), PLAIN.map((key) => calculateSlot(key)));
assert.deepEqual(TAGGED_BYTES.map(keySlot), PLAIN.map((key) => calculateSlot(key)));
assert.ok(new Set(PLAIN_BYTES.map(keySlot)).size > 900, "1000 keys spread over the slots");

for (
  const [tag, strings, bytes] of [["no tag", PLAIN, PLAIN_BYTES], [
    "{tag}",
    TAGGED,
    TAGGED_BYTES,
  ]] as const
) {
  const group = `slot of 1000 keys, ${tag}`;

  Deno.bench(`cluster-key-slot (string)`, { group, baseline: true }, () => {
    for (const key of strings) calculateSlot(key);
  });

  Deno.bench(`keySlot (bytes)`, { group }, () => {
    for (const key of bytes) keySlot(key);
  });

  Deno.bench(`TextDecoder + cluster-key-slot`, { group }, () => {
    for (const key of bytes) calculateSlot(decoder.decode(key));
  });
}
