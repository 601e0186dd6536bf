/** memcached's text protocol as a Protocol: the `memcache` mode's clients and backends. */
import { startsWith } from "../bytes.ts";
import type { BackendProtocol, Protocol, ReplyFramer, RequestPlanner } from "../protocol.ts";
import { MemcacheTextNodeFramer } from "./text_node_framer.ts";
import { type MemcacheClient, type MemcacheSettings, MemcacheTextPlanner } from "./text_planner.ts";
import { textLine } from "./text_reply.ts";
import { serverErrorLine } from "./text_sinks.ts";

const encoder = new TextEncoder();
const VERSION_REPLY = encoder.encode("VERSION ");

/** memcache text's backend side: replies framed by request kind, `version` as the ping. */
export const MEMCACHE_TEXT_BACKEND: BackendProtocol = {
  ping: encoder.encode("version\r\n"),
  newReplyFramer: (): ReplyFramer => new MemcacheTextNodeFramer(),
  // memcached takes no handshake.
  handshakeRefusal: () => null,
  isHealthy: (reply) => startsWith(reply, 0, reply.length, VERSION_REPLY),
};

/** The `memcache` mode's protocol; `settings` are shared by every client (a reload updates them). */
export class MemcacheTextProtocol implements Protocol<MemcacheClient> {
  readonly ping: Uint8Array = MEMCACHE_TEXT_BACKEND.ping;
  readonly newReplyFramer = MEMCACHE_TEXT_BACKEND.newReplyFramer;
  readonly handshakeRefusal = MEMCACHE_TEXT_BACKEND.handshakeRefusal;
  readonly isHealthy = MEMCACHE_TEXT_BACKEND.isHealthy;
  readonly #settings: MemcacheSettings;

  constructor(settings: MemcacheSettings) {
    this.#settings = settings;
  }

  newPlanner(client: MemcacheClient): RequestPlanner {
    return new MemcacheTextPlanner(client, this.#settings);
  }

  errorReply(message: string): Uint8Array {
    return serverErrorLine(message);
  }

  protocolErrorReply(message: string): Uint8Array {
    return textLine(`CLIENT_ERROR ${message.replace(/[\r\n]+/g, " ")}`);
  }
}
