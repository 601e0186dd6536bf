/** The memcached text-protocol side of a session: frames requests, answers or routes each one. */
import type { NodePool } from "../backend/node_pool.ts";
import type { ReplyFramer } from "../backend/node_conn.ts";
import type { ReplySink } from "../backend/reply_sink.ts";
import {
  buildRetrieval,
  type MemcacheTextDecoded,
  MemcacheTextDecoder,
  type MemcacheTextError,
  type MemcacheTextRequest,
  type RetrievalHead,
  withoutNoreply,
} from "../protocol/memcache_text/text_request.ts";
import {
  type MemcacheReplyKind,
  MemcacheTextReplyFramer,
  mergeRetrieval,
  replyKind,
  textLine,
} from "../protocol/memcache_text/text_reply.ts";
import type { Router } from "./ring_router.ts";
import { groupKeys, type SplitPart } from "./redis_split.ts";
import type { ReplySlot, RequestHandler, Session } from "./session.ts";
import { feedFrames, type FrameHandlers } from "./feed_frames.ts";
import { VERSION } from "../version.ts";
import { copies } from "../io/copy_slab.ts";

/** Reply kinds as the numbers NodeConn hands back to the framer. */
const REPLY_KINDS: readonly MemcacheReplyKind[] = ["line", "retrieval", "meta"];
const KIND_NUMBER: Record<MemcacheReplyKind, number> = { line: 0, retrieval: 1, meta: 2 };
/** A quiet meta request sent with `mn` after it: zero or one reply, then `MN`. */
const QUIET_META = 3;
const MN_REQUEST = new TextEncoder().encode("mn\r\n");

/**
 * Frames memcached text replies on a backend connection by the kind each request was sent
 * with; a quiet meta request's reply runs up to and including the `MN` that follows it.
 */
export class MemcacheTextNodeFramer implements ReplyFramer {
  readonly #framer = new MemcacheTextReplyFramer({ maxValueBytes: 1024 * 1024 * 1024 });
  /** Quiet meta: bytes of the replies already framed before the MN, from `start`. */
  #framed = 0;

  frame(buf: Uint8Array, start: number, end: number, kind: number): number {
    if (kind !== QUIET_META) return this.#framer.frame(buf, start, end, REPLY_KINDS[kind]);
    for (;;) {
      const at = start + this.#framed;
      const size = this.#framer.frame(buf, at, end, "meta");
      if (size < 0) return -1;
      this.#framed += size;
      if (_isMn(buf, at, size)) {
        const total = this.#framed;
        this.#framed = 0;
        return total;
      }
    }
  }
}

function _isMn(buf: Uint8Array, at: number, size: number): boolean {
  return size === 4 && buf[at] === 0x4d && buf[at + 1] === 0x4e; // "MN\r\n"
}

const EMPTY = new Uint8Array(0);
const NO_BACKEND = "no backend available: every node is ejected";
const VERSION_REPLY = textLine(`VERSION aster-${VERSION}`);
const MN_REPLY = textLine("MN");

/** What every memcache session of a worker shares. */
export interface MemcacheBackend {
  router: Router;
  pool: NodePool;
  /** Largest value accepted, bytes. */
  maxValueBytes: number;
  /** Longest get/gets/gat/gats line accepted, bytes (`max_multiget_line`). */
  maxRetrievalLineBytes: number;
}

/** Handles the requests of one client session in `memcache` mode. */
export class MemcacheTextFrontend implements RequestHandler {
  readonly #session: Session;
  readonly #backend: MemcacheBackend;
  readonly #decoder: MemcacheTextDecoder;

