/**
 * NodeConn on in-memory sockets: replies complete requests in order, and every request gets
 * exactly one reply or one error, whatever the socket does (errors, timeouts, reconnects).
 */
import assert from "node:assert/strict";
import { NodeConn, type NodeConnOptions, type ReplyFramer } from "./node_conn.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import { FakeConn, settle, withFakeSockets } from "../../tests/helpers/fake_conn.ts";
import { messageRunLength } from "../protocol/resp/pubsub.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { BufferLease } from "../io/buffer_pool.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { respHandshakeRefusal } from "../protocol/resp/resp_protocol.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** Replies are "\n"-terminated lines. */
class LineFramer implements ReplyFramer {
  frame(buf: Uint8Array, start: number, end: number): number {
    const nl = buf.subarray(start, end).indexOf(0x0a);
    return nl < 0 ? -1 : nl + 1;
  }
}

/** Records what each request got: its reply text, or "error: ...". */
class Outcomes {
  readonly got: string[][] = [];

  sink(): ReplySink {
    const mine: string[] = [];
    this.got.push(mine);
    return {
      onReply: (reply) => mine.push(latin1.decode(reply)),
      onError: (message) => mine.push(`error: ${message}`),
    };
  }
}

function _options(overrides: Partial<NodeConnOptions> = {}): NodeConnOptions {
  return {
    name: "n1",
    host: "127.0.0.1",
    port: 1,
    dialTimeout: 1000,
    readTimeout: 1000,
    writeTimeout: 1000,
    newFramer: () => new LineFramer(),
    ...overrides,
  };
}

Deno.test("NodeConn completes requests in order from one batched write", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options());
    node.connect();
    await settle();
    const outcomes = new Outcomes();
    for (const line of ["a\n", "b\n", "c\n"]) node.send(encoder.encode(line), outcomes.sink());
    await settle();
    const backend = fake.opened[0];
    assert.equal(backend.text(), "a\nb\nc\n");
    assert.equal(backend.writes.length, 1, "one write for the turn's requests");
    backend.push("A\nB");
    await settle();
    backend.push("\nC\n");
    await settle();
    assert.deepEqual(outcomes.got, [["A\n"], ["B\n"], ["C\n"]]);
    assert.equal(node.pendingCount, 0);
    node.close();
  });
});

Deno.test("NodeConn fails every waiting request once when the socket fails, then reconnects", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options());
    node.connect();
    await settle();
    const outcomes = new Outcomes();
    node.send(encoder.encode("a\n"), outcomes.sink());
    node.send(encoder.encode("b\n"), outcomes.sink());
    await settle();
    fake.opened[0].push("A\n");
    await settle();
    fake.opened[0].fail("Connection reset by peer (os error 104)");
    await settle();
    assert.deepEqual(outcomes.got[0], ["A\n"]);
    assert.equal(outcomes.got[1].length, 1);
    assert.match(outcomes.got[1][0], /^error: backend n1: Connection reset by peer/);
    assert.equal(node.state, "down");
    // While down, a request fails at once.
    node.send(encoder.encode("c\n"), outcomes.sink());
    assert.match(outcomes.got[2][0], /^error: backend n1 is unavailable/);
    // The reconnect comes after the first backoff (50 ms).
    await new Promise((resolve) => setTimeout(resolve, 80));
    await settle();
    assert.equal(node.state, "up");
    assert.equal(fake.opened.length, 2);
    node.send(encoder.encode("d\n"), outcomes.sink());
    await settle();
    fake.opened[1].push("D\n");
    await settle();
    assert.deepEqual(outcomes.got[3], ["D\n"]);
    assert.deepEqual(outcomes.got.map((got) => got.length), [1, 1, 1, 1]);
    node.close();
  });
});

Deno.test("NodeConn fails the requests in flight past read_timeout, once each", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options({ readTimeout: 100 }));
    node.connect();
    await settle();
    const outcomes = new Outcomes();
    node.send(encoder.encode("a\n"), outcomes.sink());
    node.send(encoder.encode("b\n"), outcomes.sink());
    await settle();
    node.checkTimeouts(performance.now() + 50);
    assert.deepEqual(outcomes.got, [[], []], "not late yet");
    node.checkTimeouts(performance.now() + 500);
    assert.match(outcomes.got[0][0], /timed out after read_timeout 100 ms/);
    assert.match(outcomes.got[1][0], /timed out after read_timeout 100 ms/);
    assert.ok(fake.opened[0].closed, "the late socket is dropped");
    // A reply on the dropped socket completes nothing twice.
    fake.opened[0].push("A\n");
    await settle();
    assert.deepEqual(outcomes.got.map((got) => got.length), [1, 1]);
    node.close();
  });
});

