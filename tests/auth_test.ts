/** Front-end AUTH gating and backend passwords, against real redis-servers. */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { decodeReplyValue } from "../src/protocol/resp/reply_value.ts";

function errorText(value: unknown): string {
  assert.ok(value instanceof RespErrorReply, `expected an error, got ${JSON.stringify(value)}`);
  return value.message;
}

Deno.test("password: only AUTH, HELLO and QUIT work until the client authenticates", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    password: "front-secret",
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  // As redis-server with requirepass: PING is no health check (use /healthz).
  assert.equal(errorText(await client.command("PING")), "NOAUTH Authentication required.");
  assert.match(errorText(await client.command("GET", "k")), /^NOAUTH Authentication required/);
  assert.match(errorText(await client.command("SET", "k", "v")), /^NOAUTH/);
  assert.match(errorText(await client.command("AUTH", "wrong")), /^WRONGPASS/);
  assert.match(errorText(await client.command("MGET", "a", "b")), /^NOAUTH/);
  assert.equal(await client.command("AUTH", "front-secret"), "OK");
  assert.equal(await client.command("PING"), "PONG");
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

/**
 * Byte-for-byte against redis-server 7 (redis_version and the client id in HELLO's reply
 * aside): each session runs on a fresh connection to a redis-server and to Aster in front
 * of it, with the same password on both, or none.
 */
const AUTH_SESSIONS_WITH_PASSWORD: string[][][] = [
  [
    ["PING"],
    ["PING", "hi"],
    ["PING", "a", "b"],
    ["ECHO", "a"],
    ["GET", "k"],
    ["SET", "k", "v"],
    ["MGET", "a", "b"],
    ["SELECT", "0"],
    ["INFO"],
    ["COMMAND", "COUNT"],
    ["CLUSTER", "SLOTS"],
    ["SUBSCRIBE", "ch"],
    ["MULTI"],
    // EXEC refused before AUTH: EXECABORT because of NOAUTH, as Redis rejects an EXEC.
    ["EXEC"],
    ["BLPOP", "list", "1"],
    ["KEYS", "*"],
    ["GET"],
    ["NOSUCH", "x"],
    ["AUTH"],
    ["AUTH", "a", "b", "c"],
    ["AUTH", "wrong"],
    ["AUTH", "default", "wrong"],
    ["AUTH", "alice", "front-secret"],
    ["HELLO"],
    ["HELLO", "2"],
    ["HELLO", "1"],
    ["HELLO", "4"],
    ["HELLO", "-1"],
    ["HELLO", "x"],
    ["HELLO", "02"],
    ["HELLO", "+2"],
    ["HELLO", "2", "SETNAME", "name"],
    ["HELLO", "2", "SETNAME", "a b"],
    ["HELLO", "2", "AUTH", "default"],
    ["HELLO", "2", "auth", "default"],
    ["HELLO", "2", "Foo"],
    ["HELLO", "2", "AUTH", "default", "wrong"],
    ["HELLO", "2", "AUTH", "default", "wrong", "Foo"],
    ["HELLO", "2", "AUTH", "alice", "front-secret"],
    ["PING"],
    ["AUTH", "front-secret"],
    ["PING"],
    ["GET", "k"],
    ["AUTH", "wrong"],
    ["PING"],
    ["HELLO"],
    ["HELLO", "2"],
  ],
  [["HELLO", "2", "AUTH", "default", "front-secret", "SETNAME", "n"], ["PING"], ["GET", "k"]],
  // An AUTH option that succeeded holds although a later option is refused (Redis 7.0).
  [["HELLO", "2", "AUTH", "default", "front-secret", "Foo"], ["PING"]],
  [["HELLO", "2", "AUTH", "default", "front-secret", "SETNAME", "a b"], ["PING"]],
  [["HELLO", "2", "SETNAME", "a b", "AUTH", "default", "front-secret"], ["PING"]],
  [["AUTH", "default", "front-secret"], ["ECHO", "in"]],
  // RESP3: HELLO 3 with AUTH and SETNAME, replies in RESP3 until RESET (which also logs out).
  [
    ["HELLO", "3"],
    ["HELLO", "3", "AUTH", "default", "wrong"],
    ["HELLO", "3", "AUTH", "default", "front-secret", "SETNAME", "n3"],
    ["GET", "nokey"],
    ["CLIENT", "GETNAME"],
    ["HGETALL", "nohash"],
    ["HELLO"],
    ["HELLO", "4"],
    ["GET", "nokey"],
    ["RESET"],
    ["PING"],
    ["HELLO", "3", "AUTH", "default", "front-secret"],
    ["GET", "nokey"],
    ["HELLO", "2"],
    ["GET", "nokey"],
  ],
  [["HELLO", "3", "AUTH", "default", "front-secret", "Foo"], ["PING"], ["GET", "nokey"]],
  [["QUIT"]],
];

const AUTH_SESSIONS_WITHOUT_PASSWORD: string[][][] = [
  [
    ["AUTH", "x"],
    ["AUTH", "default", "x"],
    ["AUTH", "alice", "x"],
    ["AUTH", "a", "b", "c"],
    ["AUTH"],
    ["HELLO", "2", "AUTH", "default", "x"],
    ["HELLO", "2", "AUTH", "alice", "x"],
    ["HELLO", "2", "AUTH", "default"],
    ["HELLO", "2", "SETNAME", ""],
    ["HELLO"],
    ["PING"],
  ],
  [
    ["HELLO", "3"],
    ["GET", "nokey"],
    ["HELLO", "3", "SETNAME", "x"],
    ["CLIENT", "GETNAME"],
    ["HELLO", "3", "SETNAME", ""],
    ["CLIENT", "GETNAME"],
    ["HELLO", "2"],
    ["GET", "nokey"],
  ],
];

Deno.test("AUTH, HELLO and the NOAUTH gate answer byte for byte as redis-server 7", async () => {
  for (const password of ["front-secret", null]) {
    const auth = password === null ? [] : ["--requirepass", password];
    await using redis = await startRedis({ args: auth });
    await using aster = await startAster([{
      servers: [`127.0.0.1:${redis.port}`],
      ...(password === null ? {} : { password, backend_password: password }),
    }]);
    const sessions = password === null
      ? AUTH_SESSIONS_WITHOUT_PASSWORD
      : AUTH_SESSIONS_WITH_PASSWORD;
    for (const session of sessions) {
      await using direct = await RespClient.connect(redis.port);
      await using proxied = await RespClient.connect(aster.ports[0]);
      for (const command of session) {
        const expected = await _rawCommand(direct, command);
        const got = await _rawCommand(proxied, command);
        assert.equal(
          _comparable(got),
          _comparable(expected),
          `password ${password === null ? "none" : "set"}: ${command.join(" ")}`,
        );
      }
      if (session.at(-1)![0] === "QUIT") {
        assert.ok(await direct.closedWithin(2000));
        assert.ok(await proxied.closedWithin(2000), "Aster closes after QUIT");
      }
    }
  }
});

Deno.test("password: RESET answers +RESET before and after AUTH, and drops the authentication", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    password: "front-secret",
  }]);
  await using before = await RespClient.connect(aster.ports[0]);
  await using after = await RespClient.connect(aster.ports[0]);
  assert.equal(await after.command("AUTH", "front-secret"), "OK");
  assert.equal(await after.command("CLIENT", "SETNAME", "named"), "OK");
  // As redis-server: no NOAUTH for RESET, and the client is a new one after it.
  assert.equal(await before.command("RESET"), "RESET");
  assert.equal(await after.command("RESET"), "RESET");
  assert.match(errorText(await after.command("GET", "k")), /^NOAUTH/);
  assert.equal(await after.command("AUTH", "front-secret"), "OK");
  assert.equal(await after.command("CLIENT", "GETNAME"), null);
});

async function _rawCommand(client: RespClient, command: string[]): Promise<string> {
  await client.sendRaw(
    command.map((arg) => `$${arg.length}\r\n${arg}\r\n`).join("").replace(
      /^/,
      `*${command.length}\r\n`,
    ),
  );
  return new TextDecoder().decode(await client.readRawReply());
}

/**
 * The reply's bytes, except that a HELLO map has its `version` and `id` values blanked:
 * Aster's version is its own (another issue) and client ids differ between servers.
 */
function _comparable(raw: string): string {
  // HELLO's reply: an array under RESP2, a map under RESP3 (its type kept in the result).
  if (!raw.startsWith("*14\r\n$6\r\nserver") && !raw.startsWith("%7\r\n$6\r\nserver")) return raw;
  const fields = decodeReplyValue(new TextEncoder().encode(raw)).value as RespValue[];
  return raw[0] + JSON.stringify(
    fields.map((value, i) => {
      const key = i % 2 === 1 ? text(fields[i - 1]) : null;
      return key === "version" || key === "id" ? "<blank>" : text(value);
    }),
  );
}
