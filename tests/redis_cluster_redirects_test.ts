/**
 * redis_cluster mode: redirects Aster must not take on trust, and redirects on dedicated
 * connections. A script's error reply is the script's own text, so one reading "MOVED ..."
 * or "TRYAGAIN ..." is no redirect: Aster used to follow it (running the script again, and
 * sending other clients' requests for the slot to whatever address it named). A blocking
 * command, a transaction or a subscription on a dedicated connection meets the cluster's
 * real redirects after a reshard or failover: those must refresh the slot map, and a
 * blocking command is sent again where the redirect points.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { nodeCommand, settledMasters, startRedisCluster } from "./helpers/redis_cluster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { freePort } from "./helpers/servers.ts";
import { keySlot } from "../src/hash/key_slot.ts";

const encoder = new TextEncoder();

function _slot(key: string): number {
  return keySlot(encoder.encode(key));
}

function _errorText(value: unknown): string {
  assert.ok(
    value instanceof RespErrorReply,
    `expected an error, got ${JSON.stringify(text(value as never))}`,
  );
  return value.message;
}

/** A listener that records whatever connects to it and answers every read with `+forged`. */
function _fakeNode(port: number): { received: () => string; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  let received = "";
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (let i = 0; i < 1000; i++) {
            const n = await conn.read(buf);
            if (n === null) return;
            received += new TextDecoder().decode(buf.subarray(0, n));
            await conn.write(encoder.encode("+forged\r\n"));
          }
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    received: () => received,
    close: () => {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** Aster's INFO stats redirects_moved (one worker: `thread = 1`). */
async function _movedCount(port: number): Promise<number> {
  await using client = await RespClient.connect(port);
  const info = text(await client.command("INFO", "stats")) as string;
  return Number(/redirects_moved:(\d+)/.exec(info)?.[1] ?? NaN);
}

async function _waitFor(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("redis_cluster mode: script errors are no redirects; pinned requests follow real ones", async (t) => {
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    read_timeout: 2000,
  }]);
  await settledMasters(cluster);
  const port = aster.ports[0];
  await using client = await RespClient.connect(port);
  client.timeoutMs = 10_000;

  // First: no MOVED has reached this Aster yet, so nothing else refreshes its map meanwhile.
  await t.step("a transaction after a reshard fails at most once, then works", async () => {
    const key = "{tx-reshard}a";
    const slot = _slot(key);
    assert.equal(await client.command("SET", key, "0"), "OK");
    const source = await cluster.ownerOf(slot);
    const target = (await cluster.masters()).find((m) => m.port !== source.port)!;
    await cluster.migrateSlot(slot, target);
    const transaction = async () => {
      await using tx = await RespClient.connect(port);
      return await tx.pipeline([["MULTI"], ["INCR", key], ["EXEC"]]);
    };
    // The first may meet the MOVED (and ask for a fresh map); the next one must not.
    await transaction();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const replies = await transaction();
    assert.ok(Array.isArray(replies[2]), Deno.inspect(replies));
  });

  await t.step(
    "a script returning TRYAGAIN or CLUSTERDOWN runs once, its error as sent",
    async () => {
      for (const code of ["TRYAGAIN", "CLUSTERDOWN"]) {
        const key = `{script-${code}}c`;
        const reply = await client.command(
          "EVAL",
          `redis.call('incr', KEYS[1]); return redis.error_reply('${code} made by the script')`,
          "1",
          key,
        );
        assert.equal(_errorText(reply), `${code} made by the script`);
        assert.equal(text(await client.command("GET", key)), "1", `${code}: the script ran once`);
      }
      const fcallLike = await client.command(
        "EVAL",
        "return redis.error_reply('ASK 1 127.0.0.1:1')",
        "0",
      );
      assert.equal(_errorText(fcallLike), "ASK 1 127.0.0.1:1");
    },
  );

  await t.step("a script's MOVED sends nobody's requests to the address it names", async () => {
    const fakePort = await freePort();
    const fake = _fakeNode(fakePort);
    try {
      const victimKey = "user:42";
      const slot = _slot(victimKey);
      const forged = `MOVED ${slot} 127.0.0.1:${fakePort}`;
      // Keyless (Redis never redirects those) and keyed on the victim's slot (the node that
      // ran it owns the slot: a fresh map says so).
      assert.equal(
        _errorText(await client.command("EVAL", `return redis.error_reply('${forged}')`, "0")),
        forged,
      );
      assert.equal(
        _errorText(
          await client.command("EVAL", `return redis.error_reply('${forged}')`, "1", victimKey),
        ),
        forged,
      );
      await using victim = await RespClient.connect(port);
      assert.equal(await victim.command("SET", victimKey, "secret"), "OK");
      assert.equal(text(await victim.command("GET", victimKey)), "secret");
      assert.equal(fake.received(), "", "nothing reached the address the script named");
      const owner = await cluster.ownerOf(slot);
      assert.equal(text(await nodeCommand(owner.port, ["GET", victimKey])), "secret");
    } finally {
      fake.close();
    }
  });

  await t.step("a script's MOVED from a node that lost the slot is followed", async () => {
    const key = "{moved-script}k";
    const slot = _slot(key);
    assert.equal(await client.command("SET", key, "v1"), "OK"); // Aster learns the owner
    const masters = await cluster.masters();
    const source = await cluster.ownerOf(slot);
    const target = masters.find((m) => m.port !== source.port)!;
    await cluster.migrateSlot(slot, target);
    const moved = await _movedCount(port);
    const reply = await client.command("EVAL", "return redis.call('get', KEYS[1])", "1", key);
    assert.equal(text(reply), "v1");
    assert.equal(await _movedCount(port), moved + 1, "the MOVED was followed");
  });

  await t.step("BLPOP follows a MOVED from the slot's old owner", async () => {
    const key = "{blpop-moved}list";
    const slot = _slot(key);
    assert.equal(await client.command("DEL", key), 0); // Aster learns the owner
    const source = await cluster.ownerOf(slot);
    const target = (await cluster.masters()).find((m) => m.port !== source.port)!;
    await cluster.migrateSlot(slot, target);
    const moved = await _movedCount(port);
    await using blocked = await RespClient.connect(port);
    blocked.timeoutMs = 10_000;
    const popped = blocked.command("BLPOP", key, "5");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await nodeCommand(target.port, ["RPUSH", key, "x"]), 1);
    assert.deepEqual(text(await popped), [key, "x"]);
    assert.equal(await _movedCount(port), moved + 1, "the MOVED was followed");
  });
});

