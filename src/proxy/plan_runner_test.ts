/**
 * Pinned plans on in-memory sockets: a client pinned to a dedicated backend connection
 * (what WATCH and BLPOP use), its release, the per-node cap, and a client that vanishes
 * while pinned; and a forward plan with a prelude (a transaction without WATCH at EXEC).
 */
import assert from "node:assert/strict";
import { BLOCKED_AT_EOF_MS, Session } from "./session.ts";
import type { Routing } from "./routing.ts";
import { NodePool } from "../backend/node_pool.ts";
import { PinnedPool } from "../backend/pinned_pool.ts";
import type { Plan, Protocol, ReplySink, RequestPlanner } from "../protocol/protocol.ts";
import { sockets, useSockets } from "../io/sockets.ts";
import { FakeConn, FakeSockets, settle } from "../../tests/helpers/fake_conn.ts";
import { coarseClock } from "../io/coarse_clock.ts";
import { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { BLOCKING_TIMEOUT_MARGIN_MS } from "./plan_runner.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/**
 * Lines: "pin ..." is sent pinned, "release ..." pinned then released, "tx a b" as a
 * transaction on the shared connection (multi, a, b, exec: only exec's reply answered), others shared;
 * "lane1" (answered "OK") moves the client to the pool's lane 1, as HELLO 3 does; "quit" is
 * answered "OK" and closes the client after it; "silent ..." is forwarded, its reply unwritten.
 */
class PinPlanner implements RequestPlanner {
  next(buf: Uint8Array, start: number, end: number, plan: Plan): number {
    const nl = buf.subarray(start, end).indexOf(0x0a);
    if (nl < 0) return -1;
    const bytes = buf.subarray(start, start + nl + 1);
    const line = latin1.decode(bytes);
    const block = line.match(/^t?block (\d+|forever) /);
    if (line === "quit\n") plan.local(encoder.encode("OK\n"), true);
    else if (line === "lane1\n") {
      plan.lane = 1;
      plan.local(encoder.encode("OK\n"));
    } else if (block !== null) {
      // A blocking request with its own timeout (ms), released after its reply ("tblock":
      // kept, as on a watching client's connection).
      plan.pin(0, bytes, !line.startsWith("t"));
      plan.blockMs = block[1] === "forever" ? Infinity : Number(block[1]);
    } else if (line.startsWith("tx ")) {
      // A transaction sent at EXEC on the shared connection: "multi", each word, "exec".
      plan.forward(0, encoder.encode("exec\n"), false);
      plan.prelude = ["multi", ...line.slice(3, -1).split(" ")].map((w) =>
        encoder.encode(`${w}\n`)
      );
    } else if (line.startsWith("pin ")) plan.pin(0, bytes, false);
    else if (line.startsWith("release ")) plan.pin(0, bytes, true);
    else if (line.startsWith("silent ")) {
      // Its reply is not written (as under CLIENT REPLY OFF).
      plan.forward(0, bytes, false);
      plan.silent = true;
    } else plan.forward(0, bytes, false);
    return nl + 1;
  }
}

const PIN_PROTOCOL: Protocol = {
  newPlanner: () => new PinPlanner(),
  newReplyFramer: () => ({
    frame: (buf, start, end) => {
      const nl = buf.subarray(start, end).indexOf(0x0a);
      return nl < 0 ? -1 : nl + 1;
    },
  }),
  handshakeRefusal: () => null,
  ping: encoder.encode("ping\n"),
  isHealthy: () => true,
  errorReply: (message) => encoder.encode(`ERR ${message}\n`),
  protocolErrorReply: (message) => encoder.encode(`PROTO ${message}\n`),
};

/** One node; shared requests go on the pool's connection for the client. */
class OneNode implements Routing {
  readonly #pool: NodePool;

  constructor(pool: NodePool) {
    this.#pool = pool;
  }

  groupOf(): number {
    return 0;
  }

  send(
    _group: number,
    bytes: Uint8Array,
    sink: ReplySink,
    sessionId: number,
    _readonly: boolean,
    _kind = 0,
    lane = 0,
  ): void {
    this.#pool.connFor(0, sessionId, lane).send(bytes, sink);
  }

  broadcastGroups(): number[] {
    return [0];
  }

  nodeOf(group: number): number {
    return group;
  }
}

interface Fixture {
  fake: FakeSockets;
  pool: NodePool;
  pins: PinnedPool;
  /** The shared backend connection (the pool's one). */
  shared: FakeConn;
  client(id: number): { conn: FakeConn; session: Session; done: Promise<void> };
  /** The clients' gauges (blocked clients). */
  metrics: ClusterMetrics;
}

/** Runs `body` over one node on fake sockets, with `cap` pinned connections at most. */
async function _withNode(cap: number, body: (fx: Fixture) => Promise<void>): Promise<void> {
  const real = sockets();
  const fake = new FakeSockets();
  useSockets(fake);
  const pool = new NodePool([{ name: "n1", host: "127.0.0.1", port: 1 }], {
    connectionsPerNode: 1,
    dialTimeout: 1000,
    readTimeout: 100,
    writeTimeout: 1000,
    newFramer: PIN_PROTOCOL.newReplyFramer,
    laneHandshakes: [[encoder.encode("hello 3\n")]],
  });
  const pins = new PinnedPool(pool, { capPerNode: cap, leftClientTimeout: 150 });
  const upstream = { routing: new OneNode(pool), pins, subscriptions: null };
  const metrics = new ClusterMetrics("c");
  try {
    await settle();
    await body({
      fake,
      pool,
      pins,
      shared: fake.opened[0],
      metrics,
      client: (id) => {
        const conn = new FakeConn();
        const session = new Session(id, conn, { protocol: PIN_PROTOCOL, upstream, metrics });
        return { conn, session, done: session.run() };
      },
    });
  } finally {
    pins.close();
    pool.close();
    useSockets(real);
  }
}

Deno.test("a pinned client gets a dedicated connection, kept until it releases it", async () => {
  await _withNode(4, async ({ fake, pins, shared, client }) => {
    const a = client(1);
    a.conn.push("pin multi\nget k\n");
    await settle();
    assert.equal(pins.openCount(0), 1);
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "pin multi\n", "the pinned request skips the shared FIFO");
    assert.equal(shared.text(), "", "another connection: sent once the pinned reply is in");
    dedicated.push("QUEUED\n");
    await settle();
    assert.equal(shared.text(), "get k\n");
    shared.push("v\n");
    await settle();
    assert.equal(a.conn.text(), "QUEUED\nv\n");
    a.conn.push("pin incr\nrelease exec\n");
    await settle();
    assert.equal(dedicated.text(), "pin multi\npin incr\nrelease exec\n", "same connection");
    dedicated.push("QUEUED\nOK\n");
    await settle();
    assert.equal(a.conn.text(), "QUEUED\nv\nQUEUED\nOK\n");
    // Released: the next pinned client takes the same connection, none is opened.
    const b = client(2);
    b.conn.push("pin watch\n");
    await settle();
    assert.equal(fake.opened.length, 2);
    assert.equal(dedicated.text(), "pin multi\npin incr\nrelease exec\npin watch\n");
    dedicated.push("OK\n");
    await settle();
    assert.equal(b.conn.text(), "OK\n");
    a.conn.end();
    b.conn.end();
    await Promise.all([a.done, b.done]);
  });
});

Deno.test("a transaction's prelude and EXEC go on the shared connection as one run, replies dropped", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    const b = client(2);
    const c = client(3);
    // In one turn: two clients' transactions and another client's requests between them.
    a.conn.push("get a\ntx set1 incr1\nget a\n");
    b.conn.push("get b\ntx set2 incr2 get2\n");
    c.conn.push("get c\nget c\n");
    await settle();
    assert.equal(fake.opened.length, 1, "nothing pinned");
    const lines = shared.text().split("\n").slice(0, -1);
    const run = (words: string[]) => {
      const at = lines.indexOf(words[1]) - 1;
      assert.ok(at >= 0, `${words[1]} sent`);
      assert.deepEqual(lines.slice(at, at + words.length), words, lines.join(" "));
    };
    run(["multi", "set1", "incr1", "exec", "get a"]);
    run(["multi", "set2", "incr2", "get2", "exec"]);
    // Each line's reply is its own text in upper case ("exec" answers "EXEC").
    shared.push(lines.map((line) => `${line.toUpperCase()}\n`).join(""));
    await settle();
    assert.equal(a.conn.text(), "GET A\nEXEC\nGET A\n", "MULTI's and queued replies dropped");
    assert.equal(b.conn.text(), "GET B\nEXEC\n");
    assert.equal(c.conn.text(), "GET C\nGET C\n");
    for (const x of [a, b, c]) x.conn.end();
    await Promise.all([a.done, b.done, c.done]);
  });
});

