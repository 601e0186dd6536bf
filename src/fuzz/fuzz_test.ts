import assert from "node:assert/strict";
import { ProtocolError } from "../protocol/protocol_error.ts";
import { RespRequestDecoder } from "../protocol/resp/request_decoder.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { MemcacheTextDecoder, withoutNoreply } from "../protocol/memcache_text/text_request.ts";
import { ascii } from "./fuzz_bytes.ts";
import { validCase } from "./generators.ts";
import { cut, deepNesting, hugeLength, lengthOffByOne } from "./mutations.ts";
import { Prng } from "./prng.ts";
import { driverFor } from "./decoder_drivers.ts";
import { FUZZ_TARGETS, type FuzzCase, type FuzzTarget } from "./fuzz_types.ts";
import { type FuzzReport, makeInput, runFuzz } from "./harness.ts";
import { checkInput } from "./input_checks.ts";
import type { FuzzDecoder, FuzzDriver } from "./outcome_text.ts";

/** Fixed seed of the slice run by `deno task test`; `deno task fuzz` explores others. */
const SEED = 0x5eed;
const INPUTS = 4000;

function _describe(report: FuzzReport): string {
  return report.failures.slice(0, 5).map((f) =>
    `#${f.index} [${f.label}] ${f.reason}\n    ${f.length} bytes: ${f.hex.slice(0, 160)}`
  ).join("\n");
}

for (const target of FUZZ_TARGETS) {
  Deno.test(`fuzz: ${target} decoder keeps its properties on ${INPUTS} inputs`, () => {
    const report = runFuzz(target, { seed: SEED, inputs: INPUTS });
    assert.equal(report.inputs, INPUTS);
    assert.equal(report.failed, 0, `${report.failed} inputs failed:\n${_describe(report)}`);
  });
}

// ---------------------------------------------------------------------------------------
// Decoder bugs the fuzzer found (minimal reproductions).

Deno.test("RespReplyFramer.frame() accepts integer replies of the whole 64-bit range", () => {
  for (
    const line of [":9223372036854775807\r\n", ":-9223372036854775808\r\n", ":1000000000000000\r\n"]
  ) {
    const bytes = ascii(line);
    let size: number | string;
    try {
      size = new RespReplyFramer().frame(bytes, 0, bytes.length);
    } catch (e) {
      size = String(e);
    }
    assert.equal(size, bytes.length, `${JSON.stringify(line)} is a valid Redis integer reply`);
  }
});

Deno.test("RespReplyFramer.frame() frames a long status line the same whole and in chunks", () => {
  // redis.status_reply() / error_reply() in a Lua script can return lines this long.
  const bytes = ascii("+" + "x".repeat(70000) + "\r\n");
  assert.equal(new RespReplyFramer().frame(bytes, 0, bytes.length), bytes.length, "whole");
  const framer = new RespReplyFramer();
  let first: number | string;
  try {
    first = framer.frame(bytes, 0, 66000);
  } catch (e) {
    first = String(e);
  }
  assert.equal(first, -1, "the first 66000 bytes only need more bytes");
  assert.equal(framer.frame(bytes, 0, bytes.length), bytes.length, "then the whole line");
});

Deno.test("withoutNoreply() makes a meta request with a repeated q flag loud", () => {
  // memcached answers "mg <key> q q" with "CLIENT_ERROR duplicate flag". The proxy forwards
  // withoutNoreply() of it, "mg nokey q", which memcached answers with nothing on a miss:
  // the backend connection's reply FIFO then slips by one.
  const raw = ascii("mg nokey q q\r\n");
  const req = new MemcacheTextDecoder().decode(raw, 0, raw.length);
  if (req?.kind !== "request" || !req.noreply) return; // refused or loud: nothing to strip
  const stripped = withoutNoreply(raw, req);
  const again = new MemcacheTextDecoder().decode(stripped, 0, stripped.length);
  assert.equal(again?.kind, "request");
  assert.equal(
    again?.kind === "request" && again.noreply,
    false,
    `forwarded as ${JSON.stringify(new TextDecoder().decode(stripped))}, still quiet`,
  );
});

