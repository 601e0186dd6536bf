/** The memcached binary-protocol side of a session: frames packets, answers or routes each. */
import type { ReplySink } from "../backend/reply_sink.ts";
import {
  BinaryOpcode,
  type BinaryPacket,
  type BinaryRequestError,
  type BinarySkip,
  BinaryStatus,
  encodeBinaryResponse,
  isQuiet,
  isSuppressedByQuietBinary,
  loudOpcode,
  MemcacheBinaryDecoder,
} from "../protocol/memcache_binary/binary.ts";
import type { MemcacheBackend } from "./memcache_text_frontend.ts";
import type { ReplySlot, RequestHandler, Session } from "./session.ts";
import { feedFrames, type FrameHandlers } from "./feed_frames.ts";
import { VERSION } from "../version.ts";
import { copies } from "../io/copy_slab.ts";

const EMPTY = new Uint8Array(0);
/** Opcode -> name, for metrics. */
const OPCODE_NAMES = new Map<number, string>(
  Object.entries(BinaryOpcode).map(([name, opcode]) => [opcode, name]),
);
const encoder = new TextEncoder();
/** Status for a request the proxy could not complete (memcached's "temporary failure"). */
const STATUS_TEMPORARY_FAILURE = 0x0086;
/** Offset of the status field in a response header. */
const STATUS_OFFSET = 6;

/** Handles the requests of one client session in `memcache_binary` mode. */
export class MemcacheBinaryFrontend implements RequestHandler {
  readonly #session: Session;
  readonly #backend: MemcacheBackend;
  readonly #decoder: MemcacheBinaryDecoder;

  constructor(session: Session, backend: MemcacheBackend) {
    this.#session = session;
    this.#backend = backend;
    this.#decoder = new MemcacheBinaryDecoder({ maxValueBytes: backend.maxValueBytes });
  }

  readonly #handlers: FrameHandlers<BinaryPacket | BinaryRequestError | BinarySkip> = {
    decode: (buf, start, end) => this.#decoder.decode(buf, start, end),
    refused: (result) => {
      const refusal = result as BinaryRequestError;
      const session = this.#session;
      session.answer(
        session.reserve(),
        _response(refusal.opcode, refusal.opaque, {
          status: refusal.status,
          message: refusal.message,
        }),
      );
    },
    request: (result, raw) => this.#handle(result as BinaryPacket, raw),
  };

  feed(buf: Uint8Array, start: number, end: number): number {
    return feedFrames(this.#session, { buf, start, end, handlers: this.#handlers });
  }

  /** Errors of binary requests are built per request (they echo opcode and opaque). */
  errorReply(message: string): Uint8Array {
    return _response(BinaryOpcode.noop, 0, { status: STATUS_TEMPORARY_FAILURE, message });
  }

  /** A client that breaks binary framing is closed without a reply, as memcached does. */
  protocolErrorReply(): Uint8Array {
    return EMPTY;
  }

  #handle(packet: BinaryPacket, raw: Uint8Array): void {
    const session = this.#session;
    const { opcode, opaque } = packet;
    session.metrics.command(OPCODE_NAMES.get(opcode) ?? `0x${opcode.toString(16)}`);
    switch (opcode) {
      case BinaryOpcode.noop:
        session.answer(session.reserve(), _response(opcode, opaque, {}));
        return;
      case BinaryOpcode.version:
        session.answer(session.reserve(), _response(opcode, opaque, { value: VERSION_BYTES }));
        return;
      case BinaryOpcode.quit:
        session.answerAndClose(_response(opcode, opaque, {}));
        return;
      case BinaryOpcode.quitq:
        session.answerAndClose(EMPTY);
        return;
    }
    const slot = session.reserve();
    if (packet.key.length === 0) {
      // flush, stat, verbosity... would reach one server only.
      session.answer(
        slot,
        _response(opcode, opaque, {
          status: BinaryStatus.unknownCommand,
          message: "not supported by aster",
        }),
      );
      return;
    }
    const node = this.#backend.router.pick(packet.key);
    if (node < 0) {
      session.answer(slot, _failure(opcode, opaque, "no backend available: every node is ejected"));
      return;
    }
    const conn = this.#backend.pool.connFor(node, session.id);
    if (!isQuiet(opcode)) {
      conn.send(raw, new BinarySink(slot, opcode, opaque));
      return;
    }
    // Quiet requests go out loud so every request has a reply to match; the replies the
    // client would not have received are dropped here, the others get the quiet opcode back.
    const loud = copies.copy(raw);
    loud[1] = loudOpcode(opcode);
    conn.send(loud, new BinarySink(slot, opcode, opaque));
  }
}

const VERSION_BYTES = encoder.encode(`aster-${VERSION}`);

/** Completes one binary request: quiet filtering, opcode restored, errors as packets. */
class BinarySink implements ReplySink {
  readonly #slot: ReplySlot;
  readonly #opcode: number;
  readonly #opaque: number;

  constructor(slot: ReplySlot, opcode: number, opaque: number) {
    this.#slot = slot;
    this.#opcode = opcode;
    this.#opaque = opaque;
  }

  onReply(reply: Uint8Array): void {
    const opcode = this.#opcode;
    if (reply[1] === opcode) {
      this.#slot.onReply(reply);
      return;
    }
    const status = (reply[STATUS_OFFSET] << 8) | reply[STATUS_OFFSET + 1];
    if (isSuppressedByQuietBinary(opcode, status)) {
      this.#slot.session.answer(this.#slot, EMPTY);
      return;
    }
    const copy = copies.copy(reply);
    copy[1] = opcode;
    this.#slot.session.answer(this.#slot, copy);
  }

  onError(message: string): void {
    this.#slot.session.answer(this.#slot, _failure(this.#opcode, this.#opaque, message));
  }
}

function _failure(opcode: number, opaque: number, message: string): Uint8Array {
  return _response(opcode, opaque, { status: STATUS_TEMPORARY_FAILURE, message });
}

function _response(
  opcode: number,
  opaque: number,
  fields: { status?: number; message?: string; value?: Uint8Array },
): Uint8Array {
  return encodeBinaryResponse({
    opcode,
    opaque,
    status: fields.status ?? BinaryStatus.ok,
    value: fields.value ??
      (fields.message === undefined ? undefined : encoder.encode(fields.message)),
  });
}
