/**
 * `deno task fuzz`: runs the decoder fuzzer (harness.ts) over many inputs per decoder.
 *
 *   deno task fuzz [--inputs N] [--seed S] [--target NAME]... [--jobs J]
 *   deno task fuzz --target NAME --seed S --index I     (replay one input, verbosely)
 *
 * Each target runs in its own Worker (this same module) so targets run in parallel and a
 * decode() that never returns is caught: the worker publishes the index of the input it
 * is on, and one that stays on the same input for --stall-seconds is stopped and that
 * input reported. Without read access to src/ (needed to start workers) the targets run
 * one after the other in this thread, without that watchdog.
 * Exit status: 0 when every input kept every property, 1 on any failure, 2 on bad usage.
 */
import { FUZZ_TARGETS, type FuzzTarget } from "./fuzz_types.ts";
import { type FuzzFailure, type FuzzReport, makeInput, replayInput, runFuzz } from "./harness.ts";
import { hex } from "./outcome_text.ts";
import { runtime } from "../runtime/runtime.ts";

interface _Options {
  inputs: number;
  seed: number;
  first: number;
  targets: FuzzTarget[];
  jobs: number;
  stallSeconds: number;
  maxFailures: number;
  index: number | null;
}

/** Sent to a worker: one target to run. */
interface _Job {
  target: FuzzTarget;
  seed: number;
  first: number;
  inputs: number;
  maxFailures: number;
  /** Int32Array[0]: index of the input being checked. */
  progress: SharedArrayBuffer;
}

/** Sent back by a worker. */
interface _Done {
  target: FuzzTarget;
  report: FuzzReport;
  ms: number;
}

const USAGE = `usage: deno task fuzz [options]

Feeds generated and mutated inputs to Aster's protocol decoders, whole and in random
chunks, and checks that only ProtocolError is thrown, that every call makes progress and
never consumes more than it was given, that valid frames decode as encoded, and that
whole and chunked feeding agree.

options:
  --inputs N          inputs per target (default 1000000)
  --seed S            run seed, an unsigned 32-bit integer (default: random, printed)
  --target NAME       a target to run, repeatable or comma-separated (default: all):
                      ${FUZZ_TARGETS.slice(0, 3).join(", ")},
                      ${FUZZ_TARGETS.slice(3).join(", ")}
  --first I           index of the first input (default 0)
  --index I           replay input I of --seed for one --target, and print it in detail
  --jobs J            targets run at once, in workers (default: CPU cores)
  --stall-seconds T   report an input still being decoded after T seconds (default 60)
  --max-failures N    failures printed per target (default 10)
  -h, --help          this text
`;

const _FLAGS = [
  "--inputs",
  "--seed",
  "--first",
  "--index",
  "--jobs",
  "--stall-seconds",
  "--max-failures",
  "--target",
];

function _parse(args: string[]): _Options {
  const opts: _Options = {
    inputs: 1_000_000,
    seed: crypto.getRandomValues(new Uint32Array(1))[0],
    first: 0,
    targets: [],
    jobs: Math.max(1, navigator.hardwareConcurrency || 1),
    stallSeconds: 60,
    maxFailures: 10,
    index: null,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const eq = flag.indexOf("=");
    const name = eq > 0 ? flag.slice(0, eq) : flag;
    if (name === "-h" || name === "--help") {
      console.log(USAGE);
      runtime.exit(0);
    }
    if (!_FLAGS.includes(name)) _usage(`unknown option ${name}`);
    const value = eq > 0 ? flag.slice(eq + 1) : args[++i];
    if (value === undefined) _usage(`${name} needs a value`);
    const int = (min: number, max: number) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < min || n > max) {
        _usage(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
      }
      return n;
    };
    switch (name) {
      case "--inputs":
        opts.inputs = int(1, 2 ** 31 - 1);
        break;
      case "--seed":
        opts.seed = int(0, 2 ** 32 - 1);
        break;
      case "--first":
        opts.first = int(0, 2 ** 31 - 1);
        break;
      case "--index":
        opts.index = int(0, 2 ** 31 - 1);
        break;
      case "--jobs":
        opts.jobs = int(1, 64);
        break;
      case "--stall-seconds":
        opts.stallSeconds = int(1, 86400);
        break;
      case "--max-failures":
        opts.maxFailures = int(0, 100000);
        break;
      case "--target":
        for (const t of value.split(",")) {
          if (!(FUZZ_TARGETS as readonly string[]).includes(t)) {
            _usage(`unknown target ${JSON.stringify(t)}; one of ${FUZZ_TARGETS.join(", ")}`);
          }
          if (!opts.targets.includes(t as FuzzTarget)) opts.targets.push(t as FuzzTarget);
        }
        break;
      default:
        _usage(`unknown option ${name}`);
    }
  }
  if (opts.targets.length === 0) opts.targets = [...FUZZ_TARGETS];
  if (opts.first + opts.inputs > 2 ** 31 - 1) _usage("--first + --inputs must stay below 2^31");
  if (opts.index !== null && opts.targets.length !== 1) _usage("--index needs one --target");
  return opts;
}

