/** Byte constants, limits and small scanners shared by the memcached codecs. */

export const CR = 0x0d; // "\r"
export const LF = 0x0a; // "\n"
export const SPACE = 0x20; // " "
export const PLUS = 0x2b; // "+"
export const MINUS = 0x2d; // "-"
export const DIGIT_0 = 0x30; // "0"

/** Longest key memcached accepts (KEY_MAX_LENGTH), text and binary alike. */
export const MAX_KEY_LENGTH = 250;
/** Default largest value accepted: memcached's default item size limit (`-I 1m`). */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** Largest `<bytes>` memcached parses at all (INT_MAX - 2); beyond it the header is refused. */
export const MAX_DATA_LENGTH = 2147483647 - 2;

const UINT64_MAX_DIGITS = [..."18446744073709551615"].map((c) => c.charCodeAt(0));
const INT64_MAX_DIGITS = [..."9223372036854775807"].map((c) => c.charCodeAt(0));
const INT64_MIN_DIGITS = [..."9223372036854775808"].map((c) => c.charCodeAt(0));

/** Encodes an ASCII string (protocol words, never keys or values) as bytes. */
export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** The bytes of `parts`, one after the other, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Index of the next "\n" in `buf[from, end)`, or -1. */
export function findLf(buf: Uint8Array, from: number, end: number): number {
  // A plain loop: indexOf would run past `end` into stale bytes of a large buffer.
  for (let i = from; i < end; i++) {
    if (buf[i] === LF) return i;
  }
  return -1;
}

/** True when `buf[from, to)` holds exactly the bytes of `word`. */
export function bytesAre(buf: Uint8Array, from: number, to: number, word: Uint8Array): boolean {
  if (to - from !== word.length) return false;
  for (let i = 0; i < word.length; i++) {
    if (buf[from + i] !== word[i]) return false;
  }
  return true;
}

/** True when `buf[from, ...)` starts with the bytes of `word` within `end`. */
export function startsWith(buf: Uint8Array, from: number, end: number, word: Uint8Array): boolean {
  if (end - from < word.length) return false;
  for (let i = 0; i < word.length; i++) {
    if (buf[from + i] !== word[i]) return false;
  }
  return true;
}

/**
 * True for a key memcached 1.6 accepts: 1..250 bytes. Any other byte is allowed (control
 * bytes, DEL, 8-bit, a "\r" not before the "\n"): a token never holds a space or "\n",
 * and tokenize() ends the line at a NUL, as memcached reads it as a C string.
 */
export function isValidKey(_buf: Uint8Array, from: number, to: number): boolean {
  const length = to - from;
  return length > 0 && length <= MAX_KEY_LENGTH;
}

/**
 * Parses a data length (`<bytes>` / `<datalen>`): optional "+", decimal digits, at most
 * MAX_DATA_LENGTH, as memcached's safe_strtol plus its range check. Returns -1 otherwise.
 */
export function parseLength(buf: Uint8Array, from: number, to: number): number {
  let i = from;
  if (i < to && buf[i] === PLUS) i++;
  if (i >= to) return -1;
  let value = 0;
  for (; i < to; i++) {
    const digit = buf[i] - DIGIT_0;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
    if (value > MAX_DATA_LENGTH) return -1;
  }
  return value;
}

/** True for an unsigned 64-bit decimal (optional "+"), the range of strtoull. */
export function isUint64(buf: Uint8Array, from: number, to: number): boolean {
  let i = from;
  if (i < to && buf[i] === PLUS) i++;
  return _digitsWithin(buf, i, to, UINT64_MAX_DIGITS);
}

/** True for a signed 64-bit decimal (optional sign), the range of strtol on 64-bit hosts. */
export function isInt64(buf: Uint8Array, from: number, to: number): boolean {
  let i = from;
  let limit = INT64_MAX_DIGITS;
  if (i < to && buf[i] === PLUS) i++;
  else if (i < to && buf[i] === MINUS) {
    i++;
    limit = INT64_MIN_DIGITS;
  }
  return _digitsWithin(buf, i, to, limit);
}

/** True when `buf[from, to)` is a non-empty run of digits whose value is at most `max`. */
function _digitsWithin(buf: Uint8Array, from: number, to: number, max: number[]): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const byte = buf[i];
    if (byte < DIGIT_0 || byte > DIGIT_0 + 9) return false;
  }
  let i = from;
  while (i < to - 1 && buf[i] === DIGIT_0) i++; // leading zeros do not count
  const length = to - i;
  if (length !== max.length) return length < max.length;
  for (let k = 0; k < length; k++) {
    if (buf[i + k] !== max[k]) return buf[i + k] < max[k];
  }
  return true;
}

/**
 * Splits `buf[from, to)` on spaces into `out` as [start, end) pairs. A NUL ends the line:
 * memcached tokenizes its command line as a C string, so "get a\0b" is "get a" there.
 */
export function tokenize(buf: Uint8Array, from: number, to: number, out: number[]): number[] {
  out.length = 0;
  let i = from;
  while (i < to) {
    while (i < to && buf[i] === SPACE) i++;
    if (i >= to || buf[i] === 0) break;
    const tokenStart = i;
    while (i < to && buf[i] !== SPACE && buf[i] !== 0) i++;
    out.push(tokenStart, i);
    if (i < to && buf[i] === 0) break;
  }
  return out;
}
