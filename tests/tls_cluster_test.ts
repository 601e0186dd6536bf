/**
 * `redis_cluster` over a Redis Cluster that speaks TLS (`--tls-cluster yes`): Aster is given
 * one TLS seed and reaches every master the slot map names over TLS (the map a TLS client
 * gets lists the TLS ports), with TLS clients in front.
 */
import assert from "node:assert/strict";
import { keySlot } from "../src/hash/key_slot.ts";
import { startAster } from "./helpers/aster.ts";
import { makeCerts } from "./helpers/certs.ts";
import { nodeCommand, startRedisCluster } from "./helpers/redis_cluster.ts";
import { text } from "./helpers/resp_client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function resp(...args: string[]): Uint8Array {
  return enc.encode(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`);
}

/** Writes `request` whole, reads until the reply ends with CRLF, within 5 s. */
async function ask(conn: Deno.Conn, request: Uint8Array): Promise<string> {
  for (let at = 0; at < request.length;) at += await conn.write(request.subarray(at));
  const buf = new Uint8Array(4096);
  let got = "";
  const deadline = Date.now() + 5000;
  while (!got.endsWith("\r\n")) {
    const timer = new Promise<"late">((r) => setTimeout(() => r("late"), deadline - Date.now()));
    const n = await Promise.race([conn.read(buf), timer]);
    if (n === "late" || n === null) throw new Error(`no reply (got ${JSON.stringify(got)})`);
    got += dec.decode(buf.subarray(0, n));
  }
  return got;
}

Deno.test("redis_cluster over a TLS cluster: every node of the slot map over TLS", async () => {
  await using certs = await makeCerts();
  await using cluster = await startRedisCluster({
    tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert },
  });
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: [cluster.tlsSeeds()[0]],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
  }]);
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: aster.ports[0],
    caCerts: [certs.read(certs.caCert)],
  });
  // Keys on every master: Aster connects to each over TLS.
  const keys = Array.from({ length: 30 }, (_, i) => `tls-key-${i}`);
  const owners = new Set<number>();
  for (const key of keys) {
    assert.equal(await ask(conn, resp("SET", key, `v-${key}`)), "+OK\r\n");
    owners.add((await cluster.ownerOf(keySlot(enc.encode(key)))).port);
  }
  assert.equal(owners.size, 3, "the keys span the three masters");
  for (const key of keys) {
    const value = `v-${key}`;
    assert.equal(await ask(conn, resp("GET", key)), `$${value.length}\r\n${value}\r\n`);
    // Stored in the cluster itself (read back on the owner's plain port).
    const owner = await cluster.ownerOf(keySlot(enc.encode(key)));
    assert.equal(text(await nodeCommand(owner.port, ["GET", key])), value);
  }
  conn.close();
  // Replicas over TLS too: listed in the slot map once they replicated, READONLY on connect.
  await using replicaReads = await startAster([{
    cache_type: "redis_cluster",
    servers: [cluster.tlsSeeds()[0]],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
    read_from_slave: true,
  }]);
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: replicaReads.ports[0] });
  for (const key of keys) {
    const value = `v-${key}`;
    let reply = "";
    // A replica may lag a moment behind its master.
    for (let i = 0; i < 50 && reply !== `$${value.length}\r\n${value}\r\n`; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      reply = await ask(plain, resp("GET", key));
    }
    assert.equal(reply, `$${value.length}\r\n${value}\r\n`);
  }
  // Some replica has Aster's READONLY connection (CLIENT LIST flag "r"): reads go to a replica
  // once the slot map lists it and its connection is up (a busy machine may take a moment).
  let readonly = 0;
  for (let round = 0; round < 50 && readonly === 0; round++) {
    if (round > 0) {
      await new Promise((r) => setTimeout(r, 100));
      for (const key of keys) await ask(plain, resp("GET", key));
    }
    for (const master of await cluster.masters()) {
      for (const replica of await cluster.replicasOf(master)) {
        const list = String(text(await nodeCommand(replica.port, ["CLIENT", "LIST"])));
        readonly += list.split("\n").filter((line) => / flags=\w*r/.test(line)).length;
      }
    }
  }
  plain.close();
  assert.doesNotMatch(replicaReads.log(), /TLS handshake failed/);
  assert.ok(readonly > 0, "a replica serves reads over TLS");
});
