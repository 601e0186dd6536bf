/**
 * The bench's report: number formats, text tables (throughput with ratios, latency, proxy CPU
 * per request, the scale probes), the notes on the load generator, and one section's
 * printout.
 */
import {
  BURST_SETTLE_MS,
  type BurstMemory,
  type ConcurrentClients,
  type IdleMemory,
} from "./scale.ts";
import { median, medianOf } from "./results.ts";
import type { Results, Section, SectionRun } from "./types.ts";

/** Generator CPU (of its threads) above which it likely set the pace, not the target. */
const GENERATOR_BOUND_CPU = 0.9;

/** Requests per second as a whole number with thousands separators, "-" for NaN. */
export function formatRps(n: number): string {
  return Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US");
}

function _ms(n: number): string {
  return Number.isNaN(n) ? "-" : n.toFixed(3);
}

/** `n` with `digits` decimals, "-" for NaN. */
export function formatFixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

function _ratio(a: number, b: number): string {
  const r = a / b;
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : "-";
}

/** A text table: first column left-aligned, the others right-aligned. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
      .join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

function _label(section: Section, target: string): string {
  return section.columns.find((column) => column.target === target)?.label ?? target;
}

/** The section's columns whose target has samples in `results` (aster-base only with --baseline). */
function _columnsRun(section: Section, results: Results): Section["columns"] {
  return section.columns.filter(({ target }) =>
    [...results.values()].some((byTarget) => byTarget.has(target))
  );
}

/** Throughput table: median req/s per target and the section's ratios. */
export function throughputTable(section: Section, results: Results): string {
  const columns = _columnsRun(section, results);
  const ran = new Set(columns.map(({ target }) => target));
  const ratios = section.ratios.filter(([a, b]) => ran.has(a) && ran.has(b));
  const rows = [...results.keys()].map((row) => {
    const rps = new Map(
      columns.map(({ target }) => [target, medianOf(results, row, { target, field: "rps" })]),
    );
    return [
      row,
      ...columns.map(({ target }) => formatRps(rps.get(target)!)),
      ...ratios.map(([a, b]) => _ratio(rps.get(a)!, rps.get(b)!)),
    ];
  });
  const headers = [
    "req/s",
    ...columns.map((column) => column.label),
    ...ratios.map(([a, b]) => `${_label(section, a)}/${_label(section, b)}`),
  ];
  return formatTable(headers, rows);
}

/** Latency table for the pipeline-1 rows: p50 and p99 per target (lower is better). */
export function latencyTable(section: Section, results: Results): string {
  const columns = _columnsRun(section, results);
  const rows = [...results.keys()].filter((row) => row.endsWith(" P1")).map((row) => [
    row,
    ...columns.flatMap(({ target }) => [
      _ms(medianOf(results, row, { target, field: "p50Ms" })),
      _ms(medianOf(results, row, { target, field: "p99Ms" })),
    ]),
  ]);
  const headers = [
    "ms",
    ...columns.flatMap(({ label }) => [`${label} p50`, `${label} p99`]),
  ];
  return formatTable(headers, rows);
}

/**
 * CPU each process under test used per request, median per row; empty when no target
 * reports it. GET and SET of one run share a figure (one generator process runs both).
 */
export function targetCpuTable(section: Section, results: Results): string {
  const columns = section.columns.filter(({ target }) =>
    [...results.values()].some((byTarget) =>
      (byTarget.get(target) ?? []).some((sample) => sample.targetCpuUs !== null)
    )
  );
  if (columns.length === 0) return "";
  const rows = [...results.keys()].map((row) => [
    row,
    ...columns.map(({ target }) => _us(medianOf(results, row, { target, field: "targetCpuUs" }))),
  ]);
  return formatTable(["µs/request", ...columns.map(({ label }) => label)], rows);
}

function _us(n: number): string {
  return Number.isNaN(n) ? "-" : n.toFixed(2);
}

/** RSS of each proxy before, with and after its idle clients, and the growth per client. */
export function memoryTable(memory: IdleMemory[]): string {
  const headers = [
    "proxy",
    "idle clients",
    "RSS before KiB",
    "RSS idle KiB",
    "RSS closed KiB",
    "per client KiB",
    "per client KB",
  ];
  const rows = memory.map((m) => [
    m.name,
    `${m.idle}/${m.count}`,
    `${m.beforeKiB}`,
    `${m.idleKiB}`,
    `${m.closedKiB}`,
    formatFixed(m.perConnKiB, 2),
    formatFixed(m.perConnKB, 2),
  ]);
  return formatTable(headers, rows);
}

