/** A cluster's workers agree: one set of pings and one slot map fetch serve them all. */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { nodeCommand, startRedisCluster } from "./helpers/redis_cluster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `calls` of one command in a redis-server's INFO commandstats (0 when absent). */
async function calls(port: number, command: string): Promise<number> {
  const info = String(text(await nodeCommand(port, ["INFO", "commandstats"])));
  const match = new RegExp(`cmdstat_${command.replace("|", "\\|")}:calls=(\\d+)`).exec(info);
  return match ? Number(match[1]) : 0;
}

Deno.test("thread = 3: only the leader pings, and its ejection reaches every worker", async () => {
  await using a = await startRedis();
  await using b = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${a.port}:1 a`, `127.0.0.1:${b.port}:1 b`],
    thread: 3,
    ping_fail_limit: 2,
    ping_interval: 100,
    read_timeout: 300,
    dial_timeout: 200,
  }]);
  const before = await calls(a.port, "ping");
  await sleep(1000);
  const pings = await calls(a.port, "ping") - before;
  assert.ok(pings >= 6 && pings <= 14, `one worker pings every 100 ms: ${pings} pings in 1 s`);

  await b.stop();
  await sleep(800); // two failed pings, then the ejection is shared
  // Many connections, spread over the three workers by the kernel: every one of them must
  // already route b's keys to a (no worker still sending them to the dead node).
  const clients: RespClient[] = [];
  try {
    for (let i = 0; i < 30; i++) clients.push(await RespClient.connect(aster.ports[0]));
    for (const [i, client] of clients.entries()) {
      for (let k = 0; k < 20; k++) {
        const reply = await client.command("SET", `key-${i}-${k}-x${k * 7919}`, "v");
        assert.equal(reply, "OK", `client ${i} key ${k}: ${JSON.stringify(reply)}`);
      }
    }
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("redis_cluster with thread = 3: one CLUSTER SLOTS fetch serves every worker", async () => {
  await using cluster = await startRedisCluster();
  const ports = cluster.nodes.map((node) => node.port);
  const fetches = async () => {
    let total = 0;
    for (const port of ports) total += await calls(port, "cluster|slots");
    return total;
  };
  const before = await fetches();
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    thread: 3,
  }]);
  const clients: RespClient[] = [];
  try {
    for (let i = 0; i < 30; i++) clients.push(await RespClient.connect(aster.ports[0]));
    for (const [i, client] of clients.entries()) {
      assert.equal(await client.command("SET", `k{${i}}`, `${i}`), "OK");
      assert.equal(text(await client.command("GET", `k{${i}}`)), `${i}`);
    }
  } finally {
    for (const client of clients) client.close();
  }
  assert.equal(await fetches() - before, 1, "the leader fetched once for all three workers");
});
