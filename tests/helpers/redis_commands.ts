/**
 * A seeded random Redis command stream for differential tests, and the loop that sends it
 * to a plain redis-server and to Aster and compares every reply.
 *
 * Every multi-key command the stream makes, other than the ones Aster splits (MGET, MSET,
 * DEL, UNLINK, EXISTS, TOUCH), takes its keys from one {hash tag} group, so all its keys
 * are on one server in the `redis` mode (with `hash_tag = "{}"`) and in one slot in the
 * `redis_cluster` mode: the same stream serves both.
 */

import assert from "node:assert/strict";
import type { Random } from "./random.ts";
import { type RespClient, RespErrorReply, type RespValue, text } from "./resp_client.ts";

/** How a reply is made comparable: as is, sorted (sets), sorted pairs (HGETALL), TTL class. */
export type Norm = "none" | "sort" | "pairs" | "ttl";

/** One generated command and how to compare its reply. */
export interface Cmd {
  args: string[];
  norm: Norm;
}

// ---------------------------------------------------------------------------
// Keyspace: ~55 keys, each family with its own keys, hash-tagged groups for the
// multi-key commands that need one server (or one cluster slot).

// twemproxy's fnv1a_64 keeps 32 bits, so keys that differ only in their last bytes hash
// close together and usually share a node: keys here differ early, so they spread.
const ALICE = ["name:{alice}", "mail:{alice}", "city:{alice}"];
const BOB = ["name:{bob}", "mail:{bob}", "city:{bob}"];
export const STRINGS = [..._numbered("str", 10), ...ALICE, ...BOB];
export const NUMBERS = _numbered("num", 5);
const HASHES = _numbered("hash", 5);
const LIST_TAG = ["queue:{lists}", "done:{lists}"];
const LISTS = [..._numbered("list", 4), ...LIST_TAG];
const SET_TAG = ["red:{sets}", "green:{sets}", "blue:{sets}"];
const SETS = [..._numbered("set", 4), ...SET_TAG];
const ZSET_TAG = ["day:{ranks}", "week:{ranks}"];
const ZSETS = [..._numbered("zset", 4), ...ZSET_TAG];
const HLLS = _numbered("hll", 3);
const BITMAPS = _numbered("bits", 3);
const STREAMS = _numbered("stream", 3);
export const ALL_KEYS = [
  ...STRINGS,
  ...NUMBERS,
  ...HASHES,
  ...LISTS,
  ...SETS,
  ...ZSETS,
  ...HLLS,
  ...BITMAPS,
  ...STREAMS,
];
/** Groups whose keys share a hash tag (so one server, one slot): RENAME, MSETNX, SINTER... */
export const TAG_GROUPS = [ALICE, BOB, LIST_TAG, SET_TAG, ZSET_TAG];

const FIELDS = Array.from({ length: 8 }, (_, i) => `f${i}`);
const MEMBERS = Array.from({ length: 10 }, (_, i) => `m${i}`);

