import assert from "node:assert/strict";
import { describeRounds, roundRatios } from "./round_ratios.ts";

Deno.test("roundRatios pairs samples of the same round and skips rounds either lacks", () => {
  assert.deepEqual(roundRatios([100, 90, null, 120], [100, 100, 80, 0]), [1, 0.9]);
  assert.deepEqual(roundRatios([50, 60, 70], [100, 100]), [0.5, 0.6]);
  assert.deepEqual(roundRatios([], [1]), []);
});

Deno.test("describeRounds gives the range and, with a goal, the rounds that met it", () => {
  assert.equal(describeRounds([0.95, 1.04, 0.84, 1.0, 0.99]), "0.84-1.04x");
  assert.equal(describeRounds([0.95, 1.04, 0.84, 1.0, 0.99], { min: 1 }), "0.84-1.04x, 2/5 met");
  assert.equal(describeRounds([1.2, 1.6], { max: 1.5 }), "1.20-1.60x, 1/2 met");
  assert.equal(describeRounds([], { min: 1 }), "-");
});
