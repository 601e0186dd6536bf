/** SIGTERM: stop accepting, let requests in flight finish within shutdown_timeout, exit 0. */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

/** True once connecting to `port` is refused, tried every 50 ms for up to `withinMs`. */
async function refusedWithin(port: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("SIGTERM lets a request in flight finish, refuses new clients, exits 0", async () => {
  await using redis = await startRedis();
  const aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    shutdown_timeout: 5000,
    read_timeout: 5000,
  }]);
  try {
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("SET", "k", "v"), "OK");
    redis.kill("SIGSTOP");
    await client.sendRaw("GET k\r\n");
    await new Promise((resolve) => setTimeout(resolve, 100));
    aster.kill("SIGTERM");
    // The listener closes within a few turns of the signal; a busy machine may take longer.
    assert.ok(await refusedWithin(aster.ports[0], 2000), "no new clients once stopping");
    redis.kill("SIGCONT");
    assert.equal(text(await client.readReply()), "v", "the request in flight got its reply");
    assert.ok(await client.closedWithin(3000), "then the client is closed");
    assert.equal(await aster.exited, 0);
  } finally {
    redis.kill("SIGCONT");
    await aster.stop();
  }
});

Deno.test("shutdown_timeout bounds the wait for a stalled backend", async () => {
  await using redis = await startRedis();
  const aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    shutdown_timeout: 300,
    read_timeout: 60_000,
  }]);
  try {
    await using client = await RespClient.connect(aster.ports[0]);
    redis.kill("SIGSTOP");
    await client.sendRaw("GET k\r\n");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    aster.kill("SIGTERM");
    assert.equal(await aster.exited, 0);
    const took = Date.now() - started;
    assert.ok(took < 3000, `stopped in ${took} ms`);
    assert.ok(await client.closedWithin(1000));
  } finally {
    redis.kill("SIGCONT");
    await aster.stop();
  }
});

Deno.test("SIGTERM: a half-closed client still owed replies gets them all", async () => {
  // Its read loop ended at its EOF while its requests waited at a stalled backend: the drain
  // waited only for read loops, so Aster closed its backends at once (the requests got
  // "connection closed by proxy") and exited. It now waits for every session to close.
  await using redis = await startRedis();
  const aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    shutdown_timeout: 10_000,
    read_timeout: 10_000,
  }]);
  try {
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("SET", "k", "v"), "OK");
    redis.kill("SIGSTOP");
    await client.sendRaw("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".repeat(10)); // within the in-flight budget
    await client.closeWrite();
    // Aster reads them (and the FIN) before the stop, or the stop drops them unread.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    aster.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 500));
    redis.kill("SIGCONT");
    for (let i = 0; i < 10; i++) assert.equal(text(await client.readReply()), "v", `reply ${i}`);
    assert.ok(await client.closedWithin(3000), "then the client is closed");
    assert.equal(await aster.exited, 0);
  } finally {
    redis.kill("SIGCONT");
    await aster.stop();
  }
});
