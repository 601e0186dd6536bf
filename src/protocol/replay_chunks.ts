/** Test support for resumable decoders: input delivered in chunks, as a session reads it. */

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