/** RSS at start, before a burst of clients, with them connected, and after they left. */
export function burstTable(burst: BurstMemory[]): string {
  const headers = [
    "proxy",
    "RSS at start KiB",
    "anonymous / files KiB",
    "clients",
    "RSS before KiB",
    "RSS with them KiB",
    `RSS ${BURST_SETTLE_MS / 1000} s after KiB`,
    "after / before",
  ];
  const rows = burst.map((b) => [
    b.name,
    `${b.startKiB}`,
    b.startParts ? `${b.startParts.anonKiB} / ${b.startParts.fileKiB}` : "-",
    `${b.served}/${b.count}`,
    `${b.beforeKiB}`,
    `${b.peakKiB}`,
    `${b.afterKiB}`,
    `${formatFixed(b.afterRatio, 3)}x`,
  ]);
  return formatTable(headers, rows);
}

/** Connections opened and clients served per proxy, with the wall times. */
export function concurrentTable(concurrent: ConcurrentClients[]): string {
  const headers = ["proxy", "connected", "served", "connect ms", "total ms"];
  const rows = concurrent.map((c) => [
    c.name,
    `${c.opened}/${c.count}`,
    `${c.served}/${c.count}`,
    `${Math.round(c.connectMs)}`,
    `${Math.round(c.totalMs)}`,
  ]);
  return formatTable(headers, rows);
}

/**
 * The load generator's CPU per target (median over rows and rounds), and a warning when it
 * looked CPU-bound; empty when no sample carries a CPU figure.
 */
export function generatorNotes(section: Section, results: Results): string[] {
  const cpu = section.columns.map(({ target }) => {
    const values = [...results.values()].flatMap((byTarget) =>
      (byTarget.get(target) ?? []).map((s) => s.cpu).filter((v): v is number => v !== null)
    );
    return { target, median: median(values), max: Math.max(...values) };
  }).filter((entry) => !Number.isNaN(entry.median));
  if (cpu.length === 0) return [];
  const shown = cpu.map((entry) =>
    `${_label(section, entry.target)} ${Math.round(entry.median * 100)}% ` +
    `(max ${Math.round(entry.max * 100)}%)`
  );
  const notes = [
    `Load generator CPU (its core's busy share when pinned), median: ${shown.join(", ")}.`,
  ];
  const bound = [...results].flatMap(([row, byTarget]) => {
    const targets = section.columns.filter(({ target }) =>
      median((byTarget.get(target) ?? []).flatMap((s) => s.cpu === null ? [] : [s.cpu])) >
        GENERATOR_BOUND_CPU
    );
    return targets.length === 0 ? [] : [`${row} (${targets.map((t) => t.label).join(", ")})`];
  });
  if (bound.length > 0) {
    notes.push(
      `WARNING: the load generator was near CPU-bound (median > ${GENERATOR_BOUND_CPU * 100}%) ` +
        `in ${bound.join("; ")}: those rows measure the generator more than the target, ` +
        "and their ratios are pulled toward 1.00x.",
    );
  }
  return notes;
}

/**
 * For targets whose generator rounds run times up to a timer tick: how much that may
 * understate their req/s, from their shortest run.
 */
export function tickNotes(section: Section, results: Results): string[] {
  const notes: string[] = [];
  for (const { target, label } of section.columns) {
    const samples = [...results.values()].flatMap((byTarget) => byTarget.get(target) ?? []);
    const ticked = samples.filter((s) => s.tickMs !== null);
    if (ticked.length === 0) continue;
    const shortest = Math.min(...ticked.map((s) => s.elapsedMs));
    const tick = ticked[0].tickMs!;
    notes.push(
      `${label}: redis-benchmark --cluster (threaded) ends runs on a ${tick} ms tick, so ` +
        `its req/s are lower bounds; its shortest run took ${(shortest / 1000).toFixed(2)} s, ` +
        `understated by up to ${Math.round(tick / shortest * 100)}%.`,
    );
  }
  return notes;
}

/** Prints one section: its probe tables, its throughput, latency and CPU tables, its notes. */
export function printSection(section: Section, run: SectionRun): void {
  console.log(`\n== ${section.title}`);
  for (const { heading, table } of run.probe?.tables ?? []) {
    console.log(`\n${heading}\n\n${table}`);
  }
  if (run.results.size > 0) {
    console.log("\nThroughput, req/s (higher is better)\n");
    console.log(throughputTable(section, run.results));
  }
  if ([...run.results.keys()].some((row) => row.endsWith(" P1"))) {
    console.log("\nLatency at pipeline 1, ms (lower is better)\n");
    console.log(latencyTable(section, run.results));
  }
  const cpuTable = targetCpuTable(section, run.results);
  if (cpuTable !== "") {
    console.log(
      "\nProxy CPU per request, µs (lower is better; /proc/PID/stat over each run, GET and " +
        "SET of a run share one figure)\n",
    );
    console.log(cpuTable);
  }
  const notes = [
    ...(run.probe?.notes ?? []),
    ...run.notes,
    ...generatorNotes(section, run.results),
    ...tickNotes(section, run.results),
  ];
  if (notes.length > 0) console.log(`\n${notes.join("\n")}`);
}
