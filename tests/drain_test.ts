/**
 * Graceful stop in front of a load balancer: on SIGTERM /healthz turns 503 "draining" first,
 * the listener keeps accepting for `drain_delay`, and only then stops accepting and drains.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

async function healthz(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: response.status, body: await response.text() };
}

/** True when 127.0.0.1:`port` refuses connections. */
async function refuses(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

Deno.test("SIGTERM: /healthz is 503 draining while new clients are still served for drain_delay", async () => {
  await using redis = await startRedis();
  const metricsPort = await freePort();
  await using aster = await startAster([{
    name: "d",
    servers: [`127.0.0.1:${redis.port}:1 r1`],
    thread: 2,
    drain_delay: 2000,
    shutdown_timeout: 2000,
  }], { args: ["-m", String(metricsPort)] });
  assert.deepEqual(await healthz(metricsPort), { status: 200, body: "ok\n" });
  await using early = await RespClient.connect(aster.ports[0]);
  assert.equal(await early.command("SET", "drain:a", "1"), "OK");

  const termAt = performance.now();
  aster.kill("SIGTERM");
  let health = await healthz(metricsPort);
  for (let i = 0; i < 50 && health.status === 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    health = await healthz(metricsPort);
  }
  assert.equal(health.status, 503);
  assert.match(health.body, /^draining/);
  // Not ready, yet still accepting: a balancer that has not yet seen the 503 loses nothing.
  await using late = await RespClient.connect(aster.ports[0]);
  assert.equal(text(await late.command("GET", "drain:a")), "1");
  assert.equal(await early.command("SET", "drain:b", "2"), "OK");
  assert.ok(performance.now() - termAt < 2000, "checked within drain_delay");

  // After drain_delay the port closes and the process exits cleanly.
  let closed = false;
  for (let i = 0; i < 100 && !closed; i++) {
    await new Promise((r) => setTimeout(r, 50));
    closed = await refuses(aster.ports[0]);
  }
  assert.ok(closed, "the listener closed after drain_delay");
  assert.ok(performance.now() - termAt >= 1900, "not before drain_delay");
  assert.equal(await aster.exited, 0);
});
