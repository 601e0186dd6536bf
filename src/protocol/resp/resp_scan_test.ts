import assert from "node:assert/strict";
import { encodeArray, encodeBulk, encodeCommandText, NULL_BULK_REPLY } from "./encoder.ts";
import {
  encodeScanCursor,
  parseScanCursor,
  rewriteScanReply,
  SCAN_NODE_SHIFT,
  ScanSplit,
} from "./resp_scan.ts";
import { mergeKeyspace } from "./info_keyspace.ts";
import { RespSplit } from "./resp_split.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function _scanReply(cursor: string, keys: string[]): Uint8Array {
  return encodeArray([encodeBulk(cursor), encodeArray(keys.map((key) => encodeBulk(key)))]);
}

Deno.test("scan cursors carry the node index above bit 40 and stay exact as numbers", () => {
  assert.equal(encodeScanCursor(0, 17), "17");
  assert.equal(encodeScanCursor(2, 5), String(2 * 2 ** SCAN_NODE_SHIFT + 5));
  assert.deepEqual(parseScanCursor(encoder.encode(encodeScanCursor(3, 12345))), {
    node: 3,
    cursor: 12345,
  });
  assert.ok(Number.isSafeInteger(Number(encodeScanCursor(4095, 2 ** SCAN_NODE_SHIFT - 1))));
  // Malformed as redis-server's strtoul reads it.
  for (const bad of ["-", "+", " 5", "5 ", "1.5", "abc", "0x10", "18446744073709551616"]) {
    assert.equal(parseScanCursor(encoder.encode(bad)), null, bad);
  }
  // Accepted as it does: the empty string and "+0", "-0" are 0; a negative one wraps;
  // a big one names a node past the last (the scan is over).
  for (const zero of ["", "+0", "-0", "00"]) {
    assert.deepEqual(parseScanCursor(encoder.encode(zero)), { node: 0, cursor: 0 }, zero);
  }
  assert.deepEqual(parseScanCursor(encoder.encode("+17")), { node: 0, cursor: 17 });
  const unit = 2 ** SCAN_NODE_SHIFT;
  assert.deepEqual(parseScanCursor(encoder.encode("-1")), {
    node: 2 ** (64 - SCAN_NODE_SHIFT) - 1,
    cursor: unit - 1,
  });
  assert.deepEqual(parseScanCursor(encoder.encode("-18446744073709551615")), {
    node: 0,
    cursor: 1,
  });
  assert.ok(parseScanCursor(encoder.encode("9007199254740993"))!.node >= 2 ** 13);
});

Deno.test("a node's scan reply gets Aster's cursor: the same node, the next, or the end", () => {
  const keys = ["a", "b"];
  const on = (reply: Uint8Array) => decoder.decode(reply);
  assert.equal(
    on(rewriteScanReply(_scanReply("9", keys), 1, 3)),
    on(_scanReply(encodeScanCursor(1, 9), keys)),
  );
  assert.equal(
    on(rewriteScanReply(_scanReply("0", keys), 1, 3)),
    on(_scanReply(encodeScanCursor(2, 0), keys)),
  );
  assert.equal(on(rewriteScanReply(_scanReply("0", []), 2, 3)), on(_scanReply("0", [])));
  assert.match(on(rewriteScanReply(encodeBulk("x"), 0, 1)), /^-ERR unexpected reply/);
});

Deno.test("ScanSplit sends the node's own cursor and passes errors through", () => {
  const argv = ["SCAN", encodeScanCursor(2, 7), "MATCH", "k*"].map((s) => encoder.encode(s));
  const split = new ScanSplit(argv, 2, 7, 3);
  const part = { group: 5, keyIndexes: [] };
  assert.deepEqual(split.request(part, 0), encodeCommandText("SCAN", "7", "MATCH", "k*"));
  const error = encoder.encode("-ERR boom\r\n");
  assert.equal(split.merge([error], [part]), error);
});

Deno.test("RANDOMKEY's merge: a key of a node that has one, nil when all are empty", () => {
  const split = new RespSplit({
    kind: "random",
    argv: [encoder.encode("RANDOMKEY")],
    whole: true,
    parts: 3,
    keyCount: 0,
    firstKeyIndex: 0,
  });
  const parts = [0, 1, 2].map((group) => ({ group, keyIndexes: [] }));
  const key = encodeBulk("k");
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(split.merge([NULL_BULK_REPLY, key, NULL_BULK_REPLY], parts), key);
  }
  assert.deepEqual(split.merge([NULL_BULK_REPLY, NULL_BULK_REPLY], parts), NULL_BULK_REPLY);
});

Deno.test("INFO keyspace sums keys and expires per database, avg_ttl weighted", () => {
  const a = encodeBulk("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=1000\r\n");
  const b = encodeBulk("# Keyspace\r\ndb0:keys=5,expires=3,avg_ttl=2000\r\n");
  const empty = encodeBulk("# Keyspace\r\n");
  assert.equal(
    decoder.decode(mergeKeyspace([a, b, empty])),
    decoder.decode(encodeBulk("# Keyspace\r\ndb0:keys=8,expires=4,avg_ttl=1750\r\n")),
  );
  assert.equal(decoder.decode(mergeKeyspace([empty, empty])), decoder.decode(empty));
});
