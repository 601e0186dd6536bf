import assert from "node:assert/strict";
import {
  buildRetrieval,
  MAX_LINE_BYTES,
  MemcacheTextDecoder,
  type MemcacheTextDecoderOptions,
  type MemcacheTextRequest,
  withoutNoreply,
} from "./text_request.ts";
import { ProtocolError } from "../protocol_error.ts";
import { everySplit, replayChunks } from "../replay_chunks.ts";

const latin1 = new TextDecoder("latin1");
const str = (bytes: Uint8Array) => latin1.decode(bytes);
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

interface Decoded {
  /** Compact description of each result; consecutive skips are merged. */
  out: string[];
  /** Raw bytes of each result (requests and errors), as the input held them. */
  raw: string[];
  /** The ProtocolError that stopped decoding, if any. */
  error: ProtocolError | null;
}

function describe(req: MemcacheTextRequest, raw: Uint8Array): string {
  let text = `${req.command} [${req.keys.map(str).join(" ")}]`;
  if (req.exptime !== null) text += ` exptime=${str(req.exptime)}`;
  if (req.args.length > 0) text += ` args=${req.args.map(str).join(",")}`;
  if (req.noreply) text += " noreply";
  if (req.base64Key) text += " b64";
  if (req.dataStart >= 0) {
    text += ` data=${
      JSON.stringify(str(raw.subarray(req.dataStart, req.dataStart + req.dataLength)))
    }`;
  }
  return text;
}

/** Feeds `input` in pieces ending at `cuts` like a session: append, decode all, compact. */
function decodeAll(
  input: Uint8Array,
  cuts: number[],
  opts?: MemcacheTextDecoderOptions,
): Decoded {
  const decoder = new MemcacheTextDecoder(opts);
  const result: Decoded = { out: [], raw: [], error: null };
  let lastSkip = false;
  try {
    const left = replayChunks(input, cuts, (buf, start, end) => {
      let at = start;
      for (;;) {
        const r = decoder.decode(buf, at, end);
        if (r === null) return at - start;
        assert.ok(r.size > 0, "progress");
        const raw = buf.subarray(at, at + r.size);
        at += r.size;
        if (r.kind === "skip") {
          if (lastSkip) {
            const total = Number(result.out.pop()!.slice(5)) + r.size;
            result.out.push(`skip ${total}`);
          } else result.out.push(`skip ${r.size}`);
          lastSkip = true;
          continue;
        }
        lastSkip = false;
        result.raw.push(str(raw));
        if (r.kind === "error") {
          result.out.push(`! ${r.command ?? "?"}: ${r.error}${r.noreply ? " (noreply)" : ""}`);
        } else {
          for (const key of r.keys) assert.equal(key.buffer, buf.buffer, "keys are views");
          result.out.push(describe(r, raw));
        }
      }
    });
    assert.equal(left, 0, "every byte consumed");
    assert.equal(decoder.pendingSkip, 0);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    result.error = err;
  }
  return result;
}

/** Decodes `input` cut once at every position, and byte by byte; all runs must agree. */
function decodeEverySplit(input: Uint8Array, opts?: MemcacheTextDecoderOptions): Decoded {
  const whole = decodeAll(input, [], opts);
  for (const { cuts, label } of everySplit(input.length)) {
    const got = decodeAll(input, cuts, opts);
    assert.deepEqual(got.out, whole.out, label);
    assert.deepEqual(got.raw, whole.raw, label);
    assert.equal(got.error?.message, whole.error?.message, label);
  }
  return whole;
}

