/** Multi-key commands split by group (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) and merged back. */
import type { ReplySink } from "../backend/reply_sink.ts";
import {
  bulkSize,
  encodeArray,
  encodeError,
  encodeInteger,
  encodeProxyError,
  headerSize,
  OK_REPLY,
  SHORT_COPY,
  writeBulk,
  writeHeader,
} from "../protocol/resp/encoder.ts";
import { ARRAY } from "../protocol/resp/bytes.ts";
import { copies } from "../io/copy_slab.ts";
import {
  arrayElementBounds,
  arrayElementSlices,
  decodeReplyValue,
} from "../protocol/resp/reply_value.ts";
import type { SplitKind } from "../protocol/resp/commands.ts";

/**
 * How part replies merge: the split kinds of multi-key commands, plus those of commands
 * broadcast to every backend: `concat` joins array replies (KEYS), `first` answers the
 * first part's reply once no part failed (FLUSHALL, CONFIG SET, SCRIPT LOAD...).
 */
export type MergeKind = SplitKind | "concat" | "first";

/** One sub-request: the group (node or slot) it goes to and the argv indexes of its keys. */
export interface SplitPart {
  group: number;
  /** argv indexes of the keys (for MSET, of each key; its value follows it). */
  keyIndexes: number[];
}

/** Parts up to which groupKeys finds a key's part by a scan, without a Map per request. */
const SCANNED_PARTS = 8;

/** Groups keys by their group, keeping first-seen group order and key order within one. */
export function groupKeys(
  keyIndexes: readonly number[],
  groupOfKey: readonly number[],
): SplitPart[] {
  const parts: SplitPart[] = [];
  let byGroup: Map<number, SplitPart> | null = null;
  for (let i = 0; i < keyIndexes.length; i++) {
    const group = groupOfKey[i];
    let part: SplitPart | undefined;
    if (byGroup === null) {
      for (let p = 0; p < parts.length; p++) {
        if (parts[p].group === group) {
          part = parts[p];
          break;
        }
      }
    } else part = byGroup.get(group);
    if (part === undefined) {
      part = { group, keyIndexes: [] };
      parts.push(part);
      if (byGroup !== null) byGroup.set(group, part);
      else if (parts.length > SCANNED_PARTS) byGroup = new Map(parts.map((x) => [x.group, x]));
    }
    part.keyIndexes.push(keyIndexes[i]);
  }
  return parts;
}

/** The argv of one part: the command name, then its keys (and MSET values). */
export function partArgv(
  kind: SplitKind,
  argv: readonly Uint8Array[],
  part: SplitPart,
): Uint8Array[] {
  const out: Uint8Array[] = [argv[0]];
  for (const index of part.keyIndexes) {
    out.push(argv[index]);
    if (kind === "mset") out.push(argv[index + 1]);
  }
  return out;
}

/**
 * Encodes the request of one part (as `encodeCommand(partArgv(...))` would) in one pass
 * over sizes and one over bytes, without building its argv.
 */
export function encodePart(
  kind: SplitKind,
  argv: readonly Uint8Array[],
  part: SplitPart,
): Uint8Array {
  return _encodePart(kind, argv, part, false);
}

/**
 * Like encodePart, into a buffer shared by every call: the view is valid only until the
 * next call, which suits routing.send (it copies at once) and saves an ArrayBuffer per part.
 */
export function encodePartView(
  kind: SplitKind,
  argv: readonly Uint8Array[],
  part: SplitPart,
): Uint8Array {
  return _encodePart(kind, argv, part, true);
}

/** Scratch of encodePartView and of MGET merges; larger outputs get their own buffer. */
const SCRATCH_BYTES = 16 * 1024;
const _partScratch = new Uint8Array(SCRATCH_BYTES);
const _mergeScratch = new Uint8Array(SCRATCH_BYTES);

function _encodePart(
  kind: SplitKind,
  argv: readonly Uint8Array[],
  part: SplitPart,
  view: boolean,
): Uint8Array {
  const step = kind === "mset" ? 2 : 1;
  const keyIndexes = part.keyIndexes;
  let size = headerSize(1 + keyIndexes.length * step) + bulkSize(argv[0]);
  for (const index of keyIndexes) {
    for (let i = 0; i < step; i++) size += bulkSize(argv[index + i]);
  }
  const out = view && size <= SCRATCH_BYTES ? _partScratch : new Uint8Array(size);
  let at = writeHeader(out, 0, ARRAY, 1 + keyIndexes.length * step);
  at = writeBulk(out, at, argv[0]);
  for (const index of keyIndexes) {
    for (let i = 0; i < step; i++) at = writeBulk(out, at, argv[index + i]);
  }
  return out === _partScratch ? out.subarray(0, size) : out;
}

/** MGETs of more keys merge in arrays of their own, so none stays large. */
const SCRATCH_MAX_KEYS = 4096;
let _scratchSource = new Int32Array(64);
let _scratchStarts = new Int32Array(64);
let _scratchEnds = new Int32Array(64);
const _scratchBounds: number[] = [];

function _growScratch(keys: number): void {
  _scratchSource = new Int32Array(keys);
  _scratchStarts = new Int32Array(keys);
  _scratchEnds = new Int32Array(keys);
}

/** The sink of one part: one small object per part instead of two closures. */
class PartSink implements ReplySink {
  readonly #collector: SplitCollector;
  readonly #index: number;

  constructor(collector: SplitCollector, index: number) {
    this.#collector = collector;
    this.#index = index;
  }

