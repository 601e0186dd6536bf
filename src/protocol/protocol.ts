/**
 * What one wire protocol (RESP, memcache text, memcache binary) gives the shared session and
 * backend code: request framing and a plan per request (`RequestPlanner`), reply framing,
 * the backend handshake and health ping, and error replies (`Protocol`). A plan says what to
 * do; the session carries it out (src/proxy/session.ts). Routing (ring, slots) is not here:
 * it is the same for every protocol (src/proxy/routing.ts).
 */
import type { BufferLease } from "../io/buffer_pool.ts";

/** Where a backend reply goes: a client's reply slot, a split's part, a health ping. */
export interface ReplySink {
  /**
   * The complete reply: a view into the connection's buffer, valid only during the call;
   * unless `owned`: then the connection gave the buffer up and the sink may keep the bytes.
   * An owned reply may come with a `lease` on its buffer: a sink that drops it once nothing
   * it made reads the bytes any more (ReplySlot: once queued on the client's writer) lets
   * the buffer go back to the pool; a sink that ignores it leaves the buffer to GC.
   */
  onReply(reply: Uint8Array, owned?: boolean, lease?: BufferLease): void;
  /** The request failed (connection lost, timeout, node down): no reply will come. */
  onError(message: string): void;
  /**
   * Optional: a large reply is under way, its bytes so far at `data[start, end)` (more
   * follow; onReply then brings all of it, from `start`). A sink that writes some of them on
   * now (cut-through) may keep views of them while it holds `lease` (hold() per view, drop()
   * once written): the connection neither moves nor reuses them meanwhile. Called after each
   * read that leaves the reply incomplete.
   */
  onPartial?(data: Uint8Array, start: number, end: number, lease: BufferLease): void;
}

/** Frames replies on a backend stream; throws ProtocolError when it is not the protocol. */
export interface ReplyFramer {
  /**
   * Size of the complete reply at `buf[start]`, or -1 when more bytes are needed. `kind`
   * is what the request was sent with (protocols whose reply shape depends on the request,
   * like memcached's text protocol, use it).
   */
  frame(buf: Uint8Array, start: number, end: number, kind: number): number;
  /**
   * After frame() returned -1: the bytes the partial reply is expected to need from its
   * start (0 when unknown); the read buffer grows to it at once.
   */
  readonly neededBytes?: number;
}

/** A client's reply slot as a plan's sinks see it: one reply, in request order. */
export interface ReplyTarget extends ReplySink {
  /** Answers with bytes the session may keep (a built reply, not a view). */
  answer(reply: Uint8Array): void;
  /** Answers with a reply that may be a view into a reused buffer (`isView`): copied if kept. */
  fill(reply: Uint8Array, isView: boolean): void;
  /**
   * Answers with a reply given as consecutive pieces that stay valid (a merge of large
   * values, written from where they lie instead of copied into one buffer). `leases` hold
   * the read buffers the pieces lie in: each is dropped once the pieces are written or copied.
   */
  fillPieces?(pieces: readonly Uint8Array[], leases: readonly BufferLease[]): void;
  /**
   * Writes part of a reply now (a large merge written while its parts still arrive): each
   * piece lent under its lease (null: the bytes stay valid). False, with nothing written,
   * when the reply cannot start now (not next in line, or not written at all). Once it
   * started the reply is ended by a call with `last`, or cut by onError, which closes the
   * client.
   */
  stream?(
    pieces: readonly Uint8Array[],
    leases: readonly (BufferLease | null)[],
    last: boolean,
  ): boolean;
}

/**
 * A sink that completes a request's slot its own way (quiet replies dropped, an opcode
 * restored, a merge of parts). The planner makes it; the session binds it to the slot it
 * reserves for the request, then sends.
 */
export interface BoundSink extends ReplySink {
  bind(target: ReplyTarget): void;
}

/**
 * A request split over several groups whose replies merge into one (MGET, MSET, DEL...,
 * broadcasts, memcache multi-get): see SplitMerge, the one implementation.
 */
