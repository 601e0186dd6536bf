/**
 * Client libraries that inspect the server, run unchanged against Aster in front of real
 * redis-servers: BullMQ (reads INFO's redis_version), ioredis 6 and node-redis 6 (CLIENT
 * SETINFO, HELLO 3), and INFO/HELLO's redis-server fields.
 */
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

/** Rejects when `promise` takes longer than `ms`: a hang is a failure, not a stuck test. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The INFO fields as a map. */
function fields(info: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of info.split("\r\n")) {
    const at = line.indexOf(":");
    if (at > 0 && !line.startsWith("#")) out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

/** INFO `section` through `client`, polled until redis_version_source is `source` (≤ 5 s). */
async function infoOnceSource(
  client: RespClient,
  source: string,
  section = "server",
): Promise<Map<string, string>> {
  let info = new Map<string, string>();
  for (let i = 0; i < 100; i++) {
    info = fields(String(text(await client.command("INFO", section))));
    if (info.get("redis_version_source") === source) return info;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`redis_version_source never became ${source}: ${JSON.stringify([...info])}`);
}

/** The version a real redis-server reports about itself. */
async function versionOf(port: number): Promise<string> {
  await using client = await RespClient.connect(port);
  return fields(String(text(await client.command("INFO", "server")))).get("redis_version")!;
}

Deno.test("BullMQ runs through Aster: INFO's redis_version is the backends'", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  const queue = new Queue("compat", {
    connection: { host: "127.0.0.1", port: aster.ports[0], maxRetriesPerRequest: 1 },
  });
  const errors: string[] = [];
  queue.on("error", (err) => errors.push(err.message));
  try {
    // BullMQ refuses servers older than 5.0.0; before the fix it read Aster's 0.1.0.
    await within(queue.waitUntilReady(), 10_000, "BullMQ waitUntilReady");
    const job = await within(queue.add("greet", { to: "aster" }), 10_000, "BullMQ add");
    assert.ok(job.id);
    assert.equal(await within(queue.getWaitingCount(), 5000, "BullMQ count"), 1);
    const stored = await within(queue.getJob(job.id!), 5000, "BullMQ getJob");
    assert.deepEqual(stored?.data, { to: "aster" });
  } finally {
    await queue.close();
  }
  assert.deepEqual(errors, []);
});

Deno.test("INFO and HELLO report the backends' redis_version and redis-server's fields", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  const expected = await versionOf(a.port);
  assert.equal(await versionOf(b.port), expected);
  await using aster = await startAster([{
    servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`],
  }]);
  const port = aster.ports[0];
  await using client = await RespClient.connect(port);
  const server = await infoOnceSource(client, "backends");
  assert.equal(server.get("redis_version"), expected);
  assert.equal(server.get("redis_mode"), "standalone");
  assert.equal(server.get("tcp_port"), String(port));
  assert.equal(server.get("arch_bits"), "64");
  assert.match(server.get("os")!, /^\S+ \S+/);
  assert.match(server.get("run_id")!, /^[0-9a-f]{40}$/);
  assert.match(server.get("uptime_in_seconds")!, /^\d+$/);
  assert.equal(server.get("proxy_name"), "aster");
  assert.match(server.get("proxy_version")!, /^\d+\.\d+\.\d+/);
  assert.equal(server.get("aster_version"), undefined, "no field a client could take for it");
  // The first line, as redis-server's INFO has it (clients that read one line).
  const all = String(text(await client.command("INFO")));
  assert.match(
    all,
    new RegExp(`^# Server\\r\\nredis_version:${expected.replaceAll(".", "\\.")}\\r\\n`),
  );
  assert.equal(
    fields(String(text(await client.command("INFO", "all")))).get("redis_version"),
    expected,
  );
  const hello = text(await client.command("HELLO", "2")) as unknown[];
  assert.equal(hello[hello.indexOf("version") + 1], expected);
  assert.equal(hello[hello.indexOf("mode") + 1], "standalone");
});

Deno.test("INFO says when no backend (or not every one) has told its version", async () => {
  const dead = await freePort(); // nothing listens there
  await using aster = await startAster([{ servers: [`127.0.0.1:${dead}:1`] }]);
  await using client = await RespClient.connect(aster.ports[0]);
  const server = fields(String(text(await client.command("INFO", "server"))));
  assert.equal(server.get("redis_version"), "7.0.0");
  assert.equal(server.get("redis_version_source"), "default");

  // One backend known, one not: the known one's version, and the source says so.
  await using live = await startRedis();
  await using mixed = await startAster([{
    servers: [`127.0.0.1:${live.port}:1`, `127.0.0.1:${dead}:1`],
  }]);
  await using viaMixed = await RespClient.connect(mixed.ports[0]);
  const partial = await infoOnceSource(viaMixed, "some_backends");
  assert.equal(partial.get("redis_version"), await versionOf(live.port));
});

Deno.test("INFO reports the lowest version when the backends differ", async () => {
  // Only one redis-server version is installed: a stand-in backend plays an older one,
  // answering INFO as redis-server 5.0.14 would and every other command with +OK.
  const port = await freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const buf = new Uint8Array(4096);
        const info = "# Server\r\nredis_version:5.0.14\r\nredis_mode:standalone\r\n";
        while (true) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) return;
          const request = new TextDecoder().decode(buf.subarray(0, n));
          const reply = /INFO/i.test(request) ? `$${info.length}\r\n${info}\r\n` : "+OK\r\n";
          await conn.write(new TextEncoder().encode(reply)).catch(() => {});
        }
      })();
    }
  })();
  try {
    await using real = await startRedis();
    await using aster = await startAster([{
      servers: [`127.0.0.1:${real.port}:1`, `127.0.0.1:${port}:1`],
    }]);
    await using client = await RespClient.connect(aster.ports[0]);
    const server = await infoOnceSource(client, "backends");
    assert.equal(server.get("redis_version"), "5.0.14");
    const hello = text(await client.command("HELLO", "2")) as unknown[];
    assert.equal(hello[hello.indexOf("version") + 1], "5.0.14");
  } finally {
    listener.close();
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await serving.catch(() => {});
  }
});

