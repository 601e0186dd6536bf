/**
 * Per-round ratios behind a median ratio. Targets alternate within each round, so a
 * round's two samples were measured minutes apart at most; their spread over the rounds
 * shows whether a median under its goal is a steady loss or one of the run's swings.
 */

/** target[i] / base[i] for each round where both were measured (same index = same round). */
export function roundRatios(
  target: readonly (number | null)[],
  base: readonly (number | null)[],
): number[] {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(target.length, base.length); i++) {
    const a = target[i];
    const b = base[i];
    if (a === null || b === null || !Number.isFinite(a / b)) continue;
    ratios.push(a / b);
  }
  return ratios;
}

/**
 * "0.84-1.04x" (lowest to highest round), and for a goal how many rounds met it:
 * "0.84-1.04x, 3/5 met". "-" when no round has both samples.
 */
export function describeRounds(
  ratios: readonly number[],
  bound: { min?: number; max?: number } = {},
): string {
  if (ratios.length === 0) return "-";
  const range = `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x`;
  const { min, max } = bound;
  if (min === undefined && max === undefined) return range;
  const met = ratios.filter((r) =>
    (min === undefined || r >= min) && (max === undefined || r <= max)
  );
  return `${range}, ${met.length}/${ratios.length} met`;
}