export interface FanOut {
  /** Parts to send. */
  readonly parts: number;
  /** The group (node or slot) of part `index`. */
  groupOf(index: number): number;
  /** The request of part `index`: valid until the next call (sending copies it). */
  requestOf(index: number): Uint8Array;
  /** The sink of part `index`. */
  sinkFor(index: number): ReplySink;
  /** Where the merged reply goes (called once, before the parts are sent). */
  bind(target: ReplyTarget): void;
}

/** What a plan asks the session to do. */
export const PlanKind = {
  /** Nothing to answer (a skipped or silently refused request): no slot is taken. */
  none: 0,
  /** Answer `reply` locally; with `closeAfter`, close the client after it. */
  local: 1,
  /** Send `bytes` to `group` over the shared, pipelined connection. */
  forward: 2,
  /** Send each part of `fanOut` to its group and answer the merged reply. */
  fanOut: 3,
  /**
   * Send `bytes` to `group`'s node on a connection dedicated to this client, taken from
   * the per-node pinned pool and kept until a plan with `release` (SUBSCRIBE, BLPOP, MULTI).
   */
  pinned: 4,
  /**
   * Change the client's subscriptions (`subscriptions`, by `changes`) on its subscription
   * connections and answer `reply` once every backend confirmed (SUBSCRIBE, UNSUBSCRIBE...).
   */
  subscribe: 5,
} as const;

/** One of PlanKind's values. */
export type PlanKindValue = typeof PlanKind[keyof typeof PlanKind];

const EMPTY = new Uint8Array(0);

/**
 * The plan for one request. A session owns one and its planner refills it for every
 * request: no object per request on the hot path. Only the fields of `kind` are read.
 */
export class Plan {
  kind: PlanKindValue = PlanKind.none;
  /** local: the reply. */
  reply: Uint8Array = EMPTY;
  /** local: close the client once this reply is out (QUIT, a refused framing). */
  closeAfter = false;
  /** forward, pinned: the group the routing maps to a node. */
  group = -1;
  /** forward, pinned: the request (a view is fine: sending copies it). */
  bytes: Uint8Array = EMPTY;
  /** forward, pinned: what the reply framer needs to know of the request (0 for most). */
  replyKind = 0;
  /** forward: the request only reads (it may go to a replica). */
  readonly = false;
  /** forward, pinned: completes the slot its own way; null: the slot takes the reply as it is. */
  sink: BoundSink | null = null;
  /** fanOut: the parts and their merge. */
  fanOut: FanOut | null = null;
  /** pinned: give the dedicated connection back once this request's reply is in. */
  release = false;
  /**
   * forward, pinned: requests sent first on the same connection, their replies dropped (a
   * MULTI and the commands a client queued before its transaction was sent); null: none.
   */
  prelude: readonly Uint8Array[] | null = null;
  /**
   * pinned: a blocking command's own timeout, ms (Infinity: it waits forever; 0: it does
   * not wait); -1 for a request that does not block. The runner bounds the wait by it.
   */
  blockMs = -1;
  /** Any kind but none: the reply is not written to the client (CLIENT REPLY OFF, SKIP). */
  silent = false;
  /** subscribe: what the client subscribes to now. */
  subscriptions: Subscriptions | null = null;
  /** subscribe: the names whose subscription changed (the reply is `reply`). */
  changes: readonly SubscriptionChange[] | null = null;
  /**
   * forward, fanOut, pinned: the set of backend connections the client's requests use (0
   * the default; 1 those whose handshake said HELLO 3, for a RESP3 client). The planner
   * sets it when the client's protocol changes; clear() keeps it (no store per request).
   */
  lane = 0;

  /** Answer `reply` locally. */
  local(reply: Uint8Array, closeAfter = false): void {
    this.kind = PlanKind.local;
    this.reply = reply;
    this.closeAfter = closeAfter;
  }

  /** Send `bytes` to `group`; `sink` (optional) completes the slot its own way. */
  forward(group: number, bytes: Uint8Array, readonly: boolean, replyKind = 0): void {
    this.kind = PlanKind.forward;
    this.group = group;
    this.bytes = bytes;
    this.readonly = readonly;
    this.replyKind = replyKind;
  }

  /** Split over several groups and merge; the parts are sent with `readonly` and `replyKind`. */
  split(fanOut: FanOut, readonly = false, replyKind = 0): void {
    this.kind = PlanKind.fanOut;
    this.fanOut = fanOut;
    this.readonly = readonly;
    this.replyKind = replyKind;
  }

