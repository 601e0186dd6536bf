/**
 * The `memcache` section: `bench/memcache_load.ts` (text protocol) get and set at pipeline 1
 * and 16 against one memcached direct, behind nutcracker (`redis: false`, fnv1a_64, ketama)
 * and behind Aster (`memcache`, `thread = 1`), on raw sockets and in Deno's sandbox.
 */
import { startMemcached } from "../../tests/helpers/servers.ts";
import { runMemcacheLoad } from "../memcache_load.ts";
import { loadGeneratorCpus, memcacheTarget } from "../load_tools.ts";
import { type Endpoint, serverEntry, startProxies } from "../proxies.ts";
import {
  CLIENTS,
  getSetWorkloads,
  KEYSPACE,
  MEMCACHE_VALUE_SIZE,
  PROXY_COLUMNS,
  PROXY_RATIOS,
  WARM_UP,
} from "../settings.ts";
import { proxyCpuChecks, sandboxedChecks, throughputChecks } from "../targets.ts";
import type { Section, SectionRun, Stage, TargetCheck } from "../types.ts";

/** One memcached direct, behind nutcracker and behind Aster, every key populated. */
const memcacheStage: Stage = {
  title: "get/set, one memcached",
  async start(stack, options) {
    const memcached = stack.use(await startMemcached());
    const servers = [serverEntry(memcached.port, 0, "memcached")];
    const proxies = await startProxies(stack, {
      servers,
      memcache: true,
      baseline: options.baseline,
      sandboxed: true,
    });
    const load = { connections: 1, warmupMs: 0, keys: KEYSPACE, valueSize: MEMCACHE_VALUE_SIZE };
    await runMemcacheLoad({
      ...load,
      port: memcached.port,
      op: "set",
      populate: true,
      requests: 1,
    });
    const endpoints: Endpoint[] = [{ name: "direct", port: memcached.port }, ...proxies];
    for (const { name, port } of endpoints) {
      const check = await runMemcacheLoad({ ...load, port, op: "get", requests: 1000 });
      if (check.misses > 0) throw new Error(`get through ${name}: ${check.misses} misses`);
    }
    // Two threads on one pinned core only take turns: 0.8x the load of one, measured.
    const threads = options.mcThreads ?? (loadGeneratorCpus() === null ? 2 : 1);
    return {
      targets: endpoints.map(({ name, port, pid, log }) =>
        memcacheTarget(name, { port, threads, log, pid })
      ),
      workloads: getSetWorkloads(options.requests),
      warmUp: { ...WARM_UP, requests: 20_000 },
      notes: [
        `memcache_load: ${CLIENTS} connections over ${threads} thread(s), keys key:0..` +
        `key:${KEYSPACE - 1} at random (all populated), ${MEMCACHE_VALUE_SIZE}-byte values, ` +
        `every reply checked; its sockets run through FFI (--io ffi), so that one core ` +
        `drives more load than on Deno's ops.`,
      ],
    };
  },
};

/** The memcache section's targets: Aster at least as fast as nutcracker at both depths. */
function memcacheChecks(run: SectionRun): TargetCheck[] {
  return [
    ...throughputChecks("memcache", run.results, () => 1),
    ...proxyCpuChecks("memcache", run.results),
    ...sandboxedChecks("memcache", run.results),
  ];
}

/** The `memcache` section (Aster against nutcracker and memcached direct). */
export const memcacheSection: Section = {
  name: "memcache",
  title: "memcache: bench/memcache_load.ts (text protocol), one memcached",
  columns: PROXY_COLUMNS,
  ratios: PROXY_RATIOS,
  stages: [memcacheStage],
  pinned: true,
  checks: memcacheChecks,
};
