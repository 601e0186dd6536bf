/** The Redis side of a session: frames requests, answers or routes each one. */
import {
  encodeCommand,
  encodeError,
  encodeProxyError,
  OK_REPLY,
} from "../protocol/resp/encoder.ts";
import { RespRequestDecoder } from "../protocol/resp/request_decoder.ts";
import {
  commandKeyIndexes,
  type CommandSpec,
  isBlockingRequest,
  lookupCommand,
  sortPatternIndexes,
} from "../protocol/resp/commands.ts";
import { describeBytes } from "../protocol/resp/bytes.ts";
import { clientReply, type ClientState, localReply } from "./redis_local.ts";
import { infoReply, slowlogReply } from "./redis_admin.ts";
import { allowedBeforeAuth, answerAuth, answerHello, NOAUTH_REPLY } from "./redis_auth.ts";
import type { RedisRouting } from "./redis_routing.ts";
import { encodePartView, groupKeys, type MergeKind, SplitCollector } from "./redis_split.ts";
import type { RequestHandler, Session } from "./session.ts";

/**
 * What the Redis sessions of a data plane share. A reload replaces its fields in place, so
 * connected clients use the new backends and password from their next request on.
 */
export interface RedisSettings {
  routing: RedisRouting;
  /** What AUTH must give before other commands work (null: no AUTH needed). */
  password: Uint8Array | null;
  /** Refused commands the operator allowed: sent to every backend (`allow_commands`). */
  allowed: ReadonlySet<string>;
}

const decoder = new TextDecoder();
const FUNCTION_FLUSH_REFUSED = encodeError(
  "ERR FUNCTION FLUSH is not allowed by aster: it empties every backend's functions; " +
    'add "function" to allow_commands to allow it',
);
const FUNCTION_KILL_REFUSED = encodeError(
  "ERR FUNCTION KILL is not supported by aster: a function runs on one backend",
);

/** Where a refusal sends the reader: the list of refused commands and why. */
const REFUSED_DOC = "(see docs/commands.md#refused-commands)";

const CLIENT = new TextEncoder().encode("client");
const SETNAME = new TextEncoder().encode("setname");

/** How the replies of an allowed server-wide command merge (others: the first reply). */
const BROADCAST_MERGE: Record<string, MergeKind> = { keys: "concat", dbsize: "sum" };

/** Handles the requests of one client session in the Redis modes. */
export class RedisFrontend implements RequestHandler {
  readonly #session: Session;
  readonly #settings: RedisSettings;
  readonly #decoder = new RespRequestDecoder();
  #authenticated = false;
  /** CLIENT SETNAME's name (made on the first CLIENT command). */
  #client: ClientState | null = null;

  constructor(session: Session, settings: RedisSettings) {
    this.#session = session;
    this.#settings = settings;
  }

  feed(buf: Uint8Array, start: number, end: number): number {
    let at = start;
    while (!this.#session.draining) {
      const request = this.#decoder.decode(buf, at, end);
      if (request === null) break;
      const raw = buf.subarray(at, at + request.size);
      at += request.size;
      if (request.argv.length === 0) continue;
      this.#session.noteRequest(at - request.size, at);
      this.#handle(request.argv, request.inline ? null : raw);
    }
    return at - start;
  }

  errorReply(message: string): Uint8Array {
    return encodeProxyError(message);
  }

  requestArgs(buf: Uint8Array, start: number, end: number): readonly Uint8Array[] | null {
    // Only for a slow request: a decoder of its own, so this client's framing is untouched.
    return new RespRequestDecoder().decode(buf, start, end)?.argv ?? null;
  }

  protocolErrorReply(message: string): Uint8Array {
    return encodeError(`ERR Protocol error: ${message}`);
  }

