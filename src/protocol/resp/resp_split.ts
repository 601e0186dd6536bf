/**
 * RESP's side of split requests (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH, broadcasts): each
 * part's request, and the merge of their replies (the mechanism is src/protocol/split_merge.ts).
 */
import {
  bulkSize,
  encodeArray,
  encodeBulk,
  encodeCommand,
  encodeError,
  encodeInteger,
  encodeProxyError,
  headerSize,
  NULL_BULK_REPLY,
  OK_REPLY,
  SHORT_COPY,
  writeBulk,
  writeHeader,
} from "./encoder.ts";
import { ARRAY } from "./bytes.ts";
import { OWN_FROM } from "../../io/write_batcher.ts";
import { arrayElementBounds, arrayElementSlices, decodeReplyValue } from "./reply_value.ts";
import type { SplitKind } from "./commands.ts";
import type { SplitPart, SplitStrategy } from "../split_merge.ts";
import type { StreamOrder } from "../merge_stream.ts";
import { ArrayElementScanner } from "./array_scanner.ts";
import { mergeKeyspace } from "./info_keyspace.ts";

export { groupKeys, type SplitPart } from "../split_merge.ts";

/**
 * How part replies merge: the split kinds of multi-key commands, plus those of commands
 * broadcast to every backend: `concat` joins array replies (KEYS), `first` answers the
 * first part's reply once no part failed (FLUSHALL, CONFIG SET, SCRIPT LOAD...), `random`
 * a random non-nil reply (RANDOMKEY), `keyspace` the summed `INFO keyspace`, `every` the
 * arrays of 0/1 anded element by element (SCRIPT EXISTS: 1 only where every node has it).
 */
export type MergeKind =
  | SplitKind
  | "concat"
  | "first"
  | "random"
  | "keyspace"
  /** PUBSUB CHANNELS: arrays joined, each element once. */
  | "union"
  /** PUBSUB NUMSUB: [name, count...] pairs, counts summed per name (in the first reply's order). */
  | "numsub"
  /** The largest integer reply (PUBSUB NUMPAT where every node has every pattern). */
  | "max"
  /** Arrays of integers anded element by element (SCRIPT EXISTS over every node). */
  | "every";

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
/** Part replies from which an MGET merges as pieces (the writer then queues large ones as they are). */
const PIECES_FROM = OWN_FROM;
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

/**
 * How RESP's split requests encode their parts and merge the replies: MGET values in
 * request key order, MSET's OK, the sum of integer replies, joined arrays, or the first
 * reply; an error from any part is the answer, as from one server.
 */
export class RespSplit implements SplitStrategy {
  readonly #kind: MergeKind;
  /** The request's arguments until its last part is encoded (then dropped: see request()). */
  #argv: readonly Uint8Array[] | null;
  readonly #parts: number;
  readonly #keyCount: number;
  readonly #firstKeyIndex: number;
  readonly #keyStep: number;
  /** A broadcast's request, encoded once for every part. */
  #whole: Uint8Array | null = null;
  readonly #broadcast: boolean;
  readonly #before: string;

  constructor(
    request: {
      kind: MergeKind;
      argv: readonly Uint8Array[];
      /** Every part sends the whole request (a broadcast), not its keys. */
      whole: boolean;
      parts: number;
      keyCount: number;
      firstKeyIndex: number;
      /** `keyspace`: Aster's own INFO sections, placed before the merged one. */
      before?: string;
    },
  ) {
    this.#kind = request.kind;
    this.#before = request.before ?? "";
    this.#argv = request.argv;
    this.#parts = request.parts;
    this.#keyCount = request.keyCount;
    this.#firstKeyIndex = request.firstKeyIndex;
    this.#keyStep = request.kind === "mset" ? 2 : 1;
    this.#broadcast = request.whole;
  }

