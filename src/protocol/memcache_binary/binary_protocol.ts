/** memcached's binary protocol as a Protocol: the `memcache_binary` mode's clients and backends. */
import type { BackendProtocol, Protocol, ReplyFramer, RequestPlanner } from "../protocol.ts";
import { BinaryOpcode, encodeBinaryRequest, MemcacheBinaryResponseFramer } from "./binary.ts";
import { binaryFailure, MemcacheBinaryPlanner } from "./binary_planner.ts";
import type { MemcacheClient, MemcacheSettings } from "../memcache_text/text_planner.ts";
import { BACKEND_MAX_VALUE_BYTES } from "../memcache_text/text_node_framer.ts";

const EMPTY = new Uint8Array(0);

/** memcache binary's backend side: response packets framed, VERSION as the ping. */
export const MEMCACHE_BINARY_BACKEND: BackendProtocol = {
  ping: encodeBinaryRequest({ opcode: BinaryOpcode.version }),
  // Values as large as memcached holds (`-I`): a reply over 1 MiB failed the connection.
  newReplyFramer: (): ReplyFramer =>
    new MemcacheBinaryResponseFramer({ maxValueBytes: BACKEND_MAX_VALUE_BYTES }),
  // memcached takes no handshake.
  handshakeRefusal: () => null,
  // A response with status 0 (ok).
  isHealthy: (reply) => reply[6] === 0 && reply[7] === 0,
};

/** The `memcache_binary` mode's protocol; `settings` are shared by every client. */
export class MemcacheBinaryProtocol implements Protocol<MemcacheClient> {
  readonly ping: Uint8Array = MEMCACHE_BINARY_BACKEND.ping;
  readonly newReplyFramer = MEMCACHE_BINARY_BACKEND.newReplyFramer;
  readonly handshakeRefusal = MEMCACHE_BINARY_BACKEND.handshakeRefusal;
  readonly isHealthy = MEMCACHE_BINARY_BACKEND.isHealthy;
  readonly #settings: MemcacheSettings;

  constructor(settings: MemcacheSettings) {
    this.#settings = settings;
  }

  newPlanner(client: MemcacheClient): RequestPlanner {
    return new MemcacheBinaryPlanner(client, this.#settings);
  }

  /** Errors of binary requests are built per request (they echo opcode and opaque). */
  errorReply(message: string): Uint8Array {
    return binaryFailure(BinaryOpcode.noop, 0, message);
  }

  /** A client that breaks binary framing is closed without a reply, as memcached does. */
  protocolErrorReply(): Uint8Array {
    return EMPTY;
  }
}