  constructor(session: Session, backend: MemcacheBackend) {
    this.#session = session;
    this.#backend = backend;
    this.#decoder = new MemcacheTextDecoder({
      maxValueBytes: backend.maxValueBytes,
      maxRetrievalLineBytes: backend.maxRetrievalLineBytes,
    });
  }

  readonly #handlers: FrameHandlers<MemcacheTextDecoded> = {
    decode: (buf, start, end) => this.#decoder.decode(buf, start, end),
    refused: (result) => {
      const refusal = result as MemcacheTextError;
      const session = this.#session;
      if (!refusal.noreply) session.answer(session.reserve(), textLine(refusal.error));
    },
    request: (result, raw) => this.#handle(result as MemcacheTextRequest, raw),
  };

  feed(buf: Uint8Array, start: number, end: number): number {
    return feedFrames(this.#session, { buf, start, end, handlers: this.#handlers });
  }

  errorReply(message: string): Uint8Array {
    return textLine(`SERVER_ERROR ${message.replace(/[\r\n]+/g, " ")}`);
  }

  protocolErrorReply(message: string): Uint8Array {
    return textLine(`CLIENT_ERROR ${message.replace(/[\r\n]+/g, " ")}`);
  }

  #handle(req: MemcacheTextRequest, raw: Uint8Array): void {
    const session = this.#session;
    session.metrics.command(req.command);
    switch (req.command) {
      case "quit":
        session.answerAndClose(EMPTY);
        return;
      case "version":
        session.answer(session.reserve(), VERSION_REPLY);
        return;
      case "mn":
        session.answer(session.reserve(), MN_REPLY);
        return;
      case "get":
      case "gets":
      case "gat":
      case "gats":
        this.#retrieve(req, raw);
        return;
    }
    if (req.keys.length === 0) {
      // Admin commands (flush_all, stats, verbosity...) would act on one server only.
      if (!req.noreply) {
        session.answer(
          session.reserve(),
          this.errorReply(`command '${req.command}' is not supported by aster`),
        );
      }
      return;
    }
    const node = this.#backend.router.pick(_routingKey(req));
    const slot = session.reserve();
    if (node < 0) {
      this.#fail(slot, req, NO_BACKEND);
      return;
    }
    const conn = this.#backend.pool.connFor(node, session.id);
    const kind = KIND_NUMBER[replyKind(req.command)];
    if (!req.noreply) {
      conn.send(raw, slot, kind);
      return;
    }
    if (kind === KIND_NUMBER.meta) {
      // Quiet meta mode: only memcached knows which replies it hides (a created item's HD
      // shows, an incremented one's does not), so the request goes as it is, with an `mn`
      // after it that always answers: whatever comes before the MN is the client's.
      const bytes = new Uint8Array(raw.length + MN_REQUEST.length);
      bytes.set(raw);
      bytes.set(MN_REQUEST, raw.length);
      conn.send(bytes, new QuietMetaSink(this, slot), QUIET_META);
      return;
    }
    // Text noreply: memcached sends nothing, even for most errors. The request goes without
    // its noreply (so every request has a reply to match) and the reply is dropped.
    conn.send(withoutNoreply(raw, req), new DroppedReplySink(slot), kind);
  }

  /** Answers a failed request: nothing for text noreply, SERVER_ERROR otherwise. */
  #fail(slot: ReplySlot, req: MemcacheTextRequest, message: string): void {
    const silent = req.noreply && replyKind(req.command) === "line";
    this.#session.answer(slot, silent ? EMPTY : this.errorReply(message));
  }

  /** get/gets/gat/gats: whole when every key is on one server, else split and merged. */
  #retrieve(req: MemcacheTextRequest, raw: Uint8Array): void {
    const session = this.#session;
    const { router, pool } = this.#backend;
    const slot = session.reserve();
    const kind = KIND_NUMBER.retrieval;
    const touch = req.exptime !== null;
    if (req.keys.length === 1 && (!touch || raw.length <= MAX_GAT_LINE)) {
      // The usual get: no per-key arrays or callbacks.
      const node = router.pick(req.keys[0]);
      if (node < 0) session.answer(slot, this.errorReply(NO_BACKEND));
      else pool.connFor(node, session.id).send(raw, slot, kind);
      return;
    }
    const nodes = req.keys.map((key) => router.pick(key));
    if (nodes.some((node) => node < 0)) {
      session.answer(slot, this.errorReply(NO_BACKEND));
      return;
    }
    if (nodes.every((node) => node === nodes[0]) && (!touch || raw.length <= MAX_GAT_LINE)) {
      pool.connFor(nodes[0], session.id).send(raw, slot, kind);
      return;
    }
    const keyIndexes = req.keys.map((_, index) => index);
    let parts = groupKeys(keyIndexes, nodes);
    const head: RetrievalHead = touch ? { command: req.command, exptime: _shortExptime(req) } : req;
    if (touch) parts = _shortGatParts(head, req.keys, parts);
    const keys = req.keys.map((key) => copies.copy(key));
    const merge = new RetrievalMerge(
      keys,
      parts.map((part) => part.keyIndexes),
      (reply) => session.answer(slot, reply),
    );
    for (let i = 0; i < parts.length; i++) {
      const partKeys = parts[i].keyIndexes.map((index) => req.keys[index]);
      const bytes = buildRetrieval(head, partKeys);
      pool.connFor(parts[i].group, session.id).send(bytes, merge.sinkFor(i, this), kind);
    }
  }
}

