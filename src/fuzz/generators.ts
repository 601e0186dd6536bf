/**
 * Seeded input generators for the decoder fuzzer (pure: no Deno.*, no timers).
 *
 * Each target gets valid frames built with the project's encoders (or by hand where no
 * encoder exists: inline requests, memcached text), each with the results its decoder must
 * give, and mutators that break them: cuts, splices, bit flips, byte inserts and deletes,
 * length fields off by one or pushed near and past the limits, deep nesting, garbage.
 * One input is a pure function of (target, seed, index) through `Prng`, so any failure
 * replays from those three numbers.
 *
 * Hand-written rather than fast-check arbitraries (issue 18 weighed it): a frame is built
 * together with the results its decoder must give and the offsets of its length fields,
 * which arbitraries would only wrap, so the code would not shrink; there is no shrinking
 * here to replace; and `deno task fuzz` makes 1,000,000 inputs per decoder: for RESP
 * request frames, 20,000 inputs took 0.23 s through `Prng` and 12.4 s through `fc.sample`
 * (one run per index, as replay by index needs; about 25 times slower per byte made).
 */
import {
  encodeArray,
  encodeBulk,
  encodeCommand,
  encodeError,
  encodeInteger,
  encodeSimple,
  NULL_BULK_REPLY,
} from "../protocol/resp/encoder.ts";
import { MAX_ARGUMENTS, MAX_BULK_LENGTH, MAX_INLINE_LENGTH } from "../protocol/resp/bytes.ts";
import {
  BINARY_HEADER_BYTES,
  BinaryOpcode,
  BinaryStatus,
  encodeBinaryRequest,
  encodeBinaryResponse,
} from "../protocol/memcache_binary/binary.ts";
import { DEFAULT_MAX_VALUE_BYTES, MAX_DATA_LENGTH, MAX_KEY_LENGTH } from "../protocol/bytes.ts";
import type { MemcacheReplyKind } from "../protocol/memcache_text/text_reply.ts";

/** The decoders the fuzzer drives. */
export type FuzzTarget =
  | "resp-request"
  | "resp-reply"
  | "memcache-text-request"
  | "memcache-text-reply"
  | "memcache-binary-request"
  | "memcache-binary-response";

/** Every target, in a stable order. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  "resp-request",
  "resp-reply",
  "memcache-text-request",
  "memcache-text-reply",
  "memcache-binary-request",
  "memcache-binary-response",
];

/** One result a decoder must produce for a valid frame (a frame may give several). */
export type Expected =
  | { type: "resp-request"; argv: Uint8Array[]; inline: boolean; size: number }
  | { type: "frame"; size: number }
  | {
    type: "mc-request";
    command: string;
    keys: Uint8Array[];
    exptime: Uint8Array | null;
    args: Uint8Array[];
    /** The bytes removed by withoutNoreply(): "", " noreply" or " q". */
    noreply: string;
    base64Key: boolean;
    data: Uint8Array | null;
    size: number;
  }
  | { type: "mc-error"; command: string | null; error: string; noreply: boolean; size: number }
  | {
    type: "bin-packet";
    opcode: number;
    vbucket: number;
    opaque: number;
    cas: bigint;
    extras: Uint8Array;
    key: Uint8Array;
    value: Uint8Array;
    size: number;
  }
  | { type: "bin-error"; opcode: number; opaque: number; status: number; size: number }
  | { type: "skip"; size: number };

/** A length or count field inside a frame, for the length mutators. */
export interface LengthField {
  /** Offset of the field in the frame (or case) bytes. */
  at: number;
  /** Bytes the field takes (decimal digits, or 1, 2, 4 for binary). */
  width: number;
  format: "decimal" | "u8" | "u16" | "u32";
  /** The largest value the protocol accepts there (huge lengths go around it). */
  limit: number;
}

/** One valid frame and what decoding it must give. */
export interface Frame {
  bytes: Uint8Array;
  expected: Expected[];
  lengths: LengthField[];
  /** memcache text replies: the kind of request the reply answers. */
  kind?: MemcacheReplyKind;
  /** The frame announces more bytes than it holds (a discarded body): it ends a pipeline. */
  open?: boolean;
}

/** One fuzz input. */
export interface FuzzCase {
  target: FuzzTarget;
  bytes: Uint8Array;
  /** For inputs made of valid frames: the decode results in order; null when unknown. */
  expected: Expected[] | null;
  /** With `expected`: the input ends inside a frame, so decoding must end needing more. */
  partial: boolean;
  /** memcache text replies: the kind of each successive reply (the last one repeats). */
  kinds: MemcacheReplyKind[];
  /** Length fields still valid in `bytes` (empty once bytes were shifted). */
  lengths: LengthField[];
  /** How the input was made, e.g. "bitflip(valid x2)". */
  label: string;
}

// ---------------------------------------------------------------------------------------
// PRNG

/** sfc32, seeded through splitmix32 from (seed, stream): small, fast, good enough. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    let s = _mix32((seed >>> 0) ^ 0x6a09e667);
    s = _mix32(s ^ Math.imul((stream >>> 0) + 1, 0x9e3779b9));
    s = _mix32(s + Math.floor(stream / 0x100000000));
    this.#a = _mix32(s + 1);
    this.#b = _mix32(s + 2);
    this.#c = _mix32(s + 3);
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A uniform unsigned 32-bit integer. */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A uniform integer in [0, n) for 0 < n <= 2^32. */
  int(n: number): number {
    return Math.floor((this.next() / 0x100000000) * n);
  }

  /** A uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p * 0x100000000;
  }

  /** A uniform element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` uniform random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let v = this.next();
      for (let k = i; k < i + 4 && k < n; k++, v >>>= 8) out[k] = v & 0xff;
    }
    return out;
  }
}

function _mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------
// Byte helpers

const CR = 0x0d; // "\r"
const LF = 0x0a; // "\n"
const SPACE = 0x20; // " "
const TAB = 0x09; // "\t"
const DQUOTE = 0x22; // '"'
const SQUOTE = 0x27; // "'"
const BACKSLASH = 0x5c; // "\\"
const STAR = 0x2a; // "*"

/** Latin-1 text to bytes (protocol words, never user data). */
export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Joins byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
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

/** Accumulates a text frame and the offsets of its decimal length fields. */
class _Text {
  parts: Uint8Array[] = [];
  size = 0;
  lengths: LengthField[] = [];
  /** Text not yet turned into bytes (one conversion per run of text). */
  #text = "";

  add(part: Uint8Array | string): this {
    this.size += part.length;
    if (typeof part === "string") {
      this.#text += part;
      return this;
    }
    this.#flush();
    this.parts.push(part);
    return this;
  }

  /** Adds a decimal length token and remembers where it is. */
  length(value: number, limit: number): this {
    const digits = String(value);
    this.lengths.push({ at: this.size, width: digits.length, format: "decimal", limit });
    return this.add(digits);
  }

  done(): Uint8Array {
    this.#flush();
    return this.parts.length === 1 ? this.parts[0] : concat(this.parts);
  }

