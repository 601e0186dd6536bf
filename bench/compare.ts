/**
 * End-to-end comparison: `redis-benchmark` against redis-server directly, against
 * nutcracker (twemproxy) and against Aster, in the same run on the same machine.
 *
 * Single-backend rows: one redis-server behind nutcracker (fnv1a_64, ketama) and behind
 * Aster (`thread = 1`), GET and SET at pipeline 1 and 16. Fan-out row: MGET of ten fixed
 * keys spread over three redis-servers behind both proxies.
 *
 * Targets run in alternating order (direct, nutcracker, aster; the next round rotated),
 * the tables show each target's median over the rounds.
 *
 * Usage: deno task bench [--quick] [--requests N] [--rounds R]
 *
 *   --requests N   requests per pipeline-1 run and per MGET run; pipeline-16 runs send
 *                  N x 10 (default 100000, 20000 with --quick)
 *   --rounds R     rounds over all targets (default 3, 1 with --quick)
 *   --quick        a short smoke run
 */
import { parseArgs } from "node:util";
import { fnv1a64 } from "../src/hash/fnv.ts";
import { KetamaRing } from "../src/hash/ketama.ts";
import { type AsterProcess, type ClusterToml, startAster } from "../tests/helpers/aster.ts";
import { RespClient, text } from "../tests/helpers/resp_client.ts";
import { type ServerProcess, startNutcracker, startRedis } from "../tests/helpers/servers.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Concurrent redis-benchmark clients. */
const CLIENTS = 50;
/** Pipeline depths of the GET/SET rows. */
const PIPELINES = [1, 16] as const;
/** Pipelined runs send this many times `--requests`, so they last about as long. */
const PIPELINED_FACTOR = 10;
/** redis-servers behind the proxies in the MGET row. */
const SHARDS = 3;
/** Keys of the MGET row (4/3/3 over the shards), populated before it runs. */
const MGET_KEYS = spreadKeys(10, SHARDS);
/** One redis-benchmark run that takes longer than this is killed and the bench fails. */
const RUN_TIMEOUT_MS = 120_000;
/** Exit code after SIGINT/SIGTERM, as a shell reports it. */
const EXIT_INTERRUPTED = 130;

const DEFAULTS = { requests: 100_000, rounds: 3 };
const QUICK = { requests: 20_000, rounds: 1 };

/** Who redis-benchmark talks to. */
type TargetName = "direct" | "nutcracker" | "aster";

/** One listening endpoint under test. */
interface Target {
  name: TargetName;
  port: number;
}

/** Run parameters from the command line. */
interface Options {
  requests: number;
  rounds: number;
}

/** What one redis-benchmark invocation runs. */
interface Workload {
  /** Pipeline depth (`-P`). */
  pipeline: number;
  /** Requests per test (`-n`). */
  requests: number;
  /** `["-t", "get,set"]`, or a command and its arguments. */
  args: string[];
  /** Row label of a custom command (its CSV name is the whole command line). */
  label?: string;
}

/** One CSV row of redis-benchmark: throughput and the p99 latency, if printed. */
interface Sample {
  rps: number;
  p99Ms: number | null;
}

/** Samples per row label ("GET P1"), per target. */
type Results = Map<string, Map<TargetName, Sample[]>>;

/** Thrown when the user interrupts the run. */
class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

// ---------------------------------------------------------------------------------------
// Command line

/** Parses `--quick`, `--requests N`, `--rounds R`; throws on anything else. */
function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: "boolean" },
      requests: { type: "string" },
      rounds: { type: "string" },
    },
  });
  const base = values.quick ? QUICK : DEFAULTS;
  return {
    requests: _positiveInt("--requests", values.requests, base.requests),
    rounds: _positiveInt("--rounds", values.rounds, base.rounds),
  };
}

function _positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Processes under test

/** The alias of the `index`th backend; the ring hashes it, not the (random) port. */
function _alias(index: number): string {
  return `redis-${index + 1}`;
}

/** A `servers` entry both proxies understand the same way. */
function _serverEntry(port: number, index: number): string {
  return `${HOST}:${port}:1 ${_alias(index)}`;
}

/**
 * The first `count` keys of `k1`, `k2`, ... that fill `shards` aliased backends evenly
 * (the ketama ring of both proxies, fnv1a_64), so an MGET of them fans out to every shard.
 */
function spreadKeys(count: number, shards: number): string[] {
  const ring = new KetamaRing(
    Array.from({ length: shards }, (_, i) => ({ name: _alias(i), weight: 1 })),
  );
  const quota = Array.from(
    { length: shards },
    (_, i) => Math.floor(count / shards) + (i < count % shards ? 1 : 0),
  );
  const keys: string[] = [];
  for (let i = 1; keys.length < count && i <= 100_000; i++) {
    const key = `k${i}`;
    const shard = ring.pick(fnv1a64(encoder.encode(key)));
    if (quota[shard] === 0) continue;
    quota[shard]--;
    keys.push(key);
  }
  if (keys.length < count) throw new Error(`no ${count} keys spread over ${shards} shards`);
  return keys;
}