const requests: [string, string][] = [
  ["set k 0 0 5\r\nhello\r\n", 'set [k] data="hello"'],
  ["add  k  1 2 3 noreply\r\nabc\r\n", 'add [k] noreply data="abc"'],
  ["replace k 0 0 0\r\n\r\n", 'replace [k] data=""'],
  ["append k 0 0 2\r\n\r\n\r\n", 'append [k] data="\\r\\n"'],
  ["prepend k 0 0 1 noreply\nx\r\n", 'prepend [k] noreply data="x"'],
  ["set k 0 0 1 other\r\nx\r\n", 'set [k] data="x"'],
  ["set k 4294967296 -1 +1\r\nx\r\n", 'set [k] data="x"'],
  ["cas k 0 0 1 99\r\nx\r\n", 'cas [k] data="x"'],
  ["cas k 0 0 1 18446744073709551615 noreply\r\nx\r\n", 'cas [k] noreply data="x"'],
  ["get a\r\n", "get [a]"],
  ["gets a bb ccc a\n", "gets [a bb ccc a]"],
  ["gat 100 a b\r\n", "gat [a b] exptime=100"],
  ["gats -1 a \r\n", "gats [a] exptime=-1"],
  ["delete k\r\n", "delete [k]"],
  ["delete k 0\r\n", "delete [k]"],
  ["delete k noreply\r\n", "delete [k] noreply"],
  ["delete k 0 noreply\r\n", "delete [k] noreply"],
  ["incr n 5\r\n", "incr [n]"],
  ["decr n 18446744073709551615 noreply\r\n", "decr [n] noreply"],
  ["touch k 10\r\n", "touch [k]"],
  ["touch k 10 noreply\r\n", "touch [k] noreply"],
  ["mg k v t q\r\n", "mg [k] noreply"],
  ["mg aw== b v\r\n", "mg [aw==] b64"],
  ["ms k 3 T0 q b\r\nabc\r\n", 'ms [k] noreply b64 data="abc"'],
  ["ms k 2\r\n\r\n\r\n", 'ms [k] data="\\r\\n"'],
  // 16 flags: 19 tokens, the most memcached reads in a meta request.
  [`ms k 3 ${Array(16).fill("T1").join(" ")}\r\nabc\r\n`, 'ms [k] data="abc"'],
  ["md k q\r\n", "md [k] noreply"],
  ["ma k D2\r\n", "ma [k]"],
  ["mn\r\n", "mn []"],
  ["me k\r\n", "me [k]"],
  ["version\r\n", "version []"],
  ["verbosity 1 noreply\r\n", "verbosity [] args=1 noreply"],
  ["flush_all 0\r\n", "flush_all [] args=0"],
  ["stats slabs\r\n", "stats [] args=slabs"],
  ["quit\r\n", "quit []"],
];

Deno.test("decode() frames every request type at every chunk split", () => {
  const input = bytes(requests.map(([text]) => text).join(""));
  const got = decodeEverySplit(input);
  assert.equal(got.error, null);
  assert.deepEqual(got.out, requests.map(([, expected]) => expected));
  assert.deepEqual(got.raw, requests.map(([text]) => text));
});

Deno.test("decode() frames each request alone at every chunk split", () => {
  for (const [text, expected] of requests) {
    const got = decodeEverySplit(bytes(text));
    assert.deepEqual(got.out, [expected], text);
  }
});

Deno.test("decode() keeps binary data blocks intact", () => {
  const value = Uint8Array.from({ length: 256 }, (_, i) => i);
  const head = bytes("set bin 0 0 256\r\n");
  const input = new Uint8Array([...head, ...value, 13, 10]);
  const req = new MemcacheTextDecoder().decode(input, 0, input.length);
  assert.ok(req?.kind === "request");
  assert.equal(req.size, input.length);
  assert.deepEqual(input.subarray(req.dataStart, req.dataStart + req.dataLength), value);
});

