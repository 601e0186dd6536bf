/** Commands that could damage or expose backends are refused unless allow_commands names them. */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

const DANGEROUS = [
  ["CONFIG", "GET", "maxmemory"],
  ["DEBUG", "SLEEP", "0"],
  ["SHUTDOWN"],
  ["FLUSHALL"],
  ["FLUSHDB"],
  ["KEYS", "*"],
  ["MIGRATE", "127.0.0.1", "1", "k", "0", "10"],
  ["REPLICAOF", "127.0.0.1", "1"],
  ["SLAVEOF", "127.0.0.1", "1"],
  ["CLUSTER", "RESET"],
  ["SCRIPT", "FLUSH"],
  ["SCRIPT", "KILL"],
  ["ACL", "LIST"],
  ["MODULE", "LIST"],
  ["MONITOR"],
  ["SAVE"],
  ["BGSAVE"],
  ["BGREWRITEAOF"],
];

Deno.test("dangerous commands are refused by default and never reach a backend", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`] }]);
  await using client = await RespClient.connect(aster.ports[0]);
  assert.equal(await client.command("SET", "k", "v"), "OK");
  for (const command of DANGEROUS) {
    const reply = await client.command(...command);
    assert.ok(reply instanceof RespErrorReply, `${command.join(" ")} was refused`);
    assert.match(reply.message, new RegExp(`'${command[0].toLowerCase()}'`));
    assert.equal(await client.command("PING"), "PONG", "the connection stays usable");
  }
  await using direct = await RespClient.connect(redis.port);
  assert.equal(text(await direct.command("GET", "k")), "v", "nothing was flushed");
  const stats = String(text(await direct.command("INFO", "commandstats")));
  for (const name of ["config", "debug", "flushall", "flushdb", "keys", "save", "bgsave"]) {
    assert.ok(!stats.includes(`cmdstat_${name}`), `${name} reached the backend`);
  }
});

Deno.test("allowed server-wide commands reach every shard and merge", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  await using c = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${a.port}:1 a`, `127.0.0.1:${b.port}:1 b`, `127.0.0.1:${c.port}:1 c`],
    allow_commands: ["keys", "DBSIZE", "flushdb"],
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  const keys = Array.from({ length: 60 }, (_, i) => `user:${i * 7919}:name`);
  for (const key of keys) assert.equal(await client.command("SET", key, "x"), "OK");
  const shardSizes = await Promise.all([a, b, c].map(async (server) => {
    await using direct = await RespClient.connect(server.port);
    return await direct.command("DBSIZE") as number;
  }));
  assert.ok(shardSizes.every((size) => size > 0), `keys on every shard: ${shardSizes}`);
  assert.equal(await client.command("DBSIZE"), 60);
  const listed = text(await client.command("KEYS", "user:*")) as string[];
  assert.deepEqual([...listed].sort(), [...keys].sort());
  assert.equal(await client.command("FLUSHDB"), "OK");
  assert.equal(await client.command("DBSIZE"), 0);
  const refused = await client.command("FLUSHALL");
  assert.ok(refused instanceof RespErrorReply, "FLUSHALL was not allowed");
});
