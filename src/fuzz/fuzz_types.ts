/**
 * The fuzzer's vocabulary: the decoders it drives (targets), the results a valid frame must
 * decode to, and the frames and inputs (cases) the generators make.
 */
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