Deno.test("decode() answers unknown and malformed commands and keeps framing", () => {
  const cases: [string, string][] = [
    ["bogus\r\n", "! ?: ERROR"],
    ["\r\n", "! ?: ERROR"],
    ["   \n", "! ?: ERROR"],
    ["GET k\r\n", "! ?: ERROR"],
    ["get\r\n", "! get: ERROR"],
    ["gat 10\r\n", "! gat: END"],
    ["gats -1\r\n", "! gats: END"],
    ["gat x\r\n", "! gat: CLIENT_ERROR invalid exptime argument"],
    ["set k 0 0\r\n", "! set: ERROR"],
    ["set k 0 0 1 noreply x\r\n", "! set: ERROR"],
    ["cas k 0 0 1\r\n", "! cas: ERROR"],
    ["incr\r\n", "! incr: ERROR"],
    ["touch k\r\n", "! touch: ERROR"],
    ["delete\r\n", "! delete: ERROR"],
    ["delete k 0 noreply x\r\n", "! delete: ERROR"],
    ["mg\r\n", "! mg: ERROR"],
    ["ms\r\n", "! ms: ERROR"],
    ["me\r\n", "! me: CLIENT_ERROR bad command line format"],
    ["ms k\r\n", "! ms: CLIENT_ERROR bad command line format"],
    [`get a ${"k".repeat(251)}\r\n`, "! get: CLIENT_ERROR bad command line format"],
    ["gat x k\r\n", "! gat: CLIENT_ERROR invalid exptime argument"],
    [`mg ${"k".repeat(251)} v\r\n`, "! mg: CLIENT_ERROR bad command line format"],
    [`delete ${"k".repeat(251)}\r\n`, "! delete: CLIENT_ERROR bad command line format"],
    [
      "delete k 1\r\n",
      "! delete: CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
    ],
    [
      "delete k x noreply\r\n",
      "! delete: CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]" +
      " (noreply)",
    ],
    ["incr k x\r\n", "! incr: CLIENT_ERROR invalid numeric delta argument"],
    ["decr k -1\r\n", "! decr: CLIENT_ERROR invalid numeric delta argument"],
    ["incr k 18446744073709551616\r\n", "! incr: CLIENT_ERROR invalid numeric delta argument"],
    ["touch k x noreply\r\n", "! touch: CLIENT_ERROR invalid exptime argument (noreply)"],
    [`touch ${"k".repeat(251)} 1\r\n`, "! touch: CLIENT_ERROR bad command line format"],
  ];
  for (const [text, expected] of cases) {
    // Each refused line is followed by a good request: framing continues.
    const got = decodeEverySplit(bytes(text + "get z\r\n"));
    assert.equal(got.error, null, text);
    assert.deepEqual(got.out, [expected, "get [z]"], text);
    assert.deepEqual(got.raw, [text, "get z\r\n"], text);
  }
});

Deno.test("decode() refuses a bad storage header and discards its data block", () => {
  const cases: [string, string][] = [
    [`set ${"k".repeat(251)} 0 0 5\r\n`, "! set: CLIENT_ERROR bad command line format"],
    ["set k abc 0 5 noreply\r\n", "! set: CLIENT_ERROR bad command line format (noreply)"],
    ["set k -1 0 5\r\n", "! set: CLIENT_ERROR bad command line format"],
    ["set k 18446744073709551616 0 5\r\n", "! set: CLIENT_ERROR bad command line format"],
    ["add k 0 9223372036854775808 5\r\n", "! add: CLIENT_ERROR bad command line format"],
    ["cas k 0 0 5 x\r\n", "! cas: CLIENT_ERROR bad command line format"],
    [`ms ${"k".repeat(251)} 5 q\r\n`, "! ms: CLIENT_ERROR bad command line format"],
    // memcached reads 19 tokens of a meta request; it would answer these twice (the data
    // line as a command), so Aster answers them.
    [`ms k 5 ${Array(17).fill("T1").join(" ")}\r\n`, "! ms: CLIENT_ERROR options flags too long"],
    [`ms k 5 q ${Array(30).fill("F0").join(" ")}\r\n`, "! ms: CLIENT_ERROR options flags too long"],
  ];
  for (const [line, expected] of cases) {
    const got = decodeEverySplit(bytes(line + "hello\r\nget z\r\n"));
    assert.equal(got.error, null, line);
    assert.deepEqual(got.out, [expected, "skip 7", "get [z]"], line);
  }
});

Deno.test("decode() refuses an oversize value and discards it as it arrives", () => {
  const opts = { maxValueBytes: 8 };
  const cases: [string, string][] = [
    ["set k 0 0 9\r\n", "! set: SERVER_ERROR object too large for cache"],
    ["set k 0 0 9 noreply\r\n", "! set: SERVER_ERROR object too large for cache (noreply)"],
    ["cas k 0 0 9 1\r\n", "! cas: SERVER_ERROR object too large for cache"],
    // Meta errors are answered even in quiet mode.
    ["ms k 9 q\r\n", "! ms: SERVER_ERROR object too large for cache"],
  ];
  for (const [line, expected] of cases) {
    const got = decodeEverySplit(bytes(line + "123456789\r\nget z\r\n"), opts);
    assert.deepEqual(got.out, [expected, "skip 11", "get [z]"], line);
  }
  // At the limit: accepted.
  const at = decodeEverySplit(bytes("set k 0 0 8\r\n12345678\r\n"), opts);
  assert.deepEqual(at.out, ['set [k] data="12345678"']);
});

