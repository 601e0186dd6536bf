/**
 * The `runtimes` section (info): Aster over one redis-server on each runtime it ships on,
 * `thread = 1`: on Deno as `deno task start` runs it (`io = "auto"`: raw sockets through
 * FFI), on Deno's socket ops (`aster-deno`, sandboxed), on Bun from source (`bun run
 * main.ts`: Bun's sockets) and as the `deno task build:bun` binary. redis-benchmark GET and
 * SET at pipeline 1 and 16 (req/s, CPU per request), and RSS growth per idle client. The
 * goal (issue 21): Bun within 10% of the best Deno path on every row.
 */
import { type ClusterToml, startAster, type UnderTest } from "../../tests/helpers/aster.ts";
import { startRedis } from "../../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { serverEntry } from "../proxies.ts";
import { formatFixed, memoryTable } from "../report.ts";
import { rowLabel } from "../results.ts";
import { type IdleMemory, measureIdleMemory } from "../scale.ts";
import { getSetWorkloads, PIPELINES, SANDBOXED, WARM_UP } from "../settings.ts";
import { ratioCheck, ratioOf } from "../targets.ts";
import type { Probe, Results, Section, Stage, TargetCheck } from "../types.ts";

/** Target names of the section. */
const DENO = "aster";
const BUN = "aster-bun";
const BINARY = "aster-binary";
/** Idle client connections of the memory probe (fewer than `scale`'s: four processes). */
const IDLE_CLIENTS = 2_000;

/** Each Aster of the section: its name, what runs it, and whether it is sandboxed. */
const ASTERS: { name: string; underTest: UnderTest; sandboxed: boolean; io?: string }[] = [
  { name: DENO, underTest: "deno", sandboxed: false },
  { name: SANDBOXED, underTest: "deno", sandboxed: true, io: "deno" },
  { name: BUN, underTest: "bun", sandboxed: false },
  { name: BINARY, underTest: "binary", sandboxed: false },
];

/** Starts every Aster of `ASTERS` over `servers` on `stack`. */
async function _startAsters(stack: AsyncDisposableStack, servers: string[]) {
  const started = [];
  for (const { name, underTest, sandboxed, io } of ASTERS) {
    const cluster: ClusterToml = { name: "bench", cache_type: "redis", servers, thread: 1 };
    if (io !== undefined) cluster.io = io;
    const aster = stack.use(await startAster([cluster], { underTest, sandboxed }));
    started.push({ name, port: aster.ports[0], pid: aster.pid, log: aster.log });
  }
  return started;
}

const runtimesStage: Stage = {
  title: "GET/SET, one redis-server, Aster on Deno (both io paths), Bun and the binary",
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const asters = await _startAsters(stack, [serverEntry(redis.port, 0)]);
    return {
      targets: asters.map(({ name, port, pid, log }) =>
        redisBenchmarkTarget(name, { port, pid, log })
      ),
      workloads: getSetWorkloads(options.requests),
      warmUp: WARM_UP,
      notes: [
        `${DENO}: deno task start (io = "auto": raw sockets through FFI); ${SANDBOXED}: ` +
        `io = "deno", no --allow-ffi; ${BUN}: bun run main.ts (Bun's sockets); ${BINARY}: ` +
        "dist/aster-proxy from deno task build:bun (build it first).",
      ],
    };
  },
};

/** RSS growth per idle client of each Aster. */
const memoryProbe: Probe = {
  title: `${IDLE_CLIENTS} idle clients per runtime, one redis-server`,
  async run(stack, { signal }) {
    const redis = stack.use(await startRedis());
    const asters = await _startAsters(stack, [serverEntry(redis.port, 0)]);
    const memory: IdleMemory[] = [];
    for (const aster of asters) {
      const m = await measureIdleMemory(aster, { count: IDLE_CLIENTS, signal });
      memory.push(m);
      console.error(
        `  idle memory ${aster.name.padEnd(12)} RSS ${m.beforeKiB} -> ${m.idleKiB} KiB, ` +
          `${formatFixed(m.perConnKB, 2)} KB per connection`,
      );
    }
    return {
      tables: [{
        heading: `Memory, ${IDLE_CLIENTS} idle clients (lower is better)`,
        table: memoryTable(memory),
      }],
      notes: [],
      memory,
      concurrent: [],
    };
  },
};

/** The best Deno path of a row: the higher req/s (lower CPU) of the two io paths. */
function _bestDeno(results: Results, row: string, field: "rps" | "targetCpuUs"): string {
  const vs = ratioOf(results, row, { target: DENO, base: SANDBOXED, field }).median;
  const denoBetter = field === "rps" ? vs >= 1 : vs <= 1;
  return Number.isNaN(vs) || denoBetter ? DENO : SANDBOXED;
}

/** Bun (source and binary) against the best Deno path, row by row: within 10%. */
function runtimeChecks(results: Results, probe: IdleMemory[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const target of [BUN, BINARY]) {
    for (const pipeline of PIPELINES) {
      for (const test of ["GET", "SET"]) {
        const row = rowLabel(test, pipeline);
        const base = _bestDeno(results, row, "rps");
        const ratio = ratioOf(results, row, { target, base, field: "rps" });
        checks.push(ratioCheck(`runtimes ${row} req/s, ${target}/${base}`, ratio, { min: 0.9 }));
      }
      const row = rowLabel("GET", pipeline);
      const base = _bestDeno(results, row, "targetCpuUs");
      const ratio = ratioOf(results, row, { target, base, field: "targetCpuUs" });
      const what = `runtimes GET+SET P${pipeline} CPU per request, ${target}/${base}`;
      checks.push(ratioCheck(what, ratio, { max: 1.1 }));
    }
    const mine = probe.find((m) => m.name === target)?.perConnKB ?? NaN;
    const denos = probe.filter((m) => m.name === DENO || m.name === SANDBOXED);
    const best = Math.min(...denos.map((m) => m.perConnKB));
    const ratio = { median: mine / best, rounds: [] };
    checks.push(ratioCheck(`runtimes idle RSS per client, ${target}/best deno`, ratio, {
      max: 1.1,
    }));
  }
  return checks;
}

/** The `runtimes` section. */
export const runtimesSection: Section = {
  name: "runtimes",
  title: "runtimes: Aster on Deno (both io paths), on Bun, and the Bun-built binary",
  columns: ASTERS.map(({ name }) => ({ target: name, label: name })),
  ratios: [[BUN, DENO], [BUN, SANDBOXED], [BINARY, DENO], [BINARY, BUN]],
  probe: memoryProbe,
  stages: [runtimesStage],
  pinned: true,
  checks: (run) => runtimeChecks(run.results, run.probe?.memory ?? []),
};
