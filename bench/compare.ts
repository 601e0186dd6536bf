/**
 * End-to-end comparison of Aster with the backends direct and with nutcracker (twemproxy),
 * in the same run on the same machine. Six sections, each with its own tables:
 *
 * - `redis`: `redis-benchmark` GET and SET at pipeline 1 and 16 against one redis-server
 *   direct, behind nutcracker (fnv1a_64, ketama) and behind Aster (`redis`, `thread = 1`)
 *   as `deno task start` runs it (`io = "auto"`: raw sockets through FFI), and Aster kept
 *   in Deno's sandbox (`aster-deno`: `io = "deno"`, no --allow-ffi; no targets);
 *   and an MGET of ten fixed keys spread over three redis-servers behind both proxies.
 * - `memcache`: `bench/memcache_load.ts` (text protocol) get and set at pipeline 1 and 16
 *   against one memcached direct, behind nutcracker (`redis: false`, fnv1a_64, ketama) and
 *   behind Aster (`memcache`, `thread = 1`), both I/O modes as in `redis`.
 * - `cluster`: `redis-benchmark -r 10000` GET and SET against a 3+3 Redis Cluster direct
 *   (`--cluster`: the benchmark talks to every master itself), through Aster in
 *   `redis_cluster` mode, and through Aster in `redis` mode over three cluster-enabled
 *   redis-servers that each own every slot of a cluster of their own, each with one
 *   replica like the cluster's masters (the same load and the same kind of backends, over a
 *   ring instead of the slot table; `bench/one_master_clusters.ts`).
 * - `io`: the floor under a proxy's CPU per request: redis-benchmark GET and SET at
 *   pipeline 1 through nutcracker, Aster, and two minimal forwarders over one redis-server,
 *   one on Deno's socket ops and one on raw epoll through FFI, beside Aster on raw sockets
 *   and on Deno's ops (`aster-deno`), for those and for the MGET over three shards
 *   (`bench/io_floor/`).
 * - `scale`: against one redis-server behind nutcracker and Aster (`redis`, `thread = 1`; both
 *   I/O modes for the two probes), the RSS growth per idle client connection (5,000
 *   connections, each after one PING) and 10,000 concurrent clients each doing SET then GET
 *   of its own key (`bench/scale.ts`); then `redis-benchmark -c 200 -P 16` GET and SET
 *   through Aster with `thread = 1` and with `thread = 2`.
 * - `runtimes`: Aster itself on each runtime it ships on, over one redis-server: on Deno
 *   (raw sockets, and `aster-deno`), on Bun from source, and the `deno task build:bun`
 *   binary (build it first); GET and SET at pipeline 1 and 16, CPU per request, RSS per
 *   idle client; Bun's rows against the best Deno path (`bench/sections/runtimes.ts`).
 *
 * Targets run in alternating order (each round rotated), the tables show each target's
 * median over the rounds. The report ends with the performance targets (issue 6) of the
 * sections that ran, each with its measured value and PASS/FAIL.
 *
 * This file is the entry: options, the header, the loop over the sections and the targets
 * at the end. Each section lives in `bench/sections/` (its stages, probe and target checks);
 * what they share: `types.ts` (shapes), `settings.ts` (host, clients, depths, target names),
 * `load_tools.ts` (redis-benchmark and memcache_load runs), `proxies.ts` (the processes
 * under test), `run_rounds.ts` (warm-up, rotated rounds, CPU per run), `results.ts` (rows
 * and medians), `report.ts` (tables and notes) and `targets.ts` (ratio checks).
 *
 * Usage: deno task bench [--quick] [--only SECTIONS] [--requests N] [--rounds R]
 *                        [--stage WORD] [--baseline REV]
 *
 *   --only S        comma-separated sections: redis, memcache, cluster, io, scale, runtimes,
 *                   bigvalues
 *                   (default all)
 *   --requests N    requests per pipeline-1 run; MGET runs send N x 2, pipeline-16 runs
 *                   N x 10 (default 100000, 20000 with --quick)
 *   --rounds R      rounds over all targets (default 5, 1 with --quick)
 *   --mc-threads T  worker threads of the memcache load generator (default: 1 when it is
 *                   pinned to its core, else 2)
 *   --quick         a short smoke run
 *   --no-pin        let the scheduler place every process (by default the load generators
 *                   get the last core and everything else the others, `bench/cpu_pinning.ts`;
 *                   the scale section always runs unpinned)
 *   --stage WORD    only the stages whose title contains WORD (case-insensitive), e.g.
 *                   `--only redis --stage publish`: one row's short before/after
 *   --baseline REV  also run Aster of git revision REV (`aster-base`) in the redis, memcache
 *                   and cluster sections, alternating with this checkout, and end with their
 *                   ratios: a change's before/after in one run (`bench/baseline.ts`)
 */
