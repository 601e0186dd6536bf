/**
 * Multi-key requests on a ring of 3 servers: planning an MGET of 10 keys (key positions,
 * a ring pick per key, grouping, one encoded sub-request per server) against the same
 * MGET whose keys share a hash tag and go out whole; and merging the part replies.
 */
import assert from "node:assert/strict";
import { commandKeyIndexes, type CommandSpec, lookupCommand } from "./commands.ts";
import { encodeArray, encodeBulk, encodeCommand, encodeInteger } from "./encoder.ts";
import { RingRouter } from "../../proxy/ring_router.ts";
import { encodePart, groupKeys, partArgv, RespSplit, type SplitPart } from "./resp_split.ts";
import { SplitMerge } from "../split_merge.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ROUTER = new RingRouter(
  Array.from({ length: 3 }, (_, i) => ({ name: `10.0.0.${i + 1}:6379`, weight: 1 })),
  "{}",
);
const MGET_SPEC = lookupCommand(encoder.encode("MGET"))!;
const DEL_SPEC = lookupCommand(encoder.encode("DEL"))!;

function _argv(...args: string[]): Uint8Array[] {
  return args.map((arg) => encoder.encode(arg));
}

// Keys that differ only in their last bytes ("key:0000".."key:0009") hash to neighbouring
// ring points under fnv1a_64 and all land on one server; these spread 4/2/4.
const KEYS = Array.from({ length: 10 }, (_, i) => `user:${String(i).padStart(4, "0")}:session`);
const MGET_SPREAD = _argv("MGET", ...KEYS);
const MGET_TAGGED = _argv("MGET", ...KEYS.map((key) => `{user:42}:${key}`));
const DEL_SPREAD = _argv("DEL", ...KEYS);

/**
 * The pure part of routing one request (as RedisFrontend does it): one encoded request
 * per server; a request whose keys share a server goes out as it came (`raw`).
 */
function _plan(
  spec: CommandSpec,
  request: { argv: Uint8Array[]; raw: Uint8Array },
): { parts: SplitPart[]; bytes: Uint8Array[] } {
  const { argv, raw } = request;
  const keyIndexes = commandKeyIndexes(spec, argv) as number[];
  const groups = keyIndexes.map((index) => ROUTER.pick(argv[index]));
  if (groups.every((group) => group === groups[0])) {
    return { parts: [{ group: groups[0], keyIndexes }], bytes: [raw] };
  }
  const parts = groupKeys(keyIndexes, groups);
  return { parts, bytes: parts.map((part) => encodePart(spec.split!, argv, part)) };
}

const SPREAD = { argv: MGET_SPREAD, raw: encodeCommand(MGET_SPREAD) };
const TAGGED = { argv: MGET_TAGGED, raw: encodeCommand(MGET_TAGGED) };
const SPREAD_PLAN = _plan(MGET_SPEC, SPREAD);
const SPREAD_GROUPS = MGET_SPREAD.slice(1).map((key) => ROUTER.pick(key));
const KEY_INDEXES = SPREAD_PLAN.parts.flatMap((part) => part.keyIndexes).sort((a, b) => a - b);

// Check once: the spread MGET really splits over all 3 servers, each part holding the
// keys of its server in request order; the tagged one goes out whole.
assert.equal(SPREAD_PLAN.parts.length, 3);
assert.deepEqual(KEY_INDEXES, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
for (let p = 0; p < 3; p++) {
  const { group, keyIndexes } = SPREAD_PLAN.parts[p];
  assert.ok(keyIndexes.every((index) => SPREAD_GROUPS[index - 1] === group));
  assert.deepEqual(
    SPREAD_PLAN.bytes[p],
    encodeCommand([MGET_SPREAD[0], ...keyIndexes.map((index) => MGET_SPREAD[index])]),
  );
}
assert.deepEqual(_plan(MGET_SPEC, TAGGED).bytes, [TAGGED.raw]);

/** Each server's reply to its part: the value of each of its keys is "value-of-<key>". */
const MGET_PART_REPLIES = SPREAD_PLAN.parts.map((part) =>
  encodeArray(part.keyIndexes.map((index) => encodeBulk(`value-of-${KEYS[index - 1]}`)))
);
const MGET_MERGED = encodeArray(KEYS.map((key) => encodeBulk(`value-of-${key}`)));
const DEL_PLAN = _plan(DEL_SPEC, { argv: DEL_SPREAD, raw: encodeCommand(DEL_SPREAD) });
const DEL_PART_REPLIES = DEL_PLAN.parts.map((part) => encodeInteger(part.keyIndexes.length));

/** Feeds the part replies to a collector, as the backends would; returns the merged reply. */
function _merge(
  spec: CommandSpec,
  input: { parts: readonly SplitPart[]; replies: readonly Uint8Array[] },
): Uint8Array {
  let merged: Uint8Array | null = null;
  const { parts, replies } = input;
  const strategy = new RespSplit({
    kind: spec.split!,
    argv: [],
    whole: false,
    parts: parts.length,
    keyCount: 10,
    firstKeyIndex: 1,
  });
  const collector = new SplitMerge(parts, strategy);
  const keep = (reply: Uint8Array, isView: boolean) => merged = isView ? reply.slice() : reply;
  collector.bind({
    answer: (reply) => keep(reply, false),
    fill: keep,
    onReply: (reply) => keep(reply, true),
    onError: () => {},
  });
  for (let i = 0; i < parts.length; i++) collector.sinkFor(i).onReply(replies[i]);
  return merged!;
}

assert.equal(
  decoder.decode(_merge(MGET_SPEC, { parts: SPREAD_PLAN.parts, replies: MGET_PART_REPLIES })),
  decoder.decode(MGET_MERGED),
);
assert.equal(
  decoder.decode(_merge(DEL_SPEC, { parts: DEL_PLAN.parts, replies: DEL_PART_REPLIES })),
  ":10\r\n",
);

Deno.bench("10 keys, 1 server (hash tag): whole", { group: "plan MGET 10", baseline: true }, () => {
  _plan(MGET_SPEC, TAGGED);
});

Deno.bench("10 keys, 3 servers: split + encode parts", { group: "plan MGET 10" }, () => {
  _plan(MGET_SPEC, SPREAD);
});

Deno.bench("10 keys, 3 servers: parts via partArgv + encodeCommand", {
  group: "plan MGET 10",
}, () => {
  const parts = groupKeys(KEY_INDEXES, SPREAD_GROUPS);
  for (const part of parts) encodeCommand(partArgv("mget", MGET_SPREAD, part));
});

Deno.bench("10 keys, 3 servers: parts via encodePart", { group: "plan MGET 10" }, () => {
  const parts = groupKeys(KEY_INDEXES, SPREAD_GROUPS);
  for (const part of parts) encodePart("mget", MGET_SPREAD, part);
});

Deno.bench("groupKeys only (groups known)", { group: "plan MGET 10" }, () => {
  groupKeys(KEY_INDEXES, SPREAD_GROUPS);
});

Deno.bench("MGET 10 from 3 parts", { group: "merge 3 parts", baseline: true }, () => {
  _merge(MGET_SPEC, { parts: SPREAD_PLAN.parts, replies: MGET_PART_REPLIES });
});

Deno.bench("DEL 10 from 3 parts (sum)", { group: "merge 3 parts" }, () => {
  _merge(DEL_SPEC, { parts: DEL_PLAN.parts, replies: DEL_PART_REPLIES });
});
