import { ReplySlot } from "./reply_slot.ts";
import assert from "node:assert/strict";
import { Session } from "./session.ts";
import type { Routing } from "./routing.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import type { Plan, Protocol, ReplySink, RequestPlanner } from "../protocol/protocol.ts";
import { FakeConn, settle } from "../../tests/helpers/fake_conn.ts";
import { BufferLease } from "../io/buffer_pool.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** A request the fake routing received, and the sink its reply goes to. */
interface Sent {
  line: string;
  slot: ReplySink;
}

/** Routing to nowhere: records what it is asked to send; the test answers. */
class RecordingRouting implements Routing {
  readonly slots: Sent[] = [];

  groupOf(): number {
    return 0;
  }

  send(_group: number, bytes: Uint8Array, sink: ReplySink): void {
    this.slots.push({ line: latin1.decode(bytes).trimEnd(), slot: sink });
  }

  broadcastGroups(): number[] {
    return [0];
  }

  nodeOf(): number {
    return 0;
  }
}

/**
 * A line protocol for the tests: each "\n"-terminated line is a request; "bad" is malformed;
 * "quit" is answered locally and closes; "local" is answered locally; everything else is
 * forwarded.
 */
class LinePlanner implements RequestPlanner {
  next(buf: Uint8Array, start: number, end: number, plan: Plan): number {
    const nl = buf.subarray(start, end).indexOf(0x0a);
    if (nl < 0) return -1;
    const line = latin1.decode(buf.subarray(start, start + nl));
    if (line === "bad") throw new ProtocolError("bad line");
    if (line === "quit") plan.local(encoder.encode("bye\n"), true);
    else if (line === "local") plan.local(encoder.encode("here\n"));
    else plan.forward(0, buf.subarray(start, start + nl + 1), false);
    return nl + 1;
  }
}

const LINE_PROTOCOL: Protocol = {
  newPlanner: () => new LinePlanner(),
  newReplyFramer: () => ({ frame: () => -1 }),
  handshakeRefusal: () => null,
  ping: encoder.encode("ping\n"),
  isHealthy: () => true,
  errorReply: (message) => encoder.encode(`ERR ${message}\n`),
  protocolErrorReply: (message) => encoder.encode(`PROTO ${message}\n`),
};

function _start(
  options: { limits?: { softLimit: number; hardLimit: number }; readsNow?: boolean } = {},
): { conn: FakeConn; session: Session; handler: RecordingRouting; done: Promise<void> } {
  const conn = new FakeConn({ readsNow: options.readsNow });
  const handler = new RecordingRouting();
  const session = new Session(1, conn, {
    ...options,
    protocol: LINE_PROTOCOL,
    upstream: { routing: handler, pins: null, subscriptions: null },
  });
  const done = session.run();
  return { conn, session, handler, done };
}

function _reply(slot: ReplySink, text: string): void {
  slot.onReply(encoder.encode(text));
}

Deno.test("Session sends replies in request order whatever order they arrive in", async () => {
  const { conn, handler, done } = _start();
  conn.push("a\nb\nc\n");
  await settle();
  assert.deepEqual(handler.slots.map((s) => s.line), ["a", "b", "c"]);
  _reply(handler.slots[2].slot, "C\n");
  _reply(handler.slots[1].slot, "B\n");
  await settle();
  assert.equal(conn.text(), "", "nothing leaves before the first reply");
  _reply(handler.slots[0].slot, "A\n");
  await settle();
  assert.equal(conn.text(), "A\nB\nC\n");
  conn.end();
  await done;
  await settle();
  assert.ok(conn.closed);
});

Deno.test("Session gives each request exactly one reply: a second fill of a slot is dropped", async () => {
  const { conn, handler, done } = _start();
  conn.push("a\nb\n");
  await settle();
  const [a, b] = handler.slots.map((s) => s.slot);
  a.onError("backend down");
  _reply(b, "B\n");
  _reply(b, "B again\n");
  await settle();
  assert.equal(conn.text(), "ERR backend down\nB\n");
  conn.end();
  await done;
});

