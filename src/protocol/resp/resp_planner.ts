/** RESP's planner: frames a client's requests and plans each one (answer, forward, split). */
import { encodeBulk, encodeCommand, encodeError, OK_REPLY } from "./encoder.ts";
import { RespRequestDecoder } from "./request_decoder.ts";
import {
  commandKeyIndexes,
  type CommandSpec,
  isBlockingRequest,
  lookupCommand,
  sortPatternIndexes,
} from "./commands.ts";
import { describeBytes } from "./bytes.ts";
import { clientReply, type ClientState, localReply } from "../../proxy/redis_local.ts";
import type { ClusterMetrics } from "../../metrics/worker_metrics.ts";
import { type Plan, PlanKind, type RequestPlanner } from "../protocol.ts";
import {
  clientKillReply,
  clientLine,
  clientListReply,
  type ListedClient,
} from "../../proxy/client_list.ts";
import { coarseClock } from "../../io/coarse_clock.ts";
import { SplitMerge } from "../split_merge.ts";
import { infoReply, slowlogReply } from "../../proxy/redis_admin.ts";
import {
  allowedBeforeAuth,
  answerAuth,
  answerHello,
  NOAUTH_REPLY,
} from "../../proxy/redis_auth.ts";
import type { RedisRouting } from "../../proxy/routing.ts";
import { groupKeys, type MergeKind, RespSplit } from "./resp_split.ts";
import { RespTransaction } from "./transaction.ts";
import {
  invalidCursorReply,
  parseScanCursor,
  SCAN_DONE_REPLY,
  SCAN_MAX_NODES,
  ScanSplit,
} from "./resp_scan.ts";

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
const KEYSPACE = new TextEncoder().encode("keyspace");
const SETNAME = new TextEncoder().encode("setname");

/** How the replies of an allowed server-wide command merge (others: the first reply). */
const BROADCAST_MERGE: Record<string, MergeKind> = {
  keys: "concat",
  dbsize: "sum",
  randomkey: "random",
  info: "keyspace",
};

/** What the RESP planner knows of its client. */
export interface RespClient extends ListedClient {
  /** The counters of the client's cluster in this worker (INFO, SLOWLOG read them). */
  readonly metrics: ClusterMetrics;
  /** Its CLIENT state, made on its first CLIENT command. */
  connState: ClientState | null;
  /** The clients of the same listener, this one included (CLIENT LIST, CLIENT KILL). */
  readonly peers: Iterable<ListedClient>;
}

const RESET_REPLY = new TextEncoder().encode("+RESET\r\n");
const CLIENT_KILL_REFUSED = encodeError(
  "ERR CLIENT KILL is not allowed by aster: it closes Aster's own clients only; " +
    'add "client-kill" to allow_commands to allow it',
);

/** Plans the requests of one client in the Redis modes. */
export class RespPlanner implements RequestPlanner {
  readonly #client: RespClient;
  readonly #settings: RedisSettings;
  readonly #decoder = new RespRequestDecoder();
  #authenticated = false;
  /** CLIENT SETNAME's name (made on the first CLIENT command). */
  #clientState: ClientState | null = null;
  /** MULTI/WATCH state, made on the client's first transaction command. */
  #tx: RespTransaction | null = null;
  /** CLIENT REPLY OFF: replies are not written until CLIENT REPLY ON. */
  #replyOff = false;
  /** CLIENT REPLY SKIP: how many requests from this one on get no reply written. */
  #skipReplies = 0;

  constructor(client: RespClient, settings: RedisSettings) {
    this.#client = client;
    this.#settings = settings;
  }

  get neededBytes(): number {
    return this.#decoder.neededBytes;
  }