// ---------------------------------------------------------------------------------------
// The harness catches broken decoders.

function _fake(decode: FuzzDecoder["decode"], expect?: FuzzDriver["expect"]): FuzzDriver {
  return { create: () => ({ decode }), expect: expect ?? ((e) => ({ size: e.size, text: "" })) };
}

function _run(target: FuzzTarget, driver: FuzzDriver, inputs = 200): FuzzReport {
  return runFuzz(target, { seed: 7, inputs, driver });
}

Deno.test("runFuzz() reports a decoder that throws something other than ProtocolError", () => {
  const report = _run(
    "resp-request",
    _fake((_buf, start, end) => {
      if (end - start > 40) throw new TypeError("boom");
      return null;
    }),
  );
  assert.ok(report.failed > 0);
  assert.match(
    report.failures[0].reason,
    /threw TypeError \(only ProtocolError may be thrown\): boom/,
  );
  // The failure replays from its seed and index.
  const f = report.failures[0];
  const replay = runFuzz("resp-request", {
    seed: f.seed,
    inputs: 1,
    first: f.index,
    driver: _fake((_buf, start, end) => {
      if (end - start > 40) throw new TypeError("boom");
      return null;
    }),
  });
  assert.equal(replay.failures[0]?.hex, f.hex);
});

Deno.test("runFuzz() reports a decoder that returns results without progress (a session loop)", () => {
  const report = _run(
    "resp-reply",
    _fake((_buf, start, end) => (end > start ? { size: 0, text: "" } : null)),
  );
  assert.ok(report.failed > 0);
  assert.match(report.failures[0].reason, /result of size 0: no progress/);
});

Deno.test("runFuzz() reports a decoder that consumes more than it was given", () => {
  const report = _run(
    "memcache-binary-response",
    _fake((_buf, start, end) => (end > start ? { size: end - start + 1, text: "" } : null)),
  );
  assert.ok(report.failed > 0);
  assert.match(report.failures[0].reason, /consumed \d+ bytes with only \d+ buffered/);
});

Deno.test("runFuzz() reports a decoder that reads past `end` into stale buffer bytes", () => {
  // A RESP reply framer that searches for CRLF up to the end of the whole buffer.
  const sloppy: FuzzDriver = {
    create() {
      return {
        decode(buf, start, end) {
          if (start >= end) return null;
          for (let i = start + 1; i < buf.length; i++) {
            if (buf[i] === 0x0a && buf[i - 1] === 0x0d) {
              return { size: i + 1 - start, text: "line" };
            }
          }
          return null;
        },
      };
    },
    expect: (e) => ({ size: e.size, text: "line" }),
  };
  const report = _run("resp-reply", sloppy);
  assert.ok(report.failed > 0);
  assert.ok(report.failures.some((f) => /consumed \d+ bytes with only/.test(f.reason)));
});

Deno.test("runFuzz() reports a decoder that keeps absolute offsets across compactions", () => {
  // Remembers where the current request started instead of taking `start` again.
  const pinned: FuzzDriver = {
    create(input) {
      const real = driverFor("memcache-text-request").create(input);
      let at = -1;
      return {
        decode(buf, start, end) {
          if (at < 0) at = start;
          const out = real.decode(buf, at, end);
          if (out !== null) at = -1;
          return out;
        },
      };
    },
    expect: driverFor("memcache-text-request").expect,
  };
  const report = _run("memcache-text-request", pinned, 400);
  assert.ok(report.failed > 0);
  for (const f of report.failures) assert.match(f.reason, /^(chunked|whole and chunked)/);
});

Deno.test("runFuzz() reports a decoder whose results differ from what was encoded", () => {
  const real = driverFor("resp-request");
  const dropsLastArgument: FuzzDriver = {
    create() {
      const decoder = new RespRequestDecoder();
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          if (r === null) return null;
          const argv = r.argv.length > 2 ? r.argv.slice(0, -1) : r.argv;
          return real.expect({ type: "resp-request", argv, inline: r.inline, size: r.size });
        },
      };
    },
    expect: real.expect,
  };
  const report = _run("resp-request", dropsLastArgument);
  assert.ok(report.failed > 0);
  assert.ok(
    report.failures.some((f) => /^whole: result \d+ is req .*, expected req/.test(f.reason)),
  );
});

