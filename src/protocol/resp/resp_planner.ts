/** RESP's planner: frames a client's requests and plans each one (answer, forward, split). */
import { encodeBulk, encodeCommand, encodeError, OK_REPLY, resp3Reply } from "./encoder.ts";
import { RespRequestDecoder } from "./request_decoder.ts";
import {
  blockingTimeoutMs,
  type CommandSpec,
  isBlockingRequest,
  KEYLESS_SCRIPT_REPLY,
  lookupCommand,
  routingKeyIndexes,
  SCRIPT_REPLY,
  sortPatternIndexes,
} from "./commands.ts";
import { clientReply, type ClientState, localReply, selectReply } from "../../proxy/redis_local.ts";
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
import { infoReply, infoText, infoWantsKeyspace, slowlogReply } from "../../proxy/redis_admin.ts";
import {
  allowedBeforeAuth,
  answerAuth,
  answerHello,
  NOAUTH_ERROR,
} from "../../proxy/redis_auth.ts";
import { CLASSIC_PUBSUB_GROUP, type RedisRouting } from "../../proxy/routing.ts";
import { groupKeys, type MergeKind, RespSplit } from "./resp_split.ts";
import { RespTransaction } from "./transaction.ts";
import {
  ClientSubscriptions,
  SubKind,
  type SubKindValue,
  subscribedError,
  subscribedPong,
} from "./pubsub.ts";
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
  /** The database every backend connection selects (`database`; 0 in redis_cluster). */
  database: number;
}

const decoder = new TextDecoder();
const FUNCTION_FLUSH_REFUSED = encodeError(
  "ERR FUNCTION FLUSH is not allowed by aster: it empties every backend's functions; " +
    'add "function" to allow_commands to allow it',
);
const FUNCTION_KILL_REFUSED = encodeError(
  "ERR FUNCTION KILL is not supported by aster: a function runs on one backend",
);

const SCRIPT_FLUSH_REFUSED = encodeError(
  "ERR SCRIPT FLUSH is not allowed by aster: it empties every backend's script cache; " +
    "add 'script' to allow_commands to allow it",
);
const SCRIPT_KILL_REFUSED = encodeError(
  "ERR SCRIPT KILL is not allowed by aster: a script runs on one backend; " +
    "add 'script' to allow_commands to send it to every backend",
);
const SCRIPT_DEBUG_REFUSED = encodeError(
  "ERR SCRIPT DEBUG is not supported by aster: the debugger needs the client's own backend connection",
);

/** Where a refusal sends the reader: the list of refused commands and why. */
const REFUSED_DOC = "(see docs/commands.md#refused-commands)";

const CLIENT = new TextEncoder().encode("client");
/** What a backend is asked for INFO's keyspace section. */
const INFO_KEYSPACE = ["info", "keyspace"].map((word) => new TextEncoder().encode(word));
const SETNAME = new TextEncoder().encode("setname");
const LIST = new TextEncoder().encode("list");
const INFO = new TextEncoder().encode("info");

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

/** The subscription kind of each (un)subscribe command. */
const SUBSCRIBE_KINDS: Record<string, [SubKindValue, boolean]> = {
  subscribe: [SubKind.channel, true],
  psubscribe: [SubKind.pattern, true],
  ssubscribe: [SubKind.shard, true],
  unsubscribe: [SubKind.channel, false],
  punsubscribe: [SubKind.pattern, false],
  sunsubscribe: [SubKind.shard, false],
};

/** How PUBSUB's subcommands merge over the nodes (others: one node answers). */
const PUBSUB_MERGE: Record<string, MergeKind> = {
  channels: "union",
  shardchannels: "union",
  numsub: "numsub",
  shardnumsub: "numsub",
  numpat: "sum",
};
/**
 * SCRIPT and FUNCTION subcommands Aster sends to every backend or refuses outside a
 * transaction (SCRIPT LOAD/FLUSH/KILL/DEBUG, FUNCTION LOAD/DELETE/RESTORE/FLUSH/KILL).
 */