/** `count` keys such as "0:str:key": the varying part first, so they spread over nodes. */
function _numbered(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${i}:${prefix}:key`);
}

// ---------------------------------------------------------------------------
// The generator.

/** Makes a reproducible random command stream: the same `rng` seed, the same commands. */
export class RedisCommandGenerator {
  readonly #rng: Random;
  /** Stream entry IDs only grow, whichever stream they go to. */
  #streamId = 1;

  constructor(rng: Random) {
    this.#rng = rng;
  }

  /** A key of `family`, or (5%) any key at all, for WRONGTYPE errors. */
  #key(family: readonly string[]): string {
    return this.#rng.chance(0.05) ? this.#rng.pick(ALL_KEYS) : this.#rng.pick(family);
  }

  #keys(family: readonly string[], min: number, max: number): string[] {
    const count = this.#rng.range(min, max);
    return Array.from({ length: count }, () => this.#key(family));
  }

  #value(): string {
    const rng = this.#rng;
    switch (rng.int(6)) {
      case 0:
        return `${rng.range(-1000, 1000)}`;
      case 1:
        return "";
      case 2:
        return `v\r\n${rng.int(100)} with spaces`;
      case 3:
        return `ü-${rng.int(1000)}-✓`;
      default:
        return `val${rng.int(10_000)}`;
    }
  }

  #int(min: number, max: number): string {
    return `${this.#rng.range(min, max)}`;
  }

  #score(): string {
    return this.#rng.chance(0.3) ? `${this.#rng.range(-20, 20)}.5` : this.#int(-20, 20);
  }

  #expireSeconds(): string {
    return this.#int(1000, 1_000_000);
  }

  /** The next command. */
  next(): Cmd {
    const rng = this.#rng;
    const roll = rng.int(100);
    if (roll < 22) return this.#string();
    if (roll < 38) return this.#keyspace();
    if (roll < 50) return this.#hash();
    if (roll < 62) return this.#list();
    if (roll < 73) return this.#set();
    if (roll < 84) return this.#zset();
    if (roll < 88) return this.#hll();
    if (roll < 93) return this.#bitmap();
    if (roll < 98) return this.#stream();
    return this.#odd();
  }

  #string(): Cmd {
    const rng = this.#rng;
    const key = this.#key(rng.chance(0.7) ? STRINGS : NUMBERS);
    const num = this.#key(rng.chance(0.8) ? NUMBERS : STRINGS);
    switch (rng.int(18)) {
      case 0:
      case 1: {
        const args = ["SET", key, this.#value()];
        if (rng.chance(0.3)) args.push(rng.pick(["EX", "PX"]), this.#expireSeconds());
        if (rng.chance(0.3)) args.push(rng.pick(["NX", "XX"]));
        if (rng.chance(0.3)) args.push("GET");
        return _cmd(args);
      }
      case 2:
      case 3:
        return _cmd(["GET", key]);
      case 4:
        return _cmd(["GETSET", key, this.#value()]);
      case 5:
        return _cmd(["APPEND", key, this.#value()]);
      case 6:
        return _cmd(["STRLEN", key]);
      case 7:
        return _cmd([rng.pick(["INCR", "DECR"]), num]);
      case 8:
        return _cmd([rng.pick(["INCRBY", "DECRBY"]), num, this.#int(-100, 100)]);
      case 9:
        return _cmd(["INCRBYFLOAT", num, `${rng.range(-50, 50)}.${rng.int(100)}`]);
      case 10:
        return _cmd(["SETRANGE", key, this.#int(0, 20), this.#value()]);
      case 11:
        return _cmd(["GETRANGE", key, this.#int(-10, 20), this.#int(-10, 20)]);
      case 12:
      case 13: {
        const args = ["MSET"];
        for (let i = rng.range(1, 6); i > 0; i--) {
          args.push(this.#key([...STRINGS, ...NUMBERS]), this.#value());
        }
        return _cmd(args);
      }
      case 14:
      case 15:
        return _cmd(["MGET", ...this.#keys([...STRINGS, ...NUMBERS], 1, 8)]);
      case 16: {
        const group = rng.pick([ALICE, BOB]);
        const args = ["MSETNX"];
        for (let i = rng.range(1, 3); i > 0; i--) args.push(rng.pick(group), this.#value());
        return _cmd(args);
      }
      default:
        return rng.chance(0.5) ? _cmd(["GETDEL", key]) : _cmd(["SETNX", key, this.#value()]);
    }
  }

  #keyspace(): Cmd {
    const rng = this.#rng;
    const key = rng.pick(ALL_KEYS);
    switch (rng.int(12)) {
      case 0:
        return _cmd([rng.pick(["DEL", "UNLINK"]), ...this.#keys(ALL_KEYS, 1, 3)]);
      case 1:
      case 2:
        return _cmd(["EXISTS", ...this.#keys(ALL_KEYS, 1, 8)]);
      case 3:
        return _cmd(["TOUCH", ...this.#keys(ALL_KEYS, 1, 8)]);
      case 4: {
        const args = ["EXPIRE", key, this.#expireSeconds()];
        if (rng.chance(0.3)) args.push(rng.pick(["NX", "XX"]));
        return _cmd(args);
      }
      case 5:
        return { args: [rng.pick(["TTL", "PTTL"]), key], norm: "ttl" };
      case 6:
      case 7:
        return _cmd(["TYPE", key]);
      case 8:
        return _cmd(["PERSIST", key]);
      case 9:
      case 10: {
        const group = rng.pick(TAG_GROUPS);
        return _cmd([rng.pick(["RENAME", "RENAMENX"]), rng.pick(group), rng.pick(group)]);
      }
      default:
        return rng.chance(0.5)
          ? _cmd(["GETEX", this.#key(STRINGS), "EX", this.#expireSeconds()])
          : _cmd(["GETEX", this.#key(STRINGS), "PERSIST"]);
    }
  }

  #hash(): Cmd {
    const rng = this.#rng;
    const key = this.#key(HASHES);
    const field = rng.pick(FIELDS);
    switch (rng.int(14)) {
      case 0:
      case 1: {
        const args = ["HSET", key];
        for (let i = rng.range(1, 4); i > 0; i--) args.push(rng.pick(FIELDS), this.#value());
        return _cmd(args);
      }
      case 2:
        return _cmd(["HGET", key, field]);
      case 3:
        return _cmd([
          "HDEL",
          key,
          ...Array.from({ length: rng.range(1, 3) }, () => rng.pick(FIELDS)),
        ]);
      case 4:
        return _cmd(["HINCRBY", key, field, this.#int(-10, 10)]);
      case 5:
        return _cmd(["HINCRBYFLOAT", key, field, `${rng.range(-5, 5)}.25`]);
      case 6:
        return _cmd(["HLEN", key]);
      case 7:
        return { args: ["HGETALL", key], norm: "pairs" };
      case 8:
        return { args: ["HKEYS", key], norm: "sort" };
      case 9:
        return { args: ["HVALS", key], norm: "sort" };
      case 10:
        return _cmd(["HEXISTS", key, field]);
      case 11:
        return _cmd(["HMGET", key, field, rng.pick(FIELDS), rng.pick(FIELDS)]);
      case 12:
        return _cmd(["HSETNX", key, field, this.#value()]);
      default:
        return _cmd(["HSTRLEN", key, field]);
    }
  }

  #list(): Cmd {
    const rng = this.#rng;
    const key = this.#key(LISTS);
    switch (rng.int(16)) {
      case 0:
      case 1:
      case 2:
        return _cmd([
          rng.pick(["LPUSH", "RPUSH"]),
          key,
          ...Array.from({ length: rng.range(1, 4) }, () => rng.pick(MEMBERS)),
        ]);
      case 3:
        return rng.chance(0.5)
          ? _cmd([rng.pick(["LPOP", "RPOP"]), key])
          : _cmd([rng.pick(["LPOP", "RPOP"]), key, this.#int(0, 3)]);
      case 4:
      case 5:
        return _cmd(["LRANGE", key, this.#int(-5, 3), this.#int(-3, 10)]);
      case 6:
        return _cmd(["LINDEX", key, this.#int(-4, 4)]);
      case 7:
        return _cmd(["LLEN", key]);
      case 8:
        return _cmd(["LREM", key, this.#int(-2, 2), rng.pick(MEMBERS)]);
      case 9:
        return _cmd(["LSET", key, this.#int(-3, 3), rng.pick(MEMBERS)]);
      case 10:
        return _cmd([
          "LINSERT",
          key,
          rng.pick(["BEFORE", "AFTER"]),
          rng.pick(MEMBERS),
          rng.pick(MEMBERS),
        ]);
      case 11:
        return _cmd(["LTRIM", key, this.#int(0, 2), this.#int(5, 30)]);
      case 12:
        return _cmd(["LPOS", key, rng.pick(MEMBERS)]);
      case 13:
      case 14:
        return _cmd([
          "LMOVE",
          rng.pick(LIST_TAG),
          rng.pick(LIST_TAG),
          rng.pick(["LEFT", "RIGHT"]),
          rng.pick(["LEFT", "RIGHT"]),
        ]);
      default:
        return _cmd(["RPOPLPUSH", rng.pick(LIST_TAG), rng.pick(LIST_TAG)]);
    }
  }

  #set(): Cmd {
    const rng = this.#rng;
    const key = this.#key(SETS);
    const members = () => Array.from({ length: rng.range(1, 4) }, () => rng.pick(MEMBERS));
    const tagged = () => Array.from({ length: rng.range(1, 3) }, () => rng.pick(SET_TAG));
    switch (rng.int(13)) {
      case 0:
      case 1:
      case 2:
        return _cmd(["SADD", key, ...members()]);
      case 3:
        return _cmd(["SREM", key, ...members()]);
      case 4:
        return _cmd(["SISMEMBER", key, rng.pick(MEMBERS)]);
      case 5:
        return _cmd(["SMISMEMBER", key, ...members()]);
      case 6:
        return _cmd(["SCARD", key]);
      case 7:
        return { args: ["SMEMBERS", key], norm: "sort" };
      case 8:
        return { args: [rng.pick(["SINTER", "SUNION", "SDIFF"]), ...tagged()], norm: "sort" };
      case 9:
        return _cmd([
          rng.pick(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
          rng.pick(SET_TAG),
          ...tagged(),
        ]);
      case 10:
        return _cmd(["SMOVE", rng.pick(SET_TAG), rng.pick(SET_TAG), rng.pick(MEMBERS)]);
      case 11: {
        const keys = tagged();
        return _cmd(["SINTERCARD", `${keys.length}`, ...keys]);
      }
      default:
        return _cmd(["SADD", rng.pick(SET_TAG), ...members()]);
    }
  }

  #zset(): Cmd {
    const rng = this.#rng;
    const key = this.#key(ZSETS);
    switch (rng.int(16)) {
      case 0:
      case 1:
      case 2: {
        const args = ["ZADD", key];
        if (rng.chance(0.2)) args.push(rng.pick(["NX", "XX"]));
        if (rng.chance(0.2)) args.push("CH");
        for (let i = rng.range(1, 3); i > 0; i--) args.push(this.#score(), rng.pick(MEMBERS));
        return _cmd(args);
      }
      case 3:
        return _cmd(["ZINCRBY", key, this.#score(), rng.pick(MEMBERS)]);
      case 4:
        return _cmd(["ZSCORE", key, rng.pick(MEMBERS)]);
      case 5:
      case 6:
        return _cmd(["ZRANGE", key, this.#int(0, 2), this.#int(-1, 8), "WITHSCORES"]);
      case 7:
        return _cmd(["ZRANGEBYSCORE", key, this.#int(-20, 0), this.#int(0, 20)]);
      case 8:
        return _cmd(["ZREVRANGE", key, "0", "-1"]);
      case 9:
        return _cmd([rng.pick(["ZRANK", "ZREVRANK"]), key, rng.pick(MEMBERS)]);
      case 10:
        return _cmd(["ZREM", key, rng.pick(MEMBERS), rng.pick(MEMBERS)]);
      case 11:
        return _cmd(["ZCARD", key]);
      case 12:
        return _cmd(["ZCOUNT", key, this.#int(-20, 0), this.#int(0, 20)]);
      case 13:
        return _cmd([rng.pick(["ZPOPMIN", "ZPOPMAX"]), key, this.#int(1, 2)]);
      case 14:
        return _cmd(["ZMSCORE", key, rng.pick(MEMBERS), rng.pick(MEMBERS)]);
      default:
        return _cmd(["ZUNIONSTORE", ZSET_TAG[0], "2", ZSET_TAG[0], ZSET_TAG[1]]);
    }
  }

  #hll(): Cmd {
    const rng = this.#rng;
    const key = this.#key(HLLS);
    return rng.chance(0.6)
      ? _cmd(["PFADD", key, ...Array.from({ length: rng.range(1, 5) }, () => `e${rng.int(500)}`)])
      : _cmd(["PFCOUNT", key]);
  }

  #bitmap(): Cmd {
    const rng = this.#rng;
    const key = this.#key(BITMAPS);
    switch (rng.int(5)) {
      case 0:
      case 1:
        return _cmd(["SETBIT", key, this.#int(0, 200), this.#int(0, 1)]);
      case 2:
        return _cmd(["GETBIT", key, this.#int(0, 200)]);
      case 3:
        return rng.chance(0.5)
          ? _cmd(["BITCOUNT", key])
          : _cmd(["BITCOUNT", key, this.#int(0, 10), this.#int(-3, 20)]);
      default:
        return _cmd(["BITPOS", key, this.#int(0, 1)]);
    }
  }

  #stream(): Cmd {
    const rng = this.#rng;
    const key = this.#key(STREAMS);
    switch (rng.int(6)) {
      case 0:
      case 1:
      case 2:
        return _cmd(["XADD", key, `${this.#streamId++}-0`, rng.pick(FIELDS), this.#value()]);
      case 3:
        return _cmd(["XLEN", key]);
      case 4:
        return rng.chance(0.5)
          ? _cmd(["XRANGE", key, "-", "+"])
          : _cmd(["XREVRANGE", key, "+", "-", "COUNT", this.#int(1, 3)]);
      default:
        return _cmd(["XTRIM", key, "MAXLEN", this.#int(2, 6)]);
    }
  }

  /** Syntax and arity errors, answered by Redis or by Aster in Redis's words. */
  #odd(): Cmd {
    const rng = this.#rng;
    switch (rng.int(5)) {
      case 0:
        return _cmd(["GET", rng.pick(STRINGS), "extra"]);
      case 1:
        return _cmd(["SET", rng.pick(STRINGS), "v", "EX", "notanumber"]);
      case 2:
        return _cmd(["INCRBY", rng.pick(NUMBERS), "1.5"]);
      case 3:
        return _cmd(["ZADD", rng.pick(ZSETS), "nan?", "m0"]);
      default:
        return _cmd(["EXPIRE", rng.pick(STRINGS), "10", "BOGUS"]);
    }
  }
}

function _cmd(args: string[]): Cmd {
  return { args, norm: "none" };
}

// ---------------------------------------------------------------------------
// Comparison.

const latin1 = new TextDecoder("latin1");

function _sortKey(value: RespValue): string {
  return value instanceof Uint8Array ? latin1.decode(value) : JSON.stringify(text(value));
}

/** Makes a reply comparable: unordered collections sorted, TTLs reduced to their class. */
export function normalizeReply(reply: RespValue, norm: Norm): RespValue {
  if (reply instanceof RespErrorReply || !Array.isArray(reply)) {
    if (norm === "ttl" && typeof reply === "number") return reply >= 0 ? "ttl>=0" : reply;
    return reply;
  }
  if (norm === "sort") return [...reply].sort((a, b) => _compare(_sortKey(a), _sortKey(b)));
  if (norm === "pairs") {
    const pairs: RespValue[][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
    pairs.sort((a, b) => _compare(_sortKey(a[0]), _sortKey(b[0])));
    return pairs.flat();
  }
  return reply;
}

function _compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A reply as readable text, for failure messages. */
export function showReply(value: RespValue): string {
  return Deno.inspect(text(value), { depth: 4, colors: false });
}

/** Commands that read a whole value of `type` at `key`. */
export function readsFor(type: string, key: string): Cmd[] {
  switch (type) {
    case "string":
      return [_cmd(["GET", key])];
    case "hash":
      return [{ args: ["HGETALL", key], norm: "pairs" }];
    case "list":
      return [_cmd(["LRANGE", key, "0", "-1"])];
    case "set":
      return [{ args: ["SMEMBERS", key], norm: "sort" }];
    case "zset":
      return [_cmd(["ZRANGE", key, "0", "-1", "WITHSCORES"])];
    case "stream":
      return [_cmd(["XRANGE", key, "-", "+"])];
    default:
      return [_cmd(["TYPE", key]), { args: ["TTL", key], norm: "ttl" }];
  }
}

// ---------------------------------------------------------------------------
// The differential loop.

/** What a compared stream held, to check its coverage. */
export interface StreamStats {
  /** Commands sent, by name. */
  kinds: Map<string, number>;
  /** Error replies of the reference server, by code (`ERR`, `WRONGTYPE`...). */
  errors: Map<string, number>;
}

/** Options for `compareCommandStream`. */
export interface CompareStreamOptions {
  /** Drives both the commands and the batch sizes. */
  rng: Random;
  /** Commands to send in all. */
  commands: number;
  /** Largest pipelined batch; each batch has a random size in 1..maxBatch. */
  maxBatch: number;
  /** Bound on the whole stream, ms, so a stalled proxy fails the test instead of hanging it. */
  deadlineMs: number;
  /** Called on every generated command before it is sent (to check it fits the mode). */
  check?: (cmd: Cmd) => void;
}

/**
 * Sends a random command stream, in pipelined batches of random size, to `direct` (a plain
 * redis-server) and `proxied` (Aster) at once and asserts that every reply is the same,
 * errors included, text and all.
 */
export async function compareCommandStream(
  clients: { direct: RespClient; proxied: RespClient },
  opts: CompareStreamOptions,
): Promise<StreamStats> {
  const { direct, proxied } = clients;
  const { rng, commands } = opts;
  const generator = new RedisCommandGenerator(rng);
  const deadline = Date.now() + opts.deadlineMs;
  const kinds = new Map<string, number>();
  const errors = new Map<string, number>();
  let sent = 0;
  let batches = 0;
  while (sent < commands) {
    assert.ok(Date.now() < deadline, `stream not done after ${opts.deadlineMs} ms`);
    const size = Math.min(rng.range(1, opts.maxBatch), commands - sent);
    const batch = Array.from({ length: size }, () => generator.next());
    if (opts.check) batch.forEach(opts.check);
    const argv = batch.map((cmd) => cmd.args);
    const [expected, actual] = await Promise.all([
      direct.pipeline(argv),
      proxied.pipeline(argv),
    ]);
    for (let i = 0; i < batch.length; i++) {
      const cmd = batch[i];
      const name = cmd.args[0];
      kinds.set(name, (kinds.get(name) ?? 0) + 1);
      const want = normalizeReply(expected[i], cmd.norm);
      if (want instanceof RespErrorReply) {
        const code = want.message.split(" ")[0];
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
      const got = normalizeReply(actual[i], cmd.norm);
      assert.deepStrictEqual(
        got,
        want,
        `command #${sent + i} (batch ${batches}, ${i + 1} of ${size}): ` +
          `${JSON.stringify(cmd.args)}\n  redis: ${showReply(want)}\n  aster: ${showReply(got)}`,
      );
    }
    sent += size;
    batches++;
  }
  return { kinds, errors };
}

/** Asserts that every key of the stream holds the same data on both sides. */
export async function compareAllKeys(
  clients: { direct: RespClient; proxied: RespClient },
): Promise<void> {
  const { direct, proxied } = clients;
  for (const key of ALL_KEYS) {
    const reads = readsFor(text(await direct.command("TYPE", key)) as string, key);
    for (const cmd of reads) {
      const want = normalizeReply(await direct.command(...cmd.args), cmd.norm);
      const got = normalizeReply(await proxied.command(...cmd.args), cmd.norm);
      assert.deepStrictEqual(got, want, `final ${JSON.stringify(cmd.args)}`);
    }
  }
}

/** Asserts that the stream covered the split and tagged commands and made enough errors. */
export function assertStreamCoverage(stats: StreamStats): void {
  const { kinds, errors } = stats;
  for (const name of ["MSET", "MGET", "MSETNX", "DEL", "EXISTS", "TOUCH", "RENAME", "XADD"]) {
    assert.ok((kinds.get(name) ?? 0) > 5, `only ${kinds.get(name) ?? 0} ${name} commands sent`);
  }
  if (Deno.env.get("ASTER_TEST_VERBOSE")) console.log({ kinds, errors });
  assert.ok((errors.get("WRONGTYPE") ?? 0) > 20, `WRONGTYPE errors: ${errors.get("WRONGTYPE")}`);
  assert.ok((errors.get("ERR") ?? 0) > 20, `ERR errors: ${errors.get("ERR")}`);
}
