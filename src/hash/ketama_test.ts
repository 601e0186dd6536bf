import assert from "node:assert/strict";
import { fnv1a64 } from "./fnv.ts";
import { ketamaName, KetamaRing, type RingNode } from "./ketama.ts";
import { md5 } from "./md5.ts";

const encoder = new TextEncoder();

function _equal(count: number): RingNode[] {
  return Array.from({ length: count }, (_, i) => ({ name: `127.0.0.1:${7000 + i}`, weight: 1 }));
}

/** The first of the four points twemproxy draws from md5(`${name}-${index}`). */
function _point(name: string, index: number): number {
  const d = md5(encoder.encode(`${name}-${index}`));
  return (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0;
}

Deno.test("ketamaName() prefers the alias", () => {
  assert.equal(ketamaName({ host: "10.0.0.1", port: 6379, alias: "alpha" }), "alpha");
  assert.equal(ketamaName({ host: "10.0.0.1", port: 11211, alias: "beta" }), "beta");
});

Deno.test("ketamaName() is host:port, or host alone on port 11211", () => {
  assert.equal(ketamaName({ host: "10.0.0.1", port: 6379, alias: null }), "10.0.0.1:6379");
  assert.equal(ketamaName({ host: "cache-1", port: 11211, alias: null }), "cache-1");
});

Deno.test("KetamaRing gives 160 points per node at equal weights", () => {
  const ring = new KetamaRing(_equal(3));
  assert.equal(ring.liveCount, 3);
  assert.equal(ring.pointCount, 480);
});

Deno.test("KetamaRing gives points in proportion to weight", () => {
  const nodes = [1, 2, 3, 4].map((weight, i) => ({ name: `n${i}`, weight }));
  assert.equal(new KetamaRing(nodes).pointCount, 64 + 128 + 192 + 256);
});

Deno.test("KetamaRing counts points in float32 like C: 25 equal nodes get 156 each", () => {
  // In double precision 1/25 * 40 * 25 is exactly 40; in float32 it falls just short.
  assert.equal(new KetamaRing(_equal(25)).pointCount, 25 * 156);
  assert.equal(new KetamaRing(_equal(24)).pointCount, 24 * 160);
});

Deno.test("pick() places keys like nutcracker (alpha:2 beta:1 gamma:3)", () => {
  const ring = new KetamaRing([
    { name: "alpha", weight: 2 },
    { name: "beta", weight: 1 },
    { name: "gamma", weight: 3 },
  ]);
  const keys = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel"];
  const picks = keys.map((key) => ring.pick(fnv1a64(encoder.encode(key))));
  assert.deepEqual(picks, [2, 0, 0, 2, 2, 2, 0, 0]);
});

Deno.test("pick() maps a point's own value to that point's node", () => {
  const nodes = [{ name: "alpha", weight: 1 }, { name: "beta", weight: 1 }];
  const ring = new KetamaRing(nodes);
  for (let index = 0; index < 40; index++) {
    assert.equal(ring.pick(_point("alpha", index)), 0);
    assert.equal(ring.pick(_point("beta", index)), 1);
  }
});

Deno.test("pick() wraps past the last point to the first", () => {
  const ring = new KetamaRing(_equal(3));
  assert.equal(ring.pick(0xffffffff), ring.pick(0));
});

Deno.test("pick() returns indexes into the original nodes and skips dead ones", () => {
  const nodes = _equal(4);
  const ring = new KetamaRing(nodes, [true, false, true, false]);
  assert.equal(ring.liveCount, 2);
  assert.equal(ring.pointCount, 320);
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) seen.add(ring.pick(fnv1a64(encoder.encode(`k${i * 7919}`))));
  assert.deepEqual([...seen].sort(), [0, 2]);
});

Deno.test("pick() keeps keys of surviving equal-weight nodes when one dies", () => {
  const nodes = _equal(4);
  const full = new KetamaRing(nodes);
  const reduced = new KetamaRing(nodes, [true, true, false, true]);
  let moved = 0;
  for (let i = 0; i < 5000; i++) {
    const hash = Math.imul(i, 2654435761) >>> 0;
    const before = full.pick(hash);
    const after = reduced.pick(hash);
    if (before !== 2) assert.equal(after, before);
    else moved++;
  }
  assert.ok(moved > 0);
});

Deno.test("KetamaRing treats missing live entries as live", () => {
  assert.equal(new KetamaRing(_equal(3), [true]).liveCount, 3);
});

Deno.test("pick() returns -1 when no node is live", () => {
  assert.equal(new KetamaRing([]).pick(123), -1);
  const dead = new KetamaRing(_equal(2), [false, false]);
  assert.equal(dead.liveCount, 0);
  assert.equal(dead.pick(123), -1);
});

Deno.test("pick() spreads uniform hashes in proportion to weight", () => {
  const ring = new KetamaRing([{ name: "a", weight: 1 }, { name: "b", weight: 3 }]);
  const counts = [0, 0];
  let seed = 1;
  for (let i = 0; i < 40000; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    counts[ring.pick(seed)]++;
  }
  const share = counts[1] / 40000;
  assert.ok(share > 0.65 && share < 0.85, `share ${share}`);
});

Deno.test("KetamaRing rejects a weight that is not a positive integer", () => {
  for (const weight of [0, -1, 1.5, NaN]) {
    assert.throws(() => new KetamaRing([{ name: "a", weight }]), RangeError);
  }
});
