/** Byte constants and small helpers shared by the RESP codecs. */

export const CR = 0x0d; // "\r"
export const LF = 0x0a; // "\n"
export const ARRAY = 0x2a; // "*"
export const BULK = 0x24; // "$"
export const SIMPLE = 0x2b; // "+"
export const ERROR = 0x2d; // "-"
export const INTEGER = 0x3a; // ":"
// RESP3's types (a client or backend connection after HELLO 3).
export const NULL = 0x5f; // "_"
export const DOUBLE = 0x2c; // ","
export const BOOLEAN = 0x23; // "#"
export const BLOB_ERROR = 0x21; // "!"
export const VERBATIM = 0x3d; // "="
export const BIG_NUMBER = 0x28; // "("
export const MAP = 0x25; // "%"
export const SET = 0x7e; // "~"
export const ATTRIBUTE = 0x7c; // "|"
export const PUSH = 0x3e; // ">"
export const MINUS = 0x2d; // "-"
export const SPACE = 0x20; // " "
export const TAB = 0x09; // "\t"
export const DQUOTE = 0x22; // '"'
export const SQUOTE = 0x27; // "'"
export const BACKSLASH = 0x5c; // "\\"

/** Largest bulk string Redis accepts (proto-max-bulk-len): 512 MB. */
export const MAX_BULK_LENGTH = 512 * 1024 * 1024;
/** Most arguments Redis 7 accepts in one multibulk request (INT_MAX): past it "invalid multibulk length". */
export const MAX_ARGUMENTS = 2 ** 31 - 1;
/**
 * Most arguments Aster takes in one request (Redis 6.2's limit): each costs the decoder about
 * 140 bytes of heap beside its bytes, so 40 million empty ones (240 MB on the wire) would end
 * the worker's isolate; past it the client gets a protocol error.
 */
export const MAX_ASTER_ARGUMENTS = 1024 * 1024;
/**
 * Largest request Aster buffers (a whole request is read before it is sent): past it the
 * client gets a protocol error and is closed. Redis's 1 GB query buffer limit does not count
 * big arguments, so redis-server itself takes larger requests.
 */
export const MAX_REQUEST_BYTES = 1024 * 1024 * 1024;
/** Most arguments, and longest argument, of a request before AUTH where a password is set. */
export const MAX_UNAUTHENTICATED_ARGUMENTS = 10;
export const MAX_UNAUTHENTICATED_BULK_LENGTH = 16 * 1024;
/** Longest inline request or header line Redis accepts (PROTO_INLINE_MAX_SIZE). */
export const MAX_INLINE_LENGTH = 64 * 1024;

/** Finds the index of the next "\r\n" at or after `from`, or -1 when not in `buf[from, end)`. */
export function findCrlf(buf: Uint8Array, from: number, end: number): number {
  // A plain loop: indexOf would run past `end` into stale bytes of a large buffer.
  for (let i = from + 1; i < end; i++) {
    if (buf[i] === LF && buf[i - 1] === CR) return i - 1;
  }
  return -1;
}

/**
 * Parses a decimal integer in `buf[start, end)` (an optional leading "-").
 * Returns NaN when the bytes are not a canonical integer or exceed the safe range.
 */
export function parseInteger(buf: Uint8Array, start: number, end: number): number {
  if (start >= end) return NaN;
  let i = start;
  let negative = false;
  if (buf[i] === MINUS) {
    negative = true;
    i++;
    if (i === end) return NaN;
  }
  if (end - i > 15) return NaN; // beyond what fits safely; no length we accept needs it
  // Canonical form only, as Redis's string2ll: no leading zeros, no "-0".
  if (buf[i] === 0x30 && (end - i > 1 || negative)) return NaN;
  let value = 0;
  for (; i < end; i++) {
    const digit = buf[i] - 0x30;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

const latin1 = new TextDecoder("latin1");

/** Shows a short prefix of untrusted bytes in an error message, printable characters only. */
export function describeBytes(buf: Uint8Array, start: number, end: number, max = 32): string {
  const slice = buf.subarray(start, Math.min(end, start + max));
  return latin1.decode(slice).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * Redis's string2ll/getLongLongFromObject for an argument: an optional "-", no "+", no
 * leading zeros, within 64 bits. Returns null where Redis says "value is not an integer or
 * out of range". (A bigint: slot numbers past 2^53 must still be "Invalid slot", not NaN.)
 */
export function parseLongLong(buf: Uint8Array): bigint | null {
  const text = latin1.decode(buf);
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(text)) return null;
  const value = BigInt(text);
  return value > 9223372036854775807n || value < -9223372036854775808n ? null : value;
}
