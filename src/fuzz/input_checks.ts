/**
 * Checks one fuzz input: feeds it whole and chunked, then compares the two feedings with
 * each other and, for inputs made of valid frames, with the results they must give.
 */
import { chunkSchedule, feedChunked, type FeedResult, feedWhole } from "./feeding.ts";
import type { FuzzCase } from "./fuzz_types.ts";
import type { DecodeOutcome, FuzzDriver } from "./outcome_text.ts";
import type { Prng } from "./prng.ts";

function _same(a: DecodeOutcome, b: DecodeOutcome): boolean {
  return a.size === b.size && a.text === b.text && !a.skip === !b.skip;
}

function _show(o: DecodeOutcome | undefined): string {
  return o === undefined ? "(nothing)" : o.skip ? `skip ${o.size}` : o.text;
}

/** What checkInput() found for one input. */
export interface InputCheck {
  /** The first broken property, or null. */
  reason: string | null;
  /** Chunk sizes of the chunked feeding. */
  chunks: number[];
  whole: FeedResult;
  /** Null when the whole feeding already failed. */
  chunked: FeedResult | null;
}

/** Feeds one input whole and chunked (feeding picked by `rng`) and checks the properties. */
export function checkInput(driver: FuzzDriver, input: FuzzCase, rng: Prng): InputCheck {
  const chunks = chunkSchedule(input.bytes.length, rng);
  const whole = feedWhole(driver, input, rng.int(16));
  const done = (reason: string | null, chunked: FeedResult | null): InputCheck => ({
    reason,
    chunks,
    whole,
    chunked,
  });
  if (whole.fault !== null) return done(`whole: ${whole.fault}`, null);
  const chunked = feedChunked(driver, input, {
    chunks,
    policy: rng.int(4),
    initialSize: rng.pick([1, 16, 64, 4096]),
    rng,
  });
  if (chunked.fault !== null) return done(`chunked: ${chunked.fault}`, chunked);
  if (input.expected !== null) {
    const reason = _checkExpected(driver, input, whole);
    if (reason !== null) return done(`whole: ${reason}`, chunked);
  }
  const n = Math.max(whole.results.length, chunked.results.length);
  for (let i = 0; i < n; i++) {
    const a = whole.results[i];
    const b = chunked.results[i];
    if (a === undefined || b === undefined || !_same(a, b)) {
      return done(
        `whole and chunked feeding differ at result ${i}: ${_show(a)} vs ${_show(b)}` +
          _ending(whole, chunked),
        chunked,
      );
    }
  }
  if (whole.end !== chunked.end) {
    return done(`whole and chunked feeding end differently${_ending(whole, chunked)}`, chunked);
  }
  return done(null, chunked);
}

function _ending(whole: FeedResult, chunked: FeedResult): string {
  const show = (r: FeedResult) =>
    r.end === "need-more" ? `need-more after ${r.consumed}` : `ProtocolError(${r.error})`;
  return ` (whole: ${show(whole)}; chunked: ${show(chunked)})`;
}

function _checkExpected(driver: FuzzDriver, input: FuzzCase, run: FeedResult): string | null {
  const expected = input.expected!;
  if (run.end === "protocol-error") {
    return `valid ${input.partial ? "but cut " : ""}input threw ProtocolError(${run.error}) ` +
      `after ${run.results.length} of ${expected.length} expected results`;
  }
  for (let i = 0; i < expected.length; i++) {
    const want = driver.expect(expected[i]);
    const got = run.results[i];
    if (got === undefined || !_same(want, got)) {
      return `result ${i} is ${_show(got)}, expected ${_show(want)}`;
    }
  }
  if (run.results.length > expected.length) {
    return `unexpected extra result ${_show(run.results[expected.length])}`;
  }
  let size = 0;
  for (const e of expected) size += e.size;
  if (run.consumed !== size || (!input.partial && size !== input.bytes.length)) {
    return `consumed ${run.consumed} of ${input.bytes.length} bytes, expected ${size}`;
  }
  return null;
}
