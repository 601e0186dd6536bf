/**
 * Valid memcached binary packets for the fuzzer: requests memcached accepts (or refuses while
 * keeping the framing) and responses as it sends them, with their length fields.
 */
import {
  BINARY_HEADER_BYTES,
  BinaryOpcode,
  BinaryStatus,
  encodeBinaryRequest,
  encodeBinaryResponse,
} from "../protocol/memcache_binary/binary.ts";
import { DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LENGTH } from "../protocol/bytes.ts";
import { memcacheKey, payloadBytes, payloadSize } from "./fuzz_bytes.ts";
import type { Expected, Frame, LengthField } from "./fuzz_types.ts";
import type { Prng } from "./prng.ts";

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
      ? memcacheKey(rng)
      : new Uint8Array(0);
    const huge = hasValue && rng.chance(0.0003);
    const value = hasValue
      ? payloadBytes(rng, huge ? DEFAULT_MAX_VALUE_BYTES + rng.range(-1, 0) : payloadSize(rng))
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
  let key = memcacheKey(rng);
  let extras: Uint8Array = new Uint8Array(0);
  let value: Uint8Array = new Uint8Array(0);
  let status: number = BinaryStatus.invalidArguments;
  if (form === 0) {
    do opcode = rng.int(256); while (_KNOWN_OPCODES.has(opcode));
    status = BinaryStatus.unknownCommand;
    value = payloadBytes(rng, rng.int(40));
  } else if (form === 1) {
    key = payloadBytes(rng, rng.range(MAX_KEY_LENGTH + 1, 400));
  } else if (form === 2) {
    extras = rng.bytes(rng.pick([4, 8, 20]));
  } else {
    opcode = BinaryOpcode.set;
    extras = rng.bytes(8);
    status = BinaryStatus.valueTooLarge;
    value = rng.chance(0.001) ? payloadBytes(rng, DEFAULT_MAX_VALUE_BYTES + 1) : new Uint8Array(0);
    if (value.length === 0) {
      // Only the header, extras and key: the value is discarded as it arrives, so a cut is fine.
      const bytes = encodeBinaryRequest({ opcode, status: vbucket, opaque, cas, extras, key });
      const body = extras.length + key.length + DEFAULT_MAX_VALUE_BYTES + 1;
      new DataView(bytes.buffer).setUint32(8, body);
      return {
        bytes,
        expected: [{ type: "bin-error", opcode, opaque, status, size: _refusedSize(extras, key) }],
        lengths: _binaryLengths(),
        open: true,
      };
    }
  }
  const bytes = encodeBinaryRequest({ opcode, status: vbucket, opaque, cas, extras, key, value });
  // A SET too large is read up to its key (the old value is deleted); other refusals, the header.
  const size = status === BinaryStatus.valueTooLarge
    ? _refusedSize(extras, key)
    : BINARY_HEADER_BYTES;
  const expected: Expected[] = [{ type: "bin-error", opcode, opaque, status, size }];
  if (bytes.length > size) expected.push({ type: "skip", size: bytes.length - size });
  return { bytes, expected, lengths: _binaryLengths() };
}

/** What the decoder consumes of a SET too large: through its key, when it has one. */
function _refusedSize(extras: Uint8Array, key: Uint8Array): number {
  return BINARY_HEADER_BYTES + (key.length > 0 ? extras.length + key.length : 0);
}

const _STATUSES = Object.values(BinaryStatus);
const _OPCODES = Object.values(BinaryOpcode);

/** A binary response packet as memcached sends it. */
export function memcacheBinaryResponseFrame(rng: Prng): Frame {
  const opcode = rng.pick(_OPCODES);
  const status = rng.chance(0.7) ? 0 : rng.pick(_STATUSES);
  const extras = rng.bytes(rng.pick([0, 0, 4, 4, 8, 20]));
  const key = rng.chance(0.3) ? memcacheKey(rng) : new Uint8Array(0);
  const value = payloadBytes(rng, rng.chance(0.0003) ? DEFAULT_MAX_VALUE_BYTES : payloadSize(rng));
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