Deno.test("decode() answers an oversize value at once, before any of its data arrives", () => {
  const decoder = new MemcacheTextDecoder({ maxValueBytes: 1024 });
  const line = bytes("set k 0 0 1000000000\r\n");
  const r = decoder.decode(line, 0, line.length);
  assert.ok(r?.kind === "error");
  assert.equal(r.error, "SERVER_ERROR object too large for cache");
  assert.equal(r.size, line.length);
  assert.equal(decoder.pendingSkip, 1000000002);
  // The data is discarded chunk by chunk; nothing is buffered.
  const chunk = new Uint8Array(64 * 1024);
  assert.deepEqual(decoder.decode(chunk, 0, chunk.length), { kind: "skip", size: chunk.length });
  assert.equal(decoder.decode(chunk, 0, 0), null);
  assert.equal(decoder.pendingSkip, 1000000002 - chunk.length);
});

function assertFramingLost(text: string, pattern: RegExp, opts?: MemcacheTextDecoderOptions) {
  const got = decodeEverySplit(bytes(text), opts);
  assert.ok(got.error !== null, `expected a ProtocolError for ${JSON.stringify(text)}`);
  assert.match(got.error.message, pattern);
  return got;
}

Deno.test("decode() throws when framing is lost", () => {
  assertFramingLost("set k 0 0 abc\r\nhello\r\n", /bad command line format/);
  assertFramingLost("set k 0 0 -1\r\nhello\r\n", /bad command line format/);
  assertFramingLost("set k 0 0 noreply\r\nhello\r\n", /bad command line format/);
  assertFramingLost("set k 0 0 2147483646\r\n", /bad command line format/);
  assertFramingLost("ms k -1\r\nhello\r\n", /bad command line format/);
  assertFramingLost("ms k x q\r\nhello\r\n", /bad command line format/);
  assertFramingLost("set k 0 0 3\r\nabcde\r\n", /bad data chunk/);
  assertFramingLost("set k 0 0 3\r\nabc\nget k\r\n", /bad data chunk/);
  assertFramingLost("ms k 1\r\nab\r\n", /bad data chunk/);
  // Requests before the bad one are still delivered.
  const got = assertFramingLost("get a\r\nset k 0 0 1\r\nxx\r\n", /bad data chunk/);
  assert.deepEqual(got.out, ["get [a]"]);
});

Deno.test("decode() limits command lines to 2048 bytes, retrieval lines to max_multiget_line", () => {
  const long = "x".repeat(MAX_LINE_BYTES + 1);
  assertFramingLost(long, /line too long/); // no newline yet
  assertFramingLost(long + "\r\n", /line too long/);
  assertFramingLost(`set k 0 0 1${" ".repeat(MAX_LINE_BYTES)}\r\nx\r\n`, /line too long/);
  // 2048 bytes before "\n" is still a line (an unknown command here).
  const atLimit = decodeEverySplit(bytes("x".repeat(MAX_LINE_BYTES - 1) + "\r\n"));
  assert.deepEqual(atLimit.out, ["! ?: ERROR"]);

  // Multigets may be longer, as memcached allows; gat/gats too.
  const keys = Array.from({ length: 500 }, (_, i) => `key:${i}`);
  for (const head of ["get", "gets", "  gat 0", "gats 0"]) {
    const line = `${head} ${keys.join(" ")}\r\n`;
    assert.ok(line.length > MAX_LINE_BYTES);
    const r = new MemcacheTextDecoder().decode(bytes(line), 0, line.length);
    assert.ok(r?.kind === "request", head);
    assert.equal(r.keys.length, 500);
    assert.equal(str(r.keys[499]), "key:499");
  }
  const small = { maxRetrievalLineBytes: 4096 };
  const got = decodeEverySplit(bytes(`get ${"k ".repeat(2000)}\r\n`), small);
  assert.equal(got.out[0].slice(0, 9), "get [k k ");
  assertFramingLost(`get ${"k ".repeat(2100)}\r\n`, /line too long/, small);
  assertFramingLost(`get ${"k ".repeat(2100)}`, /line too long/, small);
  // More than 100 leading spaces: not recognized as a multiget (memcached's rule).
  assertFramingLost(" ".repeat(101) + `get ${"k ".repeat(1500)}\r\n`, /line too long/);
  assertFramingLost(`set ${"k ".repeat(1500)}\r\n`, /line too long/);
});

