/** Words for config errors: how a bad value is shown, the closest known key, value shapes. */

/** True when `text` holds a control character. */
export function hasControl(text: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f]/.test(text);
}

/** True for a TOML table (not an array, a date or null). */
export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/** The word for a unit in errors: "ms" is "milliseconds". */
export function unitName(unit: string): string {
  return unit === "ms"
    ? "milliseconds"
    : unit === "s"
    ? "seconds"
    : unit === "µs"
    ? "microseconds"
    : unit;
}

/** Renders a bad value for an error message, with its type when that is not obvious. */
export function showValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return `${JSON.stringify(value)} (a string)`;
  if (typeof value === "number" || typeof value === "bigint") return `${value} (a number)`;
  if (typeof value === "boolean") return `${value} (a boolean)`;
  if (value instanceof Date) return `${value.toISOString()} (a date)`;
  if (Array.isArray(value)) {
    let text: string;
    try {
      text = JSON.stringify(value, (_k, v) => typeof v === "bigint" ? Number(v) : v);
    } catch {
      text = "[...]";
    }
    if (text.length > 60) text = `${text.slice(0, 57)}...`;
    return `${text} (an array)`;
  }
  if (value === null) return "null";
  return "a table";
}

/** " (did you mean "x"?)" for the closest known word, or "" when none is close. */
export function suggestWord(word: string, known: readonly string[]): string {
  const norm = (s: string) => s.toLowerCase().replaceAll("-", "_");
  let best = "";
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = _distance(norm(word), norm(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const close = bestDistance <= Math.max(2, Math.floor(word.length / 3)) ||
    (word.length >= 4 && norm(best).includes(norm(word)));
  return close ? ` (did you mean ${JSON.stringify(best)}?)` : "";
}

/** Optimal string alignment distance: edits, with a swap of neighbours counting as one. */
function _distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) rows[i].push(i === 0 ? j : 0);
  }
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}
