/**
 * `deno task demo`: three local redis-servers (ports 7001-7003 when free) behind Aster in
 * `redis` mode on 127.0.0.1:9001 (or a free port), until Ctrl-C stops them all.
 *
 * It reuses the integration-test helpers, which start each server in a temporary
 * directory with persistence off, wait until it answers and stop it by PID.
 */
import { type ClusterToml, renderToml, startAster } from "./tests/helpers/aster.ts";
import { freePort, startRedis } from "./tests/helpers/servers.ts";

const HOST = "127.0.0.1";
/** Ports the demo's redis-servers prefer. */
const REDIS_PORTS = [7001, 7002, 7003];
/** Port Aster prefers. */
const PROXY_PORT = 9001;
const MISSING_REDIS =
  "redis-server not found: install it with apt-get install -y redis-server redis-tools";

/** True when `redis-server` can be run. */
async function hasRedisServer(): Promise<boolean> {
  try {
    const command = new Deno.Command("redis-server", {
      args: ["--version"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    });
    await command.output();
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

/** The config Aster runs with: one `redis` cluster over `redisPorts`. */
function demoCluster(listenPort: number, redisPorts: number[]): ClusterToml {
  return {
    name: "demo",
    listen_addr: `${HOST}:${listenPort}`,
    cache_type: "redis",
    servers: redisPorts.map((port, i) => `${HOST}:${port}:1 redis-${i + 1}`),
    thread: 1,
  };
}

/** Tells the user how to talk to the proxy and to each shard. */
function printUsage(cluster: ClusterToml, opts: { port: number; redisPorts: number[] }): void {
  const cli = `redis-cli -p ${opts.port}`;
  const shards = opts.redisPorts.map((port, i) => `redis-${i + 1} on ${port}`).join(", ");
  console.log(`
Aster is serving ${HOST}:${opts.port} in redis mode over 3 redis-servers: ${shards}.

Config (in a temporary file):

${renderToml([cluster]).trimEnd()}

Connect:  ${cli}

Try:
  ${cli} SET user:1 alice
  ${cli} GET user:1
  ${cli} INCR visits
  ${cli} MSET fruit:apple red fruit:banana yellow fruit:date brown
  ${cli} MGET fruit:apple fruit:banana fruit:date     # one key on each shard
  ${opts.redisPorts.map((port) => `redis-cli -p ${port} --scan`).join("; ")}   # keys per shard

Press Ctrl-C to stop Aster and the redis-servers.`);
}

/**
 * Starts the redis-servers and Aster, prints how to use them, waits for `stopping`;
 * everything it started is stopped by PID before it returns or throws.
 */
async function serve(stopping: Promise<Deno.Signal>): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const redisPorts: number[] = [];
  for (const port of REDIS_PORTS) {
    const redis = stack.use(await startRedis({ port: preferredPort(port) }));
    redisPorts.push(redis.port);
  }
  const port = preferredPort(PROXY_PORT) ?? await freePort();
  const cluster = demoCluster(port, redisPorts);
  const aster = stack.use(await startAster([cluster]));
  printUsage(cluster, { port, redisPorts });
  const signal = await stopping;
  console.log(`\n${signal}: stopping Aster (pid ${aster.pid}) and the redis-servers`);
}

async function main(): Promise<number> {
  if (!await hasRedisServer()) {
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
    if (interrupted) return 130; // a signal during startup: the servers died with it
    console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
