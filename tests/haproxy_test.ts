/**
 * Many instances, one backend fleet: HAProxy (TCP mode, docs/examples/haproxy.cfg as shipped,
 * only its addresses replaced) in front of two Aster instances over one real Redis Cluster.
 * Clients write unique keys and read their own back through HAProxy while one instance is
 * stopped with SIGTERM (and started again) and then the other is killed with SIGKILL: the
 * clients reconnect through HAProxy and every acknowledged write is still in the cluster.
 */
import assert from "node:assert/strict";
import { type AsterProcess, type ClusterToml, startAster } from "./helpers/aster.ts";
import { startRedisCluster } from "./helpers/redis_cluster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { freePort, type ServerProcess, startListeningProcess } from "./helpers/servers.ts";

const EXAMPLE = new URL("../docs/examples/haproxy.cfg", import.meta.url);
const HOSTS = ["127.0.0.2", "127.0.0.3"];

/**
 * A port free on every one of `hosts` (both instances listen on the same port), other than
 * those in `taken` (two calls in a row may be handed the same free port).
 */
function portFreeOn(hosts: string[], taken: number[] = []): number {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = Deno.listen({ hostname: hosts[0], port: 0 });
    const port = (first.addr as Deno.NetAddr).port;
    const others: Deno.Listener[] = [];
    try {
      if (taken.includes(port)) continue;
      for (const host of hosts.slice(1)) others.push(Deno.listen({ hostname: host, port }));
      return port;
    } catch {
      // taken on another host: try another
    } finally {
      first.close();
      for (const listener of others) listener.close();
    }
  }
  throw new Error(`no port free on all of ${hosts.join(", ")}`);
}

/** The example config with this test's addresses; each replaced text must be there once. */
async function haproxyConfig(
  ports: { lb: number; aster: number; metrics: number },
  proxyVersion: "send-proxy-v2" | "send-proxy" = "send-proxy-v2",
): Promise<string> {
  let cfg = await Deno.readTextFile(EXAMPLE);
  const swaps: [string, string][] = [
    ["bind 0.0.0.0:6379", `bind 127.0.0.1:${ports.lb}`],
    ["10.0.0.11:6379", `${HOSTS[0]}:${ports.aster}`],
    ["10.0.0.12:6379", `${HOSTS[1]}:${ports.aster}`],
    ["check port 9121", `check port ${ports.metrics}`],
    [" send-proxy-v2\n", ` ${proxyVersion}\n`],
  ];
  for (const [from, to] of swaps) {
    assert.equal(cfg.split(from).length, 2, `${EXAMPLE.pathname} has "${from.trim()}" once`);
    cfg = cfg.replace(from, to);
  }
  const path = await Deno.makeTempFile({ prefix: "aster-haproxy-", suffix: ".cfg" });
  await Deno.writeTextFile(path, cfg);
  return path;
}

async function startHaproxy(cfgPath: string, port: number): Promise<ServerProcess> {
  // -db: foreground, no daemon; stopped by PID like every other server here.
  return await startListeningProcess("haproxy", ["-db", "-f", cfgPath], {
    port,
    hint: "apt-get install -y haproxy",
  });
}

async function scrape(host: string, port: number): Promise<string> {
  return await (await fetch(`http://${host}:${port}/metrics`)).text();
}