  onReply(reply: Uint8Array): void {
    this.#collector.complete(this.#index, reply, true);
  }

  onError(message: string): void {
    this.#collector.complete(this.#index, encodeProxyError(message), false);
  }
}

/** Where a split request's merged reply goes. */
export interface MergeTarget {
  /**
   * Takes the merged reply. `isView` says it lives in a buffer reused later (a backend's
   * read buffer, the merge scratch): copy it to keep it past this call.
   */
  answerMerged(reply: Uint8Array, isView: boolean): void;
}

/**
 * Collects the replies of a split request's parts and gives the merged reply once all
 * are in: MGET values in request key order, MSET's OK, the sum of integer replies.
 */
export class SplitCollector {
  readonly #kind: MergeKind;
  readonly #parts: readonly SplitPart[];
  readonly #replies: (Uint8Array | null)[];
  readonly #keyCount: number;
  readonly #firstKeyIndex: number;
  readonly #keyStep: number;
  readonly #target: MergeTarget;
  #remaining: number;

  constructor(
    request: {
      kind: MergeKind;
      parts: readonly SplitPart[];
      keyCount: number;
      firstKeyIndex: number;
    },
    target: MergeTarget,
  ) {
    this.#kind = request.kind;
    this.#parts = request.parts;
    this.#replies = request.parts.map(() => null);
    this.#remaining = request.parts.length;
    this.#keyCount = request.keyCount;
    this.#firstKeyIndex = request.firstKeyIndex;
    this.#keyStep = request.kind === "mset" ? 2 : 1;
    this.#target = target;
  }

  /** The sink for part `index`. */
  sinkFor(index: number): ReplySink {
    return new PartSink(this, index);
  }

  /**
   * Records part `index`'s reply; `isView` says it lives in a reused read buffer. The last
   * part's reply is merged at once, so only the parts before it need a copy.
   */
  complete(index: number, reply: Uint8Array, isView: boolean): void {
    if (this.#replies[index] !== null) return;
    if (--this.#remaining === 0) {
      this.#replies[index] = reply;
      const merged = this.#merge();
      // A view: the last part's reply answered as it is (an error, a first reply), or an
      // MGET merged into the shared scratch. The target copies it if it keeps it.
      const mergedIsView = merged === reply ? isView : merged.buffer === _mergeScratch.buffer;
      this.#target.answerMerged(merged, mergedIsView);
      return;
    }
    this.#replies[index] = isView ? copies.copy(reply) : reply;
  }

  #merge(): Uint8Array {
    const replies = this.#replies as Uint8Array[];
    // An error from any part is the answer, as from one server.
    for (const reply of replies) if (reply[0] === 0x2d /* "-" */) return reply;
    switch (this.#kind) {
      case "mset":
        return OK_REPLY;
      case "first":
        return replies[0];
      case "concat": {
        const all: Uint8Array[] = [];
        for (const reply of replies) {
          const elements = arrayElementSlices(reply);
          if (elements === null) return encodeError("ERR unexpected reply from backend");
          all.push(...elements);
        }
        return encodeArray(all);
      }
      case "sum": {
        let total = 0;
        for (const reply of replies) {
          const { value } = decodeReplyValue(reply);
          if (typeof value !== "number") return encodeError("ERR unexpected reply from backend");
          total += value;
        }
        return encodeInteger(total);
      }
      case "mget":
        return this.#mergeMget(replies);
    }
  }

  /** MGET values in request key order: offsets first, then one copy into the reply. */
  #mergeMget(replies: readonly Uint8Array[]): Uint8Array {
    const parts = this.#parts;
    // Per key (in request order): the part reply holding its value and the value's bounds,
    // in scratch arrays reused by every merge (a merge runs to its end synchronously).
    const large = this.#keyCount > SCRATCH_MAX_KEYS;
    if (!large && _scratchSource.length < this.#keyCount) _growScratch(this.#keyCount);
    const source = large ? new Int32Array(this.#keyCount) : _scratchSource;
    const starts = large ? new Int32Array(this.#keyCount) : _scratchStarts;
    const ends = large ? new Int32Array(this.#keyCount) : _scratchEnds;
    const bounds = large ? [] : _scratchBounds;
    let size = headerSize(this.#keyCount);
    for (let p = 0; p < parts.length; p++) {
      const keyIndexes = parts[p].keyIndexes;
      if (arrayElementBounds(replies[p], bounds) !== keyIndexes.length) {
        return encodeError("ERR unexpected reply from backend");
      }
      for (let k = 0; k < keyIndexes.length; k++) {
        const key = (keyIndexes[k] - this.#firstKeyIndex) / this.#keyStep;
        source[key] = p;
        starts[key] = bounds[2 * k];
        ends[key] = bounds[2 * k + 1];
        size += bounds[2 * k + 1] - bounds[2 * k];
      }
    }
    const out = size <= SCRATCH_BYTES ? _mergeScratch : new Uint8Array(size);
    let at = writeHeader(out, 0, ARRAY, this.#keyCount);
    for (let key = 0; key < this.#keyCount; key++) {
      const reply = replies[source[key]];
      const start = starts[key];
      const end = ends[key];
      if (end - start > SHORT_COPY) {
        out.set(reply.subarray(start, end), at);
        at += end - start;
      } else {
        for (let i = start; i < end; i++) out[at++] = reply[i];
      }
    }
    return out === _mergeScratch ? out.subarray(0, size) : out;
  }
}
