import assert from "node:assert/strict";
import {
  BINARY_HEADER_BYTES,
  BinaryOpcode as Op,
  type BinaryPacket,
  BinaryStatus as Status,
  decodeBinaryPacket,
  encodeBinaryResponse,
  isQuiet,
  isSuppressedByQuietBinary,
  loudOpcode,
  MemcacheBinaryDecoder,
  type MemcacheBinaryOptions,
  MemcacheBinaryResponseFramer,
} from "./binary.ts";
import { ProtocolError } from "../protocol_error.ts";
import { everySplit, replayChunks } from "../replay_chunks.ts";

const latin1 = new TextDecoder("latin1");
const str = (bytes: Uint8Array) => latin1.decode(bytes);
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
function hex(text: string): Uint8Array {
  return Uint8Array.from(text.trim().split(/\s+/), (h) => parseInt(h, 16));
}

interface RawFields {
  magic?: number;
  opcode: number;
  key?: string;
  extras?: number[];
  value?: string;
  status?: number;
  opaque?: number;
  cas?: bigint;
  /** Overrides the body length written in the header. */
  body?: number;
  /** Overrides the key length written in the header. */
  keyLength?: number;
}

/** Builds a packet byte by byte from the header layout, independently of the encoder. */
function raw(f: RawFields): Uint8Array {
  const key = bytes(f.key ?? "");
  const extras = Uint8Array.from(f.extras ?? []);
  const value = bytes(f.value ?? "");
  const body = f.body ?? extras.length + key.length + value.length;
  const keyLength = f.keyLength ?? key.length;
  const cas = f.cas ?? 0n;
  const opaque = f.opaque ?? 0;
  const status = f.status ?? 0;
  const header = [
    f.magic ?? 0x80,
    f.opcode,
    keyLength >> 8,
    keyLength & 0xff,
    extras.length,
    0,
    status >> 8,
    status & 0xff,
    ...[24, 16, 8, 0].map((s) => (body >>> s) & 0xff),
    ...[24, 16, 8, 0].map((s) => (opaque >>> s) & 0xff),
    ...[56n, 48n, 40n, 32n, 24n, 16n, 8n, 0n].map((s) => Number((cas >> s) & 0xffn)),
  ];
  return new Uint8Array([...header, ...extras, ...key, ...value]);
}

function describe(p: BinaryPacket): string {
  let text = `op=${p.opcode.toString(16)}`;
  if (p.key.length > 0) text += ` key=${str(p.key)}`;
  if (p.extras.length > 0) text += ` extras=${[...p.extras].join(",")}`;
  if (p.value.length > 0) text += ` value=${str(p.value)}`;
  if (p.opaque !== 0) text += ` opaque=${p.opaque}`;
  if (p.cas !== 0n) text += ` cas=${p.cas}`;
  if (p.status !== 0) text += ` status=${p.status}`;
  return text;
}

interface Decoded {
  out: string[];
  error: ProtocolError | null;
}

/** Feeds `input` in pieces ending at `cuts` like a session (append, decode all, compact). */
function decodeAll(input: Uint8Array, cuts: number[], opts?: MemcacheBinaryOptions): Decoded {
  const decoder = new MemcacheBinaryDecoder(opts);
  const result: Decoded = { out: [], error: null };
  let lastSkip = false;
  try {
    const left = replayChunks(input, cuts, (buf, start, end) => {
      let at = start;
      for (;;) {
        const r = decoder.decode(buf, at, end);
        if (r === null) return at - start;
        assert.ok(r.size > 0, "progress");
        at += r.size;
        if (r.kind === "skip") {
          const previous = lastSkip ? Number(result.out.pop()!.slice(5)) : 0;
          result.out.push(`skip ${previous + r.size}`);
          lastSkip = true;
          continue;
        }
        lastSkip = false;
        if (r.kind === "error") {
          result.out.push(
            `! op=${r.opcode.toString(16)} status=${r.status} ${r.message} opaque=${r.opaque}`,
          );
        } else {
          assert.equal(r.key.buffer, buf.buffer, "views, not copies");
          result.out.push(describe(r));
        }
      }
    });
    assert.equal(left, 0, "every byte consumed");
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    result.error = err;
  }
  return result;
}

