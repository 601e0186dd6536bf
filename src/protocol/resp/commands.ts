/**
 * The Redis command table: how the proxy handles each Redis 7.0 command, where
 * its keys are, and a byte-level, case-insensitive lookup by name.
 *
 * Pure data and functions: no Deno APIs. Names are looked up from the request's
 * bytes without decoding them to a string, and keys are returned as argv
 * indexes so callers keep them as `Uint8Array` views.
 *
 * @module
 */

/** How the proxy handles a command. */
export type CommandKind =
  /** All keys must map to one backend; forwarded verbatim. */
  | "single"
  /** Keys may be split across backends and the replies merged: see `split`. */
  | "multi"
  /** EVAL/EVALSHA/EVAL_RO/EVALSHA_RO/FCALL/FCALL_RO: keys from numkeys, all on one backend. */
  | "eval"
  /** Answered by the proxy itself (PING, ECHO, QUIT, SELECT). */
  | "local"
  /**
   * Keyless commands about the backends themselves, forwarded whole: COMMAND to one backend
   * (its answer is Redis's own), FUNCTION by subcommand to every backend or to one,
   * DBSIZE, RANDOMKEY and SCAN over every node, TIME, LASTSAVE, ROLE, LOLWUT to one.
   */
  | "server"
  /** MULTI, EXEC, DISCARD, WATCH, UNWATCH: on a pinned connection (transaction.ts). */
  | "transaction"
  /**
   * (P|S)(UN)SUBSCRIBE: the client's subscriptions on its subscription connections
   * (src/protocol/resp/pubsub.ts, src/proxy/subscriber.ts); PUBSUB over every node, merged.
   */
  | "pubsub"
  /** Refused with an error naming the command; `reason` says why. */
  | "unsupported";

/**
 * How a "multi" command's per-backend replies merge: "mget" returns the values
 * in key order, "mset" replies OK when every part replied OK, "sum" adds up the
 * integer replies (DEL, UNLINK, EXISTS, TOUCH).
 */
export type SplitKind = "mget" | "mset" | "sum";

/**
 * Reply kinds the RESP planner gives a forwarded script (EVAL, EVALSHA, FCALL and their _RO
 * forms): its error replies may be the script's own text (`redis.error_reply`), so
 * `redis_cluster` routing never takes one on trust for a redirect (the RESP framer ignores
 * kinds). With keys, Redis checks their slot before the script runs, so a MOVED may be the
 * cluster's; without keys it never redirects.
 */
export const SCRIPT_REPLY = 1;
export const KEYLESS_SCRIPT_REPLY = 2;

/**
 * One command of the table.
 *
 * Keys (see {@link commandKeyIndexes}) are the union of:
 * - the range `firstKey..lastKey` stepping by `keyStep` (Redis's legacy key
 *   triple: `firstKey` 0 means none; a negative `lastKey` counts from the end,
 *   -1 being the last argument). These three are what Redis's `COMMAND` reports,
 *   except for OBJECT, XINFO and XGROUP, whose subcommands keep the key at argv[2];
 * - with `keysFrom: "numkeys"`: a count at `argv[numkeysIndex]` followed by that
 *   many keys (EVAL: count at 2, keys from 3; ZUNIONSTORE: the range gives the
 *   destination at 1, count at 2, keys from 3; LMPOP: count at 1, keys from 2);
 * - with `keysFrom: "streams"` (XREAD, XREADGROUP): the first half of the
 *   arguments after the STREAMS option;
 * - with `storeFrom`: the argument after each STORE or STOREDIST option found
 *   from that argv index on (SORT, GEORADIUS, GEORADIUSBYMEMBER).
 */
export interface CommandSpec {
  /** Lowercase name, e.g. "getrange". */
  readonly name: string;
  /** Redis arity: >0 exact argc including the name; <0 at least -arity. */
  readonly arity: number;
  /** How the proxy handles it. */
  readonly kind: CommandKind;
  /** Argv index of the first key of the range, 0 = no range. */
  readonly firstKey: number;
  /** Argv index of the last key of the range; -1 = last argument, -2 = second to last... */
  readonly lastKey: number;
  /** Distance between range keys (2 for MSET), 0 when there is no range. */
  readonly keyStep: number;
  /** Keys beyond the range: counted by a numkeys argument, or listed after STREAMS. */
  readonly keysFrom?: "numkeys" | "streams";
  /** For `keysFrom: "numkeys"`: argv index of the count; the counted keys follow it. */
  readonly numkeysIndex?: number;
  /** Argv index where options start that may name a STORE/STOREDIST destination key. */
  readonly storeFrom?: number;
  /** Read-only command (may go to replicas later); Redis's "readonly" flag. */
  readonly readonly: boolean;
  /** For kind "multi": how replies merge. */
  readonly split?: SplitKind;
  /** For kind "unsupported": a short why, e.g. "blocking commands are not supported". */
  readonly reason?: string;
  /**
   * SORT, SORT_RO: BY and GET patterns name other keys, which must be where the key is
   * (see {@link sortPatternIndexes}).
   */
  readonly sortPatterns?: true;
}

