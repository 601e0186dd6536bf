/**
 * The `scale` section: against one redis-server behind nutcracker and Aster (`redis`,
 * `thread = 1`; both I/O modes), the RSS at start and 10 s after a burst of 10,000 clients
 * (each one PING) closed, the RSS growth per idle client connection (5,000 connections, each
 * after one PING) and 10,000 concurrent clients each doing SET then GET of its own key
 * (`bench/scale.ts`); then `redis-benchmark -c 200 -P 16` GET and SET through
 * Aster with `thread = 1` and with `thread = 2`. Runs unpinned.
 */
import { type ClusterToml, startAster } from "../../tests/helpers/aster.ts";
import { startRedis } from "../../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { commandReply, serverEntry, startProxies } from "../proxies.ts";
import { burstTable, concurrentTable, formatFixed, memoryTable } from "../report.ts";
import { rowLabel } from "../results.ts";
import {
  BURST_SETTLE_MS,
  type BurstMemory,
  type ConcurrentClients,
  CONNECT_BATCH,
  IDLE_MS,
  type IdleMemory,
  measureBurstMemory,
  measureIdleMemory,
  openFileLimit,
  RSS_SAMPLES,
  runConcurrentClients,
  WARM_UP_CLIENTS,
} from "../scale.ts";
import { PIPELINED_FACTOR, SANDBOXED, WARM_UP } from "../settings.ts";
import { ratioCheck, ratioOf } from "../targets.ts";
import type { Probe, Section, SectionRun, Stage, Target, TargetCheck } from "../types.ts";

/** Idle client connections of the memory probe. */
const IDLE_CLIENTS = 5_000;
/** Clients connected at once in the concurrency probe, and in the burst. */
const CONCURRENT_CLIENTS = 10_000;
/** Wait after starting the burst's proxies before their RSS at start is taken, ms. */
const START_SETTLE_MS = 2000;
/** Issue 23's memory goals for Aster (`thread = 1`). */
const START_GOAL_MB = 40;
const IDLE_GOAL_KB = 4;
/** RSS after the burst over RSS before it. */
const BURST_GOAL = 1.1;
/** Aster's `max_clients` in the scale probes: room above `CONCURRENT_CLIENTS`. */
const SCALE_MAX_CLIENTS = 12_000;
/** redis-benchmark clients of the thread = 1 / thread = 2 rows. */
const THREAD_CLIENTS = 200;
/** Spare descriptors a process needs beyond its client connections. */
const SPARE_FDS = 200;

/**
 * One redis-server behind nutcracker and Aster (`thread = 1`): RSS growth per idle client
 * connection, then `CONCURRENT_CLIENTS` clients at once, each on each proxy in turn; then,
 * on fresh processes, RSS at start and after a burst of `CONCURRENT_CLIENTS` clients.
 */