/** Starts nutcracker and Aster in front of `redis`; registers all of them on `stack`. */
async function startProxies(
  stack: AsyncDisposableStack,
  redis: ServerProcess[],
): Promise<{ nutcracker: ServerProcess; aster: AsterProcess }> {
  const servers = redis.map((server, i) => _serverEntry(server.port, i));
  const nutcracker = stack.use(
    await startNutcracker({ servers, hash: "fnv1a_64", distribution: "ketama" }),
  );
  const cluster: ClusterToml = { name: "bench", cache_type: "redis", servers, thread: 1 };
  const aster = stack.use(await startAster([cluster]));
  return { nutcracker, aster };
}

/** One redis-server, and nutcracker and Aster in front of it. */
async function startSingleBackend(stack: AsyncDisposableStack): Promise<Target[]> {
  const redis = stack.use(await startRedis());
  const { nutcracker, aster } = await startProxies(stack, [redis]);
  return [
    { name: "direct", port: redis.port },
    { name: "nutcracker", port: nutcracker.port },
    { name: "aster", port: aster.ports[0] },
  ];
}

/**
 * `SHARDS` redis-servers behind nutcracker and Aster, with `MGET_KEYS` written through
 * Aster and read back through both proxies; returns the proxies and the keys per shard.
 */
async function startSharded(
  stack: AsyncDisposableStack,
): Promise<{ targets: Target[]; keysPerShard: number[] }> {
  const redis: ServerProcess[] = [];
  for (let i = 0; i < SHARDS; i++) redis.push(stack.use(await startRedis()));
  const { nutcracker, aster } = await startProxies(stack, redis);
  const targets: Target[] = [
    { name: "nutcracker", port: nutcracker.port },
    { name: "aster", port: aster.ports[0] },
  ];
  await _populate(aster.ports[0]);
  for (const target of targets) await _checkMget(target);
  const keysPerShard: number[] = [];
  for (const server of redis) keysPerShard.push(Number(await _command(server.port, ["DBSIZE"])));
  return { targets, keysPerShard };
}

/** Runs one command on a fresh connection and returns its reply as text. */
async function _command(port: number, args: string[]): Promise<unknown> {
  await using client = await RespClient.connect(port);
  return text(await client.command(...args));
}

async function _populate(port: number): Promise<void> {
  const reply = await _command(port, ["MSET", ...MGET_KEYS.flatMap((key) => [key, `v-${key}`])]);
  if (reply !== "OK") throw new Error(`MSET through aster answered ${JSON.stringify(reply)}`);
}

/** Fails unless MGET through `target` returns every populated value. */
async function _checkMget(target: Target): Promise<void> {
  const reply = await _command(target.port, ["MGET", ...MGET_KEYS]);
  const expected = MGET_KEYS.map((key) => `v-${key}`);
  if (JSON.stringify(reply) !== JSON.stringify(expected)) {
    throw new Error(`MGET through ${target.name} answered ${JSON.stringify(reply)}`);
  }
}

// ---------------------------------------------------------------------------------------
// redis-benchmark

/** The redis-benchmark arguments for `workload` against `port`. */
function benchmarkArgs(port: number, workload: Workload): string[] {
  return [
    ...["-h", HOST, "-p", `${port}`, "-c", `${CLIENTS}`, "-n", `${workload.requests}`],
    ...["-P", `${workload.pipeline}`, "-q", "--csv", ...workload.args],
  ];
}

/**
 * Runs redis-benchmark once; returns its samples by test name ("GET", "SET", or the
 * workload's label). Killed after `RUN_TIMEOUT_MS` or when `signal` aborts.
 */
async function runBenchmark(
  port: number,
  opts: { workload: Workload; signal: AbortSignal },
): Promise<Map<string, Sample>> {
  const timeout = AbortSignal.timeout(RUN_TIMEOUT_MS);
  const output = await new Deno.Command("redis-benchmark", {
    args: benchmarkArgs(port, opts.workload),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.any([opts.signal, timeout]),
  }).output();
  if (opts.signal.aborted || output.signal === "SIGINT") throw new Interrupted();
  if (timeout.aborted) {
    throw new Error(`redis-benchmark on port ${port} ran over ${RUN_TIMEOUT_MS / 1000} s`);
  }
  const stdout = decoder.decode(output.stdout);
  const samples = parseCsv(stdout);
  if (!output.success || samples.size === 0) {
    const stderr = decoder.decode(output.stderr);
    throw new Error(`redis-benchmark on port ${port} failed:\n${stdout}${stderr}`.trimEnd());
  }
  const label = opts.workload.label;
  return label ? new Map([[label, [...samples.values()][0]]]) : samples;
}

