/**
 * NodePool's lanes on in-memory sockets: a lane's connections open on first use and say
 * the lane's handshake after the pool's, and a reload's new pool adopts them as it adopts
 * the default ones.
 */
import assert from "node:assert/strict";
import { NodePool, type PoolOptions } from "./node_pool.ts";
import { settle, withFakeSockets } from "../../tests/helpers/fake_conn.ts";

const encoder = new TextEncoder();

const OPTIONS: PoolOptions = {
  connectionsPerNode: 2,
  dialTimeout: 1000,
  readTimeout: 1000,
  writeTimeout: 1000,
  newFramer: () => ({
    frame: (buf, start, end) => {
      const nl = buf.subarray(start, end).indexOf(0x0a);
      return nl < 0 ? -1 : nl + 1;
    },
  }),
  handshake: [encoder.encode("auth x\n")],
  laneHandshakes: [[encoder.encode("hello 3\n")]],
};
const NODES = [{ name: "n1", host: "127.0.0.1", port: 1 }];

Deno.test("a lane's connections open on first use and say the lane's handshake", async () => {
  await withFakeSockets(async (fake) => {
    const pool = new NodePool(NODES, OPTIONS);
    await settle();
    assert.equal(fake.opened.length, 2, "only the default lane at first");
    const lane = pool.connFor(0, 3, 1);
    assert.notEqual(lane, pool.connFor(0, 3));
    assert.equal(pool.connFor(0, 3, 1), lane, "a client keeps its lane connection");
    await settle();
    assert.equal(fake.opened.length, 4);
    assert.equal(fake.opened[2].text(), "auth x\nhello 3\n");
    assert.equal(fake.opened[0].text(), "auth x\n");
    assert.equal(pool.allConnsOf(0).length, 4);
    pool.closeNode(0);
    assert.ok(fake.opened.every((conn) => conn.closed), "every lane closes with its node");
    pool.close();
  });
});

Deno.test("a reload's pool adopts the lanes' connections of the nodes that stay", async () => {
  await withFakeSockets(async (fake) => {
    const old = new NodePool(NODES, OPTIONS);
    const lane = old.connFor(0, 1, 1);
    await settle();
    const fresh = new NodePool(NODES, OPTIONS, old);
    assert.equal(fresh.connFor(0, 1, 1), lane, "the same socket: requests keep their order");
    old.close();
    await settle();
    assert.equal(fake.opened.filter((conn) => conn.closed).length, 0, "lent, not closed");
    fresh.close();
    assert.ok(fake.opened.every((conn) => conn.closed));
  });
});
