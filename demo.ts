/**
 * `deno task demo`: one Aster process with a listener per mode, over local servers, until
 * Ctrl-C stops them all:
 *
 * - `redis` on 127.0.0.1:9001 over three redis-servers (ports 7001-7003),
 * - `memcache` on 9002 and `memcache_binary` on 9003 over the same two memcached (ports
 *   11311-11312), so a key set through one protocol can be read through the other,
 * - `redis_cluster` on 9004 over a 6-node Redis Cluster (3 masters, 3 replicas).
 *
 * A port that is taken is replaced by a free one. Without memcached the memcache listeners
 * are left out; without redis-cli (which builds the cluster) the cluster is left out.
 *
 * It reuses the integration-test helpers, which start each server in a temporary
 * directory with persistence off, wait until it answers and stop it by PID.
 */
import { type ClusterToml, renderToml, startAster } from "./tests/helpers/aster.ts";
import { type RedisCluster, startRedisCluster } from "./tests/helpers/redis_cluster.ts";
import { freePort, startMemcached, startRedis } from "./tests/helpers/servers.ts";

const HOST = "127.0.0.1";
/** Ports the demo's redis-servers prefer. */
const REDIS_PORTS = [7001, 7002, 7003];
/** Ports the demo's memcached prefer. */
const MEMCACHED_PORTS = [11311, 11312];
/** Ports Aster's listeners prefer, per mode. */
const PROXY_PORTS = { redis: 9001, memcache: 9002, memcache_binary: 9003, redis_cluster: 9004 };
const MISSING_REDIS =
  "redis-server not found: install it with apt-get install -y redis-server redis-tools";
/** Exit code after SIGINT/SIGTERM, as a shell reports it. */
const EXIT_INTERRUPTED = 130;

/** A memcache_binary GETK of key "a": 24-byte header (magic 0x80, opcode 0x0c), then "a". */
const BINARY_GETK_A = "\\x80\\x0c\\x00\\x01" + "\\x00".repeat(4) + "\\x00\\x00\\x00\\x01" +
  "\\x00".repeat(12) + "a";

/** True when `command` can be run. */
async function hasCommand(command: string, args: string[]): Promise<boolean> {
  try {
    await new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** `port` when nothing listens on it, otherwise undefined (the helpers then pick one). */
function preferredPort(port: number): number | undefined {
  try {
    Deno.listen({ hostname: HOST, port }).close();
    return port;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return undefined;
    throw err;
  }
}

/** Resolves on the first SIGINT or SIGTERM, with the signal's name. */
function stopSignal(): Promise<Deno.Signal> {
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => resolve(signal));
  }
  return promise;
}

/** One `[[clusters]]` table of the demo config. */
function demoCluster(
  name: string,
  opts: { port: number; cacheType: string; servers: string[] },
): ClusterToml {
  return {
    name,
    listen_addr: `${HOST}:${opts.port}`,
    cache_type: opts.cacheType,
    servers: opts.servers,
    thread: 1,
  };
}

/** `"host:port:1 alias-N"` entries, so the ring hashes the aliases, not the ports. */
function aliased(ports: number[], alias: string): string[] {
  return ports.map((port, i) => `${HOST}:${port}:1 ${alias}-${i + 1}`);
}

/** A listen port for `mode`: its preferred port when free, else a free one. */
async function listenPort(mode: keyof typeof PROXY_PORTS): Promise<number> {
  return preferredPort(PROXY_PORTS[mode]) ?? await freePort();
}

/** What the demo started, for the usage text. */
interface Started {
  clusters: ClusterToml[];
  redisPorts: number[];
  /** Absent when memcached is not installed. */
  memcache: { text: number; binary: number; servers: number[] } | null;
  /** Absent when the cluster could not be built. */
  cluster: { port: number; nodes: number[] } | null;
  redisPort: number;
}