Deno.test("NodeConn fails a dial past dial_timeout and a refused connect", async () => {
  await withFakeSockets(async (fake) => {
    fake.script.push(new Error("Connection refused (os error 111)"));
    const node = new NodeConn(_options());
    node.connect();
    await settle();
    assert.equal(node.state, "down");
    const outcomes = new Outcomes();
    node.send(encoder.encode("a\n"), outcomes.sink());
    assert.match(outcomes.got[0][0], /unavailable: connect failed: Connection refused/);
    node.close();
  });
});

Deno.test("NodeConn.close() fails what is in flight once and never reconnects", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options());
    node.connect();
    await settle();
    const outcomes = new Outcomes();
    node.send(encoder.encode("a\n"), outcomes.sink());
    await settle();
    node.close();
    node.close();
    assert.deepEqual(outcomes.got, [["error: backend n1: connection closed by proxy"]]);
    assert.equal(node.state, "closed");
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(fake.opened.length, 1);
  });
});

Deno.test("NodeConn drops the socket when a reply comes without a request", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options());
    node.connect();
    await settle();
    fake.opened[0].push("stray\n");
    await settle();
    assert.equal(node.state, "down");
    assert.ok(fake.opened[0].closed);
    node.close();
  });
});

Deno.test("NodeConn sends the handshake first and drops a node that refuses it", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options({
      handshake: [encoder.encode("AUTH x\n")],
      handshakeRefusal: (reply) => reply[0] === 0x2d ? latin1.decode(reply.subarray(1, -2)) : null,
    }));
    node.connect();
    await settle();
    const outcomes = new Outcomes();
    node.send(encoder.encode("a\n"), outcomes.sink());
    await settle();
    const backend: FakeConn = fake.opened[0];
    assert.equal(backend.text(), "AUTH x\na\n");
    backend.push("-WRONGPASS invalid\r\n");
    await settle();
    assert.equal(node.state, "down");
    assert.match(outcomes.got[0][0], /handshake refused by n1: WRONGPASS invalid/);
    node.close();
  });
});

Deno.test("NodeConn in push mode: the handshake's reply first, then every frame to the handler", async () => {
  await withFakeSockets(async (fake) => {
    const refusals: string[] = [];
    const node = new NodeConn(
      _options({
        handshake: [encoder.encode("auth\n")],
        handshakeRefusal: (reply) => {
          refusals.push(latin1.decode(reply));
          return null;
        },
      }),
    );
    const frames: string[] = [];
    const downs: string[] = [];
    node.setPushHandler({
      onFrame: (frame) => frames.push(latin1.decode(frame)),
      onDown: (reason) => downs.push(reason),
    });
    node.connect();
    assert.equal(node.sendPush(encoder.encode("sub a\n")), true);
    await settle();
    const backend = fake.opened[0];
    assert.equal(backend.text(), "auth\nsub a\n");
    backend.push("OK\nsubscribed a\nmessage 1\nmess");
    await settle();
    backend.push("age 2\n");
    await settle();
    assert.deepEqual(refusals, ["OK\n"]);
    assert.deepEqual(frames, ["subscribed a\n", "message 1\n", "message 2\n"]);
    assert.equal(node.pendingCount, 0);
    // The socket's loss is reported once; the handler is then let go.
    backend.fail("reset");
    await settle();
    assert.equal(downs.length, 1);
    assert.match(downs[0], /reset/);
    assert.equal(node.sendPush(encoder.encode("sub b\n")), false);
    node.close();
    assert.equal(downs.length, 1);
  });
});

Deno.test("NodeConn in push mode: runs the handler takes whole, never past a frame the framer began", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options({ newFramer: () => new RespReplyFramer() }));
    const got: string[] = [];
    const message = (payload: string) =>
      `*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$${payload.length}\r\n${payload}\r\n`;
    node.setPushHandler({
      onFrame: (frame) => got.push(`frame ${latin1.decode(frame)}`),
      onDown: () => {},
      takeRun: (data, start, end) => {
        const length = messageRunLength(data, start, end);
        if (length > 0) got.push(`run ${latin1.decode(data.subarray(start, start + length))}`);
        return length;
      },
    });
    node.connect();
    await settle();
    const backend = fake.opened[0];
    const confirmation = "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    backend.push(confirmation + message("a") + message("b"));
    await settle();
    // A message cut short: the framer begins it, so it ends in onFrame, not in a run.
    const cut = message("c");
    backend.push(cut.slice(0, 20));
    await settle();
    backend.push(cut.slice(20) + message("d") + "+PONG\r\n");
    await settle();
    assert.deepEqual(got, [
      `frame ${confirmation}`,
      `run ${message("a")}${message("b")}`,
      `frame ${cut}`,
      `run ${message("d")}`,
      "frame +PONG\r\n",
    ]);
    node.close();
  });
});

