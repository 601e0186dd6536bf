/**
 * Drives a decoder over fuzz inputs the way a session does and checks its properties
 * (pure: no Deno.*, no timers).
 *
 * Every input is fed twice: whole (at an offset inside a larger buffer, poison bytes
 * around it) and in random chunks through an append / decode-until-null / compact loop on
 * a growable buffer, with compaction between calls and relocation into fresh buffers.
 * Properties checked:
 * - only ProtocolError is thrown;
 * - every result consumes at least one byte and no more than the buffered input, so the
 *   driving loop ends within (input bytes + chunks) calls; past that bound it is a failure;
 * - a decoder that answered "need more" answers it again for the same bytes;
 * - inputs made of valid frames decode to the values they were encoded from (argv,
 *   fields, sizes), consume the whole input and never throw, even when cut short;
 * - whole and chunked feeding give the same results (runs of discarded bytes merged) and
 *   end the same way (needing more, or a ProtocolError at the same point).
 */
import { ProtocolError } from "../protocol/protocol_error.ts";
import { RespRequestDecoder } from "../protocol/resp/request_decoder.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { decodeReplyValue } from "../protocol/resp/reply_value.ts";
import {
  MemcacheTextDecoder,
  type MemcacheTextRequest,
  withoutNoreply,
} from "../protocol/memcache_text/text_request.ts";
import {
  type MemcacheReplyKind,
  MemcacheTextReplyFramer,
  splitRetrievalReply,
} from "../protocol/memcache_text/text_reply.ts";
import {
  type BinaryPacket,
  decodeBinaryPacket,
  MemcacheBinaryDecoder,
  MemcacheBinaryResponseFramer,
} from "../protocol/memcache_binary/binary.ts";
import { type Expected, type FuzzCase, type FuzzTarget, generateCase, Prng } from "./generators.ts";

export { FUZZ_TARGETS, type FuzzTarget } from "./generators.ts";

/** One decode result reduced to what the checks compare. */
export interface DecodeOutcome {
  /** Bytes consumed. */
  size: number;
  /** Canonical text of the result (compared between runs and with the expectation). */
  text: string;
  /** A run of discarded bytes: consecutive ones are merged before comparing. */
  skip?: boolean;
  /** A broken property the driver found in this result (reported as a failure). */
  fault?: string;
}

/** One decoder instance as the harness sees it. */
export interface FuzzDecoder {
  /** Decodes at `buf[start, end)`: null when more bytes are needed; throws like the decoder. */
  decode(buf: Uint8Array, start: number, end: number): DecodeOutcome | null;
}

/** How to build and read one kind of decoder. */
export interface FuzzDriver {
  /** A fresh decoder for one input (the case gives, for example, reply kinds). */
  create(input: FuzzCase): FuzzDecoder;
  /** The outcome a valid frame's expected result must match. */
  expect(expected: Expected): DecodeOutcome;
}

/** A property that did not hold for one input, with what it takes to replay it. */
export interface FuzzFailure {
  target: FuzzTarget;
  seed: number;
  /** The input's index: `runFuzz(target, { seed, inputs: 1, first: index })` replays it. */
  index: number;
  /** How the input was made (generator and mutators). */
  label: string;
  /** What went wrong, with the feeding mode ("whole" or "chunked"). */
  reason: string;
  /** Input length in bytes. */
  length: number;
  /** The input bytes in hex, truncated to the first 256 bytes. */
  hex: string;
  /** The chunk sizes of the chunked feeding (first 32). */
  chunks: number[];
}

/** What runFuzz() reports. */
export interface FuzzReport {
  inputs: number;
  /** The first `maxFailures` failures. */
  failures: FuzzFailure[];
  /** Inputs that failed, all of them. */
  failed: number;
}

/** Options of runFuzz(). */
export interface FuzzOptions {
  seed: number;
  inputs: number;
  /**
   * Index of the first input (to replay one input, or continue a run).
   * @default 0
   */
  first?: number;
  /**
   * Stop collecting failures after this many (the run goes on).
   * @default 100
   */
  maxFailures?: number;
  /** Replaces the target's real decoder (to test the harness itself). */
  driver?: FuzzDriver;
  /** Called before each input with its index (progress, stall watchdogs). */
  onInput?: (index: number) => void;
}

