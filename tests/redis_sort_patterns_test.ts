/**
 * SORT / SORT_RO with BY and GET patterns over three real shards (issue 27): forwarded
 * when every key a pattern can form is on the sorted key's server (a hash tag before the
 * "*", `BY nosort`, `GET #`), with the replies of one plain redis-server holding the same
 * data; refused with an error naming the rule otherwise, where the old code returned a
 * silently wrong order. One backend refuses nothing.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

/**
 * The same data for the sorted keys and the keys their patterns name, under `tag`:
 * `{tag}w_*` (weights), `{tag}o_*` (objects), `{tag}h_*` (hashes), and `w_{tag}*`. Without
 * a tag, `*:w`, `*:o`, `*:h`: keys that differ in their first byte spread over the shards
 * (FNV-1a on ketama keeps "w_1".."w_5" together).
 */
function dataCommands(tag: string): string[][] {
  const commands: string[][] = [["RPUSH", `${tag}list`, "3", "1", "2", "5", "4"]];
  for (const [i, weight] of [[1, 50], [2, 10], [3, 40], [4, 20], [5, 30]]) {
    const name = (kind: string) => tag === "" ? `${i}:${kind}` : `${tag}${kind}_${i}`;
    commands.push(["SET", name("w"), `${weight}`]);
    commands.push(["SET", name("o"), `object-${i}`]);
    commands.push(["HSET", name("h"), "rank", `${6 - i}`, "name", `name-${i}`]);
    if (tag !== "") commands.push(["SET", `w_${tag}${i}`, `${100 - weight}`]);
  }
  return commands;
}

/** Loads `commands` through `client`, checking no reply is an error. */
async function load(client: RespClient, commands: string[][]): Promise<void> {
  for (const command of commands) {
    const reply = await client.command(...command);
    assert.ok(!(reply instanceof RespErrorReply), `${command.join(" ")}: ${Deno.inspect(reply)}`);
  }
}

/** The shard (index) a key is stored on, found by writing it through Aster. */
async function shardOf(
  aster: RespClient,
  shards: ServerProcess[],
  key: string,
): Promise<number> {
  assert.equal(await aster.command("SET", key, "probe"), "OK");
  for (const [i, shard] of shards.entries()) {
    await using client = await RespClient.connect(shard.port);
    if (await client.command("EXISTS", key) === 1) {
      await client.command("DEL", key);
      return i;
    }
  }
  throw new Error(`${key} is on no shard`);
}

function isRefusal(reply: RespValue, option: "BY" | "GET"): boolean {
  return reply instanceof RespErrorReply &&
    reply.message.startsWith(`ERR ${option} option of SORT denied by aster`) &&
    reply.message.includes("hash tag");
}

