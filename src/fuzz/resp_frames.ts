/**
 * Valid RESP frames for the fuzzer: requests (multibulk, or inline as redis-cli and telnet
 * send them) and RESP2 and RESP3 replies, each with the results its decoder must give and the offsets
 * of its length fields.
 */
import {
  encodeBulk,
  encodeCommand,
  encodeError,
  encodeInteger,
  encodeSimple,
  NULL_BULK_REPLY,
} from "../protocol/resp/encoder.ts";
import { MAX_ARGUMENTS, MAX_BULK_LENGTH, MAX_INLINE_LENGTH } from "../protocol/resp/bytes.ts";
import {
  ascii,
  BACKSLASH,
  concat,
  CR,
  DQUOTE,
  LF,
  payloadBytes,
  payloadSize,
  PRINTABLE,
  printableText,
  SPACE,
  SQUOTE,
  STAR,
  TAB,
  TextFrame,
} from "./fuzz_bytes.ts";
import type { Frame, LengthField } from "./fuzz_types.ts";
import type { Prng } from "./prng.ts";

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
      argv.push(payloadBytes(rng, rng.range(MAX_INLINE_LENGTH - 2, MAX_INLINE_LENGTH + 4000)));
    } else {argv.push(
        payloadBytes(rng, argc > 32 ? rng.int(16) : argc > 4 ? rng.int(64) : payloadSize(rng)),
      );}
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
  const line = new TextFrame();
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
          byte = rng.chance(0.9) ? PRINTABLE[rng.int(PRINTABLE.length)] : rng.range(0x80, 0xff);
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
      const value = payloadBytes(rng, rng.int(24));
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

interface _Piece {
  bytes: Uint8Array;
  lengths: LengthField[];
}

const INT64_MAX = (1n << 63n) - 1n;

/**
 * A valid reply: RESP2's statuses, errors, 64-bit integers, bulks, nulls, nested arrays,
 * and RESP3's types (nulls, doubles, booleans, big numbers, blob errors, verbatim strings,
 * maps, sets, pushes, attributes before a value) mixed in.
 */
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
  if (rng.chance(0.25)) return _resp3Reply(rng, depth, maxDepth);
  const r = rng.int(100);
  if (r < 15 && depth < maxDepth) {
    const count = rng.chance(0.1) ? 0 : rng.range(1, depth === 0 ? 12 : 5);
    return _aggregate(STAR, count, count, rng, depth, maxDepth);
  }
  if (r < 17) return { bytes: ascii("*-1\r\n"), lengths: [] };
  if (r < 22) return { bytes: NULL_BULK_REPLY, lengths: [] };
  if (r < 40) {
    // A status line; very rarely longer than 64 KB (Lua's redis.status_reply can do it).
    const text = rng.chance(0.0002) ? "x".repeat(rng.range(65530, 80000)) : printableText(rng, 40);
    return { bytes: encodeSimple(text), lengths: [] };
  }
  if (r < 48) {
    const prefix = rng.pick(["ERR ", "WRONGTYPE ", "MOVED 3999 127.0.0.1:6381", "ASK 1 h:1", ""]);
    return { bytes: encodeError(prefix + printableText(rng, 30)), lengths: [] };
  }
  if (r < 68) return { bytes: _integer(rng), lengths: [] };
  const body = payloadBytes(rng, payloadSize(rng));
  return {
    bytes: encodeBulk(body),
    lengths: [
      { at: 1, width: String(body.length).length, format: "decimal", limit: MAX_BULK_LENGTH },
    ],
  };
}

/** An aggregate of type `type`, `count` in its header, `values` values after it. */
function _aggregate(
  type: number,
  count: number,
  values: number,
  rng: Prng,
  depth: number,
  maxDepth: number,
): _Piece {
  const children: _Piece[] = [];
  for (let i = 0; i < values; i++) children.push(_reply(rng, depth + 1, maxDepth));
  const header = String(count).length + 3;
  const bytes = concat([
    ascii(`${String.fromCharCode(type)}${count}\r\n`),
    ...children.map((c) => c.bytes),
  ]);
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

/** A RESP3 value (what a backend sends after HELLO 3). */
function _resp3Reply(rng: Prng, depth: number, maxDepth: number): _Piece {
  const r = rng.int(100);
  if (r < 24 && depth < maxDepth) {
    const count = rng.chance(0.1) ? 0 : rng.range(1, 4);
    // Map (pairs), set, push, attribute (pairs, then the value it describes).
    if (r < 8) return _aggregate(0x25, count, 2 * count, rng, depth, maxDepth);
    if (r < 14) return _aggregate(0x7e, count, count, rng, depth, maxDepth);
    if (r < 17) return _aggregate(0x3e, count, count, rng, depth, maxDepth);
    return _aggregate(0x7c, count, 2 * count + 1, rng, depth, maxDepth);
  }
  if (r < 34) return { bytes: ascii("_\r\n"), lengths: [] };
  if (r < 44) return { bytes: ascii(rng.chance(0.5) ? "#t\r\n" : "#f\r\n"), lengths: [] };
  if (r < 58) {
    const text = rng.pick([
      "inf",
      "-inf",
      "nan",
      String(rng.range(-1000, 1000) / 8),
      `${rng.range(1, 9)}.${rng.range(0, 999)}e${rng.pick(["+", "-"])}${rng.range(1, 300)}`,
    ]);
    return { bytes: ascii(`,${text}\r\n`), lengths: [] };
  }
  if (r < 68) {
    const digits = Array.from({ length: rng.range(1, 60) }, () => rng.int(10)).join("");
    return { bytes: ascii(`(${rng.chance(0.3) ? "-" : ""}${digits}\r\n`), lengths: [] };
  }
  // A verbatim string ("txt:" and the text) or a blob error, framed like a bulk.
  const verbatim = r < 88;
  const body = verbatim
    ? concat([ascii(rng.pick(["txt:", "mkd:"])), payloadBytes(rng, payloadSize(rng))])
    : ascii("ERR " + printableText(rng, 40));
  const bulk = encodeBulk(body);
  bulk[0] = verbatim ? 0x3d /* "=" */ : 0x21 /* "!" */;
  return {
    bytes: bulk,
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
