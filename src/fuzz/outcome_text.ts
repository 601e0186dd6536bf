/**
 * What the fuzz harness compares: a decoder's result reduced to its size and a canonical
 * text (the interfaces a per-target driver implements), and that text for each kind of
 * result and for the results a valid frame must give.
 */
import type { BinaryPacket } from "../protocol/memcache_binary/binary.ts";
import type { Expected, FuzzCase } from "./fuzz_types.ts";

/** One decode result reduced to what the checks compare. */
export interface DecodeOutcome {
  /** Bytes consumed. */
  size: number;
  /** Canonical text of the result (compared between runs and with the expectation). */
  text: string;
  /** A run of discarded bytes: consecutive ones are merged before comparing. */
  skip?: boolean;
  /** A broken property the driver found in this result (reported as a failure). */
  fault?: string;
}

/** One decoder instance as the harness sees it. */
export interface FuzzDecoder {
  /** Decodes at `buf[start, end)`: null when more bytes are needed; throws like the decoder. */
  decode(buf: Uint8Array, start: number, end: number): DecodeOutcome | null;
}

/** How to build and read one kind of decoder. */
export interface FuzzDriver {
  /** A fresh decoder for one input (the case gives, for example, reply kinds). */
  create(input: FuzzCase): FuzzDecoder;
  /** The outcome a valid frame's expected result must match. */
  expect(expected: Expected): DecodeOutcome;
}

const _HEX_TABLE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += _HEX_TABLE[bytes[i]];
  return out;
}

/** Short stable text for a payload: hex when short, length and FNV-1a hash when long. */
function _digest(bytes: Uint8Array): string {
  if (bytes.length <= 48) return hex(bytes);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${bytes.length}#${(h >>> 0).toString(16)}`;
}

/** Comma-separated digests of `items` (keys, arguments). */
export function digestList(items: readonly Uint8Array[]): string {
  let out = "";
  for (let i = 0; i < items.length; i++) out += (i > 0 ? "," : "") + _digest(items[i]);
  return out;
}

/** Text of a RESP request. */
export function respRequestText(
  argv: readonly Uint8Array[],
  inline: boolean,
  size: number,
): string {
  return `req ${size} ${inline ? "inline" : "multibulk"} [${digestList(argv)}]`;
}

/** Text of a memcached text request, with its noreply part and data block. */
export function mcRequestText(
  r: {
    command: string;
    keys: readonly Uint8Array[];
    exptime: Uint8Array | null;
    args: readonly Uint8Array[];
    base64Key: boolean;
    size: number;
  },
  noreply: string,
  data: Uint8Array | null,
): string {
  return `req ${r.size} ${r.command} keys=[${digestList(r.keys)}] exptime=${
    r.exptime === null ? "-" : _digest(r.exptime)
  } args=[${digestList(r.args)}] noreply=${JSON.stringify(noreply)} b64=${r.base64Key} data=${
    data === null ? "-" : _digest(data)
  }`;
}

/** Text of a memcached text request the decoder refused while keeping the framing. */
export function mcErrorText(command: string | null, error: string, noreply: boolean, size: number) {
  return `error ${size} ${command ?? "-"} ${JSON.stringify(error)} noreply=${noreply}`;
}

/** Text of a memcached binary packet. */
export function binaryPacketText(p: Omit<BinaryPacket, "kind" | "magic">): string {
  return `packet ${p.size} op=${p.opcode} vbucket=${p.status} opaque=${p.opaque} cas=${p.cas} ` +
    `type=${p.dataType} extras=${_digest(p.extras)} key=${_digest(p.key)} value=${
      _digest(p.value)
    }`;
}

/** Text of a framed reply (framers only report sizes). */
export function frameText(size: number): string {
  return `frame ${size}`;
}

/** A run of `size` discarded bytes. */
export function skipOutcome(size: number): DecodeOutcome {
  return { size, text: "skip", skip: true };
}

/** The outcome a valid frame's expected result must match (the drivers' `expect`). */
export function expectOutcome(e: Expected): DecodeOutcome {
  switch (e.type) {
    case "resp-request":
      return { size: e.size, text: respRequestText(e.argv, e.inline, e.size) };
    case "frame":
      return { size: e.size, text: frameText(e.size) };
    case "mc-request":
      return { size: e.size, text: mcRequestText(e, e.noreply, e.data) };
    case "mc-error":
      return { size: e.size, text: mcErrorText(e.command, e.error, e.noreply, e.size) };
    case "bin-packet":
      return {
        size: e.size,
        text: binaryPacketText({ ...e, status: e.vbucket, dataType: 0 }),
      };
    case "bin-error":
      return {
        size: e.size,
        text: `error ${e.size} op=${e.opcode} opaque=${e.opaque} status=${e.status}`,
      };
    case "skip":
      return skipOutcome(e.size);
  }
}
