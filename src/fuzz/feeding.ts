/**
 * Feeds one fuzz input to a decoder the way a session does: whole (at an offset, poison
 * bytes around it) or in chunks through an append / decode-until-null / compact loop, and
 * records each decode() call's result or the property it broke (a throw other than
 * ProtocolError, no progress, reading past the buffered bytes).
 */
import { ProtocolError } from "../protocol/protocol_error.ts";
import type { FuzzCase } from "./fuzz_types.ts";
import {
  type DecodeOutcome,
  type FuzzDecoder,
  type FuzzDriver,
  skipOutcome,
} from "./outcome_text.ts";
import type { Prng } from "./prng.ts";

/** How one feeding went. */
export interface FeedResult {
  /** Results in order, consecutive skips merged. */
  results: DecodeOutcome[];
  /** Bytes consumed by all results. */
  consumed: number;
  /** How decoding ended: needing more bytes, or a ProtocolError. */
  end: "need-more" | "protocol-error";
  /** The ProtocolError's message, when there was one. */
  error: string;
  /** A broken property (a non-ProtocolError exception, no progress...), or null. */
  fault: string | null;
  /** decode() calls made. */
  calls: number;
}

/** Bytes left in unused buffer space: a decoder reading past `end` finds frames in them. */
const _POISON = new TextEncoder().encode("\r\n*1\r\n$1\r\nx\r\nEND\r\n\n\x00\x80\x81 ");

function _poisoned(size: number): Uint8Array {
  const buf = new Uint8Array(size);
  let filled = Math.min(size, _POISON.length);
  buf.set(_POISON.subarray(0, filled));
  while (filled < size) {
    const n = Math.min(filled, size - filled);
    buf.copyWithin(filled, 0, n);
    filled += n;
  }
  return buf;
}

/** How the chunked feeding moves unconsumed bytes between decode() calls. */
export const CompactPolicy = {
  /** Move unconsumed bytes to offset 0 before each append. */
  beforeAppend: 0,
  /** Only when the next chunk does not fit (then grow if still needed). */
  whenFull: 1,
  /** Also after every result, in the middle of a request included. */
  everyCall: 2,
  /** Copy into a fresh buffer at a random offset before each append. */
  relocate: 3,
} as const;

/** Feeds `input` whole: one buffer, the bytes at an offset with poison on both sides. */
export function feedWhole(driver: FuzzDriver, input: FuzzCase, pad = 7): FeedResult {
  const bytes = input.bytes;
  const buf = _poisoned(pad + bytes.length + 32);
  buf.set(bytes, pad);
  const decoder = driver.create(input);
  const run = _newRun();
  let start = pad;
  const end = pad + bytes.length;
  const limit = bytes.length + 4;
  for (;;) {
    const out = _call(decoder, buf, start, end, run, limit);
    if (out === undefined) return run;
    if (out === null) break;
    start += out.size;
  }
  // "Need more" must be stable: the same bytes again give the same answer.
  const again = _call(decoder, buf, start, end, run, limit + 1);
  if (again !== undefined && again !== null) {
    run.fault = `decode() returned a result of ${again.size} bytes for the same bytes ` +
      `after answering "need more"`;
  }
  return run;
}

/**
 * Feeds `input` in chunks of the given sizes through a session-like loop: append to a
 * growable buffer, decode until "need more", compact (per `policy`), repeat.
 */
