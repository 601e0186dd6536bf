/**
 * The fuzzer's adapters of the real decoders, one per target: each builds a fresh decoder
 * for an input and reduces its results to canonical text, checking on the way what a
 * proxy does next with a result (strip noreply, read a reply value, split a multiget
 * reply, view a binary packet).
 */
import { RespRequestDecoder } from "../protocol/resp/request_decoder.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { decodeReplyValue } from "../protocol/resp/reply_value.ts";
import {
  MemcacheTextDecoder,
  type MemcacheTextRequest,
  withoutNoreply,
} from "../protocol/memcache_text/text_request.ts";
import {
  type MemcacheReplyKind,
  MemcacheTextReplyFramer,
  splitRetrievalReply,
} from "../protocol/memcache_text/text_reply.ts";
import {
  decodeBinaryPacket,
  MemcacheBinaryDecoder,
  MemcacheBinaryResponseFramer,
} from "../protocol/memcache_binary/binary.ts";
import { BACKEND_MAX_VALUE_BYTES } from "../protocol/memcache_text/text_node_framer.ts";
import type { FuzzTarget } from "./fuzz_types.ts";
import {
  binaryPacketText,
  digestList,
  expectOutcome,
  frameText,
  type FuzzDriver,
  mcErrorText,
  mcRequestText,
  respRequestText,
  skipOutcome,
} from "./outcome_text.ts";

const _latin1 = new TextDecoder("latin1");

const _DRIVERS: Record<FuzzTarget, FuzzDriver> = {
  "resp-request": {
    create() {
      const decoder = new RespRequestDecoder();
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          return r === null
            ? null
            : { size: r.size, text: respRequestText(r.argv, r.inline, r.size) };
        },
      };
    },
    expect: expectOutcome,
  },
  "resp-reply": _framerTarget(() => new RespReplyFramer(), _checkRespValue),
  "memcache-text-request": {
    create() {
      // The generators' multiget lines sit around 64 KiB: keep that the limit here, so its
      // edge is fuzzed without 8 MiB inputs (the default `max_multiget_line`).
      const decoder = new MemcacheTextDecoder({ maxRetrievalLineBytes: 65536 });
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          if (r === null) return null;
          if (r.kind === "skip") return skipOutcome(r.size);
          if (r.kind === "error") {
            return { size: r.size, text: mcErrorText(r.command, r.error, r.noreply, r.size) };
          }
          // Views are read now: the caller moves the bytes afterwards.
          const noreply = r.noreplyAt < 0 ? "" : _latin1.decode(
            buf.subarray(start + r.noreplyAt, start + r.noreplyAt + r.noreplyLength),
          );
          const data = r.dataStart < 0
            ? null
            : buf.subarray(start + r.dataStart, start + r.dataStart + r.dataLength);
          const text = mcRequestText(r, noreply, data);
          if (r.noreplyAt < 0 || r.keys.length === 0) return { size: r.size, text };
          return {
            size: r.size,
            text,
            fault: _checkStripped(buf.subarray(start, start + r.size), r),
          };
        },
      };
    },
    expect: expectOutcome,
  },
  "memcache-text-reply": {
    create(input) {
      const framer = new MemcacheTextReplyFramer();
      const kinds = input.kinds.length > 0 ? input.kinds : ["line" as MemcacheReplyKind];
      let replies = 0;
      return {
        decode(buf, start, end) {
          const kind = kinds[Math.min(replies, kinds.length - 1)];
          const size = framer.frame(buf, start, end, kind);
          if (size === -1) return null;
          replies++;
          const fault = kind === "retrieval"
            ? _checkRetrievalSplit(buf.subarray(start, start + size))
            : undefined;
          return { size, text: frameText(size), fault };
        },
      };
    },
    expect: expectOutcome,
  },
  "memcache-binary-request": {
    create() {
      const decoder = new MemcacheBinaryDecoder();
      return {
        decode(buf, start, end) {
          const r = decoder.decode(buf, start, end);
          if (r === null) return null;
          if (r.kind === "skip") return skipOutcome(r.size);
          if (r.kind === "error") {
            return {
              size: r.size,
              text: `error ${r.size} op=${r.opcode} opaque=${r.opaque} status=${r.status}`,
            };
          }
          return { size: r.size, text: binaryPacketText(r) };
        },
      };
    },
    expect: expectOutcome,
  },
  "memcache-binary-response": _framerTarget(
    // As the backends frame them (values up to memcached's 1 GiB bound).
    () => new MemcacheBinaryResponseFramer({ maxValueBytes: BACKEND_MAX_VALUE_BYTES }),
    _checkBinaryPacket,
  ),
};

