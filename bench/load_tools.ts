/**
 * The load generators of the bench: `redis-benchmark` and `bench/memcache_load.ts`, each run
 * as its own process per run (on the load core when the section is pinned), bounded in time
 * and stopped when the user interrupts; their output parsed into samples.
 */
import type { LoadResult } from "./memcache_load.ts";
import type { FanOutResult } from "./fan_out_load.ts";
import type { StatefulResult } from "./stateful_load.ts";
import { onCpus } from "./cpu_pinning.ts";
import { CLIENTS, HOST, KEYSPACE, MEMCACHE_VALUE_SIZE } from "./settings.ts";
import type { Sample, Target, Workload } from "./types.ts";

const decoder = new TextDecoder();
/** The stateful load generator (BLPOP ping-pong, MULTI/EXEC), one process per run. */
const STATEFUL_LOAD = new URL("./stateful_load.ts", import.meta.url).pathname;
/** The Pub/Sub fan-out load generator. */
const FAN_OUT_LOAD = new URL("./fan_out_load.ts", import.meta.url).pathname;
const BIG_VALUE_ROUND = new URL("./big_value_round.ts", import.meta.url).pathname;
/** The memcache load generator, run as its own process per run like redis-benchmark. */
const MEMCACHE_LOAD = new URL("./memcache_load.ts", import.meta.url).pathname;
/** Its modules, which its worker threads load (Deno checks read access for a worker's). */
const MEMCACHE_LOAD_PARTS = new URL("./memcache_load/", import.meta.url).pathname;
/** Aster's sources, where memcache_load's threads load the raw-socket layer (`--io ffi`). */
const SRC = new URL("../src/", import.meta.url).pathname;
/** The test helpers stateful_load.ts speaks RESP with. */
const TESTS = new URL("../tests/", import.meta.url).pathname;
/** redis-benchmark's timer tick in threaded (--cluster) mode, ms. */
const THREADED_TICK_MS = 250;
/** One load run that takes longer than this is killed and the bench fails. */
const RUN_TIMEOUT_MS = 120_000;

/** Thrown when the user interrupts the run. */
export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

/**
 * Cores of the load generators `_runTool` starts, or null to let the scheduler place them;
 * set per section by `bench/compare.ts`.
 */
let loadCpus: string | null = null;

/** Runs the load generators started from now on on `cpus` (null: where the scheduler likes). */
export function placeLoadGenerators(cpus: string | null): void {
  loadCpus = cpus;
}

/** The cores the load generators run on, or null when the scheduler places them. */
export function loadGeneratorCpus(): string | null {
  return loadCpus;
}

/**
 * A target driven by redis-benchmark; `cluster` adds `--cluster --threads 1`, `keyspace`
 * adds `-r`.
 */
export function redisBenchmarkTarget(
  name: string,
  opts: {
    port: number;
    cluster?: boolean;
    keyspace?: number;
    log?: () => string;
    pid?: number;
    /** `-3`: the clients say HELLO 3 and read RESP3 replies. */
    resp3?: boolean;
    /** Put before each test's name in its row ("RESP3 vs 2: " + "GET"). */
    rowPrefix?: string;
  },
): Target {
  return {
    name,
    run: async (workload, signal) => {
      const samples = await runRedisBenchmark({ ...opts, workload, signal });
      const prefix = opts.rowPrefix;
      if (prefix === undefined) return samples;
      return new Map([...samples].map(([test, sample]) => [prefix + test, sample]));
    },
    log: opts.log,
    pid: opts.pid,
  };
}

/** The redis-benchmark arguments for one run. */
function redisBenchmarkArgs(
  opts: { port: number; workload: Workload; cluster?: boolean; keyspace?: number; resp3?: boolean },
): string[] {
  const { workload } = opts;
  const args = ["-h", HOST, "-p", `${opts.port}`, "-c", `${workload.clients ?? CLIENTS}`];
  args.push("-n", `${workload.requests}`, "-P", `${workload.pipeline}`, "-q", "--csv");
  // One thread, as against the proxies (--cluster alone starts one per master).
  if (opts.cluster) args.push("--cluster", "--threads", "1");
  if (opts.keyspace) args.push("-r", `${opts.keyspace}`);
  if (workload.valueSize !== undefined) args.push("-d", `${workload.valueSize}`);
  if (opts.resp3) args.push("-3");
  const tests = workload.tests;
  args.push(...(Array.isArray(tests) ? ["-t", tests.join(",")] : tests.command));
  return args;
}

/**
 * Runs redis-benchmark once; returns its samples by test name ("GET", "SET", or the
 * workload's label). Killed after `RUN_TIMEOUT_MS` or when `signal` aborts.
 */
