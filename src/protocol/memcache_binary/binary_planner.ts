/** memcache binary's planner: frames a client's packets and plans each one (answer, forward). */
import type { BoundSink, Plan, ReplyTarget, RequestPlanner } from "../protocol.ts";
import {
  BinaryOpcode,
  BinaryStatus,
  encodeBinaryRequest,
  encodeBinaryResponse,
  isQuiet,
  isSuppressedByQuietBinary,
  loudOpcode,
  MemcacheBinaryDecoder,
} from "./binary.ts";
import type { MemcacheClient, MemcacheSettings } from "../memcache_text/text_planner.ts";
import { FixedReplySink } from "../memcache_text/text_sinks.ts";
import { VERSION } from "../../version.ts";
import { copies } from "../../io/copy_slab.ts";

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
const VERSION_BYTES = encoder.encode(`aster-${VERSION}`);

/** Plans the requests of one client in `memcache_binary` mode. */
export class MemcacheBinaryPlanner implements RequestPlanner {
  readonly #client: MemcacheClient;
  readonly #settings: MemcacheSettings;
  readonly #decoder: MemcacheBinaryDecoder;

  constructor(client: MemcacheClient, settings: MemcacheSettings) {
    this.#client = client;
    this.#settings = settings;
    this.#decoder = new MemcacheBinaryDecoder({ maxValueBytes: settings.maxValueBytes });
  }

  next(buf: Uint8Array, start: number, end: number, plan: Plan): number {
    const result = this.#decoder.decode(buf, start, end);
    if (result === null) return -1;
    if (result.kind === "skip") plan.skip();
    else if (result.kind === "error") {
      this.#client.metrics.error("refused");
      const answer = binaryResponse(result.opcode, result.opaque, {
        status: result.status,
        message: result.message,
      });
      const group = result.staleKey === undefined
        ? -1
        : this.#settings.routing.groupOf(result.staleKey);
      if (group < 0) plan.local(answer);
      else {
        // A SET too large: memcached deletes the key's old value as it refuses the value,
        // and the client gets the refusal once that delete is done.
        plan.forward(
          group,
          encodeBinaryRequest({ opcode: BinaryOpcode.delete, key: result.staleKey }),
          false,
        );
        plan.sink = new FixedReplySink(answer);
      }
    } else {this.#plan(
        result.opcode,
        result.opaque,
        result.key,
        buf.subarray(start, start + result.size),
        plan,
      );}
    return result.size;
  }

  #plan(opcode: number, opaque: number, key: Uint8Array, raw: Uint8Array, plan: Plan): void {
    this.#client.metrics.command(OPCODE_NAMES.get(opcode) ?? `0x${opcode.toString(16)}`);
    switch (opcode) {
      case BinaryOpcode.noop:
        plan.local(binaryResponse(opcode, opaque, {}));
        return;
      case BinaryOpcode.version:
        plan.local(binaryResponse(opcode, opaque, { value: VERSION_BYTES }));
        return;
      case BinaryOpcode.quit:
        plan.local(binaryResponse(opcode, opaque, {}), true);
        return;
      case BinaryOpcode.quitq:
        plan.local(EMPTY, true);
        return;
    }
    if (key.length === 0 || opcode === BinaryOpcode.stat) {
      // flush, stat... would reach one server only. A keyed stat (a group such
      // as "items") too, and memcached answers it with many packets, not the one a request
      // here is matched with.
      plan.local(
        binaryResponse(opcode, opaque, {
          status: BinaryStatus.unknownCommand,
          message: "not supported by aster",
        }),
      );
      return;
    }
    const group = this.#settings.routing.groupOf(key);
    if (group < 0) {
      plan.local(binaryFailure(opcode, opaque, "no backend available: every node is ejected"));
      return;
    }
    if (!isQuiet(opcode)) {
      plan.forward(group, raw, false);
      plan.sink = new BinarySink(opcode, opaque);
      return;
    }
    // Quiet requests go out loud so every request has a reply to match; the replies the
    // client would not have received are dropped here, the others get the quiet opcode back.
    const loud = copies.copy(raw);
    loud[1] = loudOpcode(opcode);
    plan.forward(group, loud, false);
    plan.sink = new BinarySink(opcode, opaque);
  }
}

/** Completes one binary request: quiet filtering, opcode restored, errors as packets. */
class BinarySink implements BoundSink {
  readonly #opcode: number;
  readonly #opaque: number;
  #target: ReplyTarget | null = null;

  constructor(opcode: number, opaque: number) {
    this.#opcode = opcode;
    this.#opaque = opaque;
  }

  bind(target: ReplyTarget): void {
    this.#target = target;
  }

  onReply(reply: Uint8Array): void {
    const opcode = this.#opcode;
    const target = this.#target!;
    if (reply[1] === opcode) {
      target.onReply(reply);
      return;
    }
    const status = (reply[STATUS_OFFSET] << 8) | reply[STATUS_OFFSET + 1];
    if (isSuppressedByQuietBinary(opcode, status)) {
      target.answer(EMPTY);
      return;
    }
    const copy = copies.copy(reply);
    copy[1] = opcode;
    target.answer(copy);
  }

  onError(message: string): void {
    this.#target!.answer(binaryFailure(this.#opcode, this.#opaque, message));
  }
}

/** The failure response of a request the proxy could not complete. */
export function binaryFailure(opcode: number, opaque: number, message: string): Uint8Array {
  return binaryResponse(opcode, opaque, { status: STATUS_TEMPORARY_FAILURE, message });
}

/** A response packet built by the proxy. */
export function binaryResponse(
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