const RO = true;
const RW = false;

/** name, arity, firstKey, lastKey, keyStep, readonly */
type _Row = readonly [string, number, number, number, number, boolean];

function _rows(kind: CommandKind, rows: readonly _Row[]): CommandSpec[] {
  return rows.map(([name, arity, firstKey, lastKey, keyStep, readonly]) => ({
    name,
    arity,
    kind,
    firstKey,
    lastKey,
    keyStep,
    readonly,
  }));
}

// Commands whose keys are all given by the legacy range and must be on one backend.
const _SINGLE: readonly _Row[] = [
  // strings
  ["append", 3, 1, 1, 1, RW],
  ["decr", 2, 1, 1, 1, RW],
  ["decrby", 3, 1, 1, 1, RW],
  ["get", 2, 1, 1, 1, RO],
  ["getdel", 2, 1, 1, 1, RW],
  ["getex", -2, 1, 1, 1, RW],
  ["getrange", 4, 1, 1, 1, RO],
  ["getset", 3, 1, 1, 1, RW],
  ["incr", 2, 1, 1, 1, RW],
  ["incrby", 3, 1, 1, 1, RW],
  ["incrbyfloat", 3, 1, 1, 1, RW],
  ["lcs", -3, 1, 2, 1, RO],
  ["msetnx", -3, 1, -1, 2, RW],
  ["psetex", 4, 1, 1, 1, RW],
  ["set", -3, 1, 1, 1, RW],
  ["setex", 4, 1, 1, 1, RW],
  ["setnx", 3, 1, 1, 1, RW],
  ["setrange", 4, 1, 1, 1, RW],
  ["strlen", 2, 1, 1, 1, RO],
  ["substr", 4, 1, 1, 1, RO],
  // keyspace
  ["copy", -3, 1, 2, 1, RW],
  ["dump", 2, 1, 1, 1, RO],
  ["expire", -3, 1, 1, 1, RW],
  ["expireat", -3, 1, 1, 1, RW],
  ["expiretime", 2, 1, 1, 1, RO],
  ["object", -2, 2, 2, 1, RO],
  ["persist", 2, 1, 1, 1, RW],
  ["pexpire", -3, 1, 1, 1, RW],
  ["pexpireat", -3, 1, 1, 1, RW],
  ["pexpiretime", 2, 1, 1, 1, RO],
  ["pttl", 2, 1, 1, 1, RO],
  ["rename", 3, 1, 2, 1, RW],
  ["renamenx", 3, 1, 2, 1, RW],
  ["restore", -4, 1, 1, 1, RW],
  ["ttl", 2, 1, 1, 1, RO],
  ["type", 2, 1, 1, 1, RO],
  // hashes
  ["hdel", -3, 1, 1, 1, RW],
  ["hexists", 3, 1, 1, 1, RO],
  ["hget", 3, 1, 1, 1, RO],
  ["hgetall", 2, 1, 1, 1, RO],
  ["hincrby", 4, 1, 1, 1, RW],
  ["hincrbyfloat", 4, 1, 1, 1, RW],
  ["hkeys", 2, 1, 1, 1, RO],
  ["hlen", 2, 1, 1, 1, RO],
  ["hmget", -3, 1, 1, 1, RO],
  ["hmset", -4, 1, 1, 1, RW],
  ["hrandfield", -2, 1, 1, 1, RO],
  ["hscan", -3, 1, 1, 1, RO],
  ["hset", -4, 1, 1, 1, RW],
  ["hsetnx", 4, 1, 1, 1, RW],
  ["hstrlen", 3, 1, 1, 1, RO],
  ["hvals", 2, 1, 1, 1, RO],
  // lists
  ["lindex", 3, 1, 1, 1, RO],
  ["linsert", 5, 1, 1, 1, RW],
  ["llen", 2, 1, 1, 1, RO],
  ["lmove", 5, 1, 2, 1, RW],
  ["lpop", -2, 1, 1, 1, RW],
  ["lpos", -3, 1, 1, 1, RO],
  ["lpush", -3, 1, 1, 1, RW],
  ["lpushx", -3, 1, 1, 1, RW],
  ["lrange", 4, 1, 1, 1, RO],
  ["lrem", 4, 1, 1, 1, RW],
  ["lset", 4, 1, 1, 1, RW],
  ["ltrim", 4, 1, 1, 1, RW],
  ["rpop", -2, 1, 1, 1, RW],
  ["rpoplpush", 3, 1, 2, 1, RW],
  ["rpush", -3, 1, 1, 1, RW],
  ["rpushx", -3, 1, 1, 1, RW],
  // sets
  ["sadd", -3, 1, 1, 1, RW],
  ["scard", 2, 1, 1, 1, RO],
  ["sdiff", -2, 1, -1, 1, RO],
  ["sdiffstore", -3, 1, -1, 1, RW],
  ["sinter", -2, 1, -1, 1, RO],
  ["sinterstore", -3, 1, -1, 1, RW],
  ["sismember", 3, 1, 1, 1, RO],
  ["smembers", 2, 1, 1, 1, RO],
  ["smismember", -3, 1, 1, 1, RO],
  ["smove", 4, 1, 2, 1, RW],
  ["spop", -2, 1, 1, 1, RW],
  ["srandmember", -2, 1, 1, 1, RO],
  ["srem", -3, 1, 1, 1, RW],
  ["sscan", -3, 1, 1, 1, RO],
  ["sunion", -2, 1, -1, 1, RO],
  ["sunionstore", -3, 1, -1, 1, RW],
  // sorted sets
  ["zadd", -4, 1, 1, 1, RW],
  ["zcard", 2, 1, 1, 1, RO],
  ["zcount", 4, 1, 1, 1, RO],
  ["zincrby", 4, 1, 1, 1, RW],
  ["zlexcount", 4, 1, 1, 1, RO],
  ["zmscore", -3, 1, 1, 1, RO],
  ["zpopmax", -2, 1, 1, 1, RW],
  ["zpopmin", -2, 1, 1, 1, RW],
  ["zrandmember", -2, 1, 1, 1, RO],
  ["zrange", -4, 1, 1, 1, RO],
  ["zrangebylex", -4, 1, 1, 1, RO],
  ["zrangebyscore", -4, 1, 1, 1, RO],
  ["zrangestore", -5, 1, 2, 1, RW],
  ["zrank", 3, 1, 1, 1, RO],
  ["zrem", -3, 1, 1, 1, RW],
  ["zremrangebylex", 4, 1, 1, 1, RW],
  ["zremrangebyrank", 4, 1, 1, 1, RW],
  ["zremrangebyscore", 4, 1, 1, 1, RW],
  ["zrevrange", -4, 1, 1, 1, RO],
  ["zrevrangebylex", -4, 1, 1, 1, RO],
  ["zrevrangebyscore", -4, 1, 1, 1, RO],
  ["zrevrank", 3, 1, 1, 1, RO],
  ["zscan", -3, 1, 1, 1, RO],
  ["zscore", 3, 1, 1, 1, RO],
  // hyperloglog
  ["pfadd", -2, 1, 1, 1, RW],
  ["pfcount", -2, 1, -1, 1, RO],
  ["pfmerge", -2, 1, -1, 1, RW],
  // geo
  ["geoadd", -5, 1, 1, 1, RW],
  ["geodist", -4, 1, 1, 1, RO],
  ["geohash", -2, 1, 1, 1, RO],
  ["geopos", -2, 1, 1, 1, RO],
  ["georadius_ro", -6, 1, 1, 1, RO],
  ["georadiusbymember_ro", -5, 1, 1, 1, RO],
  ["geosearch", -7, 1, 1, 1, RO],
  ["geosearchstore", -8, 1, 2, 1, RW],
  // bitmaps
  ["bitcount", -2, 1, 1, 1, RO],
  ["bitfield", -2, 1, 1, 1, RW],
  ["bitfield_ro", -2, 1, 1, 1, RO],
  ["bitop", -4, 2, -1, 1, RW],
  ["bitpos", -3, 1, 1, 1, RO],
  ["getbit", 3, 1, 1, 1, RO],
  ["setbit", 4, 1, 1, 1, RW],
  // streams
  ["xack", -4, 1, 1, 1, RW],
  ["xadd", -5, 1, 1, 1, RW],
  ["xautoclaim", -6, 1, 1, 1, RW],
  ["xclaim", -6, 1, 1, 1, RW],
  ["xdel", -3, 1, 1, 1, RW],
  ["xgroup", -2, 2, 2, 1, RW],
  ["xinfo", -2, 2, 2, 1, RO],
  ["xlen", 2, 1, 1, 1, RO],
  ["xpending", -3, 1, 1, 1, RO],
  ["xrange", -4, 1, 1, 1, RO],
  ["xrevrange", -4, 1, 1, 1, RO],
  ["xsetid", -3, 1, 1, 1, RW],
  ["xtrim", -4, 1, 1, 1, RW],
];

