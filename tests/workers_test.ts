/**
 * `thread = 4`: four Web Workers share one listen port (reusePort), each a complete data
 * plane with its own backend connections. Many clients are spread over them and every
 * one is served correctly.
 */

import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { spreadKeys } from "./helpers/keys.ts";
import { RespClient, type RespValue, text } from "./helpers/resp_client.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

const HOST = "127.0.0.1";
const THREADS = 4;
const CLIENTS = 40;
const KEYS_PER_CLIENT = 25;

Deno.test("thread = 4 serves one port from four workers, each with its own backend connections", async () => {
  await using stack = new AsyncDisposableStack();
  const redis: ServerProcess[] = [];
  for (let i = 0; i < 2; i++) redis.push(stack.use(await startRedis()));
  const aster = stack.use(
    await startAster([{
      name: "wk",
      thread: THREADS,
      servers: redis.map((r) => `${HOST}:${r.port}:1`),
    }], { env: { ASTER_LOG: "debug" } }),
  );
  const port = aster.ports[0];

  // startAster returns once the port accepts, which the first worker does; the supervisor
  // logs "serving" once all four are up.
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 400 && Date.now() < deadline; i++) {
    if (/INFO serving wk: /.test(aster.log())) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.match(aster.log(), /INFO serving wk: redis on .*thread=4/);
  // Every worker reported its own listener on the one address.
  const started = [
    ...aster.log().matchAll(/\[wk#(\d+)\] cluster wk: redis on 127\.0\.0\.1:(\d+)/g),
  ];
  assert.deepEqual(started.map((m) => Number(m[1])).sort(), [0, 1, 2, 3], aster.log());
  assert.ok(started.every((m) => Number(m[2]) === port));

  // Each worker opened one connection to each backend (node_connections = 1).
  for (const server of redis) {
    const conns = await _asterConnections(server.port, THREADS);
    assert.equal(conns.length, THREADS, `connections from aster on ${server.port}`);
  }

  // 40 clients at once, each writing and reading its own keys.
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, () => RespClient.connect(port)),
  );
  for (const client of clients) stack.use(client);
  await Promise.all(clients.map((client, c) => _exercise(client, c)));

  // More than one worker ran client commands: on a backend, more than one of the four
  // aster connections has executed a command (cmd=NULL means it never did).
  const used = await Promise.all(redis.map(async (server) => {
    const conns = await _asterConnections(server.port, THREADS);
    return conns.filter((line) => !/ cmd=NULL( |$)/.test(line)).length;
  }));
  assert.ok(Math.max(...used) > 1, `only one worker sent commands: ${used}`);

  // A key written through one worker is read back through the others.
  await using reader = await RespClient.connect(port);
  for (let c = 0; c < CLIENTS; c += 7) {
    const keys = _keys(c);
    const replies = await reader.pipeline(keys.map((key) => ["GET", key]));
    assert.deepEqual(replies.map(text), keys.map((key) => _value(c, key)));
  }

  // Each client was served by exactly one worker, and more than one worker served. The
  // startup probe of startAster left long ago: count only what leaves from here on.
  const before = _clientsLeft(aster.log());
  for (const client of clients) client.close();
  reader.close();
  const goal = _sum(before) + CLIENTS + 1;
  const leftBy = Date.now() + 5000;
  let after = before;
  for (let i = 0; i < 200 && Date.now() < leftBy && _sum(after) < goal; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    after = _clientsLeft(aster.log());
  }
  assert.equal(_sum(after), goal, aster.log().slice(-2000));
  const served = [...after].filter(([tag, n]) => n > (before.get(tag) ?? 0)).map(([tag]) => tag);
  assert.ok(served.length > 1, `every client went to one worker: ${served}`);
  assert.equal(await aster.stop(), 0);
});

function _keys(client: number): string[] {
  return spreadKeys(`w${client}`, KEYS_PER_CLIENT);
}

function _value(client: number, key: string): string {
  return `client-${client}-value-of-${key}`;
}

/** One client's work: pipelined SETs, single GETs, a pipelined read-back. */
async function _exercise(client: RespClient, c: number): Promise<void> {
  const keys = _keys(c);
  const sets = await client.pipeline(keys.map((key) => ["SET", key, _value(c, key)]));
  assert.deepEqual(sets, keys.map(() => "OK"), `client ${c} SETs`);
  for (const key of keys.slice(0, 5)) {
    assert.equal(text(await client.command("GET", key)), _value(c, key), `client ${c} GET`);
  }
  const gets = await client.pipeline(keys.map((key) => ["GET", key]));
  assert.deepEqual(gets.map(text), keys.map((key) => _value(c, key)), `client ${c} GETs`);
  assert.equal(await client.command("PING"), "PONG");
}

/**
 * CLIENT LIST lines of every connection to the redis-server on `port` except our own;
 * polls (bounded) until there are `expected` of them, since connects are asynchronous.
 */
async function _asterConnections(port: number, expected: number): Promise<string[]> {
  await using direct = await RespClient.connect(port);
  direct.timeoutMs = 2000;
  const ownId = await direct.command("CLIENT", "ID") as number;
  let lines: string[] = [];
  const deadline = Date.now() + 3000;
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    const list = text(await direct.command("CLIENT", "LIST") as RespValue) as string;
    lines = list.split("\n").filter((line) =>
      line.startsWith("id=") && !line.startsWith(`id=${ownId} `)
    );
    if (lines.length === expected) break;
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return lines;
}

/** "client N left" debug lines per worker tag. */
function _clientsLeft(log: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of log.matchAll(/\[(wk#\d+)\] client \d+ left/g)) {
    counts.set(match[1], (counts.get(match[1]) ?? 0) + 1);
  }
  return counts;
}

function _sum(counts: Map<string, number>): number {
  return [...counts.values()].reduce((a, b) => a + b, 0);
}