  /** Answers, refuses or routes one request; `raw` is its RESP encoding (null when inline). */
  #handle(argv: Uint8Array[], raw: Uint8Array | null): void {
    const session = this.#session;
    const spec = lookupCommand(argv[0]);
    const metrics = session.metrics;
    if (spec === undefined) {
      metrics.command("unknown");
      metrics.error("refused");
      session.answer(session.reserve(), _unknownCommand(argv));
      return;
    }
    metrics.command(spec.name);
    if (spec.arity > 0 ? argv.length !== spec.arity : argv.length < -spec.arity) {
      metrics.error("refused");
      session.answer(
        session.reserve(),
        encodeError(`ERR wrong number of arguments for '${spec.name}' command`),
      );
      return;
    }
    const { password, routing } = this.#settings;
    if (password !== null && !this.#authenticated && !allowedBeforeAuth(spec.name)) {
      metrics.error("noauth");
      session.answer(session.reserve(), NOAUTH_REPLY);
      return;
    }
    if (spec.name === "info") {
      session.answer(session.reserve(), infoReply(metrics, argv));
      return;
    }
    if (spec.name === "slowlog") {
      session.answer(session.reserve(), slowlogReply(metrics, argv));
      return;
    }
    if (spec.name === "auth" || spec.name === "hello") {
      const { reply, ok } = spec.name === "auth" ? answerAuth(argv, password) : answerHello(argv, {
        password,
        authenticated: this.#authenticated || password === null,
        clientId: session.id,
        version: metrics.redisVersion().version,
        mode: metrics.facts.cacheType === "redis_cluster" ? "cluster" : "standalone",
      });
      if (ok) this.#authenticated = true;
      if (ok && spec.name === "hello") this.#helloSetname(argv);
      session.answer(session.reserve(), reply);
      return;
    }
    const modeReply = routing.localReply(spec, argv);
    if (modeReply !== null) {
      session.answer(session.reserve(), modeReply);
      return;
    }
    switch (spec.kind) {
      case "local":
        if (spec.name === "quit") session.answerAndClose(OK_REPLY);
        else session.answer(session.reserve(), localReply(spec, argv));
        return;
      case "server":
        this.#server(spec, argv, raw, routing);
        return;
      case "unsupported": {
        // Keyless, but bound to one group (CLUSTER COUNTKEYSINSLOT <slot>: its master).
        // Checked here, off the path of ordinary commands.
        const group = routing.forwardGroup(spec, argv);
        if (group >= 0) {
          routing.send(group, raw ?? encodeCommand(argv), session.reserve(), session.id, false);
          return;
        }
        if (spec.name === "client") {
          this.#client ??= { id: session.id, name: null };
          const reply = clientReply(argv, this.#client);
          if (reply !== null) {
            session.answer(session.reserve(), reply);
            return;
          }
        }
        if (this.#settings.allowed.has(spec.name)) {
          this.#broadcast(spec, argv, routing);
          return;
        }
        metrics.error("refused");
        session.answer(
          session.reserve(),
          encodeError(
            `ERR command '${spec.name}' is not supported by aster: ${spec.reason} ${REFUSED_DOC}`,
          ),
        );
        return;
      }
      default:
        this.#route(spec, argv, raw, routing);
    }
  }