Deno.test("a pinned plan past the node's cap gets an error reply, in order", async () => {
  await _withNode(1, async ({ fake, client }) => {
    const a = client(1);
    a.conn.push("pin subscribe\n");
    await settle();
    const b = client(2);
    b.conn.push("pin blpop\nget k\n");
    await settle();
    assert.equal(fake.opened.length, 2, "no second dedicated connection");
    fake.opened[0].push("v\n");
    await settle();
    assert.match(
      b.conn.text(),
      /^ERR too many dedicated connections.*blocking_connections.*\nv\n$/,
    );
    fake.opened[1].push("OK\n");
    await settle();
    assert.equal(a.conn.text(), "OK\n");
    a.conn.end();
    b.conn.end();
    await Promise.all([a.done, b.done]);
  });
});

Deno.test("a client that vanishes while pinned closes its dedicated connection", async () => {
  await _withNode(4, async ({ fake, pins, client }) => {
    const a = client(1);
    a.conn.push("pin blpop\n");
    await settle();
    const dedicated = fake.opened[1];
    a.session.close();
    await a.done;
    assert.ok(dedicated.closed, "closed, not returned with a BLPOP in flight");
    assert.equal(pins.openCount(0), 0);
    const b = client(2);
    b.conn.push("pin get\n");
    await settle();
    assert.equal(fake.opened.length, 3, "a fresh connection for the next client");
    b.conn.end();
    fake.opened[2].push("x\n");
    await b.done;
  });
});

