/**
 * Ketama placement: 1000 keys on rings of 3 and 25 servers, by precomputed hash and with
 * the key hash (twemproxy's fnv1a_64, or md5 for comparison); and what a ring rebuild
 * (reload, ejection) costs.
 */
import assert from "node:assert/strict";
import { fnv1a64 } from "./fnv.ts";
import { hashTagSlice } from "./hash_tag.ts";
import { KetamaRing, type RingNode } from "./ketama.ts";
import { md5 } from "./md5.ts";

const encoder = new TextEncoder();

function _nodes(count: number): RingNode[] {
  return Array.from({ length: count }, (_, i) => ({ name: `10.0.0.${i + 1}:6379`, weight: 1 }));
}

/** Twemproxy's `hash_md5`: the first four digest bytes, little-endian. */
function _md5Hash(key: Uint8Array): number {
  const d = md5(key);
  return (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0;
}

const NODES_3 = _nodes(3);
const NODES_25 = _nodes(25);
const RING_3 = new KetamaRing(NODES_3);
const RING_25 = new KetamaRing(NODES_25);
const KEYS = Array.from(
  { length: 1000 },
  (_, i) => encoder.encode(`user:${String(i * 7919).padStart(7, "0")}:profile`),
);
const TAGGED_KEYS = Array.from(
  { length: 1000 },
  (_, i) => encoder.encode(`{user:${String(i * 7919).padStart(7, "0")}}:followers`),
);
const TAG = encoder.encode("{}");
const HASHES = Uint32Array.from(KEYS, fnv1a64);

/** Picks the node of every precomputed hash; returns a checksum of the picks. */
function _pickAll(ring: KetamaRing, hashes: Uint32Array): number {
  let sum = 0;
  for (let i = 0; i < hashes.length; i++) sum += ring.pick(hashes[i]);
  return sum;
}

// Check once: the rings have twemproxy's point counts, every server gets a fair share of
// the keys, and hashing inside the loop picks what the precomputed hashes pick.
assert.equal(RING_3.pointCount, 3 * 160);
assert.equal(RING_25.pointCount, 25 * 156);
for (const [ring, count] of [[RING_3, 3], [RING_25, 25]] as const) {
  const perNode = new Array<number>(count).fill(0);
  for (const hash of HASHES) perNode[ring.pick(hash)]++;
  const fair = KEYS.length / count;
  assert.ok(perNode.every((n) => n > fair / 3 && n < fair * 3), `ring ${count}: ${perNode}`);
  assert.deepEqual(
    KEYS.map((key) => ring.pick(fnv1a64(key))),
    Array.from(HASHES, (hash) => ring.pick(hash)),
  );
}
// "{user:NNNNNNN}:followers" hashes as "user:NNNNNNN", the first 12 bytes of its KEYS twin.
assert.deepEqual(
  TAGGED_KEYS.map((key) => fnv1a64(hashTagSlice(key, TAG))),
  KEYS.map((key) => fnv1a64(key.subarray(0, 12))),
);

Deno.bench("ring 3, precomputed hash", { group: "pick 1000 keys", baseline: true }, () => {
  _pickAll(RING_3, HASHES);
});

Deno.bench("ring 25, precomputed hash", { group: "pick 1000 keys" }, () => {
  _pickAll(RING_25, HASHES);
});

Deno.bench("ring 25, fnv1a64 + pick", { group: "pick 1000 keys" }, () => {
  for (const key of KEYS) RING_25.pick(fnv1a64(key));
});

Deno.bench("ring 25, hash tag + fnv1a64 + pick", { group: "pick 1000 keys" }, () => {
  for (const key of TAGGED_KEYS) RING_25.pick(fnv1a64(hashTagSlice(key, TAG)));
});

Deno.bench("ring 25, md5 + pick", { group: "pick 1000 keys" }, () => {
  for (const key of KEYS) RING_25.pick(_md5Hash(key));
});

Deno.bench("build ring of 3", { group: "build ring", baseline: true }, () => {
  new KetamaRing(NODES_3);
});

Deno.bench("build ring of 25", { group: "build ring" }, () => {
  new KetamaRing(NODES_25);
});
