/**
 * One client's transaction (MULTI, EXEC, DISCARD, WATCH, UNWATCH).
 *
 * Without WATCH (nothing pinned), MULTI is answered `+OK` at once and every command queued
 * after it is checked (command table, keys in one group) and answered `+QUEUED` by Aster and
 * kept; the first key picks the group. EXEC sends `MULTI`, the kept commands and `EXEC` as
 * one contiguous batch on the group's shared connection (a forward plan with a `prelude`:
 * the backend's replies to MULTI and the queued commands are dropped, its EXEC reply is the
 * client's); an EXEC with only keyless commands queued runs them on the first live group.
 * DISCARD, RESET or a client that goes drop the kept commands: nothing was sent.
 *
 * WATCH pins: its first key picks the group and the client gets a dedicated connection to
 * its node until EXEC, DISCARD, or UNWATCH outside MULTI; a transaction after WATCH goes on
 * that connection. A transaction also moves to a pinned connection (MULTI and the kept
 * commands sent first, their replies dropped) once its kept commands pass KEPT_BYTES_MAX or
 * KEPT_COMMANDS_MAX, and always in `redis_cluster` mode (there the first key pins, as a
 * MOVED for one queued command cannot be followed without replaying the batch). A queued
 * command whose keys are elsewhere is refused with the mode's cross-group error and the
 * transaction ends as Redis ends one with a refused command: nothing applied, EXEC answers
 * EXECABORT (on a pinned connection DISCARD is sent first).
 *
 * Made only for clients that send one of these commands: nothing on the ordinary path.
 */
import { encodeCommandText, encodeError, OK_REPLY } from "./encoder.ts";
import { type CommandSpec, lookupCommand, routingKeyIndexes } from "./commands.ts";
import { RespRequestDecoder } from "./request_decoder.ts";
import type { BoundSink, Plan, ReplyTarget } from "../protocol.ts";
import type { RedisRouting } from "../../proxy/routing.ts";
import { selectsDatabase } from "../../proxy/redis_local.ts";

const encoder = new TextEncoder();
const MULTI = encodeCommandText("MULTI");
const DISCARD = encodeCommandText("DISCARD");
const UNWATCH = encodeCommandText("UNWATCH");
const QUEUED_REPLY = encoder.encode("+QUEUED\r\n");
const EMPTY_ARRAY_REPLY = encoder.encode("*0\r\n");
/** Redis's own replies (7.0) to the same mistakes. */
const EXECABORT_REPLY = encodeError(
  "EXECABORT Transaction discarded because of previous errors.",
);
const NESTED_REPLY = encodeError("ERR MULTI calls can not be nested");
const WATCH_IN_MULTI_REPLY = encodeError("ERR WATCH inside MULTI is not allowed");
const EXEC_WITHOUT_REPLY = encodeError("ERR EXEC without MULTI");
const DISCARD_WITHOUT_REPLY = encodeError("ERR DISCARD without MULTI");
const NO_BACKEND_REPLY = encodeError("ERR no backend available: every node is ejected");
/** A reload came between a transaction's first key and its EXEC and split its keys. */
const RELOADED_EXEC_REPLY = encodeError(
  "EXECABORT Transaction discarded because aster's backends were reloaded during it " +
    "and its keys are no longer on one server.",
);
const RELOADED_QUEUE_REPLY = encodeError(
  "ERR aster's backends were reloaded during the transaction and its keys are no longer " +
    "on one server: it is discarded",
);

/**
 * Bounds of what a transaction without WATCH keeps until EXEC (the queued commands' request
 * bytes, their number): the command that would pass either moves the transaction to a
 * pinned connection, where the rest is sent as it comes.
 */
export const KEPT_BYTES_MAX = 64 * 1024;
export const KEPT_COMMANDS_MAX = 1000;
/**
 * The kept commands' first buffer, and the largest one a client keeps between transactions
 * (small: an idle client that once ran a transaction holds no more than this).
 */
const KEPT_FIRST_BYTES = 256;
const KEPT_REUSED_BYTES = 1024;
const NOTHING = new Uint8Array(0);

/** The names this module plans (kind "transaction" in the command table). */
export type TransactionCommand = "multi" | "exec" | "discard" | "watch" | "unwatch";

/** Answers a fixed reply once the backend has answered (DISCARD sent for an aborted EXEC). */
class FixedReply implements BoundSink {
  #target: ReplyTarget | null = null;
  readonly #reply: Uint8Array;

  constructor(reply: Uint8Array) {
    this.#reply = reply;
  }

  bind(target: ReplyTarget): void {
    this.#target = target;
  }

  onReply(): void {
    this.#target!.answer(this.#reply);
  }

  onError(message: string): void {
    this.#target!.onError(message);
  }
}