function _usage(message: string): never {
  console.error(`fuzz: ${message}\n\n${USAGE}`);
  runtime.exit(2);
}

function _replay(target: FuzzTarget, seed: number, index: number): number {
  const r = replayInput(target, { seed, index });
  const show = (name: string, run: typeof r.whole | null) => {
    if (run === null) return;
    console.log(
      `${name}: ${run.calls} calls, consumed ${run.consumed}, ended ${run.end}` +
        (run.end === "protocol-error" ? ` (${run.error})` : "") +
        (run.fault === null ? "" : `, FAULT: ${run.fault}`),
    );
    for (const out of run.results.slice(0, 50)) {
      console.log(`  ${out.skip ? `skip ${out.size}` : out.text}`);
    }
    if (run.results.length > 50) console.log(`  ... ${run.results.length - 50} more`);
  };
  console.log(`${target} seed ${seed} index ${index}: ${r.input.label}`);
  console.log(
    `input (${r.input.bytes.length} bytes): ${hex(r.input.bytes.subarray(0, 4096))}` +
      (r.input.bytes.length > 4096 ? "..." : ""),
  );
  console.log(
    `text: ${JSON.stringify(new TextDecoder("latin1").decode(r.input.bytes.subarray(0, 1024)))}`,
  );
  console.log(`chunks: ${r.chunks.join(" ")}`);
  show("whole", r.whole);
  show("chunked", r.chunked);
  console.log(r.reason === null ? "OK: every property held" : `FAILED: ${r.reason}`);
  return r.reason === null ? 0 : 1;
}

function _print(done: _Done, opts: _Options): void {
  const { report, target } = done;
  const rate = report.inputs / (done.ms / 1000);
  console.log(
    `${target.padEnd(25)} ${String(report.inputs).padStart(9)} inputs ` +
      `${String(report.failed).padStart(6)} failed ${(done.ms / 1000).toFixed(1).padStart(7)} s ` +
      `(${Math.round(rate)} inputs/s)`,
  );
  for (const f of report.failures.slice(0, opts.maxFailures)) _printFailure(f);
  if (report.failed > opts.maxFailures) {
    console.log(`    ... ${report.failed - opts.maxFailures} more failures`);
  }
}

function _printFailure(f: FuzzFailure): void {
  console.log(`  #${f.index} [${f.label}] ${f.reason}`);
  const shown = f.hex.length > 200 ? `${f.hex.slice(0, 200)}...` : f.hex;
  console.log(`    ${f.length} bytes: ${shown}`);
  console.log(
    `    replay: deno task fuzz --target ${f.target} --seed ${f.seed} --index ${f.index}`,
  );
}

function _runInThread(opts: _Options): _Done[] {
  return opts.targets.map((target) => {
    const t0 = performance.now();
    const report = runFuzz(target, {
      seed: opts.seed,
      inputs: opts.inputs,
      first: opts.first,
      maxFailures: opts.maxFailures,
    });
    const done = { target, report, ms: performance.now() - t0 };
    _print(done, opts);
    return done;
  });
}

