/** SIGTERM: stop accepting, let requests in flight finish within shutdown_timeout, exit 0. */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
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
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(await refused(aster.ports[0]), "no new clients once stopping");
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
