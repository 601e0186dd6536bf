/**
 * Replies nested as deep as redis-server makes them (a Lua table that holds itself comes
 * back about 8000 arrays deep) pass through Aster byte for byte, and the backend
 * connection they share with other clients (node_connections = 1) stays up: the other
 * clients, busy at the same time, never see an error.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { RespClient } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";
import { sameBytes } from "./helpers/raw_reply.ts";

const encoder = new TextEncoder();

/** Scripts whose replies nest deeply (the first is the one from issue 26). */
const DEEP_SCRIPTS = [
  "local a = {}; local b = {a}; a[1] = b; return a",
  // A chain built in a loop, deeper than Lua's stack: redis-server cuts it with an error.
  "local t = {}; local c = t; for i = 1, 20000 do local n = {}; c[1] = n; c = n end; return t",
  // 3000 levels, under the cut: a complete reply ending in a number.
  "local t = {}; local c = t; for i = 1, 3000 do local n = {}; c[1] = n; c = n end; c[1] = 7; return t",
  // Wide and deep: two branches at each of 500 levels.
  "local t = {}; local c = t; for i = 1, 500 do local n = {}; c[1] = i; c[2] = n; c = n end; return t",
];

/** Sends one command on a fresh connection and returns the raw bytes of its reply. */
async function rawReply(port: number, args: string[]): Promise<Uint8Array> {
  await using client = await RespClient.connect(port);
  return await client.rawCommand(...args);
}

/** Nesting depth of a raw reply's leading run of one-element arrays. */
function leadingDepth(reply: Uint8Array): number {
  let depth = 0;
  while (reply[depth * 4] === 0x2a && reply[depth * 4 + 1] === 0x31) depth++;
  return depth;
}

Deno.test("redis mode: deep replies pass through whole, and clients sharing the backend connection never notice", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}:1`],
    node_connections: 1,
  }]);
  const port = aster.ports[0];

  // Other clients keep the shared connection busy the whole time, checking every reply.
  const CLIENTS = 5;
  const others = await Promise.all(
    Array.from({ length: CLIENTS }, () => RespClient.connect(port)),
  );
  let done = false;
  const problems: string[] = [];
  const rounds = new Array<number>(CLIENTS).fill(0);
  const busy = others.map(async (client, c) => {
    const deadline = Date.now() + 60_000;
    while (!done && Date.now() < deadline && rounds[c] < 100_000) {
      const n = rounds[c]++;
      const replies = await client.pipeline([
        ["SET", `other:${c}`, `${n}`],
        ["INCR", `count:${c}`],
        ["GET", `other:${c}`],
      ]);
      const expected = ["OK", n + 1, encoder.encode(`${n}`)];
      if (JSON.stringify(replies) !== JSON.stringify(expected)) {
        problems.push(`client ${c} round ${n}: ${JSON.stringify(replies)}`);
        return;
      }
    }
  });
  try {
    for (let round = 0; round < 3; round++) {
      for (const script of DEEP_SCRIPTS) {
        const args = ["EVAL", script, "0"];
        const direct = await rawReply(redis.port, args);
        const proxied = await rawReply(port, args);
        assert.ok(
          sameBytes(direct, proxied),
          `${script}: ${proxied.length} bytes through aster, ${direct.length} direct`,
        );
        if (script === DEEP_SCRIPTS[0]) {
          assert.ok(leadingDepth(direct) > 1000, `only ${leadingDepth(direct)} levels`);
        }
      }
    }
  } finally {
    done = true;
    await Promise.all(busy);
    for (const client of others) client.close();
  }
  assert.deepEqual(problems, []);
  for (const [c, n] of rounds.entries()) assert.ok(n > 0, `client ${c} made no progress`);
  // The connection never broke: Aster logged no backend failure.
  assert.doesNotMatch(aster.log(), /nested too deep|unavailable/);
});
