/**
 * The one split-and-merge mechanism: a request whose keys fall in several groups goes out
 * as one request per group, and the client gets one reply once every part answered. Used by
 * RESP's multi-key commands (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) and broadcasts
 * (FUNCTION LOAD..., `allow_commands`), and by memcache text multi-gets; each protocol gives
 * only a SplitStrategy (how a part's request is encoded, how replies merge).
 */
import { copies } from "../io/copy_slab.ts";
import type { BufferLease } from "../io/buffer_pool.ts";
import type { FanOut, ReplySink, ReplyTarget } from "./protocol.ts";
import { MergeStream, type StreamOrder } from "./merge_stream.ts";

/** One sub-request: the group (node or slot) it goes to and the indexes of its keys. */
export interface SplitPart {
  group: number;
  /** Indexes of the keys (RESP: argv indexes; for MSET, of each key, its value follows it). */
  keyIndexes: number[];
}

/** What a protocol gives a split. */
export interface SplitStrategy {
  /** The request of one part (may be a view into a shared scratch: it is copied at once). */
  request(part: SplitPart, index: number): Uint8Array;
  /** The reply standing for a part that failed (its error reply). */
  failure(message: string): Uint8Array;
  /**
   * The client's reply from every part's reply, in part order. It may be one of them, or
   * lie in a scratch buffer the strategy reuses (then `isScratch` says so).
   */
  merge(replies: readonly Uint8Array[], parts: readonly SplitPart[]): Uint8Array;
  /**
   * The merged reply as pieces of the part replies (and a header), when it is large enough
   * that copying it into one buffer costs more than writing the pieces; null otherwise.
   */
  mergePieces?(replies: readonly Uint8Array[], parts: readonly SplitPart[]): Uint8Array[] | null;
  /** True when `merged` lies in the strategy's reused scratch buffer. */
  isScratch(merged: Uint8Array): boolean;
  /**
   * How the merge can be written while the parts arrive (a large MGET), or null when it
   * cannot (it waits for every part). Asked once, when a part's large reply is under way.
   */
  streamOrder?(parts: readonly SplitPart[]): StreamOrder | null;
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

/** The sink of one part: one small object per part instead of two closures. */
class PartSink implements ReplySink {
  readonly #split: SplitMerge;
  readonly #index: number;

  constructor(split: SplitMerge, index: number) {
    this.#split = split;
    this.#index = index;
  }

  onReply(reply: Uint8Array, owned = false, lease?: BufferLease): void {
    // An owned reply (a large one, left in the buffer it was read into) needs no copy.
    this.#split.complete(this.#index, reply, !owned, lease);
  }

  onError(message: string): void {
    this.#split.complete(this.#index, this.#split.strategy.failure(message), false);
  }

  onPartial(data: Uint8Array, start: number, end: number, lease: BufferLease): void {
    this.#split.progress(this.#index, data, start, end, lease);
  }
}

/**
 * Collects the replies of a split request's parts and answers the merged reply once all
 * are in. Each part completes once; later replies or errors for it are ignored.
 */
export class SplitMerge implements FanOut {
  readonly strategy: SplitStrategy;
  readonly #parts: readonly SplitPart[];
  readonly #replies: (Uint8Array | null)[];
  #remaining: number;
  #target: ReplyTarget | null = null;
  /** Leases of the owned part replies (large ones handed on in their read buffers). */
  #leases: BufferLease[] | null = null;
  /** Writing the merge as parts arrive: undefined until a large part is under way, null if not. */
  #stream: MergeStream | null | undefined = undefined;
  /**
   * Per part: the lease its owned reply came with (for a stream that starts later); made
   * when the first one comes, so a split of small replies allocates none.
   */
  #leaseOf: (BufferLease | null)[] | null = null;

  constructor(parts: readonly SplitPart[], strategy: SplitStrategy) {
    this.#parts = parts;
    this.strategy = strategy;
    this.#replies = parts.map(() => null);
    this.#remaining = parts.length;
  }

  get parts(): number {
    return this.#parts.length;
  }

  groupOf(index: number): number {
    return this.#parts[index].group;
  }

  requestOf(index: number): Uint8Array {
    return this.strategy.request(this.#parts[index], index);
  }

  sinkFor(index: number): ReplySink {
    return new PartSink(this, index);
  }

  bind(target: ReplyTarget): void {
    this.#target = target;
  }

  /**
   * Records part `index`'s reply; `isView` says it lives in a reused read buffer. The last
   * part's reply is merged at once, so only the parts before it need a copy.
   */
  complete(index: number, reply: Uint8Array, isView: boolean, lease?: BufferLease): void {
    if (this.#replies[index] !== null) {
      lease?.drop();
      return;
    }
    // An owned reply's buffer goes back to the pool once its pieces are written; a reply
    // merged into one buffer instead leaves it to the GC (the merge may be a view of it).
    if (lease !== undefined) {
      (this.#leases ??= []).push(lease);
      (this.#leaseOf ??= this.#parts.map(() => null))[index] = lease;
    }
    const last = --this.#remaining === 0;
    const kept = isView && !last ? copies.copy(reply) : reply;
    this.#replies[index] = kept;
    const stream = this.#stream;
    if (stream) {
      stream.capture(index, kept, 0, kept.length, lease ?? null);
      if (stream.started) {
        if (!last) stream.flush(this.#target!);
        else this.#finishStream(stream);
        return;
      }
      if (last) stream.release(); // never started: merged below, as without streaming
    }
    if (!last) return;
    const target = this.#target;
    if (target?.fillPieces !== undefined && this.strategy.mergePieces !== undefined) {
      // Pieces of a view (the last reply, in a reused buffer) are small: the target copies
      // those it queues, and copies all of them if it keeps the reply for later.
      const pieces = this.strategy.mergePieces(this.#replies as Uint8Array[], this.#parts);
      if (pieces !== null) {
        target.fillPieces(pieces, this.#leases ?? []);
        this.#leases = null;
        return;
      }
    }
    this.#leases = null;
    const merged = this.strategy.merge(this.#replies as Uint8Array[], this.#parts);
    // A view: bytes of the last part's reply (an error, a first reply), or a merge in the
    // strategy's scratch. The target copies it if it keeps it.
    const mergedIsView = merged.buffer === reply.buffer ? isView : this.strategy.isScratch(merged);
    this.#target?.fill(merged, mergedIsView);
  }

  /**
   * Part `index`'s large reply is under way in `data[start, end)`: the elements complete so
   * far are written on if the merge can be streamed and its turn has come.
   */
  progress(index: number, data: Uint8Array, start: number, end: number, lease: BufferLease): void {
    if (this.#replies[index] !== null) return;
    let stream = this.#stream;
    if (stream === undefined) {
      const order = this.#target?.stream !== undefined
        ? this.strategy.streamOrder?.(this.#parts) ?? null
        : null;
      stream = this.#stream = order === null ? null : new MergeStream(order, this.#parts.length);
      // Parts already in are taken first (an earlier part may hold the first values).
      this.#replies.forEach((reply, part) => {
        if (reply === null) return;
        stream!.capture(part, reply, 0, reply.length, this.#leaseOf?.[part] ?? null);
      });
    }
    if (stream === null) return;
    stream.capture(index, data, start, end, lease);
    stream.flush(this.#target!);
  }

  /** Every part is in and the reply is under way: its rest, then the leases go. */
  #finishStream(stream: MergeStream): void {
    stream.finish(this.#target!, "merged reply cut: a part failed or answered unexpectedly");
    for (const lease of this.#leases ?? []) lease.drop();
    this.#leases = null;
  }
}
