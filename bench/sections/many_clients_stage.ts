/**
 * The many-clients stage of the `redis` section: redis-benchmark GET and SET at pipeline 1
 * with 1,000 concurrent clients against one redis-server directly, behind nutcracker and
 * behind Aster (`thread = 1`; and the `--baseline` revision), alternating. Pinned like the
 * rest of the section; `--no-pin` gives the unpinned figures.
 */
import { startRedis } from "../../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { serverEntry, startProxies } from "../proxies.ts";
import type { Stage, Workload } from "../types.ts";

/** Concurrent clients of the stage. */
export const MANY_CLIENTS = 1_000;
/** Before each test's name in the stage's rows. */
export const MANY_CLIENTS_ROW_PREFIX = "1,000 clients: ";

/** One redis-server direct, behind nutcracker and behind Aster, 1,000 clients at P1. */
export const manyClientsStage: Stage = {
  title: `GET/SET P1, ${MANY_CLIENTS.toLocaleString("en-US")} clients, one redis-server`,
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const proxies = await startProxies(stack, {
      servers: [serverEntry(redis.port, 0)],
      baseline: options.baseline,
    });
    const rowPrefix = MANY_CLIENTS_ROW_PREFIX;
    const workload = (requests: number): Workload => ({
      pipeline: 1,
      requests,
      clients: MANY_CLIENTS,
      tests: ["get", "set"],
    });
    return {
      targets: [
        redisBenchmarkTarget("direct", { port: redis.port, rowPrefix }),
        ...proxies.map(({ name, port, pid, log }) =>
          redisBenchmarkTarget(name, { port, pid, log, rowPrefix })
        ),
      ],
      workloads: [workload(options.requests)],
      warmUp: workload(20_000),
      notes: [
        `${rowPrefix}redis-benchmark -c ${MANY_CLIENTS} -P 1, ${options.requests} requests ` +
        "per test, every client connected for the whole run.",
      ],
    };
  },
};
