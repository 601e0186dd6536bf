/**
 * The stateful stage of the `redis` section: LPUSH/BLPOP ping-pong round trips and
 * MULTI/EXEC transactions of 3 commands (`bench/stateful_load.ts`) against one
 * redis-server direct and behind Aster (`thread = 1`). nutcracker refuses both (no
 * blocking commands, no transactions): no column for it.
 */
import { startRedis } from "../../tests/helpers/servers.ts";
import { statefulTarget } from "../load_tools.ts";
import { serverEntry, startAsters } from "../proxies.ts";
import type { Stage, Workload } from "../types.ts";

/** Round trips per run: a fifth of `--requests` (a round trip is 2 to 5 requests). */
const STATEFUL_DIVISOR = 5;

/** One redis-server direct and behind Aster, driven by the stateful load generator. */
export const statefulStage: Stage = {
  title: "LPUSH/BLPOP ping-pong and MULTI/EXEC, one redis-server",
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const asters = await startAsters(stack, [{
      name: "bench",
      cache_type: "redis",
      servers: [serverEntry(redis.port, 0)],
      thread: 1,
    }], options.baseline);
    const workload: Workload = {
      pipeline: 1,
      requests: Math.max(1000, Math.floor(options.requests / STATEFUL_DIVISOR)),
      tests: ["blpop", "multi"],
    };
    return {
      targets: [
        statefulTarget("direct", { port: redis.port }),
        ...asters.map(({ name, port, pid, log }) => statefulTarget(name, { port, pid, log })),
      ],
      workloads: [workload],
      warmUp: { ...workload, requests: 1000 },
      notes: [
        "LPUSH/BLPOP ping-pong: 25 pairs of connections, a round trip is a BLPOP and the LPUSH " +
        "that wakes it; MULTI/EXEC x3: 50 connections, MULTI SET INCR GET EXEC pipelined. " +
        "Rates are round trips/s; nutcracker refuses both.",
      ],
    };
  },
};