  #flush(): void {
    if (this.#text.length === 0) return;
    this.parts.push(ascii(this.#text));
    this.#text = "";
  }
}

const _PRINTABLE = ascii(
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_:.,;!?/#@{}[]()<>=+*$%&",
);
const _PROTOCOL_BYTES = ascii("\r\n\r\n  $*:+-0123456789-1VALUE END\x80\x81\x00\xff");

/** Random payload bytes of the given length, in one of a few textures. */
function _blob(rng: Prng, length: number): Uint8Array {
  const mode = rng.int(10);
  if (mode === 9) return new Uint8Array(length).fill(rng.int(256));
  const out = rng.bytes(length);
  if (mode < 4) return out;
  const alphabet = mode < 7 ? _PRINTABLE : _PROTOCOL_BYTES;
  for (let i = 0; i < length; i++) out[i] = alphabet[out[i] % alphabet.length];
  return out;
}

/** A payload size: mostly small, sometimes a few KB. */
function _size(rng: Prng): number {
  const r = rng.int(100);
  if (r < 5) return 0;
  if (r < 45) return rng.range(1, 8);
  if (r < 80) return rng.range(9, 64);
  if (r < 95) return rng.range(65, 512);
  if (r < 99 || rng.chance(0.5)) return rng.range(513, 4096);
  return rng.range(4097, 20000);
}

function _text(rng: Prng, max: number): string {
  const n = rng.int(max + 1);
  let out = "";
  for (let i = 0; i < n; i++) out += String.fromCharCode(_PRINTABLE[rng.int(_PRINTABLE.length)]);
  if (rng.chance(0.05)) out += "é✓"; // multi-byte UTF-8
  return out;
}

// ---------------------------------------------------------------------------------------
// RESP requests

const _REDIS_COMMANDS = [
  "GET",
  "SET",
  "MGET",
  "MSET",
  "DEL",
  "PING",
  "ECHO",
  "INCR",
  "HSET",
  "EXISTS",
  "EVAL",
  "CLUSTER",
  "get",
  "set",
  "Ping",
];

/** A valid RESP request: multibulk (binary-safe arguments) or inline. */
export function respRequestFrame(rng: Prng): Frame {
  return rng.chance(0.75) ? _multibulk(rng) : _inlineRequest(rng);
}

function _multibulk(rng: Prng): Frame {
  const r = rng.int(100);
  const argc = r < 2
    ? 0
    : r < 80
    ? rng.range(1, 4)
    : r < 98
    ? rng.range(5, 32)
    : rng.range(33, 300);
  const argv: Uint8Array[] = [];
  for (let i = 0; i < argc; i++) {
    if (i === 0 && rng.chance(0.7)) argv.push(ascii(rng.pick(_REDIS_COMMANDS)));
    else if (argc < 33 && rng.chance(0.0005)) {
      // Longer than any inline line: a bulk is binary-safe and not limited by it.
      argv.push(_blob(rng, rng.range(MAX_INLINE_LENGTH - 2, MAX_INLINE_LENGTH + 4000)));
    } else argv.push(_blob(rng, argc > 32 ? rng.int(16) : argc > 4 ? rng.int(64) : _size(rng)));
  }
  const bytes = encodeCommand(argv);
  const lengths: LengthField[] = [];
  let at = 1;
  const count = String(argc).length;
  lengths.push({ at, width: count, format: "decimal", limit: MAX_ARGUMENTS });
  at += count + 2;
  for (const arg of argv) {
    const width = String(arg.length).length;
    lengths.push({ at: at + 1, width, format: "decimal", limit: MAX_BULK_LENGTH });
    at += 1 + width + 2 + arg.length + 2;
  }
  return {
    bytes,
    expected: [{ type: "resp-request", argv, inline: false, size: bytes.length }],
    lengths,
  };
}

function _blank(rng: Prng): string {
  return rng.chance(0.8) ? " " : rng.pick([" \t", "  ", "\t", "   "]);
}

/**
 * An inline request as redis-cli or telnet sends it, with arguments that Redis's
 * sdssplitargs reads the same way (so no quote inside a bare word, no NUL, \v or \f).
 */
function _inlineRequest(rng: Prng): Frame {
  const argc = rng.chance(0.05) ? 0 : rng.range(1, 6);
  const line = new _Text();
  const argv: Uint8Array[] = [];
  if (rng.chance(0.15) || argc === 0) line.add(rng.pick(["", " ", "\t", "  "]));
  for (let i = 0; i < argc; i++) {
    if (i > 0) line.add(_blank(rng));
    const style = rng.int(10);
    if (style < 7) {
      const n = rng.range(1, 12);
      const word = new Uint8Array(n);
      for (let k = 0; k < n; k++) {
        let byte: number;
        do {
          byte = rng.chance(0.9) ? _PRINTABLE[rng.int(_PRINTABLE.length)] : rng.range(0x80, 0xff);
        } while (
          byte === SPACE || byte === DQUOTE || byte === SQUOTE ||
          (k === 0 && i === 0 && byte === STAR)
        );
        word[k] = byte;
      }
      if (i === 0 && rng.chance(0.5)) {
        const name = ascii(rng.pick(_REDIS_COMMANDS));
        argv.push(name);
        line.add(name);
      } else {
        argv.push(word);
        line.add(word);
      }
    } else if (style < 9) {
      const value = _blob(rng, rng.int(24));
      argv.push(value);
      line.add(_doubleQuoted(rng, value));
    } else {
      const value = new Uint8Array(rng.int(16));
      for (let k = 0; k < value.length; k++) {
        let byte: number;
        do byte = rng.int(256); while (byte === BACKSLASH || byte === LF || byte === 0);
        value[k] = byte;
      }
      argv.push(value);
      line.add(_singleQuoted(value));
    }
  }
  if (rng.chance(0.1)) line.add(_blank(rng));
  line.add(rng.chance(0.85) ? "\r\n" : "\n");
  const bytes = line.done();
  return {
    bytes,
    expected: [{ type: "resp-request", argv, inline: true, size: bytes.length }],
    lengths: [],
  };
}

const _HEX = "0123456789abcdef";

function _doubleQuoted(rng: Prng, value: Uint8Array): Uint8Array {
  const out: number[] = [DQUOTE];
  const push = (text: string) => {
    for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i));
  };
  for (const byte of value) {
    if (byte === DQUOTE) push('\\"');
    else if (byte === BACKSLASH) push("\\\\");
    else if (byte === LF) push("\\n");
    else if (byte === CR) push("\\r");
    else if (byte === TAB && rng.chance(0.5)) push("\\t");
    else if (byte === 0x08) push("\\b");
    else if (byte === 0x07) push("\\a");
    else if (byte >= 0x20 && byte < 0x7f && rng.chance(0.9)) out.push(byte);
    else if (byte === TAB || (byte >= 0x80 && rng.chance(0.5))) out.push(byte);
    else {
      const hex = `\\x${_HEX[byte >> 4]}${_HEX[byte & 15]}`;
      push(rng.chance(0.5) ? hex : hex.toUpperCase().replace("\\X", "\\x"));
    }
  }
  out.push(DQUOTE);
  return Uint8Array.from(out);
}