function _numkeys(
  name: string,
  arity: number,
  kind: CommandKind,
  numkeysIndex: number,
  readonly: boolean,
  range = 0,
): CommandSpec {
  return {
    name,
    arity,
    kind,
    firstKey: range,
    lastKey: range,
    keyStep: range > 0 ? 1 : 0,
    keysFrom: "numkeys",
    numkeysIndex,
    readonly,
  };
}

// Single-backend commands with keys beyond the plain range.
const _SINGLE_SPECIAL: readonly CommandSpec[] = [
  _numkeys("lmpop", -4, "single", 1, RW),
  _numkeys("sintercard", -3, "single", 1, RO),
  _numkeys("zdiff", -3, "single", 1, RO),
  _numkeys("zdiffstore", -4, "single", 2, RW, 1),
  _numkeys("zinter", -3, "single", 1, RO),
  _numkeys("zintercard", -3, "single", 1, RO),
  _numkeys("zinterstore", -4, "single", 2, RW, 1),
  _numkeys("zmpop", -4, "single", 1, RW),
  _numkeys("zunion", -3, "single", 1, RO),
  _numkeys("zunionstore", -4, "single", 2, RW, 1),
  {
    name: "sort",
    arity: -2,
    kind: "single",
    firstKey: 1,
    lastKey: 1,
    keyStep: 1,
    storeFrom: 2,
    readonly: RW,
    sortPatterns: true,
  },
  {
    name: "sort_ro",
    arity: -2,
    kind: "single",
    firstKey: 1,
    lastKey: 1,
    keyStep: 1,
    readonly: RO,
    sortPatterns: true,
  },
  {
    name: "georadius",
    arity: -6,
    kind: "single",
    firstKey: 1,
    lastKey: 1,
    keyStep: 1,
    storeFrom: 6,
    readonly: RW,
  },
  {
    name: "georadiusbymember",
    arity: -5,
    kind: "single",
    firstKey: 1,
    lastKey: 1,
    keyStep: 1,
    storeFrom: 5,
    readonly: RW,
  },
  {
    name: "xread",
    arity: -4,
    kind: "single",
    firstKey: 0,
    lastKey: 0,
    keyStep: 0,
    keysFrom: "streams",
    readonly: RO,
  },
  {
    name: "xreadgroup",
    arity: -7,
    kind: "single",
    firstKey: 0,
    lastKey: 0,
    keyStep: 0,
    keysFrom: "streams",
    readonly: RW,
  },
];

