/**
 * Mutators of the fuzzer: cuts, splices, bit flips, byte inserts and deletes, repeated
 * tokens, length fields off by one or pushed near and past the limits, and made-up inputs
 * (garbage, deep nesting, lines at a line limit). A mutated case expects nothing, except a
 * cut (the whole frames before it) and deep RESP reply nesting (one frame).
 */
import { MAX_ARGUMENTS, MAX_BULK_LENGTH, MAX_INLINE_LENGTH } from "../protocol/resp/bytes.ts";
import { MAX_DATA_LENGTH } from "../protocol/bytes.ts";
import type { MemcacheReplyKind } from "../protocol/memcache_text/text_reply.ts";
import { ascii, concat, CR, LF, SPACE } from "./fuzz_bytes.ts";
import type { Expected, FuzzCase, FuzzTarget, LengthField } from "./fuzz_types.ts";
import type { Prng } from "./prng.ts";

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
