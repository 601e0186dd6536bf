/**
 * The Redis Cluster fixture builds a real 3-master, 3-replica cluster, finds slot owners,
 * migrates a slot with its keys, survives a manual failover and a killed master, and stops
 * every node.
 */

import assert from "node:assert/strict";
import calculateSlot from "cluster-key-slot";
import { nodeCommand, startRedisCluster } from "./helpers/redis_cluster.ts";
import { RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import type { ServerProcess } from "./helpers/servers.ts";

const HOST = "127.0.0.1";

Deno.test("startRedisCluster() builds a working 3+3 cluster that tests can reshard and fail over", async (t) => {
  const startedAt = Date.now();
  await using cluster = await startRedisCluster();
  const setupMs = Date.now() - startedAt;
  assert.ok(setupMs < 15_000, `cluster setup took ${setupMs} ms`);

  await t.step("has 3 masters with one attached replica each", async () => {
    assert.equal(cluster.nodes.length, 6);
    assert.equal(new Set(cluster.nodes.map((n) => n.port)).size, 6);
    assert.deepEqual(cluster.seeds(), cluster.nodes.map((n) => `${HOST}:${n.port}`));
    const masters = await cluster.masters();
    assert.equal(masters.length, 3);
    const replicas: ServerProcess[] = [];
    for (const master of masters) {
      const own = await cluster.replicasOf(master);
      assert.equal(own.length, 1, `replicas of ${master.port}`);
      const info = _string(await nodeCommand(own[0].port, ["INFO", "replication"]));
      assert.match(info, /^role:slave\r?$/m);
      assert.match(info, new RegExp(`^master_port:${master.port}\\r?$`, "m"));
      assert.match(info, /^master_link_status:up\r?$/m);
      replicas.push(own[0]);
    }
    const all = new Set([...masters, ...replicas]);
    assert.equal(all.size, 6);
    for (const node of cluster.nodes) {
      const info = _string(await nodeCommand(node.port, ["CLUSTER", "INFO"]));
      assert.match(info, /^cluster_state:ok\r?$/m);
      assert.match(info, /^cluster_slots_assigned:16384\r?$/m);
      assert.match(info, /^cluster_known_nodes:6\r?$/m);
    }
  });

  await t.step("a key written on its owner is readable there and MOVED elsewhere", async () => {
    const key = "fixture:owned";
    const slot = calculateSlot(key);
    const owner = await cluster.ownerOf(slot);
    assert.equal(await nodeCommand(owner.port, ["SET", key, "here"]), "OK");
    assert.equal(text(await nodeCommand(owner.port, ["GET", key])), "here");
    const other = (await cluster.masters()).find((m) => m !== owner)!;
    _assertRedirect(await nodeCommand(other.port, ["GET", key]), "MOVED", slot, owner);
  });

  await t.step("migrateSlot() moves a slot and its 50 keys to another master", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `{fixture-mig}:${i}`);
    const slot = calculateSlot(keys[0]);
    const source = await cluster.ownerOf(slot);
    const target = (await cluster.masters()).find((m) => m !== source)!;
    for (const key of keys) {
      assert.equal(await nodeCommand(source.port, ["SET", key, `v-${key}`]), "OK");
    }
    assert.equal(await nodeCommand(source.port, ["CLUSTER", "COUNTKEYSINSLOT", `${slot}`]), 50);

    let sawMigrating = false;
    await cluster.migrateSlot(slot, target, {
      pauseMs: 10,
      batchSize: 20,
      onMigrating: async () => {
        // Existing keys are still served by the source, missing ones are sent on by ASK.
        assert.equal(text(await nodeCommand(source.port, ["GET", keys[0]])), `v-${keys[0]}`);
        const missing = "{fixture-mig}:missing";
        _assertRedirect(await nodeCommand(source.port, ["GET", missing]), "ASK", slot, target);
        _assertRedirect(await nodeCommand(target.port, ["GET", keys[0]]), "MOVED", slot, source);
        sawMigrating = true;
      },
    });
    assert.ok(sawMigrating, "onMigrating ran");

    assert.equal(await cluster.ownerOf(slot), target);
    assert.equal(await nodeCommand(source.port, ["CLUSTER", "COUNTKEYSINSLOT", `${slot}`]), 0);
    assert.equal(await nodeCommand(target.port, ["CLUSTER", "COUNTKEYSINSLOT", `${slot}`]), 50);
    for (const key of keys) {
      assert.equal(text(await nodeCommand(target.port, ["GET", key])), `v-${key}`);
      _assertRedirect(await nodeCommand(source.port, ["GET", key]), "MOVED", slot, target);
    }
    // No node is left with the slot open.
    for (const node of cluster.nodes) {
      const nodes = _string(await nodeCommand(node.port, ["CLUSTER", "NODES"]));
      assert.doesNotMatch(nodes, /\[\d+-[<>]-/, `open slot on ${node.port}`);
    }
    // Moving a slot to its owner is a no-op.
    await cluster.migrateSlot(slot, target);
    assert.equal(await cluster.ownerOf(slot), target);
  });

  await t.step("failover() of a replica makes it master", async () => {
    const master = (await cluster.masters())[0];
    const [replica] = await cluster.replicasOf(master);
    await cluster.failover(replica);
    const masters = await cluster.masters();
    assert.ok(masters.includes(replica), "the replica is a master");
    assert.ok(!masters.includes(master), "the old master is not");
    assert.deepEqual(await cluster.replicasOf(replica), [master]);
    const role = text(await nodeCommand(replica.port, ["ROLE"])) as unknown[];
    assert.equal(role[0], "master");
  });

  await t.step("a killed master is failed over and waitHealthy() waits for it", async () => {
    const key = "fixture:after-kill";
    const slot = calculateSlot(key);
    const victim = await cluster.ownerOf(slot);
    const [heir] = await cluster.replicasOf(victim);
    assert.equal(await nodeCommand(victim.port, ["SET", key, "kept"]), "OK");
    assert.equal(await nodeCommand(victim.port, ["WAIT", "1", "2000"]), 1);
    victim.kill("SIGKILL");
    await cluster.waitHealthy();
    assert.equal(await cluster.ownerOf(slot), heir);
    assert.equal((await cluster.masters()).length, 3);
    assert.equal(text(await nodeCommand(heir.port, ["GET", key])), "kept");
  });

  await t.step("stop() stops every node and can be called again", async () => {
    await cluster.stop();
    await cluster.stop();
    for (const node of cluster.nodes) {
      await assert.rejects(nodeCommand(node.port, ["PING"]), `node ${node.port} still answers`);
    }
  });
});

function _string(value: RespValue): string {
  const shown = text(value);
  assert.equal(typeof shown, "string");
  return shown as string;
}

function _assertRedirect(
  reply: RespValue,
  kind: "MOVED" | "ASK",
  slot: number,
  to: ServerProcess,
): void {
  assert.ok(
    reply instanceof RespErrorReply,
    `expected -${kind}, got ${JSON.stringify(text(reply))}`,
  );
  assert.equal(reply.message, `${kind} ${slot} ${HOST}:${to.port}`);
}
