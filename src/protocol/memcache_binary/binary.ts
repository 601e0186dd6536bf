/**
 * memcached binary protocol: request decoding, response framing and local responses.
 *
 * Every packet is a 24-byte header, then extras, key and value (body = all three):
 *
 * | bytes | request            | response           |
 * | ----- | ------------------ | ------------------ |
 * | 0     | magic 0x80         | magic 0x81         |
 * | 1     | opcode             | opcode             |
 * | 2-3   | key length         | key length         |
 * | 4     | extras length      | extras length      |
 * | 5     | data type (0: raw) | data type          |
 * | 6-7   | vbucket id         | status             |
 * | 8-11  | total body length  | total body length  |
 * | 12-15 | opaque (echoed)    | opaque             |
 * | 16-23 | cas                | cas                |
 *
 * All multi-byte fields are big-endian. Limits are checked from the header alone, so the
 * decoder never waits for a body it would refuse (only for the key of a SET too large,
 * whose old value memcached deletes). Error kinds:
 * - Framing lost (ProtocolError; the session closes): a bad magic byte, a body shorter
 *   than its key and extras.
 * - Framing kept (`{ kind: "error" }`: answer with encodeBinaryResponse(), then the body
 *   is discarded as `{ kind: "skip" }` results as it arrives, never buffered): a key over
 *   250 bytes or a malformed packet for its opcode (Invalid arguments; memcached answers
 *   that and closes, which a proxy sharing backend connections must not provoke, so such
 *   packets are never forwarded), a value over `maxValueBytes` (Too large, as memcached),
 *   an unknown opcode (Unknown command, as memcached).
 */
import { ProtocolError } from "../protocol_error.ts";
import { DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LENGTH } from "../bytes.ts";

/** Bytes in a packet header. */
export const BINARY_HEADER_BYTES = 24;
/** Magic byte of a request. */
export const REQUEST_MAGIC = 0x80;
/** Magic byte of a response. */
export const RESPONSE_MAGIC = 0x81;

/** Opcodes of the binary protocol that Aster knows. */
export const BinaryOpcode = {
  get: 0x00,
  set: 0x01,
  add: 0x02,
  replace: 0x03,
  delete: 0x04,
  increment: 0x05,
  decrement: 0x06,
  quit: 0x07,
  flush: 0x08,
  getq: 0x09,
  noop: 0x0a,
  version: 0x0b,
  getk: 0x0c,
  getkq: 0x0d,
  append: 0x0e,
  prepend: 0x0f,
  stat: 0x10,
  setq: 0x11,
  addq: 0x12,
  replaceq: 0x13,
  deleteq: 0x14,
  incrementq: 0x15,
  decrementq: 0x16,
  quitq: 0x17,
  flushq: 0x18,
  appendq: 0x19,
  prependq: 0x1a,
  verbosity: 0x1b,
  touch: 0x1c,
  gat: 0x1d,
  gatq: 0x1e,
  gatk: 0x23,
  gatkq: 0x24,
} as const;

/** Response status codes. */
export const BinaryStatus = {
  ok: 0x0000,
  keyNotFound: 0x0001,
  keyExists: 0x0002,
  valueTooLarge: 0x0003,
  invalidArguments: 0x0004,
  itemNotStored: 0x0005,
  nonNumeric: 0x0006,
  authError: 0x0020,
  unknownCommand: 0x0081,
  outOfMemory: 0x0082,
} as const;

/** A complete packet: header fields and views of its parts. */
export interface BinaryPacket {
  kind: "packet";
  /** 0x80 for a request, 0x81 for a response. */
  magic: number;
  opcode: number;
  dataType: number;
  /** The status of a response; the vbucket id of a request. */
  status: number;
  /** Opaque value, echoed in the response (unsigned 32-bit). */
  opaque: number;
  cas: bigint;
  /** Views into the input buffer. */
  extras: Uint8Array;
  key: Uint8Array;
  value: Uint8Array;
  /** Bytes of the whole packet, header included. */
  size: number;
}