Deno.test("buildRetrieval() encodes a sub-request for a subset of keys", () => {
  const decoder = new MemcacheTextDecoder();
  const input = bytes("gats 300 a bb ccc\r\nget a bb\r\n");
  const gats = decoder.decode(input, 0, input.length);
  assert.ok(gats?.kind === "request");
  assert.equal(str(buildRetrieval(gats, [gats.keys[0], gats.keys[2]])), "gats 300 a ccc\r\n");
  const get = decoder.decode(input, gats.size, input.length);
  assert.ok(get?.kind === "request");
  assert.equal(str(buildRetrieval(get, [get.keys[1]])), "get bb\r\n");
  assert.equal(str(buildRetrieval({ command: "gets", exptime: null }, [bytes("x")])), "gets x\r\n");
  // The result decodes back to the same request shape.
  const encoded = buildRetrieval(gats, gats.keys);
  const again = new MemcacheTextDecoder().decode(encoded, 0, encoded.length);
  assert.ok(again?.kind === "request");
  assert.deepEqual(again.keys.map(str), ["a", "bb", "ccc"]);
  assert.throws(() => buildRetrieval({ command: "set", exptime: null }, [bytes("x")]), TypeError);
  assert.throws(() => buildRetrieval({ command: "gat", exptime: null }, [bytes("x")]), TypeError);
  assert.throws(() => buildRetrieval({ command: "get", exptime: null }, []), TypeError);
});

Deno.test("withoutNoreply() drops the noreply token or q flag and nothing else", () => {
  const cases: [string, string][] = [
    ["set k 0 0 2 noreply\r\nab\r\n", "set k 0 0 2\r\nab\r\n"],
    ["cas k 0 0 2 7 noreply \r\nab\r\n", "cas k 0 0 2 7 \r\nab\r\n"],
    ["delete k 0 noreply\r\n", "delete k 0\r\n"],
    ["incr k 1 noreply\n", "incr k 1\n"],
    ["touch k 1  noreply\r\n", "touch k 1 \r\n"],
    ["flush_all 10 noreply\r\n", "flush_all 10\r\n"],
    ["mg k q v\r\n", "mg k v\r\n"],
    ["ms k 2 T1 q\r\nab\r\n", "ms k 2 T1\r\nab\r\n"],
    ["md k q\r\n", "md k\r\n"],
    ["get k\r\n", "get k\r\n"],
    ["set k 0 0 2\r\nab\r\n", "set k 0 0 2\r\nab\r\n"],
  ];
  for (const [text, expected] of cases) {
    const input = bytes(text);
    const req = new MemcacheTextDecoder().decode(input, 0, input.length);
    assert.ok(req?.kind === "request", text);
    assert.equal(str(withoutNoreply(input.subarray(0, req.size), req)), expected);
    const stripped = new MemcacheTextDecoder().decode(bytes(expected), 0, expected.length);
    assert.ok(stripped?.kind === "request" && !stripped.noreply, expected);
  }
});

Deno.test("decode() reports offsets relative to the request start", () => {
  const input = bytes("get a\r\nset k 0 0 2 noreply\r\nab\r\n");
  const decoder = new MemcacheTextDecoder();
  const first = decoder.decode(input, 0, input.length);
  assert.ok(first?.kind === "request");
  const set = decoder.decode(input, first.size, input.length);
  assert.ok(set?.kind === "request");
  assert.equal(set.dataStart, "set k 0 0 2 noreply\r\n".length);
  assert.equal(set.dataLength, 2);
  assert.equal(set.noreplyAt, "set k 0 0 2".length);
  assert.equal(set.noreplyLength, " noreply".length);
  assert.equal(set.size, input.length - first.size);
  assert.equal(first.dataStart, -1);
  assert.equal(first.dataLength, -1);
});

Deno.test("meta flags are read by their first letter, like memcached: a repeated q is refused", () => {
  const cases = [
    ["mg k q q\r\n", "CLIENT_ERROR duplicate flag"],
    ["md k q\r q\r\n", "CLIENT_ERROR invalid or duplicate flag"],
    ["ma k q qq\r\n", "CLIENT_ERROR invalid or duplicate flag"],
    ["ms k 1 q qq\r\nx\r\n", "CLIENT_ERROR duplicate flag"],
  ];
  for (const [line, error] of cases) {
    const raw = bytes(line);
    const decoded = new MemcacheTextDecoder().decode(raw, 0, raw.length);
    assert.equal(decoded?.kind, "error", line);
    assert.equal(decoded?.kind === "error" && decoded.error, error);
  }
  // me reads no flags: forwarded whatever they are.
  const me = bytes("me k q q\r\n");
  assert.equal(new MemcacheTextDecoder().decode(me, 0, me.length)?.kind, "request");
  const quiet = bytes("mg k v q\r\n");
  const decoded = new MemcacheTextDecoder().decode(quiet, 0, quiet.length);
  assert.ok(decoded?.kind === "request" && decoded.noreply);
});