  next(buf: Uint8Array, start: number, end: number, plan: Plan): number {
    const request = this.#decoder.decode(buf, start, end);
    if (request === null) return -1;
    if (request.argv.length === 0) plan.skip();
    else {
      const raw = request.inline ? null : buf.subarray(start, start + request.size);
      this.#plan(request.argv, raw, plan);
      if ((this.#replyOff || this.#skipReplies > 0) && plan.kind !== PlanKind.none) {
        plan.silent = true;
        if (this.#skipReplies > 0) this.#skipReplies--;
      }
    }
    return request.size;
  }

  requestArgs(buf: Uint8Array, start: number, end: number): readonly Uint8Array[] | null {
    // Only for a slow request: a decoder of its own, so this client's framing is untouched.
    return new RespRequestDecoder().decode(buf, start, end)?.argv ?? null;
  }

  /** Plans one request: answer, refuse or route; `raw` is its RESP encoding (null when inline). */
  #plan(argv: Uint8Array[], raw: Uint8Array | null, plan: Plan): void {
    const client = this.#client;
    const spec = lookupCommand(argv[0]);
    const metrics = client.metrics;
    const tx = this.#tx;
    if (spec === undefined) {
      metrics.command("unknown");
      metrics.error("refused");
      tx?.abort();
      plan.local(_unknownCommand(argv));
      return;
    }
    metrics.command(spec.name);
    if (spec.arity > 0 ? argv.length !== spec.arity : argv.length < -spec.arity) {
      metrics.error("refused");
      tx?.abort();
      plan.local(encodeError(`ERR wrong number of arguments for '${spec.name}' command`));
      return;
    }
    const { password, routing } = this.#settings;
    if (spec.name === "reset") {
      this.#reset();
      if (tx !== null) tx.reset(plan, RESET_REPLY);
      else plan.local(RESET_REPLY);
      return;
    }
    if (password !== null && !this.#authenticated && !allowedBeforeAuth(spec.name)) {
      metrics.error("noauth");
      tx?.abort();
      plan.local(NOAUTH_REPLY);
      return;
    }
    if (spec.kind === "transaction") {
      this.#tx ??= new RespTransaction(
        () => this.#settings.routing,
        client.metrics.facts.cacheType === "redis_cluster",
      );
      this.#tx.command(spec, argv, raw ?? encodeCommand(argv), plan);
      return;
    }
    if (tx !== null && tx.inMulti && spec.name !== "quit") {
      tx.queue(spec, argv, raw ?? encodeCommand(argv), plan);
      return;
    }
    if (spec.name === "info") {
      // INFO keyspace is the backends' (summed); the other sections are Aster's own.
      if (argv.length === 2 && _isWord(argv[1], KEYSPACE)) this.#broadcast(spec, argv, plan);
      else plan.local(infoReply(metrics, argv));
      return;
    }
    if (spec.name === "slowlog") {
      plan.local(slowlogReply(metrics, argv));
      return;
    }
    if (spec.name === "auth" || spec.name === "hello") {
      const { reply, ok } = spec.name === "auth" ? answerAuth(argv, password) : answerHello(argv, {
        password,
        authenticated: this.#authenticated || password === null,
        clientId: client.id,
        version: metrics.redisVersion().version,
        mode: metrics.facts.cacheType === "redis_cluster" ? "cluster" : "standalone",
      });
      if (ok) this.#authenticated = true;
      if (ok && spec.name === "hello") this.#helloSetname(argv);
      plan.local(reply);
      return;
    }
    const modeReply = routing.localReply(spec, argv);
    if (modeReply !== null) {
      plan.local(modeReply);
      return;
    }
    switch (spec.kind) {
      case "local":
        if (spec.name === "quit") plan.local(OK_REPLY, true);
        else plan.local(localReply(spec, argv));
        return;
      case "server":
        this.#server(spec, argv, raw, plan);
        return;
      case "unsupported": {
        // Keyless, but bound to one group (CLUSTER COUNTKEYSINSLOT <slot>: its master).
        // Checked here, off the path of ordinary commands.
        const group = routing.forwardGroup(spec, argv);
        if (group >= 0) {
          plan.forward(group, raw ?? encodeCommand(argv), false);
          return;
        }
        if (spec.name === "client") {
          const reply = this.#clientCommand(argv);
          if (reply !== null) {
            plan.local(reply);
            return;
          }
        }
        if (this.#settings.allowed.has(spec.name)) {
          this.#broadcast(spec, argv, plan);
          return;
        }
        metrics.error("refused");
        plan.local(
          encodeError(
            `ERR command '${spec.name}' is not supported by aster: ${spec.reason} ${REFUSED_DOC}`,
          ),
        );
        return;
      }
      default:
        this.#route(spec, argv, raw, plan);
    }
  }

