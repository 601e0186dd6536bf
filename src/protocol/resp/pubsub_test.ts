import assert from "node:assert/strict";
import {
  bulkElement,
  ClientSubscriptions,
  confirmation,
  keyBytes,
  messageSubscription,
  nameKey,
  notificationPlacement,
  PushKind,
  pushKind,
  shardUnsubscribed,
  SubKind,
  subscribedPong,
  subscribedRefusal,
  subscriptionCommand,
} from "./pubsub.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const b = (text: string) => encoder.encode(text);
const s = (bytes: Uint8Array) => decoder.decode(bytes);

Deno.test("confirmations carry the client's running count, as redis-server's", () => {
  const subs = new ClientSubscriptions();
  assert.equal(
    s(subs.subscribe(SubKind.channel, [b("a"), b("b"), b("a")]).reply),
    "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n" +
      "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n",
  );
  // Patterns count with channels; shard channels apart.
  assert.equal(s(subs.subscribe(SubKind.pattern, [b("p*")]).reply).endsWith(":3\r\n"), true);
  assert.equal(s(subs.subscribe(SubKind.shard, [b("s")]).reply).endsWith(":1\r\n"), true);
  assert.equal(subs.total, 4);
  const removed = subs.unsubscribe(SubKind.channel, [b("zz"), b("a")]);
  assert.deepEqual(removed.changed, ["a"]);
  assert.equal(
    s(removed.reply),
    "*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:3\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n",
  );
  // Every channel, then none left: one frame with a nil name and the count of the rest.
  assert.deepEqual(subs.unsubscribe(SubKind.channel, []).changed, ["b"]);
  assert.equal(
    s(subs.unsubscribe(SubKind.channel, []).reply),
    "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n",
  );
  const cleared = subs.clear();
  assert.deepEqual(cleared.map((d) => [d.kind, d.changed]), [[1, ["p*"]], [2, ["s"]]]);
  assert.equal(subs.total, 0);
});

Deno.test("names are kept as their bytes, whatever they are", () => {
  const name = new Uint8Array([0, 255, 13, 10, 0x7b]);
  assert.deepEqual(keyBytes(nameKey(name)), name);
  assert.equal(s(confirmation("subscribe", null, 0)), "*3\r\n$9\r\nsubscribe\r\n$-1\r\n:0\r\n");
});

Deno.test("the subscribed state's PING reply and refusal are redis-server's", () => {
  assert.equal(s(subscribedPong(undefined)), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  assert.equal(s(subscribedPong(b("hi"))), "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
  assert.equal(
    s(subscribedRefusal("pubsub", [b("PUBSUB"), b("NUMPAT")])),
    "-ERR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / " +
      "RESET are allowed in this context\r\n",
  );
  assert.match(s(subscribedRefusal("get", [b("GET"), b("k")])), /'get'/);
});

Deno.test("subscription connections' frames are told apart, RESP2 and RESP3 alike", () => {
  const message = b("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n");
  assert.equal(pushKind(message), PushKind.message);
  assert.deepEqual(messageSubscription(message), { kind: SubKind.channel, key: "ch" });
  const push = b(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n");
  assert.equal(pushKind(push), PushKind.message);
  const pmessage = b("*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n");
  assert.deepEqual(messageSubscription(pmessage), { kind: SubKind.pattern, key: "c*" });
  const smessage = b("*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nx\r\n");
  assert.deepEqual(messageSubscription(smessage), { kind: SubKind.shard, key: "s" });
  assert.equal(pushKind(b("*2\r\n$4\r\npong\r\n$0\r\n\r\n")), PushKind.pong);
  assert.equal(pushKind(b("+PONG\r\n")), PushKind.pong);
  const sunsub = b("*3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n");
  assert.equal(pushKind(sunsub), PushKind.confirmation);
  assert.equal(shardUnsubscribed(sunsub), "s");
  assert.equal(shardUnsubscribed(b("*3\r\n$11\r\nunsubscribe\r\n$1\r\ns\r\n:0\r\n")), null);
  assert.equal(pushKind(b("-MOVED 1 127.0.0.1:7000\r\n")), PushKind.error);
  assert.equal(pushKind(b(":1\r\n")), PushKind.other);
  const bounds = [0, 0];
  assert.equal(bulkElement(b("*3\r\n$9\r\nsubscribe\r\n$-1\r\n:0\r\n"), 1, bounds), false);
  assert.equal(bulkElement(message, 2, bounds), true);
  assert.equal(s(message.subarray(bounds[0], bounds[1])), "hello");
});

Deno.test("a subscription connection's commands", () => {
  assert.equal(
    s(subscriptionCommand(SubKind.pattern, false, [b("a*")])),
    "*2\r\n$12\r\nPUNSUBSCRIBE\r\n$2\r\na*\r\n",
  );
  assert.equal(
    s(subscriptionCommand(SubKind.shard, true, [b("x"), b("y")])),
    "*3\r\n$10\r\nSSUBSCRIBE\r\n$1\r\nx\r\n$1\r\ny\r\n",
  );
});

Deno.test("keyspace notifications are subscribed where Redis publishes them", () => {
  assert.equal(notificationPlacement(SubKind.pattern, "__keyevent@0__:*"), "every");
  assert.equal(notificationPlacement(SubKind.pattern, "__key*"), "every");
  assert.equal(notificationPlacement(SubKind.channel, "__keyevent@0__:expired"), "every");
  assert.equal(
    s(notificationPlacement(SubKind.channel, "__keyspace@0__:user:1") as Uint8Array),
    "user:1",
  );
  assert.equal(
    s(notificationPlacement(SubKind.channel, "__keyspace@12__:a__:b") as Uint8Array),
    "a__:b",
  );
  assert.equal(notificationPlacement(SubKind.channel, "__keyspace@0"), null);
  assert.equal(notificationPlacement(SubKind.channel, "news"), null);
  assert.equal(notificationPlacement(SubKind.pattern, "n*"), null);
  assert.equal(notificationPlacement(SubKind.shard, "__keyevent@0__:expired"), null);
});