Deno.test("Session keeps a request split across reads and frames it once whole", async () => {
  const { conn, handler, done } = _start();
  conn.push("hel");
  await settle();
  assert.equal(handler.slots.length, 0);
  conn.push("lo\nx");
  await settle();
  assert.deepEqual(handler.slots.map((s) => s.line), ["hello"]);
  _reply(handler.slots[0].slot, "ok\n");
  conn.end();
  await done;
  await settle();
  assert.equal(conn.text(), "ok\n");
});

Deno.test("Session answers a malformed request after the replies owed, then closes", async () => {
  const { conn, handler, done } = _start();
  conn.push("a\nbad\nb\n");
  await done;
  assert.equal(handler.slots.length, 1, "nothing after the malformed request is read");
  _reply(handler.slots[0].slot, "A\n");
  await settle();
  assert.equal(conn.text(), "A\nPROTO bad line\n");
  assert.ok(conn.closed);
});

Deno.test("Session closes after QUIT's reply, once the replies ahead of it are out", async () => {
  const { conn, handler, done } = _start();
  conn.push("a\nquit\nb\n");
  await done;
  assert.deepEqual(handler.slots.map((s) => s.line), ["a"]);
  assert.equal(conn.closed, false, "a reply is still owed");
  _reply(handler.slots[0].slot, "A\n");
  await settle();
  assert.equal(conn.text(), "A\nbye\n");
  assert.ok(conn.closed);
});

Deno.test("Session drops late replies once closed while requests are in flight", async () => {
  const { conn, session, handler, done } = _start();
  conn.push("a\nb\n");
  await settle();
  session.close();
  await done;
  assert.ok(conn.closed);
  _reply(handler.slots[1].slot, "B\n");
  handler.slots[0].slot.onError("late");
  await settle();
  assert.equal(conn.text(), "");
});

Deno.test("Session closes a client that owes more than the hard limit", async () => {
  const { conn, session, handler, done } = _start({ limits: { softLimit: 8, hardLimit: 32 } });
  conn.stallWrites = true;
  conn.push("a\nb\nc\n");
  await settle();
  // The first reply is handed to the (stalled) socket; the next ones are owed.
  _reply(handler.slots[0].slot, "x".repeat(20));
  await settle();
  _reply(handler.slots[1].slot, "y".repeat(20));
  await settle();
  assert.equal(session.closed, false, "20 bytes owed: under the hard limit");
  _reply(handler.slots[2].slot, "z".repeat(20));
  await settle();
  assert.ok(session.closed, "40 bytes owed: over the hard limit");
  assert.equal(session.metrics.errors.get("output_limit"), 1);
  await done;
});

Deno.test("Session stops reading over the soft limit and reads on once the client caught up", async () => {
  const { conn, handler, done } = _start({ limits: { softLimit: 8, hardLimit: 1024 } });
  conn.stallWrites = true;
  conn.push("a\nb\n");
  await settle();
  // The first reply is handed to the (stalled) socket; the second is owed.
  _reply(handler.slots[0].slot, "x".repeat(16));
  await settle();
  _reply(handler.slots[1].slot, "y".repeat(16));
  await settle();
  // The read already waiting takes "c"; the next one waits for the client to catch up.
  conn.push("c\n");
  await settle();
  conn.push("d\n");
  await settle();
  assert.equal(handler.slots.length, 3, "paused: 16 bytes owed, soft limit 8");
  conn.releaseWrites();
  await settle();
  assert.equal(handler.slots.length, 4, "caught up: reading again");
  _reply(handler.slots[2].slot, "C\n");
  _reply(handler.slots[3].slot, "D\n");
  conn.end();
  await done;
  await settle();
  assert.equal(conn.text(), `${"x".repeat(16)}${"y".repeat(16)}C\nD\n`);
});

