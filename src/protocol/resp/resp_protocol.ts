/** RESP as a Protocol: the Redis modes' clients and backends (`redis`, `redis_cluster`). */
import { bytesAre } from "../bytes.ts";
import type { BackendProtocol, Protocol, ReplyFramer, RequestPlanner } from "../protocol.ts";
import { encodeCommandText, encodeError, encodeProxyError, PONG_REPLY } from "./encoder.ts";
import { RespReplyFramer } from "./reply_framer.ts";
import { type RedisSettings, type RespClient, RespPlanner } from "./resp_planner.ts";

const PING = encodeCommandText("PING");
const MINUS = 0x2d; // "-"

/** RESP's backend side: replies framed, an error reply refuses a handshake, PING answers PONG. */
export const RESP_BACKEND: BackendProtocol = {
  ping: PING,
  newReplyFramer: (): ReplyFramer => new RespReplyFramer(),
  handshakeRefusal: respHandshakeRefusal,
  isHealthy: (reply) => bytesAre(reply, 0, reply.length, PONG_REPLY),
};

/** The Redis modes' protocol; `settings` are shared by every client (a reload updates them). */
export class RespProtocol implements Protocol<RespClient> {
  readonly ping: Uint8Array = PING;
  readonly newReplyFramer = RESP_BACKEND.newReplyFramer;
  readonly handshakeRefusal = RESP_BACKEND.handshakeRefusal;
  readonly isHealthy = RESP_BACKEND.isHealthy;
  readonly #settings: RedisSettings;

  constructor(settings: RedisSettings) {
    this.#settings = settings;
  }

  newPlanner(client: RespClient): RequestPlanner {
    return new RespPlanner(client, this.#settings);
  }

  errorReply(message: string): Uint8Array {
    return encodeProxyError(message);
  }

  protocolErrorReply(message: string): Uint8Array {
    return encodeError(`ERR Protocol error: ${message}`);
  }
}

/**
 * The refusal in a RESP handshake reply (an error reply: AUTH, READONLY refused), or null
 * when it accepted; the text is cut at ~200 bytes for the log.
 */
export function respHandshakeRefusal(reply: Uint8Array): string | null {
  if (reply[0] !== MINUS) return null;
  return new TextDecoder().decode(reply.subarray(1, Math.min(reply.length - 2, 200)));
}