Deno.test("redis_cluster mode: INFO's redis_mode and HELLO's mode are cluster", async () => {
  // One cluster-enabled redis-server owning every slot is a complete cluster.
  await using node = await startRedis({ args: ["--cluster-enabled", "yes"] });
  {
    await using admin = await RespClient.connect(node.port);
    assert.equal(await admin.command("CLUSTER", "ADDSLOTSRANGE", "0", "16383"), "OK");
    for (let i = 0; i < 100; i++) {
      const info = String(text(await admin.command("CLUSTER", "INFO")));
      if (info.includes("cluster_state:ok")) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: [`127.0.0.1:${node.port}`],
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  const server = await infoOnceSource(client, "backends");
  assert.equal(server.get("redis_mode"), "cluster");
  assert.equal(server.get("redis_version"), await versionOf(node.port));
  const hello = text(await client.command("HELLO", "2")) as unknown[];
  assert.equal(hello[hello.indexOf("mode") + 1], "cluster");
});

Deno.test("ioredis 6 connects through Aster (CLIENT SETINFO, SETNAME) and runs SET/GET", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  const client = new Redis({
    host: "127.0.0.1",
    port: aster.ports[0],
    connectionName: "compat-test",
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  const errors: string[] = [];
  client.on("error", (err: Error) => errors.push(err.message));
  try {
    await within(client.connect(), 5000, "ioredis connect");
    assert.equal(await within(client.set("k", "v"), 5000, "SET"), "OK");
    assert.equal(await within(client.get("k"), 5000, "GET"), "v");
    assert.equal(await client.client("GETNAME"), "compat-test");
  } finally {
    client.disconnect();
  }
  assert.deepEqual(errors, []);
  // What both libraries send on connect, answered as Redis 7.2 does.
  await using raw = await RespClient.connect(aster.ports[0]);
  assert.equal(await raw.command("CLIENT", "SETINFO", "LIB-NAME", "ioredis"), "OK");
  assert.equal(await raw.command("CLIENT", "SETINFO", "lib-ver", "6.1.0"), "OK");
  const bad = await raw.command("CLIENT", "SETINFO", "LIB-NAME", "has space");
  assert.ok(bad instanceof RespErrorReply);
  assert.equal(bad.message, "ERR LIB-NAME cannot contain spaces, newlines or special characters.");
  const unknown = await raw.command("CLIENT", "SETINFO", "color", "red");
  assert.ok(unknown instanceof RespErrorReply);
  assert.equal(unknown.message, "ERR Unrecognized option 'color'");
  assert.equal(await raw.command("CLIENT", "GETNAME"), null);
  assert.equal(await raw.command("CLIENT", "SETNAME", "n1"), "OK");
  assert.equal(text(await raw.command("CLIENT", "GETNAME")), "n1");
  assert.ok(Array.isArray(await raw.command("HELLO", "2", "SETNAME", "n2")));
  assert.equal(text(await raw.command("CLIENT", "GETNAME")), "n2");
  assert.equal(await raw.command("CLIENT", "SETNAME", ""), "OK");
  assert.equal(await raw.command("CLIENT", "GETNAME"), null);
  assert.equal(typeof await raw.command("CLIENT", "ID"), "number");
  // CLIENT PAUSE would pause the backends' clients: refused.
  const pause = await raw.command("CLIENT", "PAUSE", "10");
  assert.ok(pause instanceof RespErrorReply);
  assert.match(pause.message, /not supported by aster/);
});

Deno.test("node-redis 6: its default HELLO 3 (RESP3) connects, and RESP: 2 too", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  const url = `redis://127.0.0.1:${aster.ports[0]}`;
  // The default (RESP3, HELLO 3 with SETNAME) connects; a map comes back as an object.
  const resp3 = createClient({ url, name: "compat3", socket: { reconnectStrategy: false } });
  const resp3Errors: string[] = [];
  resp3.on("error", (err: Error) => resp3Errors.push(err.message));
  try {
    await within(resp3.connect(), 5000, "node-redis RESP3 connect");
    assert.equal(await within(resp3.hSet("h3", { a: "1" }), 5000, "HSET"), 1);
    assert.deepEqual({ ...await within(resp3.hGetAll("h3"), 5000, "HGETALL") }, { a: "1" });
    assert.equal(await resp3.clientGetName(), "compat3");
  } finally {
    resp3.destroy();
  }
  assert.deepEqual(resp3Errors, []);
  // With RESP: 2 it connects (CLIENT SETINFO and SETNAME in its handshake) and works.
  const resp2 = createClient({
    url,
    RESP: 2,
    name: "compat",
    socket: { reconnectStrategy: false },
  });
  const errors: string[] = [];
  resp2.on("error", (err: Error) => errors.push(err.message));
  try {
    await within(resp2.connect(), 5000, "node-redis RESP2 connect");
    assert.equal(await within(resp2.set("k", "v2"), 5000, "SET"), "OK");
    assert.equal(await within(resp2.get("k"), 5000, "GET"), "v2");
    assert.equal(await resp2.clientGetName(), "compat");
  } finally {
    resp2.destroy();
  }
  assert.deepEqual(errors, []);
});