/**
 * Longest gat/gats line sent to memcached: it closes a connection holding more than 1 KB
 * without a "\n" unless the line is a get/gets (proto_text.c), which would fail every
 * request sharing that backend connection.
 */
const MAX_GAT_LINE = 1024;

/** Splits the parts of a gat/gats so that each one's line fits in MAX_GAT_LINE. */
function _shortGatParts(
  head: RetrievalHead,
  keys: readonly Uint8Array[],
  parts: SplitPart[],
): SplitPart[] {
  // "gats <exptime>" and "\r\n"; a key adds a space and its bytes (at most 251).
  const base = 4 + 1 + head.exptime!.length + 2;
  const out: SplitPart[] = [];
  for (const part of parts) {
    let chunk: number[] = [];
    let size = base;
    for (const index of part.keyIndexes) {
      const add = 1 + keys[index].length;
      if (chunk.length > 0 && size + add > MAX_GAT_LINE) {
        out.push({ group: part.group, keyIndexes: chunk });
        chunk = [];
        size = base;
      }
      chunk.push(index);
      size += add;
    }
    out.push({ group: part.group, keyIndexes: chunk });
  }
  return out;
}

/** A gat's exptime without the leading zeros memcached ignores, so a line stays short. */
function _shortExptime(req: MemcacheTextRequest): Uint8Array {
  const exptime = req.exptime!;
  if (exptime.length <= 20) return exptime;
  try {
    return new TextEncoder().encode(String(BigInt(new TextDecoder().decode(exptime))));
  } catch {
    return exptime;
  }
}

/** A text noreply request: the client gets nothing, whatever the backend answered. */
class DroppedReplySink implements ReplySink {
  readonly #slot: ReplySlot;

  constructor(slot: ReplySlot) {
    this.#slot = slot;
  }

  onReply(): void {
    this.#slot.session.answer(this.#slot, EMPTY);
  }

  onError(): void {
    this.#slot.session.answer(this.#slot, EMPTY);
  }
}

/** A quiet meta request sent with `mn`: the client gets what came before the MN. */
class QuietMetaSink implements ReplySink {
  readonly #frontend: MemcacheTextFrontend;
  readonly #slot: ReplySlot;

  constructor(frontend: MemcacheTextFrontend, slot: ReplySlot) {
    this.#frontend = frontend;
    this.#slot = slot;
  }

  onReply(reply: Uint8Array): void {
    const shown = reply.subarray(0, reply.length - MN_REQUEST.length);
    if (shown.length === 0) this.#slot.session.answer(this.#slot, EMPTY);
    else this.#slot.onReply(shown);
  }

  onError(message: string): void {
    // Quiet mode still reports failures.
    this.#slot.session.answer(this.#slot, this.#frontend.errorReply(message));
  }
}

/** Collects the parts of a split multiget and answers with their blocks in key order. */
class RetrievalMerge {
  readonly #keys: Uint8Array[];
  readonly #partKeys: number[][];
  readonly #replies: (Uint8Array | null)[];
  readonly #done: (reply: Uint8Array) => void;
  #remaining: number;

  constructor(keys: Uint8Array[], partKeys: number[][], done: (reply: Uint8Array) => void) {
    this.#keys = keys;
    this.#partKeys = partKeys;
    this.#replies = partKeys.map(() => null);
    this.#remaining = partKeys.length;
    this.#done = done;
  }

  sinkFor(index: number, frontend: MemcacheTextFrontend): ReplySink {
    return {
      onReply: (reply) => this.#complete(index, copies.copy(reply)),
      onError: (message) => this.#complete(index, frontend.errorReply(message)),
    };
  }

  #complete(index: number, reply: Uint8Array): void {
    if (this.#replies[index] !== null) return;
    this.#replies[index] = reply;
    if (--this.#remaining > 0) return;
    const parts = this.#partKeys.map((keys, i) => ({ keys, reply: this.#replies[i]! }));
    this.#done(mergeRetrieval(this.#keys, parts));
  }
}

/** The bytes a key is hashed by: meta requests with the "b" flag carry base64 keys. */
function _routingKey(req: MemcacheTextRequest): Uint8Array {
  const key = req.keys[0];
  if (!req.base64Key) return key;
  try {
    return Uint8Array.from(atob(new TextDecoder().decode(key)), (c) => c.charCodeAt(0));
  } catch {
    return key;
  }
}