// ---------------------------------------------------------------------------------------
// Canonical text of results

const _HEX_TABLE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += _HEX_TABLE[bytes[i]];
  return out;
}

/** Short stable text for a payload: hex when short, length and FNV-1a hash when long. */
function _digest(bytes: Uint8Array): string {
  if (bytes.length <= 48) return hex(bytes);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${bytes.length}#${(h >>> 0).toString(16)}`;
}

function _list(items: readonly Uint8Array[]): string {
  let out = "";
  for (let i = 0; i < items.length; i++) out += (i > 0 ? "," : "") + _digest(items[i]);
  return out;
}

function _respRequestText(argv: readonly Uint8Array[], inline: boolean, size: number): string {
  return `req ${size} ${inline ? "inline" : "multibulk"} [${_list(argv)}]`;
}

function _mcRequestText(
  r: {
    command: string;
    keys: readonly Uint8Array[];
    exptime: Uint8Array | null;
    args: readonly Uint8Array[];
    base64Key: boolean;
    size: number;
  },
  noreply: string,
  data: Uint8Array | null,
): string {
  return `req ${r.size} ${r.command} keys=[${_list(r.keys)}] exptime=${
    r.exptime === null ? "-" : _digest(r.exptime)
  } args=[${_list(r.args)}] noreply=${JSON.stringify(noreply)} b64=${r.base64Key} data=${
    data === null ? "-" : _digest(data)
  }`;
}

function _mcErrorText(command: string | null, error: string, noreply: boolean, size: number) {
  return `error ${size} ${command ?? "-"} ${JSON.stringify(error)} noreply=${noreply}`;
}

function _binaryPacketText(p: Omit<BinaryPacket, "kind" | "magic">): string {
  return `packet ${p.size} op=${p.opcode} vbucket=${p.status} opaque=${p.opaque} cas=${p.cas} ` +
    `type=${p.dataType} extras=${_digest(p.extras)} key=${_digest(p.key)} value=${
      _digest(p.value)
    }`;
}

function _frameText(size: number): string {
  return `frame ${size}`;
}

function _skip(size: number): DecodeOutcome {
  return { size, text: "skip", skip: true };
}

function _expectGeneric(e: Expected): DecodeOutcome {
  switch (e.type) {
    case "resp-request":
      return { size: e.size, text: _respRequestText(e.argv, e.inline, e.size) };
    case "frame":
      return { size: e.size, text: _frameText(e.size) };
    case "mc-request":
      return { size: e.size, text: _mcRequestText(e, e.noreply, e.data) };
    case "mc-error":
      return { size: e.size, text: _mcErrorText(e.command, e.error, e.noreply, e.size) };
    case "bin-packet":
      return {
        size: e.size,
        text: _binaryPacketText({ ...e, status: e.vbucket, dataType: 0 }),
      };
    case "bin-error":
      return {
        size: e.size,
        text: `error ${e.size} op=${e.opcode} opaque=${e.opaque} status=${e.status}`,
      };
    case "skip":
      return _skip(e.size);
  }
}

// ---------------------------------------------------------------------------------------
// Drivers of the real decoders

const _latin1 = new TextDecoder("latin1");