import { parseArgs } from "node:util";
import { BUN_BINARY } from "../tests/helpers/aster.ts";
import { type Baseline, extractBaseline } from "./baseline.ts";
import { coreBusyShares, type CpuLayout, detectCpuLayout, setOwnCpus } from "./cpu_pinning.ts";
import { Interrupted, placeLoadGenerators } from "./load_tools.ts";
import { formatTable, printSection } from "./report.ts";
import { runSection } from "./run_rounds.ts";
import { clusterSection } from "./sections/cluster.ts";
import { ioSection } from "./sections/io.ts";
import { memcacheSection } from "./sections/memcache.ts";
import { bigValuesSection } from "./sections/big_values.ts";
import { MGET_FACTOR } from "./sections/mget_stage.ts";
import { redisSection } from "./sections/redis.ts";
import { runtimesSection } from "./sections/runtimes.ts";
import { scaleSection } from "./sections/scale.ts";
import { BASELINE, CLIENTS, PIPELINED_FACTOR } from "./settings.ts";
import { ratioCheck, ratioOf } from "./targets.ts";
import {
  type Options,
  type Section,
  SECTION_NAMES,
  type SectionName,
  type SectionRun,
  type TargetCheck,
} from "./types.ts";

const decoder = new TextDecoder();
/** Exit code after SIGINT/SIGTERM, as a shell reports it. */
const EXIT_INTERRUPTED = 130;
/** How long each core's load is sampled before a section, with nothing of the bench running. */
const IDLE_SAMPLE_MS = 1000;
/** Busy share of an idle core above which the report warns that something else runs. */
const IDLE_BUSY_WARN = 0.15;

const DEFAULTS = { requests: 100_000, rounds: 5 };
const QUICK = { requests: 20_000, rounds: 1 };

// ---------------------------------------------------------------------------------------
// Command line

/** Parses the flags above; throws on anything else. */
function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: "boolean" },
      requests: { type: "string" },
      rounds: { type: "string" },
      only: { type: "string" },
      "mc-threads": { type: "string" },
      "no-pin": { type: "boolean" },
      baseline: { type: "string" },
      stage: { type: "string" },
    },
  });
  const base = values.quick ? QUICK : DEFAULTS;
  return {
    requests: _positiveInt("--requests", values.requests, base.requests),
    rounds: _positiveInt("--rounds", values.rounds, base.rounds),
    sections: _sections(values.only),
    mcThreads: values["mc-threads"] === undefined
      ? null
      : _positiveInt("--mc-threads", values["mc-threads"], 1),
    pin: !values["no-pin"],
    stage: values.stage?.toLowerCase() ?? null,
    baselineRevision: values.baseline ?? null,
    baseline: null,
  };
}

function _positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
  return n;
}

function _sections(only: string | undefined): SectionName[] {
  if (only === undefined) return [...SECTION_NAMES];
  const names = only.split(",").map((name) => name.trim()).filter((name) => name !== "");
  for (const name of names) {
    if (!(SECTION_NAMES as readonly string[]).includes(name)) {
      throw new Error(`--only takes ${SECTION_NAMES.join(", ")}; got ${JSON.stringify(name)}`);
    }
  }
  if (names.length === 0) throw new Error("--only needs at least one section");
  return SECTION_NAMES.filter((name) => names.includes(name));
}

// ---------------------------------------------------------------------------------------
// Sections

/** Every section, in report order (the order of `SECTION_NAMES`). */
const SECTIONS: Section[] = [
  redisSection,
  memcacheSection,
  clusterSection,
  ioSection,
  scaleSection,
  runtimesSection,
  bigValuesSection,
];

// ---------------------------------------------------------------------------------------
// Report

/** Every target of the sections in `runs`, in report order. */
function targetChecks(runs: Map<SectionName, SectionRun>): TargetCheck[] {
  return SECTIONS.flatMap((section) => {
    const run = runs.get(section.name);
    return run ? section.checks(run) : [];
  });
}

/** The targets of the sections that ran, with PASS/FAIL and how many goals were met. */
function _printTargets(runs: Map<SectionName, SectionRun>): void {
  const checks = targetChecks(runs);
  if (checks.length === 0) return;
  console.log("\n== Targets (issue 6)\n");
  console.log(formatTable(
    ["target", "measured", "goal", "result", "rounds"],
    checks.map((check) => [check.what, check.value, check.goal, check.status, check.rounds ?? "-"]),
  ));
  const judged = checks.filter((check) => check.status === "PASS" || check.status === "FAIL");
  const passed = judged.filter((check) => check.status === "PASS").length;
  console.log(`\n${passed}/${judged.length} targets met (info rows have no target).`);
  console.log(
    "rounds: the ratio in the lowest and the highest round (targets alternate within a round), " +
      "and how many rounds met the goal.",
  );
}

/** The first line `command --version` prints, or "not found". */
async function _version(command: string, flag = "--version"): Promise<string> {
  try {
    const out = await new Deno.Command(command, { args: [flag], stdout: "piped", stderr: "piped" })
      .output();
    const bytes = out.stdout.length > 0 ? out.stdout : out.stderr;
    return decoder.decode(bytes).split("\n")[0].trim();
  } catch {
    return `${command}: not found`;
  }
}

