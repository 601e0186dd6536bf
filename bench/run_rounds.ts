/**
 * Runs a section: its probe, then each stage's processes, a warm-up per target and the
 * rounds (targets in rotated order each round), recording every sample with the CPU the
 * target and the load generator's core used.
 */
import { coreTicks, processCpuSeconds } from "./cpu_pinning.ts";
import { Interrupted, loadGeneratorCpus } from "./load_tools.ts";
import { formatRps } from "./report.ts";
import { recordSample, rowLabel } from "./results.ts";
import type {
  Options,
  ProbeRun,
  Results,
  Sample,
  Section,
  SectionRun,
  Target,
  Workload,
} from "./types.ts";

/** How much of Aster's log a failed run shows. */
const LOG_TAIL_CHARS = 2000;

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
        const usage = await _startUsage(target);
        const samples = await _describeFailure(target, target.run(workload, opts.signal));
        await _endUsage(usage, workload, samples);
        for (const [test, sample] of samples) {
          recordSample(opts.results, rowLabel(test, workload.pipeline), target.name, sample);
        }
        _progress(round, opts.rounds, target, samples, workload.pipeline);
      }
    }
  }
}

/** CPU counters read before a run. */
interface UsageStart {
  pid: number | undefined;
  targetSeconds: number;
  loadCore: { busy: number; total: number } | null;
}

async function _startUsage(target: Target): Promise<UsageStart> {
  const loadCpus = loadGeneratorCpus();
  return {
    pid: target.pid,
    targetSeconds: target.pid === undefined ? NaN : await processCpuSeconds(target.pid),
    loadCore: loadCpus === null ? null : await coreTicks(Number(loadCpus)),
  };
}

/**
 * Adds what the run used to its samples: the target's CPU per request (over all tests of
 * the run: redis-benchmark runs GET and SET in one process) and, when the load generators
 * are pinned, the busy share of their core as the generator's CPU.
 */
async function _endUsage(
  start: UsageStart,
  workload: Workload,
  samples: Map<string, Sample>,
): Promise<void> {
  const requests = workload.requests * samples.size;
  const targetUs = start.pid === undefined
    ? NaN
    : (await processCpuSeconds(start.pid) - start.targetSeconds) * 1e6 / requests;
  const end = start.loadCore === null ? null : await coreTicks(Number(loadGeneratorCpus()));
  const busy = start.loadCore === null || end === null || end.total === start.loadCore.total
    ? null
    : (end.busy - start.loadCore.busy) / (end.total - start.loadCore.total);
  for (const sample of samples.values()) {
    if (Number.isFinite(targetUs)) sample.targetCpuUs = targetUs;
    // Its own core's busy share, when pinned: memcache_load's per-thread figure cannot
    // show two threads sharing one core at their limit.
    if (busy !== null) sample.cpu = busy;
  }
}

/** One short run per target, so JIT and connection setup are out of the way. */
async function warmUp(targets: Target[], opts: { workload: Workload; signal: AbortSignal }) {
  for (const target of targets) {
    await _describeFailure(target, target.run(opts.workload, opts.signal));
  }
}

/** `running`, with the target's name added to its error. */
async function _describeFailure<T>(target: Target, running: Promise<T>): Promise<T> {
  try {
    return await running;
  } catch (err) {
    if (err instanceof Interrupted || !(err instanceof Error)) throw err;
    const log = target.log?.().trimEnd().slice(-LOG_TAIL_CHARS) ?? "";
    const tail = log ? `\n--- ${target.name} log, last ${LOG_TAIL_CHARS} characters:\n${log}` : "";
    throw new Error(`${target.name}: ${err.message}${tail}`, { cause: err });
  }
}

/** Runs the probe and every stage of `section`; returns what they measured. */
export async function runSection(
  section: Section,
  opts: { options: Options; signal: AbortSignal },
): Promise<SectionRun> {
  const results: Results = new Map();
  const notes: string[] = [];
  let probe: ProbeRun | null = null;
  const wanted = opts.options.stage;
  const picked = (title: string) => wanted === null || title.toLowerCase().includes(wanted);
  if (section.probe && picked(section.probe.title)) {
    await using stack = new AsyncDisposableStack();
    console.error(`${section.name}: ${section.probe.title}`);
    probe = await section.probe.run(stack, opts);
  }
  for (const stage of section.stages) {
    if (!picked(stage.title)) continue;
    await using stack = new AsyncDisposableStack();
    console.error(`${section.name}: ${stage.title}`);
    const plan = await stage.start(stack, opts.options);
    opts.signal.throwIfAborted();
    await warmUp(plan.targets, { workload: plan.warmUp, signal: opts.signal });
    await runRounds(plan.targets, {
      workloads: plan.workloads,
      rounds: opts.options.rounds,
      results,
      signal: opts.signal,
    });
    notes.push(...plan.notes);
  }
  return { results, notes, probe, pinned: opts.options.pin && section.pinned };
}

/** One progress line per run: the round, the target and its req/s per test. */
function _progress(
  round: number,
  rounds: number,
  target: Target,
  samples: Map<string, Sample>,
  pipeline: number,
): void {
  const parts = [...samples].map(([test, s]) => `${rowLabel(test, pipeline)} ${formatRps(s.rps)}`);
  console.error(`  round ${round + 1}/${rounds} ${target.name.padEnd(11)} ${parts.join(", ")}`);
}
