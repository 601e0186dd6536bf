/** Front-end AUTH gating and backend passwords, against real redis-servers. */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

function errorText(value: unknown): string {
  assert.ok(value instanceof RespErrorReply, `expected an error, got ${JSON.stringify(value)}`);
  return value.message;
}

Deno.test("password: only AUTH, HELLO, PING and QUIT work until the client authenticates", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    password: "front-secret",
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  assert.equal(await client.command("PING"), "PONG");
  assert.match(errorText(await client.command("GET", "k")), /^NOAUTH Authentication required/);
  assert.match(errorText(await client.command("SET", "k", "v")), /^NOAUTH/);
  assert.match(errorText(await client.command("AUTH", "wrong")), /^WRONGPASS/);
  assert.match(errorText(await client.command("MGET", "a", "b")), /^NOAUTH/);
  assert.equal(await client.command("AUTH", "front-secret"), "OK");
  assert.equal(await client.command("SET", "k", "v"), "OK");
  assert.equal(text(await client.command("GET", "k")), "v");

  await using viaHello = await RespClient.connect(aster.ports[0]);
  const hello = await viaHello.command("HELLO", "2", "AUTH", "default", "front-secret");
  assert.ok(Array.isArray(hello));
  assert.equal(text(await viaHello.command("GET", "k")), "v");

  await using quitter = await RespClient.connect(aster.ports[0]);
  assert.equal(await quitter.command("QUIT"), "OK");
  assert.ok(await quitter.closedWithin(2000));
  assert.ok(!aster.log().includes("front-secret"), "the password never reaches the log");
});

Deno.test("backend_password: Aster authenticates its backend connections", async () => {
  await using redis = await startRedis({ args: ["--requirepass", "back-secret"] });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    backend_password: "back-secret",
  }], { env: { ASTER_LOG: "info" } });
  await using client = await RespClient.connect(aster.ports[0]);
  assert.equal(await client.command("SET", "k", "v"), "OK");
  assert.equal(text(await client.command("GET", "k")), "v");
  assert.ok(!aster.log().includes("back-secret"));
});

Deno.test("a wrong backend_password fails requests fast with the server's refusal", async () => {
  await using redis = await startRedis({ args: ["--requirepass", "back-secret"] });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    backend_password: "not-it",
  }], { env: { ASTER_LOG: "warn" } });
  await using client = await RespClient.connect(aster.ports[0]);
  const started = Date.now();
  const message = errorText(await client.command("GET", "k"));
  assert.ok(Date.now() - started < 2000);
  assert.match(message, /backend/);
  for (let i = 0; i < 50 && !/WRONGPASS/.test(aster.log()); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.match(aster.log(), /handshake refused by .*WRONGPASS/);
  assert.ok(!aster.log().includes("not-it"));
});