Deno.test("a client that vanishes before its releasing request's reply closes the connection", async () => {
  await _withNode(4, async ({ fake, pins, client }) => {
    const a = client(1);
    a.conn.push("release blpop\n");
    await settle();
    const dedicated = fake.opened[1];
    a.session.close();
    await a.done;
    assert.ok(dedicated.closed, "a BLPOP in flight: closed, not returned");
    assert.equal(pins.openCount(0), 0);
  });
});

Deno.test("a request after a releasing one waits for its reply, as the client's next", async () => {
  await _withNode(4, async ({ fake, pins, shared, client }) => {
    const a = client(1);
    a.conn.push("release exec\npin watch\nget k\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "release exec\n");
    assert.equal(fake.opened.length, 2, "the WATCH is not planned before EXEC's reply");
    assert.equal(shared.text(), "");
    dedicated.push("OK\n");
    await settle();
    // EXEC's connection went back to the pool and the WATCH took it again.
    assert.equal(dedicated.text(), "release exec\npin watch\n");
    assert.equal(shared.text(), "", "the GET waits for the WATCH: another connection");
    dedicated.push("OK\n");
    await settle();
    assert.equal(shared.text(), "get k\n");
    shared.push("v\n");
    await settle();
    assert.equal(a.conn.text(), "OK\nOK\nv\n");
    assert.equal(pins.openCount(0), 1);
    a.conn.end();
    await a.done;
  });
});

Deno.test("a pinned request waits for the client's requests on the shared connection", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    a.conn.push("set k\npin watch\nget k\n");
    await settle();
    assert.equal(shared.text(), "set k\n");
    assert.equal(fake.opened.length, 1, "the WATCH is not sent before the SET is answered");
    shared.push("OK\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "pin watch\n");
    assert.equal(shared.text(), "set k\n", "the GET waits for the WATCH in turn");
    dedicated.push("OK\n");
    await settle();
    assert.equal(shared.text(), "set k\nget k\n");
    shared.push("v\n");
    await settle();
    assert.equal(a.conn.text(), "OK\nOK\nv\n");
    a.conn.end();
    await a.done;
  });
});

