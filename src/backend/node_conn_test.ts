/**
 * NodeConn on in-memory sockets: replies complete requests in order, and every request gets
 * exactly one reply or one error, whatever the socket does (errors, timeouts, reconnects).
 */
import assert from "node:assert/strict";
import { NodeConn, type NodeConnOptions, type ReplyFramer } from "./node_conn.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import { sockets, useSockets } from "../io/sockets.ts";
import { FakeConn, FakeSockets, settle } from "../../tests/helpers/fake_conn.ts";

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

/** Runs `body` with fake sockets installed, and puts the real ones back after. */
async function _withFakeSockets(body: (fake: FakeSockets) => Promise<void>): Promise<void> {
  const real = sockets();
  const fake = new FakeSockets();
  useSockets(fake);
  try {
    await body(fake);
  } finally {
    useSockets(real);
  }
}

Deno.test("NodeConn completes requests in order from one batched write", async () => {
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
  await _withFakeSockets(async (fake) => {
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