/**
 * Parses redis-benchmark `--csv` output: a header row naming the columns (`test`, `rps`,
 * and in redis 7 `p99_latency_ms` among others), then one quoted row per test.
 */
function parseCsv(csv: string): Map<string, Sample> {
  const rows = csv.split("\n").filter((line) => line.startsWith('"')).map(_csvFields);
  const samples = new Map<string, Sample>();
  const header = rows.find((row) => row[0] === "test");
  const rpsAt = header ? header.indexOf("rps") : 1;
  const p99At = header ? header.indexOf("p99_latency_ms") : -1;
  for (const row of rows) {
    if (row === header) continue;
    const rps = Number(row[rpsAt]);
    if (!Number.isFinite(rps)) continue;
    const p99 = p99At >= 0 ? Number(row[p99At]) : NaN;
    samples.set(row[0], { rps, p99Ms: Number.isFinite(p99) ? p99 : null });
  }
  return samples;
}

/** Splits one CSV line of quoted fields (redis-benchmark quotes every field). */
function _csvFields(line: string): string[] {
  return [...line.matchAll(/"((?:[^"]|"")*)"/g)].map((match) => match[1].replaceAll('""', '"'));
}

/** GET/SET at each pipeline depth. */
function getSetWorkloads(requests: number): Workload[] {
  return PIPELINES.map((pipeline) => ({
    pipeline,
    requests: pipeline === 1 ? requests : requests * PIPELINED_FACTOR,
    args: ["-t", "get,set"],
  }));
}

/** MGET of every populated key, pipeline 1. */
function mgetWorkload(requests: number): Workload {
  const label = `MGET x${MGET_KEYS.length}`;
  return { pipeline: 1, requests, args: ["MGET", ...MGET_KEYS], label };
}

/** The row label of one test at one pipeline depth: "GET P1". */
function rowLabel(test: string, pipeline: number): string {
  return `${test} P${pipeline}`;
}

/** `items` rotated left by `by` places. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const n = by % items.length;
  return [...items.slice(n), ...items.slice(0, n)];
}

/**
 * Runs every workload against every target once per round, targets in rotated order
 * each round, and adds the samples to `results`.
 */
async function runRounds(
  targets: Target[],
  opts: { workloads: Workload[]; rounds: number; results: Results; signal: AbortSignal },
): Promise<void> {
  for (let round = 0; round < opts.rounds; round++) {
    for (const workload of opts.workloads) {
      for (const target of rotate(targets, round)) {
        const samples = await runBenchmark(target.port, { workload, signal: opts.signal });
        for (const [test, sample] of samples) {
          _record(opts.results, rowLabel(test, workload.pipeline), target.name, sample);
        }
        _progress(round, opts.rounds, target, samples, workload.pipeline);
      }
    }
  }
}

/** One short pipelined run per target, so JIT and connection setup are out of the way. */
async function warmUp(
  targets: Target[],
  opts: { workload: Workload; signal: AbortSignal },
): Promise<void> {
  for (const target of targets) await runBenchmark(target.port, opts);
}

function _record(results: Results, row: string, target: TargetName, sample: Sample): void {
  let byTarget = results.get(row);
  if (!byTarget) results.set(row, byTarget = new Map());
  let samples = byTarget.get(target);
  if (!samples) byTarget.set(target, samples = []);
  samples.push(sample);
}

function _progress(
  round: number,
  rounds: number,
  target: Target,
  samples: Map<string, Sample>,
  pipeline: number,
): void {
  const parts = [...samples].map(([test, s]) => `${rowLabel(test, pipeline)} ${_rps(s.rps)}`);
  console.error(`  round ${round + 1}/${rounds} ${target.name.padEnd(10)} ${parts.join(", ")}`);
}

// ---------------------------------------------------------------------------------------
// Report

/** The median of `values`; NaN when empty. */
function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median of one field of a row's samples for one target. */
function _medianOf(
  results: Results,
  row: string,
  opts: { target: TargetName; field: "rps" | "p99Ms" },
): number {
  const samples = results.get(row)?.get(opts.target) ?? [];
  const values = samples.map((s) => s[opts.field]).filter((v): v is number => v !== null);
  return median(values);
}

function _rps(n: number): string {
  return Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US");
}

function _ms(n: number): string {
  return Number.isNaN(n) ? "-" : n.toFixed(3);
}

function _ratio(a: number, b: number): string {
  const r = a / b;
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : "-";
}

/** A text table: first column left-aligned, the others right-aligned. */
function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
      .join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