Deno.test("a client blocked in a blocking request sends nothing more until its reply", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    a.conn.push("block 500 blpop\nlpush k\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "block 500 blpop\n");
    assert.equal(shared.text(), "", "the LPUSH waits, as in redis-server");
    a.conn.push("get k\n");
    await settle();
    assert.equal(shared.text(), "");
    dedicated.push("popped\n");
    await settle();
    assert.equal(shared.text(), "lpush k\nget k\n");
    shared.push("1\nv\n");
    await settle();
    assert.equal(a.conn.text(), "popped\n1\nv\n");
    a.conn.end();
    await a.done;
  });
});

Deno.test("a blocked client that leaves has its connection half-closed, and leaves once the backend closes it", async () => {
  await _withNode(4, async ({ fake, pins, shared, client, metrics }) => {
    const a = client(1);
    a.conn.push("get j\nblock forever blpop\nget k\n");
    await settle();
    shared.push("w\n");
    await settle();
    a.conn.end();
    await settle();
    const dedicated = fake.opened[1];
    assert.ok(dedicated.writeClosed, "the backend is told, as it would be by the client");
    assert.ok(!a.conn.closed, "the backend decides: its reply, or its close");
    dedicated.end(); // redis-server frees a blocked client at its EOF: nothing popped
    await a.done;
    await settle();
    assert.ok(a.conn.closed);
    assert.ok(dedicated.closed);
    assert.equal(a.conn.text(), "w\n", "no reply for the BLPOP, no error either");
    assert.equal(shared.text(), "get j\n", "get k, behind the BLPOP, is not sent");
    assert.equal(pins.openCount(0), 0);
    assert.equal(metrics.clientStates.blocked, 0);
  });
});

Deno.test("a blocked client that leaves while its connection is being dialled has it half-closed once up", async () => {
  await _withNode(4, async ({ fake, client }) => {
    fake.holdConnects = true;
    const a = client(1);
    a.conn.push("block forever blpop\n");
    a.conn.end();
    await settle();
    const dedicated = fake.opened[1];
    assert.ok(!a.conn.closed && !dedicated.writeClosed, "still dialling");
    fake.releaseConnects();
    await settle();
    assert.equal(dedicated.text(), "block forever blpop\n");
    assert.ok(dedicated.writeClosed, "after the request, so the backend frees its client");
    dedicated.end();
    await a.done;
    await settle();
    assert.ok(a.conn.closed);
    assert.equal(a.conn.text(), "");
  });
});

Deno.test("a blocked client that leaves, on a socket that cannot half-close, is closed with its connection", async () => {
  await _withNode(4, async ({ fake, pins, shared, client }) => {
    fake.halfCloses = false;
    const a = client(1);
    a.conn.push("get j\nblock forever blpop\nget k\n");
    await settle();
    shared.push("w\n");
    await settle();
    const sentAt = performance.now();
    a.conn.end();
    await a.done;
    assert.ok(fake.opened[1].closed);
    assert.ok(a.conn.closed);
    assert.ok(
      performance.now() - sentAt <= BLOCKED_AT_EOF_MS + 50,
      "closed within BLOCKED_AT_EOF_MS of the BLPOP's send",
    );
    assert.equal(a.conn.text(), "w\n", "the reply before it is written");
    assert.equal(shared.text(), "get j\n", "get k, behind the BLPOP, is not sent");
    assert.equal(pins.openCount(0), 0);
  });
});

