/** Decodes one complete RESP reply into a value (merges of split commands, tools, tests). */
import { ProtocolError } from "../protocol_error.ts";
import {
  ARRAY,
  ATTRIBUTE,
  BIG_NUMBER,
  BLOB_ERROR,
  BOOLEAN,
  BULK,
  DOUBLE,
  ERROR,
  findCrlf,
  INTEGER,
  MAP,
  NULL,
  parseInteger,
  PUSH,
  SET,
  SIMPLE,
  VERBATIM,
} from "./bytes.ts";

/** An error reply's text, kept apart from status strings. */
export class RespErrorReply {
  constructor(readonly message: string) {}
}

/**
 * A decoded reply: status text, error, integer, bulk bytes, null, or an array. RESP3 adds:
 * a double (a number), a boolean, a big number (a bigint; its text when not an integer, as a
 * script's may be), a verbatim string (its bytes, "txt:" included), a blob error (an error);
 * maps, sets and pushes decode as arrays (a map as its keys and values in turn) and an
 * attribute is skipped (its value is the reply's).
 */
export type RespValue =
  | string
  | RespErrorReply
  | number
  | boolean
  | bigint
  | Uint8Array
  | null
  | RespValue[];

const decoder = new TextDecoder();

/**
 * Decodes the complete reply in `buf` (as framed by RespReplyFramer) and its byte size.
 * Iterative, like the framer: a reply thousands of arrays deep must not overflow the stack.
 */
export function decodeReplyValue(
  buf: Uint8Array,
  start = 0,
): { value: RespValue; size: number } {
  // Open arrays, innermost last: the items so far and how many the array announced (an
  // attribute's: its pairs then the value, of which only the value is kept).
  const open: { items: RespValue[]; count: number; attribute: boolean }[] = [];
  let at = start;
  for (;;) {
    const lineEnd = findCrlf(buf, at + 1, buf.length);
    if (lineEnd < 0) throw new ProtocolError("incomplete reply");
    let next = lineEnd + 2;
    let value: RespValue;
    switch (buf[at]) {
      case SIMPLE:
        value = decoder.decode(buf.subarray(at + 1, lineEnd));
        break;
      case ERROR:
        value = new RespErrorReply(decoder.decode(buf.subarray(at + 1, lineEnd)));
        break;
      case INTEGER:
        value = parseInteger(buf, at + 1, lineEnd);
        break;
      case BULK:
      case VERBATIM: {
        const length = parseInteger(buf, at + 1, lineEnd);
        if (length < 0) value = null;
        else {
          value = buf.subarray(next, next + length);
          next += length + 2;
        }
        break;
      }
      case BLOB_ERROR: {
        const length = parseInteger(buf, at + 1, lineEnd);
        value = new RespErrorReply(decoder.decode(buf.subarray(next, next + length)));
        next += length + 2;
        break;
      }
      case NULL:
        value = null;
        break;
      case BOOLEAN:
        value = buf[at + 1] === 0x74 /* "t" */;
        break;
      case DOUBLE:
        value = _double(decoder.decode(buf.subarray(at + 1, lineEnd)));
        break;
      case BIG_NUMBER: {
        // A script's big_number may be any text: not an integer, it stays text.
        const digits = decoder.decode(buf.subarray(at + 1, lineEnd));
        value = /^-?[0-9]+$/.test(digits) ? BigInt(digits) : digits;
        break;
      }
      case ARRAY:
      case MAP:
      case SET:
      case PUSH:
      case ATTRIBUTE: {
        const type = buf[at];
        const header = parseInteger(buf, at + 1, lineEnd);
        const count = type === MAP ? 2 * header : type === ATTRIBUTE ? 2 * header + 1 : header;
        if (count > 0) {
          open.push({ items: [], count, attribute: type === ATTRIBUTE });
          at = next;
          continue;
        }
        value = count < 0 ? null : [];
        break;
      }
      default:
        throw new ProtocolError("unexpected reply type");
    }
    at = next;
    // Settle the arrays this value completes.
    for (;;) {
      const top = open[open.length - 1];
      if (top === undefined) return { value, size: at - start };
      top.items.push(value);
      if (top.items.length < top.count) break;
      open.pop();
      value = top.attribute ? top.items[top.items.length - 1] : top.items;
    }
  }
}

/** A RESP3 double's text as a number ("inf", "-inf", "nan" included). */
function _double(text: string): number {
  if (text === "inf") return Infinity;
  if (text === "-inf") return -Infinity;
  return text === "nan" ? NaN : Number(text);
}

/** Splits a complete array reply into the raw encoded bytes of its elements (views). */
export function arrayElementSlices(reply: Uint8Array): Uint8Array[] | null {
  const bounds: number[] = [];
  const count = arrayElementBounds(reply, bounds);
  if (count < 0) return null;
  const slices = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) slices[i] = reply.subarray(bounds[2 * i], bounds[2 * i + 1]);
  return slices;
}

/**
 * Writes the [start, end) offsets of each element of a complete array reply into `bounds`
 * from index 0, over what it held (no views made and, once `bounds` is long enough, no
 * allocation: merges are hot); returns the element count, or -1 when not an array.
 * `bounds` is never shortened: only its first 2 * count entries are this reply's.
 */
export function arrayElementBounds(reply: Uint8Array, bounds: number[]): number {
  if (reply[0] !== ARRAY) return -1;
  const lineEnd = findCrlf(reply, 1, reply.length);
  const count = parseInteger(reply, 1, lineEnd);
  if (!(count >= 0)) return -1;
  let at = lineEnd + 2;
  for (let i = 0; i < count; i++) {
    const size = _replySize(reply, at);
    bounds[2 * i] = at;
    bounds[2 * i + 1] = at + size;
    at += size;
  }
  return count;
}

/**
 * Bytes of the complete reply at `at`, measured without decoding it (merges are hot).
 * Counts the values still owed instead of recursing, so any nesting depth is measured.
 */
function _replySize(buf: Uint8Array, at: number): number {
  let end = at;
  let owed = 1;
  while (owed > 0) {
    const lineEnd = findCrlf(buf, end + 1, buf.length);
    if (lineEnd < 0) throw new ProtocolError("incomplete reply");
    const type = buf[end];
    owed--;
    if (type === BULK || type === VERBATIM || type === BLOB_ERROR) {
      const length = parseInteger(buf, end + 1, lineEnd);
      end = length < 0 ? lineEnd + 2 : lineEnd + 4 + length;
    } else {
      if (type === ARRAY || type === SET || type === PUSH) {
        const count = parseInteger(buf, end + 1, lineEnd);
        if (count > 0) owed += count;
      } else if (type === MAP || type === ATTRIBUTE) {
        const count = parseInteger(buf, end + 1, lineEnd);
        // An attribute's pairs, then the value it describes (that one is the element).
        owed += 2 * count + (type === ATTRIBUTE ? 1 : 0);
      }
      end = lineEnd + 2;
    }
  }
  return end - at;
}
