/**
 * `database` (issue 20, SELECT): in `redis` mode every backend connection (shared, pinned,
 * health) selects the configured database when it connects; a client's SELECT of it is OK,
 * of another refused, inside MULTI too. Keys written through Aster land in that database.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { encodeCommandText } from "../src/protocol/resp/encoder.ts";

const DATABASE = 3;

Deno.test("redis mode, database = 3: every backend connection is in database 3; SELECT 3 only", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`],
    hash_tag: "{}",
    database: DATABASE,
    // Health pings on the shared connections.
    ping_fail_limit: 3,
    ping_interval: 100,
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  assert.equal(await client.command("SELECT", String(DATABASE)), "OK");
  const other = await client.command("SELECT", "0");
  assert.ok(other instanceof RespErrorReply);
  assert.equal(
    other.message,
    `ERR DB index is out of range (aster serves database ${DATABASE} only)`,
  );
  // CLIENT INFO and LIST say which database the client is in, as redis-server does.
  assert.match(String(text(await client.command("CLIENT", "INFO"))), / db=3 /);
  assert.match(String(text(await client.command("CLIENT", "LIST"))), / db=3 /);
  // Redis's int syntax and range, in its words: not "-0", nor 2^31.
  for (const arg of ["x", "-0", "03", "2147483648", "99999999999"]) {
    const bad = await client.command("SELECT", arg);
    assert.ok(bad instanceof RespErrorReply, arg);
    assert.equal(
      bad.message,
      arg.length > 3
        ? "ERR value is out of range, value must between -2147483648 and 2147483647"
        : "ERR value is not an integer or out of range",
      arg,
    );
  }

  // Shared connections: plain writes.
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}:${"abcdefghij"[i % 10]}`);
  for (const key of keys) assert.equal(await client.command("SET", key, "v"), "OK");
  // Pinned connections: a transaction, and a BLPOP woken by a push made on the backend.
  assert.deepEqual(
    await client.pipeline([
      ["MULTI"],
      ["SELECT", String(DATABASE)],
      ["SET", "{t}a", "1"],
      ["EXEC"],
    ]),
    ["OK", "QUEUED", "QUEUED", ["OK", "OK"]],
  );
  const aborted = await client.pipeline([["MULTI"], ["SELECT", "0"], ["SET", "{t}b", "1"], [
    "EXEC",
  ]]);
  assert.ok(aborted[1] instanceof RespErrorReply, Deno.inspect(aborted));
  assert.match(aborted[1].message, /inside MULTI: Aster serves database 3 only$/);
  assert.ok(aborted[3] instanceof RespErrorReply && /^EXECABORT/.test(aborted[3].message));
  // A negative index is no database anywhere: Redis's own words, and in MULTI queued for the
  // backend to fail in EXEC's reply while the rest applies, as redis-server does.
  const negative = await client.command("SELECT", "-1");
  assert.ok(
    negative instanceof RespErrorReply && negative.message === "ERR DB index is out of range",
  );
  const queued = await client.pipeline([["MULTI"], ["SELECT", "-1"], ["SET", "{t}n", "1"], [
    "EXEC",
  ]]);
  assert.deepEqual(queued.slice(0, 3), ["OK", "QUEUED", "QUEUED"]);
  const results = queued[3] as unknown[];
  assert.ok(
    results[0] instanceof RespErrorReply &&
      /^ERR DB index is out of range/.test(results[0].message),
  );
  assert.equal(results[1], "OK");
  assert.equal(await client.command("DEL", "{t}n"), 1, "applied; gone again for the count below");
  await client.sendRaw(encodeCommandText("BLPOP", "{q}l", "5"));
  // The BLPOP's dedicated connection is dialled first: wait until a backend shows it blocked.
  for (let round = 0; round < 50; round++) {
    let blocked = false;
    for (const server of [a, b]) {
      await using direct = await RespClient.connect(server.port);
      if (/ cmd=blpop /.test(String(text(await direct.command("CLIENT", "LIST"))))) blocked = true;
    }
    if (blocked) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // Every key is in database 3 of its backend, none in database 0.
  let inThree = 0;
  let blpopPushed = false;
  for (const server of [a, b]) {
    await using direct = await RespClient.connect(server.port);
    assert.equal(await direct.command("DBSIZE"), 0, `database 0 of ${server.port} is empty`);
    assert.equal(await direct.command("SELECT", String(DATABASE)), "OK");
    inThree += await direct.command("DBSIZE") as number;
    assert.equal(await direct.command("EXISTS", "{t}b"), 0);
    // Aster's connections (shared, health, pinned: the blocked BLPOP's) all sit in database 3.
    const list = String(text(await direct.command("CLIENT", "LIST")));
    const ownId = await direct.command("CLIENT", "ID");
    const aster = list.split("\n").filter((line) =>
      line.startsWith("id=") && !line.startsWith(`id=${ownId} `)
    );
    assert.ok(aster.length > 0);
    for (const line of aster) assert.match(line, new RegExp(` db=${DATABASE} `), line);
    const blocked = aster.some((line) => / cmd=blpop /.test(line));
    if (blocked) {
      assert.equal(await direct.command("RPUSH", "{q}l", "job"), 1);
      blpopPushed = true;
    }
  }
  assert.equal(inThree, keys.length + 1);
  assert.ok(blpopPushed, "the BLPOP was blocked on a backend");
  assert.deepEqual(text(await client.readReply()), ["{q}l", "job"]);
});