Deno.test("a blocking request answered soon after the client's EOF is written, then the requests read before the EOF", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    a.conn.push("block forever blpop\nget k\n");
    a.conn.end();
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "block forever blpop\n");
    assert.ok(dedicated.writeClosed, "half-closed once dialled (it was dialling at the EOF)");
    dedicated.push("popped\n");
    await settle();
    assert.equal(shared.text(), "get k\n", "held behind the BLPOP, sent after its reply");
    shared.push("v\n");
    await a.done;
    await settle();
    assert.equal(a.conn.text(), "popped\nv\n");
    assert.ok(a.conn.closed);
  });
});

Deno.test("after the client's EOF its dedicated connection's replies are still written, each within a bound", async () => {
  await _withNode(4, async ({ fake, pins, client }) => {
    const a = client(1);
    a.conn.push("pin watch\npin get k\n");
    a.conn.end();
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "pin watch\npin get k\n");
    assert.ok(!dedicated.writeClosed, "not half-closed: redis-server drops output it has not sent");
    dedicated.push("OK\n");
    await settle();
    pins.checkTimeouts(performance.now() + 100);
    await settle();
    assert.ok(!a.conn.closed, "a slow reply may still come");
    // The backend went quiet: once the client left, a reply gets 150 ms here (30 s by default).
    pins.checkTimeouts(performance.now() + 200);
    await a.done;
    await settle();
    assert.equal(
      a.conn.text(),
      "OK\nERR backend n1: timed out: no reply within 150 ms after its client left\n",
    );
    assert.ok(a.conn.closed);
    assert.ok(dedicated.closed);
    assert.equal(pins.openCount(0), 0);
  });
});

Deno.test("after the client's EOF, a blocking request's grace counts from its turn, not its send", async () => {
  await _withNode(4, async ({ fake, client }) => {
    fake.halfCloses = false;
    const a = client(1);
    // Behind a slow request on the same connection: Redis takes it up only after that one.
    a.conn.push("pin watch\npin slow\nblock forever blpop\n");
    a.conn.end();
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "pin watch\npin slow\nblock forever blpop\n");
    await new Promise((resolve) => setTimeout(resolve, BLOCKED_AT_EOF_MS * 3));
    dedicated.push("OK\nv\n");
    await settle();
    assert.ok(!a.conn.closed, "its turn has just come");
    dedicated.push("popped\n");
    await a.done;
    await settle();
    assert.equal(a.conn.text(), "OK\nv\npopped\n");
    assert.ok(a.conn.closed);
  });
});