  /**
   * COMMAND goes whole to one backend: its reply (flags, key specs, FILTERBY, GETKEYS...)
   * is Redis's own, listing also the commands Aster refuses. FUNCTION LOAD, DELETE and
   * RESTORE go to every backend (every master) so FCALL works wherever its keys land, FLUSH
   * too when `allow_commands` has "function"; LIST, STATS, DUMP, HELP and unknown
   * subcommands are answered by one backend; KILL is refused (the function runs on one).
   */
  #server(
    spec: CommandSpec,
    argv: Uint8Array[],
    raw: Uint8Array | null,
    routing: RedisRouting,
  ): void {
    const session = this.#session;
    if (spec.name === "function" && argv[1].length <= 8) {
      switch (decoder.decode(argv[1]).toLowerCase()) {
        case "load":
        case "delete":
        case "restore":
          this.#broadcast(spec, argv, routing);
          return;
        case "flush":
          if (this.#settings.allowed.has("function")) {
            this.#broadcast(spec, argv, routing);
            return;
          }
          session.metrics.error("refused");
          session.answer(session.reserve(), FUNCTION_FLUSH_REFUSED);
          return;
        case "kill":
          session.metrics.error("refused");
          session.answer(session.reserve(), FUNCTION_KILL_REFUSED);
          return;
      }
    }
    const slot = session.reserve();
    const group = routing.broadcastGroups()[0];
    if (group === undefined) {
      session.answer(slot, encodeError("ERR no backend available"));
      return;
    }
    routing.send(group, raw ?? encodeCommand(argv), slot, session.id, false);
  }

  /** HELLO ... SETNAME name names the connection, as CLIENT SETNAME does. */
  #helloSetname(argv: Uint8Array[]): void {
    for (let i = 2; i + 1 < argv.length; i++) {
      const option = decoder.decode(argv[i]).toLowerCase();
      if (option === "auth") i += 2;
      else if (option === "setname") {
        this.#client ??= { id: this.#session.id, name: null };
        clientReply([CLIENT, SETNAME, argv[i + 1]], this.#client);
        i++;
      }
    }
  }

  /** Sends an allowed server-wide command to every backend and merges the replies. */
  #broadcast(spec: CommandSpec, argv: Uint8Array[], routing: RedisRouting): void {
    const session = this.#session;
    const slot = session.reserve();
    const groups = routing.broadcastGroups();
    if (groups.length === 0) {
      session.answer(slot, encodeError("ERR no backend available"));
      return;
    }
    const parts = groups.map((group) => ({ group, keyIndexes: [] }));
    const collector = new SplitCollector(
      { kind: BROADCAST_MERGE[spec.name] ?? "first", parts, keyCount: 0, firstKeyIndex: 0 },
      { answerMerged: (reply, isView) => session.fill(slot, reply, isView) },
    );
    const bytes = encodeCommand(argv);
    for (let i = 0; i < parts.length; i++) {
      routing.send(parts[i].group, bytes, collector.sinkFor(i), session.id, false);
    }
  }

  #route(
    spec: CommandSpec,
    argv: Uint8Array[],
    raw: Uint8Array | null,
    routing: RedisRouting,
  ): void {
    const session = this.#session;
    const slot = session.reserve();
    if (isBlockingRequest(spec, argv)) {
      session.answer(
        slot,
        encodeError(`ERR blocking '${spec.name}' is not supported by aster ${REFUSED_DOC}`),
      );
      return;
    }
    const keyIndexes = commandKeyIndexes(spec, argv);
    if (typeof keyIndexes === "string") {
      session.answer(slot, encodeError(keyIndexes));
      return;
    }
    // One group for every key (or the command name when there is no key) sends the
    // request whole: no array of groups is made for the common single-key request.
    const keyCount = keyIndexes.length;
    const first = routing.groupOf(argv[keyCount > 0 ? keyIndexes[0] : 0]);
    let groups: number[] | null = null;
    let unavailable = first < 0;
    for (let i = 1; i < keyCount; i++) {
      const group = routing.groupOf(argv[keyIndexes[i]]);
      if (group < 0) unavailable = true;
      if (groups === null && group !== first) {
        groups = new Array<number>(keyCount).fill(first, 0, i);
      }
      if (groups !== null) groups[i] = group;
    }
    if (unavailable) {
      session.answer(slot, encodeError("ERR no backend available: every node is ejected"));
      return;
    }
    if (groups === null) {
      if (spec.sortPatterns === true) {
        const refusal = _sortPatternRefusal(spec, argv, first, routing);
        if (refusal !== null) {
          session.answer(slot, refusal);
          return;
        }
      }
      routing.send(first, raw ?? encodeCommand(argv), slot, session.id, spec.readonly);
      return;
    }
    if (spec.kind !== "multi" || spec.split === undefined) {
      session.answer(slot, routing.crossGroupError(spec));
      return;
    }
    const parts = groupKeys(keyIndexes, groups);
    const collector = new SplitCollector(
      { kind: spec.split, parts, keyCount: keyIndexes.length, firstKeyIndex: keyIndexes[0] },
      { answerMerged: (reply, isView) => session.fill(slot, reply, isView) },
    );
    for (let i = 0; i < parts.length; i++) {
      const bytes = encodePartView(spec.split, argv, parts[i]);
      routing.send(parts[i].group, bytes, collector.sinkFor(i), session.id, spec.readonly);
    }
  }
}

/**
 * SORT's BY and GET patterns make the backend read other keys: on a sharded keyspace those
 * may be elsewhere, and the sort would silently use missing values. Refused unless every
 * key a pattern can form is in the sorted key's group (issue 27), as Redis Cluster does.
 */
function _sortPatternRefusal(
  spec: CommandSpec,
  argv: readonly Uint8Array[],
  group: number,
  routing: RedisRouting,
): Uint8Array | null {
  for (const index of sortPatternIndexes(spec, argv)) {
    if (!routing.patternInGroup(argv[index], group)) {
      return routing.sortPatternError(
        argv[index - 1][0] === 0x42 || argv[index - 1][0] === 0x62 ? "BY" : "GET",
      );
    }
  }
  return null;
}

/** Redis's own wording for an unknown command. */
function _unknownCommand(argv: readonly Uint8Array[]): Uint8Array {
  const name = describeBytes(argv[0], 0, argv[0].length, 128);
  const args = argv.slice(1, 4).map((arg) => `'${describeBytes(arg, 0, arg.length, 64)}' `)
    .join("");
  return encodeError(`ERR unknown command '${name}', with args beginning with: ${args}`);
}