const scaleProbe: Probe = {
  title: `${IDLE_CLIENTS} idle clients, ${CONCURRENT_CLIENTS} concurrent clients, ` +
    "one redis-server",
  async run(stack, { signal }) {
    const fdLimit = await openFileLimit();
    const redis = stack.use(await startRedis());
    const targets = await startProxies(stack, {
      servers: [serverEntry(redis.port, 0)],
      maxClients: SCALE_MAX_CLIENTS,
      sandboxed: true,
    });
    const memory: IdleMemory[] = [];
    for (const target of targets) {
      const m = await measureIdleMemory(target, { count: IDLE_CLIENTS, signal });
      memory.push(m);
      console.error(
        `  idle memory ${target.name.padEnd(11)} ${m.idle}/${m.count} idle, RSS ` +
          `${m.beforeKiB} -> ${m.idleKiB} KiB, ${formatFixed(m.perConnKB, 2)} KB per connection`,
      );
    }
    const concurrent: ConcurrentClients[] = [];
    for (const target of targets) {
      await commandReply(redis.port, ["FLUSHALL"]);
      const c = await runConcurrentClients(target, { count: CONCURRENT_CLIENTS, signal });
      concurrent.push(c);
      console.error(
        `  concurrent  ${target.name.padEnd(11)} served ${c.served}/${c.count} in ` +
          `${Math.round(c.totalMs)} ms`,
      );
    }
    // On processes of their own, started now: RSS at start before any client, and the
    // burst's "before" not raised by the probes above.
    const fresh = await startProxies(stack, {
      servers: [serverEntry(redis.port, 0)],
      maxClients: SCALE_MAX_CLIENTS,
      sandboxed: true,
    });
    await new Promise((resolve) => setTimeout(resolve, START_SETTLE_MS));
    const burst: BurstMemory[] = [];
    for (const target of fresh) {
      const b = await measureBurstMemory(target, { count: CONCURRENT_CLIENTS, signal });
      burst.push(b);
      console.error(
        `  burst       ${target.name.padEnd(11)} start ${b.startKiB} KiB` +
          (b.startParts
            ? ` (anonymous ${b.startParts.anonKiB}, files ${b.startParts.fileKiB})`
            : "") +
          `, ${b.served}/${b.count} ` +
          `served, RSS ${b.beforeKiB} -> ${b.peakKiB} -> ${b.afterKiB} KiB ` +
          `(${formatFixed(b.afterRatio, 3)}x)`,
      );
    }
    const notes = [
      `Burst (fresh processes, after the probes above): RSS at start, ` +
      `${
        START_SETTLE_MS / 1000
      } s after the proxies started, before any client; then after a warm-up of ${WARM_UP_CLIENTS} ` +
      `PING clients (before), with ${CONCURRENT_CLIENTS} clients connected ${CONNECT_BATCH} ` +
      `at a time, each after one PING, and ${BURST_SETTLE_MS / 1000} s after they all ` +
      `closed (after). RSS at start by kind (/proc/PID/status): anonymous is private ` +
      `memory (heaps, stacks, buffers); files are pages of mapped files, mostly the ` +
      `executable's code, shared with every process running it and reclaimable.`,
      `Idle clients: ${IDLE_CLIENTS} connections opened ${CONNECT_BATCH} at a time, each did ` +
      `one PING round trip, then idle for ${IDLE_MS / 1000} s; RSS from ps (median of ` +
      `${RSS_SAMPLES} readings), the baseline after a warm-up of ${WARM_UP_CLIENTS} PING ` +
      `clients; 1 KB = 1000 bytes. Concurrent clients: all ${CONCURRENT_CLIENTS} ` +
      `connected first, then each sends SET key:i v:i, waits for +OK, sends GET key:i and ` +
      `must read v:i. Aster runs with max_clients = ${SCALE_MAX_CLIENTS}; open-file limit ` +
      `(ulimit -n) ${fdLimit}.`,
    ];
    if (!(fdLimit >= CONCURRENT_CLIENTS + SPARE_FDS)) {
      notes.push(
        `WARNING: an open-file limit under ${CONCURRENT_CLIENTS + SPARE_FDS} caps the ` +
          "concurrent clients (of this process and of the proxies); raise ulimit -n.",
      );
    }
    for (const c of concurrent) {
      if (c.firstError !== null) notes.push(`${c.name}: first connect error: ${c.firstError}`);
    }
    return {
      tables: [
        {
          heading: `RSS at start and after a burst of ${CONCURRENT_CLIENTS} clients`,
          table: burstTable(burst),
        },
        {
          heading: `Memory, ${IDLE_CLIENTS} idle clients (lower is better)`,
          table: memoryTable(memory),
        },
        {
          heading: `${CONCURRENT_CLIENTS} concurrent clients, SET then GET each`,
          table: concurrentTable(concurrent),
        },
      ],
      notes,
      memory,
      concurrent,
      burst,
    };
  },
};

/** Aster over one redis-server with `thread = 1` and with `thread = 2`, side by side. */
const threadStage: Stage = {
  title: "GET/SET P16, aster thread = 1 and thread = 2, one redis-server",
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const servers = [serverEntry(redis.port, 0)];
    const targets: Target[] = [];
    for (const thread of [1, 2]) {
      const name = `aster-t${thread}`;
      const cluster: ClusterToml = { name, cache_type: "redis", servers, thread };
      const aster = stack.use(await startAster([cluster]));
      targets.push(
        redisBenchmarkTarget(name, { port: aster.ports[0], pid: aster.pid, log: aster.log }),
      );
    }
    return {
      targets,
      workloads: [{
        pipeline: 16,
        requests: options.requests * PIPELINED_FACTOR,
        clients: THREAD_CLIENTS,
        tests: ["get", "set"],
      }],
      warmUp: { ...WARM_UP, clients: THREAD_CLIENTS },
      notes: [
        `thread rows: redis-benchmark -c ${THREAD_CLIENTS} -P 16, ` +
        `${options.requests * PIPELINED_FACTOR} requests per test, against two Aster ` +
        `processes (thread = 1, thread = 2) over one redis-server; ` +
        `${navigator.hardwareConcurrency} cores shared with redis-server and the benchmark.`,
      ],
    };
  },
};

