/**
 * Valid memcached text frames for the fuzzer: requests (classic, meta, admin, and lines
 * memcached refuses while keeping the framing) and replies, each with the results its
 * decoder must give and the offsets of its length fields.
 */
import { DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LENGTH } from "../protocol/bytes.ts";
import { ascii, memcacheKey, payloadBytes, payloadSize, TextFrame } from "./fuzz_bytes.ts";
import type { Expected, Frame } from "./fuzz_types.ts";
import type { Prng } from "./prng.ts";

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
  const t = new TextFrame();
  if (r < 30) {
    // Storage: set/add/replace/append/prepend/cas <key> <flags> <exptime> <bytes> ...
    const cas = rng.chance(0.15);
    const command = cas ? "cas" : rng.pick(_STORAGE);
    const key = memcacheKey(rng);
    const huge = rng.chance(0.0003);
    const length = huge ? DEFAULT_MAX_VALUE_BYTES + rng.range(-1, 1) : payloadSize(rng);
    const data = payloadBytes(rng, length);
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
      const key = i > 0 && rng.chance(0.1) ? keys[rng.int(keys.length)] : memcacheKey(rng);
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
    const key = memcacheKey(rng);
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
    const key = memcacheKey(rng);
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
      : memcacheKey(rng);
    const flags = _flags(rng, _META_FLAGS, command !== "me");
    // me reads a `b` only as its first flag, as memcached does; the others anywhere.
    if (base64) flags.splice(command === "me" ? 0 : rng.int(flags.length + 1), 0, "b");
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
    const key = memcacheKey(rng);
    const length = rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : payloadSize(rng);
    const data = payloadBytes(rng, length);
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
  const length = payloadSize(rng);
  if (rng.chance(0.3)) {
    t.add("ms " + "k".repeat(MAX_KEY_LENGTH + 1) + " ").length(length, DEFAULT_MAX_VALUE_BYTES);
    t.add(rng.pick(["", " T0", " q", " b F1"]) + _eol(rng));
    const lineSize = t.size;
    t.add(payloadBytes(rng, length)).add("\r\n");
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
  t.add(payloadBytes(rng, length)).add("\r\n");
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
  const t = new TextFrame();
  if (r === 0) {
    const blocks = rng.chance(0.2) ? 0 : rng.range(1, rng.chance(0.9) ? 4 : 40);
    for (let i = 0; i < blocks; i++) {
      const length = rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : payloadSize(rng);
      t.add("VALUE ").add(memcacheKey(rng)).add(` ${_uint(rng)} `);
      t.length(length, DEFAULT_MAX_VALUE_BYTES);
      if (rng.chance(0.3)) t.add(" " + _uint(rng));
      t.add("\r\n").add(payloadBytes(rng, length)).add("\r\n");
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
    const length = rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : payloadSize(rng);
    t.add("VA ").length(length, DEFAULT_MAX_VALUE_BYTES);
    for (const flag of _flags(rng, ["t30", "c123", "f0", "s5", "k", "Oabc", "W", "Z"], false)) {
      t.add(" " + flag);
    }
    t.add("\r\n").add(payloadBytes(rng, length)).add("\r\n");
  } else if (form < 8) {
    t.add(rng.pick(_META_LINES) + "\r\n");
  } else if (form < 9) {
    t.add("ME ").add(memcacheKey(rng)).add(" exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n");
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
