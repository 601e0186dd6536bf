import assert from "node:assert/strict";
import { RespRequestDecoder } from "./request_decoder.ts";
import { ProtocolError } from "../protocol_error.ts";
import { everySplit, replayChunks } from "../replay_chunks.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Feeds `input` split at `cuts` the way a session does (append, decode all, compact). */
function decodeAll(input: Uint8Array, cuts: number[]): string[][] {
  const decoder = new RespRequestDecoder();
  const out: string[][] = [];
  const left = replayChunks(input, cuts, (buf, start, end) => {
    let at = start;
    for (;;) {
      const req = decoder.decode(buf, at, end);
      if (req === null) return at - start;
      at += req.size;
      if (req.argv.length > 0) out.push(req.argv.map((a) => dec.decode(a)));
    }
  });
  assert.equal(left, 0, "every byte consumed");
  return out;
}

Deno.test("decodeRequest() frames a pipeline at every single chunk split", () => {
  const input = enc.encode(
    "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nPING\r\n*1\r\n$4\r\nPING\r\n",
  );
  const expected = [["GET", "key"], ["SET", "k", ""], ["PING"], ["PING"]];
  for (const { cuts, label } of everySplit(input.length)) {
    assert.deepEqual(decodeAll(input, cuts), expected, label);
  }
});

Deno.test("decodeRequest() survives byte-by-byte delivery", () => {
  const input = enc.encode("*2\r\n$4\r\nECHO\r\n$5\r\na\r\nbc\r\nset  x   'y z'\r\n");
  const cuts = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(decodeAll(input, cuts), [["ECHO", "a\r\nbc"], ["set", "x", "y z"]]);
});

Deno.test("decodeRequest() keeps binary values intact", () => {
  const value = new Uint8Array(256).map((_, i) => i);
  const head = enc.encode("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$256\r\n");
  const input = new Uint8Array([...head, ...value, 13, 10]);
  const decoder = new RespRequestDecoder();
  const req = decoder.decode(input, 0, input.length);
  assert.ok(req);
  assert.deepEqual([...req.argv[2]], [...value]);
  assert.equal(req.size, input.length);
});

Deno.test("decodeRequest() skips empty requests", () => {
  const decoder = new RespRequestDecoder();
  const input = enc.encode("\r\n*0\r\n");
  const first = decoder.decode(input, 0, input.length);
  assert.deepEqual(first, { argv: [], size: 2, inline: true });
  const second = decoder.decode(input, 2, input.length);
  assert.equal(second?.argv.length, 0);
  assert.equal(second?.size, 4);
});

Deno.test("decodeRequest() handles inline quotes and escapes", () => {
  const input = enc.encode("SET \"a\\x41\\n\" 'it\\'s'\r\n");
  const req = new RespRequestDecoder().decode(input, 0, input.length);
  assert.deepEqual(req?.argv.map((a) => dec.decode(a)), ["SET", "aA\n", "it's"]);
  assert.equal(req?.inline, true);
});

Deno.test("decodeRequest() splits inline lines exactly as Redis's sdssplitargs", () => {
  const split = (line: string) => {
    const input = enc.encode(line + "\r\n");
    return new RespRequestDecoder().decode(input, 0, input.length)?.argv.map((a) => dec.decode(a));
  };
  // A quote inside a word opens a quoted part of the same argument.
  assert.deepEqual(split('SET a"b c" v'), ["SET", "ab c", "v"]);
  assert.deepEqual(split('ECHO x"y"'), ["ECHO", "xy"]);
  assert.deepEqual(split("ECHO pre'a b'"), ["ECHO", "prea b"]);
  assert.deepEqual(split('ECHO ""'), ["ECHO", ""]);
  // Blanks between arguments are C's isspace(), a vertical tab and a form feed too; inside an
  // unquoted word only space, tab, CR and LF end it.
  assert.deepEqual(split("\x0bECHO\x0ca\tb"), ["ECHO\x0ca", "b"]);
  assert.deepEqual(split('ECHO "a"\x0bb'), ["ECHO", "a", "b"]);
  // A closing quote must end the argument; an unclosed one is an error.
  assertProtocolError("ECHO it's\r\n", /unbalanced quotes/);
  assertProtocolError('ECHO "ab"c\r\n', /unbalanced quotes/);
  assertProtocolError("ECHO x'y'z\r\n", /unbalanced quotes/);
  assertProtocolError('ECHO "a\\\r\n', /unbalanced quotes/);
});

function assertProtocolError(text: string | Uint8Array, pattern: RegExp) {
  const input = typeof text === "string" ? enc.encode(text) : text;
  assert.throws(
    () => {
      const decoder = new RespRequestDecoder();
      let start = 0;
      for (let i = 0; i < 10; i++) {
        const req = decoder.decode(input, start, input.length);
        if (req === null) return;
        start += req.size;
      }
    },
    (err: unknown) => err instanceof ProtocolError && pattern.test(err.message),
  );
}

