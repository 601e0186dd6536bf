/**
 * Where a section's samples go and what is read back from them: row labels, recording, and
 * medians (the tables and the target checks show medians over the rounds).
 */
import type { Results, Sample } from "./types.ts";

/** The row label of one test at one pipeline depth: "GET P1". */
export function rowLabel(test: string, pipeline: number): string {
  return `${test} P${pipeline}`;
}

/** Adds `sample` to the samples of `target` in `row`. */
export function recordSample(results: Results, row: string, target: string, sample: Sample): void {
  let byTarget = results.get(row);
  if (!byTarget) results.set(row, byTarget = new Map());
  let samples = byTarget.get(target);
  if (!samples) byTarget.set(target, samples = []);
  samples.push(sample);
}

/** The median of `values`; NaN when empty. */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median of one field of a row's samples for one target. */
export function medianOf(
  results: Results,
  row: string,
  opts: { target: string; field: "rps" | "p50Ms" | "p99Ms" | "cpu" | "targetCpuUs" },
): number {
  const samples = results.get(row)?.get(opts.target) ?? [];
  const values = samples.map((s) => s[opts.field]).filter((v): v is number => v !== null);
  return median(values);
}