/**
 * The scale section's targets (issue 23; Aster, the others as info): RSS at start at most
 * 40 MB, back within 10% of its level 10 s after a burst, at most 4 KB per idle client;
 * every concurrent client served; thread = 2 must not lose throughput against thread = 1
 * on this machine's cores, its CPU per request as info.
 */
function scaleChecks(run: SectionRun): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const b of run.probe?.burst ?? []) {
    const aster = b.name === "aster";
    const mb = (kib: number) => (kib * 1024 / 1e6).toFixed(1);
    const startMB = b.startKiB * 1024 / 1e6;
    checks.push({
      what: `RSS at start (thread = 1), ${b.name}`,
      // The split says what a smaller start needs: mapped files' pages (mostly the
      // executable's code) are shared and reclaimable, and grow only with what is loaded.
      value: `${startMB.toFixed(1)} MB` +
        (b.startParts
          ? ` (anonymous ${mb(b.startParts.anonKiB)}, files ${mb(b.startParts.fileKiB)})`
          : ""),
      goal: aster ? `<= ${START_GOAL_MB} MB` : "-",
      status: !aster ? "info" : startMB <= START_GOAL_MB ? "PASS" : "FAIL",
    });
    const measured = Number.isFinite(b.afterRatio) && b.served > 0;
    checks.push({
      what: `RSS ${BURST_SETTLE_MS / 1000} s after ${b.count} clients left / before, ${b.name}`,
      value: measured ? `${b.afterRatio.toFixed(3)}x` : "-",
      goal: aster ? `<= ${BURST_GOAL}x` : "-",
      status: !measured ? "n/a" : !aster ? "info" : b.afterRatio <= BURST_GOAL ? "PASS" : "FAIL",
    });
  }
  for (const m of run.probe?.memory ?? []) {
    const measured = Number.isFinite(m.perConnKB);
    const aster = m.name === "aster";
    checks.push({
      what: `memory per idle client (${m.count}), ${m.name}`,
      value: measured ? `${m.perConnKB.toFixed(2)} KB` : "-",
      goal: aster ? `<= ${IDLE_GOAL_KB} KB` : "-",
      status: !measured ? "n/a" : !aster ? "info" : m.perConnKB <= IDLE_GOAL_KB ? "PASS" : "FAIL",
    });
  }
  for (const c of run.probe?.concurrent ?? []) {
    const aster = c.name === "aster";
    checks.push({
      what: `${c.count.toLocaleString("en-US")} concurrent clients served, ${c.name}`,
      value: `${c.served}/${c.count}`,
      goal: aster ? "all" : "-",
      status: !aster ? "info" : c.served === c.count ? "PASS" : "FAIL",
    });
  }
  for (const test of ["GET", "SET"]) {
    const row = rowLabel(test, 16);
    const ratio = ratioOf(run.results, row, {
      target: "aster-t2",
      base: "aster-t1",
      field: "rps",
    });
    checks.push(ratioCheck(`${row} req/s, aster thread=2/thread=1`, ratio, { min: 1.0 }));
  }
  // CPU per request of the whole process (every worker): what a second worker costs.
  const cpu = ratioOf(run.results, rowLabel("GET", 16), {
    target: "aster-t2",
    base: "aster-t1",
    field: "targetCpuUs",
  });
  checks.push(ratioCheck("GET+SET P16 proxy CPU per request, aster thread=2/thread=1", cpu, {}));
  return checks;
}

/** The `scale` section (many clients, and Aster's second thread). */
export const scaleSection: Section = {
  name: "scale",
  title: "scale: idle-client memory and 10,000 concurrent clients (nutcracker, aster, " +
    `${SANDBOXED}), aster thread = 1 vs thread = 2`,
  columns: [
    { target: "aster-t1", label: "aster-t1" },
    { target: "aster-t2", label: "aster-t2" },
  ],
  ratios: [["aster-t2", "aster-t1"]],
  probe: scaleProbe,
  stages: [threadStage],
  pinned: false,
  checks: scaleChecks,
};