Deno.test("Session.deliver writes a pushed message at a reply boundary, after the replies owed", async () => {
  const { conn, session, handler, done } = _start({ limits: { softLimit: 64, hardLimit: 128 } });
  // Nothing owed: at once.
  session.deliver(encoder.encode("m1\n"), true);
  await settle();
  assert.equal(conn.text(), "m1\n");
  // A reply is owed: the message waits for it, then follows it.
  conn.push("a\n");
  await settle();
  session.deliver(encoder.encode("m2\n"), true);
  await settle();
  assert.equal(conn.text(), "m1\n");
  _reply(handler.slots[0].slot, "A\n");
  await settle();
  assert.equal(conn.text(), "m1\nA\nm2\n");
  // Messages count toward the hard limit: a client that stops reading is closed.
  conn.stallWrites = true;
  for (let i = 0; i < 20 && !session.closed; i++) {
    session.deliver(encoder.encode("a message of some length\n"), true);
    await settle();
  }
  assert.ok(session.closed);
  conn.releaseWrites();
  await done;
});

Deno.test("Session.deliver writes an out-of-band push ahead of a blocked request's reply only", async () => {
  const { conn, session, handler, done } = _start();
  conn.push("blpop\nping\n");
  await settle();
  const blocked = handler.slots[0].slot;
  assert.ok(blocked instanceof ReplySlot);
  blocked.waitAllowedMs = Infinity; // what the plan runner sets for a BLPOP
  // Behind it a request answered already (a PING Aster answers): Redis would run it only
  // after the blocked one, so it does not hold a push back.
  _reply(handler.slots[1].slot, "P\n");
  // The first reply owed is blocked: a push goes out at once, a RESP2 message waits for it.
  session.deliver(encoder.encode("p1\n"), true, true);
  await settle();
  assert.equal(conn.text(), "p1\n");
  session.deliver(encoder.encode("m\n"), true);
  // Behind a waiting message a push keeps its place: messages stay in order.
  session.deliver(encoder.encode("p2\n"), true, true);
  await settle();
  assert.equal(conn.text(), "p1\n");
  _reply(blocked, "B\n");
  await settle();
  assert.equal(conn.text(), "p1\nB\nP\nm\np2\n");
  // A reply owed that is not blocked: a push waits for it, as any message.
  conn.push("get\n");
  await settle();
  session.deliver(encoder.encode("p3\n"), true, true);
  await settle();
  assert.equal(conn.text(), "p1\nB\nP\nm\np2\n");
  _reply(handler.slots[2].slot, "G\n");
  await settle();
  assert.equal(conn.text(), "p1\nB\nP\nm\np2\nG\np3\n");
  // Once the queued messages are out, a push goes ahead of a blocked reply again.
  conn.push("blpop\n");
  await settle();
  const blockedAgain = handler.slots[3].slot;
  assert.ok(blockedAgain instanceof ReplySlot);
  blockedAgain.waitAllowedMs = Infinity;
  session.deliver(encoder.encode("p4\n"), true, true);
  await settle();
  assert.equal(conn.text(), "p1\nB\nP\nm\np2\nG\np3\np4\n");
  _reply(blockedAgain, "B2\n");
  conn.end();
  await done;
});

Deno.test("Session.deliver while the in-flight budget is nearly used leaves the next request unheld", async () => {
  const { conn, session, handler, done } = _start();
  // 16 requests: as many as the first burst may have in flight (see IN_FLIGHT_BYTES).
  conn.push(Array.from({ length: 16 }, (_, i) => `r${i}\n`).join(""));
  await settle();
  assert.equal(handler.slots.length, 16);
  // A message owed behind them is answered already: it is not a request in flight.
  session.deliver(encoder.encode("m\n"), false);
  for (const sent of handler.slots) _reply(sent.slot, "R\n");
  await settle();
  assert.equal(conn.text(), "R\n".repeat(16) + "m\n");
  conn.push("next\n");
  await settle();
  assert.deepEqual(handler.slots.slice(16).map((s) => s.line), ["next"]);
  _reply(handler.slots[16].slot, "N\n");
  await settle();
  assert.equal(conn.text(), "R\n".repeat(16) + "m\nN\n");
  conn.end();
  await done;
});