const _DRIVERS: Record<FuzzTarget, FuzzDriver> = {
  "resp-request": {
    create() {
      const decoder = new RespRequestDecoder();
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          return r === null
            ? null
            : { size: r.size, text: _respRequestText(r.argv, r.inline, r.size) };
        },
      };
    },
    expect: _expectGeneric,
  },
  "resp-reply": {
    create() {
      const framer = new RespReplyFramer();
      return {
        decode(buf, start, end) {
          const size = framer.frame(buf, start, end);
          if (size === -1) return null;
          return { size, text: _frameText(size), fault: _checkRespValue(buf, start, size) };
        },
      };
    },
    expect: _expectGeneric,
  },
  "memcache-text-request": {
    create() {
      // The generators' multiget lines sit around 64 KiB: keep that the limit here, so its
      // edge is fuzzed without 8 MiB inputs (the default `max_multiget_line`).
      const decoder = new MemcacheTextDecoder({ maxRetrievalLineBytes: 65536 });
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          if (r === null) return null;
          if (r.kind === "skip") return _skip(r.size);
          if (r.kind === "error") {
            return { size: r.size, text: _mcErrorText(r.command, r.error, r.noreply, r.size) };
          }
          // Views are read now: the caller moves the bytes afterwards.
          const noreply = r.noreplyAt < 0 ? "" : _latin1.decode(
            buf.subarray(start + r.noreplyAt, start + r.noreplyAt + r.noreplyLength),
          );
          const data = r.dataStart < 0
            ? null
            : buf.subarray(start + r.dataStart, start + r.dataStart + r.dataLength);
          const text = _mcRequestText(r, noreply, data);
          if (r.noreplyAt < 0 || r.keys.length === 0) return { size: r.size, text };
          return {
            size: r.size,
            text,
            fault: _checkStripped(buf.subarray(start, start + r.size), r),
          };
        },
      };
    },
    expect: _expectGeneric,
  },
  "memcache-text-reply": {
    create(input) {
      const framer = new MemcacheTextReplyFramer();
      const kinds = input.kinds.length > 0 ? input.kinds : ["line" as MemcacheReplyKind];
      let replies = 0;
      return {
        decode(buf, start, end) {
          const kind = kinds[Math.min(replies, kinds.length - 1)];
          const size = framer.frame(buf, start, end, kind);
          if (size === -1) return null;
          replies++;
          const fault = kind === "retrieval"
            ? _checkRetrievalSplit(buf.subarray(start, start + size))
            : undefined;
          return { size, text: _frameText(size), fault };
        },
      };
    },
    expect: _expectGeneric,
  },
  "memcache-binary-request": {
    create() {
      const decoder = new MemcacheBinaryDecoder();
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          if (r === null) return null;
          if (r.kind === "skip") return _skip(r.size);
          if (r.kind === "error") {
            return {
              size: r.size,
              text: `error ${r.size} op=${r.opcode} opaque=${r.opaque} status=${r.status}`,
            };
          }
          return { size: r.size, text: _binaryPacketText(r) };
        },
      };
    },
    expect: _expectGeneric,
  },
  "memcache-binary-response": {
    create() {
      const framer = new MemcacheBinaryResponseFramer();
      return {
        decode(buf, start, end) {
          const size = framer.frame(buf, start, end);
          if (size === -1) return null;
          return { size, text: _frameText(size), fault: _checkBinaryPacket(buf, start, size) };
        },
      };
    },
    expect: _expectGeneric,
  },
};

/**
 * A proxy forwards a noreply / quiet request as withoutNoreply() makes it and drops the
 * reply itself, so the stripped request must be the same request, but loud.
 */
function _checkStripped(raw: Uint8Array, r: MemcacheTextRequest): string | undefined {
  const stripped = withoutNoreply(raw, r);
  let again;
  try {
    again = new MemcacheTextDecoder().decode(stripped, 0, stripped.length);
  } catch (e) {
    return `withoutNoreply() of a ${r.command} request makes bytes that throw: ${e}`;
  }
  const what = `withoutNoreply() turns ${JSON.stringify(_latin1.decode(raw.subarray(0, 80)))}`;
  if (again === null || again.kind !== "request") {
    return `${what} into ${again === null ? "an incomplete request" : `a ${again.kind}`}`;
  }
  if (again.noreply) return `${what} into a request that is still noreply/quiet`;
  if (
    again.command !== r.command || again.size !== stripped.length ||
    _list(again.keys) !== _list(r.keys) || again.dataLength !== r.dataLength
  ) {
    return `${what} into a different request`;
  }
  return undefined;
}