/** A refused request: answer `status` (with `message` as the value) and go on. */
export interface BinaryRequestError {
  kind: "error";
  opcode: number;
  opaque: number;
  status: number;
  /** memcached's text for the status, sent as the response value. */
  message: string;
  /** Bytes consumed: the header (and extras and key with `staleKey`); the rest follows as "skip" results. */
  size: number;
  /**
   * The key of a SET or SETQ too large to store, as a view: memcached deletes its old
   * value while refusing it ("avoid stale data persisting"). Else absent.
   */
  staleKey?: Uint8Array;
}

/** Body bytes of a refused request, discarded as they arrive: consume, answer nothing. */
export interface BinarySkip {
  kind: "skip";
  size: number;
}

/** What one MemcacheBinaryDecoder.decode() call produces. */
export type BinaryDecoded = BinaryPacket | BinaryRequestError | BinarySkip;

/** Options of the binary decoder and response framer. */
export interface MemcacheBinaryOptions {
  /**
   * Largest value (body minus key and extras) accepted.
   * @default 1048576
   */
  maxValueBytes?: number;
}

const KEY_NONE = 0;
const KEY_REQUIRED = 1;
const KEY_OPTIONAL = 2;

/** What memcached accepts for an opcode: extras lengths, key presence, a value or not. */
interface _Shape {
  extras: number[];
  key: number;
  value: boolean;
}

const _shapes = new Map<number, _Shape>();
function _shape(opcodes: number[], shape: _Shape): void {
  for (const opcode of opcodes) _shapes.set(opcode, shape);
}
const op = BinaryOpcode;
_shape([op.get, op.getq, op.getk, op.getkq], { extras: [0], key: KEY_REQUIRED, value: false });
_shape([op.set, op.setq, op.add, op.addq, op.replace, op.replaceq], {
  extras: [8],
  key: KEY_REQUIRED,
  value: true,
});
_shape([op.append, op.appendq, op.prepend, op.prependq], {
  extras: [0],
  key: KEY_REQUIRED,
  value: true,
});
_shape([op.delete, op.deleteq], { extras: [0], key: KEY_REQUIRED, value: false });
_shape([op.increment, op.incrementq, op.decrement, op.decrementq], {
  extras: [20],
  key: KEY_REQUIRED,
  value: false,
});
_shape([op.quit, op.quitq, op.noop, op.version], { extras: [0], key: KEY_NONE, value: false });
_shape([op.flush, op.flushq], { extras: [0, 4], key: KEY_NONE, value: false });
_shape([op.stat], { extras: [0], key: KEY_OPTIONAL, value: false });
// No verbosity: memcached 1.6 has no binary VERBOSITY and answers it Unknown command.
_shape([op.touch, op.gat, op.gatq, op.gatk, op.gatkq], {
  extras: [4],
  key: KEY_REQUIRED,
  value: false,
});

/** Quiet opcode -> its normal counterpart. */
const _loud = new Map<number, number>([
  [op.getq, op.get],
  [op.getkq, op.getk],
  [op.setq, op.set],
  [op.addq, op.add],
  [op.replaceq, op.replace],
  [op.deleteq, op.delete],
  [op.incrementq, op.increment],
  [op.decrementq, op.decrement],
  [op.quitq, op.quit],
  [op.flushq, op.flush],
  [op.appendq, op.append],
  [op.prependq, op.prepend],
  [op.gatq, op.gat],
  [op.gatkq, op.gatk],
]);

const _QUIET_MISS = new Set<number>([op.getq, op.getkq, op.gatq, op.gatkq]);

/**
 * Frames client requests. Stateless but for the body of a refused request still to be
 * discarded; all offsets are recomputed from the header, so the caller may move the
 * unconsumed bytes between calls.
 */
export class MemcacheBinaryDecoder {
  #maxValueBytes: number;
  /** Body bytes of a refused request still to discard. */
  #skip = 0;