function _fansOut(spec: CommandSpec, argv: Uint8Array[]): boolean {
  const subcommands = _FANNED_OUT.get(spec.name);
  return subcommands !== undefined && argv.length >= 2 &&
    subcommands.has(decoder.decode(argv[1]).toLowerCase());
}

const _FANNED_OUT = new Map([
  ["script", new Set(["load", "flush", "kill", "debug"])],
  ["function", new Set(["load", "delete", "restore", "flush", "kill"])],
]);

/** The refusal of a subscription change inside MULTI (an unsubscribe only while subscribed). */
function _subscriptionInMulti(name: string): Uint8Array {
  const what = name.toUpperCase();
  return SUBSCRIBE_KINDS[name][1]
    ? encodeError(
      `ERR ${what} inside MULTI is not supported by aster: subscribe outside the transaction`,
    )
    : encodeError(
      `ERR ${what} inside MULTI is not supported by aster while subscribed or with several ` +
        "names: unsubscribe outside the transaction",
    );
}
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
  /**
   * HELLO 3: the client speaks RESP3. Its requests then go over backend connections that
   * said HELLO 3 (the plan's lane 1), so backend replies are forwarded as they are; the
   * replies Aster makes are encoded for it (see resp3Reply).
   */
  #resp3 = false;
  /** CLIENT SETNAME's name (made on the first CLIENT command). */
  #clientState: ClientState | null = null;
  /** MULTI/WATCH state, made on the client's first transaction command. */
  #tx: RespTransaction | null = null;
  /** Counted in the cluster's `in_transaction` gauge. */
  #inTransaction = false;
  /** CLIENT REPLY OFF: replies are not written until CLIENT REPLY ON. */
  #replyOff = false;
  /** CLIENT REPLY SKIP: how many requests from this one on get no reply written. */
  #skipReplies = 0;
  /** Pub/Sub: made on the client's first (un)subscribe. */
  #subs: ClientSubscriptions | null = null;

  constructor(client: RespClient, settings: RedisSettings) {
    this.#client = client;
    this.#settings = settings;
  }

  get neededBytes(): number {
    return this.#decoder.neededBytes;
  }

  next(buf: Uint8Array, start: number, end: number, plan: Plan): number {
    const decoder = this.#decoder;
    // Read as the request before it left the client (an AUTH just planned lifts the limits).
    decoder.authRequired = !this.#authenticated && this.#settings.password !== null;
    const request = decoder.decode(buf, start, end);
    if (request === null) return -1;
    if (request.argv.length === 0) plan.skip();
    else {
      const raw = request.inline ? null : buf.subarray(start, start + request.size);
      this.#plan(request.argv, raw, plan);
      if (this.#tx !== null) this.#countTransaction(this.#tx.active);
      if ((this.#replyOff || this.#skipReplies > 0) && plan.kind !== PlanKind.none) {
        // (Un)subscribe confirmations are pushes, which Redis writes whatever CLIENT REPLY
        // says (as it does the messages).
        if (plan.kind !== PlanKind.subscribe) plan.silent = true;
        if (this.#skipReplies > 0) this.#skipReplies--;
      }
    }
    return request.size;
  }

  clientGone(): void {
    this.#countTransaction(false);
  }

  /** Keeps the client counted in `transaction_clients` while it is in one. */
  #countTransaction(active: boolean): void {
    if (active === this.#inTransaction) return;
    this.#inTransaction = active;
    this.#client.metrics.clientStates.in_transaction += active ? 1 : -1;
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
      this.#reject(spec, `ERR wrong number of arguments for '${spec.name}' command`, plan);
      return;
    }
    const { password, routing } = this.#settings;
    if (spec.name === "reset") {
      this.#reset();
      const subs = this.#subs;
      if (subs !== null && subs.total > 0) {
        // Subscriptions dropped; a watch's pinned connection is closed with them.
        plan.subscribe(subs, subs.clear(), RESET_REPLY);
        plan.release = tx !== null && tx.group >= 0;
        tx?.forget();
      } else if (tx !== null) tx.reset(plan, RESET_REPLY);
      else plan.local(RESET_REPLY);
      this.#setProtocol(2, plan);
      return;
    }
    if (password !== null && !this.#authenticated && !allowedBeforeAuth(spec.name)) {
      metrics.error("noauth");
      this.#reject(spec, NOAUTH_ERROR, plan);
      return;
    }
    // RESP3 has no subscribed state: a RESP3 client runs any command while subscribed.
    const subscribed = this.#subs !== null && this.#subs.total > 0;
    if (subscribed && !this.#resp3 && this.#subscribed(spec, argv, plan)) return;
    if (spec.kind === "pubsub" && spec.name !== "pubsub") {
      if (tx !== null && tx.inMulti) {
        if (!subscribed && !SUBSCRIBE_KINDS[spec.name][1] && argv.length <= 2) {
          // Nothing to unsubscribe: queued, the transaction's connection answers it as
          // redis-server does for a client with no subscription. Not with several names:
          // Redis answers one per name, more replies than EXEC's array counts, and the extra
          // ones would answer the next request on that connection.
          tx.queue(spec, argv, raw ?? encodeCommand(argv), plan);
          return;
        }
        metrics.error("refused");
        tx.abort();
        plan.local(_subscriptionInMulti(spec.name));
        return;
      }
      this.#subscribe(spec, argv, plan);
      return;
    }
    if (spec.kind === "transaction") {
      this.#tx ??= new RespTransaction(
        () => this.#settings,
        client.metrics.facts.cacheType === "redis_cluster",
      );
      this.#tx.command(spec, argv, raw ?? encodeCommand(argv), plan);
      return;
    }
    if (tx !== null && tx.inMulti && spec.name !== "quit") {
      if (_fansOut(spec, argv)) {
        // One transaction runs on one node: these would reach only it, past Aster's refusals.
        metrics.error("refused");
        tx.abort();
        plan.local(
          encodeError(
            `ERR command '${spec.name}' is not supported by aster inside MULTI: ` +
              "Aster sends it to every backend (or refuses it), outside transactions only",
          ),
        );
        return;
      }
      tx.queue(spec, argv, raw ?? encodeCommand(argv), plan);
      return;
    }
    if (spec.name === "info") {
      // INFO keyspace is the backends' (summed); the other sections are Aster's own.
      if (infoWantsKeyspace(argv)) {
        this.#broadcast(spec, INFO_KEYSPACE, plan, "keyspace", infoText(metrics, argv));
      } else plan.local(this.#text(infoReply(metrics, argv)));
      return;
    }
    if (spec.name === "slowlog") {
      plan.local(slowlogReply(metrics, argv));
      return;
    }
    if (spec.name === "auth") {
      const { reply, ok } = answerAuth(argv, password);
      if (ok) this.#authenticated = true;
      plan.local(reply);
      return;
    }
    if (spec.name === "hello") {
      this.#hello(argv, plan);
      return;
    }
    const modeReply = routing.localReply(spec, argv, this.#resp3);
    if (modeReply !== null) {
      plan.local(modeReply);
      return;
    }
    switch (spec.kind) {
      case "local":
        if (spec.name === "quit") plan.local(OK_REPLY, true);
        else if (spec.name === "select") plan.local(selectReply(argv[1], this.#settings.database));
        else plan.local(localReply(spec, argv));
        return;
      case "server":
        this.#server(spec, argv, raw, plan);
        return;
      case "pubsub":
        this.#pubsubCommand(spec, argv, raw, plan);
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
            plan.local(this.#resp3 ? resp3Reply(reply, _isTextClientReply(argv)) : reply);
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
    if (spec.name === "script" && argv[1].length <= 6) {
      const refusal = this.#script(spec, argv, decoder.decode(argv[1]).toLowerCase(), plan);
      if (refusal !== null) {
        metrics.error("refused");
        plan.local(refusal);
      }
      if (plan.kind !== PlanKind.none) return;
    }
    const group = this.#settings.routing.broadcastGroups()[0];
    if (group === undefined) {
      plan.local(encodeError("ERR no backend available"));
      return;
    }
    plan.forward(group, raw ?? encodeCommand(argv), false);
  }

  /**
   * The RESP2 subscribed state: PING answered as redis-server does there, QUIT and the
   * (un)subscribe commands as usual, anything else refused with redis-server's error. True
   * when the plan is made.
   */
  #subscribed(spec: CommandSpec, argv: Uint8Array[], plan: Plan): boolean {
    switch (spec.name) {
      case "ping":
        if (argv.length > 2) {
          plan.local(encodeError("ERR wrong number of arguments for 'ping' command"));
        } else plan.local(subscribedPong(argv[1]));
        return true;
      case "quit":
        return false;
      default:
        if (spec.kind === "pubsub" && spec.name !== "pubsub") return false;
        this.#client.metrics.error("refused");
        this.#reject(spec, subscribedError(spec.name, argv), plan);
        return true;
    }
  }

  /**
   * A command refused before it runs (its arity, NOAUTH, the subscribed state), as Redis's
   * rejectCommand (server.c): it fails a transaction it was queued in, and EXEC itself
   * answers EXECABORT "because of" the refusal and ends the transaction and the watches,
   * even outside MULTI.
   */
  #reject(spec: CommandSpec, error: string, plan: Plan): void {
    const tx = this.#tx;
    if (spec.name !== "exec") {
      tx?.abort();
      plan.local(encodeError(error));
      return;
    }
    const reply = encodeError(
      `EXECABORT Transaction discarded because of: ${error.replace(/^ERR /, "")}`,
    );
    if (tx !== null) tx.reset(plan, reply);
    else plan.local(reply);
  }

  /** (P|S)(UN)SUBSCRIBE: the client's subscriptions change, confirmed once the backends did. */
  #subscribe(spec: CommandSpec, argv: Uint8Array[], plan: Plan): void {
    const [kind, subscribe] = SUBSCRIBE_KINDS[spec.name];
    const names = argv.slice(1);
    const routing = this.#settings.routing;
    if (
      kind === SubKind.shard && names.length > 1 &&
      this.#client.metrics.facts.cacheType === "redis_cluster"
    ) {
      // Redis Cluster's own rule: one SSUBSCRIBE names channels of one slot.
      const first = routing.groupOf(names[0]);
      if (names.some((name) => routing.groupOf(name) !== first)) {
        plan.local(routing.crossGroupError(spec));
        return;
      }
    }
    let subs = this.#subs;
    if (subs === null) {
      // Shown by CLIENT LIST (sub, psub, ssub, the P flag) to every client of the listener.
      subs = this.#subs = new ClientSubscriptions();
      this.#state().subs = subs;
    }
    const delta = subscribe
      ? subs.subscribe(kind, names, this.#resp3)
      : subs.unsubscribe(kind, names, this.#resp3);
    plan.subscribe(subs, [delta], delta.reply);
  }

  /**
   * PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, SHARDNUMSUB over every node (every
   * master), merged: channels joined without repeats, counts summed per channel, NUMPAT
   * summed (in `redis` mode a pattern is on every node: the largest count, not the sum).
   * Other subcommands (HELP...) go to one node.
   */
  #pubsubCommand(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array | null, plan: Plan) {
    const sub = argv[1].length <= 16 ? decoder.decode(argv[1]).toLowerCase() : "";
    let kind = PUBSUB_MERGE[sub];
    if (kind === undefined) {
      this.#server(spec, argv, raw, plan);
      return;
    }
    if (kind === "sum" && this.#client.metrics.facts.cacheType !== "redis_cluster") kind = "max";
    this.#broadcast(spec, argv, plan, kind);
  }

  /**
   * SCRIPT LOAD and EXISTS go to every backend (every master), so EVALSHA works wherever
   * its keys land: LOAD answers the SHA once every node has it, EXISTS 1 only where every
   * node has the script. FLUSH and KILL go everywhere when `allow_commands` has "script",
   * else they are refused, as DEBUG always is. Returns the refusal, or null once `plan` is
   * filled (left empty: HELP and the rest go to one backend).
   */
  #script(spec: CommandSpec, argv: Uint8Array[], sub: string, plan: Plan): Uint8Array | null {
    switch (sub) {
      case "load":
        this.#broadcast(spec, argv, plan);
        return null;
      case "exists":
        this.#broadcast(spec, argv, plan, "every");
        return null;
      case "flush":
      case "kill":
        if (!this.#settings.allowed.has("script")) {
          return sub === "flush" ? SCRIPT_FLUSH_REFUSED : SCRIPT_KILL_REFUSED;
        }
        this.#broadcast(spec, argv, plan);
        return null;
      case "debug":
        return SCRIPT_DEBUG_REFUSED;
    }
    return null;
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
        return clientListReply(argv, client.peers, coarseClock.now, this.#settings.database);
      case "info":
        if (argv.length !== 2) {
          return encodeError("ERR wrong number of arguments for 'client|info' command");
        }
        return encodeBulk(
          clientLine(client, coarseClock.now, "client|info", this.#settings.database) + "\n",
        );
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

  /**
   * HELLO [protover [AUTH user pass] [SETNAME name]]. A change of protocol is refused while
   * the client has a transaction or watched keys: its pinned connection speaks the old one.
   */
  #hello(argv: Uint8Array[], plan: Plan): void {
    const client = this.#client;
    const metrics = client.metrics;
    const password = this.#settings.password;
    const current = this.#resp3 ? 3 : 2;
    const { reply, ok, protocol } = answerHello(argv, {
      password,
      authenticated: this.#authenticated || password === null,
      clientId: client.id,
      version: metrics.redisVersion().version,
      mode: metrics.facts.cacheType === "redis_cluster" ? "cluster" : "standalone",
      protocol: current,
      resp3: _speaksResp3(metrics.redisVersion().version),
    });
    if (protocol !== current && this.#tx !== null && this.#tx.active) {
      plan.local(HELLO_IN_TRANSACTION);
      return;
    }
    if (protocol !== current && this.#subs !== null && this.#subs.total > 0) {
      plan.local(HELLO_SUBSCRIBED);
      return;
    }
    if (ok) this.#authenticated = true;
    if (ok) this.#helloSetname(argv);
    this.#setProtocol(protocol, plan);
    plan.local(reply);
  }

  /** The client's protocol from now on; its requests use the backend lane that speaks it. */
  #setProtocol(protocol: number, plan: Plan): void {
    this.#resp3 = protocol === 3;
    plan.lane = this.#resp3 ? 1 : 0;
    if (this.#resp3 || this.#client.connState !== null) this.#state().resp = protocol;
  }

  /** A text reply (a bulk string) as this client gets it: verbatim under RESP3. */
  #text(reply: Uint8Array): Uint8Array {
    return this.#resp3 ? resp3Reply(reply, true) : reply;
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
  #broadcast(
    spec: CommandSpec,
    argv: Uint8Array[],
    plan: Plan,
    kind: MergeKind = BROADCAST_MERGE[spec.name] ?? "first",
    before?: string,
  ): void {
    const groups = this.#settings.routing.broadcastGroups();
    if (groups.length === 0) {
      plan.local(encodeError("ERR no backend available"));
      return;
    }
    const parts = groups.map((group) => ({ group, keyIndexes: [] }));
    const strategy = new RespSplit({
      kind,
      argv,
      whole: true,
      parts: parts.length,
      keyCount: 0,
      firstKeyIndex: 0,
      before,
    });
    plan.split(new SplitMerge(parts, strategy));
  }

  #route(spec: CommandSpec, argv: Uint8Array[], raw: Uint8Array | null, plan: Plan): void {
    const blocking = isBlockingRequest(spec, argv);
    const keyIndexes = routingKeyIndexes(spec, argv);
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
    if (spec.name === "publish" && routing.sharedPubsub === true) {
      // Redis Cluster: where Aster subscribes classic channels (see src/proxy/subscriber.ts).
      plan.forward(CLASSIC_PUBSUB_GROUP, raw ?? encodeCommand(argv), false);
      return;
    }
    if (groups === null && blocking) {
      // A blocking command holds its connection: one of its own, back to the pool after the
      // reply (the watched keys' connection when on it: a BLPOP in a watching client is there).
      const release = this.#tx === null || this.#tx.group !== first;
      plan.pin(first, raw ?? encodeCommand(argv), release);
      plan.blockMs = blockingTimeoutMs(spec, argv);
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
      const replyKind = spec.kind !== "eval"
        ? 0
        : keyCount > 0
        ? SCRIPT_REPLY
        : KEYLESS_SCRIPT_REPLY;
      plan.forward(first, raw ?? encodeCommand(argv), spec.readonly, replyKind);
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

const HELLO_SUBSCRIBED = encodeError(
  "ERR HELLO cannot change the protocol while subscribed in aster (the subscription " +
    "connections speak the protocol they began with): unsubscribe first",
);

const HELLO_IN_TRANSACTION = encodeError(
  "ERR HELLO cannot change the protocol inside a transaction or with watched keys in aster " +
    "(the transaction's backend connection speaks the protocol it began with)",
);

/** CLIENT LIST and CLIENT INFO answer text: a verbatim string under RESP3, as redis-server. */
function _isTextClientReply(argv: readonly Uint8Array[]): boolean {
  const sub = argv[1];
  return sub.length === 4 && (_isWord(sub, LIST) || _isWord(sub, INFO));
}

/** Redis speaks RESP3 from 6.0 on (an unknown version is taken as a recent one). */
function _speaksResp3(version: string): boolean {
  const major = Number(version.split(".")[0]);
  return !(major < 6);
}

/** Whether `arg` is `word` (lowercase ASCII) in any case. */
function _isWord(arg: Uint8Array, word: Uint8Array): boolean {
  if (arg.length !== word.length) return false;
  for (let i = 0; i < arg.length; i++) if ((arg[i] | 0x20) !== word[i]) return false;
  return true;
}

/** Redis's own wording for an unknown command. */
function _unknownCommand(argv: readonly Uint8Array[]): Uint8Array {
  // redis-server's bytes (processCommand, rejectCommandFormat): the name and then quoted
  // arguments while they come to under 128 bytes, each as C's "%.*s" prints it (up to a
  // NUL, at most what is left of the 128), "\r" and "\n" as spaces, other bytes as they are.
  const out: number[] = [..._UNKNOWN_HEAD];
  _pushCString(out, argv[0], 128);
  out.push(..._UNKNOWN_ARGS);
  let argsLength = 0;
  for (let i = 1; i < argv.length && argsLength < 128; i++) {
    const from = out.length;
    out.push(0x27);
    _pushCString(out, argv[i], 128 - argsLength);
    out.push(0x27, 0x20);
    argsLength += out.length - from;
  }
  for (let i = 1; i < out.length; i++) if (out[i] === 0x0d || out[i] === 0x0a) out[i] = 0x20;
  out.push(0x0d, 0x0a);
  return Uint8Array.from(out);
}

const _UNKNOWN_HEAD = new TextEncoder().encode("-ERR unknown command '");
const _UNKNOWN_ARGS = new TextEncoder().encode("', with args beginning with: ");

/** Appends `bytes` as C's "%.*s" prints them: up to the first NUL, at most `max`. */
function _pushCString(out: number[], bytes: Uint8Array, max: number): void {
  for (let i = 0; i < bytes.length && i < max && bytes[i] !== 0; i++) out.push(bytes[i]);
}
