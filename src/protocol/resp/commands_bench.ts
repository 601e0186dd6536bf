import { commandKeyIndexes, lookupCommand } from "./commands.ts";

const encoder = new TextEncoder();
const GET_UPPER = encoder.encode("GET");
const GET_LOWER = encoder.encode("get");
const ZRANGEBYSCORE = encoder.encode("zrangebyscore");
const UNKNOWN = encoder.encode("nosuchcmd");

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

const MGET = lookupCommand(encoder.encode("mget"))!;
const MGET_ARGV = ["MGET", "a", "b", "c", "d"].map((s) => encoder.encode(s));
Deno.bench("commandKeyIndexes MGET 4 keys", () => {
  commandKeyIndexes(MGET, MGET_ARGV);
});
