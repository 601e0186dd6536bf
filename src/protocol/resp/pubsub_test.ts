import assert from "node:assert/strict";
import {
  bulkElement,
  ClientSubscriptions,
  confirmation,
  keyBytes,
  messageRunLength,
  messageSubscription,
  nameKey,
  notificationPlacement,
  PushKind,
  pushKind,
  shardUnsubscribed,
  SubKind,
  subscribedError,
  subscribedPong,
  subscriptionCommand,
} from "./pubsub.ts";
import { RespReplyFramer } from "./reply_framer.ts";
import { encodeError } from "./encoder.ts";

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
    s(encodeError(subscribedError("pubsub", [b("PUBSUB"), b("NUMPAT")]))),
    "-ERR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / " +
      "RESET are allowed in this context\r\n",
  );
  assert.match(s(encodeError(subscribedError("get", [b("GET"), b("k")]))), /'get'/);
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

Deno.test("a run of messages is framed as the reply framer and pushKind frame it", () => {
  const frames = [
    "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
    ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$0\r\n\r\n",
    "*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$12\r\n\r\n\r\n\r\n$7\r\n\r\n\r\n",
    ">4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$1\r\nx\r\n",
    "*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$10\r\n0123456789\r\n",
    "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
    "+PONG\r\n",
    "-MOVED 1 127.0.0.1:7000\r\n",
    "*3\r\n$8\r\nxmessage\r\n$1\r\ns\r\n$1\r\nx\r\n",
  ].map(b);
  // Shapes redis-server never sends as messages stay out of a run (the frame-by-frame
  // path takes them).
  for (
    const odd of [
      "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$-1\r\n",
      "*4\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nx\r\n$1\r\ny\r\n",
    ]
  ) {
    assert.equal(messageRunLength(b(odd), 0, odd.length), 0);
  }
  /** The reference: leading complete frames that pushKind calls messages. */
  const expected = (buf: Uint8Array): number => {
    const framer = new RespReplyFramer(); // it resumes a partial frame: a new one per buffer
    let at = 0;
    for (;;) {
      const size = framer.frame(buf, at, buf.length);
      if (size < 0 || pushKind(buf.subarray(at, at + size)) !== PushKind.message) return at;
      at += size;
    }
  };
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let trial = 0; trial < 300; trial++) {
    const parts = Array.from({ length: 1 + random(6) }, () => frames[random(frames.length)]);
    const buf = new Uint8Array(parts.reduce((size, part) => size + part.length, 0));
    parts.reduce((at, part) => (buf.set(part, at), at + part.length), 0);
    // Every cut: a run ends at the last complete message before it.
    for (let end = 0; end <= buf.length; end++) {
      const view = buf.subarray(0, end);
      assert.equal(messageRunLength(view, 0, end), expected(view), s(view));
    }
    // From an offset into a larger buffer.
    const padded = new Uint8Array(buf.length + 5);
    padded.set(buf, 3);
    assert.equal(messageRunLength(padded, 3, 3 + buf.length), expected(buf));
    // At most maxLength bytes, ending where a frame ends.
    const max = random(buf.length + 1);
    const run = messageRunLength(buf, 0, buf.length, max);
    assert.equal(run, expected(buf.subarray(0, max)));
  }
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
