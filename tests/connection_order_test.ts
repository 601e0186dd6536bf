/**
 * One client's requests run in the order it sent them even when Aster sends them over
 * different backend connections (the shared one, a transaction's or a blocking command's
 * dedicated one): redis-server orders one connection's requests, not two connections'. Each
 * pipeline below has one answer on a plain redis-server; a request overtaking an earlier one
 * on another connection gives another.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

const ROUNDS = 30;

/** The pipeline of round `i` and what redis-server answers to it. */
function _round(i: number): { commands: string[][]; expected: unknown[] } {
  const k = `{o}k${i}`;
  const l = `{o}l${i}`;
  return {
    commands: [
      // shared -> transaction's connection: EXEC's GET sees the SET before it
      ["SET", k, "1"],
      ["MULTI"],
      ["GET", k],
      ["EXEC"],
      // transaction's connection -> shared: the GET sees what EXEC wrote
      ["MULTI"],
      ["SET", k, "2"],
      ["EXEC"],
      ["GET", k],
      // blocking connection -> shared: the RPUSH runs after the BLPOP timed out
      ["BLPOP", l, "0.01"],
      ["RPUSH", l, "a"],
      ["LLEN", l],
      // shared -> blocking connection: the BLPOP finds the element at once
      ["RPUSH", l, "b"],
      ["BLPOP", l, "5"],
      ["LLEN", l],
    ],
    expected: [
      "OK",
      "OK",
      "QUEUED",
      ["1"],
      "OK",
      "QUEUED",
      ["OK"],
      "2",
      null,
      1,
      1,
      2,
      [l, "a"],
      1,
    ],
  };
}

testBothIo(
  "a client's requests run in its order across shared and dedicated connections",
  async () => {
    await using redis = await startRedis();
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
    await using client = await RespClient.connect(aster.ports[0]);
    for (let i = 0; i < ROUNDS; i++) {
      const { commands, expected } = _round(i);
      const replies = (await client.pipeline(commands)).map(text);
      assert.deepEqual(replies, expected, `round ${i}`);
    }
  },
);

testBothIo("requests pipelined after HELLO 3 and HELLO 2 run after the ones before", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  await using client = await RespClient.connect(aster.ports[0]);
  for (let i = 0; i < ROUNDS; i++) {
    const k = `{o}h${i}`;
    const replies = await client.pipeline([
      ["SET", k, "3"],
      ["HELLO", "3"],
      ["GET", k],
      ["APPEND", k, "2"],
      ["HELLO", "2"],
      ["GET", k],
    ]);
    assert.deepEqual([replies[2], replies[5]].map(text), ["3", "32"], `round ${i}`);
  }
});

testBothIo("a new client's many requests pipelined after a BLPOP are all answered", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  // More requests than a new client may have in flight (about 20) wait for the BLPOP's reply,
  // in fewer bytes than one read takes; the client then waits for their replies.
  for (let i = 0; i < 3; i++) {
    await using client = await RespClient.connect(aster.ports[0]);
    const incrs = Array.from({ length: 28 }, (_, j) => ["INCR", `${i}:${j}`]);
    const replies = await client.pipeline([
      ["RPUSH", `b${i}`, "x"],
      ["BLPOP", `b${i}`, "1"],
      ...incrs,
    ]);
    assert.deepEqual(replies.map(text), [1, [`b${i}`, "x"], ...incrs.map(() => 1)]);
  }
});

testBothIo(
  "large values lent to a backend and a request held behind them keep their bytes",
  async () => {
    await using redis = await startRedis();
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
    await using client = await RespClient.connect(aster.ports[0]);
    await using churn = await RespClient.connect(aster.ports[0]);
    const value = (seed: number) => {
      const bytes = new Uint8Array(300_000);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
      return bytes;
    };
    for (let i = 0; i < 10; i++) {
      const [a, b, c] = [value(i), value(i + 100), value(i + 200)];
      // Another client's large requests take buffers from the pool meanwhile.
      const churning = churn.pipeline([["SET", "{o}churn", c], ["GET", "{o}churn"]]);
      const replies = await client.pipeline([
        ["SET", "{o}big", a],
        ["BLPOP", "{o}empty", "0.05"],
        ["GET", "{o}big"],
        ["SET", "{o}big2", b],
        ["GET", "{o}big2"],
      ]);
      assert.equal(replies[0], "OK");
      assert.equal(replies[1], null);
      assert.deepEqual(replies[2], a, `round ${i}: the first value`);
      assert.equal(replies[3], "OK");
      assert.deepEqual(replies[4], b, `round ${i}: the value read while the BLPOP was held`);
      assert.deepEqual((await churning)[1], c);
    }
  },
);