  request(part: SplitPart, index: number): Uint8Array {
    const argv = this.#argv;
    // A split waiting for replies keeps no views of the client's read buffer.
    if (index === this.#parts - 1) this.#argv = null;
    if (this.#broadcast) {
      this.#whole ??= encodeCommand(argv!);
      const whole = this.#whole;
      if (index === this.#parts - 1) this.#whole = null;
      return whole;
    }
    return encodePartView(this.#kind as SplitKind, argv!, part);
  }

  failure(message: string): Uint8Array {
    return encodeProxyError(message);
  }

  isScratch(merged: Uint8Array): boolean {
    return merged.buffer === _mergeScratch.buffer;
  }

  merge(replies: readonly Uint8Array[], parts: readonly SplitPart[]): Uint8Array {
    // An error from any part is the answer, as from one server.
    for (const reply of replies) if (reply[0] === 0x2d /* "-" */) return reply;
    switch (this.#kind) {
      case "mset":
        return OK_REPLY;
      case "first":
        return replies[0];
      case "random": {
        // A key of a random node among those that hold one: nil only when all are empty.
        const keys = replies.filter((reply) => reply[0] === 0x24 && reply[1] !== 0x2d);
        // All empty: the first node's nil, in the protocol it was sent in ($-1, or RESP3's _).
        if (keys.length === 0) return replies[0] ?? NULL_BULK_REPLY;
        return keys[Math.floor(Math.random() * keys.length)];
      }
      case "keyspace":
        return mergeKeyspace(replies, this.#before);
      case "concat": {
        const all: Uint8Array[] = [];
        for (const reply of replies) {
          const elements = arrayElementSlices(reply);
          if (elements === null) return encodeError("ERR unexpected reply from backend");
          all.push(...elements);
        }
        return encodeArray(all);
      }
      case "every":
        return _mergeEvery(replies);
      case "union": {
        const seen = new Set<string>();
        const all: Uint8Array[] = [];
        for (const reply of replies) {
          const elements = arrayElementSlices(reply);
          if (elements === null) return encodeError("ERR unexpected reply from backend");
          for (const element of elements) {
            const key = element.join();
            if (!seen.has(key)) {
              seen.add(key);
              all.push(element);
            }
          }
        }
        return encodeArray(all);
      }
      case "numsub":
        return _mergeNumsub(replies);
      case "max":
      case "sum": {
        let total = 0;
        for (const reply of replies) {
          const { value } = decodeReplyValue(reply);
          if (typeof value !== "number") return encodeError("ERR unexpected reply from backend");
          total = this.#kind === "max" ? Math.max(total, value) : total + value;
        }
        return encodeInteger(total);
      }
      case "mget":
        return this.#mergeMget(replies, parts);
    }
  }

  /**
   * A large MGET (PIECES_FROM bytes of part replies and more) merged as pieces: the header,
   * then each run of values that lie next to each other in one part's reply, in key order.
   * The values are not copied (16 MB values would be copied once more than nutcracker does).
   */
  mergePieces(replies: readonly Uint8Array[], parts: readonly SplitPart[]): Uint8Array[] | null {
    if (this.#kind !== "mget") return null;
    let total = 0;
    for (const reply of replies) {
      if (reply[0] !== ARRAY) return null; // an error or a surprise: merge() answers it
      total += reply.length;
    }
    if (total < PIECES_FROM) return null;
    const keyCount = this.#keyCount;
    const source = new Int32Array(keyCount);
    const starts = new Int32Array(keyCount);
    const ends = new Int32Array(keyCount);
    const bounds: number[] = [];
    for (let p = 0; p < parts.length; p++) {
      const keyIndexes = parts[p].keyIndexes;
      if (arrayElementBounds(replies[p], bounds) !== keyIndexes.length) return null;
      for (let k = 0; k < keyIndexes.length; k++) {
        const key = (keyIndexes[k] - this.#firstKeyIndex) / this.#keyStep;
        source[key] = p;
        starts[key] = bounds[2 * k];
        ends[key] = bounds[2 * k + 1];
      }
    }
    const pieces: Uint8Array[] = [_arrayHeader(keyCount)];
    let runSource = -1;
    let runStart = 0;
    let runEnd = 0;
    for (let key = 0; key < keyCount; key++) {
      if (source[key] === runSource && starts[key] === runEnd) {
        runEnd = ends[key];
        continue;
      }
      if (runSource >= 0) pieces.push(replies[runSource].subarray(runStart, runEnd));
      runSource = source[key];
      runStart = starts[key];
      runEnd = ends[key];
    }
    if (runSource >= 0) pieces.push(replies[runSource].subarray(runStart, runEnd));
    return pieces;
  }

  /**
   * A large MGET written while its parts arrive (only asked once a part's reply is large):
   * the header, then each key's value from its part, in request key order.
   */
  streamOrder(parts: readonly SplitPart[]): StreamOrder | null {
    if (this.#kind !== "mget") return null;
    const keyCount = this.#keyCount;
    const partOf = new Int32Array(keyCount);
    const indexInPart = new Int32Array(keyCount);
    for (let p = 0; p < parts.length; p++) {
      const keyIndexes = parts[p].keyIndexes;
      for (let k = 0; k < keyIndexes.length; k++) {
        const key = (keyIndexes[k] - this.#firstKeyIndex) / this.#keyStep;
        partOf[key] = p;
        indexInPart[key] = k;
      }
    }
    const header = _arrayHeader(keyCount);
    return { header, partOf, indexInPart, newScanner: () => new ArrayElementScanner() };
  }

  /** MGET values in request key order: offsets first, then one copy into the reply. */
  #mergeMget(replies: readonly Uint8Array[], parts: readonly SplitPart[]): Uint8Array {
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

/** An array header of `count` elements on its own (the first piece of a merged MGET). */
function _arrayHeader(count: number): Uint8Array {
  const header = new Uint8Array(headerSize(count));
  writeHeader(header, 0, ARRAY, count);
  return header;
}

/** PUBSUB NUMSUB's [channel, count, ...] replies of every node: counts summed per channel. */
function _mergeNumsub(replies: readonly Uint8Array[]): Uint8Array {
  const names: Uint8Array[] = [];
  const counts: number[] = [];
  for (const [r, reply] of replies.entries()) {
    const { value } = decodeReplyValue(reply);
    if (!Array.isArray(value)) return encodeError("ERR unexpected reply from backend");
    for (let i = 0; i + 1 < value.length; i += 2) {
      const count = value[i + 1];
      if (typeof count !== "number") return encodeError("ERR unexpected reply from backend");
      const at = i / 2;
      if (r === 0) {
        names.push(value[i] as Uint8Array);
        counts.push(count);
      } else counts[at] = (counts[at] ?? 0) + count;
    }
  }
  const out: Uint8Array[] = [];
  names.forEach((name, i) => {
    out.push(encodeBulk(name), encodeInteger(counts[i]));
  });
  return encodeArray(out);
}

/** Arrays of integers anded element by element (SCRIPT EXISTS over every node). */
function _mergeEvery(replies: readonly Uint8Array[]): Uint8Array {
  let merged: number[] | null = null;
  for (const reply of replies) {
    const { value } = decodeReplyValue(reply);
    if (!Array.isArray(value) || (merged !== null && value.length !== merged.length)) {
      return encodeError("ERR unexpected reply from backend");
    }
    const flags = value.map((element) => element === 1 ? 1 : 0);
    merged = merged === null ? flags : merged.map((flag, i) => flag & flags[i]);
  }
  return encodeArray((merged ?? []).map(encodeInteger));
}
