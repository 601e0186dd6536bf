/** Incremental framing of RESP2 and RESP3 replies from a backend: finds where each reply ends. */
import { ProtocolError } from "../protocol_error.ts";
import {
  ARRAY,
  ATTRIBUTE,
  BIG_NUMBER,
  BLOB_ERROR,
  BOOLEAN,
  BULK,
  CR,
  describeBytes,
  DOUBLE,
  ERROR,
  findCrlf,
  INTEGER,
  LF,
  MAP,
  MAX_BULK_LENGTH,
  NULL,
  parseInteger,
  PUSH,
  SET,
  SIMPLE,
  VERBATIM,
} from "./bytes.ts";

/** Longest integer or length line accepted from a backend. */
const MAX_LINE = 64 * 1024;
/** Open arrays past which the count stack is dropped after the reply (not kept grown). */
const KEPT_DEPTH = 256;
/** A partial bulk this long or longer makes the framer estimate the reply's whole size. */
const ESTIMATE_FROM = 64 * 1024;

/**
 * Finds reply boundaries without copying. Progress inside a reply (position and the
 * elements still owed at each array level) is kept relative to the reply's start, so a
 * huge reply arriving in many chunks is scanned once.
 *
 * Any nesting depth is framed: a Lua script's self-referencing table comes back from
 * redis-server about 8000 arrays deep, and refusing it would break the backend connection
 * every client shares. The count stack is iterative (no recursion) and holds one number
 * per open array, each of which took at least 4 bytes ("*1\r\n"), so its memory is
 * bounded by the reply's size, not by a depth limit.
 *
 * RESP3 (a connection that said HELLO 3): null, double, boolean, big number, blob error and
 * verbatim string are single values; a map of n pairs owes 2n values, a set or push n; an
 * attribute (`|`, n pairs) owes its 2n values and the value it describes, so attribute and
 * value are one reply (or one element) as a client reads them. A push frame is framed as a
 * reply of its own (a pinned subscription's sink tells it by its first byte). Streamed
 * strings and aggregates (`$?`, `*?`...) are refused: Redis never sends them.
 */
export class RespReplyFramer {
  #pos = 0;
  /** Offset from the current line's start where the CR LF search resumes. */
  #scanned = 1;
  /** Elements still owed by each open array, innermost last. */
  #owed: number[] = [];
  /** The stack grew past KEPT_DEPTH during this reply. */
  #deep = false;
  #needed = 0;

  /**
   * After frame() returned -1 inside a large bulk string: the bytes the reply is expected to
   * need from its start, counting the rest of the array it is in as more strings of the same
   * size (an MGET of similar values); 0 when nothing is known. A backend's read buffer grows
   * to it in one step instead of 4x at a time (each step copied the partial reply and faulted
   * in a fresh buffer). An estimate only: a wrong one costs one more growth.
   */
  get neededBytes(): number {
    return this.#needed;
  }

