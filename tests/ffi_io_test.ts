/**
 * `io = "ffi"` (and `"auto"`, the default, where --allow-ffi is granted): Aster's workers on
 * raw sockets through FFI (`src/runtime/deno/ffi/`), started as `deno task start` starts them, against
 * real redis-servers and memcached.
 */
import assert from "node:assert/strict";
import { asterCommand, type ClusterToml, startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { MemcacheClient, useMemcached } from "./helpers/memcache_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

const decoder = new TextDecoder();

Deno.test("io = ffi serves redis: pipelines, MGET over two shards, 2 MB each way, a client leaving mid-pipeline, a dead backend", async () => {
  await using stack = new AsyncDisposableStack();
  const shards = [stack.use(await startRedis()), stack.use(await startRedis())];
  const deadBackend = await freePort(); // nothing listens here
  const aster = stack.use(
    await startAster([
      {
        cache_type: "redis",
        io: "ffi",
        servers: shards.map((s, i) => `127.0.0.1:${s.port}:1 r${i}`),
      },
      { cache_type: "redis", io: "ffi", servers: [`127.0.0.1:${deadBackend}:1 dead`] },
    ]),
  );
  const [port, deadPort] = aster.ports;
  const client = stack.use(await RespClient.connect(port));
  // The worker's sockets are raw: its listener, this client and the two backends at least.
  const info = String(text(await client.command("INFO", "server")));
  assert.match(info, /\r\nio:ffi\r\n/);
  const raw = Number(/io_raw_sockets:(\d+)/.exec(info)?.[1]);
  assert.ok(raw >= 4, `io_raw_sockets:${raw}`);
  const batch = Array.from({ length: 500 }, (_, n) => ["SET", `ffi:${n}`, `v${n}`]);
  assert.ok((await client.pipeline(batch)).every((reply) => text(reply) === "OK"));
  const keys = Array.from({ length: 500 }, (_, n) => `ffi:${n}`);
  assert.deepEqual(text(await client.command("MGET", ...keys)), keys.map((_, n) => `v${n}`));
  // The keys really went to both shards (the split and merge ran on FFI sockets).
  for (const shard of shards) {
    await using direct = await RespClient.connect(shard.port);
    assert.ok(Number(await direct.command("DBSIZE")) > 100);
  }
  // 2 MB each way: more than one send and one recv, so the partial-write paths run.
  const big = "x".repeat(2 * 1024 * 1024);
  assert.equal(text(await client.command("SET", "ffi:big", big)), "OK");
  assert.equal(text(await client.command("GET", "ffi:big")), big);
  // A client that leaves with 2,000 requests in flight does not disturb the next one.
  const leaving = await RespClient.connect(port);
  await leaving.sendRaw("*2\r\n$3\r\nGET\r\n$5\r\nffi:1\r\n".repeat(2000));
  leaving.close();
  assert.equal(text(await client.command("GET", "ffi:1")), "v1");
  const other = stack.use(await RespClient.connect(port));
  assert.equal(text(await other.command("PING")), "PONG");
  // A backend nobody listens for: the refused connect becomes an error reply.
  const toDead = stack.use(await RespClient.connect(deadPort));
  const refused = await toDead.command("GET", "ffi:1");
  assert.ok(refused instanceof RespErrorReply, `expected an error, got ${JSON.stringify(refused)}`);
  assert.match(refused.message, /dead/);
  // SIGTERM still stops it cleanly, with the poll loop's off-thread wait pending.
  assert.equal(await aster.stop(), 0);
});

Deno.test("io = ffi serves memcache with thread = 2: gets split over two memcached, every client answered", async () => {
  await using stack = new AsyncDisposableStack();
  const servers = [await useMemcached(stack), await useMemcached(stack)];
  const cluster: ClusterToml = {
    cache_type: "memcache",
    io: "ffi",
    thread: 2,
    servers: servers.map((s, i) => `127.0.0.1:${s.port}:1 mc${i}`),
  };
  const aster = stack.use(await startAster([cluster]));
  const port = aster.ports[0];
  // 20 clients over the two workers' shared port (SO_REUSEPORT on raw sockets).
  const clients = await Promise.all(
    Array.from({ length: 20 }, () => MemcacheClient.connect(port)),
  );
  for (const c of clients) stack.use(c);
  await Promise.all(clients.map(async (c, i) => {
    for (let k = 0; k < 10; k++) {
      const value = `c${i}k${k}`;
      assert.equal(
        await c.request(`set ffi:${i}:${k} 0 0 ${value.length}\r\n${value}\r\n`),
        "STORED\r\n",
      );
    }
  }));
  const keys = clients.flatMap((_, i) => Array.from({ length: 10 }, (_, k) => `ffi:${i}:${k}`));
  const reply = await clients[0].request(`get ${keys.join(" ")}\r\n`);
  const expected = keys.map((key) => {
    const [, i, k] = key.split(":");
    const value = `c${i}k${k}`;
    return `VALUE ${key} 0 ${value.length}\r\n${value}\r\n`;
  }).join("") + "END\r\n";
  assert.equal(reply, expected);
  // Both memcached hold some of these keys: the multiget was split.
  for (const server of servers) {
    await using direct = await MemcacheClient.connect(server.port);
    const held = (await direct.request(`get ${keys.join(" ")}\r\n`)).split("VALUE ").length - 1;
    assert.ok(held > 0 && held < keys.length, `memcached on ${server.port} holds ${held} keys`);
  }
});

Deno.test("io = auto (the default) runs on raw sockets with --allow-ffi and on Deno's ops without", async () => {
  await using stack = new AsyncDisposableStack();
  const redis = stack.use(await startRedis());
  const cluster: ClusterToml = { servers: [`127.0.0.1:${redis.port}:1 r`] };
  const granted = stack.use(await startAster([cluster], { env: { ASTER_LOG: "info" } }));
  const sandboxed = stack.use(
    await startAster([cluster], { sandboxed: true, env: { ASTER_LOG: "info" } }),
  );
  for (const [aster, io] of [[granted, "ffi"], [sandboxed, "deno"]] as const) {
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("SET", `auto:${io}`, io), "OK");
    assert.equal(text(await client.command("GET", `auto:${io}`)), io);
    const info = String(text(await client.command("INFO", "server")));
    assert.match(info, new RegExp(`\\r\\nio:${io}\\r\\n`), aster.log());
  }
  assert.match(sandboxed.log(), /io = "auto" uses Deno's socket ops \(no --allow-ffi\)/);
  assert.doesNotMatch(granted.log(), /uses Deno's socket ops/);
});

Deno.test("io = ffi without --allow-ffi: Aster refuses to start and says what to run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aster-ffi-refused-" });
  try {
    const config = `${dir}/aster.toml`;
    const port = await freePort();
    await Deno.writeTextFile(
      config,
      `[[clusters]]\nname = "cache"\nlisten_addr = "127.0.0.1:${port}"\n` +
        `cache_type = "redis"\nservers = ["127.0.0.1:7001:1"]\nio = "ffi"\n`,
    );
    const output = await asterCommand(["--config", config], {}, { sandboxed: true }).output();
    const stderr = decoder.decode(output.stderr);
    assert.notEqual(output.code, 0);
    assert.match(
      stderr,
      /cluster cache: io = "ffi" needs the FFI permission: run with --allow-ffi/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("io = ffi: a backend that dies fails its requests with an error, and serves again once it is back", async () => {
  await using stack = new AsyncDisposableStack();
  const first = await useMemcached(stack);
  const port = first.port;
  const aster = stack.use(
    await startAster([{ cache_type: "memcache", io: "ffi", servers: [`127.0.0.1:${port}:1 mc`] }]),
  );
  const client = stack.use(await MemcacheClient.connect(aster.ports[0]));
  assert.equal(await client.request("set k 0 0 1\r\na\r\n"), "STORED\r\n");
  first.kill("SIGKILL");
  await first.stop();
  assert.match(await client.request("get k\r\n"), /^SERVER_ERROR /);
  await useMemcached(stack, { port });
  // Aster reconnects with backoff: bounded retries until the new memcached answers.
  let reply = "";
  for (let i = 0; i < 50 && reply !== "STORED\r\n"; i++) {
    reply = await client.request("set k 0 0 1\r\nb\r\n");
    if (reply !== "STORED\r\n") await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(reply, "STORED\r\n");
  assert.equal(await client.request("get k\r\n"), "VALUE k 0 1\r\nb\r\nEND\r\n");
});