Deno.test("redis_cluster mode: after a master is killed, subscribers and blocking commands find its heir", async () => {
  await using cluster = await startRedisCluster({ nodeTimeoutMs: 500 });
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    read_timeout: 1000,
  }]);
  await settledMasters(cluster);
  const port = aster.ports[0];
  // Classic channels live on slot 0's master: that is the one killed.
  const victim = await cluster.ownerOf(0);
  const [heir] = await cluster.replicasOf(victim);
  assert.ok(heir, "the victim has a replica");
  await using subscriber = await RespClient.connect(port);
  subscriber.timeoutMs = 15_000;
  assert.deepEqual(text(await subscriber.command("SUBSCRIBE", "news")), ["subscribe", "news", 1]);
  // A key of one of the victim's slots, for BLPOP.
  const key = Array.from({ length: 5000 }, (_, i) => `{kb${i}}list`).find((k) => _slot(k) < 100)!;
  victim.kill("SIGKILL");
  await cluster.waitHealthy(20_000);
  // No request goes over a shared connection from here on: nothing else refreshes the map.
  // One read pending throughout (a read cannot be taken back): each PUBLISH gives it 200 ms.
  const message = subscriber.readReply().then((value) => ({ value }));
  await _waitFor("a message published on the heir reaching the subscriber", async () => {
    await nodeCommand(heir.port, ["PUBLISH", "news", "hello"]);
    const got = await Promise.race([
      message,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 200)),
    ]);
    if (got === null) return false;
    assert.deepEqual(text(got.value), ["message", "news", "hello"]);
    return true;
  }, 10_000);
  await _waitFor("a BLPOP served by the heir", async () => {
    await using blocked = await RespClient.connect(port);
    blocked.timeoutMs = 5000;
    const reply = await blocked.command("BLPOP", key, "0.1");
    return reply === null;
  }, 10_000);
});

Deno.test("redis_cluster mode, thread = 2: a script's real MOVED is followed on every worker", async () => {
  // A follower worker's map comes from the leader: waiting for "a fresh map" must wait for
  // one fetched after the MOVED, not take the map it has.
  await using cluster = await startRedisCluster();
  await using aster = await startAster([{
    cache_type: "redis_cluster",
    servers: cluster.seeds(),
    thread: 2,
  }]);
  await settledMasters(cluster);
  const port = aster.ports[0];
  // Several connections: the kernel spreads them over both workers.
  const clients = await Promise.all(Array.from({ length: 8 }, () => RespClient.connect(port)));
  try {
    const key = "{followers}k";
    const slot = _slot(key);
    for (const client of clients) assert.equal(await client.command("SET", key, "v1"), "OK");
    const source = await cluster.ownerOf(slot);
    const target = (await cluster.masters()).find((m) => m.port !== source.port)!;
    await cluster.migrateSlot(slot, target);
    const replies = await Promise.all(
      clients.map((client) =>
        client.command("EVAL", "return redis.call('get', KEYS[1])", "1", key)
      ),
    );
    assert.deepEqual(replies.map(text), clients.map(() => "v1"));
  } finally {
    for (const client of clients) await client[Symbol.asyncDispose]();
  }
});
