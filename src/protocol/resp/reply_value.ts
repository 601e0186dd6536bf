/** Decodes one complete RESP reply into a value (merges of split commands, tools, tests). */
import { ProtocolError } from "../protocol_error.ts";
import { ARRAY, BULK, ERROR, findCrlf, INTEGER, parseInteger, SIMPLE } from "./bytes.ts";

/** An error reply's text, kept apart from status strings. */
export class RespErrorReply {
  constructor(readonly message: string) {}
}

/** A decoded reply: status text, error, integer, bulk bytes, null, or an array. */
export type RespValue = string | RespErrorReply | number | Uint8Array | null | RespValue[];

const decoder = new TextDecoder();

/** Decodes the complete reply in `buf` (as framed by RespReplyFramer) and its byte size. */
export function decodeReplyValue(
  buf: Uint8Array,
  start = 0,
): { value: RespValue; size: number } {
  const lineEnd = findCrlf(buf, start + 1, buf.length);
  if (lineEnd < 0) throw new ProtocolError("incomplete reply");
  const next = lineEnd + 2;
  switch (buf[start]) {
    case SIMPLE:
      return { value: decoder.decode(buf.subarray(start + 1, lineEnd)), size: next - start };
    case ERROR:
      return {
        value: new RespErrorReply(decoder.decode(buf.subarray(start + 1, lineEnd))),
        size: next - start,
      };
    case INTEGER:
      return { value: parseInteger(buf, start + 1, lineEnd), size: next - start };
    case BULK: {
      const length = parseInteger(buf, start + 1, lineEnd);
      if (length < 0) return { value: null, size: next - start };
      return { value: buf.subarray(next, next + length), size: next + length + 2 - start };
    }
    case ARRAY: {
      const count = parseInteger(buf, start + 1, lineEnd);
      if (count < 0) return { value: null, size: next - start };
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = decodeReplyValue(buf, at);
        items.push(item.value);
        at += item.size;
      }
      return { value: items, size: at - start };
    }
    default:
      throw new ProtocolError("unexpected reply type");
  }
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

/** Bytes of the complete reply at `at`, measured without decoding it (merges are hot). */
function _replySize(buf: Uint8Array, at: number): number {
  const lineEnd = findCrlf(buf, at + 1, buf.length);
  if (lineEnd < 0) throw new ProtocolError("incomplete reply");
  const next = lineEnd + 2;
  switch (buf[at]) {
    case BULK: {
      const length = parseInteger(buf, at + 1, lineEnd);
      return length < 0 ? next - at : next + length + 2 - at;
    }
    case ARRAY: {
      const count = parseInteger(buf, at + 1, lineEnd);
      let end = next;
      for (let i = 0; i < count; i++) end += _replySize(buf, end);
      return end - at;
    }
    default:
      return next - at;
  }
}