function _runInWorkers(opts: _Options): Promise<_Done[]> {
  const queue = [...opts.targets];
  const results: _Done[] = [];
  return new Promise((resolve) => {
    let running = 0;
    const startNext = () => {
      const target = queue.shift();
      if (target === undefined) {
        if (running === 0) resolve(results);
        return;
      }
      running++;
      const progress = new SharedArrayBuffer(4);
      const view = new Int32Array(progress);
      Atomics.store(view, 0, -1);
      const worker = runtime.newWorker(new URL(import.meta.url), `fuzz ${target}`);
      const t0 = performance.now();
      let seen = -1;
      let since = performance.now();
      const finish = (done: _Done) => {
        clearInterval(watchdog);
        worker.terminate();
        results.push(done);
        _print(done, opts);
        running--;
        startNext();
      };
      const watchdog = setInterval(() => {
        const index = Atomics.load(view, 0);
        if (index !== seen) {
          seen = index;
          since = performance.now();
          return;
        }
        if (performance.now() - since < opts.stallSeconds * 1000 || index < 0) return;
        const { input } = makeInput(target, opts.seed, index);
        const failure: FuzzFailure = {
          target,
          seed: opts.seed,
          index,
          label: input.label,
          reason: `stalled: one input took over ${opts.stallSeconds} s ` +
            `(a decode() that never returns, or a super-linear one); the run was stopped there`,
          length: input.bytes.length,
          hex: hex(input.bytes.subarray(0, 256)) + (input.bytes.length > 256 ? "..." : ""),
          chunks: [],
        };
        finish({
          target,
          report: { inputs: index - opts.first, failures: [failure], failed: 1 },
          ms: performance.now() - t0,
        });
      }, 1000);
      worker.onmessage = (e: MessageEvent<_Done>) => finish(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        const failure: FuzzFailure = {
          target,
          seed: opts.seed,
          index: Math.max(Atomics.load(view, 0), 0),
          label: "-",
          reason: `the worker died: ${e.message}`,
          length: 0,
          hex: "",
          chunks: [],
        };
        finish({
          target,
          report: { inputs: 0, failures: [failure], failed: 1 },
          ms: performance.now() - t0,
        });
      };
      const job: _Job = {
        target,
        seed: opts.seed,
        first: opts.first,
        inputs: opts.inputs,
        maxFailures: opts.maxFailures,
        progress,
      };
      worker.postMessage(job);
    };
    const workers = Math.min(opts.jobs, queue.length);
    for (let i = 0; i < workers; i++) startNext();
  });
}

async function _main(args: string[]): Promise<number> {
  const opts = _parse(args);
  if (opts.index !== null) return _replay(opts.targets[0], opts.seed, opts.index);
  const srcDir = new URL("..", import.meta.url);
  const canSpawn = runtime.isGranted("read", srcDir);
  console.log(
    `aster fuzz: seed ${opts.seed}, ${opts.inputs} inputs per target from index ${opts.first}, ` +
      (canSpawn
        ? `${Math.min(opts.jobs, opts.targets.length)} workers`
        : "in one thread (no read access to src/: no workers, no stall watchdog)"),
  );
  const t0 = performance.now();
  const done = canSpawn ? await _runInWorkers(opts) : _runInThread(opts);
  let failed = 0;
  let inputs = 0;
  for (const d of done) {
    failed += d.report.failed;
    inputs += d.report.inputs;
  }
  console.log(
    `total: ${inputs} inputs, ${failed} failed, ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      ` (seed ${opts.seed})`,
  );
  return failed > 0 ? 1 : 0;
}

/** Worker side: run one job and post its report. */
function _serveWorker(): void {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<_Job>) => void) | null;
    postMessage(message: _Done): void;
  };
  scope.onmessage = (e) => {
    const job = e.data;
    const view = new Int32Array(job.progress);
    const t0 = performance.now();
    const report = runFuzz(job.target, {
      seed: job.seed,
      inputs: job.inputs,
      first: job.first,
      maxFailures: job.maxFailures,
      onInput: (index) => Atomics.store(view, 0, index),
    });
    scope.postMessage({ target: job.target, report, ms: performance.now() - t0 });
  };
}

if ("WorkerGlobalScope" in globalThis) _serveWorker();
else if (import.meta.main) runtime.exit(await _main(runtime.args));