async function runRedisBenchmark(
  opts: {
    port: number;
    workload: Workload;
    cluster?: boolean;
    keyspace?: number;
    resp3?: boolean;
    signal: AbortSignal;
  },
): Promise<Map<string, Sample>> {
  const output = await _runTool("redis-benchmark", redisBenchmarkArgs(opts), opts.signal);
  const stdout = decoder.decode(output.stdout);
  const samples = parseCsv(stdout);
  if (!output.success || samples.size === 0) {
    const stderr = decoder.decode(output.stderr);
    throw new Error(`redis-benchmark on port ${opts.port} failed:\n${stdout}${stderr}`.trimEnd());
  }
  for (const sample of samples.values()) {
    sample.elapsedMs = opts.workload.requests / sample.rps * 1000;
    sample.tickMs = opts.cluster ? THREADED_TICK_MS : null;
  }
  const tests = opts.workload.tests;
  return Array.isArray(tests) ? samples : new Map([[tests.label, [...samples.values()][0]]]);
}

/** Runs `command` to completion, bounded by `RUN_TIMEOUT_MS` and `signal`. */
async function _runTool(
  command: string,
  args: string[],
  signal: AbortSignal,
): Promise<Deno.CommandOutput> {
  const timeout = AbortSignal.timeout(RUN_TIMEOUT_MS);
  const placed = onCpus(loadCpus, command, args);
  const output = await new Deno.Command(placed.command, {
    args: placed.args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.any([signal, timeout]),
  }).output();
  if (signal.aborted || output.signal === "SIGINT") throw new Interrupted();
  if (timeout.aborted) {
    throw new Error(`${command} ${args.join(" ")} ran over ${RUN_TIMEOUT_MS / 1000} s`);
  }
  return output;
}

/**
 * Parses redis-benchmark `--csv` output: a header row naming the columns (`test`, `rps`,
 * and in redis 7 `p50_latency_ms`, `p99_latency_ms` among others), then one quoted row per
 * test.
 */
function parseCsv(csv: string): Map<string, Sample> {
  const rows = csv.split("\n").filter((line) => line.startsWith('"')).map(_csvFields);
  const samples = new Map<string, Sample>();
  const header = rows.find((row) => row[0] === "test");
  const column = (name: string) => header ? header.indexOf(name) : -1;
  const rpsAt = header ? header.indexOf("rps") : 1;
  const number = (row: string[], at: number) => {
    const n = at >= 0 ? Number(row[at]) : NaN;
    return Number.isFinite(n) ? n : null;
  };
  for (const row of rows) {
    if (row === header) continue;
    const rps = number(row, rpsAt);
    if (rps === null) continue;
    samples.set(row[0], {
      rps,
      p50Ms: number(row, column("p50_latency_ms")),
      p99Ms: number(row, column("p99_latency_ms")),
      cpu: null,
      targetCpuUs: null,
      elapsedMs: NaN,
      tickMs: null,
    });
  }
  return samples;
}

/** Splits one CSV line of quoted fields (redis-benchmark quotes every field). */
function _csvFields(line: string): string[] {
  return [...line.matchAll(/"((?:[^"]|"")*)"/g)].map((match) => match[1].replaceAll('""', '"'));
}

/** Row names of `bench/stateful_load.ts`'s tests. */
export const STATEFUL_TESTS: Record<string, string> = {
  blpop: "LPUSH/BLPOP ping-pong",
  multi: "MULTI/EXEC x3",
};

/**
 * A target driven by `bench/stateful_load.ts` (one process per test): workload tests
 * `blpop` and `multi`, at pipeline 1, `requests` round trips.
 */
export function statefulTarget(
  name: string,
  opts: { port: number; log?: () => string; pid?: number },
): Target {
  return {
    name,
    log: opts.log,
    pid: opts.pid,
    run: async (workload, signal) => {
      const tests = workload.tests;
      if (!Array.isArray(tests)) throw new Error("stateful_load runs blpop and multi only");
      const samples = new Map<string, Sample>();
      for (const test of tests) {
        const args = [
          ...["run", "--allow-net", `--allow-read=${SRC},${TESTS}`, STATEFUL_LOAD, "--json"],
          ...["--port", `${opts.port}`, "--test", test, "--requests", `${workload.requests}`],
          ...["--clients", `${workload.clients ?? CLIENTS}`],
        ];
        const output = await _runTool(Deno.execPath(), args, signal);
        const stdout = decoder.decode(output.stdout).trim();
        if (!output.success) {
          const stderr = decoder.decode(output.stderr).trim();
          throw new Error(`stateful_load ${test} on port ${opts.port} failed: ${stderr || stdout}`);
        }
        const result = JSON.parse(stdout) as StatefulResult;
        samples.set(STATEFUL_TESTS[test] ?? test, {
          rps: result.rps,
          p50Ms: result.p50Ms,
          p99Ms: result.p99Ms,
          cpu: null,
          targetCpuUs: null,
          elapsedMs: result.elapsedMs,
          tickMs: null,
        });
      }
      return samples;
    },
  };
}

