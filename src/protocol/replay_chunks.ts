/**
 * Test and benchmark support for resumable decoders: input delivered in chunks, as a session
 * reads it.
 */

/**
 * Replays `input` in chunks ending at each of `cuts` (then the rest) the way a session
 * reads: unconsumed bytes move to the front of one buffer, the chunk is appended, and
 * `consume` handles what it can of `buf[start, end)`, returning the bytes it took.
 * Returns how many bytes were left unconsumed at the end.
 */
export function replayChunks(
  input: Uint8Array,
  cuts: readonly number[],
  consume: (buf: Uint8Array, start: number, end: number) => number,
): number {
  const buf = new Uint8Array(input.length);
  let start = 0;
  let end = 0;
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    buf.copyWithin(0, start, end);
    end -= start;
    start = 0;
    buf.set(input.subarray(from, cut), end);
    end += cut - from;
    from = cut;
    start += consume(buf, start, end);
  }
  return end - start;
}

/**
 * Frames every item of `input` in place, `chunk` more bytes visible at a time (no copy:
 * for benchmarks of the framing itself). `next(start, end)` gives the size of the item at
 * `start`, or -1 when it needs more bytes. Returns how many items there were; throws when
 * bytes are left over.
 */
export function frameInWindows(
  input: Uint8Array,
  chunk: number,
  next: (start: number, end: number) => number,
): number {
  let start = 0;
  let count = 0;
  let end = 0;
  while (end < input.length) {
    end = Math.min(end + chunk, input.length);
    for (let size = next(start, end); size >= 0; size = next(start, end)) {
      start += size;
      count++;
    }
  }
  if (start !== input.length) throw new Error(`framed ${start} of ${input.length} bytes`);
  return count;
}

/** One way to cut an input into chunks, and how a failed assertion names it. */
export interface ChunkRun {
  cuts: number[];
  label: string;
}

/**
 * Every way the chunk-split suites cut an input of `length` bytes: once at each position
 * (0 and `length` included) and, unless `byteByByte` is false, byte by byte.
 */
export function everySplit(length: number, byteByByte = true): ChunkRun[] {
  const runs: ChunkRun[] = [];
  if (byteByByte) {
    runs.push({ cuts: Array.from({ length }, (_, i) => i), label: "byte by byte" });
  }
  for (let cut = 0; cut <= length; cut++) runs.push({ cuts: [cut], label: `cut at ${cut}` });
  return runs;
}