Deno.test("NodeConn over RESP3: an attribute and its reply complete one request, in any chunks", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(
      _options({
        newFramer: () => new RespReplyFramer(),
        handshake: [encoder.encode("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")],
        handshakeRefusal: respHandshakeRefusal,
      }),
    );
    node.connect();
    await settle();
    const outcomes = new Outcomes();
    for (let i = 0; i < 3; i++) node.send(encoder.encode(`*1\r\n$4\r\nPING\r\n`), outcomes.sink());
    await settle();
    const backend = fake.opened[0];
    // What redis-server 7 sends: the HELLO map, DEBUG PROTOCOL attrib, a map, a double.
    const replies = [
      "%1\r\n$5\r\nproto\r\n:3\r\n",
      "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\n" +
      "Some real reply following the attribute\r\n",
      "%1\r\n$1\r\nf\r\n~1\r\n_\r\n",
      ",3.5\r\n",
    ];
    const bytes = replies.join("");
    for (let at = 0; at < bytes.length; at += 7) backend.push(bytes.slice(at, at + 7));
    await settle();
    assert.deepEqual(outcomes.got, replies.slice(1).map((reply) => [reply]));
    assert.equal(node.state, "up", "the connection stays usable");
    node.close();
  });
});

Deno.test("NodeConn shows a large reply to its sink while it arrives; what the sink took stays put", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options({ newFramer: () => new RespReplyFramer() }));
    node.connect();
    await settle();
    const value = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const reply = concatBytes([
      encoder.encode(`$${value.length}\r\n`),
      value,
      encoder.encode("\r\n"),
    ]);
    /** Each partial's first byte and size; a view of the first one, held under its lease. */
    const partials: { size: number; first: number }[] = [];
    let firstView: Uint8Array | null = null;
    let firstLease: BufferLease | null = null;
    let done: { reply: Uint8Array; owned: boolean; lease: BufferLease | undefined } | null = null;
    const after = new Outcomes();
    node.send(encoder.encode("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), {
      onReply: (got, owned = false, lease) => done = { reply: got, owned, lease },
      onError: (message) => assert.fail(message),
      onPartial: (data, start, end, lease) => {
        partials.push({ size: end - start, first: data[start] });
        if (firstView === null) {
          firstView = data.subarray(start, end);
          firstLease = lease;
          lease.hold();
        }
      },
    });
    node.send(encoder.encode("*1\r\n$4\r\nPING\r\n"), after.sink());
    await settle();
    const backend = fake.opened[0];
    // Small chunks first (the buffer then grows to the announced size), then large ones.
    const chunks = [4096, 60_000, 1_000_000, 1_000_000, 1_000_000];
    let at = 0;
    for (const size of chunks) {
      backend.push(reply.subarray(at, at + size));
      at += size;
      await settle();
    }
    assert.equal(done, null, "not complete yet");
    backend.push(concatBytes([reply.subarray(at), encoder.encode("+PONG\r\n")]));
    await settle();
    assert.ok(partials.length >= 2, `shown while it arrived: ${JSON.stringify(partials)}`);
    assert.ok(partials.every((p, i) => i === 0 || p.size > partials[i - 1].size), "growing");
    assert.ok(partials.every((p) => p.first === 0x24));
    const complete = done as unknown as { reply: Uint8Array; owned: boolean };
    assert.equal(complete.owned, true);
    assert.deepEqual(complete.reply, reply);
    assert.deepEqual(after.got, [["+PONG\r\n"]]);
    // The view taken from the first partial still holds its bytes: its buffer was left to
    // the lease when the connection grew or detached it, not reused.
    const view = firstView as unknown as Uint8Array;
    assert.deepEqual(view, reply.subarray(0, view.length));
    (firstLease as unknown as BufferLease).drop();
    node.close();
  });
});

Deno.test("NodeConn shows small replies to no one before they are complete", async () => {
  await withFakeSockets(async (fake) => {
    const node = new NodeConn(_options({ newFramer: () => new RespReplyFramer() }));
    node.connect();
    await settle();
    let partials = 0;
    let got = "";
    node.send(encoder.encode("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), {
      onReply: (reply) => got = latin1.decode(reply),
      onError: (message) => assert.fail(message),
      onPartial: () => partials++,
    });
    await settle();
    const reply = `$200000\r\n${"v".repeat(200_000)}\r\n`;
    for (let at = 0; at < reply.length; at += 50_000) {
      fake.opened[0].push(reply.slice(at, at + 50_000));
      await settle();
    }
    assert.equal(got, reply);
    assert.equal(partials, 0, "under STREAM_FROM: the reply goes whole");
    node.close();
  });
});