const _MULTI: readonly CommandSpec[] = [
  {
    name: "mget",
    arity: -2,
    kind: "multi",
    firstKey: 1,
    lastKey: -1,
    keyStep: 1,
    readonly: RO,
    split: "mget",
  },
  {
    name: "mset",
    arity: -3,
    kind: "multi",
    firstKey: 1,
    lastKey: -1,
    keyStep: 2,
    readonly: RW,
    split: "mset",
  },
  {
    name: "del",
    arity: -2,
    kind: "multi",
    firstKey: 1,
    lastKey: -1,
    keyStep: 1,
    readonly: RW,
    split: "sum",
  },
  {
    name: "unlink",
    arity: -2,
    kind: "multi",
    firstKey: 1,
    lastKey: -1,
    keyStep: 1,
    readonly: RW,
    split: "sum",
  },
  {
    name: "exists",
    arity: -2,
    kind: "multi",
    firstKey: 1,
    lastKey: -1,
    keyStep: 1,
    readonly: RO,
    split: "sum",
  },
  {
    name: "touch",
    arity: -2,
    kind: "multi",
    firstKey: 1,
    lastKey: -1,
    keyStep: 1,
    readonly: RO,
    split: "sum",
  },
];

const _EVAL: readonly CommandSpec[] = [
  _numkeys("eval", -3, "eval", 2, RW),
  _numkeys("eval_ro", -3, "eval", 2, RO),
  _numkeys("evalsha", -3, "eval", 2, RW),
  _numkeys("evalsha_ro", -3, "eval", 2, RO),
  _numkeys("fcall", -3, "eval", 2, RW),
  _numkeys("fcall_ro", -3, "eval", 2, RO),
];

const _LOCAL: readonly _Row[] = [
  ["echo", 2, 0, 0, 0, RW],
  ["ping", -1, 0, 0, 0, RW],
  ["quit", -1, 0, 0, 0, RW],
  ["select", 2, 0, 0, 0, RW],
];

const _TRANSACTION: readonly _Row[] = [
  ["discard", 1, 0, 0, 0, RW],
  ["exec", 1, 0, 0, 0, RW],
  ["multi", 1, 0, 0, 0, RW],
  ["unwatch", 1, 0, 0, 0, RW],
  ["watch", -2, 1, -1, 1, RW],
];

const _SERVER: readonly _Row[] = [
  ["command", -1, 0, 0, 0, RW],
  ["function", -2, 0, 0, 0, RW],
  // LOAD, EXISTS over every node, merged (resp_planner.ts): EVALSHA works on every shard.
  ["script", -2, 0, 0, 0, RW],
  // Over every node, merged (resp_planner.ts): the keyspace as one server's.
  ["dbsize", 1, 0, 0, 0, RO],
  ["randomkey", 1, 0, 0, 0, RO],
  ["scan", -2, 0, 0, 0, RO],
  // Harmless, answered by any one node.
  ["lastsave", 1, 0, 0, 0, RO],
  ["lolwut", -1, 0, 0, 0, RO],
  ["role", 1, 0, 0, 0, RO],
  ["time", 1, 0, 0, 0, RO],
];

const R_KEYSPACE = "commands over the whole keyspace are not supported";
const R_DATABASES = "multiple databases are not supported";
const R_SERVER = "server commands are not supported";
const R_REPLICATION = "replication commands are not supported";
const R_CLUSTER = "cluster commands are not supported";
const R_CONNECTION = "connection state commands are not supported";
/** AUTH, HELLO, INFO, SLOWLOG: Aster answers them, which it cannot inside a transaction. */
const R_OWN_ANSWER = "Aster answers it itself, outside transactions only";

/** name, arity, firstKey, lastKey, keyStep, readonly, reason */
type _Refused = readonly [string, number, number, number, number, boolean, string];

