/**
 * Seeded input generators for the decoder fuzzer (pure: no Deno.*, no timers): the valid
 * frame of a target, valid pipelines, and the mix of valid and mutated inputs per index.
 *
 * Each target gets valid frames built with the project's encoders (or by hand where no
 * encoder exists: inline requests, memcached text), each with the results its decoder must
 * give, and mutators that break them: cuts, splices, bit flips, byte inserts and deletes,
 * length fields off by one or pushed near and past the limits, deep nesting, garbage.
 * One input is a pure function of (target, seed, index) through `Prng`, so any failure
 * replays from those three numbers. The frames of each wire protocol are made in
 * resp_frames.ts, memcache_text_frames.ts and memcache_binary_frames.ts, the mutators are in
 * mutations.ts, the PRNG in prng.ts.
 *
 * Hand-written rather than fast-check arbitraries (issue 18 weighed it): a frame is built
 * together with the results its decoder must give and the offsets of its length fields,
 * which arbitraries would only wrap, so the code would not shrink; there is no shrinking
 * here to replace; and `deno task fuzz` makes 1,000,000 inputs per decoder: for RESP
 * request frames, 20,000 inputs took 0.23 s through `Prng` and 12.4 s through `fc.sample`
 * (one run per index, as replay by index needs; about 25 times slower per byte made).
 */
import { concat } from "./fuzz_bytes.ts";
import type { Frame, FuzzCase, FuzzTarget, LengthField } from "./fuzz_types.ts";
import {
  memcacheBinaryRequestFrame,
  memcacheBinaryResponseFrame,
} from "./memcache_binary_frames.ts";
import { memcacheTextReplyFrame, memcacheTextRequestFrame } from "./memcache_text_frames.ts";
import {
  cut,
  deepNesting,
  deleteBytes,
  duplicateSlice,
  flipBits,
  garbage,
  hugeLength,
  insertBytes,
  lengthOffByOne,
  longLine,
  repeatToken,
  splice,
} from "./mutations.ts";
import type { Prng } from "./prng.ts";
import { respReplyFrame, respRequestFrame } from "./resp_frames.ts";

/** A valid frame for `target`. */
export function validFrame(target: FuzzTarget, rng: Prng): Frame {
  switch (target) {
    case "resp-request":
      return respRequestFrame(rng);
    case "resp-reply":
      return respReplyFrame(rng);
    case "memcache-text-request":
      return memcacheTextRequestFrame(rng);
    case "memcache-text-reply":
      return memcacheTextReplyFrame(rng);
    case "memcache-binary-request":
      return memcacheBinaryRequestFrame(rng);
    case "memcache-binary-response":
      return memcacheBinaryResponseFrame(rng);
  }
}

/** A pipeline of `count` valid frames as one input. */
export function validCase(target: FuzzTarget, rng: Prng, count: number): FuzzCase {
  const frames: Frame[] = [];
  for (let i = 0; i < count; i++) {
    const frame = validFrame(target, rng);
    frames.push(frame);
    if (frame.open) break;
  }
  const lengths: LengthField[] = [];
  let at = 0;
  for (const frame of frames) {
    for (const field of frame.lengths) lengths.push({ ...field, at: field.at + at });
    at += frame.bytes.length;
  }
  return {
    target,
    bytes: concat(frames.map((f) => f.bytes)),
    expected: frames.flatMap((f) => f.expected),
    partial: false,
    kinds: frames.map((f) => f.kind ?? "line"),
    lengths,
    label: `valid x${frames.length}`,
  };
}

function _pipelineLength(rng: Prng): number {
  const r = rng.int(100);
  return r < 60 ? 1 : r < 90 ? rng.range(2, 4) : rng.range(5, 20);
}

/**
 * The input number `rng` was seeded for: 45% valid pipelines, 10% valid pipelines cut short,
 * the rest mutated (one or two mutations) or made up.
 */
export function generateCase(target: FuzzTarget, rng: Prng): FuzzCase {
  const roll = rng.int(100);
  const base = validCase(target, rng, _pipelineLength(rng));
  if (roll < 45) return base;
  if (roll < 55) return cut(base, rng.int(base.bytes.length + 1));
  let c: FuzzCase;
  const m = rng.int(100);
  if (m < 10) c = splice(base, validCase(target, rng, _pipelineLength(rng)), rng);
  else if (m < 25) c = flipBits(base, rng);
  else if (m < 35) c = insertBytes(base, rng);
  else if (m < 45) c = deleteBytes(base, rng);
  else if (m < 50) {
    c = target.includes("text") && rng.chance(0.6)
      ? repeatToken(base, rng)
      : duplicateSlice(base, rng);
  } else if (m < 65) c = lengthOffByOne(base, rng);
  else if (m < 77) c = hugeLength(base, rng);
  else if (m < 89) c = garbage(target, rng);
  else if (m < 95) {
    c = target.startsWith("resp") ? deepNesting(target, rng) : lengthOffByOne(base, rng);
  } else if (m < 96) c = longLine(target, rng);
  else c = cut(hugeLength(base, rng), rng.int(base.bytes.length + 1));
  if (rng.chance(0.25)) {
    const again = rng.int(4);
    c = again === 0
      ? flipBits(c, rng)
      : again === 1
      ? insertBytes(c, rng)
      : again === 2
      ? deleteBytes(c, rng)
      : lengthOffByOne(c, rng);
  }
  return c;
}
