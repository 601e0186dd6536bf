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
