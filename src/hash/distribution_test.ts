import assert from "node:assert/strict";
import { buildDistribution, ModulaRing, RandomRing } from "./distribution.ts";
import { KetamaRing, twemproxyOrder } from "./ketama.ts";

Deno.test("twemproxyOrder() sorts names by byte length, then bytes, like nutcracker", () => {
  const nodes = ["bb", "a", "ab", "10.0.0.1:7000", "c"].map((name) => ({ name, weight: 1 }));
  assert.deepEqual(twemproxyOrder(nodes), [1, 4, 2, 0, 3]); // a, c, ab, bb, 10.0.0.1:7000
});

Deno.test("ModulaRing: hash % total weight over the nodes in name order, weight times each", () => {
  // Name order: "a" (weight 2), "b" (1), "cc" (3): slots a a b cc cc cc.
  const ring = new ModulaRing([
    { name: "cc", weight: 3 },
    { name: "a", weight: 2 },
    { name: "b", weight: 1 },
  ]);
  const expected = [1, 1, 2, 0, 0, 0];
  for (let hash = 0; hash < 24; hash++) {
    assert.equal(ring.pick(hash), expected[hash % 6], `${hash}`);
  }
  assert.equal(ring.pick(0xffffffff), expected[0xffffffff % 6]);
  assert.equal(ring.liveCount, 3);
});

Deno.test("ModulaRing leaves dead nodes out and returns -1 when none is live", () => {
  const nodes = [{ name: "a", weight: 1 }, { name: "b", weight: 1 }, { name: "c", weight: 2 }];
  const ring = new ModulaRing(nodes, [true, false, true]);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((hash) => ring.pick(hash)), [0, 2, 2, 0, 2, 2]);
  assert.equal(new ModulaRing(nodes, [false, false, false]).pick(7), -1);
  assert.equal(new ModulaRing([]).pick(7), -1);
  assert.throws(() => new ModulaRing([{ name: "a", weight: 0 }]), RangeError);
});

Deno.test("RandomRing picks only live nodes, each about as often, whatever the weight", () => {
  const nodes = [{ name: "a", weight: 1 }, { name: "b", weight: 9 }, { name: "c", weight: 1 }];
  const ring = new RandomRing(nodes, [true, true, true]);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[ring.pick(42)]++;
  for (const count of counts) assert.ok(count > 800 && count < 1200, `${counts}`);
  const some = new RandomRing(nodes, [false, true, false]);
  for (let i = 0; i < 100; i++) assert.equal(some.pick(i), 1);
  assert.equal(new RandomRing(nodes, [false, false, false]).pick(0), -1);
});

Deno.test("buildDistribution() builds the named one", () => {
  const nodes = [{ name: "a", weight: 1 }];
  assert.ok(buildDistribution("ketama", nodes) instanceof KetamaRing);
  assert.ok(buildDistribution("modula", nodes) instanceof ModulaRing);
  assert.ok(buildDistribution("random", nodes) instanceof RandomRing);
});
