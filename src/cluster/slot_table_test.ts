import assert from "node:assert/strict";
import { RespErrorReply } from "../protocol/resp/reply_value.ts";
import {
  joinAddr,
  parseClusterSlots,
  parseRedirect,
  SLOT_COUNT,
  splitAddr,
  unownedSlots,
} from "./slot_table.ts";

const enc = new TextEncoder();

Deno.test("parseClusterSlots() maps every slot range to its master and replicas", () => {
  const reply = [
    [0, 5460, [enc.encode("127.0.0.1"), 7000, enc.encode("id0")], [enc.encode(""), 7003]],
    [5461, 10922, [enc.encode("127.0.0.1"), 7001]],
    [10923, 16383, [enc.encode("127.0.0.1"), 7002], [enc.encode("127.0.0.1"), 7005]],
    [16000, 16000, [enc.encode("127.0.0.1"), 7000]],
  ];
  const map = parseClusterSlots(reply, "10.0.0.9");
  assert.ok(typeof map !== "string");
  assert.deepEqual(map.shards, [
    { master: "127.0.0.1:7000", replicas: ["10.0.0.9:7003"] },
    { master: "127.0.0.1:7001", replicas: [] },
    { master: "127.0.0.1:7002", replicas: ["127.0.0.1:7005"] },
  ]);
  assert.equal(map.slotShard[0], 0);
  assert.equal(map.slotShard[5461], 1);
  assert.equal(map.slotShard[16000], 0, "a later single-slot range wins");
  assert.equal(map.slotShard[16383], 2);
  assert.equal(unownedSlots(map), 0);
});

Deno.test("parseClusterSlots() reports gaps and refuses malformed replies", () => {
  const partial = parseClusterSlots([[0, 99, [enc.encode("h"), 1]]], "x");
  assert.ok(typeof partial !== "string");
  assert.equal(unownedSlots(partial), SLOT_COUNT - 100);
  assert.match(String(parseClusterSlots(new RespErrorReply("ERR no cluster"), "x")), /failed/);
  assert.match(String(parseClusterSlots("OK", "x")), /not an array/);
  assert.match(String(parseClusterSlots([[0, 16384, [enc.encode("h"), 1]]], "x")), /invalid/);
  assert.match(String(parseClusterSlots([[0, 1, [enc.encode("h"), 0]]], "x")), /address/);
});

Deno.test("parseRedirect() reads MOVED and ASK targets only", () => {
  assert.deepEqual(parseRedirect("MOVED 3999 127.0.0.1:6381"), {
    kind: "moved",
    slot: 3999,
    addr: "127.0.0.1:6381",
  });
  assert.equal(parseRedirect("ASK 1 [::1]:7000")?.kind, "ask");
  assert.equal(parseRedirect("MOVED 16384 h:1"), null);
  assert.equal(parseRedirect("ERR MOVED"), null);
  assert.equal(parseRedirect("MOVED 1 nohostport"), null);
});

Deno.test("splitAddr() and joinAddr() round-trip IPv4, names and IPv6", () => {
  for (const [host, port] of [["127.0.0.1", 1], ["redis-1", 6379], ["::1", 7000]] as const) {
    assert.deepEqual(splitAddr(joinAddr(host, port)), { host, port });
  }
  assert.equal(splitAddr("host:0"), null);
  assert.equal(splitAddr(":80"), null);
});