const _UNSUPPORTED: readonly _Refused[] = [
  // whole keyspace and databases
  ["flushall", -1, 0, 0, 0, RW, R_KEYSPACE],
  ["flushdb", -1, 0, 0, 0, RW, R_KEYSPACE],
  ["keys", 2, 0, 0, 0, RO, R_KEYSPACE],
  ["move", 3, 1, 1, 1, RW, R_DATABASES],
  ["swapdb", 3, 0, 0, 0, RW, R_DATABASES],
  // server
  ["acl", -2, 0, 0, 0, RW, R_SERVER],
  ["bgrewriteaof", 1, 0, 0, 0, RW, R_SERVER],
  ["bgsave", -1, 0, 0, 0, RW, R_SERVER],
  ["config", -2, 0, 0, 0, RW, R_SERVER],
  ["debug", -2, 0, 0, 0, RW, R_SERVER],
  ["latency", -2, 0, 0, 0, RW, R_SERVER],
  ["memory", -2, 0, 0, 0, RW, R_SERVER],
  ["module", -2, 0, 0, 0, RW, R_SERVER],
  ["monitor", 1, 0, 0, 0, RW, R_SERVER],
  ["pfdebug", 3, 2, 2, 1, RW, R_SERVER],
  ["pfselftest", 1, 0, 0, 0, RW, R_SERVER],
  ["save", 1, 0, 0, 0, RW, R_SERVER],
  ["shutdown", -1, 0, 0, 0, RW, R_SERVER],
  ["slowlog", -2, 0, 0, 0, RW, R_OWN_ANSWER],
  // replication
  ["failover", -1, 0, 0, 0, RW, R_REPLICATION],
  ["psync", -3, 0, 0, 0, RW, R_REPLICATION],
  ["replconf", -1, 0, 0, 0, RW, R_REPLICATION],
  ["replicaof", 3, 0, 0, 0, RW, R_REPLICATION],
  ["slaveof", 3, 0, 0, 0, RW, R_REPLICATION],
  ["sync", 1, 0, 0, 0, RW, R_REPLICATION],
  ["wait", 3, 0, 0, 0, RW, R_REPLICATION],
  // cluster (CLUSTER becomes local in cluster mode)
  ["asking", 1, 0, 0, 0, RW, R_CLUSTER],
  ["cluster", -2, 0, 0, 0, RW, R_CLUSTER],
  ["migrate", -6, 3, 3, 1, RW, R_CLUSTER],
  ["readonly", 1, 0, 0, 0, RW, R_CLUSTER],
  ["readwrite", 1, 0, 0, 0, RW, R_CLUSTER],
  ["restore-asking", -4, 1, 1, 1, RW, R_CLUSTER],
  ["sentinel", -2, 0, 0, 0, RW, "sentinel commands are not supported"],
  // connection state
  ["client", -2, 0, 0, 0, RW, R_CONNECTION],
  ["reset", 1, 0, 0, 0, RW, R_CONNECTION],
  // answered by Aster (src/proxy/redis_auth.ts, redis_admin.ts); refused inside MULTI, as
  // SLOWLOG above
  ["auth", -2, 0, 0, 0, RW, R_OWN_ANSWER],
  ["hello", -1, 0, 0, 0, RW, R_OWN_ANSWER],
  ["info", -1, 0, 0, 0, RW, R_OWN_ANSWER],
];

/**
 * Pub/Sub. PUBLISH routes by its channel as by a key: in `redis` mode the channel lives on
 * the node the ring picks for it, where Aster subscribes it; SPUBLISH to the slot's master.
 */
const _PUBLISH: readonly _Row[] = [
  ["publish", 3, 1, 1, 1, RW],
  ["spublish", 3, 1, 1, 1, RW],
];
const _PUBSUB: readonly _Row[] = [
  ["psubscribe", -2, 0, 0, 0, RW],
  ["pubsub", -2, 0, 0, 0, RW],
  ["punsubscribe", -1, 0, 0, 0, RW],
  ["ssubscribe", -2, 1, -1, 1, RW],
  ["subscribe", -2, 0, 0, 0, RW],
  ["sunsubscribe", -1, 1, -1, 1, RW],
  ["unsubscribe", -1, 0, 0, 0, RW],
];

/** Blocking list and sorted set commands: served on a dedicated connection (issue 19). */
const _BLOCKING: readonly CommandSpec[] = [
  ..._rows("single", [
    ["blmove", 6, 1, 2, 1, RW],
    ["blpop", -3, 1, -2, 1, RW],
    ["brpop", -3, 1, -2, 1, RW],
    ["brpoplpush", 4, 1, 2, 1, RW],
    ["bzpopmax", -3, 1, -2, 1, RW],
    ["bzpopmin", -3, 1, -2, 1, RW],
  ]),
  _numkeys("blmpop", -5, "single", 2, RW),
  _numkeys("bzmpop", -5, "single", 2, RW),
];

