/**
 * SCRIPT through Aster (issue 19, scripts): LOAD reaches every backend (every master in
 * `redis_cluster` mode), so EVALSHA works on keys of every shard; EXISTS says 1 only for a
 * script every backend has; FLUSH and KILL are refused unless `allow_commands` has
 * "script" (then they reach every backend); DEBUG is refused. A backend that lost a script
 * answers NOSCRIPT, which the client's EVAL fallback repairs.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { settledMasters, startRedisCluster } from "./helpers/redis_cluster.ts";

const SET_SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])";
const OTHER_SCRIPT = "return 42";

/** One command straight to a server. */
async function _on(server: ServerProcess, ...args: string[]): Promise<RespValue> {
  await using client = await RespClient.connect(server.port);
  return await client.command(...args);
}

/** Keys spread over every shard (checked at the end). */
const KEYS = Array.from({ length: 40 }, (_, i) => `${"abcdefghijklmnopqrstuvwxyz"[i % 26]}${i}:s`);

async function _checkScripts(
  port: number,
  shards: ServerProcess[],
  reference: ServerProcess,
  flushAllowed: boolean,
): Promise<void> {
  await using client = await RespClient.connect(port);
  const sha = text(await _on(reference, "SCRIPT", "LOAD", SET_SCRIPT)) as string;
  const otherSha = text(await _on(reference, "SCRIPT", "LOAD", OTHER_SCRIPT)) as string;
  await _on(reference, "SCRIPT", "FLUSH");

  // Before LOAD: NOSCRIPT, as from one server.
  const missing = await client.command("EVALSHA", sha, "1", KEYS[0], "x");
  assert.ok(
    missing instanceof RespErrorReply && /^NOSCRIPT/.test(missing.message),
    Deno.inspect(missing),
  );
  assert.deepEqual(await client.command("SCRIPT", "EXISTS", sha, otherSha), [0, 0]);

  assert.equal(text(await client.command("SCRIPT", "LOAD", SET_SCRIPT)), sha);
  for (const shard of shards) {
    assert.deepEqual(await _on(shard, "SCRIPT", "EXISTS", sha), [1], `shard ${shard.port}`);
  }
  for (const key of KEYS) {
    assert.equal(await client.command("EVALSHA", sha, "1", key, `v-${key}`), "OK", key);
  }
  for (const shard of shards) {
    assert.ok((await _on(shard, "DBSIZE") as number) > 0, `shard ${shard.port} got no key`);
  }
  assert.deepEqual(await client.command("SCRIPT", "EXISTS", sha, otherSha), [1, 0]);
  // An error on the nodes is the answer, as from one server.
  const bad = await client.command("SCRIPT", "LOAD", "not lua at all (");
  assert.ok(bad instanceof RespErrorReply, Deno.inspect(bad));
  assert.ok(await client.command("SCRIPT", "EXISTS") instanceof RespErrorReply);

  // One backend lost it: EXISTS says 0, EVALSHA there says NOSCRIPT, EVAL repairs it.
  assert.equal(await _on(shards[0], "SCRIPT", "FLUSH"), "OK");
  assert.deepEqual(await client.command("SCRIPT", "EXISTS", sha, otherSha), [0, 0]);
  let repaired = 0;
  for (const key of KEYS) {
    const reply = await client.command("EVALSHA", sha, "1", key, "again");
    if (reply instanceof RespErrorReply) {
      assert.match(reply.message, /^NOSCRIPT/);
      assert.equal(await client.command("EVAL", SET_SCRIPT, "1", key, "again"), "OK");
      repaired++;
    } else assert.equal(reply, "OK");
  }
  assert.ok(repaired > 0, "a key on the flushed shard");
  assert.deepEqual(await client.command("SCRIPT", "EXISTS", sha), [1]);

  const help = text(await client.command("SCRIPT", "HELP"));
  assert.ok(Array.isArray(help) && help.length > 3, Deno.inspect(help));
  const debug = await client.command("SCRIPT", "DEBUG", "YES");
  assert.ok(debug instanceof RespErrorReply && /SCRIPT DEBUG is not supported/.test(debug.message));
  if (!flushAllowed) {
    for (const sub of ["FLUSH", "KILL"]) {
      const refused = await client.command("SCRIPT", sub);
      assert.ok(refused instanceof RespErrorReply, `${sub}: ${Deno.inspect(refused)}`);
      assert.match(refused.message, new RegExp(`SCRIPT ${sub} is not allowed.*allow_commands`));
    }
    assert.deepEqual(await client.command("SCRIPT", "EXISTS", sha), [1]);
    return;
  }
  assert.equal(await client.command("SCRIPT", "FLUSH"), "OK");
  for (const shard of shards) assert.deepEqual(await _on(shard, "SCRIPT", "EXISTS", sha), [0]);
  // Nothing runs anywhere: Redis's own NOTBUSY, from the first node.
  const kill = await client.command("SCRIPT", "KILL");
  assert.ok(kill instanceof RespErrorReply && /^NOTBUSY/.test(kill.message));
}

Deno.test("redis mode, three backends: SCRIPT LOAD reaches all, EVALSHA works on every shard", async () => {
  await using shard0 = await startRedis();
  await using shard1 = await startRedis();
  await using shard2 = await startRedis();
  await using reference = await startRedis();
  const shards = [shard0, shard1, shard2];
  await using aster = await startAster([
    { servers: shards.map((s, i) => `127.0.0.1:${s.port}:1 shard${i}`) },
    {
      servers: shards.map((s, i) => `127.0.0.1:${s.port}:1 shard${i}`),
      allow_commands: ["script"],
    },
  ]);
  await _checkScripts(aster.ports[0], shards, reference, false);
  for (const shard of shards) {
    await _on(shard, "FLUSHALL");
    await _on(shard, "SCRIPT", "FLUSH");
  }
  await _checkScripts(aster.ports[1], shards, reference, true);
});

Deno.test("redis_cluster mode: SCRIPT LOAD reaches every master, EVALSHA works on every slot", async () => {
  await using cluster = await startRedisCluster();
  await using reference = await startRedis();
  const masters = await settledMasters(cluster);
  await using aster = await startAster([{ cache_type: "redis_cluster", servers: cluster.seeds() }]);
  await _checkScripts(aster.ports[0], masters, reference, false);
});
