/**
 * COMMAND and FUNCTION as redis-server has them (issue 26, points 2 and 3), in the `redis`
 * mode over one and three real redis-servers. COMMAND is answered by a backend, so every
 * subcommand form is compared byte for byte with the same redis-server asked directly.
 * FUNCTION LOAD / DELETE / RESTORE (and FLUSH when allowed) reach every backend, so FCALL
 * works on keys of every shard, with the replies of a plain redis-server.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { sameBytes, showRaw } from "./helpers/raw_reply.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";

const decoder = new TextDecoder();
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

/** Every subcommand form of COMMAND, with good and bad arguments. */
const COMMAND_FORMS: string[][] = [
  ["COMMAND"],
  ["command"],
  ["COMMAND", "COUNT"],
  ["COMMAND", "COUNT", "x"],
  ["COMMAND", "LIST"],
  ["COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"],
  ["COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"],
  ["COMMAND", "LIST", "FILTERBY", "MODULE", "nosuchmodule"],
  ["COMMAND", "LIST", "FILTERBY", "bogus", "x"],
  ["COMMAND", "LIST", "FILTERBY"],
  ["COMMAND", "INFO"],
  ["COMMAND", "INFO", "get", "SET", "nosuch", "eval", "xread", "sort", "function", "command"],
  ["COMMAND", "INFO", "config|get"],
  ["COMMAND", "DOCS"],
  ["COMMAND", "DOCS", "get", "nosuch", "sort", "function"],
  ["COMMAND", "GETKEYS", "SET", "a", "b"],
  ["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
  ["COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "arg"],
  ["COMMAND", "GETKEYS", "SORT", "k", "BY", "w_*", "STORE", "dest"],
  ["COMMAND", "GETKEYS", "XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
  ["COMMAND", "GETKEYS", "GET"],
  ["COMMAND", "GETKEYS", "PING"],
  ["COMMAND", "GETKEYS", "nosuch", "a"],
  ["COMMAND", "GETKEYS"],
  ["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "LEFT", "RIGHT"],
  ["COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b"],
  ["COMMAND", "HELP"],
  ["COMMAND", "NOSUCH"],
];

/** Every COMMAND form gives through Aster what `direct` (the backend asked) gives. */
async function compareCommandForms(asterPort: number, directPort: number): Promise<void> {
  await using proxied = await RespClient.connect(asterPort);
  await using direct = await RespClient.connect(directPort);
  const mismatches: string[] = [];
  for (const form of COMMAND_FORMS) {
    const want = await direct.rawCommand(...form);
    const got = await proxied.rawCommand(...form);
    if (!sameBytes(got, want)) {
      mismatches.push(`${form.join(" ")}: aster ${showRaw(got)}, redis ${showRaw(want)}`);
    }
  }
  assert.deepEqual(mismatches, []);
  // The GETKEYS answer names the keys, and movablekeys is among the flags (clients read it).
  assert.match(
    decoder.decode(await proxied.rawCommand("COMMAND", "GETKEYS", "EVAL", "x", "1", "k")),
    /k\r\n$/,
  );
  assert.match(decoder.decode(await proxied.rawCommand("COMMAND", "INFO", "eval")), /movablekeys/);
}

const LIBRARY = [
  "#!lua name=astertest",
  "redis.register_function('aster_set', function(keys, args)",
  "  return redis.call('SET', keys[1], args[1]) end)",
  "redis.register_function{function_name='aster_get', callback=function(keys, args)",
  "  return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
].join("\n");

/** FUNCTION and FCALL through Aster answer as one plain redis-server (`reference`) does. */
async function checkFunctions(
  aster: { port: number; shards: ServerProcess[] },
  reference: ServerProcess,
  flushAllowed: boolean,
): Promise<void> {
  await using proxied = await RespClient.connect(aster.port);
  await using direct = await RespClient.connect(reference.port);
  const both = async (...args: (string | Uint8Array)[]) => {
    const want = await direct.command(...args);
    const got = await proxied.command(...args);
    assert.deepEqual(
      _sortedLists(text(got)),
      _sortedLists(text(want)),
      `${args.join(" ").slice(0, 60)}`,
    );
    return got;
  };
  // Keys that differ early (FNV-1a on ketama puts "fkey:0".."fkey:29" on one shard of three).
  const keys = Array.from(
    { length: 30 },
    (_, i) => `${"abcdefghijklmnopqrstuvwxyz"[i % 26]}${i}:fn`,
  );
  const fcallAll = async () => {
    for (const key of keys) {
      await both("FCALL", "aster_set", "1", key, `v-${key}`);
      await both("FCALL_RO", "aster_get", "1", key);
    }
  };

  // Before any load: Redis's own "Function not found".
  assert.ok(await both("FCALL", "aster_set", "1", keys[0], "x") instanceof RespErrorReply);
  assert.equal(text(await both("FUNCTION", "LOAD", LIBRARY)), "astertest");
  for (const shard of aster.shards) {
    const list = text(await _on(shard, "FUNCTION", "LIST", "LIBRARYNAME", "astertest"));
    assert.equal((list as unknown[]).length, 1, `shard ${shard.port} misses the library`);
  }
  await fcallAll();
  // An error on the nodes is the answer (loading it again, bad code, bad arguments).
  assert.ok(await both("FUNCTION", "LOAD", LIBRARY) instanceof RespErrorReply);
  assert.ok(await both("FUNCTION", "LOAD", "#!lua name=bad\nnot lua") instanceof RespErrorReply);
  await both("FUNCTION", "LOAD");
  await both("FUNCTION");
  await both("FUNCTION", "NOSUCH");
  assert.equal(text(await both("FUNCTION", "LOAD", "REPLACE", LIBRARY)), "astertest");
  // Answered by one backend: what a single server says.
  await both("FUNCTION", "LIST");
  await both("FUNCTION", "LIST", "WITHCODE");
  await both("FUNCTION", "STATS");
  await both("FUNCTION", "HELP");
  const dump = await proxied.command("FUNCTION", "DUMP");
  assert.ok(dump instanceof Uint8Array && dump.length > 10, `DUMP gave ${Deno.inspect(dump)}`);

  assert.equal(await both("FUNCTION", "DELETE", "astertest"), "OK");
  assert.ok(await both("FUNCTION", "DELETE", "astertest") instanceof RespErrorReply);
  for (const key of keys.slice(0, 5)) {
    assert.ok(await both("FCALL", "aster_set", "1", key, "x") instanceof RespErrorReply);
  }
  // RESTORE of the dump reaches every backend again.
  assert.equal(await both("FUNCTION", "RESTORE", dump as Uint8Array), "OK");
  await fcallAll();
  for (const shard of aster.shards) {
    const list = text(await _on(shard, "FUNCTION", "LIST")) as unknown[];
    assert.equal(list.length, 1, `shard ${shard.port} after RESTORE`);
  }

  const kill = await proxied.command("FUNCTION", "KILL");
  assert.ok(kill instanceof RespErrorReply && /FUNCTION KILL is not supported/.test(kill.message));
  if (!flushAllowed) {
    const flush = await proxied.command("FUNCTION", "FLUSH");
    assert.ok(flush instanceof RespErrorReply, `FLUSH gave ${Deno.inspect(flush)}`);
    assert.match(flush.message, /allow_commands/);
    for (const shard of aster.shards) {
      assert.equal((text(await _on(shard, "FUNCTION", "LIST")) as unknown[]).length, 1);
    }
    return;
  }
  assert.equal(await both("FUNCTION", "FLUSH", "SYNC"), "OK");
  for (const shard of aster.shards) {
    assert.deepEqual(text(await _on(shard, "FUNCTION", "LIST")), [], `shard ${shard.port}`);
  }
  assert.ok(await both("FCALL", "aster_set", "1", keys[0], "x") instanceof RespErrorReply);
}

/**
 * FUNCTION LIST with a library's functions in a fixed order: redis-server lists them in its
 * dict's order, which differs from one process to another.
 */
function _sortedLists(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  const at = value.indexOf("functions");
  if (at >= 0 && at % 2 === 0 && Array.isArray(value[at + 1])) {
    const copy = [...value];
    copy[at + 1] = [...value[at + 1]].sort((a, b) =>
      JSON.stringify(a).localeCompare(JSON.stringify(b))
    );
    return copy;
  }
  return value.map(_sortedLists);
}

/** One command straight to a server. */
async function _on(server: ServerProcess, ...args: string[]): Promise<RespValue> {
  await using client = await RespClient.connect(server.port);
  return await client.command(...args);
}

Deno.test("redis mode, one backend: every COMMAND form is redis-server's; FUNCTION and FCALL work", async () => {
  await using backend = await startRedis();
  await using reference = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${backend.port}:1`],
    allow_commands: ["function"],
  }]);
  await compareCommandForms(aster.ports[0], backend.port);
  await checkFunctions({ port: aster.ports[0], shards: [backend] }, reference, true);
});

Deno.test("redis mode, three backends: COMMAND is the first backend's; FUNCTION reaches all, FCALL works on every shard", async () => {
  await using shard0 = await startRedis();
  await using shard1 = await startRedis();
  await using shard2 = await startRedis();
  await using reference = await startRedis();
  const shards = [shard0, shard1, shard2];
  await using aster = await startAster([{
    servers: shards.map((s, i) => `127.0.0.1:${s.port}:1 shard${i}`),
    hash_tag: "{}",
  }]);
  await compareCommandForms(aster.ports[0], shard0.port);
  await checkFunctions({ port: aster.ports[0], shards }, reference, false);
  // The FCALLs really spread over the shards.
  for (const shard of shards) {
    assert.ok((await _on(shard, "DBSIZE") as number) > 0, `shard ${shard.port} got no key`);
  }
});