/** A framed RESP reply must read as one value of that size (merges of split commands). */
function _checkRespValue(buf: Uint8Array, start: number, size: number): string | undefined {
  try {
    const value = decodeReplyValue(buf.subarray(start, start + size));
    if (value.size === size) return undefined;
    return `decodeReplyValue() reads ${value.size} bytes of a reply framed as ${size}`;
  } catch (e) {
    return `decodeReplyValue() throws on a reply framed as ${size} bytes: ${e}`;
  }
}

/** A framed retrieval reply must split into whole VALUE blocks and a last line (multigets). */
function _checkRetrievalSplit(reply: Uint8Array): string | undefined {
  try {
    const { blocks, tail } = splitRetrievalReply(reply);
    let size = tail.length;
    for (const block of blocks) size += block.length;
    if (size !== reply.length) {
      return `splitRetrievalReply() covers ${size} of ${reply.length} bytes`;
    }
    const last = _latin1.decode(tail.subarray(0, 13));
    if (!/^(END\r?\n|ERROR|CLIENT_ERROR|SERVER_ERROR)/.test(last)) {
      return `splitRetrievalReply() leaves a tail that is not END or an error: ${
        JSON.stringify(last)
      }`;
    }
    return undefined;
  } catch (e) {
    return `splitRetrievalReply() throws on a framed reply: ${e}`;
  }
}

/** A framed binary response must view as one packet of that size. */
function _checkBinaryPacket(buf: Uint8Array, start: number, size: number): string | undefined {
  try {
    const packet = decodeBinaryPacket(buf.subarray(start, start + size));
    if (packet.size === size) return undefined;
    return `decodeBinaryPacket() sees ${packet.size} bytes in a response framed as ${size}`;
  } catch (e) {
    return `decodeBinaryPacket() throws on a response framed as ${size} bytes: ${e}`;
  }
}

/** The driver of a target's real decoder. */
export function driverFor(target: FuzzTarget): FuzzDriver {
  return _DRIVERS[target];
}

// ---------------------------------------------------------------------------------------
// Feeding

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
    run.results[run.results.length - 1] = _skip(last.size + out.size);
  } else {
    run.results.push(out.skip ? _skip(out.size) : out);
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

// ---------------------------------------------------------------------------------------
// Checks

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

/** Checks input `index` of a run with `seed` again, with everything needed to inspect it. */
export function replayInput(
  target: FuzzTarget,
  opts: { seed: number; index: number; driver?: FuzzDriver },
): InputCheck & { input: FuzzCase } {
  const { input, rng } = makeInput(target, opts.seed, opts.index);
  return { input, ...checkInput(opts.driver ?? driverFor(target), input, rng) };
}

/** The input `index` of a run with `seed`, and the PRNG that then picks its feeding. */
export function makeInput(target: FuzzTarget, seed: number, index: number): {
  input: FuzzCase;
  rng: Prng;
} {
  const rng = new Prng(seed, index);
  return { input: generateCase(target, rng), rng };
}

/**
 * Runs `opts.inputs` generated inputs (indexes `first`...) through the target's decoder
 * and returns the inputs checked and the broken properties found, each replayable from
 * its seed and index.
 */
export function runFuzz(target: FuzzTarget, opts: FuzzOptions): FuzzReport {
  const driver = opts.driver ?? driverFor(target);
  const first = opts.first ?? 0;
  const maxFailures = opts.maxFailures ?? 100;
  const failures: FuzzFailure[] = [];
  let failed = 0;
  for (let index = first; index < first + opts.inputs; index++) {
    opts.onInput?.(index);
    const { input, rng } = makeInput(target, opts.seed, index);
    const { reason, chunks } = checkInput(driver, input, rng);
    if (reason === null) continue;
    if (++failed > maxFailures) continue;
    failures.push({
      target,
      seed: opts.seed,
      index,
      label: input.label,
      reason,
      length: input.bytes.length,
      hex: hex(input.bytes.subarray(0, 256)) + (input.bytes.length > 256 ? "..." : ""),
      chunks: chunks.slice(0, 32),
    });
  }
  return { inputs: opts.inputs, failures, failed };
}