  /**
   * Returns the size of the complete reply at `buf[start]`, or -1 when more bytes are
   * needed. Throws ProtocolError on malformed replies.
   */
  frame(buf: Uint8Array, start: number, end: number): number {
    const owed = this.#owed;
    for (;;) {
      const at = start + this.#pos;
      if (at >= end) return -1;
      const type = buf[at];
      const lineEnd = findCrlf(buf, at + this.#scanned, end);
      if (lineEnd < 0) {
        // Status, error and big number lines may be long (a script's status_reply or
        // big_number); others may not.
        const limit = type === SIMPLE || type === ERROR || type === BIG_NUMBER
          ? MAX_BULK_LENGTH
          : MAX_LINE;
        if (end - at > limit) throw this.#fail("reply line too long");
        // Resume the CR LF search where it stopped (keeping the CR that may end it).
        this.#scanned = Math.max(1, end - at - 1);
        return -1;
      }
      this.#scanned = 1;
      let next = lineEnd + 2;
      switch (type) {
        case SIMPLE:
        case ERROR:
          break;
        case INTEGER:
          if (!_isInt64Text(buf, at + 1, lineEnd)) throw this.#fail("invalid integer reply");
          break;
        case BULK:
        case VERBATIM:
        case BLOB_ERROR: {
          const length = parseInteger(buf, at + 1, lineEnd);
          if (length === -1 && type === BULK) break;
          if (Number.isNaN(length) || length < 0 || length > MAX_BULK_LENGTH) {
            throw this.#fail(_lengthError(buf, at, "bulk length"));
          }
          if (next + length + 2 > end) {
            this.#needed = length < ESTIMATE_FROM ? 0 : this.#estimate(start, at, next, length);
            return -1;
          }
          if (buf[next + length] !== CR || buf[next + length + 1] !== LF) {
            throw this.#fail("bulk reply is not terminated by CRLF");
          }
          next += length + 2;
          break;
        }
        case ARRAY:
        case MAP:
        case SET:
        case PUSH:
        case ATTRIBUTE: {
          const count = parseInteger(buf, at + 1, lineEnd);
          // No upper bound but the integer's: a reply of 20M list elements is Redis's own,
          // and counting costs one number per open array, not one per element.
          if (Number.isNaN(count) || count < -1 || (count === -1 && type !== ARRAY)) {
            throw this.#fail(_lengthError(buf, at, "array length"));
          }
          // Values owed: a map's pairs, an attribute's pairs and the value it describes.
          const owes = type === ARRAY || type === SET || type === PUSH
            ? count
            : type === MAP
            ? 2 * count
            : 2 * count + 1;
          if (owes > 0) {
            this.#pos = next - start;
            if (owed.push(owes) > KEPT_DEPTH) this.#deep = true;
            continue;
          }
          break;
        }
        case NULL:
          if (lineEnd !== at + 1) throw this.#fail("invalid null reply");
          break;
        case BOOLEAN:
          if (lineEnd !== at + 2 || (buf[at + 1] !== 0x74 && buf[at + 1] !== 0x66)) {
            throw this.#fail("invalid boolean reply");
          }
          break;
        case DOUBLE:
          if (!_isDoubleText(buf, at + 1, lineEnd)) throw this.#fail("invalid double reply");
          break;
        case BIG_NUMBER:
          // Not checked: redis-server writes a script's {big_number = "..."} as it is (CR and
          // LF made spaces), "1.5" or "" alike, and a client takes it; refusing it failed the
          // shared connection.
          break;
        default:
          throw this.#fail(`unexpected reply type '${describeBytes(buf, at, at + 1)}'`);
      }
      this.#pos = next - start;
      // One value is complete: settle the arrays it finishes.
      while (owed.length > 0 && --owed[owed.length - 1] === 0) owed.pop();
      if (owed.length === 0) {
        const size = this.#pos;
        this.#pos = 0;
        this.#needed = 0;
        if (this.#deep) this.#dropStack();
        return size;
      }
    }
  }

  /** The reply's size if the values still owed after the bulk at `at` are as long as it. */
  #estimate(start: number, at: number, body: number, length: number): number {
    const owed = this.#owed;
    const later = owed.length === 0 ? 0 : owed[owed.length - 1] - 1;
    const each = body - at + length + 2;
    return body - start + length + 2 + later * each;
  }

  #fail(message: string): ProtocolError {
    this.#pos = 0;
    this.#needed = 0;
    this.#scanned = 1;
    this.#dropStack();
    return new ProtocolError(message);
  }

  /** A fresh count stack: one deep reply must not keep its grown array for good. */
  #dropStack(): void {
    this.#owed = [];
    this.#deep = false;
  }
}

/** True for a 64-bit signed integer in decimal ("-" then at most 19 digits). */
function _isInt64Text(buf: Uint8Array, start: number, end: number): boolean {
  if (start < end && buf[start] === 0x2d /* "-" */) start++;
  const digits = end - start;
  if (digits < 1 || digits > 19) return false;
  for (let i = start; i < end; i++) if (buf[i] < 0x30 || buf[i] > 0x39) return false;
  return true;
}

/**
 * True for a RESP3 double as Redis writes it: a decimal or exponent form, "inf", "-inf" or
 * "nan" (the characters are checked, not the grammar: the value is forwarded, not read).
 */
function _isDoubleText(buf: Uint8Array, start: number, end: number): boolean {
  if (start >= end) return false;
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    const digit = byte >= 0x30 && byte <= 0x39;
    // + - . e E i n f a
    if (
      !digit && byte !== 0x2b && byte !== 0x2d && byte !== 0x2e && byte !== 0x65 &&
      byte !== 0x45 && byte !== 0x69 && byte !== 0x6e && byte !== 0x66 && byte !== 0x61
    ) return false;
  }
  return true;
}

/** The refusal of a bad length: a streamed RESP3 string or aggregate (`$?`) says so. */
function _lengthError(buf: Uint8Array, at: number, what: string): string {
  return buf[at + 1] === 0x3f /* "?" */
    ? "streamed RESP3 replies are not supported (Redis does not send them)"
    : `invalid ${what} in reply`;
}