Deno.test("at a client's EOF, requests held behind another connection's replies are still run", async () => {
  await _withNode(4, async ({ fake, pins, shared, client }) => {
    const a = client(1);
    // A transaction left open: its replies are written, then its connection closed.
    a.conn.push("get j\npin watch\npin get k\nget m\n");
    a.conn.end();
    await settle();
    assert.equal(shared.text(), "get j\n");
    shared.push("w\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "pin watch\npin get k\n");
    dedicated.push("OK\nv\n");
    await settle();
    assert.equal(shared.text(), "get j\nget m\n");
    shared.push("x\n");
    await a.done;
    await settle();
    assert.equal(a.conn.text(), "w\nOK\nv\nx\n");
    assert.ok(a.conn.closed);
    assert.ok(dedicated.closed, "its state is the client's: closed, not pooled");
    assert.equal(pins.openCount(0), 0);
  });
});

Deno.test("a dedicated connection is exempt from read_timeout (a BLPOP may wait)", async () => {
  await _withNode(4, async ({ fake, pool, pins, client }) => {
    const a = client(1);
    const b = client(2);
    a.conn.push("pin blpop\n");
    b.conn.push("get k\n");
    await settle();
    const later = performance.now() + 60_000;
    pins.checkTimeouts(later);
    assert.equal(fake.opened[1].closed, false);
    pool.checkTimeouts(later);
    await settle();
    assert.ok(fake.opened[0].closed, "the shared connection's read_timeout still holds");
    assert.equal(b.conn.text(), "ERR backend n1: timed out after read_timeout 100 ms\n");
    assert.equal(a.conn.text(), "", "the BLPOP still waits");
    fake.opened[1].push("k1\n");
    await settle();
    assert.equal(a.conn.text(), "k1\n");
    a.conn.end();
    b.conn.end();
    await Promise.all([a.done, b.done]);
  });
});

Deno.test("a client on lane 1 uses that lane's connections, shared and pinned, opened on first use", async () => {
  await _withNode(1, async ({ fake, pins, shared, client }) => {
    const a = client(1);
    const b = client(2);
    a.conn.push("lane1\nget k\nrelease blpop\n");
    b.conn.push("get j\n");
    await settle();
    assert.equal(fake.opened.length, 2, "the blpop waits for get k: another connection");
    const laneShared = fake.opened[1];
    assert.equal(laneShared.text(), "hello 3\nget k\n", "the lane's handshake first");
    assert.equal(shared.text(), "get j\n", "a lane-0 client stays on the default connection");
    laneShared.push("HI\nv\n");
    await settle();
    const lanePinned = fake.opened[2];
    assert.equal(lanePinned.text(), "hello 3\nrelease blpop\n");
    lanePinned.push("HI\nx\n");
    shared.push("w\n");
    await settle();
    assert.equal(a.conn.text(), "OK\nv\nx\n", "handshake replies are not the client's");
    assert.equal(b.conn.text(), "w\n");
    // At the cap (1), a lane-0 pin closes the idle lane-1 connection rather than fail.
    assert.equal(pins.openCount(0), 1);
    assert.equal(pins.inUseCount(0), 0, "an idle connection of lane 1 is not in use");
    b.conn.push("pin watch\n");
    await settle();
    assert.ok(lanePinned.closed, "the idle connection of the other lane is closed");
    assert.equal(fake.opened[3].text(), "pin watch\n", "no HELLO 3 on a lane-0 connection");
    fake.opened[3].push("OK\n");
    await settle();
    assert.equal(b.conn.text(), "w\nOK\n");
    a.conn.end();
    b.conn.end();
    await Promise.all([a.done, b.done]);
  });
});

Deno.test("a blocking request past its own timeout plus the margin fails and closes its connection", async () => {
  await _withNode(4, async ({ fake, pins, client, metrics }) => {
    const a = client(1);
    a.conn.push("block 500 blpop\n");
    await settle();
    assert.equal(metrics.clientStates.blocked, 1);
    const dedicated = fake.opened[1];
    const within = 500 + BLOCKING_TIMEOUT_MARGIN_MS;
    pins.checkTimeouts(coarseClock.now + within - 10);
    assert.equal(dedicated.closed, false, "still within its timeout plus the margin");
    pins.checkTimeouts(coarseClock.now + within + 10);
    await settle();
    assert.ok(dedicated.closed, "closed, not returned");
    assert.equal(pins.openCount(0), 0);
    assert.equal(
      a.conn.text(),
      `ERR backend n1: timed out: no reply to a blocking command within ${within} ms\n`,
    );
    assert.equal(metrics.clientStates.blocked, 0);
    // Forever: never cut short.
    a.conn.push("block forever blpop\n");
    await settle();
    pins.checkTimeouts(coarseClock.now + 1e9);
    assert.equal(fake.opened[2].closed, false);
    fake.opened[2].push("k\n");
    await settle();
    assert.equal(metrics.clientStates.blocked, 0);
    assert.equal(pins.openCount(0), 1, "answered in time: back to the pool");
    a.conn.end();
    await a.done;
  });
});

Deno.test("blocking requests queued on one connection each get their timeout from the head", async () => {
  await _withNode(4, async ({ fake, pins, client }) => {
    const a = client(1);
    a.conn.push("pin watch\n");
    await settle();
    const dedicated = fake.opened[1];
    dedicated.push("OK\n");
    await settle();
    // Two blocking requests on the watching client's own connection, the second behind the
    // first: its wait counts from the first's reply, not from when it was sent.
    a.conn.push("tblock 500 blpop\ntblock 500 blpop\n");
    await settle();
    const within = 500 + BLOCKING_TIMEOUT_MARGIN_MS;
    const start = coarseClock.now;
    try {
      coarseClock.now = start + within - 10;
      pins.checkTimeouts(coarseClock.now);
      dedicated.push("first\n");
      await settle();
      pins.checkTimeouts(start + within + 10);
      assert.equal(dedicated.closed, false, "the second has waited only 20 ms");
      pins.checkTimeouts(start + 2 * within);
      await settle();
      assert.ok(dedicated.closed);
      assert.match(a.conn.text(), /^OK\nfirst\nERR backend n1: timed out/);
    } finally {
      coarseClock.now = performance.now();
    }
    a.conn.end();
    await a.done;
  });
});

Deno.test("a blocked client that sent much more than it may buffer stops being read, and still ends", async () => {
  await _withNode(4, async ({ fake, client }) => {
    const a = client(1);
    a.conn.push("block 0 blpop\n" + "get k\n".repeat(20_000));
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "block 0 blpop\n");
    // Reading stopped with the requests held back; closing the client still ends its loop.
    a.session.close();
    await a.done;
    assert.ok(dedicated.closed);
  });
});

