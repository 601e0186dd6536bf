import assert from "node:assert/strict";
import { Slowlog } from "./slowlog.ts";

const enc = new TextEncoder();

Deno.test("Slowlog keeps the newest slow requests up to its length", () => {
  const log = new Slowlog(1000, 3);
  for (let i = 0; i < 5; i++) log.record(2000 + i, [enc.encode(`cmd${i}`)]);
  log.record(999, [enc.encode("fast")]);
  assert.equal(log.length, 3);
  assert.deepEqual(log.get(10).map((e) => e.id), [4, 3, 2]);
  assert.equal(log.get(1)[0].durationUs, 2004);
  log.reset();
  assert.equal(log.length, 0);
});

Deno.test("Slowlog logs everything at 0 and nothing below 0", () => {
  const all = new Slowlog(0, 10);
  all.record(0, []);
  assert.equal(all.length, 1);
  const none = new Slowlog(-1, 10);
  assert.equal(none.enabled, false);
  none.record(1e9, []);
  assert.equal(none.length, 0);
});

Deno.test("Slowlog.summarize() copies and truncates arguments like Redis", () => {
  const buffer = enc.encode("x".repeat(300));
  const argv = Array.from({ length: 40 }, () => buffer.subarray(0, 200));
  const kept = Slowlog.summarize(argv);
  assert.equal(kept.length, 32);
  assert.equal(kept[0].length, 128);
  assert.notEqual(kept[0].buffer, buffer.buffer, "a copy, not a view");
  assert.equal(new TextDecoder().decode(kept[31]), "... (9 more arguments)");
});

Deno.test("Slowlog wraps around its ring: newest first, ids in order, any count", () => {
  const log = new Slowlog(0, 4);
  for (let i = 0; i < 11; i++) log.record(i, [enc.encode(`cmd${i}`)]);
  assert.equal(log.length, 4);
  assert.deepEqual(log.get(10).map((e) => e.id), [10, 9, 8, 7]);
  assert.deepEqual(log.get(2).map((e) => new TextDecoder().decode(e.args[0])), ["cmd10", "cmd9"]);
  assert.deepEqual(log.get(0), []);
  assert.deepEqual(log.get(-1), []);
  log.reset();
  log.record(5, []);
  assert.deepEqual(log.get(5).map((e) => e.id), [11], "ids go on after a reset, as in Redis");
});
