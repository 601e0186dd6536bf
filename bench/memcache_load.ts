/**
 * A small memcached text-protocol load generator, in the spirit of redis-benchmark: N
 * concurrent connections each send `get` or `set` requests over a fixed key space
 * (`key:0` .. `key:<keys-1>`, picked at random) with a fixed pipeline depth, for a request
 * count or a duration, and report throughput and latency percentiles.
 *
 * Every reply is framed and checked: a `set` must answer exactly `STORED`, a `get` either
 * `END` (a miss) or exactly `VALUE <key> 0 <size>` with the value this generator stores for
 * that key, then `END`. Anything else fails the run. Latency is measured per request from
 * the write of its batch to the parse of its reply (at pipeline 1: send to reply).
 *
 * The connections can be spread over several Web Workers (`--threads`), each an event loop
 * on its own OS thread, so one Deno process can drive more than one core. The result reports
 * the generator's own CPU use: near 100% of its threads means the generator, not the target,
 * set the pace. `--io ffi` runs its sockets on Aster's raw-socket layer (`src/runtime/deno/ffi/`) instead
 * of Deno's socket ops, so that the same core drives more load.
 *
 * Usage: deno run --allow-net --allow-read bench/memcache_load.ts --port P [options]
 * (`--allow-read` lets the worker threads load bench/memcache_load/; one thread needs only
 * the net.)
 *
 *   --host H          target host (default 127.0.0.1)
 *   --port P          target port (required)
 *   --op get|set      request kind (default get)
 *   --connections N   concurrent connections (default 50)
 *   --pipeline D      requests in flight per connection (default 1)
 *   --requests N      measured requests in all (default 100000)
 *   --duration S      measure for S seconds instead of a request count
 *   --keys K          key space size (default 10000)
 *   --value-size B    value bytes (default 32)
 *   --threads T       worker threads sharing the connections (default 1)
 *   --warmup-ms MS    unmeasured load first, for the JIT and the connections (default 300)
 *   --io deno|ffi     socket I/O: Deno's ops, or raw sockets through FFI (needs --allow-ffi
 *                     and read access to src/); default deno
 *   --populate        set every key once (pipelined) before the run
 *   --json            print the result as one JSON object
 *
 * The parts, in bench/memcache_load/: load_options.ts (options and their defaults),
 * run.ts (threads and their results), thread.ts (one thread's connections and phases),
 * connection.ts (the load loop of one connection), replies.ts (requests and reply checks),
 * results.ts (histogram, merge, report), worker.ts (a worker thread's body).
 */
import { parseArgs } from "node:util";
import { type LoadOptions, resolveSettings } from "./memcache_load/load_options.ts";
import { formatResult } from "./memcache_load/results.ts";
import { runMemcacheLoad } from "./memcache_load/run.ts";

export type { LoadOptions } from "./memcache_load/load_options.ts";
export { type LoadResult, percentile } from "./memcache_load/results.ts";
export { runMemcacheLoad } from "./memcache_load/run.ts";

/** Parses the command line into load options and output format; throws on bad input. */
function parseOptions(args: string[]): { load: LoadOptions; json: boolean } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      op: { type: "string" },
      connections: { type: "string" },
      pipeline: { type: "string" },
      requests: { type: "string" },
      duration: { type: "string" },
      keys: { type: "string" },
      "value-size": { type: "string" },
      threads: { type: "string" },
      "warmup-ms": { type: "string" },
      populate: { type: "boolean" },
      io: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (values.port === undefined) throw new Error("--port is required");
  const num = (value: string | undefined) => value === undefined ? undefined : Number(value);
  const duration = num(values.duration);
  return {
    load: {
      host: values.host,
      port: Number(values.port),
      op: values.op as "get" | "set" | undefined,
      connections: num(values.connections),
      pipeline: num(values.pipeline),
      requests: num(values.requests),
      durationMs: duration === undefined ? undefined : duration * 1000,
      keys: num(values.keys),
      valueSize: num(values["value-size"]),
      threads: num(values.threads),
      warmupMs: num(values["warmup-ms"]),
      populate: values.populate,
      io: values.io as "deno" | "ffi" | undefined,
    },
    json: values.json ?? false,
  };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(Deno.args);
    resolveSettings(parsed.load);
  } catch (err) {
    console.error(`memcache_load: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  try {
    const result = await runMemcacheLoad(parsed.load);
    console.log(parsed.json ? JSON.stringify(result) : formatResult(result));
    return 0;
  } catch (err) {
    console.error(`memcache_load failed: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
