/**
 * After a burst of clients leaves, the worker gives the memory back once (a full GC and
 * malloc_trim, `src/worker/burst_release.ts`); its log says so. RSS itself is too noisy for
 * a test: `bench --only scale` measures it.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { startRedis } from "./helpers/servers.ts";
import { BURST_CLIENTS, BURST_QUIET_MS } from "../src/worker/burst_release.ts";

/** Clients of the burst: enough to count as one. */
const CLIENTS = BURST_CLIENTS + 100;
/** Connections opened at once (under the accept backlog). */
const CONNECT_BATCH = 250;
/** How long the log line may take after the clients left, ms. */
const WAIT_MS = BURST_QUIET_MS + 5000;
const RELEASED = /a burst of clients left, memory given back/;

testBothIo("a burst of clients that left has its memory given back, once", async () => {
  await using redis = await startRedis();
  await using aster = await startAster(
    [{ servers: [`127.0.0.1:${redis.port}:1`], max_clients: CLIENTS + 100 }],
    { env: { ASTER_LOG: "info" } },
  );
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < CLIENTS; i += CONNECT_BATCH) {
      const batch = Math.min(CONNECT_BATCH, CLIENTS - i);
      conns.push(
        ...await Promise.all(
          Array.from(
            { length: batch },
            () => Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] }),
          ),
        ),
      );
    }
    // Every client is a session once one round trip went through (the last one accepted).
    const ping = new TextEncoder().encode("*1\r\n$4\r\nPING\r\n");
    await conns[conns.length - 1].write(ping);
    const buf = new Uint8Array(16);
    assert.equal(
      new TextDecoder().decode(buf.subarray(0, await conns.at(-1)!.read(buf) ?? 0)),
      "+PONG\r\n",
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.doesNotMatch(aster.log(), RELEASED, "nothing given back while the clients are there");
  } finally {
    for (const conn of conns) conn.close();
  }
  const deadline = Date.now() + WAIT_MS;
  while (!RELEASED.test(aster.log()) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.match(aster.log(), RELEASED);
  // Once per burst: no second release while the count stays low.
  await new Promise((resolve) => setTimeout(resolve, BURST_QUIET_MS + 500));
  assert.equal(aster.log().match(new RegExp(RELEASED, "g"))?.length, 1);
});
