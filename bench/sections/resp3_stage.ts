/**
 * The RESP3 stage of the `redis` section: redis-benchmark GET and SET at pipeline 16
 * through one Aster over one redis-server, its clients speaking RESP2 (`aster`) and RESP3
 * (`-3`: HELLO 3 first, `aster-resp3`), alternating; the rows compare the two protocols on
 * the same proxy (a RESP3 client's requests go over the backend connections of its lane).
 */
import { startRedis } from "../../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { serverEntry, startAsters } from "../proxies.ts";
import { PIPELINED_FACTOR } from "../settings.ts";
import type { Stage } from "../types.ts";

/** The target of the RESP3 clients (the RESP2 ones are `aster`). */
export const RESP3_TARGET = "aster-resp3";
/** Before each test's name in the stage's rows. */
export const RESP3_ROW_PREFIX = "RESP3 vs 2: ";
/** Its pipeline depth. */
export const RESP3_PIPELINE = 16;

/** Aster (this checkout, `thread = 1`) over one redis-server, RESP2 and RESP3 clients. */
export const resp3Stage: Stage = {
  title: `GET/SET P${RESP3_PIPELINE}, RESP3 clients against RESP2 clients`,
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const [aster] = await startAsters(stack, [{
      name: "bench",
      cache_type: "redis",
      servers: [serverEntry(redis.port, 0)],
      thread: 1,
    }], null);
    const common = {
      port: aster.port,
      pid: aster.pid,
      log: aster.log,
      rowPrefix: RESP3_ROW_PREFIX,
    };
    const workload = (requests: number) => ({
      pipeline: RESP3_PIPELINE,
      requests,
      tests: ["get", "set"],
    });
    return {
      targets: [
        redisBenchmarkTarget("aster", common),
        redisBenchmarkTarget(RESP3_TARGET, { ...common, resp3: true }),
      ],
      workloads: [workload(options.requests * PIPELINED_FACTOR)],
      warmUp: workload(50_000),
      notes: [
        `${RESP3_ROW_PREFIX}GET/SET P${RESP3_PIPELINE}: one Aster, redis-benchmark with RESP2 ` +
        `clients (aster) and with -3 (${RESP3_TARGET}: HELLO 3, RESP3 replies), alternating.`,
      ],
    };
  },
};