function _singleQuoted(value: Uint8Array): Uint8Array {
  const out: number[] = [SQUOTE];
  for (const byte of value) {
    if (byte === SQUOTE) out.push(BACKSLASH);
    out.push(byte);
  }
  out.push(SQUOTE);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------
// RESP replies

interface _Piece {
  bytes: Uint8Array;
  lengths: LengthField[];
}

const INT64_MAX = (1n << 63n) - 1n;

/** A valid RESP2 reply: statuses, errors, 64-bit integers, bulks, nulls, nested arrays. */
export function respReplyFrame(rng: Prng): Frame {
  const piece = _reply(rng, 0, rng.range(1, 5));
  return {
    bytes: piece.bytes,
    expected: [{ type: "frame", size: piece.bytes.length }],
    lengths: piece.lengths,
  };
}

/** The largest array count a reply may have: the 15 digits parseInteger reads. */
const MAX_REPLY_COUNT = 999_999_999_999_999;

function _reply(rng: Prng, depth: number, maxDepth: number): _Piece {
  const r = rng.int(100);
  if (r < 15 && depth < maxDepth) {
    const count = rng.chance(0.1) ? 0 : rng.range(1, depth === 0 ? 12 : 5);
    const children: _Piece[] = [];
    for (let i = 0; i < count; i++) children.push(_reply(rng, depth + 1, maxDepth));
    const bytes = encodeArray(children.map((c) => c.bytes));
    const header = String(count).length + 3;
    const lengths: LengthField[] = [
      { at: 1, width: header - 3, format: "decimal", limit: MAX_REPLY_COUNT },
    ];
    let at = header;
    for (const child of children) {
      for (const field of child.lengths) lengths.push({ ...field, at: field.at + at });
      at += child.bytes.length;
    }
    return { bytes, lengths };
  }
  if (r < 17) return { bytes: ascii("*-1\r\n"), lengths: [] };
  if (r < 22) return { bytes: NULL_BULK_REPLY, lengths: [] };
  if (r < 40) {
    // A status line; very rarely longer than 64 KB (Lua's redis.status_reply can do it).
    const text = rng.chance(0.0002) ? "x".repeat(rng.range(65530, 80000)) : _text(rng, 40);
    return { bytes: encodeSimple(text), lengths: [] };
  }
  if (r < 48) {
    const prefix = rng.pick(["ERR ", "WRONGTYPE ", "MOVED 3999 127.0.0.1:6381", "ASK 1 h:1", ""]);
    return { bytes: encodeError(prefix + _text(rng, 30)), lengths: [] };
  }
  if (r < 68) return { bytes: _integer(rng), lengths: [] };
  const body = _blob(rng, _size(rng));
  return {
    bytes: encodeBulk(body),
    lengths: [
      { at: 1, width: String(body.length).length, format: "decimal", limit: MAX_BULK_LENGTH },
    ],
  };
}

/** An integer reply anywhere in Redis's signed 64-bit range. */
function _integer(rng: Prng): Uint8Array {
  const r = rng.int(100);
  if (r < 60) return encodeInteger(rng.range(-10, 1000));
  if (r < 85) return encodeInteger(rng.range(-0x7fffffff, 0x7fffffff) * rng.range(1, 0x1fffff));
  if (r < 95) {
    const high = BigInt(rng.next() >>> 1);
    const value = (high << 32n) | BigInt(rng.next());
    return ascii(`:${rng.chance(0.5) ? -value : value}\r\n`);
  }
  return ascii(`:${rng.pick([INT64_MAX, -INT64_MAX - 1n, 1n << 53n, -(1n << 53n) - 1n])}\r\n`);
}

// ---------------------------------------------------------------------------------------
// memcached text requests

const _KEY_BYTES = ascii("abcdefghijklmnopqrstuvwxyz0123456789:_-");

/** A key memcached accepts (mostly printable; it takes any byte but space, "\n" and NUL). */
function _mcKey(rng: Prng): Uint8Array {
  const r = rng.int(100);
  const n = r < 80 ? rng.range(1, 16) : r < 99 ? rng.range(17, MAX_KEY_LENGTH) : MAX_KEY_LENGTH;
  const key = new Uint8Array(n);
  const mode = rng.int(10);
  for (let i = 0; i < n; i++) {
    if (mode < 7) key[i] = _KEY_BYTES[rng.int(_KEY_BYTES.length)];
    else if (mode < 9) key[i] = rng.range(0x21, 0x7e);
    else key[i] = rng.chance(0.5) ? rng.range(0x21, 0x7e) : rng.range(0x80, 0xff);
  }
  return key;
}

function _uint(rng: Prng): string {
  const r = rng.int(10);
  if (r < 6) return String(rng.int(1000));
  if (r < 8) return String(rng.next());
  if (r < 9) return ((BigInt(rng.next()) << 32n) | BigInt(rng.next())).toString();
  return rng.pick(["0", "18446744073709551615", "+5", "007"]);
}

function _u32(rng: Prng): string {
  return rng.chance(0.7) ? String(rng.int(100)) : String(rng.next());
}

function _int(rng: Prng): string {
  const r = rng.int(10);
  if (r < 6) return String(rng.int(100000));
  if (r < 8) return String(-rng.int(1000));
  if (r < 9) return String(rng.range(-0x7fffffff, 0x7fffffff));
  return rng.pick(["0", "-1", "9223372036854775807", "-9223372036854775808", "+30"]);
}

/** Separator between tokens: memcached skips runs of spaces. */
function _sp(rng: Prng): string {
  return rng.chance(0.9) ? " " : rng.pick(["  ", "   "]);
}

function _eol(rng: Prng): string {
  return rng.chance(0.9) ? "\r\n" : "\n";
}

const _STORAGE = ["set", "add", "replace", "append", "prepend"];
const _META_FLAGS = ["v", "t", "k", "s", "f", "c", "h", "l", "O123", "T30", "N30", "E5", "R10"];
const _MS_FLAGS = ["T0", "F5", "I", "MS", "MA", "MP", "C123", "c", "k", "O1", "S10", "b"];

function _request(
  command: string,
  size: number,
  fields: Partial<Extract<Expected, { type: "mc-request" }>> = {},
): Expected {
  return {
    type: "mc-request",
    command,
    keys: [],
    exptime: null,
    args: [],
    noreply: "",
    base64Key: false,
    data: null,
    size,
    ...fields,
  };
}

/** A memcached text request (classic, meta or admin), or a line it refuses but keeps framing. */
export function memcacheTextRequestFrame(rng: Prng): Frame {
  const r = rng.int(100);
  const t = new _Text();
  if (r < 30) {
    // Storage: set/add/replace/append/prepend/cas <key> <flags> <exptime> <bytes> ...
    const cas = rng.chance(0.15);
    const command = cas ? "cas" : rng.pick(_STORAGE);
    const key = _mcKey(rng);
    const huge = rng.chance(0.0003);
    const length = huge ? DEFAULT_MAX_VALUE_BYTES + rng.range(-1, 1) : _size(rng);
    const data = _blob(rng, length);
    t.add(command + _sp(rng)).add(key).add(_sp(rng) + _u32(rng) + _sp(rng) + _int(rng));
    t.add(_sp(rng)).length(length, DEFAULT_MAX_VALUE_BYTES);
    if (cas) t.add(_sp(rng) + _uint(rng));
    const noreply = rng.chance(0.2);
    const junk = !noreply && rng.chance(0.05);
    if (noreply) t.add(" noreply");
    else if (junk) t.add(" yes");
    t.add(_eol(rng));
    const lineSize = t.size;
    t.add(data).add("\r\n");
    const expected: Expected[] = length > DEFAULT_MAX_VALUE_BYTES
      ? [
        {
          type: "mc-error",
          command,
          error: "SERVER_ERROR object too large for cache",
          noreply,
          size: lineSize,
        },
        { type: "skip", size: length + 2 },
      ]
      : [
        _request(command, t.size, {
          keys: [key],
          noreply: noreply ? " noreply" : "",
          data,
        }),
      ];
    return { bytes: t.done(), expected, lengths: t.lengths };
  }
  if (r < 50) {
    // Retrieval: get/gets <key>+, gat/gats <exptime> <key>+.
    const command = rng.pick(["get", "get", "gets", "gat", "gats"]);
    const gat = command.startsWith("gat");
    const count = rng.chance(0.9) ? rng.range(1, 5) : rng.range(6, 200);
    const keys: Uint8Array[] = [];
    if (rng.chance(0.05)) t.add(" ".repeat(rng.range(1, 100)));
    t.add(command);
    let exptime: Uint8Array | null = null;
    if (gat) {
      exptime = ascii(_int(rng));
      t.add(_sp(rng)).add(exptime);
    }
    for (let i = 0; i < count; i++) {
      const key = i > 0 && rng.chance(0.1) ? keys[rng.int(keys.length)] : _mcKey(rng);
      keys.push(key);
      t.add(_sp(rng)).add(key);
    }
    t.add(_eol(rng));
    const size = t.size;
    // Lines past the retrieval allowance are refused; keep generated ones inside it.
    if (size - 1 > 65536) return memcacheTextRequestFrame(rng);
    return { bytes: t.done(), expected: [_request(command, size, { keys, exptime })], lengths: [] };
  }
  if (r < 60) {
    const key = _mcKey(rng);
    const form = rng.int(4);
    t.add("delete" + _sp(rng)).add(key);
    if (form === 1 || form === 3) t.add(" 0");
    if (form >= 2) t.add(" noreply");
    t.add(_eol(rng));
    const noreply = form >= 2 ? " noreply" : "";
    return {
      bytes: t.done(),
      expected: [_request("delete", t.size, { keys: [key], noreply })],
      lengths: [],
    };
  }
  if (r < 68) {
    const command = rng.pick(["incr", "decr", "touch"]);
    const key = _mcKey(rng);
    t.add(command + _sp(rng)).add(key).add(
      _sp(rng) + (command === "touch" ? _int(rng) : _uint(rng)),
    );
    const noreply = rng.chance(0.2);
    if (noreply) t.add(" noreply");
    t.add(_eol(rng));
    return {
      bytes: t.done(),
      expected: [_request(command, t.size, { keys: [key], noreply: noreply ? " noreply" : "" })],
      lengths: [],
    };
  }
  if (r < 80) {
    // Meta: mg/md/ma/me <key> <flag>*, mn.
    const command = rng.pick(["mg", "mg", "md", "ma", "me", "mn"]);
    if (command === "mn") {
      t.add("mn" + _eol(rng));
      return { bytes: t.done(), expected: [_request("mn", t.size)], lengths: [] };
    }
    const base64 = rng.chance(0.1);
    const key = base64
      ? ascii(btoa(String.fromCharCode(...rng.bytes(rng.range(1, 30)))))
      : _mcKey(rng);
    const flags = _flags(rng, _META_FLAGS, command !== "me");
    if (base64) flags.splice(rng.int(flags.length + 1), 0, "b");
    t.add(command + _sp(rng)).add(key);
    for (const flag of flags) t.add(" " + flag);
    t.add(_eol(rng));
    const quiet = command !== "me" && flags.includes("q");
    return {
      bytes: t.done(),
      expected: [
        _request(command, t.size, { keys: [key], noreply: quiet ? " q" : "", base64Key: base64 }),
      ],
      lengths: [],
    };
  }
  if (r < 88) {
    // ms <key> <datalen> <flag>*\r\n<data>\r\n
    const key = _mcKey(rng);
    const length = rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : _size(rng);
    const data = _blob(rng, length);
    const flags = _flags(rng, _MS_FLAGS, true);
    const base64 = flags.includes("b");
    t.add("ms" + _sp(rng)).add(key).add(_sp(rng)).length(length, DEFAULT_MAX_VALUE_BYTES);
    for (const flag of flags) t.add(" " + flag);
    t.add(_eol(rng)).add(data).add("\r\n");
    return {
      bytes: t.done(),
      expected: [
        _request("ms", t.size, {
          keys: [key],
          noreply: flags.includes("q") ? " q" : "",
          base64Key: base64,
          data,
        }),
      ],
      lengths: t.lengths,
    };
  }
  if (r < 94) {
    // Admin commands: recognized by name, arguments passed on.
    const [command, args, noreply] = rng.pick(_ADMIN)(rng);
    t.add(command);
    for (const arg of args) t.add(_sp(rng) + arg);
    if (noreply) t.add(" noreply");
    t.add(_eol(rng));
    return {
      bytes: t.done(),
      expected: [
        _request(command, t.size, { args: args.map(ascii), noreply: noreply ? " noreply" : "" }),
      ],
      lengths: [],
    };
  }
  // Lines memcached refuses while keeping the framing.
  const form = rng.int(5);
  if (form === 0) {
    t.add(rng.pick(["", "   ", "SET k 0 0 1", "gett k", "bogus", "GET a", "sets x"]) + _eol(rng));
    return {
      bytes: t.done(),
      expected: [{ type: "mc-error", command: null, error: "ERROR", noreply: false, size: t.size }],
      lengths: [],
    };
  }
  if (form === 1) {
    t.add("get").add(_sp(rng)).add("k".repeat(MAX_KEY_LENGTH + 1)).add(_eol(rng));
    const error = "CLIENT_ERROR bad command line format";
    return {
      bytes: t.done(),
      expected: [{ type: "mc-error", command: "get", error, noreply: false, size: t.size }],
      lengths: [],
    };
  }
  if (form === 2) {
    const command = rng.pick(["incr", "touch"]);
    const noreply = rng.chance(0.3);
    t.add(`${command} k abc${noreply ? " noreply" : ""}${_eol(rng)}`);
    const error = command === "incr"
      ? "CLIENT_ERROR invalid numeric delta argument"
      : "CLIENT_ERROR invalid exptime argument";
    return {
      bytes: t.done(),
      expected: [{ type: "mc-error", command, error, noreply, size: t.size }],
      lengths: [],
    };
  }
  // A storage command with a bad key or flags: refused, and its data block discarded.
  const length = _size(rng);
  if (rng.chance(0.3)) {
    t.add("ms " + "k".repeat(MAX_KEY_LENGTH + 1) + " ").length(length, DEFAULT_MAX_VALUE_BYTES);
    t.add(rng.pick(["", " T0", " q", " b F1"]) + _eol(rng));
    const lineSize = t.size;
    t.add(_blob(rng, length)).add("\r\n");
    const error = "CLIENT_ERROR bad command line format";
    return {
      bytes: t.done(),
      expected: [
        { type: "mc-error", command: "ms", error, noreply: false, size: lineSize },
        { type: "skip", size: length + 2 },
      ],
      lengths: t.lengths,
    };
  }
  const noreply = rng.chance(0.3);
  const badKey = rng.chance(0.5);
  const flags = !badKey || rng.chance(0.5)
    ? rng.pick(["x", "-1", "1.5", "18446744073709551616"])
    : "1";
  t.add(`set ${badKey ? "k".repeat(MAX_KEY_LENGTH + 1) : "k"} ${flags} 0 `);
  t.length(length, DEFAULT_MAX_VALUE_BYTES).add(noreply ? " noreply" : "").add(_eol(rng));
  const lineSize = t.size;
  t.add(_blob(rng, length)).add("\r\n");
  return {
    bytes: t.done(),
    expected: [
      {
        type: "mc-error",
        command: "set",
        error: "CLIENT_ERROR bad command line format",
        noreply,
        size: lineSize,
      },
      { type: "skip", size: length + 2 },
    ],
    lengths: t.lengths,
  };
}

/** Admin requests: name, arguments, trailing noreply. */
const _ADMIN: ((rng: Prng) => [string, string[], boolean])[] = [
  () => ["version", [], false],
  (rng) => ["verbosity", [String(rng.int(3))], rng.chance(0.3)],
  (rng) => ["flush_all", rng.chance(0.5) ? [String(rng.int(100))] : [], rng.chance(0.3)],
  (rng) => ["stats", rng.chance(0.5) ? [rng.pick(["items", "slabs", "settings"])] : [], false],
  () => ["quit", [], false],
  (rng) => ["cache_memlimit", [String(rng.range(8, 4096))], false],
  () => ["lru_crawler", ["metadump", "all"], false],
  () => ["watch", ["fetchers"], false],
];

function _flags(rng: Prng, choices: readonly string[], quietAllowed: boolean): string[] {
  const flags: string[] = [];
  const n = rng.int(5);
  for (let i = 0; i < n; i++) flags.push(rng.pick(choices));
  if (quietAllowed && rng.chance(0.25)) flags.splice(rng.int(flags.length + 1), 0, "q");
  return flags;
}

// ---------------------------------------------------------------------------------------
// memcached text replies

const _LINE_REPLIES = [
  "STORED",
  "NOT_STORED",
  "EXISTS",
  "NOT_FOUND",
  "DELETED",
  "TOUCHED",
  "OK",
  "ERROR",
  "VERSION 1.6.21",
  "CLIENT_ERROR bad command line format",
  "SERVER_ERROR out of memory storing object",
];
const _META_LINES = ["HD", "NF", "NS", "EX", "EN", "MN", "HD t30 c1", "HD O123 k", "NF q"];

/** A memcached text reply for a request of a random kind. */
export function memcacheTextReplyFrame(rng: Prng): Frame {
  const r = rng.int(3);
  const t = new _Text();
  if (r === 0) {
    const blocks = rng.chance(0.2) ? 0 : rng.range(1, rng.chance(0.9) ? 4 : 40);
    for (let i = 0; i < blocks; i++) {
      const length = rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : _size(rng);
      t.add("VALUE ").add(_mcKey(rng)).add(` ${_uint(rng)} `);
      t.length(length, DEFAULT_MAX_VALUE_BYTES);
      if (rng.chance(0.3)) t.add(" " + _uint(rng));
      t.add("\r\n").add(_blob(rng, length)).add("\r\n");
    }
    t.add(
      rng.chance(0.9) ? "END\r\n" : rng.pick(["SERVER_ERROR out of memory\r\n", "ERROR\r\n"]),
    );
    return {
      bytes: t.done(),
      expected: [{ type: "frame", size: t.size }],
      lengths: t.lengths,
      kind: "retrieval",
    };
  }
  if (r === 1) {
    t.add(rng.chance(0.2) ? _uint(rng) : rng.pick(_LINE_REPLIES)).add(
      rng.chance(0.95) ? "\r\n" : "\n",
    );
    return {
      bytes: t.done(),
      expected: [{ type: "frame", size: t.size }],
      lengths: [],
      kind: "line",
    };
  }
  const form = rng.int(10);
  if (form < 5) {
    const length = rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : _size(rng);
    t.add("VA ").length(length, DEFAULT_MAX_VALUE_BYTES);
    for (const flag of _flags(rng, ["t30", "c123", "f0", "s5", "k", "Oabc", "W", "Z"], false)) {
      t.add(" " + flag);
    }
    t.add("\r\n").add(_blob(rng, length)).add("\r\n");
  } else if (form < 8) {
    t.add(rng.pick(_META_LINES) + "\r\n");
  } else if (form < 9) {
    t.add("ME ").add(_mcKey(rng)).add(" exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n");
  } else {
    t.add(rng.pick(["CLIENT_ERROR bad data chunk", "SERVER_ERROR busy", "ERROR"]) + "\r\n");
  }
  return {
    bytes: t.done(),
    expected: [{ type: "frame", size: t.size }],
    lengths: t.lengths,
    kind: "meta",
  };
}

// ---------------------------------------------------------------------------------------
// memcached binary packets

const KEY_NONE = 0;
const KEY_REQUIRED = 1;
const KEY_OPTIONAL = 2;

/** memcached's rules per opcode: accepted extras lengths, key presence, a value or not. */
const _BINARY_SHAPES: [number[], number[], number, boolean][] = [
  [
    [BinaryOpcode.get, BinaryOpcode.getq, BinaryOpcode.getk, BinaryOpcode.getkq],
    [0],
    KEY_REQUIRED,
    false,
  ],
  [
    [
      BinaryOpcode.set,
      BinaryOpcode.setq,
      BinaryOpcode.add,
      BinaryOpcode.addq,
      BinaryOpcode.replace,
      BinaryOpcode.replaceq,
    ],
    [8],
    KEY_REQUIRED,
    true,
  ],
  [
    [BinaryOpcode.append, BinaryOpcode.appendq, BinaryOpcode.prepend, BinaryOpcode.prependq],
    [0],
    KEY_REQUIRED,
    true,
  ],
  [[BinaryOpcode.delete, BinaryOpcode.deleteq], [0], KEY_REQUIRED, false],
  [
    [
      BinaryOpcode.increment,
      BinaryOpcode.incrementq,
      BinaryOpcode.decrement,
      BinaryOpcode.decrementq,
    ],
    [20],
    KEY_REQUIRED,
    false,
  ],
  [
    [BinaryOpcode.quit, BinaryOpcode.quitq, BinaryOpcode.noop, BinaryOpcode.version],
    [0],
    KEY_NONE,
    false,
  ],
  [[BinaryOpcode.flush, BinaryOpcode.flushq], [0, 4], KEY_NONE, false],
  [[BinaryOpcode.stat], [0], KEY_OPTIONAL, false],
  [[BinaryOpcode.verbosity], [4], KEY_NONE, false],
  [
    [
      BinaryOpcode.touch,
      BinaryOpcode.gat,
      BinaryOpcode.gatq,
      BinaryOpcode.gatk,
      BinaryOpcode.gatkq,
    ],
    [4],
    KEY_REQUIRED,
    false,
  ],
];
const _KNOWN_OPCODES = new Set(_BINARY_SHAPES.flatMap((s) => s[0]));

function _binaryLengths(): LengthField[] {
  return [
    { at: 2, width: 2, format: "u16", limit: MAX_KEY_LENGTH },
    { at: 4, width: 1, format: "u8", limit: 20 },
    { at: 8, width: 4, format: "u32", limit: DEFAULT_MAX_VALUE_BYTES },
  ];
}

function _cas(rng: Prng): bigint {
  return rng.chance(0.5) ? 0n : (BigInt(rng.next()) << 32n) | BigInt(rng.next());
}

/** A binary request packet memcached accepts, or one it refuses while keeping the framing. */
export function memcacheBinaryRequestFrame(rng: Prng): Frame {
  const opaque = rng.next();
  const vbucket = rng.chance(0.8) ? 0 : rng.int(0x10000);
  const cas = _cas(rng);
  if (rng.chance(0.9)) {
    const [opcodes, extrasChoices, keyRule, hasValue] = rng.pick(_BINARY_SHAPES);
    const opcode = rng.pick(opcodes);
    const extras = rng.bytes(rng.pick(extrasChoices));
    const key = keyRule === KEY_REQUIRED || (keyRule === KEY_OPTIONAL && rng.chance(0.5))
      ? _mcKey(rng)
      : new Uint8Array(0);
    const huge = hasValue && rng.chance(0.0003);
    const value = hasValue
      ? _blob(rng, huge ? DEFAULT_MAX_VALUE_BYTES + rng.range(-1, 0) : _size(rng))
      : new Uint8Array(0);
    const bytes = encodeBinaryRequest({ opcode, status: vbucket, opaque, cas, extras, key, value });
    return {
      bytes,
      expected: [{
        type: "bin-packet",
        opcode,
        vbucket,
        opaque,
        cas,
        extras,
        key,
        value,
        size: bytes.length,
      }],
      lengths: _binaryLengths(),
    };
  }
  // Refused with the framing kept: unknown opcode, key too long, wrong extras, too large.
  const form = rng.int(4);
  let opcode: number = BinaryOpcode.get;
  let key = _mcKey(rng);
  let extras: Uint8Array = new Uint8Array(0);
  let value: Uint8Array = new Uint8Array(0);
  let status: number = BinaryStatus.invalidArguments;
  if (form === 0) {
    do opcode = rng.int(256); while (_KNOWN_OPCODES.has(opcode));
    status = BinaryStatus.unknownCommand;
    value = _blob(rng, rng.int(40));
  } else if (form === 1) {
    key = _blob(rng, rng.range(MAX_KEY_LENGTH + 1, 400));
  } else if (form === 2) {
    extras = rng.bytes(rng.pick([4, 8, 20]));
  } else {
    opcode = BinaryOpcode.set;
    extras = rng.bytes(8);
    status = BinaryStatus.valueTooLarge;
    value = rng.chance(0.001) ? _blob(rng, DEFAULT_MAX_VALUE_BYTES + 1) : new Uint8Array(0);
    if (value.length === 0) {
      // Only the header: the body is discarded as it arrives, so a cut is fine.
      const bytes = encodeBinaryRequest({ opcode, status: vbucket, opaque, cas, extras, key });
      const body = extras.length + key.length + DEFAULT_MAX_VALUE_BYTES + 1;
      new DataView(bytes.buffer).setUint32(8, body);
      return {
        bytes,
        expected: [
          { type: "bin-error", opcode, opaque, status, size: BINARY_HEADER_BYTES },
          { type: "skip", size: bytes.length - BINARY_HEADER_BYTES },
        ],
        lengths: _binaryLengths(),
        open: true,
      };
    }
  }
  const bytes = encodeBinaryRequest({ opcode, status: vbucket, opaque, cas, extras, key, value });
  const expected: Expected[] = [
    { type: "bin-error", opcode, opaque, status, size: BINARY_HEADER_BYTES },
  ];
  if (bytes.length > BINARY_HEADER_BYTES) {
    expected.push({ type: "skip", size: bytes.length - BINARY_HEADER_BYTES });
  }
  return { bytes, expected, lengths: _binaryLengths() };
}

const _STATUSES = Object.values(BinaryStatus);
const _OPCODES = Object.values(BinaryOpcode);

/** A binary response packet as memcached sends it. */
export function memcacheBinaryResponseFrame(rng: Prng): Frame {
  const opcode = rng.pick(_OPCODES);
  const status = rng.chance(0.7) ? 0 : rng.pick(_STATUSES);
  const extras = rng.bytes(rng.pick([0, 0, 4, 4, 8, 20]));
  const key = rng.chance(0.3) ? _mcKey(rng) : new Uint8Array(0);
  const value = _blob(rng, rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : _size(rng));
  const bytes = encodeBinaryResponse({
    opcode,
    status,
    opaque: rng.next(),
    cas: _cas(rng),
    extras,
    key,
    value,
  });
  return { bytes, expected: [{ type: "frame", size: bytes.length }], lengths: _binaryLengths() };
}

/** A valid frame for `target`. */
export function validFrame(target: FuzzTarget, rng: Prng): Frame {
  switch (target) {
    case "resp-request":
      return respRequestFrame(rng);
    case "resp-reply":
      return respReplyFrame(rng);
    case "memcache-text-request":
      return memcacheTextRequestFrame(rng);
    case "memcache-text-reply":
      return memcacheTextReplyFrame(rng);
    case "memcache-binary-request":
      return memcacheBinaryRequestFrame(rng);
    case "memcache-binary-response":
      return memcacheBinaryResponseFrame(rng);
  }
}

// ---------------------------------------------------------------------------------------
// Cases and mutators

/** A pipeline of `count` valid frames as one input. */
export function validCase(target: FuzzTarget, rng: Prng, count: number): FuzzCase {
  const frames: Frame[] = [];
  for (let i = 0; i < count; i++) {
    const frame = validFrame(target, rng);
    frames.push(frame);
    if (frame.open) break;
  }
  const lengths: LengthField[] = [];
  let at = 0;
  for (const frame of frames) {
    for (const field of frame.lengths) lengths.push({ ...field, at: field.at + at });
    at += frame.bytes.length;
  }
  return {
    target,
    bytes: concat(frames.map((f) => f.bytes)),
    expected: frames.flatMap((f) => f.expected),
    partial: false,
    kinds: frames.map((f) => f.kind ?? "line"),
    lengths,
    label: `valid x${frames.length}`,
  };
}

function _pipelineLength(rng: Prng): number {
  const r = rng.int(100);
  return r < 60 ? 1 : r < 90 ? rng.range(2, 4) : rng.range(5, 20);
}

function _unknown(
  base: FuzzCase,
  bytes: Uint8Array,
  label: string,
  lengths: LengthField[] = [],
): FuzzCase {
  return {
    ...base,
    bytes,
    expected: null,
    partial: false,
    lengths,
    label: `${label}(${base.label})`,
  };
}

/**
 * Cuts `c` after `at` bytes: the expected results are those whose bytes are all there (a
 * discarded block gives what is there of it), and decoding must then need more bytes.
 */
export function cut(c: FuzzCase, at: number): FuzzCase {
  const bytes = c.bytes.subarray(0, at);
  if (c.expected === null) return _unknown(c, bytes, `cut@${at}`);
  const expected: Expected[] = [];
  let used = 0;
  for (const e of c.expected) {
    if (used + e.size <= at) {
      expected.push(e);
      used += e.size;
      continue;
    }
    if (e.type === "skip" && at > used) expected.push({ type: "skip", size: at - used });
    break;
  }
  return {
    ...c,
    bytes,
    expected,
    partial: true,
    lengths: c.lengths.filter((f) => f.at + f.width <= at),
    label: `cut@${at}(${c.label})`,
  };
}

/** The head of `a` then the tail of `b`. */
export function splice(a: FuzzCase, b: FuzzCase, rng: Prng): FuzzCase {
  const head = a.bytes.subarray(0, rng.int(a.bytes.length + 1));
  const tail = b.bytes.subarray(rng.int(b.bytes.length + 1));
  return _unknown(
    { ...a, kinds: [...a.kinds, ...b.kinds] },
    concat([head, tail]),
    `splice(${head.length}+${tail.length})`,
  );
}

/** Flips 1..8 random bits. */
export function flipBits(c: FuzzCase, rng: Prng): FuzzCase {
  if (c.bytes.length === 0) return c;
  const bytes = c.bytes.slice();
  const n = rng.range(1, 8);
  for (let i = 0; i < n; i++) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
  return _unknown(c, bytes, `flip${n}`, c.lengths);
}

const _INSERTS = [
  "\r",
  "\n",
  "\r\n",
  " ",
  "$",
  "*",
  "0",
  "-",
  "9",
  "\x00",
  "\x80",
  "\x81",
  "noreply",
  " noreply",
  " q",
]
  .map(ascii);

/** Inserts a few random or protocol-significant bytes at a random offset. */
export function insertBytes(c: FuzzCase, rng: Prng): FuzzCase {
  const at = rng.int(c.bytes.length + 1);
  const piece = rng.chance(0.6) ? rng.pick(_INSERTS) : rng.bytes(rng.range(1, 8));
  return _unknown(
    c,
    concat([c.bytes.subarray(0, at), piece, c.bytes.subarray(at)]),
    `insert${piece.length}@${at}`,
  );
}

/** Deletes 1..8 bytes at a random offset. */
export function deleteBytes(c: FuzzCase, rng: Prng): FuzzCase {
  if (c.bytes.length === 0) return c;
  const at = rng.int(c.bytes.length);
  const n = Math.min(rng.range(1, 8), c.bytes.length - at);
  return _unknown(
    c,
    concat([c.bytes.subarray(0, at), c.bytes.subarray(at + n)]),
    `delete${n}@${at}`,
  );
}

/** Copies a slice of the input to another place (a repeated or reordered piece). */
export function duplicateSlice(c: FuzzCase, rng: Prng): FuzzCase {
  const from = rng.int(c.bytes.length + 1);
  const to = Math.min(c.bytes.length, from + rng.range(1, 64));
  const at = rng.int(c.bytes.length + 1);
  return _unknown(
    c,
    concat([c.bytes.subarray(0, at), c.bytes.subarray(from, to), c.bytes.subarray(at)]),
    `dup${to - from}@${at}`,
  );
}

/** Repeats one space-separated token of a text line ("mg k q" -> "mg k q q"). */
export function repeatToken(c: FuzzCase, rng: Prng): FuzzCase {
  const bytes = c.bytes;
  const limit = Math.min(bytes.length, 4096);
  const starts: number[] = [];
  for (let i = 0; i < limit; i++) {
    const boundary = i === 0 || bytes[i - 1] === SPACE || bytes[i - 1] === LF;
    if (boundary && bytes[i] !== SPACE && bytes[i] !== CR && bytes[i] !== LF) starts.push(i);
  }
  if (starts.length === 0) return insertBytes(c, rng);
  const from = rng.pick(starts);
  let to = from;
  while (to < bytes.length && bytes[to] !== SPACE && bytes[to] !== CR && bytes[to] !== LF) to++;
  const token = bytes.subarray(from, to);
  return _unknown(
    c,
    concat([bytes.subarray(0, to), ascii(" "), token, bytes.subarray(to)]),
    `repeat${token.length}@${from}`,
  );
}

/** Rewrites one length field to `value` (decimal text, or big-endian binary). */
export function setLength(c: FuzzCase, field: LengthField, value: bigint, label: string): FuzzCase {
  if (field.format !== "decimal") {
    const bytes = c.bytes.slice();
    let v = value;
    for (let i = field.width - 1; i >= 0; i--) {
      bytes[field.at + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return _unknown(c, bytes, label, c.lengths);
  }
  const digits = ascii(value.toString());
  const bytes = concat([
    c.bytes.subarray(0, field.at),
    digits,
    c.bytes.subarray(field.at + field.width),
  ]);
  return _unknown(c, bytes, label);
}

function _readLength(c: FuzzCase, field: LengthField): bigint {
  if (field.format === "decimal") {
    const text = String.fromCharCode(...c.bytes.subarray(field.at, field.at + field.width));
    return /^-?\d+$/.test(text) ? BigInt(text) : 0n;
  }
  let v = 0n;
  for (let i = 0; i < field.width; i++) v = (v << 8n) | BigInt(c.bytes[field.at + i]);
  return v;
}

/** Moves one length field by +1 or -1. */
export function lengthOffByOne(c: FuzzCase, rng: Prng): FuzzCase {
  if (c.lengths.length === 0) return flipBits(c, rng);
  const field = rng.pick(c.lengths);
  const delta = rng.chance(0.5) ? 1n : -1n;
  let value = _readLength(c, field) + delta;
  if (field.format !== "decimal") value &= (1n << BigInt(8 * field.width)) - 1n;
  return setLength(c, field, value, `len${delta > 0n ? "+1" : "-1"}@${field.at}`);
}

/** Sets one length field near or past the limits (512 MB, 1M args, 1 MB, 2^32 ...). */
export function hugeLength(c: FuzzCase, rng: Prng): FuzzCase {
  if (c.lengths.length === 0) return flipBits(c, rng);
  const field = rng.pick(c.lengths);
  const limit = BigInt(field.limit);
  let value: bigint;
  if (field.format === "decimal") {
    value = rng.pick([
      limit - 1n,
      limit,
      limit + 1n,
      limit * 2n,
      BigInt(MAX_BULK_LENGTH) + BigInt(rng.range(-1, 1)),
      BigInt(MAX_ARGUMENTS) + BigInt(rng.range(-1, 1)),
      BigInt(MAX_DATA_LENGTH) + BigInt(rng.range(-1, 2)),
      (1n << 31n) + BigInt(rng.range(-1, 1)),
      (1n << 32n) + BigInt(rng.range(-1, 1)),
      (1n << 53n) + BigInt(rng.range(-1, 1)),
      10n ** 15n - 1n,
      10n ** 15n,
      10n ** 16n,
      (1n << 63n) - 1n,
      (1n << 64n) + 7n,
      -2n,
      -(1n << 31n),
    ]);
  } else {
    const max = (1n << BigInt(8 * field.width)) - 1n;
    value = rng.pick([max, max - 1n, max - 23n, limit, limit + 1n, limit - 1n, 0n]);
    if (value > max || value < 0n) value = max;
  }
  return setLength(c, field, value, `huge=${value}@${field.at}`);
}

/** Random bytes, or a random mix of protocol words and digits. */
export function garbage(target: FuzzTarget, rng: Prng): FuzzCase {
  const n = rng.chance(0.9) ? rng.int(64) : rng.int(2048);
  let bytes: Uint8Array;
  if (rng.chance(0.4)) {
    bytes = rng.bytes(n);
    if (n > 0 && rng.chance(0.5)) {
      // Start like a real frame so decoders get past their first check.
      bytes[0] = rng.pick([0x2a, 0x24, 0x2b, 0x3a, 0x2d, 0x80, 0x81, 0x67, 0x56]);
    }
  } else {
    const words = [
      ..._INSERTS,
      ..."*$+-:0123456789 ".split("").map(ascii),
      ...[
        "VALUE ",
        "END",
        "VA ",
        "HD",
        "get ",
        "set ",
        "ms ",
        "mg ",
        "-1",
        "\r\n",
        "\x80\x00\x00",
        "\x81\x0a",
      ].map(ascii),
    ];
    const parts: Uint8Array[] = [];
    let size = 0;
    while (size < n) {
      const word = rng.pick(words);
      parts.push(word);
      size += word.length;
    }
    bytes = concat(parts);
  }
  const kinds: MemcacheReplyKind[] = [rng.pick(["retrieval", "line", "meta"] as const)];
  return {
    target,
    bytes,
    expected: null,
    partial: false,
    kinds,
    lengths: [],
    label: `garbage${bytes.length}`,
  };
}

/**
 * Arrays nested deeply. Replies: any depth redis-server can send must frame as one reply
 * (a Lua table that holds itself comes back ~8000 arrays deep, cut with an error), so the
 * depths cover shallow, redis-server's own and far past it, and the case expects exactly
 * one frame of its whole size. Requests never nest: they are refused (no expectation).
 */
export function deepNesting(target: FuzzTarget, rng: Prng): FuzzCase {
  const band = rng.int(10);
  const depth = band < 6
    ? rng.range(1, 300)
    : band < 9
    ? rng.range(7980, 8010)
    : rng.range(8010, 40_000);
  const open = target === "resp-request" ? "*1\r\n" : rng.pick(["*1\r\n", "*2\r\n", "*3\r\n"]);
  const parts = [ascii(open.repeat(depth))];
  const leaf = rng.pick([
    "$1\r\nx\r\n",
    ":1\r\n",
    "+OK\r\n",
    "*0\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "-ERR reached lua stack limit\r\n",
  ]);
  parts.push(ascii(leaf.repeat(open === "*1\r\n" ? 1 : (Number(open[1]) - 1) * depth + 1)));
  const bytes = concat(parts);
  return {
    target,
    bytes,
    expected: target === "resp-reply" ? [{ type: "frame", size: bytes.length }] : null,
    partial: false,
    kinds: ["line"],
    lengths: [],
    label: `nested${depth}x${open.trim()}`,
  };
}

/**
 * A frame holding a line at the edge of a line limit: RESP inline and status lines (64 KB),
 * memcached command lines (2048) and multiget lines (64 KB), reply lines (8 KB).
 */
export function longLine(target: FuzzTarget, rng: Prng): FuzzCase {
  const around = (limit: number) =>
    limit + (rng.chance(0.8) ? rng.range(-2, 2) : rng.range(3, limit >> 3));
  let bytes: Uint8Array;
  let kinds: MemcacheReplyKind[] = ["line"];
  const eol = rng.pick(["\r\n", "\n", ""]);
  switch (target) {
    case "resp-request": {
      const form = rng.int(3);
      if (form === 0) bytes = ascii("GET " + "k".repeat(around(MAX_INLINE_LENGTH) - 4) + eol);
      else if (form === 1) bytes = ascii("*" + "1".repeat(around(MAX_INLINE_LENGTH)) + eol);
      else bytes = ascii("*1\r\n$" + "0".repeat(around(MAX_INLINE_LENGTH)) + eol);
      break;
    }
    case "resp-reply":
      bytes = ascii(rng.pick(["+", "-", ":"]) + "x".repeat(around(65536) - 1) + eol);
      break;
    case "memcache-text-request":
      bytes = rng.chance(0.5)
        ? ascii(rng.pick(["get ", "mg k "]) + "v".repeat(around(2048) - 6) + " x" + eol)
        : ascii(" ".repeat(rng.range(0, 101)) + "get" + " k".repeat(around(65536) >> 1) + eol);
      break;
    case "memcache-text-reply":
      kinds = [rng.pick(["retrieval", "line", "meta"] as const)];
      bytes = ascii(
        rng.pick(["VALUE k 0 1 ", "SERVER_ERROR ", "VA 1 ", "ME k "]) +
          "9".repeat(around(8192) - 13) + eol,
      );
      break;
    default:
      return garbage(target, rng);
  }
  return {
    target,
    bytes,
    expected: null,
    partial: false,
    kinds,
    lengths: [],
    label: `longline${bytes.length}`,
  };
}

/**
 * The input number `rng` was seeded for: 45% valid pipelines, 10% valid pipelines cut short,
 * the rest mutated (one or two mutations) or made up.
 */
export function generateCase(target: FuzzTarget, rng: Prng): FuzzCase {
  const roll = rng.int(100);
  const base = validCase(target, rng, _pipelineLength(rng));
  if (roll < 45) return base;
  if (roll < 55) return cut(base, rng.int(base.bytes.length + 1));
  let c: FuzzCase;
  const m = rng.int(100);
  if (m < 10) c = splice(base, validCase(target, rng, _pipelineLength(rng)), rng);
  else if (m < 25) c = flipBits(base, rng);
  else if (m < 35) c = insertBytes(base, rng);
  else if (m < 45) c = deleteBytes(base, rng);
  else if (m < 50) {
    c = target.includes("text") && rng.chance(0.6)
      ? repeatToken(base, rng)
      : duplicateSlice(base, rng);
  } else if (m < 65) c = lengthOffByOne(base, rng);
  else if (m < 77) c = hugeLength(base, rng);
  else if (m < 89) c = garbage(target, rng);
  else if (m < 95) {
    c = target.startsWith("resp") ? deepNesting(target, rng) : lengthOffByOne(base, rng);
  } else if (m < 96) c = longLine(target, rng);
  else c = cut(hugeLength(base, rng), rng.int(base.bytes.length + 1));
  if (rng.chance(0.25)) {
    const again = rng.int(4);
    c = again === 0
      ? flipBits(c, rng)
      : again === 1
      ? insertBytes(c, rng)
      : again === 2
      ? deleteBytes(c, rng)
      : lengthOffByOne(c, rng);
  }
  return c;
}
