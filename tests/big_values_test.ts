/**
 * Big values (issue 17, point 6): a request's read_timeout counts from when its bytes were
 * wholly written to the backend, not from when it was queued behind a large one.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

/** Equal bytes, or a short message naming the first difference (a diff of 1 MB is slow). */
function _assertBytes(got: unknown, want: Uint8Array, label: string): void {
  assert.ok(got instanceof Uint8Array, `${label}: not bytes`);
  assert.equal(got.length, want.length, `${label}: length`);
  const at = got.findIndex((byte, i) => byte !== want[i]);
  assert.equal(at, -1, `${label}: first difference at byte ${at}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MB = 2 ** 20;

testBothIo(
  "a pipeline of 5 SETs of 16 MB with read_timeout 400 succeeds while the backend is slow to take it",
  async () => {
    await using redis = await startRedis();
    await using aster = await startAster([{
      servers: [`127.0.0.1:${redis.port}:1 redis-1`],
      read_timeout: 400,
      write_timeout: 10_000,
    }]);
    await using client = await RespClient.connect(aster.ports[0]);
    client.timeoutMs = 20_000;
    assert.equal(await client.command("SET", "small", "v"), "OK");
    const values = [1, 2, 3, 4, 5].map((i) => new Uint8Array(16 * MB).fill(0x60 + i));
    // The backend takes nothing for 1 s (as a busy machine would, slower): 80 MB cannot be
    // written meanwhile, and no reply can be late before its request was written.
    redis.kill("SIGSTOP");
    let stopped = true;
    try {
      const replies = client.pipeline([
        ...values.map((value, i) => ["SET", `big:${i}`, value]),
        ["GET", "small"],
      ]);
      await sleep(1000);
      redis.kill("SIGCONT");
      stopped = false;
      assert.deepStrictEqual((await replies).map(text), ["OK", "OK", "OK", "OK", "OK", "v"]);
    } finally {
      if (stopped) redis.kill("SIGCONT");
    }
    const got = await client.command("GET", "big:4");
    assert.ok(got instanceof Uint8Array && got.length === 16 * MB && got[0] === 0x65);
  },
);

testBothIo(
  "a late reply still times out after read_timeout once its request was written",
  async () => {
    await using redis = await startRedis();
    await using aster = await startAster([{
      servers: [`127.0.0.1:${redis.port}:1 redis-1`],
      read_timeout: 400,
    }]);
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("SET", "small", "v"), "OK");
    redis.kill("SIGSTOP");
    try {
      const started = performance.now();
      const reply = await client.command("GET", "small");
      const waited = performance.now() - started;
      assert.match(String((reply as Error).message), /timed out after read_timeout 400 ms/);
      assert.ok(waited >= 390 && waited < 2000, `answered after ${waited.toFixed(0)} ms`);
    } finally {
      redis.kill("SIGCONT");
    }
  },
);

testBothIo(
  "an MGET of large values over 2 shards answers every value in key order (merged as pieces)",
  async () => {
    await using redis1 = await startRedis();
    await using redis2 = await startRedis();
    await using aster = await startAster([{
      servers: [`127.0.0.1:${redis1.port}:1 redis-1`, `127.0.0.1:${redis2.port}:1 redis-2`],
      read_timeout: 10_000,
    }]);
    await using client = await RespClient.connect(aster.ports[0]);
    client.timeoutMs = 20_000;
    // k0, k1, k2 and k10, k11 fall on different servers (ketama, fnv1a_64).
    const keys = ["k0", "k10", "k1", "k11", "k2"];
    const values = keys.map((_, i) => new Uint8Array(MB + i).fill(0x61 + i));
    const sets = await client.pipeline(keys.map((key, i) => ["SET", key, values[i]]));
    assert.deepStrictEqual(sets.map(text), ["OK", "OK", "OK", "OK", "OK"]);
    for (const key of ["k0", "k10"]) {
      await using direct1 = await RespClient.connect(redis1.port);
      await using direct2 = await RespClient.connect(redis2.port);
      const on = [await direct1.command("EXISTS", key), await direct2.command("EXISTS", key)];
      assert.equal(on.filter((n) => n === 1).length, 1, `${key} on one server`);
    }
    const mgetKeys = ["k0", "k10", "missing", "k1", "k11", "k2"];
    // Behind a large GET and before a small one: the merge is next in line or waits its turn.
    const replies = await client.pipeline([
      ["GET", "k11"],
      ["MGET", ...mgetKeys],
      ["GET", "k0"],
      ["MGET", ...mgetKeys],
    ]);
    assert.deepStrictEqual(replies[0], values[3]);
    assert.deepStrictEqual(replies[2], values[0]);
    for (const reply of [replies[1], replies[3]]) {
      assert.ok(Array.isArray(reply) && reply.length === 6);
      assert.equal(reply[2], null);
      for (const [i, key] of mgetKeys.entries()) {
        if (key === "missing") continue;
        assert.deepStrictEqual(reply[i], values[keys.indexOf(key)], key);
      }
    }
  },
);

testBothIo(
  "clients pipelining 100 KB-1 MB values at once over 2 shards each read back exactly their own (buffers reused across clients)",
  async () => {
    await using redis1 = await startRedis();
    await using redis2 = await startRedis();
    await using aster = await startAster([{
      servers: [`127.0.0.1:${redis1.port}:1 redis-1`, `127.0.0.1:${redis2.port}:1 redis-2`],
      read_timeout: 10_000,
    }]);
    // Each client's values differ from every other's in every byte position that matters:
    // a buffer handed to the pool too early would show another client's bytes.
    const sizes = [100_000, 300_000, 70_000, 1_000_000, 150_000];
    const valueOf = (client: number, i: number) => {
      const value = new Uint8Array(sizes[i % sizes.length]);
      for (let j = 0; j < value.length; j += 997) value[j] = (client * 31 + i * 7 + j) & 0xff;
      value[value.length - 1] = client;
      return value;
    };
    const clients = Promise.all([0, 1, 2, 3, 4, 5].map(async (client) => {
      await using conn = await RespClient.connect(aster.ports[0]);
      conn.timeoutMs = 10_000;
      const keys = Array.from({ length: 10 }, (_, i) => `c${client}:k${i}`);
      const sets = await conn.pipeline(keys.map((key, i) => ["SET", key, valueOf(client, i)]));
      assert.deepStrictEqual(sets.map(text), keys.map(() => "OK"));
      const gets = await conn.pipeline(keys.map((key) => ["GET", key]));
      for (const [i, got] of gets.entries()) {
        _assertBytes(got, valueOf(client, i), `c${client} k${i}`);
      }
      const mget = await conn.command("MGET", ...keys);
      assert.ok(Array.isArray(mget));
      for (const [i, got] of mget.entries()) _assertBytes(got, valueOf(client, i), `MGET k${i}`);
    }));
    // Bounded: bytes of a buffer reused too early can leave a backend waiting for more.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer within 30 s")), 30_000);
    });
    try {
      await Promise.race([clients, late]);
    } finally {
      clearTimeout(timer);
    }
  },
);
