/**
 * Helpers of the performance targets (issue 6): the ratio of two targets in one row, of
 * their medians and round by round, checked against a goal; the throughput, proxy CPU and
 * sandboxed-Aster checks that several sections share.
 */
import { medianOf, rowLabel } from "./results.ts";
import { describeRounds, roundRatios } from "./round_ratios.ts";
import { PIPELINES, SANDBOXED } from "./settings.ts";
import type { Results, TargetCheck } from "./types.ts";

/** A ratio of two targets in one row: of their medians, and round by round. */
export interface RowRatio {
  median: number;
  rounds: number[];
}

/** Throughput or latency rows of `results`: `target`'s median over `base`'s, and per round. */
export function ratioOf(
  results: Results,
  row: string,
  opts: { target: string; base: string; field: "rps" | "p99Ms" | "targetCpuUs" },
): RowRatio {
  const { target, base, field } = opts;
  const samples = (name: string) => (results.get(row)?.get(name) ?? []).map((s) => s[field]);
  return {
    median: medianOf(results, row, { target, field }) /
      medianOf(results, row, { target: base, field }),
    rounds: roundRatios(samples(target), samples(base)),
  };
}

/** A ratio checked against `min` (throughput) or `max` (latency); info when neither. */
export function ratioCheck(
  what: string,
  rowRatio: RowRatio,
  bound: { min?: number; max?: number },
): TargetCheck {
  const ratio = rowRatio.median;
  const rounds = describeRounds(rowRatio.rounds, bound);
  const { min, max } = bound;
  const goal = min !== undefined
    ? `>= ${min.toFixed(2)}x`
    : max !== undefined
    ? `<= ${max.toFixed(2)}x`
    : "-";
  let status = "info";
  if (!Number.isFinite(ratio)) status = "n/a";
  else if (min !== undefined) status = ratio >= min ? "PASS" : "FAIL";
  else if (max !== undefined) status = ratio <= max ? "PASS" : "FAIL";
  return {
    what,
    value: Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "-",
    goal,
    status,
    rounds,
  };
}

/**
 * GET and SET req/s of Aster against nutcracker at each pipeline depth, against `minAt` it
 * (info rows when it gives none).
 */
export function throughputChecks(
  section: string,
  results: Results,
  minAt: (pipeline: number) => number | undefined,
  target = "aster",
): TargetCheck[] {
  return PIPELINES.flatMap((pipeline) =>
    ["GET", "SET"].map((test) => {
      const row = rowLabel(test, pipeline);
      const ratio = ratioOf(results, row, { target, base: "nutcracker", field: "rps" });
      return ratioCheck(`${section} ${row} req/s, ${target}/nutcracker`, ratio, {
        min: minAt(pipeline),
      });
    })
  );
}

/**
 * Aster's CPU per request against nutcracker's at each depth (GET and SET share a run), with
 * the most it may be at each (`maxAt`; none: info rows).
 */
export function proxyCpuChecks(
  section: string,
  results: Results,
  target = "aster",
  maxAt: (pipeline: number) => number | undefined = () => undefined,
): TargetCheck[] {
  return PIPELINES.map((pipeline) => {
    const ratio = ratioOf(results, rowLabel("GET", pipeline), {
      target,
      base: "nutcracker",
      field: "targetCpuUs",
    });
    const what = `${section} GET+SET P${pipeline} proxy CPU per request, ${target}/nutcracker`;
    return ratioCheck(what, ratio, { max: maxAt(pipeline) });
  });
}

/**
 * Aster inside Deno's sandbox against nutcracker, as info rows (no targets: the targets are
 * Aster's as `deno task start` runs it), where its run (--only or a failure may skip it)
 * exists.
 */
export function sandboxedChecks(section: string, results: Results): TargetCheck[] {
  if (!results.get(rowLabel("GET", 1))?.has(SANDBOXED)) return [];
  return [
    ...throughputChecks(section, results, () => undefined, SANDBOXED),
    ...proxyCpuChecks(section, results, SANDBOXED),
  ];
}
