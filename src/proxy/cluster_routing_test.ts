/**
 * ClusterRouting against scripted cluster nodes on in-memory sockets: MOVED, ASK and
 * TRYAGAIN are followed, never shown to the client, and redirects are bounded.
 */
import assert from "node:assert/strict";
import { ClusterRouting } from "./cluster_routing.ts";
import { NodePool } from "../backend/node_pool.ts";
import { ClusterTopology } from "../cluster/topology.ts";
import { SLOT_COUNT } from "../cluster/slot_table.ts";
import { keySlot } from "../hash/key_slot.ts";
import { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { RESP_BACKEND } from "../protocol/resp/resp_protocol.ts";
import { encodeCommandText } from "../protocol/resp/encoder.ts";
import type { ReplySink } from "../protocol/protocol.ts";
import { sockets, useSockets } from "../io/sockets.ts";
import { FakeSockets, settle } from "../../tests/helpers/fake_conn.ts";

const A = "127.0.0.1:7001";
const B = "127.0.0.1:7002";
const latin1 = new TextDecoder("latin1");
const HELLO_3 = encodeCommandText("HELLO", "3");

interface Cluster {
  fake: FakeSockets;
  routing: ClusterRouting;
  topology: ClusterTopology;
  metrics: ClusterMetrics;
}

/** Two masters: A owns every slot below 8192, B the rest; the map comes as a follower's. */
async function _withCluster(body: (cluster: Cluster) => Promise<void>): Promise<void> {
  const real = sockets();
  const fake = new FakeSockets();
  useSockets(fake);
  const pool = new NodePool([], {
    connectionsPerNode: 1,
    dialTimeout: 1000,
    readTimeout: 1000,
    writeTimeout: 1000,
    newFramer: RESP_BACKEND.newReplyFramer,
    laneHandshakes: [[HELLO_3]],
  });
  const topology = new ClusterTopology(pool, {
    seeds: [A],
    fetchIntervalS: 3600,
    retireAfterMs: 1000,
    wantReplicas: false,
    sharing: { leader: false, publish: () => {}, askLeader: () => {} },
  });
  const slotShard = new Int16Array(SLOT_COUNT);
  slotShard.fill(1, SLOT_COUNT / 2);
  topology.applyShared({
    shards: [{ master: A, replicas: [] }, { master: B, replicas: [] }],
    slotShard,
  });
  const metrics = new ClusterMetrics("c");
  const routing = new ClusterRouting(
    { topology, pool, identity: { ip: "127.0.0.1", port: 7000 } },
    { readFromReplicas: false, metrics },
  );
  try {
    await settle();
    await body({ fake, routing, topology, metrics });
  } finally {
    topology.close();
    pool.close();
    useSockets(real);
  }
}

/** A key whose slot A owns ("b": slot 3300). */
const KEY = "b";
const SLOT = keySlot(new TextEncoder().encode(KEY));

function _outcome(): { sink: ReplySink; got: string[] } {
  const got: string[] = [];
  return {
    got,
    sink: {
      onReply: (reply) => got.push(latin1.decode(reply)),
      onError: (message) => got.push(`error: ${message}`),
    },
  };
}

Deno.test("ClusterRouting follows MOVED to the new owner and remembers it", async () => {
  assert.ok(SLOT < SLOT_COUNT / 2, "A owns the test key");
  await _withCluster(async ({ fake, routing, topology, metrics }) => {
    const { sink, got } = _outcome();
    routing.send(SLOT, encodeCommandText("GET", KEY), sink, 1, false);
    await settle();
    assert.match(fake.connTo(A).text(), /GET/);
    fake.connTo(A).push(`-MOVED ${SLOT} ${B}\r\n`);
    await settle();
    assert.match(fake.connTo(B).text(), /GET/, "sent again to B");
    fake.connTo(B).push("$1\r\nv\r\n");
    await settle();
    assert.deepEqual(got, ["$1\r\nv\r\n"], "one reply, the redirect never shown");
    assert.equal(metrics.moved, 1);
    assert.equal(topology.masterOf(SLOT), routing.pool.indexOf(B));
  });
});

Deno.test("a RESP3 client's request follows MOVED on the new owner's HELLO 3 connection", async () => {
  await _withCluster(async ({ fake, routing }) => {
    const { sink, got } = _outcome();
    routing.send(SLOT, encodeCommandText("GET", KEY), sink, 1, false, 0, 1);
    await settle();
    const hello = latin1.decode(HELLO_3);
    assert.equal(fake.connTo(A).text(), hello + "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
    fake.connTo(A).push(`%0\r\n-MOVED ${SLOT} ${B}\r\n`);
    await settle();
    assert.equal(fake.connTo(B).text(), hello + "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
    fake.connTo(B).push("%0\r\n_\r\n");
    await settle();
    assert.deepEqual(got, ["_\r\n"], "RESP3's null, from the lane that speaks it");
  });
});

Deno.test("ClusterRouting follows ASK once, with ASKING, without moving the slot", async () => {
  await _withCluster(async ({ fake, routing, topology, metrics }) => {
    const { sink, got } = _outcome();
    const ownerBefore = topology.masterOf(SLOT);
    routing.send(SLOT, encodeCommandText("GET", KEY), sink, 1, false);
    await settle();
    fake.connTo(A).push(`-ASK ${SLOT} ${B}\r\n`);
    await settle();
    assert.match(fake.connTo(B).text(), /^\*1\r\n\$6\r\nASKING\r\n\*2\r\n\$3\r\nGET/);
    fake.connTo(B).push("+OK\r\n$1\r\nw\r\n");
    await settle();
    assert.deepEqual(got, ["$1\r\nw\r\n"]);
    assert.equal(metrics.ask, 1);
    assert.equal(topology.masterOf(SLOT), ownerBefore);
  });
});

Deno.test("ClusterRouting retries TRYAGAIN on the same owner after a delay", async () => {
  await _withCluster(async ({ fake, routing }) => {
    const { sink, got } = _outcome();
    routing.send(SLOT, encodeCommandText("MGET", KEY, KEY), sink, 1, false);
    await settle();
    const a = fake.connTo(A);
    a.push("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
    await settle();
    assert.deepEqual(got, []);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await settle();
    assert.equal(a.text().match(/MGET/g)?.length, 2, "sent again to A");
    a.push("*2\r\n$1\r\nv\r\n$1\r\nv\r\n");
    await settle();
    assert.deepEqual(got, ["*2\r\n$1\r\nv\r\n$1\r\nv\r\n"]);
  });
});

Deno.test("ClusterRouting gives up with an error after too many redirects", async () => {
  await _withCluster(async ({ fake, routing }) => {
    const { sink, got } = _outcome();
    routing.send(SLOT, encodeCommandText("GET", KEY), sink, 1, false);
    for (let i = 0; i < 6 && got.length === 0; i++) {
      await settle();
      // Each node points at the other: a redirect loop.
      const [from, to] = i % 2 === 0 ? [A, B] : [B, A];
      fake.connTo(from).push(`-MOVED ${SLOT} ${to}\r\n`);
    }
    await settle();
    assert.equal(got.length, 1, "exactly one outcome");
    assert.match(got[0], /^error: too many redirects for slot \d+, last: MOVED/);
  });
});
