/**
 * `redis_cluster` mode, a request on a dedicated connection (a blocking command, a
 * transaction, a watching client's command): shared connections' requests follow MOVED and
 * ASK in `ClusterRequest`; these did not, and their redirects and lost connections did not
 * even ask for a fresh slot map, so after a reshard or a failover every later pinned request
 * of the slot went to the old node until the next periodic fetch.
 */
import type { ReplySink } from "../protocol/protocol.ts";
import type { BufferLease } from "../io/buffer_pool.ts";
import { parseRedirect } from "../cluster/slot_table.ts";
import type { RedisRouting } from "./routing.ts";

const MINUS = 0x2d; // "-"
/** Most redirects one blocking request follows before its client gets the last one. */
const MAX_REDIRECTS = 5;
const latin1 = new TextDecoder("latin1");

/** Sends a blocking request again at `node` (ASKING first when `asking`); false: could not. */
export type PinnedResend = (node: number, asking: boolean, sink: ReplySink) => boolean;

/** A cluster error reply's line (`MOVED 3999 host:port`) and its code, or null for any other. */
function _clusterError(reply: Uint8Array): { line: string; code: string } | null {
  if (reply[0] !== MINUS || reply.length > 512) return null;
  const line = latin1.decode(reply.subarray(1, reply.length - 2));
  const space = line.indexOf(" ");
  const code = space < 0 ? line : line.slice(0, space);
  // UNBLOCKED: a blocked client's master was turned into a replica (a manual failover).
  return code === "MOVED" || code === "ASK" || code === "TRYAGAIN" || code === "CLUSTERDOWN" ||
      code === "UNBLOCKED"
    ? { line, code }
    : null;
}

/**
 * Asks for a fresh slot map when a pinned request meets a cluster error or loses its
 * connection, and sends a blocking request (`resend` given) again where a MOVED or ASK
 * points: Redis answers those before running the command, and unblocks a client whose slot
 * moved away with a MOVED, having popped nothing. Other replies pass as they are.
 */
export class PinnedRedirects implements ReplySink {
  readonly #sink: ReplySink;
  readonly #routing: RedisRouting;
  readonly #resend: PinnedResend | null;
  readonly #client: { readonly clientGone: boolean };
  #redirects = 0;

  constructor(
    sink: ReplySink,
    routing: RedisRouting,
    resend: PinnedResend | null,
    client: { readonly clientGone: boolean },
  ) {
    this.#sink = sink;
    this.#routing = routing;
    this.#resend = resend;
    this.#client = client;
  }

  onReply(reply: Uint8Array, owned?: boolean): void {
    const error = _clusterError(reply);
    if (error !== null) {
      this.#routing.refreshPlacement?.();
      if (
        this.#resend !== null && (error.code === "MOVED" || error.code === "ASK") &&
        this.#routing.redirectNode !== undefined && ++this.#redirects <= MAX_REDIRECTS
      ) {
        const redirect = parseRedirect(error.line);
        const node = redirect === null ? -1 : this.#routing.redirectNode(redirect);
        if (node >= 0 && this.#resend(node, redirect!.kind === "ask", this)) return;
      }
    }
    this.#sink.onReply(reply, owned);
  }

  /** A large reply under way is no redirect (those are one line): its sink may stream it. */
  onPartial(data: Uint8Array, start: number, end: number, lease: BufferLease): void {
    this.#sink.onPartial?.(data, start, end, lease);
  }

  onError(message: string): void {
    // A lost connection may mean a failed master: look for its successor. Not when Aster
    // closed it because its client left (a blocked client that goes is no sign of that).
    if (!this.#client.clientGone) this.#routing.refreshPlacement?.();
    this.#sink.onError(message);
  }
}