/** Every known command (for COMMAND COUNT and docs): Redis 7.0's commands plus SENTINEL. */
export const COMMANDS: readonly CommandSpec[] = Object.freeze(
  [
    ..._rows("single", _SINGLE),
    ..._SINGLE_SPECIAL,
    ..._MULTI,
    ..._EVAL,
    ..._rows("local", _LOCAL),
    ..._rows("server", _SERVER),
    ..._rows("transaction", _TRANSACTION),
    ..._rows("single", _PUBLISH),
    ..._rows("pubsub", _PUBSUB),
    ..._UNSUPPORTED.map(([name, arity, firstKey, lastKey, keyStep, readonly, reason]) => ({
      name,
      arity,
      kind: "unsupported" as const,
      firstKey,
      lastKey,
      keyStep,
      readonly,
      reason,
    })),
    ..._BLOCKING,
  ].map((spec) => Object.freeze(spec)),
);

// ---------------------------------------------------------------------------
// Lookup: open addressing over an FNV-1a hash of the lowercased name bytes.

/** Byte -> lowercase ASCII byte. */
const _LOWER = new Uint8Array(256);
for (let b = 0; b < 256; b++) _LOWER[b] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;

const _SLOT_BITS = 10;
const _SLOT_MASK = (1 << _SLOT_BITS) - 1;
/** Slot -> index into COMMANDS, -1 = empty. */
const _SLOTS = new Int16Array(1 << _SLOT_BITS).fill(-1);
/** Lowercase name bytes, parallel to COMMANDS. */
const _NAMES: Uint8Array[] = [];
let _maxNameLength = 0;

function _ascii(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function _slotOf(hash: number): number {
  return (hash ^ (hash >>> 15)) & _SLOT_MASK;
}

for (let index = 0; index < COMMANDS.length; index++) {
  const name = _ascii(COMMANDS[index].name);
  _NAMES.push(name);
  if (name.length > _maxNameLength) _maxNameLength = name.length;
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name[i], 0x01000193);
  let slot = _slotOf(hash);
  while (_SLOTS[slot] !== -1) {
    if (COMMANDS[_SLOTS[slot]].name === COMMANDS[index].name) {
      throw new Error(`duplicate command ${COMMANDS[index].name}`);
    }
    slot = (slot + 1) & _SLOT_MASK;
  }
  _SLOTS[slot] = index;
}

/** Looks a command up by its name bytes, case-insensitively, without allocating a string on the common path. */
export function lookupCommand(name: Uint8Array): CommandSpec | undefined {
  const length = name.length;
  if (length === 0 || length > _maxNameLength) return undefined;
  const lower = _LOWER;
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ lower[name[i]], 0x01000193);
  let slot = _slotOf(hash);
  for (;;) {
    const index = _SLOTS[slot];
    if (index === -1) return undefined;
    const candidate = _NAMES[index];
    if (candidate.length === length) {
      let i = 0;
      while (i < length && lower[name[i]] === candidate[i]) i++;
      if (i === length) return COMMANDS[index];
    }
    slot = (slot + 1) & _SLOT_MASK;
  }
}

// ---------------------------------------------------------------------------
// Key extraction.

const _KW_ALPHA = _ascii("alpha");
const _KW_ASC = _ascii("asc");
const _KW_BLOCK = _ascii("block");
const _KW_BY = _ascii("by");
const _KW_COUNT = _ascii("count");
const _KW_DESC = _ascii("desc");
const _KW_GET = _ascii("get");
const _KW_GROUP = _ascii("group");
const _KW_LIMIT = _ascii("limit");
const _KW_STORE = _ascii("store");
const _KW_STOREDIST = _ascii("storedist");
const _KW_STREAMS = _ascii("streams");

/** Case-insensitive equality of `arg` with a lowercase, letters-only keyword. */
function _isKeyword(arg: Uint8Array, keyword: Uint8Array): boolean {
  const length = keyword.length;
  if (arg.length !== length) return false;
  // `| 0x20` maps exactly the ASCII letters onto lowercase letters, so no other byte can match.
  for (let i = 0; i < length; i++) if ((arg[i] | 0x20) !== keyword[i]) return false;
  return true;
}

const _INT64_MAX_DIGITS = _ascii("9223372036854775807");
const _INT64_MIN_DIGITS = _ascii("9223372036854775808");

/**
 * Parses a signed 64-bit decimal integer with Redis's strictness (no sign on
 * positives, no leading zeros, no spaces); NaN when invalid or out of range.
 * Values past 2^53 lose precision, which no caller here can notice.
 */
function _parseInteger(bytes: Uint8Array): number {
  const length = bytes.length;
  if (length === 1 && bytes[0] === 0x30) return 0; // "0"
  const negative = length > 0 && bytes[0] === 0x2d; // "-"
  const start = negative ? 1 : 0;
  const digits = length - start;
  if (digits < 1 || digits > 19) return NaN;
  if (bytes[start] < 0x31 || bytes[start] > 0x39) return NaN; // first digit 1-9
  let value = 0;
  for (let i = start; i < length; i++) {
    const d = bytes[i] - 0x30;
    if (d < 0 || d > 9) return NaN;
    value = value * 10 + d;
  }
  if (digits === 19) {
    const limit = negative ? _INT64_MIN_DIGITS : _INT64_MAX_DIGITS;
    for (let i = 0; i < 19; i++) {
      const d = bytes[start + i];
      if (d !== limit[i]) {
        if (d > limit[i]) return NaN;
        break;
      }
    }
  }
  return negative ? -value : value;
}

