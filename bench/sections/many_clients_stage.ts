/**
 * The client-count stages of the `redis` section: redis-benchmark GET and SET at pipeline 1
 * with 1,000 concurrent clients, and with one client alone (each reply awaited before the
 * next request: the proxy's latency, not its throughput), against one redis-server
 * directly, behind nutcracker and behind Aster (`thread = 1`; and the `--baseline`
 * revision), alternating. Pinned like the rest of the section; `--no-pin` gives the
 * unpinned figures.
 */
import { startRedis } from "../../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { serverEntry, startProxies } from "../proxies.ts";
import type { Stage, Workload } from "../types.ts";

/** Concurrent clients of the many-clients stage. */
export const MANY_CLIENTS = 1_000;
/** Before each test's name in the many-clients stage's rows. */
export const MANY_CLIENTS_ROW_PREFIX = "1,000 clients: ";
/** Before each test's name in the one-client stage's rows. */
export const ONE_CLIENT_ROW_PREFIX = "1 client: ";
/** A lone client waits a round trip per request: a fifth of the run's requests suffice. */
const ONE_CLIENT_SHARE = 0.2;

/** GET/SET at pipeline 1 from `clients` clients, direct, behind nutcracker and Aster. */
function clientCountStage(clients: number, rowPrefix: string, share: number): Stage {
  return {
    title: `GET/SET P1, ${clients.toLocaleString("en-US")} ${
      clients === 1 ? "client" : "clients"
    }, one redis-server`,
    async start(stack, options) {
      const redis = stack.use(await startRedis());
      const proxies = await startProxies(stack, {
        servers: [serverEntry(redis.port, 0)],
        baseline: options.baseline,
      });
      const requests = Math.max(1_000, Math.round(options.requests * share));
      const workload = (count: number): Workload => ({
        pipeline: 1,
        requests: count,
        clients,
        tests: ["get", "set"],
      });
      return {
        targets: [
          redisBenchmarkTarget("direct", { port: redis.port, rowPrefix }),
          ...proxies.map(({ name, port, pid, log }) =>
            redisBenchmarkTarget(name, { port, pid, log, rowPrefix })
          ),
        ],
        workloads: [workload(requests)],
        warmUp: workload(Math.round(20_000 * share)),
        notes: [
          `${rowPrefix}redis-benchmark -c ${clients} -P 1, ${requests} requests per test, ` +
          "every client connected for the whole run.",
        ],
      };
    },
  };
}

/** 1,000 clients at P1. */
export const manyClientsStage = clientCountStage(MANY_CLIENTS, MANY_CLIENTS_ROW_PREFIX, 1);
/** One client at P1: the latency a proxy adds to each round trip. */
export const oneClientStage = clientCountStage(1, ONE_CLIENT_ROW_PREFIX, ONE_CLIENT_SHARE);