Deno.test("decodeRequest() rejects malformed multibulk input", () => {
  assertProtocolError("*x\r\n", /invalid multibulk length/);
  assertProtocolError("*2\r\n+GET\r\n", /expected '\$', got '\+'/);
  assertProtocolError("*1\r\n$-1\r\n", /invalid bulk length/);
  assertProtocolError("*1\r\n$abc\r\n", /invalid bulk length/);
  assertProtocolError("*03\r\n", /invalid multibulk length/);
  assertProtocolError("*1\r\n$01\r\nx\r\n", /invalid bulk length/);
  assertProtocolError("*1\r\n$3\r\nGETxx", /not terminated/);
  assertProtocolError('GET "abc\r\n', /unbalanced quotes/);
});

Deno.test("decodeRequest() refuses over-limit lengths at once, without waiting for bytes", () => {
  assertProtocolError("*2147483648\r\n", /invalid multibulk length/);
  assertProtocolError("*1\r\n$536870913\r\n", /invalid bulk length/);
  assertProtocolError(new Uint8Array(70 * 1024).fill(0x61), /too big inline request/);
  assertProtocolError("*" + "1".repeat(70 * 1024), /too big mbulk count string/);
  // Redis 7 takes up to INT_MAX arguments; Aster 1,048,576 (their heap would end a worker).
  assertProtocolError("*1048577\r\n", /more than 1048576 arguments \(Aster's limit\)/);
  const decoder = new RespRequestDecoder();
  const many = enc.encode("*1048576\r\n");
  assert.equal(decoder.decode(many, 0, many.length), null);
  const big = enc.encode("*1\r\n$536870912\r\n");
  assert.equal(new RespRequestDecoder().decode(big, 0, big.length), null);
});

Deno.test("decodeRequest() refuses a request past 1 GiB, Aster's own bound, from its announced lengths", () => {
  const input = enc.encode("*3\r\n$4\r\nMSET\r\n$536870912\r\n");
  const decoder = new RespRequestDecoder();
  assert.equal(decoder.decode(input, 0, input.length), null, "512 MB: waits");
  // The same request with the first value in and a second of 512 MB announced.
  const head = "*3\r\n$4\r\nMSET\r\n$536870912\r\n";
  const next = "\r\n$536870912\r\n";
  const bytes = new Uint8Array(head.length + 536870912 + next.length);
  bytes.set(enc.encode(head));
  bytes.set(enc.encode(next), head.length + 536870912);
  assert.throws(
    () => new RespRequestDecoder().decode(bytes, 0, bytes.length),
    (err) => err instanceof ProtocolError && err.message === "request over 1 GiB (Aster's limit)",
  );
});

Deno.test("decodeRequest() limits a client that has not authenticated as redis-server does", () => {
  const limited = (text: string) => {
    const decoder = new RespRequestDecoder();
    decoder.authRequired = true;
    const bytes = enc.encode(text);
    return () => decoder.decode(bytes, 0, bytes.length);
  };
  assert.throws(limited("*11\r\n"), /unauthenticated multibulk length/);
  assert.throws(limited("*1\r\n$16385\r\n"), /unauthenticated bulk length/);
  // The general limits come first, as in Redis.
  assert.throws(limited("*2147483648\r\n"), /invalid multibulk length/);
  assert.throws(limited("*1\r\n$536870913\r\n"), /invalid bulk length/);
  assert.equal(limited("*10\r\n$16384\r\n")(), null);
});

Deno.test("decodeRequest() refuses a nested request at its first byte, like redis-server", () => {
  // Requests never nest in RESP: redis-server answers "expected '$', got '*'" and closes.
  // However deep the nesting sent, the decoder stops at the first inner header, so it
  // keeps no state per level.
  const input = enc.encode("*1\r\n".repeat(100_000) + "$4\r\nPING\r\n");
  const decoder = new RespRequestDecoder();
  assert.throws(
    () => decoder.decode(input, 0, input.length),
    (err) => err instanceof ProtocolError && err.message === "expected '$', got '*'",
  );
  assert.equal(decoder.pendingBytes, 0);
});

Deno.test("neededBytes: a partial request's size once its bulk length is read", () => {
  const decoder = new RespRequestDecoder();
  const bytes = new TextEncoder().encode("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\nabc");
  assert.equal(decoder.decode(bytes, 0, 3), null);
  assert.equal(decoder.neededBytes, 0, "no length read yet");
  assert.equal(decoder.decode(bytes, 0, 10), null);
  assert.equal(decoder.neededBytes, 13, "SET's own length");
  assert.equal(decoder.decode(bytes, 0, bytes.length), null);
  assert.equal(decoder.neededBytes, bytes.length - 3 + 100_000 + 2);
  const whole = new Uint8Array(bytes.length - 3 + 100_002);
  whole.set(bytes.subarray(0, bytes.length - 3));
  whole.set([13, 10], whole.length - 2);
  assert.equal(decoder.decode(whole, 0, whole.length)?.size, whole.length);
  assert.equal(decoder.neededBytes, 0, "between requests");
});