/** Tells the user how to talk to each listener. */
function printUsage(started: Started): void {
  const cli = `redis-cli -p ${started.redisPort}`;
  const shards = started.redisPorts.map((port, i) => `redis-${i + 1} on ${port}`).join(", ");
  const sections = [
    `Aster is running with ${started.clusters.length} listeners on ${HOST}.

Config (in a temporary file):

${renderToml(started.clusters).trimEnd()}`,
    `== redis mode on ${started.redisPort}, over 3 redis-servers: ${shards}

  ${cli}
  ${cli} SET user:1 alice
  ${cli} GET user:1
  ${cli} MSET fruit:apple red fruit:banana yellow fruit:date brown
  ${cli} MGET fruit:apple fruit:banana fruit:date     # one key on each shard
  ${started.redisPorts.map((port) => `redis-cli -p ${port} --scan`).join("; ")}   # keys per shard`,
  ];
  const mc = started.memcache;
  if (mc) {
    const servers = mc.servers.map((port, i) => `memcached-${i + 1} on ${port}`).join(", ");
    sections.push(`== memcache mode on ${mc.text} (text), memcache_binary on ${mc.binary}, over \
2 memcached: ${servers}

  printf 'set a 0 0 1\\r\\nx\\r\\nget a\\r\\n' | nc -q1 ${HOST} ${mc.text}
  printf 'version\\r\\nget a b c\\r\\n' | nc -q1 ${HOST} ${mc.text}
  printf '${BINARY_GETK_A}' | nc -q1 ${HOST} ${mc.binary} | xxd   # binary GETK a
  (no nc? bash alone: exec 3<>/dev/tcp/${HOST}/${mc.text}; \
printf 'set a 0 0 1\\r\\nx\\r\\nget a\\r\\n' >&3; timeout 1 cat <&3; exec 3<&-)`);
  } else {
    sections.push(
      "== memcache modes: skipped, memcached not found (apt-get install -y memcached)",
    );
  }
  const cl = started.cluster;
  if (cl) {
    const rc = `redis-cli -p ${cl.port}`;
    sections.push(`== redis_cluster mode on ${cl.port}, over a Redis Cluster of 3 masters + 3 \
replicas on ports ${cl.nodes.join(", ")}

  ${rc} SET user:1 alice
  ${rc} MSET a 1 b 2 c 3        # split by slot, no CROSSSLOT through Aster
  ${rc} CLUSTER SLOTS
  redis-cli -c -p ${cl.nodes[0]} GET user:1   # the cluster itself, following MOVED`);
  } else {
    sections.push(
      "== redis_cluster mode: skipped, redis-cli not found (apt-get install -y redis-tools)",
    );
  }
  sections.push("Press Ctrl-C to stop Aster and every server.");
  console.log(`\n${sections.join("\n\n")}`);
}

/**
 * Starts the servers and Aster, prints how to use them, waits for `stopping`; everything
 * it started is stopped by PID before it returns or throws.
 */
async function serve(stopping: Promise<Deno.Signal>): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const redisPorts: number[] = [];
  for (const port of REDIS_PORTS) {
    const redis = stack.use(await startRedis({ port: preferredPort(port) }));
    redisPorts.push(redis.port);
  }
  const redisPort = await listenPort("redis");
  const clusters = [
    demoCluster("demo", {
      port: redisPort,
      cacheType: "redis",
      servers: aliased(redisPorts, "redis"),
    }),
  ];
  let memcache: Started["memcache"] = null;
  if (await hasCommand("memcached", ["-V"])) {
    const servers: number[] = [];
    for (const port of MEMCACHED_PORTS) {
      servers.push(stack.use(await startMemcached({ port: preferredPort(port) })).port);
    }
    memcache = {
      text: await listenPort("memcache"),
      binary: await listenPort("memcache_binary"),
      servers,
    };
    const entries = aliased(servers, "memcached");
    clusters.push(
      demoCluster("demo-memcache", {
        port: memcache.text,
        cacheType: "memcache",
        servers: entries,
      }),
      demoCluster("demo-memcache-binary", {
        port: memcache.binary,
        cacheType: "memcache_binary",
        servers: entries,
      }),
    );
  }
  let cluster: Started["cluster"] = null;
  if (await hasCommand("redis-cli", ["--version"])) {
    console.log("building a 6-node Redis Cluster ...");
    const redisCluster: RedisCluster = stack.use(await startRedisCluster());
    cluster = {
      port: await listenPort("redis_cluster"),
      nodes: redisCluster.nodes.map((n) => n.port),
    };
    clusters.push(
      demoCluster("demo-cluster", {
        port: cluster.port,
        cacheType: "redis_cluster",
        servers: redisCluster.seeds(),
      }),
    );
  }
  const aster = stack.use(await startAster(clusters));
  printUsage({ clusters, redisPorts, memcache, cluster, redisPort });
  const signal = await stopping;
  console.log(`\n${signal}: stopping Aster (pid ${aster.pid}) and the servers`);
}

async function main(): Promise<number> {
  if (!await hasCommand("redis-server", ["--version"])) {
    console.error(MISSING_REDIS);
    return 1;
  }
  const stopping = stopSignal();
  let interrupted = false;
  stopping.then(() => interrupted = true);
  try {
    await serve(stopping);
    console.log("stopped");
    return 0;
  } catch (err) {
    if (interrupted) return EXIT_INTERRUPTED; // a signal during startup: everything is stopped
    console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