/** Set by {@link _streamsIndex}: whether a BLOCK option came before STREAMS. */
let _sawBlock = false;

/** Argv index of the STREAMS option of XREAD/XREADGROUP, or -1; sets `_sawBlock`. */
function _streamsIndex(argv: readonly Uint8Array[]): number {
  _sawBlock = false;
  const argc = argv.length;
  let i = 1;
  while (i < argc) {
    const arg = argv[i];
    if (_isKeyword(arg, _KW_STREAMS)) return i;
    if (_isKeyword(arg, _KW_BLOCK)) {
      _sawBlock = true;
      i += 2;
    } else if (_isKeyword(arg, _KW_COUNT)) i += 2;
    else if (_isKeyword(arg, _KW_GROUP)) i += 3;
    else i += 1; // NOACK, or junk the backend will refuse
  }
  return -1;
}

/** Appends the keys named by STORE/STOREDIST options at or after `from` (SORT, GEORADIUS*). */
function _storeKeys(argv: readonly Uint8Array[], from: number, keys: number[]): void {
  const argc = argv.length;
  for (let i = from; i < argc; i++) {
    const arg = argv[i];
    if (_isKeyword(arg, _KW_STORE) || _isKeyword(arg, _KW_STOREDIST)) {
      if (i + 1 < argc) keys.push(++i);
    } else if (_isKeyword(arg, _KW_LIMIT)) i += 2; // SORT's LIMIT offset count
    else if (_isKeyword(arg, _KW_GET) || _isKeyword(arg, _KW_BY)) i += 1; // SORT's patterns
  }
}

/**
 * The argv indexes of the BY and GET patterns of a SORT / SORT_RO request that make the
 * backend read other keys, read as redis-server reads the options: a BY pattern with a
 * "*" (one without sorts nothing) and a GET pattern other than "#". The walk stops where
 * redis-server stops with an error (an unknown word, a bad LIMIT, STORE in SORT_RO), so
 * the backend still reports that error first.
 */
export function sortPatternIndexes(spec: CommandSpec, argv: readonly Uint8Array[]): number[] {
  const out: number[] = [];
  const argc = argv.length;
  for (let j = 2; j < argc; j++) {
    const arg = argv[j];
    const left = argc - j - 1;
    if (_isKeyword(arg, _KW_ASC) || _isKeyword(arg, _KW_DESC) || _isKeyword(arg, _KW_ALPHA)) {
      continue;
    }
    if (_isKeyword(arg, _KW_LIMIT) && left >= 2) {
      if (Number.isNaN(_parseInteger(argv[j + 1])) || Number.isNaN(_parseInteger(argv[j + 2]))) {
        break;
      }
      j += 2;
    } else if (!spec.readonly && _isKeyword(arg, _KW_STORE) && left >= 1) j++;
    else if (_isKeyword(arg, _KW_BY) && left >= 1) {
      if (argv[++j].includes(0x2a /* "*" */)) out.push(j);
    } else if (_isKeyword(arg, _KW_GET) && left >= 1) {
      const pattern = argv[++j];
      if (!(pattern.length === 1 && pattern[0] === 0x23 /* "#" */)) out.push(j);
    } else break;
  }
  return out;
}

/**
 * The argv indexes of the keys of a request (argv[0] is the name), in argv
 * order, or null when the arguments are malformed for key extraction: a bad
 * numkeys count, an odd number of XREAD stream arguments, a missing STREAMS
 * option, or MSET without a value for its last key (routingKeyIndexes() says
 * what then).
 *
 * Check the arity first; this never returns an index outside `argv`. The list
 * may be empty: EVAL with numkeys 0, OBJECT HELP, XINFO HELP, keyless commands.
 */
export function commandKeyIndexes(
  spec: CommandSpec,
  argv: readonly Uint8Array[],
): readonly number[] | null {
  const argc = argv.length;
  const first = spec.firstKey;
  // GET, SET, INCR...: one shared list, not an array per request (it was the largest
  // allocation per GET at pipeline 16; bench/README.md, round 5).
  if (
    first === 1 && spec.lastKey === 1 && argc > 1 && spec.keysFrom === undefined &&
    spec.storeFrom === undefined
  ) return _FIRST_ARG_ONLY;
  const keys: number[] = [];
  if (first > 0) {
    const lastKey = spec.lastKey;
    const last = lastKey < 0 ? argc + lastKey : lastKey;
    const step = spec.keyStep;
    if (step > 1 && lastKey < 0 && last >= first && (last - first + 1) % step !== 0) return null;
    for (let i = first; i <= last && i < argc; i += step) keys.push(i);
  }
  const from = spec.keysFrom;
  if (from === undefined) {
    if (spec.storeFrom !== undefined) _storeKeys(argv, spec.storeFrom, keys);
    return keys;
  }
  if (from === "numkeys") {
    const at = spec.numkeysIndex ?? 0;
    if (at < 1 || at >= argc) return null;
    const count = _parseInteger(argv[at]);
    const min = spec.kind === "eval" ? 0 : 1;
    if (Number.isNaN(count) || count < min || count > argc - at - 1) return null;
    for (let i = at + 1; i <= at + count; i++) keys.push(i);
    return keys;
  }
  const streams = _streamsIndex(argv);
  if (streams < 0 || streams === argc - 1) return null;
  const rest = argc - streams - 1;
  if (rest % 2 !== 0) return null;
  for (let i = streams + 1; i <= streams + rest / 2; i++) keys.push(i);
  return keys;
}

