/** RESP encoding of replies and commands. */

import { ARRAY, BULK, CR, INTEGER, LF, MAP, MINUS, VERBATIM } from "./bytes.ts";
const encoder = new TextEncoder();

/** Pre-encoded replies sent often. */
export const OK_REPLY: Uint8Array = encoder.encode("+OK\r\n");
export const PONG_REPLY: Uint8Array = encoder.encode("+PONG\r\n");
export const NULL_BULK_REPLY: Uint8Array = encoder.encode("$-1\r\n");
/** RESP3's null (what redis-server sends a HELLO 3 client for every nil). */
export const NULL_REPLY: Uint8Array = encoder.encode("_\r\n");

/** Encodes a simple string reply: `+text`. The text must not contain CR or LF. */
export function encodeSimple(text: string): Uint8Array {
  return encoder.encode(`+${text}\r\n`);
}

/** Encodes an error reply; CR and LF in the message become spaces so framing holds. */
export function encodeError(message: string): Uint8Array {
  return encoder.encode(`-${message.replace(/[\r\n]+/g, " ")}\r\n`);
}

/**
 * Encodes an error raised by the proxy: a message that starts with its own Redis error
 * code (CLUSTERDOWN, CROSSSLOT, ERR...) keeps it, any other gets the generic "ERR".
 */
export function encodeProxyError(message: string): Uint8Array {
  return encodeError(/^[A-Z]+ /.test(message) ? message : `ERR ${message}`);
}

/** Encodes an integer reply (built byte by byte: TextEncoder is an op call in Deno). */
export function encodeInteger(value: number): Uint8Array {
  if (!Number.isSafeInteger(value)) return encoder.encode(`:${value}\r\n`);
  if (value >= 0) {
    const out = new Uint8Array(headerSize(value));
    writeHeader(out, 0, INTEGER, value);
    return out;
  }
  // ":-" then the magnitude: the header writer puts "-" where a type byte would go.
  const out = new Uint8Array(1 + headerSize(-value));
  out[0] = INTEGER;
  writeHeader(out, 1, MINUS, -value);
  return out;
}

/** Encodes a bulk string reply from bytes or text. */
export function encodeBulk(value: Uint8Array | string): Uint8Array {
  const body = typeof value === "string" ? encoder.encode(value) : value;
  const out = new Uint8Array(bulkSize(body));
  writeBulk(out, 0, body);
  return out;
}

/** Encodes an array reply from already-encoded elements. */
export function encodeArray(elements: readonly Uint8Array[]): Uint8Array {
  let size = headerSize(elements.length);
  for (const element of elements) size += element.length;
  const out = new Uint8Array(size);
  let at = writeHeader(out, 0, ARRAY, elements.length);
  for (const element of elements) {
    out.set(element, at);
    at += element.length;
  }
  return out;
}

/**
 * Encodes a map from its keys and values in turn (already encoded): `%n` for a RESP3
 * client, the flat array `*2n` that redis-server sends a RESP2 client.
 */
export function encodeMap(keysAndValues: readonly Uint8Array[], resp3: boolean): Uint8Array {
  if (!resp3) return encodeArray(keysAndValues);
  const pairs = keysAndValues.length / 2;
  let size = headerSize(pairs);
  for (const element of keysAndValues) size += element.length;
  const out = new Uint8Array(size);
  let at = writeHeader(out, 0, MAP, pairs);
  for (const element of keysAndValues) {
    out.set(element, at);
    at += element.length;
  }
  return out;
}

/**
 * A local reply as a RESP3 client gets it from redis-server: a nil bulk becomes `_`, and
 * with `text` (INFO, CLIENT LIST and INFO, CLUSTER NODES and INFO) a bulk string becomes a
 * verbatim string of format "txt". Other replies are returned as they are.
 */
export function resp3Reply(reply: Uint8Array, text = false): Uint8Array {
  if (reply[0] !== BULK) return reply;
  if (reply[1] === MINUS) return NULL_REPLY;
  if (!text) return reply;
  let at = 1;
  let length = 0;
  while (reply[at] !== CR) length = length * 10 + (reply[at++] - 0x30);
  const body = reply.subarray(at + 2, at + 2 + length);
  const out = new Uint8Array(headerSize(length + 4) + length + 4 + 2);
  let w = writeHeader(out, 0, VERBATIM, length + 4);
  out.set(TXT, w);
  out.set(body, w + 4);
  w += 4 + length;
  out[w] = CR;
  out[w + 1] = LF;
  return out;
}

const TXT = encoder.encode("txt:");

/** Bytes of a type-length header (`*10\r\n`) for a non-negative length. */
export function headerSize(length: number): number {
  return 3 + _digits(length);
}

/** Writes a type-length header (`$5\r\n`) at `at`; returns the index after it. */
export function writeHeader(out: Uint8Array, at: number, type: number, length: number): number {
  out[at++] = type;
  const digits = _digits(length);
  for (let i = digits - 1; i >= 0; i--) {
    out[at + i] = 0x30 + (length % 10);
    length = Math.floor(length / 10);
  }
  at += digits;
  out[at++] = CR;
  out[at++] = LF;
  return at;
}

/** Bytes of `bytes` encoded as a bulk string (`$3\r\nabc\r\n`). */
export function bulkSize(bytes: Uint8Array): number {
  return headerSize(bytes.length) + bytes.length + 2;
}

/** Values up to this size are copied byte by byte: cheaper than `set` for a few bytes. */
export const SHORT_COPY = 64;

/** Writes `bytes` as a bulk string at `at`; returns the index after it. */
export function writeBulk(out: Uint8Array, at: number, bytes: Uint8Array): number {
  at = writeHeader(out, at, BULK, bytes.length);
  if (bytes.length > SHORT_COPY) {
    out.set(bytes, at);
    at += bytes.length;
  } else {
    for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  }
  out[at++] = CR;
  out[at++] = LF;
  return at;
}

/** Size of the decimal digits of a non-negative integer. */
function _digits(value: number): number {
  let digits = 1;
  while (value >= 10) {
    value = Math.floor(value / 10);
    digits++;
  }
  return digits;
}

/** Encodes a command as a RESP multibulk request (what backends accept). */
export function encodeCommand(argv: readonly Uint8Array[]): Uint8Array {
  let size = headerSize(argv.length);
  for (const arg of argv) size += bulkSize(arg);
  const out = new Uint8Array(size);
  let at = writeHeader(out, 0, ARRAY, argv.length);
  for (const arg of argv) at = writeBulk(out, at, arg);
  return out;
}

/** Encodes a command given as text arguments (pings, tests, tools). */
export function encodeCommandText(...args: string[]): Uint8Array {
  return encodeCommand(args.map((arg) => encoder.encode(arg)));
}