Deno.test("Session plans the requests after a local reply that alone went over the in-flight budget", async () => {
  const { conn, handler, done } = _start();
  conn.push("big\n");
  await settle();
  // A reply of 9 MB: the client's replies are now expected to be over 1 MB each.
  handler.slots[0].slot.onReply(new Uint8Array(9 * 2 ** 20));
  await settle();
  conn.push("local\nget k\n");
  await settle();
  assert.deepEqual(handler.slots.map((s) => s.line), ["big", "get k"]);
  _reply(handler.slots[1].slot, "V\n");
  await settle();
  assert.ok(conn.text().endsWith("here\nV\n"));
  conn.end();
  await done;
});

Deno.test("Session on a socket that reads without a promise holds no read buffer while idle", async () => {
  const { conn, session, handler, done } = _start({ readsNow: true });
  await settle();
  assert.equal(session.readBufferBytes, 0, "a client that sent nothing holds no buffer");
  conn.push("a\nb");
  await settle();
  assert.deepEqual(handler.slots.map((s) => s.line), ["a"]);
  assert.ok(session.readBufferBytes > 0, "a partial request stays buffered");
  conn.push("\n");
  await settle();
  assert.ok(session.readBufferBytes > 0, "replies owed: the buffer stays");
  _reply(handler.slots[0].slot, "A\n");
  await settle();
  assert.ok(session.readBufferBytes > 0, "one reply still owed");
  _reply(handler.slots[1].slot, "B\n");
  await settle();
  assert.equal(session.readBufferBytes, 0, "idle again: the buffer is given up");
  assert.equal(conn.text(), "A\nB\n");
  conn.push("c\n");
  await settle();
  assert.deepEqual(handler.slots.map((s) => s.line), ["a", "b", "c"]);
  _reply(handler.slots[2].slot, "C\n");
  conn.end();
  await done;
  await settle();
  assert.equal(conn.text(), "A\nB\nC\n");
});

Deno.test("Session on a promise read holds its buffer while the read waits", async () => {
  const { conn, session, done } = _start();
  await settle();
  assert.ok(session.readBufferBytes > 0, "the pending read needs somewhere to go");
  conn.end();
  await done;
});

/** Shows `slot` the first `end` bytes of `reply` as a large reply under way. */
function _partial(slot: ReplySink, reply: string, end: number): void {
  slot.onPartial!(encoder.encode(reply), 0, end, new BufferLease());
}

Deno.test("Session writes a large reply on while it arrives, and the replies behind it after", async () => {
  const { conn, handler, done } = _start();
  conn.push("a\nb\nc\n");
  await settle();
  const [a, b, c] = handler.slots.map((s) => s.slot);
  const reply = "AAAAAAAAAA\n";
  // b is not next in line: shown its reply so far, it writes nothing yet.
  _partial(b, "BBBBBBB\n", 3);
  _partial(a, reply, 4);
  _reply(c, "C\n");
  await settle();
  assert.equal(conn.text(), "AAAA", "a's start is out before the rest of it arrived");
  _partial(a, reply, 7);
  await settle();
  assert.equal(conn.text(), "AAAAAAA");
  _reply(a, reply);
  await settle();
  assert.equal(conn.text(), reply, "then the rest of a, once");
  _reply(b, "BBBBBBB\n");
  await settle();
  assert.equal(conn.text(), `${reply}BBBBBBB\nC\n`);
  conn.end();
  await done;
});

Deno.test("Session closes a client whose reply was cut after its start went out", async () => {
  const { conn, handler, done } = _start();
  conn.push("a\nb\n");
  await settle();
  const [a, b] = handler.slots.map((s) => s.slot);
  _partial(a, "AAAAAAAAAA\n", 4);
  _reply(b, "B\n");
  await settle();
  a.onError("backend n1: connection closed by backend");
  await done;
  await settle();
  assert.equal(conn.text(), "AAAA", "no error reply inside a reply, nor b's after it");
  assert.ok(conn.closed);
});
