/**
 * What each idle client costs in V8's heap, and where it is allocated: one data plane
 * (`bench/plane_profile.ts`, in the main isolate so the inspector sees it) over one
 * redis-server, CLIENTS connections each after one PING; V8's heap used before and after
 * them (both after a full GC), and the live bytes per client by call site (the sampling heap
 * profiler with collected objects left out), largest first. RSS per client is noisier (about
 * ±0.2 KB between runs); this is the figure to compare changes with.
 *
 * Usage: deno run -A --unstable-net bench/idle_heap.ts [CLIENTS] [ffi|deno] [TOP]
 */
import { renderToml } from "../tests/helpers/aster.ts";
import { freePort, startRedis } from "../tests/helpers/servers.ts";
import { closeAll, CONNECT_BATCH, openConnections, roundTrip, WARM_UP_CLIENTS } from "./scale.ts";
import { allocationSites, type HeapProfileNode, openInspector } from "./heap_profile.ts";

const [clientsArg = "5000", io = "ffi", top = "25"] = Deno.args;
const clients = Number(clientsArg);
const PING = new TextEncoder().encode("*1\r\n$4\r\nPING\r\n");
/** How long the data plane serves (the probe ends well before). */
const SERVE_SECONDS = 300;
/** How long all round trips of one batch may take. */
const ROUND_TRIP_MS = 30_000;

/** Opens `count` connections, each after one PING round trip; returns them all. */
async function _pingClients(port: number, count: number): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  const signal = new AbortController().signal;
  for (let i = 0; i < count; i += CONNECT_BATCH) {
    const batch = await openConnections(port, {
      count: Math.min(CONNECT_BATCH, count - i),
      signal,
    });
    conns.push(...batch.conns);
    const deadline = Date.now() + ROUND_TRIP_MS;
    await Promise.all(batch.conns.map((conn) => roundTrip(conn, PING, "+PONG\r\n", deadline)));
  }
  return conns;
}

await using redis = await startRedis();
const port = await freePort();
const inspectorPort = await freePort();
const dir = await Deno.makeTempDir({ prefix: "aster-idle-heap-" });
const config = `${dir}/aster.toml`;
await Deno.writeTextFile(
  config,
  renderToml([{
    name: "idle",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${port}`,
    servers: [`127.0.0.1:${redis.port}:1 r0`],
    max_clients: clients + 1000,
    io,
  }]),
);
const plane = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    `--inspect=127.0.0.1:${inspectorPort}`,
    "--v8-flags=--max-semi-space-size=4",
    "-A",
    "--unstable-net",
    new URL("./plane_profile.ts", import.meta.url).pathname,
    config,
    String(SERVE_SECONDS),
  ],
  stdout: "null",
  stderr: "null",
}).spawn();
let conns: Deno.TcpConn[] = [];
try {
  const inspector = await openInspector(inspectorPort);
  try {
    closeAll(await _pingClients(port, WARM_UP_CLIENTS));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await inspector.send("HeapProfiler.enable");
    await inspector.send("HeapProfiler.collectGarbage");
    const before = await inspector.send("Runtime.getHeapUsage");
    await inspector.send("HeapProfiler.startSampling", {
      samplingInterval: 64,
      includeObjectsCollectedByMajorGC: false,
      includeObjectsCollectedByMinorGC: false,
    });
    conns = await _pingClients(port, clients);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await inspector.send("HeapProfiler.collectGarbage");
    const after = await inspector.send("Runtime.getHeapUsage");
    const { profile } = await inspector.send("HeapProfiler.stopSampling");
    const used = (after.usedSize as number) - (before.usedSize as number);
    console.log(
      `io = ${io}: ${conns.length} idle clients, V8 heap used +${used} bytes, ` +
        `${Math.round(used / conns.length)} B per client`,
    );
    const sites = allocationSites((profile as { head: HeapProfileNode }).head);
    for (const { site, bytes } of sites.slice(0, Number(top))) {
      console.log(`${String(Math.round(bytes / conns.length)).padStart(6)} B  ${site}`);
    }
  } finally {
    inspector.close();
  }
} finally {
  closeAll(conns);
  plane.kill("SIGKILL");
  await plane.status;
  await Deno.remove(dir, { recursive: true });
}
