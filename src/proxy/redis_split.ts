/** Multi-key commands split by group (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) and merged back. */
import type { ReplySink } from "../backend/reply_sink.ts";
import {
  encodeArray,
  encodeError,
  encodeInteger,
  encodeProxyError,
  OK_REPLY,
} from "../protocol/resp/encoder.ts";
import { arrayElementSlices, decodeReplyValue } from "../protocol/resp/reply_value.ts";
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

/** Groups keys by their group, keeping first-seen group order and key order within one. */
export function groupKeys(
  keyIndexes: readonly number[],
  groupOfKey: readonly number[],
): SplitPart[] {
  const parts: SplitPart[] = [];
  const byGroup = new Map<number, SplitPart>();
  for (let i = 0; i < keyIndexes.length; i++) {
    const group = groupOfKey[i];
    let part = byGroup.get(group);
    if (part === undefined) {
      part = { group, keyIndexes: [] };
      byGroup.set(group, part);
      parts.push(part);
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
  readonly #target: { answerMerged(reply: Uint8Array): void };
  #remaining: number;

  constructor(
    request: {
      kind: MergeKind;
      parts: readonly SplitPart[];
      keyCount: number;
      firstKeyIndex: number;
    },
    target: { answerMerged(reply: Uint8Array): void },
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
    return {
      onReply: (reply) => this.#complete(index, reply.slice()),
      onError: (message) => this.#complete(index, encodeProxyError(message)),
    };
  }

  #complete(index: number, reply: Uint8Array): void {
    if (this.#replies[index] !== null) return;
    this.#replies[index] = reply;
    if (--this.#remaining === 0) this.#target.answerMerged(this.#merge());
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
      case "mget": {
        const values = new Array<Uint8Array>(this.#keyCount);
        for (let p = 0; p < this.#parts.length; p++) {
          const elements = arrayElementSlices(replies[p]);
          const keyIndexes = this.#parts[p].keyIndexes;
          if (elements === null || elements.length !== keyIndexes.length) {
            return encodeError("ERR unexpected reply from backend");
          }
          for (let k = 0; k < keyIndexes.length; k++) {
            values[(keyIndexes[k] - this.#firstKeyIndex) / this.#keyStep] = elements[k];
          }
        }
        return encodeArray(values);
      }
    }
  }
}
