/**
 * The processes under test: nutcracker and Aster (this checkout, the `--baseline` revision,
 * Aster in Deno's sandbox) over the same `servers`, their redis-benchmark targets, and one
 * command sent to a port to set up or check a stage.
 */
import { type AsterSource, type ClusterToml, startAster } from "../tests/helpers/aster.ts";
import { RespClient, text } from "../tests/helpers/resp_client.ts";
import { startNutcracker } from "../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "./load_tools.ts";
import { BASELINE, HOST, SANDBOXED } from "./settings.ts";
import type { Target } from "./types.ts";

/** A port under test: a backend direct, or a proxy with its process. */
export interface Endpoint {
  /** Target name (column key). */
  name: string;
  port: number;
  pid?: number;
  /** What the process logged so far (Aster). */
  log?: () => string;
}

/** A proxy process under test. */
export interface ProxyProcess extends Endpoint {
  pid: number;
}

/** The alias of the `index`th backend; the ring hashes it, not the (random) port. */
export function backendAlias(index: number, prefix = "redis"): string {
  return `${prefix}-${index + 1}`;
}

/** A `servers` entry both proxies understand the same way. */
export function serverEntry(port: number, index: number, prefix = "redis"): string {
  return `${HOST}:${port}:1 ${backendAlias(index, prefix)}`;
}

/**
 * Starts nutcracker and Aster (`thread = 1`, `max_clients` when given) over `servers`, and
 * Aster of the baseline revision when given; registers them on `stack`.
 */
export async function startProxies(
  stack: AsyncDisposableStack,
  opts: {
    servers: string[];
    memcache?: boolean;
    maxClients?: number;
    baseline?: AsterSource | null;
    /** Also Aster inside Deno's sandbox (`aster-deno`). */
    sandboxed?: boolean;
  },
): Promise<ProxyProcess[]> {
  const { servers } = opts;
  const nutcracker = stack.use(
    await startNutcracker({
      servers,
      hash: "fnv1a_64",
      distribution: "ketama",
      redis: !opts.memcache,
    }),
  );
  const cacheType = opts.memcache ? "memcache" : "redis";
  const cluster: ClusterToml = { name: "bench", cache_type: cacheType, servers, thread: 1 };
  if (opts.maxClients !== undefined) cluster.max_clients = opts.maxClients;
  const proxies = [
    { name: "nutcracker", port: nutcracker.port, pid: nutcracker.pid },
    ...await startAsters(stack, [cluster], opts.baseline ?? null),
  ];
  if (opts.sandboxed) {
    const aster = stack.use(await startAster([{ ...cluster, io: "deno" }], { sandboxed: true }));
    proxies.push({ name: SANDBOXED, port: aster.ports[0], pid: aster.pid, log: aster.log });
  }
  return proxies;
}

/** Aster (this checkout) and, with a baseline, Aster of that revision, both on `clusters`. */
export async function startAsters(
  stack: AsyncDisposableStack,
  clusters: ClusterToml[],
  baseline: AsterSource | null,
): Promise<ProxyProcess[]> {
  const sources = new Map<string, AsterSource | undefined>([["aster", undefined]]);
  if (baseline !== null) sources.set(BASELINE, baseline);
  const proxies: ProxyProcess[] = [];
  for (const [name, source] of sources) {
    const aster = stack.use(await startAster(clusters, { source }));
    proxies.push({ name, port: aster.ports[0], pid: aster.pid, log: aster.log });
  }
  return proxies;
}

/** redis-benchmark targets for the proxies of `startProxies`, with their pids for CPU. */
export function redisProxyTargets(proxies: ProxyProcess[]): Target[] {
  return proxies.map(({ name, port, pid, log }) => redisBenchmarkTarget(name, { port, pid, log }));
}

/** Runs one command on a fresh connection and returns its reply as text. */
export async function commandReply(port: number, args: string[]): Promise<unknown> {
  await using client = await RespClient.connect(port);
  return text(await client.command(...args));
}