  constructor(opts: MemcacheBinaryOptions = {}) {
    this.#maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  }

  /**
   * Decodes one request at `buf[start]`: a packet, a refused request to answer, a run of
   * discarded body bytes, or null when more bytes are needed. Throws ProtocolError when
   * the framing of the stream is lost.
   */
  decode(buf: Uint8Array, start: number, end: number): BinaryDecoded | null {
    if (this.#skip > 0) {
      const size = Math.min(this.#skip, end - start);
      if (size <= 0) return null;
      this.#skip -= size;
      return { kind: "skip", size };
    }
    if (start >= end) return null;
    if (buf[start] !== REQUEST_MAGIC) throw new ProtocolError("bad request magic");
    if (end - start < BINARY_HEADER_BYTES) return null;
    const opcode = buf[start + 1];
    const keyLength = _u16(buf, start + 2);
    const extrasLength = buf[start + 4];
    const body = _u32(buf, start + 8);
    if (body < keyLength + extrasLength) throw new ProtocolError("bad body length");
    const valueLength = body - keyLength - extrasLength;
    let status: number = BinaryStatus.ok;
    let message = "";
    const shape = _shapes.get(opcode);
    // memcached's order: the key's length, the opcode, the packet's shape, then the value's
    // size (only a well-formed store gets as far as allocating it).
    if (keyLength > MAX_KEY_LENGTH) {
      status = BinaryStatus.invalidArguments;
      message = "Invalid arguments";
    } else if (shape === undefined) {
      status = BinaryStatus.unknownCommand;
      message = "Unknown command";
    } else if (
      !shape.extras.includes(extrasLength) || (valueLength > 0 && !shape.value) ||
      (keyLength === 0 && shape.key === KEY_REQUIRED) || (keyLength > 0 && shape.key === KEY_NONE)
    ) {
      status = BinaryStatus.invalidArguments;
      message = "Invalid arguments";
    } else if (valueLength > this.#maxValueBytes) {
      status = BinaryStatus.valueTooLarge;
      message = "Too large.";
    }
    if (status !== BinaryStatus.ok) {
      const opaque = _u32(buf, start + 12);
      if (
        // Only a SET memcached would read (its 8 bytes of extras): it refuses others unread.
        status === BinaryStatus.valueTooLarge && keyLength > 0 && extrasLength === 8 &&
        (opcode === BinaryOpcode.set || opcode === BinaryOpcode.setq)
      ) {
        // Wait for the key (at most 250 bytes after the header and extras), not the value.
        const keyStart = start + BINARY_HEADER_BYTES + extrasLength;
        if (end < keyStart + keyLength) return null;
        this.#skip = valueLength;
        const staleKey = buf.subarray(keyStart, keyStart + keyLength);
        const size = BINARY_HEADER_BYTES + extrasLength + keyLength;
        return { kind: "error", opcode, opaque, status, message, size, staleKey };
      }
      this.#skip = body;
      return { kind: "error", opcode, opaque, status, message, size: BINARY_HEADER_BYTES };
    }
    if (end - start < BINARY_HEADER_BYTES + body) return null;
    return _packet(buf, start);
  }

  /** Body bytes of the current refused request still to be discarded. */
  get pendingSkip(): number {
    return this.#skip;
  }
}

/** Finds response boundaries from a backend (stateless: the header gives the size). */
export class MemcacheBinaryResponseFramer {
  #maxValueBytes: number;

  constructor(opts: MemcacheBinaryOptions = {}) {
    this.#maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  }

  /**
   * Returns the size of the complete response at `buf[start]`, or -1 when more bytes are
   * needed. Throws ProtocolError on a bad magic byte or body length.
   */
  frame(buf: Uint8Array, start: number, end: number): number {
    if (start >= end) return -1;
    if (buf[start] !== RESPONSE_MAGIC) throw new ProtocolError("bad response magic");
    if (end - start < BINARY_HEADER_BYTES) return -1;
    const keyAndExtras = _u16(buf, start + 2) + buf[start + 4];
    const body = _u32(buf, start + 8);
    if (body < keyAndExtras || body - keyAndExtras > this.#maxValueBytes) {
      throw new ProtocolError("bad response body length");
    }
    const size = BINARY_HEADER_BYTES + body;
    return end - start < size ? -1 : size;
  }
}

/** Views a complete packet (request or response), such as one MemcacheBinaryResponseFramer framed. */
export function decodeBinaryPacket(bytes: Uint8Array): BinaryPacket {
  if (bytes.length < BINARY_HEADER_BYTES) throw new ProtocolError("truncated packet");
  const body = _u32(bytes, 8);
  if (bytes.length < BINARY_HEADER_BYTES + body || body < _u16(bytes, 2) + bytes[4]) {
    throw new ProtocolError("bad body length");
  }
  return _packet(bytes, 0);
}

/** True for the quiet opcodes (getq, setq ... gatkq): success (or a get miss) is not answered. */
export function isQuiet(opcode: number): boolean {
  return _loud.has(opcode);
}

/** The non-quiet counterpart of a quiet opcode (getkq -> getk), or `opcode` itself. */
export function loudOpcode(opcode: number): number {
  return _loud.get(opcode) ?? opcode;
}

/**
 * True when memcached would not have sent this response to a quiet request with
 * `opcode`: a miss for getq/getkq/gatq/gatkq, a success for the other quiet opcodes.
 * Lets a proxy forward quiet requests with loudOpcode() and drop such responses itself.
 */
export function isSuppressedByQuietBinary(opcode: number, status: number): boolean {
  if (!_loud.has(opcode)) return false;
  if (_QUIET_MISS.has(opcode)) return status === BinaryStatus.keyNotFound;
  return status === BinaryStatus.ok;
}

/** Fields of a locally generated response. */
export interface BinaryResponseInit {
  opcode: number;
  status: number;
  /** The request's opaque, echoed. */
  opaque: number;
  /** @default 0n */
  cas?: bigint;
  key?: Uint8Array;
  extras?: Uint8Array;
  value?: Uint8Array;
}

/** Encodes a response packet (local answers: errors, version, noop, refusals). */
export function encodeBinaryResponse(init: BinaryResponseInit): Uint8Array {
  return _encodePacket(RESPONSE_MAGIC, init);
}

/** Encodes a request packet (the proxy's own requests: health pings, tests); status is the vbucket. */
export function encodeBinaryRequest(
  init: Partial<BinaryResponseInit> & { opcode: number },
): Uint8Array {
  return _encodePacket(REQUEST_MAGIC, { status: 0, opaque: 0, ...init });
}

function _encodePacket(magic: number, init: BinaryResponseInit): Uint8Array {
  const key = init.key ?? _EMPTY;
  const extras = init.extras ?? _EMPTY;
  const value = init.value ?? _EMPTY;
  if (key.length > 0xffff || extras.length > 0xff) throw new RangeError("key or extras too long");
  const body = extras.length + key.length + value.length;
  const out = new Uint8Array(BINARY_HEADER_BYTES + body);
  out[0] = magic;
  out[1] = init.opcode;
  _put16(out, 2, key.length);
  out[4] = extras.length;
  out[5] = 0; // raw bytes
  _put16(out, 6, init.status);
  _put32(out, 8, body);
  _put32(out, 12, init.opaque);
  const cas = init.cas ?? 0n;
  _put32(out, 16, Number((cas >> 32n) & 0xffffffffn));
  _put32(out, 20, Number(cas & 0xffffffffn));
  out.set(extras, BINARY_HEADER_BYTES);
  out.set(key, BINARY_HEADER_BYTES + extras.length);
  out.set(value, BINARY_HEADER_BYTES + extras.length + key.length);
  return out;
}

const _EMPTY = new Uint8Array(0);

/** Views the packet at `buf[start]`, whose header and body are known to be complete. */
function _packet(buf: Uint8Array, start: number): BinaryPacket {
  const keyLength = _u16(buf, start + 2);
  const extrasLength = buf[start + 4];
  const body = _u32(buf, start + 8);
  const extrasStart = start + BINARY_HEADER_BYTES;
  const keyStart = extrasStart + extrasLength;
  const valueStart = keyStart + keyLength;
  const end = extrasStart + body;
  const casHigh = _u32(buf, start + 16);
  const casLow = _u32(buf, start + 20);
  return {
    kind: "packet",
    magic: buf[start],
    opcode: buf[start + 1],
    dataType: buf[start + 5],
    status: _u16(buf, start + 6),
    opaque: _u32(buf, start + 12),
    cas: casHigh === 0 && casLow === 0 ? 0n : (BigInt(casHigh) << 32n) | BigInt(casLow),
    extras: buf.subarray(extrasStart, keyStart),
    key: buf.subarray(keyStart, valueStart),
    value: buf.subarray(valueStart, end),
    size: end - start,
  };
}

function _u16(buf: Uint8Array, at: number): number {
  return (buf[at] << 8) | buf[at + 1];
}

function _u32(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

function _put16(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 8;
  buf[at + 1] = value & 0xff;
}

function _put32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}