/**
 * A target over a reply framer that needs no request kind: each frame's size, and what
 * `check` finds wrong with the frame's bytes (a proxy reads them next).
 */
function _framerTarget(
  newFramer: () => { frame(buf: Uint8Array, start: number, end: number): number },
  check: (buf: Uint8Array, start: number, size: number) => string | undefined,
): FuzzDriver {
  return {
    create() {
      const framer = newFramer();
      return {
        decode(buf, start, end) {
          const size = framer.frame(buf, start, end);
          if (size === -1) return null;
          return { size, text: frameText(size), fault: check(buf, start, size) };
        },
      };
    },
    expect: expectOutcome,
  };
}

/**
 * A proxy forwards a noreply / quiet request as withoutNoreply() makes it and drops the
 * reply itself, so the stripped request must be the same request, but loud.
 */
function _checkStripped(raw: Uint8Array, r: MemcacheTextRequest): string | undefined {
  const stripped = withoutNoreply(raw, r);
  let again;
  try {
    again = new MemcacheTextDecoder().decode(stripped, 0, stripped.length);
  } catch (e) {
    return `withoutNoreply() of a ${r.command} request makes bytes that throw: ${e}`;
  }
  const what = `withoutNoreply() turns ${JSON.stringify(_latin1.decode(raw.subarray(0, 80)))}`;
  if (again === null || again.kind !== "request") {
    return `${what} into ${again === null ? "an incomplete request" : `a ${again.kind}`}`;
  }
  if (again.noreply) return `${what} into a request that is still noreply/quiet`;
  if (
    again.command !== r.command || again.size !== stripped.length ||
    digestList(again.keys) !== digestList(r.keys) || again.dataLength !== r.dataLength
  ) {
    return `${what} into a different request`;
  }
  return undefined;
}

/** A framed RESP reply must read as one value of that size (merges of split commands). */
function _checkRespValue(buf: Uint8Array, start: number, size: number): string | undefined {
  try {
    const value = decodeReplyValue(buf.subarray(start, start + size));
    if (value.size === size) return undefined;
    return `decodeReplyValue() reads ${value.size} bytes of a reply framed as ${size}`;
  } catch (e) {
    return `decodeReplyValue() throws on a reply framed as ${size} bytes: ${e}`;
  }
}

/** A framed retrieval reply must split into whole VALUE blocks and a last line (multigets). */
function _checkRetrievalSplit(reply: Uint8Array): string | undefined {
  try {
    const { blocks, tail } = splitRetrievalReply(reply);
    let size = tail.length;
    for (const block of blocks) size += block.length;
    if (size !== reply.length) {
      return `splitRetrievalReply() covers ${size} of ${reply.length} bytes`;
    }
    const last = _latin1.decode(tail.subarray(0, 13));
    if (!/^(END\r?\n|ERROR|CLIENT_ERROR|SERVER_ERROR)/.test(last)) {
      return `splitRetrievalReply() leaves a tail that is not END or an error: ${
        JSON.stringify(last)
      }`;
    }
    return undefined;
  } catch (e) {
    return `splitRetrievalReply() throws on a framed reply: ${e}`;
  }
}

/** A framed binary response must view as one packet of that size. */
function _checkBinaryPacket(buf: Uint8Array, start: number, size: number): string | undefined {
  try {
    const packet = decodeBinaryPacket(buf.subarray(start, start + size));
    if (packet.size === size) return undefined;
    return `decodeBinaryPacket() sees ${packet.size} bytes in a response framed as ${size}`;
  } catch (e) {
    return `decodeBinaryPacket() throws on a response framed as ${size} bytes: ${e}`;
  }
}

/** The driver of a target's real decoder. */
export function driverFor(target: FuzzTarget): FuzzDriver {
  return _DRIVERS[target];
}