function sample(body: string, series: string): number {
  const line = body.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms for up to `ms`; true once it holds. */
async function within(ms: number, check: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return await check();
}

/** One client: SET a new key, GET it back, over and over; reconnects when dropped. */
class Writer {
  readonly acked = new Map<string, string>();
  /** A GET on the same connection right after an acknowledged SET that did not match. */
  readonly mismatches: string[] = [];
  reconnects = 0;
  errorReplies = 0;
  #stop = false;
  #done: Promise<void>;

  constructor(readonly id: number, readonly port: number) {
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    let client: RespClient | null = null;
    const deadline = Date.now() + 120_000;
    for (let i = 0; i < 100_000 && !this.#stop && Date.now() < deadline; i++) {
      try {
        // A fresh connection every 400 keys (about 2 s) too: a restarted instance gets clients back.
        if (client !== null && i % 400 === 0) {
          client.close();
          client = null;
        }
        if (client === null) {
          client = await RespClient.connect(this.port);
          client.timeoutMs = 3000;
        }
        const key = `ha:${this.id}:${i}`;
        const value = `v${i}-${this.id}`;
        const set = await client.command("SET", key, value);
        if (set instanceof RespErrorReply) {
          this.errorReplies++;
          continue;
        }
        this.acked.set(key, value);
        const got = await client.command("GET", key);
        if (got instanceof RespErrorReply) this.errorReplies++;
        else if (text(got) !== value) this.mismatches.push(`${key}: ${text(got)}`);
      } catch {
        // Dropped (instance stopped or killed) or refused: reconnect through HAProxy.
        client?.close();
        client = null;
        this.reconnects++;
        await sleep(20);
      }
    }
    client?.close();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

function astersFor(seeds: string[], port: number, metrics: number) {
  const cluster = (host: string): ClusterToml => ({
    name: "fleet",
    cache_type: "redis_cluster",
    servers: seeds,
    listen_addr: `${host}:${port}`,
    thread: 2,
    proxy_protocol: true,
    // Longer than the example's inter 500ms x fall 2: HAProxy stops sending new clients first.
    drain_delay: 1500,
    shutdown_timeout: 3000,
  });
  return (index: number, env?: Record<string, string>): Promise<AsterProcess> =>
    startAster([cluster(HOSTS[index])], { metricsAddr: `${HOSTS[index]}:${metrics}`, env });
}

/** Reads every key from the cluster's masters directly (MOVED followed), not through Aster. */
async function readBack(seedPort: number, keys: string[]): Promise<Map<string, string | null>> {
  const clients = new Map<number, RespClient>();
  const on = async (port: number) => {
    let client = clients.get(port);
    if (client === undefined) {
      client = await RespClient.connect(port);
      clients.set(port, client);
    }
    return client;
  };
  const found = new Map<string, string | null>();
  try {
    for (const key of keys) {
      let port = seedPort;
      for (let hop = 0; hop < 3; hop++) {
        const reply = await (await on(port)).command("GET", key);
        if (reply instanceof RespErrorReply) {
          const moved = /^MOVED \d+ [\d.]+:(\d+)$/.exec(reply.message);
          assert.ok(moved, `GET ${key}: ${reply.message}`);
          port = Number(moved[1]);
          continue;
        }
        found.set(key, text(reply) as string | null);
        break;
      }
    }
  } finally {
    for (const client of clients.values()) client.close();
  }
  return found;
}

Deno.test({
  name:
    "HAProxy over two Asters over one Redis Cluster: SIGTERM one, SIGKILL the other, no acknowledged write lost",
  fn: async () => {
    await using cluster = await startRedisCluster();
    const port = portFreeOn(HOSTS);
    const metrics = portFreeOn(HOSTS, [port]);
    const lb = await freePort();
    const cfgPath = await haproxyConfig({ lb, aster: port, metrics });
    const start = astersFor(cluster.seeds(), port, metrics);
    const asters: AsterProcess[] = [];
    let haproxy: ServerProcess | null = null;
    const writers: Writer[] = [];
    try {
      asters.push(await start(0));
      asters.push(await start(1));
      haproxy = await startHaproxy(cfgPath, lb);
      for (let c = 0; c < 6; c++) writers.push(new Writer(c, lb));
      const acked = () => writers.reduce((n, w) => n + w.acked.size, 0);
      const reconnects = () => writers.reduce((n, w) => n + w.reconnects, 0);
      const sets = async (index: number) =>
        sample(
          await scrape(HOSTS[index], metrics),
          'aster_commands_total{cluster="fleet",command="set"}',
        );
      assert.ok(
        await within(15_000, async () => (await sets(0)) > 0 && (await sets(1)) > 0),
        "both instances serve clients through HAProxy",
      );

      // 1. SIGTERM: /healthz turns 503, HAProxy stops sending clients, in-flight replies go out.
      asters[0].kill("SIGTERM");
      assert.equal(await asters[0].exited, 0, asters[0].log());
      await asters[0].stop();
      const afterTerm = acked();
      assert.ok(await within(10_000, () => acked() >= afterTerm + 200), "writes go on via #2");

      // Back on the same address; reconnecting clients reach it once HAProxy sees it up.
      asters[0] = await start(0);
      assert.ok(await within(15_000, async () => (await sets(0)) > 0), "#1 serves again");

      // 2. SIGKILL: every client of #2 is dropped at once, reconnects, lands on #1.
      const dropsBefore = reconnects();
      asters[1].kill("SIGKILL");
      await asters[1].exited;
      await asters[1].stop();
      const afterKill = acked();
      assert.ok(await within(15_000, () => acked() >= afterKill + 200), "writes go on via #1");
      assert.ok(reconnects() > dropsBefore, "clients of the killed instance were dropped");
    } finally {
      await Promise.all(writers.map((w) => w.stop()));
      await haproxy?.stop();
      await Promise.all(asters.map((aster) => aster.stop()));
      await Deno.remove(cfgPath).catch(() => {});
    }

    const expected = new Map(writers.flatMap((w) => [...w.acked]));
    assert.ok(expected.size >= 600, `only ${expected.size} writes acknowledged`);
    assert.deepEqual(writers.flatMap((w) => w.mismatches), [], "every read saw its own write");
    const found = await readBack(cluster.nodes[0].port, [...expected.keys()]);
    const lost = [...expected].filter(([key, value]) => found.get(key) !== value);
    assert.deepEqual(lost, [], `${lost.length} of ${expected.size} acknowledged writes lost`);
  },
});

Deno.test({
  name: "HAProxy send-proxy and send-proxy-v2: Aster sees the client's own address",
  fn: async () => {
    await using cluster = await startRedisCluster();
    const port = portFreeOn(HOSTS);
    const metrics = portFreeOn(HOSTS, [port]);
    const start = astersFor(cluster.seeds(), port, metrics);
    // Both instances, so HAProxy's checks pass and either may take the client.
    const asters: AsterProcess[] = [];
    try {
      asters.push(await start(0, { ASTER_LOG: "debug" }));
      asters.push(await start(1, { ASTER_LOG: "debug" }));
      for (const version of ["send-proxy", "send-proxy-v2"] as const) {
        const lb = await freePort();
        const cfgPath = await haproxyConfig({ lb, aster: port, metrics }, version);
        let haproxy: ServerProcess | null = null;
        try {
          haproxy = await startHaproxy(cfgPath, lb);
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: lb });
          const local = (conn.localAddr as Deno.NetAddr).port;
          try {
            await conn.write(new TextEncoder().encode("*1\r\n$4\r\nPING\r\n"));
            const buf = new Uint8Array(16);
            const n = await conn.read(buf);
            assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "+PONG\r\n");
          } finally {
            conn.close();
          }
          const logs = () => asters.map((a) => a.log()).join("");
          // The probe's own port shows: HAProxy's outgoing port would differ.
          assert.ok(
            await within(5000, () => logs().includes(`from 127.0.0.1:${local}`)),
            `${version}: no session from 127.0.0.1:${local}`,
          );
          assert.doesNotMatch(logs(), /bad PROXY protocol header/);
        } finally {
          await haproxy?.stop();
          await Deno.remove(cfgPath).catch(() => {});
        }
      }
    } finally {
      await Promise.all(asters.map((aster) => aster.stop()));
    }
  },
});
