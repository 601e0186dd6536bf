import assert from "node:assert/strict";
import { RingRouter } from "./ring_router.ts";

const encoder = new TextEncoder();
const KEYS = Array.from({ length: 200 }, (_, i) => encoder.encode(`user:${i}:session`));

Deno.test("RingRouter with one node sends every key to it, and none while it is ejected", () => {
  const router = new RingRouter([{ name: "only", weight: 1 }], null);
  for (const key of KEYS) assert.equal(router.pick(key), 0);
  router.setLive(0, false);
  for (const key of KEYS) assert.equal(router.pick(key), -1);
  router.setLive(0, true);
  assert.equal(router.pick(KEYS[0]), 0);
});

Deno.test("RingRouter: the last live node takes every key; rejoining restores the ring", () => {
  const nodes = [{ name: "a", weight: 1 }, { name: "b", weight: 1 }, { name: "c", weight: 1 }];
  const router = new RingRouter(nodes, null);
  const before = KEYS.map((key) => router.pick(key));
  assert.deepEqual(new Set(before), new Set([0, 1, 2]), "keys spread over all three");
  router.setLive(0, false);
  router.setLive(2, false);
  for (const key of KEYS) assert.equal(router.pick(key), 1);
  router.setLive(0, true);
  router.setLive(2, true);
  assert.deepEqual(KEYS.map((key) => router.pick(key)), before);
});

Deno.test("RingRouter with another hash and modula places keys by that hash", () => {
  const nodes = [{ name: "a", weight: 1 }, { name: "b", weight: 1 }, { name: "c", weight: 1 }];
  const router = new RingRouter(nodes, "{}", { hash: "crc32a", distribution: "modula" });
  // crc32a("123456789") = 0xcbf43926; % 3 = 2 -> "c"
  assert.equal(router.pick(encoder.encode("123456789")), 0xcbf43926 % 3);
  assert.equal(router.pick(encoder.encode("x{123456789}y")), 0xcbf43926 % 3);
  // An empty key hashes to 0, as in twemproxy: slot 0 is "a".
  assert.equal(router.pick(new Uint8Array(0)), 0);
  router.setLive(0, false);
  assert.equal(router.pick(new Uint8Array(0)), 1, "slot 0 is now b");
});

Deno.test("RingRouter keeps the default path for fnv1a_64 + ketama", () => {
  const nodes = [{ name: "a", weight: 1 }, { name: "b", weight: 1 }];
  const router = new RingRouter(nodes, null, { hash: "fnv1a_64", distribution: "ketama" });
  assert.ok(!Object.hasOwn(router, "pick"), "no per-instance pick");
  const other = new RingRouter(nodes, null, { hash: "md5", distribution: "ketama" });
  assert.ok(Object.hasOwn(other, "pick"));
});
