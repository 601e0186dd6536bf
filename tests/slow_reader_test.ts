/**
 * A client that does not read its replies hurts no one else (issue 17, point 1): it stalls
 * or is closed past the hard limit, while another client on the same backends sees no error
 * and no delay, and Aster's memory stays bounded and comes back.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";
import { rssKiB } from "./helpers/process_stats.ts";

const MiB = 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function _scrape(port: number): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function _sample(body: string, series: string): number {
  const line = body.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** 6,000 GETs of a 100 KB value in one write (600 MB of replies), never read. */
async function _stallingClient(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = new TextEncoder().encode("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(6000));
  // Not awaited to the end: once Aster stops reading, the write may never complete.
  (async () => {
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  })().catch(() => {});
  return conn;
}

/** How long A's first burst may take to reach its stall (the soft limit): ~8 MB of replies. */
const SETTLE_MS = 500;

/**
 * B's loop: SET/GET pairs for `ms`, each timed; errors counted, not thrown. `worst` is the
 * slowest op once A stalls (after SETTLE_MS), `worstAtAll` the slowest of all.
 */
async function _bystander(port: number, ms: number, prefix = "b") {
  await using b = await RespClient.connect(port);
  b.timeoutMs = 5000;
  let worst = 0;
  let worstAtAll = 0;
  let errors = 0;
  let ops = 0;
  const firstErrors: string[] = [];
  const until = Date.now() + ms;
  const settled = Date.now() + SETTLE_MS;
  for (let i = 0; i < 100_000 && Date.now() < until; i++) {
    const key = `${prefix}:${i % 50}`;
    for (const args of [["SET", key, `v${i}`], ["GET", key]]) {
      const started = performance.now();
      const reply = await b.command(...args).catch((err) => new RespErrorReply(String(err)));
      const took = performance.now() - started;
      worstAtAll = Math.max(worstAtAll, took);
      if (Date.now() - took > settled) worst = Math.max(worst, took);
      ops++;
      const ok = args[0] === "SET" ? reply === "OK" : text(reply) === `v${i}`;
      if (!ok) {
        errors++;
        if (firstErrors.length < 3) {
          const got = reply instanceof RespErrorReply ? reply.message : String(text(reply));
          firstErrors.push(`${args.join(" ")}: ${got}`);
        }
      }
    }
    await sleep(2);
  }
  return { worst, worstAtAll, errors, ops, firstErrors };
}

testBothIo(
  "a client that never reads 600 MB of replies stalls alone: others unharmed, memory bounded and back",
  async () => {
    await using r1 = await startRedis();
    await using r2 = await startRedis();
    await using r3 = await startRedis();
    const metricsPort = await freePort();
    const servers = [r1, r2, r3].map((r, i) => `127.0.0.1:${r.port}:1 redis-${i + 1}`);
    await using aster = await startAster([
      // Default output limits (8 MB soft, 256 MB hard), as the issue ran it.
      { name: "dflt", servers, read_timeout: 2000 },
      // The same load where the hard limit is reached: the reader must be closed and counted.
      {
        name: "hard",
        servers,
        read_timeout: 2000,
        client_output_soft_limit: 16 * 2 ** 20,
        client_output_hard_limit: 16 * 2 ** 20,
      },
    ], { args: ["-m", String(metricsPort)] });
    const [port, hardPort] = aster.ports;
    await using setup = await RespClient.connect(port);
    assert.equal(await setup.command("SET", "big", "x".repeat(100_000)), "OK");
    await _bystander(port, 500); // warm up
    const before = await rssKiB(aster.pid);

    const a = await _stallingClient(port);
    const aHard = await _stallingClient(hardPort);
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; i < 200 && sampling; i++) {
        peak = Math.max(peak, await rssKiB(aster.pid));
        await sleep(200);
      }
    })();
    // The same loop straight to a redis-server: stalls of this process or of the machine (2
    // shared cores) show there too, and are not Aster's.
    const [b, bHard, control] = await Promise.all([
      _bystander(port, 4000, "b"),
      _bystander(hardPort, 4000, "h"),
      _bystander(r1.port, 4000, "direct"),
    ]);
    sampling = false;
    await sampler;

    const body = await _scrape(metricsPort);
    const limited = _sample(body, 'aster_errors_total{cluster="hard",kind="output_limit"}');
    const backendErrors = _sample(body, 'aster_errors_total{cluster="dflt",kind="backend"}') +
      _sample(body, 'aster_errors_total{cluster="hard",kind="backend"}');
    a.close();
    aHard.close();
    const report = `B ${JSON.stringify(b)}, B on the hard-limit cluster ${
      JSON.stringify(bHard)
    }, direct ${JSON.stringify(control)}; RSS before ${before} KiB, peak ${peak} KiB; log:\n${
      aster.log().slice(0, 2000)
    }`;
    assert.equal(b.errors + bHard.errors, 0, report);
    assert.equal(backendErrors, 0, report);
    const stall = Math.max(0, control.worst - 10);
    assert.ok(b.worst < 100 + stall && bHard.worst < 100 + stall, `worst under 100 ms: ${report}`);
    // While A's first ~8 MB of replies move (two workers, three redis-servers and this
    // process on 2 shared cores), B may wait a little longer; on main it waited ~2 s.
    const burstStall = Math.max(0, control.worstAtAll - 10);
    assert.ok(b.worstAtAll < 300 + burstStall && bHard.worstAtAll < 300 + burstStall, report);
    assert.ok(peak - before <= 256 * MiB + 64 * MiB, `RSS growth bounded: ${report}`);
    assert.ok(limited >= 1, `the reader past the hard limit is closed and counted: ${report}`);

    // Memory comes back once the readers are gone (no manual GC).
    await sleep(10_000);
    const after = await rssKiB(aster.pid);
    assert.ok(after - before <= 64 * MiB, `RSS back: before ${before}, after ${after} KiB`);
    assert.equal(text(await setup.command("GET", "b:1")) !== null, true);
  },
);
