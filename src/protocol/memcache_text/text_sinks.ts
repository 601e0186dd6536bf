/**
 * How memcache text replies reach the client when not as they are: a text noreply request's
 * reply dropped, a quiet meta request's shown up to its `mn`, a split multi-get merged.
 */
import type { BoundSink, ReplyTarget } from "../protocol.ts";
import type { SplitPart, SplitStrategy } from "../split_merge.ts";
import { buildRetrieval, type RetrievalHead } from "./text_request.ts";
import { mergeRetrieval, textLine } from "./text_reply.ts";
import { MN_REQUEST } from "./text_node_framer.ts";

const EMPTY = new Uint8Array(0);

/** The SERVER_ERROR line of a failed request. */
export function serverErrorLine(message: string): Uint8Array {
  return textLine(`SERVER_ERROR ${message.replace(/[\r\n]+/g, " ")}`);
}

/**
 * The client gets `reply` whatever the backend answered: nothing for a text noreply
 * request, the refusal of a store whose stale value the backend was told to delete.
 */
export class FixedReplySink implements BoundSink {
  readonly #reply: Uint8Array;
  #target: ReplyTarget | null = null;

  constructor(reply: Uint8Array = EMPTY) {
    this.#reply = reply;
  }

  bind(target: ReplyTarget): void {
    this.#target = target;
  }

  onReply(): void {
    this.#target!.answer(this.#reply);
  }

  onError(): void {
    this.#target!.answer(this.#reply);
  }
}

/** A quiet meta request sent with `mn`: the client gets what came before the MN. */
export class QuietMetaSink implements BoundSink {
  #target: ReplyTarget | null = null;

  bind(target: ReplyTarget): void {
    this.#target = target;
  }

  onReply(reply: Uint8Array): void {
    const shown = reply.subarray(0, reply.length - MN_REQUEST.length);
    if (shown.length === 0) this.#target!.answer(EMPTY);
    else this.#target!.onReply(shown);
  }

  onError(message: string): void {
    // Quiet mode still reports failures.
    this.#target!.answer(serverErrorLine(message));
  }
}

/** A multi-get split by server: each part a get of its keys, the blocks merged in key order. */
export class RetrievalSplit implements SplitStrategy {
  /** The request's keys, copied (the client's read buffer is reused). */
  readonly #keys: Uint8Array[];
  /** The request line's head and its keys as read (views), until every part's request is built. */
  #head: RetrievalHead | null;
  #views: readonly Uint8Array[] | null;
  readonly #parts: number;

  constructor(
    request: { head: RetrievalHead; keys: readonly Uint8Array[]; copies: Uint8Array[] },
    parts: number,
  ) {
    this.#head = request.head;
    this.#views = request.keys;
    this.#keys = request.copies;
    this.#parts = parts;
  }

  request(part: SplitPart, index: number): Uint8Array {
    const views = this.#views!;
    const head = this.#head!;
    if (index === this.#parts - 1) {
      this.#views = null;
      this.#head = null;
    }
    return buildRetrieval(head, part.keyIndexes.map((key) => views[key]));
  }

  failure(message: string): Uint8Array {
    return serverErrorLine(message);
  }

  merge(replies: readonly Uint8Array[], parts: readonly SplitPart[]): Uint8Array {
    return mergeRetrieval(
      this.#keys,
      parts.map((part, i) => ({ keys: part.keyIndexes, reply: replies[i] })),
    );
  }

  isScratch(): boolean {
    return false;
  }
}