/** The key list of a request whose only key is argv[1]. */
const _FIRST_ARG_ONLY: readonly number[] = Object.freeze([1]);

const _NO_KEYS: readonly number[] = Object.freeze([]);

/**
 * The keys to route a request by: commandKeyIndexes(), or none when its key arguments are
 * malformed (a bad numkeys, unbalanced STREAMS). Redis checks those when it runs the
 * command, after the arity: it answers with its own error (for FCALL, "Function not found"
 * first), touches no key, and inside MULTI queues the command and fails it in EXEC's reply.
 * So such a request goes to a backend like a keyless one.
 */
export function routingKeyIndexes(
  spec: CommandSpec,
  argv: readonly Uint8Array[],
): readonly number[] {
  return commandKeyIndexes(spec, argv) ?? _NO_KEYS;
}

/** Blocking commands whatever their arguments. */
const _ALWAYS_BLOCKING = new Set(
  ["blmove", "blmpop", "blpop", "brpop", "brpoplpush", "bzmpop", "bzpopmax", "bzpopmin"].map(
    (name) => COMMANDS.find((spec) => spec.name === name),
  ),
);

/**
 * Whether the request would block the backend connection: the blocking list
 * and sorted set commands always, XREAD/XREADGROUP when given a BLOCK option
 * (a stream key named "block" does not count). Such requests go on a dedicated connection.
 */
export function isBlockingRequest(spec: CommandSpec, argv: readonly Uint8Array[]): boolean {
  if (spec.keysFrom === "streams") {
    _streamsIndex(argv);
    return _sawBlock;
  }
  return _ALWAYS_BLOCKING.has(spec);
}

const _latin1 = new TextDecoder("latin1");

/** A timeout argument as Redis reads it, in ms: Infinity for 0 (forever), -1 when invalid. */
function _timeoutMs(arg: Uint8Array, unitMs: number): number {
  // Whole numbers, nearly every timeout, need no text (a decode per BLPOP showed in profiles).
  const whole = _parseInteger(arg);
  if (!Number.isNaN(whole)) return whole < 0 ? -1 : whole === 0 ? Infinity : whole * unitMs;
  if (unitMs === 1) return -1;
  // Seconds as a long double, then whole ms truncated toward 0, as Redis's
  // getTimeoutFromObjectOrReply: 0.0009 and -0.0009 are 0, which blocks for ever.
  const ms = Math.trunc(_cLongDouble(_latin1.decode(arg)) * unitMs);
  if (!Number.isFinite(ms) || ms < 0) return -1;
  return ms === 0 ? Infinity : ms;
}

/**
 * A number as C's strtold reads a whole argument (Redis's string2ld): decimal or hex
 * (`0x1p3`, `0x1.8`) with an optional sign, `inf`/`infinity`; NaN for anything else (a
 * space before or after, `nan`, trailing bytes).
 */
function _cLongDouble(text: string): number {
  const decimal = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  if (decimal.test(text)) return Number(text);
  const hex = /^([+-]?)0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?\d+))?$/i.exec(text);
  if (hex !== null && (hex[2] !== "" || (hex[3] ?? "") !== "")) {
    const digits = hex[2] + (hex[3] ?? "");
    const value = parseInt(digits, 16) * 2 ** (Number(hex[4] ?? 0) - 4 * (hex[3] ?? "").length);
    return hex[1] === "-" ? -value : value;
  }
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  return NaN;
}

/**
 * How long a blocking request (see isBlockingRequest) may block by its own timeout, in ms:
 * its timeout argument (seconds, a float; XREAD/XREADGROUP's BLOCK in ms), Infinity for 0
 * (it waits forever), 0 when the argument is invalid (the backend refuses it at once).
 */
export function blockingTimeoutMs(spec: CommandSpec, argv: readonly Uint8Array[]): number {
  const argc = argv.length;
  let timeout = -1;
  if (spec.keysFrom === "streams") {
    // The last BLOCK before STREAMS counts, as Redis reads the options in order.
    for (let i = 1; i + 1 < argc && !_isKeyword(argv[i], _KW_STREAMS); i++) {
      if (_isKeyword(argv[i], _KW_BLOCK)) timeout = _timeoutMs(argv[++i], 1);
      else if (_isKeyword(argv[i], _KW_COUNT)) i++;
      else if (_isKeyword(argv[i], _KW_GROUP)) i += 2;
    }
  } else if (spec.keysFrom === "numkeys") timeout = _timeoutMs(argv[1], 1000);
  else timeout = _timeoutMs(argv[argc - 1], 1000);
  return timeout < 0 ? 0 : timeout;
}
