/**
 * The shapes the bench's modules share (`bench/compare.ts` and `bench/sections/`): options,
 * workloads and their samples, targets, stages, probes, sections and target checks.
 */
import type { AsterSource } from "../tests/helpers/aster.ts";
import type { BurstMemory, ConcurrentClients, IdleMemory } from "./scale.ts";

/** Every section, in report order; `--only` selects among them. */
export const SECTION_NAMES = [
  "redis",
  "memcache",
  "cluster",
  "io",
  "scale",
  "runtimes",
  "bigvalues",
] as const;
/** A part of the comparison that `--only` selects. */
export type SectionName = typeof SECTION_NAMES[number];

/** Run parameters from the command line. */
export interface Options {
  requests: number;
  rounds: number;
  sections: SectionName[];
  /**
   * Worker threads of the memcache load generator; null: one per core it gets (1 when
   * pinned to its core, 2 otherwise).
   */
  mcThreads: number | null;
  /** Load generators on their own core (`--no-pin` turns it off). */
  pin: boolean;
  /**
   * `--stage WORD`: only the stages whose title contains WORD (case-insensitive), for a
   * short run of one row; null: every stage.
   */
  stage: string | null;
  /** `--baseline REV`: the revision to measure beside this checkout, or null. */
  baselineRevision: string | null;
  /** That revision's files once extracted (null until then, or without one). */
  baseline: AsterSource | null;
}

/** What one load-generator invocation runs. */
export interface Workload {
  /** Pipeline depth. */
  pipeline: number;
  /** Requests per test. */
  requests: number;
  /** Concurrent clients. @default CLIENTS */
  clients?: number;
  /** Value bytes of SET (redis-benchmark -d) and memcache set/get. @default 3 / MEMCACHE_VALUE_SIZE */
  valueSize?: number;
  /** Keys the memcache load spreads over. @default KEYSPACE */
  keys?: number;
  /** Tests by lowercase name ("get", "set"), or a custom redis command and its row label. */
  tests: string[] | { command: string[]; label: string };
}

/** What one test of one run measured. */
export interface Sample {
  rps: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /**
   * Load generator CPU: the busy share of its own core when the load generators are
   * pinned, else what memcache_load reports over its threads; null when unknown.
   */
  cpu: number | null;
  /** CPU the process under test used per request of the run, µs (proxies only). */
  targetCpuUs: number | null;
  /** How long the run took, ms. */
  elapsedMs: number;
  /** The generator's timer granularity when it rounds run times up to it, ms. */
  tickMs: number | null;
}

/** One endpoint under test and the load generator that drives it. */
export interface Target {
  /** Column key, also shown in the progress lines. */
  name: string;
  /** Runs `workload` once; returns samples by test name ("GET", "SET", or a label). */
  run(workload: Workload, signal: AbortSignal): Promise<Map<string, Sample>>;
  /** What the process under test logged so far (Aster), shown when a run fails. */
  log?: () => string;
  /** The process under test, whose CPU per request is reported (proxies). */
  pid?: number;
}

/** Samples per row label ("GET P1"), per target name. */
export type Results = Map<string, Map<string, Sample[]>>;

/** Processes started for one part of a section, and what to run against them. */
export interface StagePlan {
  targets: Target[];
  workloads: Workload[];
  /** One short run per target before the rounds. */
  warmUp: Workload;
  /** Lines printed under the section's tables. */
  notes: string[];
}

/** One set of processes within a section; stopped before the next stage starts. */
export interface Stage {
  /** Progress heading. */
  title: string;
  /** Starts its processes on `stack` and returns what to run. */
  start(stack: AsyncDisposableStack, options: Options): Promise<StagePlan>;
}

/** A table printed under its section's heading. */
export interface Table {
  heading: string;
  table: string;
}

/** What a probe measured: its own tables and notes, and its figures for the targets. */
export interface ProbeRun {
  tables: Table[];
  notes: string[];
  memory: IdleMemory[];
  concurrent: ConcurrentClients[];
  /** RSS at start and after a burst of clients (the scale section; absent elsewhere). */
  burst?: BurstMemory[];
}

/** A measurement outside the rounds: its own processes on `stack`, its own tables. */
export interface Probe {
  /** Progress heading. */
  title: string;
  run(
    stack: AsyncDisposableStack,
    opts: { options: Options; signal: AbortSignal },
  ): Promise<ProbeRun>;
}

/** One table of the report. */
export interface Section {
  name: SectionName;
  title: string;
  /** Target names in column order, with their column headings. */
  columns: { target: string; label: string }[];
  /** Ratio columns: [numerator target, denominator target]. */
  ratios: [string, string][];
  /** Runs before the stages, when present. */
  probe?: Probe;
  stages: Stage[];
  /** Load generators on their own core when pinning is on (not for thread = 2 runs). */
  pinned: boolean;
  /** Its performance targets (issue 6) with what `run` measured, in report order. */
  checks(run: SectionRun): TargetCheck[];
}

/** What one section measured. */
export interface SectionRun {
  results: Results;
  notes: string[];
  probe: ProbeRun | null;
  /** The load generators had a core of their own (`pin` and the section's `pinned`). */
  pinned: boolean;
}

/** One performance target with what this run measured for it. */
export interface TargetCheck {
  what: string;
  value: string;
  goal: string;
  /** "PASS", "FAIL", "info" (reported, no target) or "n/a" (nothing measured). */
  status: string;
  /** For ratios: the lowest and highest round, and how many rounds met the goal. */
  rounds?: string;
}
