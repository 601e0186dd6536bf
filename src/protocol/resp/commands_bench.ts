import assert from "node:assert/strict";
import { commandKeyIndexes, lookupCommand } from "./commands.ts";

const encoder = new TextEncoder();
const GET_UPPER = encoder.encode("GET");
const GET_LOWER = encoder.encode("get");
const ZRANGEBYSCORE = encoder.encode("zrangebyscore");
const UNKNOWN = encoder.encode("nosuchcmd");

// Check once that the lookups benched find what they should.
assert.equal(lookupCommand(GET_UPPER)?.name, "get");
assert.equal(lookupCommand(GET_LOWER)?.name, "get");
assert.equal(lookupCommand(ZRANGEBYSCORE)?.name, "zrangebyscore");
assert.equal(lookupCommand(UNKNOWN), undefined);

Deno.bench("lookupCommand GET", { group: "lookup", baseline: true }, () => {
  lookupCommand(GET_UPPER);
});

Deno.bench("lookupCommand get", { group: "lookup" }, () => {
  lookupCommand(GET_LOWER);
});

Deno.bench("lookupCommand zrangebyscore", { group: "lookup" }, () => {
  lookupCommand(ZRANGEBYSCORE);
});

Deno.bench("lookupCommand unknown", { group: "lookup" }, () => {
  lookupCommand(UNKNOWN);
});

// For comparison: what decoding the name to a string and a Map lookup cost.
const decoder = new TextDecoder();
const byName = new Map([["get", 1], ["zrangebyscore", 2]]);
Deno.bench("decode + toLowerCase + Map.get GET", { group: "lookup" }, () => {
  byName.get(decoder.decode(GET_UPPER).toLowerCase());
});

/** A command's spec and argv, and the key indexes it must give. */
function _keyCase(args: string[], keys: number[]) {
  const argv = args.map((s) => encoder.encode(s));
  const spec = lookupCommand(argv[0])!;
  assert.deepEqual(commandKeyIndexes(spec, argv), keys, args.join(" "));
  return { spec, argv };
}

const MGET = _keyCase(["MGET", "a", "b", "c", "d"], [1, 2, 3, 4]);
const MSET = _keyCase(["MSET", "a", "1", "b", "2", "c", "3", "d", "4"], [1, 3, 5, 7]);
const EVAL = _keyCase(["EVAL", "return 1", "2", "a", "b", "x"], [3, 4]);
const XREAD = _keyCase(["XREAD", "COUNT", "10", "STREAMS", "a", "b", "0", "0"], [4, 5]);

Deno.bench("commandKeyIndexes MGET 4 keys", { group: "key indexes", baseline: true }, () => {
  commandKeyIndexes(MGET.spec, MGET.argv);
});

Deno.bench("commandKeyIndexes MSET 4 pairs", { group: "key indexes" }, () => {
  commandKeyIndexes(MSET.spec, MSET.argv);
});

Deno.bench("commandKeyIndexes EVAL numkeys 2", { group: "key indexes" }, () => {
  commandKeyIndexes(EVAL.spec, EVAL.argv);
});

Deno.bench("commandKeyIndexes XREAD STREAMS 2", { group: "key indexes" }, () => {
  commandKeyIndexes(XREAD.spec, XREAD.argv);
});