function decodeEverySplit(input: Uint8Array, opts?: MemcacheBinaryOptions): Decoded {
  const whole = decodeAll(input, [], opts);
  for (const { cuts, label } of everySplit(input.length)) {
    const got = decodeAll(input, cuts, opts);
    assert.deepEqual(got.out, whole.out, label);
    assert.equal(got.error?.message, whole.error?.message, label);
  }
  return whole;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const flagsAndExpiry = [0xde, 0xad, 0xbe, 0xef, 0, 0, 0x0e, 0x10];
const delta = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const requests: [Uint8Array, string][] = [
  // The binary protocol document's own examples, byte for byte.
  [
    hex("80 00 00 05 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 00 00 00 00 00 48 65 6c 6c 6f"),
    "op=0 key=Hello",
  ],
  [
    hex(`80 02 00 05 08 00 00 00 00 00 00 12 00 00 00 00 00 00 00 00 00 00 00 00
         de ad be ef 00 00 0e 10 48 65 6c 6c 6f 57 6f 72 6c 64`),
    "op=2 key=Hello extras=222,173,190,239,0,0,14,16 value=World",
  ],
  [raw({ opcode: Op.getkq, key: "k", opaque: 7 }), "op=d key=k opaque=7"],
  [
    raw({ opcode: Op.set, key: "k", extras: flagsAndExpiry, value: "v\r\n", cas: 2n ** 64n - 1n }),
    "op=1 key=k extras=222,173,190,239,0,0,14,16 value=v\r\n cas=18446744073709551615",
  ],
  [
    raw({ opcode: Op.setq, key: "k", extras: flagsAndExpiry, opaque: 0xffffffff }),
    "op=11 key=k extras=222,173,190,239,0,0,14,16 opaque=4294967295",
  ],
  [raw({ opcode: Op.appendq, key: "k", value: "tail" }), "op=19 key=k value=tail"],
  [
    raw({ opcode: Op.delete, key: "k", cas: 0x0102030405060708n }),
    "op=4 key=k cas=72623859790382856",
  ],
  [raw({ opcode: Op.increment, key: "n", extras: delta }), `op=5 key=n extras=${delta.join(",")}`],
  [raw({ opcode: Op.touch, key: "k", extras: [0, 0, 0, 9] }), "op=1c key=k extras=0,0,0,9"],
  [raw({ opcode: Op.gatkq, key: "k", extras: [0, 0, 0, 9] }), "op=24 key=k extras=0,0,0,9"],
  [raw({ opcode: Op.flush, extras: [0, 0, 0, 1] }), "op=8 extras=0,0,0,1"],
  [raw({ opcode: Op.flushq }), "op=18"],
  [raw({ opcode: Op.stat }), "op=10"],
  [raw({ opcode: Op.stat, key: "slabs" }), "op=10 key=slabs"],
  [raw({ opcode: Op.version, status: 3 }), "op=b status=3"], // the vbucket id
  [raw({ opcode: Op.noop }), "op=a"],
  [raw({ opcode: Op.quit }), "op=7"],
];

Deno.test("decode() frames every request at every chunk split", () => {
  const got = decodeEverySplit(concat(...requests.map(([packet]) => packet)));
  assert.equal(got.error, null);
  assert.deepEqual(got.out, requests.map(([, expected]) => expected));
});

Deno.test("decode() gives views of the header fields and parts", () => {
  const input = concat(bytes("junk"), requests[1][0]);
  const packet = new MemcacheBinaryDecoder().decode(input, 4, input.length);
  assert.ok(packet?.kind === "packet");
  assert.equal(packet.magic, 0x80);
  assert.equal(packet.opcode, Op.add);
  assert.equal(packet.dataType, 0);
  assert.equal(packet.size, input.length - 4);
  assert.equal(packet.extras.byteOffset, 4 + BINARY_HEADER_BYTES);
  assert.equal(str(packet.key), "Hello");
  assert.equal(str(packet.value), "World");
});

Deno.test("decode() refuses bad packets it can skip, and keeps framing", () => {
  const opts = { maxValueBytes: 8 };
  const noop = raw({ opcode: Op.noop, opaque: 1 });
  const cases: [Uint8Array, string][] = [
    [
      raw({ opcode: Op.get, key: "k".repeat(251), opaque: 5 }),
      "! op=0 status=4 Invalid arguments opaque=5",
    ],
    [
      raw({ opcode: Op.set, key: "k", extras: flagsAndExpiry, value: "123456789" }),
      "! op=1 status=3 Too large. opaque=0",
    ],
    [raw({ opcode: 0x30, key: "k", value: "x" }), "! op=30 status=129 Unknown command opaque=0"],
    [raw({ opcode: 0x21, key: "PLAIN" }), "! op=21 status=129 Unknown command opaque=0"],
    [
      raw({ opcode: Op.get, key: "k", extras: [0, 0, 0, 0] }),
      "! op=0 status=4 Invalid arguments opaque=0",
    ],
    [raw({ opcode: Op.getq, key: "k", value: "x" }), "! op=9 status=4 Invalid arguments opaque=0"],
    [raw({ opcode: Op.get }), "! op=0 status=4 Invalid arguments opaque=0"],
    [
      raw({ opcode: Op.set, key: "k", extras: [0, 0, 0, 0] }),
      "! op=1 status=4 Invalid arguments opaque=0",
    ],
    [
      raw({ opcode: Op.append, key: "k", extras: [1] }),
      "! op=e status=4 Invalid arguments opaque=0",
    ],
    [
      raw({ opcode: Op.increment, key: "k", extras: [1, 2] }),
      "! op=5 status=4 Invalid arguments opaque=0",
    ],
    [raw({ opcode: Op.noop, key: "k" }), "! op=a status=4 Invalid arguments opaque=0"],
    [raw({ opcode: Op.flush, extras: [0, 0] }), "! op=8 status=4 Invalid arguments opaque=0"],
    [raw({ opcode: Op.touch, key: "k" }), "! op=1c status=4 Invalid arguments opaque=0"],
    [raw({ opcode: Op.version, value: "x" }), "! op=b status=4 Invalid arguments opaque=0"],
    // Over the value limit, the opcode and the packet's shape come first (memcached's order).
    [raw({ opcode: 0x55, value: "123456789" }), "! op=55 status=129 Unknown command opaque=0"],
    [
      raw({ opcode: Op.get, key: "k", value: "123456789" }),
      "! op=0 status=4 Invalid arguments opaque=0",
    ],
    [
      raw({ opcode: Op.set, key: "k", value: "123456789" }),
      "! op=1 status=4 Invalid arguments opaque=0",
    ],
    // memcached 1.6 has no binary VERBOSITY, whatever its shape.
    [
      raw({ opcode: Op.verbosity, extras: [0, 0, 0, 1] }),
      "! op=1b status=129 Unknown command opaque=0",
    ],
    [raw({ opcode: Op.verbosity }), "! op=1b status=129 Unknown command opaque=0"],
  ];
  for (const [packet, expected] of cases) {
    const got = decodeEverySplit(concat(packet, noop), opts);
    assert.equal(got.error, null, expected);
    // A SET too large is read through its key (1 byte here), the rest skipped.
    const read = expected.startsWith("! op=1 status=3")
      ? BINARY_HEADER_BYTES + 8 + 1
      : BINARY_HEADER_BYTES;
    const body = packet.length - read;
    const skip = body > 0 ? [`skip ${body}`] : [];
    assert.deepEqual(got.out, [expected, ...skip, "op=a opaque=1"], expected);
  }
  // At the value limit: accepted.
  const at = raw({ opcode: Op.set, key: "k", extras: flagsAndExpiry, value: "12345678" });
  assert.equal(decodeEverySplit(at, opts).out.length, 1);
  assert.match(decodeEverySplit(at, opts).out[0], /^op=1 /);
});

Deno.test("decode() checks limits from the header alone, without waiting for the body", () => {
  const decoder = new MemcacheBinaryDecoder();
  const header = raw({ opcode: Op.append, key: "k", body: 0xffffffff })
    .subarray(0, BINARY_HEADER_BYTES);
  const r = decoder.decode(header, 0, header.length);
  assert.ok(r?.kind === "error");
  assert.equal(r.status, Status.valueTooLarge);
  assert.equal(decoder.pendingSkip, 0xffffffff);
  const chunk = new Uint8Array(4096);
  assert.deepEqual(decoder.decode(chunk, 0, chunk.length), { kind: "skip", size: 4096 });
  assert.equal(decoder.pendingSkip, 0xffffffff - 4096);
  // A SET too large waits for its key only (its old value is to be deleted), then skips.
  const set = raw({ opcode: Op.set, key: "key", extras: flagsAndExpiry, body: 0xffffffff });
  const setDecoder = new MemcacheBinaryDecoder();
  assert.equal(setDecoder.decode(set, 0, BINARY_HEADER_BYTES + 8 + 2), null);
  const refused = setDecoder.decode(set, 0, BINARY_HEADER_BYTES + 8 + 3);
  assert.ok(refused?.kind === "error");
  assert.equal(refused.size, BINARY_HEADER_BYTES + 8 + 3);
  assert.equal(new TextDecoder().decode(refused.staleKey), "key");
  assert.equal(setDecoder.pendingSkip, 0xffffffff - 8 - 3);
  // A header within the limits waits for its body.
  const ok = raw({ opcode: Op.get, key: "abc" });
  assert.equal(new MemcacheBinaryDecoder().decode(ok, 0, ok.length - 1), null);
});

Deno.test("decode() throws when framing is lost", () => {
  const good = raw({ opcode: Op.noop });
  for (
    const [bad, pattern] of [
      [raw({ opcode: Op.noop, magic: 0x81 }), /bad request magic/],
      [bytes("get foo\r\n"), /bad request magic/],
      [raw({ opcode: Op.get, key: "abc", body: 2 }), /bad body length/],
      [raw({ opcode: Op.set, key: "k", extras: flagsAndExpiry, body: 8 }), /bad body length/],
    ] as const
  ) {
    const got = decodeEverySplit(concat(good, bad));
    assert.deepEqual(got.out, ["op=a"]);
    assert.match(got.error?.message ?? "", pattern);
  }
  // The magic byte is judged as soon as it arrives.
  assert.throws(() => new MemcacheBinaryDecoder().decode(bytes("g"), 0, 1), ProtocolError);
});

const responses: Uint8Array[] = [
  hex(`81 00 00 00 04 00 00 00 00 00 00 09 00 00 00 00 00 00 00 00 00 00 00 01
       de ad be ef 57 6f 72 6c 64`),
  raw({ magic: 0x81, opcode: Op.getk, key: "k", extras: [0, 0, 0, 0], value: "v", cas: 3n }),
  raw({ magic: 0x81, opcode: Op.get, status: Status.keyNotFound, value: "Not found" }),
  raw({ magic: 0x81, opcode: Op.set, cas: 9n }),
  raw({ magic: 0x81, opcode: Op.noop }),
  raw({ magic: 0x81, opcode: Op.stat, key: "pid", value: "1234" }),
  raw({ magic: 0x81, opcode: Op.version, value: "1.6.18" }),
];

Deno.test("MemcacheBinaryResponseFramer finds every response boundary at every chunk split", () => {
  const input = concat(...responses);
  const expected = responses.map((r) => r.length);
  for (const { cuts, label } of everySplit(input.length)) {
    const framer = new MemcacheBinaryResponseFramer();
    const sizes: number[] = [];
    const left = replayChunks(input, cuts, (buf, start, end) => {
      let at = start;
      for (let size = framer.frame(buf, at, end); size >= 0; size = framer.frame(buf, at, end)) {
        sizes.push(size);
        at += size;
      }
      return at - start;
    });
    assert.equal(left, 0, label);
    assert.deepEqual(sizes, expected, label);
  }
});

Deno.test("MemcacheBinaryResponseFramer rejects malformed responses from the header", () => {
  const framer = new MemcacheBinaryResponseFramer({ maxValueBytes: 8 });
  for (
    const bad of [
      raw({ opcode: Op.noop }), // request magic
      raw({ magic: 0x81, opcode: Op.get, key: "abc", body: 2 }),
      raw({ magic: 0x81, opcode: Op.get, extras: [0, 0, 0, 0], value: "123456789" }),
    ]
  ) {
    const header = bad.subarray(0, BINARY_HEADER_BYTES);
    assert.throws(() => framer.frame(header, 0, header.length), ProtocolError);
  }
  const atLimit = raw({ magic: 0x81, opcode: Op.get, extras: [0, 0, 0, 0], value: "12345678" });
  assert.equal(framer.frame(atLimit, 0, atLimit.length), atLimit.length);
});

Deno.test("encodeBinaryResponse() builds responses byte for byte", () => {
  const world = encodeBinaryResponse({
    opcode: Op.get,
    status: Status.ok,
    opaque: 0,
    cas: 1n,
    extras: hex("de ad be ef"),
    value: bytes("World"),
  });
  assert.deepEqual(world, responses[0]);
  const error = encodeBinaryResponse({
    opcode: Op.set,
    status: Status.valueTooLarge,
    opaque: 0xfedcba98,
    value: bytes("Too large."),
  });
  const packet = decodeBinaryPacket(error);
  assert.equal(packet.magic, 0x81);
  assert.equal(packet.opcode, Op.set);
  assert.equal(packet.status, 3);
  assert.equal(packet.opaque, 0xfedcba98);
  assert.equal(packet.cas, 0n);
  assert.equal(str(packet.value), "Too large.");
  assert.equal(packet.size, BINARY_HEADER_BYTES + 10);
  const version = encodeBinaryResponse({
    opcode: Op.getk,
    status: 0,
    opaque: 1,
    key: bytes("kk"),
    cas: 0x0102030405060708n,
  });
  const back = decodeBinaryPacket(version);
  assert.equal(str(back.key), "kk");
  assert.equal(back.cas, 0x0102030405060708n);
  assert.equal(
    new MemcacheBinaryResponseFramer().frame(version, 0, version.length),
    version.length,
  );
  assert.throws(() => decodeBinaryPacket(version.subarray(0, 25)), ProtocolError);
});

Deno.test("isQuiet() and loudOpcode() pair quiet opcodes with their normal ones", () => {
  const pairs = [
    [Op.getq, Op.get],
    [Op.getkq, Op.getk],
    [Op.setq, Op.set],
    [Op.addq, Op.add],
    [Op.replaceq, Op.replace],
    [Op.deleteq, Op.delete],
    [Op.incrementq, Op.increment],
    [Op.decrementq, Op.decrement],
    [Op.quitq, Op.quit],
    [Op.flushq, Op.flush],
    [Op.appendq, Op.append],
    [Op.prependq, Op.prepend],
    [Op.gatq, Op.gat],
    [Op.gatkq, Op.gatk],
  ];
  for (const [quiet, loud] of pairs) {
    assert.equal(isQuiet(quiet), true);
    assert.equal(isQuiet(loud), false);
    assert.equal(loudOpcode(quiet), loud);
    assert.equal(loudOpcode(loud), loud);
  }
  assert.equal(isQuiet(Op.noop), false);
  assert.equal(isSuppressedByQuietBinary(Op.getkq, Status.keyNotFound), true);
  assert.equal(isSuppressedByQuietBinary(Op.getkq, Status.ok), false);
  assert.equal(isSuppressedByQuietBinary(Op.setq, Status.ok), true);
  assert.equal(isSuppressedByQuietBinary(Op.setq, Status.keyExists), false);
  assert.equal(isSuppressedByQuietBinary(Op.deleteq, Status.keyNotFound), false);
  assert.equal(isSuppressedByQuietBinary(Op.get, Status.keyNotFound), false);
});