Deno.test("redis mode, three shards: SORT BY/GET patterns are forwarded on the key's server only, else refused", async () => {
  await using reference = await startRedis();
  await using shard0 = await startRedis();
  await using shard1 = await startRedis();
  await using shard2 = await startRedis();
  const shards = [shard0, shard1, shard2];
  await using aster = await startAster([{
    servers: shards.map((s, i) => `127.0.0.1:${s.port}:1 shard${i}`),
    hash_tag: "{}",
  }]);
  await using proxied = await RespClient.connect(aster.ports[0]);
  await using direct = await RespClient.connect(reference.port);

  // Tags: {u}, another on the same shard, one on another shard; the untagged keys spread.
  const home = await shardOf(proxied, shards, "{u}probe");
  let near = "";
  let far = "";
  for (let i = 0; i < 200 && (near === "" || far === ""); i++) {
    // Tags that differ early: FNV-1a on ketama keeps "t0".."t199" together.
    const tag = `${"abcdefghijklmnopqrstuvwxyz"[(i * 7) % 26]}${i}`;
    const shard = await shardOf(proxied, shards, `{${tag}}probe`);
    if (shard === home && near === "") near = tag;
    if (shard !== home && far === "") far = tag;
  }
  assert.ok(near !== "" && far !== "", "no tags found on the same and on another shard");
  for (const tag of ["", "{u}", `{${near}}`, `{${far}}`]) {
    await load(proxied, dataCommands(tag));
    await load(direct, dataCommands(tag));
  }
  // The untagged weights really are spread, so forwarding them would sort wrongly.
  const homes = new Set<number>();
  for (let i = 1; i <= 5; i++) homes.add(await shardOf(proxied, shards, `${i}:w`));
  assert.ok(homes.size > 1, "the untagged weights all live on one shard");

  const same = async (...args: string[]) => {
    const want = await direct.command(...args);
    const got = await proxied.command(...args);
    assert.deepEqual(text(got), text(want), args.join(" "));
    return got;
  };
  // Allowed: no pattern, constant BY, GET #, tagged patterns on the key's shard.
  assert.deepEqual(text(await same("SORT", "list")), ["1", "2", "3", "4", "5"]);
  await same("SORT", "list", "LIMIT", "1", "3", "ALPHA", "DESC");
  await same("SORT", "list", "BY", "nosort", "GET", "#");
  await same("SORT_RO", "list", "BY", "nosort");
  await same("SORT", "list", "GET", "constant");
  assert.deepEqual(text(await same("SORT", "{u}list", "BY", "{u}w_*")), ["2", "4", "5", "3", "1"]);
  await same("SORT", "{u}list", "BY", "{u}w_*", "DESC", "GET", "#", "GET", "{u}o_*");
  await same("SORT", "{u}list", "BY", "{u}h_*->rank", "GET", "{u}h_*->name");
  await same("SORT_RO", "{u}list", "BY", "{u}w_*", "GET", "{u}o_*", "LIMIT", "0", "2");
  await same("SORT", "{u}list", "BY", "w_{u}*", "GET", `{${near}}o_*`);
  assert.equal(await same("SORT", "{u}list", "BY", "{u}w_*", "STORE", "{u}dest"), 5);
  await same("LRANGE", "{u}dest", "0", "-1");
  // Errors redis-server gives before it reaches a pattern stay redis-server's.
  await same("SORT", "list", "NOSUCH", "BY", "*:w");
  await same("SORT", "list", "LIMIT", "x", "1", "BY", "*:w");
  await same("SORT_RO", "list", "STORE", "dest", "BY", "*:w");

  // Refused: patterns whose keys may live on other shards.
  const refused: [string[], "BY" | "GET"][] = [
    [["SORT", "list", "BY", "*:w"], "BY"],
    [["SORT", "list", "GET", "*:o"], "GET"],
    [["SORT", "list", "GET", "#", "GET", "*:o"], "GET"],
    [["SORT_RO", "list", "BY", "*:w", "GET", "*:o"], "BY"],
    [["SORT", "list", "BY", "*:h->rank"], "BY"],
    [["SORT", "{u}list", "BY", "{u}w_*", "GET", "*:o"], "GET"],
    [["SORT", "{u}list", "BY", `{${far}}w_*`], "BY"],
    [["SORT", "{u}list", "GET", `{${far}}o_*`], "GET"],
    // The "*" comes before the tag: an element may hold a "{" of its own.
    [["SORT", "{u}list", "BY", "*_{u}w"], "BY"],
    [["SORT", "{u}list", "BY", "{u}w_*", "STORE", "{u}dest2", "GET", "*:o"], "GET"],
  ];
  for (const [args, option] of refused) {
    const reply = await proxied.command(...args);
    assert.ok(isRefusal(reply, option), `${args.join(" ")}: ${Deno.inspect(reply)}`);
  }
  // A refused SORT ... STORE wrote nothing.
  assert.equal(await proxied.command("EXISTS", "{u}dest2"), 0);
  // STORE follows the usual same-server rule.
  const cross = await proxied.command("SORT", "{u}list", "BY", "{u}w_*", "STORE", `{${far}}dest`);
  assert.ok(cross instanceof RespErrorReply && /map to different servers/.test(cross.message));
  // The connection is fine after the refusals.
  assert.equal(await proxied.command("PING"), "PONG");
});

Deno.test("redis mode, one backend: SORT BY/GET patterns are all forwarded (every key is there)", async () => {
  await using reference = await startRedis();
  await using backend = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${backend.port}:1`] }]);
  await using proxied = await RespClient.connect(aster.ports[0]);
  await using direct = await RespClient.connect(reference.port);
  await load(proxied, dataCommands(""));
  await load(direct, dataCommands(""));
  for (
    const args of [
      ["SORT", "list", "BY", "*:w", "GET", "#", "GET", "*:o"],
      ["SORT_RO", "list", "BY", "*:h->rank", "GET", "*:h->name"],
      ["SORT", "list", "BY", "*:w", "STORE", "dest"],
    ]
  ) {
    assert.deepEqual(text(await proxied.command(...args)), text(await direct.command(...args)));
  }
});