  /**
   * COMMAND goes whole to one backend: its reply (flags, key specs, FILTERBY, GETKEYS...)
   * is Redis's own, listing also the commands Aster refuses. FUNCTION LOAD, DELETE and
   * RESTORE go to every backend (every master) so FCALL works wherever its keys land, FLUSH
   * too when `allow_commands` has "function"; LIST, STATS, DUMP, HELP and unknown
   * subcommands are answered by one backend; KILL is refused (the function runs on one).
   */
  #server(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array | null, plan: Plan): void {
    const metrics = this.#client.metrics;
    switch (spec.name) {
      case "dbsize":
      case "randomkey":
        this.#broadcast(spec, argv, plan);
        return;
      case "scan":
        this.#scan(argv, plan);
        return;
    }
    if (spec.name === "function" && argv[1].length <= 8) {
      switch (decoder.decode(argv[1]).toLowerCase()) {
        case "load":
        case "delete":
        case "restore":
          this.#broadcast(spec, argv, plan);
          return;
        case "flush":
          if (this.#settings.allowed.has("function")) {
            this.#broadcast(spec, argv, plan);
            return;
          }
          metrics.error("refused");
          plan.local(FUNCTION_FLUSH_REFUSED);
          return;
        case "kill":
          metrics.error("refused");
          plan.local(FUNCTION_KILL_REFUSED);
          return;
      }
    }
    const group = this.#settings.routing.broadcastGroups()[0];
    if (group === undefined) {
      plan.local(encodeError("ERR no backend available"));
      return;
    }
    plan.forward(group, raw ?? encodeCommand(argv), false);
  }

  /** This client's CLIENT state, made on first use. */
  #state(): ClientState {
    return this.#client.connState ??= { id: this.#client.id, name: null };
  }

  /**
   * The CLIENT subcommands Aster answers: those of clientReply, then LIST, INFO, KILL (where
   * allowed) and REPLY; null for the others (refused).
   */
  #clientCommand(argv: Uint8Array[]): Uint8Array | null {
    const client = this.#client;
    const reply = clientReply(argv, this.#state());
    if (reply !== null) return reply;
    const sub = decoder.decode(argv[1]).toLowerCase();
    switch (sub) {
      case "list":
        return clientListReply(argv, client.peers, coarseClock.now);
      case "info":
        if (argv.length !== 2) {
          return encodeError("ERR wrong number of arguments for 'client|info' command");
        }
        return encodeBulk(clientLine(client, coarseClock.now, "client|info") + "\n");
      case "kill":
        if (argv.length < 3) {
          return encodeError("ERR wrong number of arguments for 'client|kill' command");
        }
        if (!this.#settings.allowed.has("client-kill")) return CLIENT_KILL_REFUSED;
        return clientKillReply(argv, client.peers);
      case "reply": {
        if (argv.length !== 3) {
          return encodeError("ERR wrong number of arguments for 'client|reply' command");
        }
        const mode = decoder.decode(argv[2]).toLowerCase();
        if (mode === "on") {
          this.#replyOff = false;
          this.#skipReplies = 0;
        } else if (mode === "off") this.#replyOff = true;
        // SKIP: this request's reply and the next one's (none when already OFF).
        else if (mode === "skip") this.#skipReplies = this.#replyOff ? 0 : 2;
        else return encodeError("ERR syntax error");
        return OK_REPLY;
      }
      default:
        return null;
    }
  }

  /** RESET as redis-server: name, flags, reply mode and authentication back to a new client's. */
  #reset(): void {
    const state = this.#client.connState;
    if (state !== null) {
      state.name = null;
      state.noEvict = false;
      state.noTouch = false;
    }
    this.#replyOff = false;
    this.#skipReplies = 0;
    this.#authenticated = false;
  }

  /** SCAN on the node the cursor names (see resp_scan.ts for the cursor's encoding). */
  #scan(argv: Uint8Array[], plan: Plan): void {
    const parsed = parseScanCursor(argv[1]);
    if (parsed === null) {
      plan.local(invalidCursorReply());
      return;
    }
    const groups = this.#settings.routing.broadcastGroups();
    if (groups.length === 0) {
      plan.local(encodeError("ERR no backend available"));
      return;
    }
    if (groups.length > SCAN_MAX_NODES) {
      plan.local(
        encodeError(`ERR SCAN is not supported by aster over more than ${SCAN_MAX_NODES} nodes`),
      );
      return;
    }
    // A node index past the end: the node list shrank mid-scan; the iteration is over.
    if (parsed.node >= groups.length) {
      plan.local(SCAN_DONE_REPLY);
      return;
    }
    const part = { group: groups[parsed.node], keyIndexes: [] };
    const strategy = new ScanSplit(argv, parsed.node, parsed.cursor, groups.length);
    // Not readonly: a replica's table differs from its master's, so a cursor must stay on one.
    plan.split(new SplitMerge([part], strategy), false);
  }

  /** HELLO ... SETNAME name names the connection, as CLIENT SETNAME does. */
  #helloSetname(argv: Uint8Array[]): void {
    for (let i = 2; i + 1 < argv.length; i++) {
      const option = decoder.decode(argv[i]).toLowerCase();
      if (option === "auth") i += 2;
      else if (option === "setname") {
        clientReply([CLIENT, SETNAME, argv[i + 1]], this.#state());
        i++;
      }
    }
  }

  /** Sends an allowed server-wide command to every backend and merges the replies. */
  #broadcast(spec: CommandSpec, argv: Uint8Array[], plan: Plan): void {
    const groups = this.#settings.routing.broadcastGroups();
    if (groups.length === 0) {
      plan.local(encodeError("ERR no backend available"));
      return;
    }
    const parts = groups.map((group) => ({ group, keyIndexes: [] }));
    const kind = BROADCAST_MERGE[spec.name] ?? "first";
    const strategy = new RespSplit({
      kind,
      argv,
      whole: true,
      parts: parts.length,
      keyCount: 0,
      firstKeyIndex: 0,
    });
    plan.split(new SplitMerge(parts, strategy));
  }

  #route(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array | null, plan: Plan): void {
    const blocking = isBlockingRequest(spec, argv);
    const keyIndexes = commandKeyIndexes(spec, argv);
    if (typeof keyIndexes === "string") {
      plan.local(encodeError(keyIndexes));
      return;
    }
    const routing = this.#settings.routing;
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
      plan.local(encodeError("ERR no backend available: every node is ejected"));
      return;
    }
    if (groups === null && blocking) {
      // A blocking command holds its connection: one of its own, back to the pool after the
      // reply (the watched keys' connection when on it: a BLPOP in a watching client is there).
      const release = this.#tx === null || this.#tx.group !== first;
      plan.pin(first, raw ?? encodeCommand(argv), release);
      return;
    }
    if (groups === null) {
      // Watched keys' node: the client's own writes there go on its pinned connection,
      // in order with its WATCH (another connection could run them before it).
      if (this.#tx !== null && this.#tx.group === first) {
        plan.pin(first, raw ?? encodeCommand(argv), false);
        return;
      }
      if (spec.sortPatterns === true) {
        const refusal = _sortPatternRefusal(spec, argv, first, routing);
        if (refusal !== null) {
          plan.local(refusal);
          return;
        }
      }
      plan.forward(first, raw ?? encodeCommand(argv), spec.readonly);
      return;
    }
    if (spec.kind !== "multi" || spec.split === undefined) {
      plan.local(routing.crossGroupError(spec));
      return;
    }
    const parts = groupKeys(keyIndexes, groups);
    const strategy = new RespSplit({
      kind: spec.split,
      argv,
      whole: false,
      parts: parts.length,
      keyCount: keyIndexes.length,
      firstKeyIndex: keyIndexes[0],
    });
    plan.split(new SplitMerge(parts, strategy), spec.readonly);
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

/** Whether `arg` is `word` (lowercase ASCII) in any case. */
function _isWord(arg: Uint8Array, word: Uint8Array): boolean {
  if (arg.length !== word.length) return false;
  for (let i = 0; i < arg.length; i++) if ((arg[i] | 0x20) !== word[i]) return false;
  return true;
}

/** Redis's own wording for an unknown command. */
function _unknownCommand(argv: readonly Uint8Array[]): Uint8Array {
  const name = describeBytes(argv[0], 0, argv[0].length, 128);
  const args = argv.slice(1, 4).map((arg) => `'${describeBytes(arg, 0, arg.length, 64)}' `)
    .join("");
  return encodeError(`ERR unknown command '${name}', with args beginning with: ${args}`);
}
