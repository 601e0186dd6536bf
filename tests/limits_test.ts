/** Client limits: max_clients, client_idle_timeout, and the output limits (backpressure). */
import assert from "node:assert/strict";
import { startAster, UNDER_TEST } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

Deno.test("max_clients: a client past the limit gets an error and is closed", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`], max_clients: 3 }]);
  const clients: RespClient[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const client = await RespClient.connect(aster.ports[0]);
      clients.push(client);
      assert.equal(await client.command("PING"), "PONG");
    }
    const extra = await RespClient.connect(aster.ports[0]);
    clients.push(extra);
    const reply = await extra.readReply();
    assert.ok(reply instanceof RespErrorReply);
    assert.equal(reply.message, "ERR max number of clients reached");
    assert.ok(await extra.closedWithin(2000));
    // A slot frees up when a client leaves.
    clients[0].close();
    let served = false;
    for (let attempt = 0; attempt < 50 && !served; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const again = await RespClient.connect(aster.ports[0]);
      clients.push(again);
      const answer = await again.command("PING").catch((err) => err);
      served = answer === "PONG";
    }
    assert.ok(served, "a new client is served once another left");
    assert.equal(await clients[1].command("PING"), "PONG");
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("max_clients counts a half-closed client until its replies are written", async () => {
  // Its read loop ends at its FIN, but it holds its socket while it is owed replies.
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`], max_clients: 1 }]);
  await using halfClosed = await RespClient.connect(aster.ports[0]);
  assert.equal(await halfClosed.command("SET", "k", "v"), "OK");
  redis.kill("SIGSTOP");
  try {
    await halfClosed.sendRaw("GET k\r\n");
    await halfClosed.closeWrite();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await using extra = await RespClient.connect(aster.ports[0]);
    const reply = await extra.readReply();
    assert.ok(reply instanceof RespErrorReply, Deno.inspect(reply));
    assert.equal(reply.message, "ERR max number of clients reached");
  } finally {
    redis.kill("SIGCONT");
  }
  assert.equal(text(await halfClosed.readReply()), "v");
  assert.ok(await halfClosed.closedWithin(2000));
  let served = false;
  for (let attempt = 0; attempt < 50 && !served; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    await using again = await RespClient.connect(aster.ports[0]);
    served = await again.command("PING").catch((err) => err) === "PONG";
  }
  assert.ok(served, "a new client is served once the half-closed one is closed");
});

Deno.test("max_clients bounds the cluster over all its workers, even below thread", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    max_clients: 2,
    thread: 4,
  }]);
  const clients: RespClient[] = [];
  try {
    // However the kernel spreads 12 clients over the 4 workers, 2 are served in all.
    for (let i = 0; i < 12; i++) clients.push(await RespClient.connect(aster.ports[0]));
    const replies = await Promise.all(
      clients.map((client) => client.command("PING").catch((err) => String(err))),
    );
    const served = replies.filter((reply) => reply === "PONG").length;
    assert.equal(served, 2, JSON.stringify(replies));
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("client_idle_timeout closes idle clients and keeps busy ones", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    client_idle_timeout: 1,
  }]);
  await using idle = await RespClient.connect(aster.ports[0]);
  await using busy = await RespClient.connect(aster.ports[0]);
  assert.equal(await idle.command("PING"), "PONG");
  const started = Date.now();
  // The busy client sends a command every 200 ms for 2.5 s.
  while (Date.now() - started < 2500) {
    assert.equal(await busy.command("SET", "k", "v"), "OK");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.ok(await idle.closedWithin(100), "the idle client was closed");
  assert.equal(text(await busy.command("GET", "k")), "v");
});

for (const io of ["deno", "ffi"]) {
  Deno.test({
    name:
      `a client that does not read its replies is paused, then closed past the hard limit (io = ${io})`,
    // Raw sockets are Deno's only (Bun refuses io = "ffi"); io = "deno" is Bun's sockets there.
    ignore: io === "ffi" && UNDER_TEST !== "deno",
    fn: () => _slowReader(io),
  });
}

