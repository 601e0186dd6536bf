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

Deno.test("before AUTH a request is limited as redis-server limits it; after, Redis 7's limits", async () => {
  await using redis = await startRedis({ args: ["--requirepass", "front-secret"] });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    password: "front-secret",
    backend_password: "front-secret",
  }]);
  const request = (...args: string[]) => _request(args);
  await using admin = await RespClient.connect(redis.port);
  assert.equal(await admin.command("AUTH", "front-secret"), "OK");
  const members = (count: number, prefix: string) =>
    Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const auth = request("AUTH", "front-secret");
  // Each session: its bytes, the replies it gets, and whether the server closes after them.
  const sessions: [string, string, number, boolean][] = [
    ["11 arguments before AUTH", _request(["SADD", "s", ...members(9, "m")]), 1, true],
    ["a 16,385-byte argument before AUTH", request("ECHO", "x".repeat(16_385)), 1, true],
    [
      "10 arguments, 16 KB each, before AUTH",
      _request(["SADD", "v", ...members(8, "x".repeat(16_380))]),
      1,
      false,
    ],
    // AUTH lifts the limits for the very next request of the same write.
    ["after AUTH in one write", auth + _request(["SADD", "t", ...members(20, "m")]), 2, false],
    // A request of many arguments after AUTH (Aster takes up to 1,048,576).
    ["1,000,000 arguments", auth + _request(["SADD", "u", ...members(1_000_000, "")]), 2, false],
  ];
  for (const [what, bytes, count, closes] of sessions) {
    const replies: string[][] = [];
    for (const port of [redis.port, aster.ports[0]]) {
      await using client = await RespClient.connect(port);
      client.timeoutMs = 20_000;
      await client.sendRaw(bytes);
      const got: string[] = [];
      for (let i = 0; i < count; i++) {
        got.push(new TextDecoder().decode(await client.readRawReply()));
      }
      assert.equal(
        await client.closedWithin(closes ? 2000 : 200),
        closes,
        `${what} (port ${port})`,
      );
      replies.push(got);
      assert.equal(await admin.command("FLUSHALL"), "OK"); // the same keys, anew, for the next
    }
    assert.deepEqual(replies[1], replies[0], what);
  }
});

/** A RESP request of `args` (ASCII), for arrays of any length. */
function _request(args: string[]): string {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${arg.length}\r\n${arg}\r\n`);
  return parts.join("");
}