Deno.test("a blocked client's held-back requests go on after its reply, read past the limit", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    const gets = 20_000;
    a.conn.push("block 0 blpop\n" + "get k\n".repeat(gets));
    await settle();
    assert.equal(shared.text(), "");
    fake.opened[1].push("popped\n");
    // Every GET is sent in the end (answered as they go: the client's in-flight budget).
    let answered = 0;
    for (let round = 0; round < 200 && answered < gets; round++) {
      await settle();
      const sent = shared.text().length / 6;
      shared.push("v\n".repeat(sent - answered));
      answered = sent;
    }
    assert.equal(shared.text().length, gets * 6);
    await settle();
    assert.equal(a.conn.text(), "popped\n" + "v\n".repeat(gets));
    a.session.close();
    await a.done;
  });
});

Deno.test("a QUIT after a WATCH and an EXEC gets every reply in order, then the client is closed", async () => {
  await _withNode(4, async ({ fake, pins, client }) => {
    const a = client(1);
    a.conn.push("pin watch\nquit\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "pin watch\n");
    assert.ok(!a.conn.closed, "the WATCH's reply is owed");
    dedicated.push("OK\n");
    await a.done;
    await settle();
    assert.equal(a.conn.text(), "OK\nOK\n");
    assert.ok(a.conn.closed);
    assert.ok(dedicated.closed, "its watching connection is closed with the client");
    assert.equal(pins.openCount(0), 0);

    const b = client(2);
    b.conn.push("pin multi\nrelease exec\nquit\n");
    await settle();
    const second = fake.opened[2];
    second.push("OK\nQUEUED-RESULTS\n");
    await b.done;
    await settle();
    assert.equal(b.conn.text(), "OK\nQUEUED-RESULTS\nOK\n");
    assert.ok(b.conn.closed);
  });
});

Deno.test("a blocked client's QUIT waits for the reply; a client that leaves meanwhile is seen", async () => {
  await _withNode(4, async ({ fake, pins, client, metrics }) => {
    const a = client(1);
    a.conn.push("block 0 blpop\nquit\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.ok(!dedicated.closed && !a.conn.closed, "blocked, as in redis-server");
    dedicated.push("popped\n");
    await a.done;
    await settle();
    assert.equal(a.conn.text(), "popped\nOK\n");
    assert.ok(a.conn.closed);

    const b = client(2);
    b.conn.push("block forever blpop\nquit\n");
    await settle();
    const second = fake.opened[fake.opened.length - 1];
    assert.ok(!second.closed);
    b.conn.end();
    await settle();
    assert.ok(second.writeClosed, "half-closed: the backend frees its client");
    second.end();
    await b.done;
    await settle();
    assert.ok(second.closed, "its BLPOP pops nothing for a client that is gone");
    assert.ok(b.conn.closed);
    assert.equal(pins.openCount(0), 0);
    assert.equal(metrics.clientStates.blocked, 0);
  });
});

Deno.test("a message delivered while a silenced request is held is written, and that reply is not", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    a.conn.push("get a\nlane1\nsilent get b\n");
    await settle();
    assert.equal(fake.opened.length, 1, "the lane-1 request waits for the lane-0 one");
    a.session.deliver(encoder.encode("message\n"), false);
    shared.push("A\n");
    await settle();
    const lane = fake.opened[1];
    assert.equal(lane.text(), "hello 3\nsilent get b\n");
    lane.push("HI\nB\n");
    await settle();
    assert.equal(a.conn.text(), "A\nOK\nmessage\n");
    a.conn.end();
    await a.done;
  });
});

