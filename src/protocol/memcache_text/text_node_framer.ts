/** Frames memcached text replies on a backend connection, by the kind each request was sent with. */
import type { ReplyFramer } from "../protocol.ts";
import { type MemcacheReplyKind, MemcacheTextReplyFramer } from "./text_reply.ts";

/** Reply kinds as the numbers NodeConn hands back to the framer. */
const REPLY_KINDS: readonly MemcacheReplyKind[] = ["line", "retrieval", "meta"];

/** The number a request is sent with, for each reply kind. */
export const KIND_NUMBER: Readonly<Record<MemcacheReplyKind, number>> = {
  line: 0,
  retrieval: 1,
  meta: 2,
};

/** A quiet meta request sent with `mn` after it: zero or one reply, then `MN`. */
export const QUIET_META = 3;

/**
 * The largest value a backend reply may carry: memcached's own `-I` bound (1 GiB), not the
 * cluster's `max_value_size`, which bounds what clients send. A reply is what the server
 * holds; refusing it would fail the shared connection and every request on it.
 */
export const BACKEND_MAX_VALUE_BYTES = 1024 * 1024 * 1024;

/** What follows a quiet meta request on the backend connection. */
export const MN_REQUEST: Uint8Array = new TextEncoder().encode("mn\r\n");

/**
 * Frames memcached text replies on a backend connection by the kind each request was sent
 * with; a quiet meta request's reply runs up to and including the `MN` that follows it.
 */
export class MemcacheTextNodeFramer implements ReplyFramer {
  readonly #framer = new MemcacheTextReplyFramer({ maxValueBytes: BACKEND_MAX_VALUE_BYTES });
  /** Quiet meta: bytes of the replies already framed before the MN, from `start`. */
  #framed = 0;

  frame(buf: Uint8Array, start: number, end: number, kind: number): number {
    if (kind !== QUIET_META) return this.#framer.frame(buf, start, end, REPLY_KINDS[kind]);
    for (;;) {
      const at = start + this.#framed;
      const size = this.#framer.frame(buf, at, end, "meta");
      if (size < 0) return -1;
      this.#framed += size;
      if (_isMn(buf, at, size)) {
        const total = this.#framed;
        this.#framed = 0;
        return total;
      }
    }
  }
}

function _isMn(buf: Uint8Array, at: number, size: number): boolean {
  return size === 4 && buf[at] === 0x4d && buf[at + 1] === 0x4e; // "MN\r\n"
}