const MOVED = encoder.encode("-MOVED ");
const ASK = encoder.encode("-ASK ");
const latin1 = new TextDecoder("latin1");

function _startsWith(reply: Uint8Array, prefix: Uint8Array): boolean {
  if (reply.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (reply[i] !== prefix[i]) return false;
  return true;
}

/**
 * Replaces a MOVED or ASK for a request on a transaction's connection (the slot moved under
 * it) by a clear error: Aster does not follow it there (no silent replay elsewhere); the
 * node aborts the transaction (EXECABORT, or MOVED for EXEC itself, made clear the same way).
 * Other replies pass as they are.
 */
class RedirectRefused implements BoundSink {
  #target: ReplyTarget | null = null;

  bind(target: ReplyTarget): void {
    this.#target = target;
  }

  onReply(reply: Uint8Array, owned?: boolean): void {
    if (reply[0] === 0x2d && (_startsWith(reply, MOVED) || _startsWith(reply, ASK))) {
      const redirect = latin1.decode(reply.subarray(1, reply.length - 2));
      this.#target!.answer(
        encodeError(`ERR the slot moved during the transaction (${redirect}): transaction failed`),
      );
      return;
    }
    this.#target!.onReply(reply, owned);
  }

  onError(message: string): void {
    this.#target!.onError(message);
  }
}

/** The transaction state of one RESP client. */
export class RespTransaction {
  readonly #settings: () => { routing: RedisRouting; database: number };
  /** The group the client's pinned connection serves, or -1 when not pinned. */
  group = -1;
  /** Between MULTI and EXEC or DISCARD. */
  inMulti = false;
  /** A queued command was refused: EXEC discards and answers EXECABORT. */
  #aborted = false;
  /**
   * The commands queued after MULTI and not sent yet (nothing pinned), one after another in
   * one buffer (a copy: a request is a view into the client's read buffer), reused by the
   * client's next transaction while small: sent after a MULTI before EXEC on the shared
   * connection, or before the command that pins.
   */
  #kept: Uint8Array = NOTHING;
  /** The bytes used in `#kept`. */
  #keptBytes = 0;
  /** Where each kept command ends in `#kept`. */
  #keptEnds: number[] = [];
  /** The group the first key of a transaction without WATCH picked (-1: none yet). */
  #target = -1;
  /** The routing `#target` is a group of (a reload replaces it: the group may mean another node). */
  #targetRouting: RedisRouting | null = null;

  /** Whether MOVED/ASK can come (redis_cluster): keyed requests then get a RedirectRefused. */
  readonly #cluster: boolean;

  /** `settings` (the routing, the database) are read at each use: a reload replaces them. */
  constructor(settings: () => { routing: RedisRouting; database: number }, cluster: boolean) {
    this.#settings = settings;
    this.#cluster = cluster;
  }

  /** True while the client has a transaction in progress or watched keys. */
  get active(): boolean {
    return this.inMulti || this.group >= 0;
  }

