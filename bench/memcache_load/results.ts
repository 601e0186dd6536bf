/**
 * What a memcache load run measured: the latency histogram each thread records, the threads'
 * parts merged into one result, its percentiles, and the result as text.
 */
import type { Settings } from "./load_options.ts";

/** Latency histogram bucket width, ms (1 µs). */
export const BUCKET_MS = 0.001;
/** Buckets: 1 µs each up to 1 s; slower replies land in the last one. */
export const BUCKETS = 1_000_000;

/** What a load run measured. */
export interface LoadResult {
  op: "get" | "set";
  connections: number;
  pipeline: number;
  threads: number;
  /** Replies received in the measured phase. */
  requests: number;
  elapsedMs: number;
  /** Requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** `get` replies with a value. */
  hits: number;
  /** `get` replies without one. */
  misses: number;
  /** The generator's CPU time over its wall time and threads (1 = every thread busy). */
  cpu: number;
}

/** What one thread measured (histogram and absolute times, to merge). */
export interface Part {
  requests: number;
  hits: number;
  misses: number;
  /** performance.timeOrigin + now() at the measured phase's start and end. */
  startAt: number;
  endAt: number;
  histogram: Uint32Array<ArrayBuffer>;
}

/** Joins the threads' parts into one result. */
export function mergeParts(parts: Part[], opts: { settings: Settings; cpu: number }): LoadResult {
  const histogram = new Uint32Array(BUCKETS);
  for (const part of parts) {
    for (let i = 0; i < BUCKETS; i++) histogram[i] += part.histogram[i];
  }
  const requests = parts.reduce((sum, p) => sum + p.requests, 0);
  const elapsedMs = Math.max(...parts.map((p) => p.endAt)) -
    Math.min(...parts.map((p) => p.startAt));
  const { settings } = opts;
  return {
    op: settings.op,
    connections: settings.connections,
    pipeline: settings.pipeline,
    threads: settings.threads,
    requests,
    elapsedMs,
    rps: requests / (elapsedMs / 1000),
    p50Ms: percentile(histogram, 0.5),
    p99Ms: percentile(histogram, 0.99),
    maxMs: percentile(histogram, 1),
    hits: parts.reduce((sum, p) => sum + p.hits, 0),
    misses: parts.reduce((sum, p) => sum + p.misses, 0),
    cpu: opts.cpu,
  };
}

/** The latency, ms, below which `fraction` of the recorded requests fall (bucket upper edge). */
export function percentile(histogram: Uint32Array, fraction: number): number {
  let total = 0;
  for (let i = 0; i < histogram.length; i++) total += histogram[i];
  if (total === 0) return NaN;
  const rank = Math.max(1, Math.ceil(total * fraction));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= rank) return (i + 1) * BUCKET_MS;
  }
  return histogram.length * BUCKET_MS;
}

/** The result as a few human-readable lines. */
export function formatResult(result: LoadResult): string {
  const lines = [
    `${result.op} x ${result.requests} requests, ${result.connections} connections, ` +
    `pipeline ${result.pipeline}, ${result.threads} thread(s), ${result.elapsedMs.toFixed(0)} ms`,
    `  throughput  ${Math.round(result.rps).toLocaleString("en-US")} req/s`,
    `  latency     p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms, ` +
    `max ${result.maxMs.toFixed(3)} ms`,
    `  generator   ${(result.cpu * 100).toFixed(0)}% CPU of its thread(s)`,
  ];
  if (result.op === "get") lines.push(`  hits        ${result.hits}, misses ${result.misses}`);
  if (result.cpu > 0.9) {
    lines.push("  note        the generator was CPU-bound: the target may be faster than this");
  }
  return lines.join("\n");
}