export function feedChunked(
  driver: FuzzDriver,
  input: FuzzCase,
  opts: { chunks: number[]; policy: number; initialSize: number; rng: Prng },
): FeedResult {
  const { chunks, policy, rng } = opts;
  const bytes = input.bytes;
  const decoder = driver.create(input);
  const run = _newRun();
  let buf = _poisoned(Math.max(1, opts.initialSize));
  let start = 0;
  let end = 0;
  let fed = 0;
  const limit = bytes.length + chunks.length + 4;
  for (const chunk of chunks) {
    if (policy === CompactPolicy.relocate) {
      const offset = rng.int(16);
      const next = _poisoned(offset + end - start + chunk + rng.int(64));
      next.set(buf.subarray(start, end), offset);
      end = offset + end - start;
      start = offset;
      buf = next;
    } else if (policy === CompactPolicy.beforeAppend || end + chunk > buf.length) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    if (end + chunk > buf.length) {
      const next = _poisoned(Math.max(buf.length * 2, end + chunk));
      next.set(buf.subarray(0, end));
      buf = next;
    }
    buf.set(bytes.subarray(fed, fed + chunk), end);
    end += chunk;
    fed += chunk;
    for (;;) {
      const out = _call(decoder, buf, start, end, run, limit);
      if (out === undefined) return run;
      if (out === null) break;
      start += out.size;
      if (start === end) start = end = 0;
      else if (policy === CompactPolicy.everyCall) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
    }
  }
  return run;
}

function _newRun(): FeedResult {
  return {
    results: [],
    consumed: 0,
    end: "need-more",
    error: "",
    fault: null,
    calls: 0,
  };
}

/**
 * One checked decode() call. Returns the outcome, null for "need more", or undefined when
 * the feeding is over (a ProtocolError ended it, or a fault was recorded).
 */
function _call(
  decoder: FuzzDecoder,
  buf: Uint8Array,
  start: number,
  end: number,
  run: FeedResult,
  limit: number,
): DecodeOutcome | null | undefined {
  if (++run.calls > limit) {
    run.fault = `no progress: ${run.calls} decode() calls for ${limit} bytes and chunks`;
    return undefined;
  }
  let out: DecodeOutcome | null;
  try {
    out = decoder.decode(buf, start, end);
  } catch (e) {
    if (e instanceof ProtocolError) {
      run.end = "protocol-error";
      run.error = e.message;
      return undefined;
    }
    const name = e instanceof Error ? e.name : typeof e;
    run.fault = `threw ${name} (only ProtocolError may be thrown): ${
      e instanceof Error ? e.message : String(e)
    }`;
    return undefined;
  }
  if (out === null) return null;
  if (!(out.size >= 1) || !Number.isInteger(out.size)) {
    run.fault = `result of size ${out.size}: no progress (a session would loop forever)`;
    return undefined;
  }
  if (out.size > end - start) {
    run.fault = `consumed ${out.size} bytes with only ${end - start} buffered`;
    return undefined;
  }
  const last = run.results[run.results.length - 1];
  if (out.skip && last !== undefined && last.skip) {
    run.results[run.results.length - 1] = skipOutcome(last.size + out.size);
  } else {
    run.results.push(out.skip ? skipOutcome(out.size) : out);
  }
  run.consumed += out.size;
  if (out.fault !== undefined) {
    run.fault = out.fault;
    return undefined;
  }
  return out;
}

/**
 * Random chunk sizes summing to `length`: byte by byte, a fixed size, or random cuts. Large
 * inputs get fewer chunks, since decoders may rescan a partial line on every call.
 */
export function chunkSchedule(length: number, rng: Prng): number[] {
  if (length === 0) return [0];
  const maxChunks = length <= 4096 ? 256 : 16;
  const mode = rng.int(10);
  if (mode < 2 && length <= maxChunks) return new Array<number>(length).fill(1);
  if (mode < 4) {
    const size = Math.max(rng.pick([1, 2, 3, 5, 7, 16, 64, 1024]), Math.ceil(length / maxChunks));
    const out: number[] = [];
    for (let left = length; left > 0; left -= size) out.push(Math.min(size, left));
    return out;
  }
  const cuts = new Set<number>();
  const n = rng.range(1, Math.min(length, maxChunks, 12));
  for (let i = 0; i < n; i++) cuts.add(rng.range(1, length));
  const points = [...cuts].sort((a, b) => a - b);
  const out: number[] = [];
  let prev = 0;
  for (const point of points) {
    out.push(point - prev);
    prev = point;
  }
  if (prev < length) out.push(length - prev);
  return out;
}