Deno.test("a blocking request behind a slow one on its connection counts its wait from its turn", async () => {
  await _withNode(4, async ({ fake, pins, client }) => {
    const a = client(1);
    a.conn.push("pin watch\n");
    await settle();
    const dedicated = fake.opened[1];
    dedicated.push("OK\n");
    await settle();
    // A slow request (a long EVAL) on the watching client's connection, a blocking one behind
    // it: the backend runs the blocking one only after the slow one.
    a.conn.push("pin slow\ntblock 500 blpop\n");
    await settle();
    const within = 500 + BLOCKING_TIMEOUT_MARGIN_MS;
    const start = coarseClock.now;
    try {
      pins.checkTimeouts(start + 3 * within);
      await settle();
      assert.equal(dedicated.closed, false, "the blocking request has not started");
      coarseClock.now = start + 3 * within;
      dedicated.push("done\n");
      await settle();
      pins.checkTimeouts(start + 3 * within + within - 10);
      assert.equal(dedicated.closed, false, "within its own timeout since its turn");
      pins.checkTimeouts(start + 4 * within + 10);
      await settle();
      assert.ok(dedicated.closed);
      assert.match(a.conn.text(), /^OK\ndone\nERR backend n1: timed out/);
    } finally {
      coarseClock.now = performance.now();
    }
    a.conn.end();
    await a.done;
  });
});

Deno.test("requests held behind a blocked one go on past the in-flight budget after its reply", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    // More requests than a new client may have in flight (16), fewer bytes than stop reading.
    const gets = 20;
    a.conn.push("block 0 blpop\n" + "get k\n".repeat(gets));
    await settle();
    fake.opened[1].push("popped\n");
    let answered = 0;
    for (let round = 0; round < 20 && answered < gets; round++) {
      await settle();
      const sent = shared.text().length / 6;
      shared.push("v\n".repeat(sent - answered));
      answered = sent;
    }
    assert.equal(shared.text().length, gets * 6, "every GET is sent, the client sending nothing");
    await settle();
    assert.equal(a.conn.text(), "popped\n" + "v\n".repeat(gets));
    a.conn.end();
    await a.done;
  });
});

Deno.test("bytes read while a request is held behind a lent large one are kept once it is sent", async () => {
  await _withNode(4, async ({ fake, shared, client }) => {
    const a = client(1);
    // A large request lent to the shared connection (its buffer detached later), and a
    // blocking one held behind it; a read is in flight into the buffer's free tail meanwhile.
    const big = "set " + "x".repeat(100_000) + "\n";
    a.conn.push(big + "block 0 blpop\n");
    await settle(20);
    assert.equal(fake.opened.length, 1, "the blocking request waits for the SET");
    shared.push("OK\n");
    await settle();
    const dedicated = fake.opened[1];
    assert.equal(dedicated.text(), "block 0 blpop\n");
    // Bytes the client sends now land in the read in flight.
    a.conn.push("get k\n");
    await settle();
    dedicated.push("popped\n");
    await settle();
    assert.equal(shared.text().length, big.length + 6);
    assert.equal(shared.text().slice(big.length), "get k\n");
    shared.push("v\n");
    await settle();
    assert.equal(a.conn.text(), "OK\npopped\nv\n");
    a.conn.end();
    await a.done;
  });
});