/** Output limits against a client that does not read, with the sockets of `io`. */
async function _slowReader(io: string): Promise<void> {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    client_output_soft_limit: 1024 * 1024,
    client_output_hard_limit: 4 * 1024 * 1024,
    io,
  }]);
  await using setup = await RespClient.connect(aster.ports[0]);
  const value = "x".repeat(512 * 1024);
  assert.equal(await setup.command("SET", "big", value), "OK");

  // Between the limits: a client that asks for 3 MB of replies before reading any (over
  // the 1 MB soft limit, so Aster stops reading from it) still gets every reply, in order.
  await using slow = await RespClient.connect(aster.ports[0]);
  const requests = 6;
  for (let i = 0; i < requests; i++) {
    await slow.sendRaw("GET big\r\n");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await slow.sendRaw("PING\r\n");
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let i = 0; i < requests; i++) {
    const reply = await slow.readReply();
    assert.ok(reply instanceof Uint8Array && reply.length === value.length, `reply ${i}`);
  }
  assert.equal(await slow.readReply(), "PONG");

  // Hard limit: a single write of requests whose replies exceed it closes the client
  // (they are read before reading pauses) while others keep working. The client reads
  // nothing meanwhile: large replies go out as they arrive, so a client that drains them
  // as fast as they come owes little and stays.
  await using greedy = await RespClient.connect(aster.ports[0]);
  await greedy.sendRaw("MGET big big big big big big big big big big\r\n".repeat(4));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.ok(await greedy.closedWithin(3000), "the client over the hard limit was closed");
  assert.equal(await setup.command("PING"), "PONG");
  assert.match(aster.log(), /over the hard limit: closed/);
}

/** `promise`, or "TIMEOUT" after `ms`. */
async function _within<T>(promise: Promise<T>, ms: number): Promise<T | "TIMEOUT"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"TIMEOUT">((resolve) => timer = setTimeout(resolve, ms, "TIMEOUT"));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("replies held behind a slow one past the soft limit pause that client, not the worker", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${a.port}:1 a`, `127.0.0.1:${b.port}:1 b`],
    client_output_soft_limit: 1024 * 1024,
  }]);
  await using setup = await RespClient.connect(aster.ports[0]);
  await using directA = await RespClient.connect(a.port);
  await using directB = await RespClient.connect(b.port);
  const value = "x".repeat(512 * 1024);
  let keyA = "";
  let keyB = "";
  for (let i = 0; (keyA === "" || keyB === "") && i < 100; i++) {
    const key = `k${i}`;
    await setup.command("SET", key, value);
    if (keyA === "" && await directA.command("EXISTS", key) === 1) keyA = key;
    if (keyB === "" && await directB.command("EXISTS", key) === 1) keyB = key;
  }
  assert.ok(keyA !== "" && keyB !== "", "a key on each node");
  // Node a answers 1.5 s late: 3 MiB of node b's replies wait behind it, the writer idle.
  await directA.command("CLIENT", "PAUSE", "1500", "ALL");
  await using client = await RespClient.connect(aster.ports[0]);
  await client.sendRaw(`GET ${keyA}\r\n` + `GET ${keyB}\r\n`.repeat(6));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await client.sendRaw("PING\r\n"); // read while over the soft limit: reading pauses
  await new Promise((resolve) => setTimeout(resolve, 100));
  await using other = await RespClient.connect(aster.ports[0]);
  assert.equal(await _within(other.command("PING"), 4000), "PONG", "another client is served");
  for (let i = 0; i < 7; i++) {
    const reply = await _within(client.readReply(), 4000);
    assert.equal(text(reply), value, `reply ${i} arrives once node a resumes`);
  }
  assert.equal(await _within(client.readReply(), 4000), "PONG", "then the paused read resumes");
});