/**
 * A target driven by `bench/fan_out_load.ts` (one process per run): `workload.clients`
 * subscribers, `workload.requests` PUBLISHes; the sample's rate is messages delivered per
 * second, under the workload's label.
 */
export function fanOutTarget(
  name: string,
  opts: { port: number; log?: () => string; pid?: number },
): Target {
  return {
    name,
    log: opts.log,
    pid: opts.pid,
    run: async (workload, signal) => {
      const tests = workload.tests;
      if (Array.isArray(tests)) throw new Error("fan_out_load needs a labelled workload");
      const args = [
        ...["run", "--allow-net", FAN_OUT_LOAD, "--json", "--port", `${opts.port}`],
        ...["--messages", `${workload.requests}`, "--subscribers", `${workload.clients ?? 100}`],
      ];
      const output = await _runTool(Deno.execPath(), args, signal);
      const stdout = decoder.decode(output.stdout).trim();
      if (!output.success) {
        const stderr = decoder.decode(output.stderr).trim();
        throw new Error(`fan_out_load on port ${opts.port} failed: ${stderr || stdout}`);
      }
      const result = JSON.parse(stdout) as FanOutResult;
      const sample: Sample = {
        rps: result.rps,
        p50Ms: null,
        p99Ms: null,
        cpu: null,
        targetCpuUs: null,
        elapsedMs: result.elapsedMs,
        tickMs: null,
      };
      return new Map([[tests.label, sample]]);
    },
  };
}

/**
 * Median seconds of `rounds` `bench/big_value_round.ts` rounds through `port` (a pipeline of
 * 5 SETs of `mb` MB, then their MGET) after one warm-up round, run like the other load
 * generators on their core: the client's work must not share a core with the servers and
 * proxies it measures.
 */
export async function bigValueRun(
  port: number,
  opts: { mb: number; rounds: number },
  signal: AbortSignal,
): Promise<{ set: number; mget: number }> {
  const args = [
    ...["run", "--allow-net", BIG_VALUE_ROUND, "--port", `${port}`],
    ...["--mb", `${opts.mb}`, "--rounds", `${opts.rounds}`],
  ];
  const output = await _runTool(Deno.execPath(), args, signal);
  const stdout = decoder.decode(output.stdout).trim();
  if (!output.success) {
    const stderr = decoder.decode(output.stderr).trim();
    throw new Error(`big_values on port ${port} failed: ${stderr || stdout}`);
  }
  return JSON.parse(stdout) as { set: number; mget: number };
}

/** A target driven by `bench/memcache_load.ts` (one process per test, `threads` threads). */
export function memcacheTarget(
  name: string,
  opts: { port: number; threads: number; log?: () => string; pid?: number },
): Target {
  return {
    name,
    log: opts.log,
    pid: opts.pid,
    run: async (workload, signal) => {
      const tests = workload.tests;
      if (!Array.isArray(tests)) throw new Error("memcache runs only get and set");
      const samples = new Map<string, Sample>();
      // The order redis-benchmark runs them in: set, then get.
      for (const op of ["set", "get"].filter((test) => tests.includes(test))) {
        const result = await runMemcacheLoadProcess({ ...opts, op, workload, signal });
        samples.set(op.toUpperCase(), {
          rps: result.rps,
          p50Ms: result.p50Ms,
          p99Ms: result.p99Ms,
          cpu: result.cpu,
          targetCpuUs: null,
          elapsedMs: result.elapsedMs,
          tickMs: null,
        });
      }
      return samples;
    },
  };
}

/** Runs the memcache load generator once; fails on any miss (every key is populated). */
async function runMemcacheLoadProcess(
  opts: { port: number; threads: number; op: string; workload: Workload; signal: AbortSignal },
): Promise<LoadResult> {
  const args = [
    ...["run", "--allow-net", "--allow-ffi", `--allow-read=${MEMCACHE_LOAD_PARTS},${SRC}`],
    ...[MEMCACHE_LOAD, "--json", "--io", "ffi"],
    ...["--host", HOST, "--port", `${opts.port}`, "--op", opts.op],
    ...["--connections", `${CLIENTS}`, "--pipeline", `${opts.workload.pipeline}`],
    ...["--requests", `${opts.workload.requests}`, "--threads", `${opts.threads}`],
    ...["--keys", `${opts.workload.keys ?? KEYSPACE}`],
    ...["--value-size", `${opts.workload.valueSize ?? MEMCACHE_VALUE_SIZE}`],
  ];
  const output = await _runTool(Deno.execPath(), args, opts.signal);
  const stdout = decoder.decode(output.stdout).trim();
  if (!output.success) {
    const stderr = decoder.decode(output.stderr).trim();
    throw new Error(`memcache_load on port ${opts.port} failed: ${stderr || stdout}`);
  }
  const result = JSON.parse(stdout) as LoadResult;
  if (result.misses > 0) {
    throw new Error(`memcache_load on port ${opts.port}: ${result.misses} misses`);
  }
  return result;
}
