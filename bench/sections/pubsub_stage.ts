/**
 * The Pub/Sub stage of the `redis` section: one publisher pipelines PUBLISH to a channel
 * that 100 subscribers follow (`bench/fan_out_load.ts`, run on the load generators' core
 * like redis-benchmark), through Aster and on one redis-server directly; the row is the
 * messages delivered per second (every subscriber's count summed).
 */
import { startRedis } from "../../tests/helpers/servers.ts";
import { FAN_OUT_BATCH } from "../fan_out_load.ts";
import { fanOutTarget } from "../load_tools.ts";
import { serverEntry, startAsters } from "../proxies.ts";
import type { Stage, Workload } from "../types.ts";

/** Subscribers of the channel. */
export const FAN_OUT_SUBSCRIBERS = 100;
/** The row's label. */
export const FAN_OUT_LABEL = `PUBLISH to ${FAN_OUT_SUBSCRIBERS} subscribers`;

/** One redis-server directly and behind Aster (`redis`, `thread = 1`). */
export const pubsubStage: Stage = {
  title: `PUBLISH fan-out to ${FAN_OUT_SUBSCRIBERS} subscribers`,
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const asters = await startAsters(stack, [{
      name: "bench",
      cache_type: "redis",
      servers: [serverEntry(redis.port, 0)],
      thread: 1,
    }], options.baseline);
    // `requests / 10` PUBLISHes, each delivered to every subscriber: 10x the requests in
    // deliveries, long enough to measure on redis-server directly.
    const workload = (requests: number): Workload => ({
      pipeline: 1,
      requests: Math.max(1, Math.floor(requests / 10)),
      clients: FAN_OUT_SUBSCRIBERS,
      tests: { command: [], label: FAN_OUT_LABEL },
    });
    return {
      targets: [
        fanOutTarget("direct", { port: redis.port }),
        ...asters.map(({ name, port, pid, log }) => fanOutTarget(name, { port, pid, log })),
      ],
      workloads: [workload(options.requests)],
      warmUp: workload(20_000),
      notes: [
        `${FAN_OUT_LABEL}: messages delivered per second, summed over the subscribers ` +
        `(one publisher pipelining ${FAN_OUT_BATCH} PUBLISH per write; bench/fan_out_load.ts ` +
        `on the load generators' core). Aster's CPU per request is per PUBLISH (100 deliveries).`,
      ],
    };
  },
};