Deno.test("runFuzz() reports a decoder that refuses valid input", () => {
  const report = _run(
    "memcache-text-request",
    _fake(() => {
      throw new ProtocolError("no");
    }),
  );
  assert.ok(report.failed > 0);
  assert.ok(
    report.failures.some((f) => /valid (but cut )?input threw ProtocolError\(no\)/.test(f.reason)),
  );
});

// ---------------------------------------------------------------------------------------
// Generators

Deno.test("makeInput() is a pure function of target, seed and index", () => {
  for (const target of FUZZ_TARGETS) {
    const a = makeInput(target, 42, 1234);
    const b = makeInput(target, 42, 1234);
    assert.deepEqual(a.input, b.input);
    assert.equal(a.rng.next(), b.rng.next());
  }
  assert.notDeepEqual(
    makeInput("resp-reply", 42, 1).input.bytes,
    makeInput("resp-reply", 43, 1).input.bytes,
  );
});

Deno.test("cut() keeps the results whose bytes are all there, and part of a discarded block", () => {
  const set = ascii("set kk x 0 5\r\nhello\r\n");
  const c: FuzzCase = {
    target: "memcache-text-request",
    bytes: set,
    expected: [
      {
        type: "mc-error",
        command: "set",
        error: "CLIENT_ERROR bad command line format",
        noreply: false,
        size: 14,
      },
      { type: "skip", size: 7 },
    ],
    partial: false,
    kinds: [],
    lengths: [],
    label: "test",
  };
  assert.deepEqual(cut(c, 10).expected, []);
  assert.deepEqual(cut(c, 17).expected, [c.expected![0], { type: "skip", size: 3 }]);
  // And the real decoder agrees.
  const decoder = new MemcacheTextDecoder();
  const first = decoder.decode(set, 0, 17);
  assert.equal(first?.kind, "error");
  assert.deepEqual(decoder.decode(set, 14, 17), { kind: "skip", size: 3 });
});

Deno.test("length mutators rewrite a length field of a valid frame", () => {
  const rng = new Prng(3, 9);
  let c = validCase("resp-request", rng, 1);
  while (c.lengths.length === 0 || c.expected![0].type !== "resp-request") {
    c = validCase("resp-request", rng, 1);
  }
  const off = lengthOffByOne(c, rng);
  assert.notDeepEqual(off.bytes, c.bytes);
  assert.equal(off.expected, null);
  const huge = hugeLength(c, rng);
  assert.match(huge.label, /^huge=-?\d+@\d+/);
});

Deno.test("deepNesting() replies frame as one reply at every depth; a depth limit is caught", () => {
  const rng = new Prng(0xdee9);
  const real = driverFor("resp-reply");
  // The framer as it was: refusing past 64 open arrays.
  const limited: FuzzDriver = {
    create(input) {
      const inner = real.create(input);
      return {
        decode(buf, start, end) {
          let depth = 0;
          while (start + depth * 4 < end && buf[start + depth * 4] === 0x2a) depth++;
          if (depth > 64) throw new ProtocolError("reply nested too deep");
          return inner.decode(buf, start, end);
        },
      };
    },
    expect: real.expect,
  };
  const depths: number[] = [];
  let caught = 0;
  for (let i = 0; i < 60; i++) {
    const input = deepNesting("resp-reply", rng);
    assert.deepEqual(input.expected, [{ type: "frame", size: input.bytes.length }]);
    depths.push(Number(/^nested(\d+)/.exec(input.label)![1]));
    const check = checkInput(real, input, rng);
    assert.equal(check.reason, null, `${input.label}: ${check.reason}`);
    if (checkInput(limited, input, rng).reason !== null) caught++;
  }
  assert.ok(depths.some((d) => d >= 7980), `depths ${depths}: none as deep as redis-server's`);
  assert.ok(caught > 0, "the depth-limited framer passed every deep case");
});