/** Throughput table: median req/s per target and the ratios. */
function throughputTable(results: Results): string {
  const rows = [...results.keys()].map((row) => {
    const [direct, nutcracker, aster] = (["direct", "nutcracker", "aster"] as const)
      .map((target) => _medianOf(results, row, { target, field: "rps" }));
    return [
      row,
      _rps(direct),
      _rps(nutcracker),
      _rps(aster),
      _ratio(aster, nutcracker),
      _ratio(aster, direct),
    ];
  });
  const headers = ["test", "direct", "nutcracker", "aster", "aster/nutcracker", "aster/direct"];
  return formatTable(headers, rows);
}

/** p99 latency table for the pipeline-1 rows (lower is better). */
function latencyTable(results: Results): string {
  const rows = [...results.keys()].filter((row) => row.endsWith(" P1")).map((row) => {
    const [direct, nutcracker, aster] = (["direct", "nutcracker", "aster"] as const)
      .map((target) => _medianOf(results, row, { target, field: "p99Ms" }));
    return [row, _ms(direct), _ms(nutcracker), _ms(aster), _ratio(aster, nutcracker)];
  });
  return formatTable(["p99 ms", "direct", "nutcracker", "aster", "aster/nutcracker"], rows);
}

/** The first line `command --version` prints, or "not found". */
async function _version(command: string, flag = "--version"): Promise<string> {
  try {
    const out = await new Deno.Command(command, { args: [flag], stdout: "piped", stderr: "piped" })
      .output();
    const bytes = out.stdout.length > 0 ? out.stdout : out.stderr;
    return decoder.decode(bytes).split("\n")[0].trim();
  } catch {
    return "not found";
  }
}

async function _printHeader(options: Options): Promise<void> {
  const versions = await Promise.all([_version("redis-server"), _version("nutcracker")]);
  console.log(`aster bench: ${navigator.hardwareConcurrency} cores, ${Deno.build.target}`);
  console.log(`  ${versions.join("\n  ")}`);
  console.log(
    `  ${CLIENTS} clients, ${options.requests} requests per P1/MGET run, ` +
      `${options.requests * PIPELINED_FACTOR} per P16 run, ${options.rounds} round(s), ` +
      `medians shown`,
  );
}

function _printReport(results: Results, keysPerShard: number[]): void {
  console.log("\nThroughput, req/s (higher is better)\n");
  console.log(throughputTable(results));
  console.log("\nLatency at pipeline 1, p99 ms (lower is better)\n");
  console.log(latencyTable(results));
  console.log(
    `\nMGET x${MGET_KEYS.length}: ${SHARDS} redis-servers behind each proxy, ` +
      `keys per shard ${keysPerShard.join("/")}; no direct target (one MGET spans shards).`,
  );
  console.log(
    "Note: ratios only compare numbers within one run; absolute req/s depend on the " +
      "machine and its load (redis-benchmark shares the cores with the servers).",
  );
}

// ---------------------------------------------------------------------------------------
// Main

/** Aborts `controller` on SIGINT/SIGTERM; returns a function removing the listeners. */
function _abortOnSignal(controller: AbortController): () => void {
  const signals = ["SIGINT", "SIGTERM"] as const;
  const onSignal = () => {
    if (!controller.signal.aborted) console.error("\nstopping: interrupted");
    controller.abort();
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return () => {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  };
}

/** Runs the whole comparison; every process it starts is stopped before it returns. */
async function compare(options: Options, signal: AbortSignal): Promise<void> {
  await _printHeader(options);
  const results: Results = new Map();
  let keysPerShard: number[];
  {
    await using stack = new AsyncDisposableStack();
    const targets = await startSingleBackend(stack);
    signal.throwIfAborted();
    const workloads = getSetWorkloads(options.requests);
    console.error("GET/SET, one redis-server:");
    await warmUp(targets, { workload: workloads[workloads.length - 1], signal });
    await runRounds(targets, { workloads, rounds: options.rounds, results, signal });
  }
  {
    await using stack = new AsyncDisposableStack();
    const sharded = await startSharded(stack);
    keysPerShard = sharded.keysPerShard;
    signal.throwIfAborted();
    const workload = mgetWorkload(options.requests);
    console.error(`MGET, ${SHARDS} redis-servers:`);
    await warmUp(sharded.targets, { workload: { ...workload, requests: 10_000 }, signal });
    await runRounds(sharded.targets, {
      workloads: [workload],
      rounds: options.rounds,
      results,
      signal,
    });
  }
  _printReport(results, keysPerShard);
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  const controller = new AbortController();
  const removeListeners = _abortOnSignal(controller);
  try {
    await compare(options, controller.signal);
    return 0;
  } catch (err) {
    if (controller.signal.aborted || err instanceof Interrupted) return EXIT_INTERRUPTED;
    console.error(`bench failed: ${err instanceof Error ? err.message : err}`);
    return 1;
  } finally {
    removeListeners();
  }
}

if (import.meta.main) Deno.exit(await main());