/** Cores, tool versions and the run's parameters. */
async function _printHeader(options: Options): Promise<void> {
  const versions = await Promise.all([
    _version("redis-server"),
    _version("nutcracker"),
    _version("memcached", "-V"),
  ]);
  console.log(`aster bench: ${navigator.hardwareConcurrency} cores, ${Deno.build.target}`);
  console.log(`  ${versions.join("\n  ")}`);
  console.log(
    `  sections ${options.sections.join(", ")}; ${CLIENTS} clients, ${options.requests} ` +
      `requests per P1 run, ${options.requests * MGET_FACTOR} per MGET run, ` +
      `${options.requests * PIPELINED_FACTOR} per P16 run, ` +
      `${options.rounds} round(s), medians shown`,
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

/**
 * A warning for each core that was busy while the bench ran nothing (a process outside the
 * bench, such as a load generator left running, skews every ratio of the section).
 */
async function busyCoreNotes(): Promise<string[]> {
  const shares = await coreBusyShares(navigator.hardwareConcurrency, IDLE_SAMPLE_MS);
  return shares.filter(({ busy }) => busy > IDLE_BUSY_WARN).map(({ core, busy }) =>
    `WARNING: core ${core} was ${Math.round(busy * 100)}% busy before this section started, ` +
    `with none of the bench's processes running: something else is using it, and the ` +
    `section's ratios are suspect.`
  );
}

/**
 * Places the processes of `section`: with a layout and a pinned section, this process (and
 * so the backends and proxies it starts) on the system cores and load generators on the
 * load core; otherwise everything on every core.
 */
async function _placeSection(section: Section, layout: CpuLayout | null): Promise<void> {
  if (layout === null) return;
  const pinned = section.pinned;
  await setOwnCpus(pinned ? layout.system : layout.all);
  placeLoadGenerators(pinned ? layout.load : null);
}

/**
 * Aster against the `--baseline` revision in every row where both ran: throughput and CPU
 * per request, medians and rounds (info: a before/after of a change, measured in one run).
 */
function _printBaseline(runs: Map<SectionName, SectionRun>, baseline: Baseline): void {
  const rows: string[][] = [];
  for (const [section, run] of runs) {
    for (const row of run.results.keys()) {
      if (!run.results.get(row)?.has(BASELINE)) continue;
      const cells = (["rps", "targetCpuUs"] as const).flatMap((field) => {
        const ratio = ratioOf(run.results, row, { target: "aster", base: BASELINE, field });
        const { value, rounds } = ratioCheck(row, ratio, {});
        return [value, rounds ?? "-"];
      });
      rows.push([`${section} ${row}`, ...cells]);
    }
  }
  if (rows.length === 0) return;
  console.log(
    `\n== aster (this checkout) / aster-base (${baseline.revision}, ` +
      `${baseline.commit.slice(0, 12)})\n`,
  );
  console.log(formatTable(
    ["row", "req/s", "rounds", "CPU per request", "rounds"],
    rows,
  ));
  console.log(
    "\nreq/s: higher is better; CPU per request: lower is better (GET and SET of a run share " +
      "one figure).",
  );
}

/** Runs the selected sections; every process it starts is stopped before it returns. */
async function compare(options: Options, signal: AbortSignal): Promise<void> {
  await using baseline = options.baselineRevision === null
    ? null
    : await extractBaseline(options.baselineRevision);
  const found = options.pin ? await detectCpuLayout() : "--no-pin";
  const layout = typeof found === "string" ? null : found;
  await _printHeader(options);
  console.log(
    layout === null
      ? `  cores not pinned (${found}): the scheduler places every process`
      : `  load generators on core ${layout.load}, backends and proxies on core(s) ` +
        `${layout.system} (scale section: all cores)`,
  );
  if (baseline !== null) {
    options = { ...options, baseline: baseline.source };
    console.log(
      `  aster-base: ${baseline.revision} (${baseline.commit.slice(0, 12)}), run beside this ` +
        `checkout in the redis, memcache and cluster sections`,
    );
  }
  const runs = new Map<SectionName, SectionRun>();
  for (const section of SECTIONS.filter((s) => options.sections.includes(s.name))) {
    await _placeSection(section, layout);
    const busy = await busyCoreNotes();
    const run = await runSection(section, { options, signal });
    run.notes.push(...busy);
    runs.set(section.name, run);
    printSection(section, run);
  }
  console.log(
    "\nNote: ratios only compare numbers within one run; absolute req/s depend on the " +
      "machine and its load.",
  );
  if (baseline !== null) _printBaseline(runs, baseline);
  _printTargets(runs);
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
    // The runtimes section runs the Bun-built binary: built now if missing, not found
    // missing half an hour into a full run (which then prints no Targets table).
    if (options.sections.includes("runtimes")) await _ensureBinary();
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

/** Builds dist/aster-proxy (`deno task build:bun`) when it is not there. */
async function _ensureBinary(): Promise<void> {
  try {
    await Deno.stat(BUN_BINARY);
    return;
  } catch {
    // built below
  }
  console.log("  building dist/aster-proxy for the runtimes section (deno task build:bun)");
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "build:bun"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`deno task build:bun failed:\n${new TextDecoder().decode(stderr)}`);
  }
}

if (import.meta.main) Deno.exit(await main());