Deno.test("decode() takes any key byte memcached 1.6 takes, and ends a line at a NUL", () => {
  const cases: [string, string][] = [
    // Control bytes, DEL, 8-bit bytes and a "\r" not before the "\n" are key bytes there.
    ["get k\x01 \x10\x7f \xff\xfe\r\n", "get [k\x01 \x10\x7f \xff\xfe]"],
    ["gets k\r\r\n", "gets [k\r]"],
    ["get \t\x0b\x0c\r\n", "get [\t\x0b\x0c]"],
    ["set k\x01 0 0 1\r\nv\r\n", 'set [k\x01] data="v"'],
    ["mg \x1b[0m v\r\n", "mg [\x1b[0m]"],
    ["delete k\x7f noreply\r\n", "delete [k\x7f] noreply"],
    // memcached reads the line as a C string: what follows a NUL is not seen.
    ["get a\x00b c\r\n", "get [a]"],
    ["delete k\x00 noreply\r\n", "delete [k]"],
    ["get \x00a\r\n", "! get: ERROR"],
    ["\x00get a\r\n", "! ?: ERROR"],
    ["set a\x00b 0 0 1\r\n", "! set: ERROR"],
  ];
  for (const [text, expected] of cases) {
    const got = decodeEverySplit(bytes(text + "get z\r\n"));
    assert.equal(got.error, null, text);
    assert.deepEqual(got.out, [expected, "get [z]"], JSON.stringify(text));
  }
});

Deno.test("decode() takes an 8 MiB multiget arriving in 1 KiB pieces, scanning it once", () => {
  // 100-byte keys up to just under the default limit (8 MiB before the "\n").
  const key = "k".repeat(99);
  const count = Math.floor((8 * 1024 * 1024 - 4) / 100);
  const line = bytes(`get${` ${key}`.repeat(count)}\r\n`);
  assert.ok(line.length - 1 <= 8 * 1024 * 1024 && line.length > 8_000_000);
  const decoder = new MemcacheTextDecoder();
  const started = performance.now();
  let result = null;
  // Each call sees the whole line so far, as a session's buffer holds it: a decoder that
  // rescanned from the start would read ~35 GB here instead of 8 MB.
  for (let end = 1024; result === null; end = Math.min(end + 1024, line.length)) {
    result = decoder.decode(line, 0, end);
  }
  const elapsed = performance.now() - started;
  assert.ok(result.kind === "request");
  assert.equal(result.keys.length, count);
  assert.equal(result.size, line.length);
  assert.ok(elapsed < 5000, `took ${elapsed} ms`);
  // One byte more than the limit is refused, complete or not.
  const over = bytes(`get ${"k".repeat(8 * 1024 * 1024 - 3)}`);
  assert.throws(() => new MemcacheTextDecoder().decode(over, 0, over.length), /line too long/);
  const atLimit = bytes(`get ${"k".repeat(8 * 1024 * 1024 - 4)}\n`);
  const r = new MemcacheTextDecoder().decode(atLimit, 0, atLimit.length);
  assert.ok(r?.kind === "error", "a 250+ byte key, but the line itself is taken");
});

Deno.test("neededBytes: a storage request's whole size once its command line is read", () => {
  const decoder = new MemcacheTextDecoder();
  const line = "set k 0 0 100000\r\n";
  const bytes = new TextEncoder().encode(line + "abc");
  assert.equal(decoder.decode(bytes, 0, 5), null);
  assert.equal(decoder.neededBytes, 0, "the line is not complete");
  assert.equal(decoder.decode(bytes, 0, bytes.length), null);
  assert.equal(decoder.neededBytes, line.length + 100_002);
  const whole = new Uint8Array(line.length + 100_002);
  whole.set(bytes.subarray(0, line.length));
  whole.set([13, 10], whole.length - 2);
  assert.equal(decoder.decode(whole, 0, whole.length)?.size, whole.length);
  assert.equal(decoder.neededBytes, 0, "between requests");
});