  /** Send on this client's dedicated connection to `group`'s node; `release` it after. */
  pin(group: number, bytes: Uint8Array, release: boolean): void {
    this.kind = PlanKind.pinned;
    this.group = group;
    this.bytes = bytes;
    this.release = release;
    this.replyKind = 0;
    this.prelude = null;
    this.blockMs = -1;
  }

  /**
   * Apply `changes` to the client's subscription connections, then answer `reply` (once the
   * backends confirmed).
   */
  subscribe(
    subscriptions: Subscriptions,
    changes: readonly SubscriptionChange[],
    reply: Uint8Array,
  ): void {
    this.kind = PlanKind.subscribe;
    this.subscriptions = subscriptions;
    this.changes = changes;
    this.reply = reply;
  }

  /** Nothing to answer. */
  skip(): void {
    this.kind = PlanKind.none;
  }

  /** Drops the references of the last plan (so a finished request keeps nothing alive). */
  clear(): void {
    this.kind = PlanKind.none;
    this.reply = EMPTY;
    this.bytes = EMPTY;
    this.sink = null;
    this.fanOut = null;
    this.closeAfter = false;
    this.release = false;
    this.prelude = null;
    this.blockMs = -1;
    this.silent = false;
    this.subscriptions = null;
    this.changes = null;
  }
}

/**
 * A client's subscriptions (Pub/Sub), as its subscription connections read them: per kind
 * (0 channel, 1 pattern, 2 shard channel), the names as one-char-per-byte strings.
 */
export interface Subscriptions {
  readonly sets: readonly [ReadonlySet<string>, ReadonlySet<string>, ReadonlySet<string>];
  /** Every subscription of every kind. */
  readonly total: number;
}

/** Names of one kind whose subscription a request added or removed. */
export interface SubscriptionChange {
  readonly kind: 0 | 1 | 2;
  readonly changed: readonly string[];
  readonly subscribe: boolean;
}

/**
 * One client's side of a protocol: its decoder state and its per-client state (AUTH,
 * CLIENT SETNAME). Made by `Protocol.newPlanner` for each new session.
 */
export interface RequestPlanner {
  /**
   * Frames the request at `buf[start, end)` and fills `plan` for it; returns the bytes it
   * took, or -1 when more bytes are needed. Throws ProtocolError when the input is malformed.
   */
  next(buf: Uint8Array, start: number, end: number, plan: Plan): number;
  /**
   * Bytes the partial request left by next() is known to need from its start (a bulk
   * length read already), or 0: the session's read buffer grows to it in one step.
   */
  readonly neededBytes?: number;
  /** The arguments of the request at `buf[start, end)`, decoded again (for SLOWLOG). */
  requestArgs?(buf: Uint8Array, start: number, end: number): readonly Uint8Array[] | null;
  /** The client is gone: let go of what it counts in shared gauges (a transaction). */
  clientGone?(): void;
}

/** What a planner may know of its client. */
export interface ClientInfo {
  readonly id: number;
}

/** A wire protocol as the backend connections see it: reply framing, handshake, health ping. */
export interface BackendProtocol {
  /** The reply framer of a new backend socket. */
  newReplyFramer(): ReplyFramer;
  /**
   * Judges a reply to a handshake request (AUTH, READONLY): the refusal to log and drop the
   * connection for, or null when the backend accepted.
   */
  handshakeRefusal(reply: Uint8Array): string | null;
  /** The health ping, and whether a reply to it says the backend is healthy. */
  readonly ping: Uint8Array;
  isHealthy(reply: Uint8Array): boolean;
}

/** One wire protocol, for a mode's clients and backends. */
export interface Protocol<Client extends ClientInfo = ClientInfo> extends BackendProtocol {
  /** The planner of a new client. */
  newPlanner(client: Client): RequestPlanner;
  /** The error reply of a failed request (backend down, timeout...). */
  errorReply(message: string): Uint8Array;
  /** The last reply before closing a client whose input is malformed (may be empty). */
  protocolErrorReply(message: string): Uint8Array;
}