  /** Plans MULTI, EXEC, DISCARD, WATCH or UNWATCH. */
  command(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array, plan: Plan): void {
    switch (spec.name as TransactionCommand) {
      case "multi":
        if (this.inMulti) {
          if (this.group >= 0) plan.pin(this.group, raw, false);
          else plan.local(NESTED_REPLY);
          return;
        }
        this.inMulti = true;
        if (this.group >= 0) plan.pin(this.group, raw, false);
        else {
          plan.local(OK_REPLY);
        }
        return;
      case "watch":
        if (this.inMulti) {
          if (this.group >= 0) plan.pin(this.group, raw, false);
          else plan.local(WATCH_IN_MULTI_REPLY);
          return;
        }
        this.#keyed(spec, argv, raw, plan);
        return;
      case "unwatch":
        if (this.inMulti) {
          this.queue(spec, argv, raw, plan);
          return;
        }
        if (this.group >= 0) this.#end(raw, plan);
        else plan.local(OK_REPLY);
        return;
      case "exec":
        if (!this.inMulti) plan.local(EXEC_WITHOUT_REPLY);
        else if (this.#aborted) {
          if (this.group >= 0) {
            plan.pin(this.group, DISCARD, true);
            plan.sink = new FixedReply(EXECABORT_REPLY);
          } else plan.local(EXECABORT_REPLY);
          this.#reset();
        } else if (this.group >= 0) this.#end(raw, plan);
        else if (this.#keptEnds.length === 0) {
          plan.local(EMPTY_ARRAY_REPLY);
          this.#reset();
        } else if (!this.#retarget()) {
          plan.local(RELOADED_EXEC_REPLY);
          this.#reset();
        } else {
          const group = this.#target >= 0
            ? this.#target
            : this.#settings().routing.broadcastGroups()[0];
          if (group === undefined) {
            plan.local(NO_BACKEND_REPLY);
            this.#reset();
            return;
          }
          // The whole transaction in one step on the shared connection (keyless ones in
          // cluster mode on a pinned one, as before: no redirect to follow there).
          if (this.#cluster) plan.pin(group, raw, true);
          else plan.forward(group, raw, false);
          plan.prelude = this.#prelude();
          this.#reset();
        }
        return;
      case "discard":
        if (!this.inMulti) plan.local(DISCARD_WITHOUT_REPLY);
        else if (this.group >= 0) this.#end(raw, plan);
        else {
          plan.local(OK_REPLY);
          this.#reset();
        }
        return;
    }
  }

  /**
   * Plans a command queued between MULTI and EXEC: sent on the pinned connection, or kept
   * until EXEC (nothing pinned), or refused (keys elsewhere: the transaction is then aborted).
   */
  queue(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array, plan: Plan): void {
    const database = this.#settings().database;
    if (
      spec.kind === "unsupported" ||
      // No index at all, or a negative one, is Redis's to refuse, in EXEC's reply: queued.
      (spec.name === "select" && selectsDatabase(argv[1], database) === false)
    ) {
      // Refused by Aster (SELECT of another database too: the connection goes back to a
      // pool, in its database): the transaction fails as with a command Redis refuses.
      this.abort();
      plan.local(
        encodeError(
          `ERR command '${spec.name}' is not supported by aster inside MULTI: ${
            spec.reason ?? `Aster serves database ${database} only`
          }`,
        ),
      );
      return;
    }
    // PUBLISH names no key in Redis Cluster (the cluster carries it): any node queues it.
    const keys = spec.kind === "local" || spec.kind === "server" ||
        (spec.name === "publish" && this.#cluster)
      ? []
      : routingKeyIndexes(spec, argv);
    if (keys.length > 0 && (this.group >= 0 || this.#cluster)) {
      this.#keyed(spec, argv, raw, plan, keys);
      return;
    }
    if (this.group >= 0) {
      plan.pin(this.group, raw, false);
      // Keyless here may still be keyed to a cluster node (an MSET without its last value
      // names keys there): a redirect is refused, never shown.
      if (this.#cluster) plan.sink = new RedirectRefused();
      return;
    }
    if (keys.length > 0) {
      if (!this.#retarget()) {
        this.abort();
        plan.local(RELOADED_QUEUE_REPLY);
        return;
      }
      const group = this.#groupOf(spec, argv, keys, this.#target, plan);
      if (group < 0) return;
      if (this.#target < 0) this.#targetRouting = this.#settings().routing;
      this.#target = group;
    }
    this.#keep(raw, plan);
  }

  /**
   * Keeps a queued command until EXEC and answers `+QUEUED`; past the bounds, pins to the
   * transaction's group instead (MULTI and the kept commands go first, replies dropped).
   */
  #keep(raw: Uint8Array, plan: Plan): void {
    if (this.#aborted) {
      // Doomed already: EXEC answers EXECABORT, nothing will be sent.
      plan.local(QUEUED_REPLY);
      return;
    }
    const target = this.#target;
    if (
      target >= 0 && (this.#keptBytes + raw.length > KEPT_BYTES_MAX ||
        this.#keptEnds.length >= KEPT_COMMANDS_MAX)
    ) {
      if (!this.#retarget()) {
        this.abort();
        plan.local(RELOADED_QUEUE_REPLY);
        return;
      }
      const group = this.#target;
      plan.pin(group, raw, false);
      plan.prelude = this.#prelude();
      this.#dropKept();
      this.#target = -1;
      this.#targetRouting = null;
      this.group = group;
      return;
    }
    const used = this.#keptBytes;
    const end = used + raw.length;
    if (end > this.#kept.length) {
      const grown = new Uint8Array(Math.max(KEPT_FIRST_BYTES, end, this.#kept.length * 2));
      grown.set(this.#kept.subarray(0, used));
      this.#kept = grown;
    }
    this.#kept.set(raw, used);
    this.#keptBytes = end;
    this.#keptEnds.push(end);
    plan.local(QUEUED_REPLY);
  }

  /**
   * MULTI and the kept commands, to send before the request that ends or pins the
   * transaction. Views into `#kept`: valid until the client's next request is planned,
   * which comes after the plan was carried out (sending copies them).
   */
  #prelude(): Uint8Array[] {
    const ends = this.#keptEnds;
    const prelude = new Array<Uint8Array>(ends.length + 1);
    prelude[0] = MULTI;
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      prelude[i + 1] = this.#kept.subarray(start, ends[i]);
      start = ends[i];
    }
    return prelude;
  }

  /**
   * Forgets the kept commands; their buffer is kept for the client's next transaction while
   * small (a command of it is then far below the size that a backend connection would send
   * from where it lies rather than copy, LEND_FROM: no view of it outlives the send).
   */
  #dropKept(): void {
    if (this.#kept.length > KEPT_REUSED_BYTES) this.#kept = NOTHING;
    this.#keptBytes = 0;
    this.#keptEnds.length = 0;
  }

  /**
   * RESET: ends the transaction and the watches as Redis's RESET does. With a pinned
   * connection, DISCARD (in MULTI, which also unwatches) or UNWATCH goes on it, the pin is
   * released after, and the client gets `reply`; else `reply` is answered at once.
   */
  reset(plan: Plan, reply: Uint8Array): void {
    if (this.group >= 0) {
      plan.pin(this.group, this.inMulti ? DISCARD : UNWATCH, true);
      plan.sink = new FixedReply(reply);
    } else plan.local(reply);
    this.#reset();
  }

  /** RESET while its pinned connection is closed instead (a subscribed client's RESET). */
  forget(): void {
    this.#reset();
  }

  /** Marks the transaction failed: EXEC will answer EXECABORT. */
  abort(): void {
    if (this.inMulti) this.#aborted = true;
  }

  /** The client is gone or reset: forget everything (its pinned connection is closed). */
  #reset(): void {
    this.group = -1;
    this.inMulti = false;
    this.#aborted = false;
    this.#dropKept();
    this.#target = -1;
    this.#targetRouting = null;
  }

  /**
   * After a reload replaced the routing since the first key picked `#target` (its group may
   * now be another node, or none), picks the group again from the kept commands' keys, as
   * a transaction begun now would: false when they are no longer on one live group (the
   * transaction is then discarded, nothing sent). True at once without a reload.
   */
  #retarget(): boolean {
    if (this.#target < 0) return true;
    const routing = this.#settings().routing;
    if (routing === this.#targetRouting) return true;
    // Rare: the kept commands are framed again to find their keys.
    const decoder = new RespRequestDecoder();
    let group = -1;
    let start = 0;
    for (const end of this.#keptEnds) {
      const request = decoder.decode(this.#kept, start, end);
      start = end;
      if (request === null) return false;
      const spec = lookupCommand(request.argv[0]);
      if (spec === undefined || spec.kind === "local" || spec.kind === "server") continue;
      const keys = routingKeyIndexes(spec, request.argv);
      for (const at of keys) {
        const keyGroup = routing.groupOf(request.argv[at]);
        if (keyGroup < 0 || (group >= 0 && keyGroup !== group)) return false;
        group = keyGroup;
      }
    }
    if (group < 0) return false;
    this.#target = group;
    this.#targetRouting = routing;
    return true;
  }

  /** Sends the ending command (EXEC, DISCARD, UNWATCH) and releases the pin after its reply. */
  #end(raw: Uint8Array, plan: Plan): void {
    plan.pin(this.group, raw, true);
    // A node checks the queued keys again at EXEC: MOVED when their slot left it.
    if (this.#cluster) plan.sink = new RedirectRefused();
    this.#reset();
  }

  /** A keyed command (WATCH, or queued): pins to its group, or refuses keys elsewhere. */
  #keyed(
    spec: CommandSpec,
    argv: Uint8Array[],
    raw: Uint8Array,
    plan: Plan,
    keys: readonly number[] | null = null,
  ): void {
    const indexes = keys ?? routingKeyIndexes(spec, argv);
    const group = this.#groupOf(spec, argv, indexes, this.group, plan);
    if (group < 0) return;
    if (this.#aborted && this.group < 0) {
      // Doomed already and nothing sent: no node to pin to, EXEC answers EXECABORT.
      plan.local(QUEUED_REPLY);
      return;
    }
    plan.pin(group, raw, false);
    if (this.#cluster) plan.sink = new RedirectRefused();
    if (this.group < 0 && this.inMulti) plan.prelude = this.#prelude();
    this.#dropKept();
    this.group = group;
  }

  /**
   * The group of a command's keys (`indexes` into argv), which must be `current`'s when that
   * is set (>= 0); else -1 with the plan made: a refusal, the transaction aborted.
   */
  #groupOf(
    spec: CommandSpec,
    argv: Uint8Array[],
    indexes: readonly number[],
    current: number,
    plan: Plan,
  ): number {
    const routing = this.#settings().routing;
    const group = routing.groupOf(argv[indexes[0]]);
    let same = group >= 0;
    for (let i = 1; same && i < indexes.length; i++) {
      if (routing.groupOf(argv[indexes[i]]) !== group) same = false;
    }
    if (group < 0) {
      this.abort();
      plan.local(NO_BACKEND_REPLY);
      return -1;
    }
    if (!same || (current >= 0 && group !== current)) {
      this.abort();
      plan.local(routing.crossGroupError(spec));
      return -1;
    }
    return group;
  }
}
