/**
 * A seeded random stream of stateful Redis episodes for differential tests: transactions
 * (MULTI, queued commands, EXEC or DISCARD, nested MULTI, queue-time and run-time errors),
 * WATCH (with or without a conflicting write from a second client, UNWATCH), blocking
 * commands with short timeouts on empty or filled keys, and commands pipelined before and
 * after a blocking command or a transaction (their order is the client's). Every key is in the `{st}` hash-tag
 * group: one node in `redis` mode (`hash_tag = "{}"`), one slot in `redis_cluster` mode.
 * Each episode goes pipelined to a plain redis-server and to Aster; every reply must be the
 * same.
 */
import assert from "node:assert/strict";
import type { Random } from "./random.ts";
import { type RespClient, RespErrorReply, type RespValue } from "./resp_client.ts";
import { showReply } from "./redis_commands.ts";

const STRINGS = ["{st}s1", "{st}s2"];
const COUNTER = "{st}n";
const LISTS = ["{st}l1", "{st}l2"];
const ZSET = "{st}z";
const HASH = "{st}h";
const STREAM = "{st}x";
/** Every key the stream touches (for a final comparison of the data). */
export const STATEFUL_KEYS = [...STRINGS, COUNTER, ...LISTS, ZSET, HASH, STREAM];

/** One step of an episode: commands pipelined on the main client, or a write by the other. */
type Step = { main: string[][] } | { other: string[] };

/** What a compared stream held, to check its coverage. */
export interface StatefulStats {
  /** Episodes by kind. */
  episodes: Map<string, number>;
  /** EXEC answered nil (a WATCH broken by the other client's write). */
  brokenWatches: number;
  /** EXEC answered EXECABORT (a command refused at queue time). */
  aborted: number;
  /** Blocking commands that timed out (nil) and that got data. */
  blockedNil: number;
  blockedData: number;
}

class StatefulGenerator {
  readonly #rng: Random;
  #streamId = 1;

  constructor(rng: Random) {
    this.#rng = rng;
  }

  #value(): string {
    return `v${this.#rng.int(1000)}`;
  }

  /** A command to run alone or queue in a transaction (sometimes a failing one). */
  #command(): string[] {
    const rng = this.#rng;
    const list = rng.pick(LISTS);
    switch (rng.int(16)) {
      case 0:
        return ["SET", rng.pick(STRINGS), this.#value()];
      case 1:
        return ["GET", rng.pick(STRINGS)];
      case 2:
        return ["INCR", COUNTER];
      case 3:
        return ["INCRBY", COUNTER, `${rng.range(-5, 5)}`];
      case 4:
        return ["LPUSH", list, this.#value(), this.#value()];
      case 5:
        return ["RPOP", list];
      case 6:
        return ["LRANGE", list, "0", "-1"];
      case 7:
        return ["ZADD", ZSET, `${rng.range(1, 50)}`, `m${rng.int(8)}`];
      case 8:
        return ["ZPOPMIN", ZSET];
      case 9:
        return ["HSET", HASH, `f${rng.int(4)}`, this.#value()];
      case 10:
        return ["HGETALL", HASH];
      case 11:
        return ["XADD", STREAM, `${this.#streamId++}-0`, "f", this.#value()];
      case 12:
        return ["DEL", rng.pick(STRINGS), rng.pick(LISTS)];
      case 13:
        // WRONGTYPE at run time (inside EXEC's array) when the list exists.
        return ["INCR", list];
      case 14:
        return ["PING"];
      default:
        // A blocking command queued in MULTI runs without blocking.
        return ["BLPOP", list, "1"];
    }
  }

  /** A command refused at queue time: the transaction then ends in EXECABORT. */
  #refused(): string[] {
    return this.#rng.pick([["GET"], ["NOSUCHCOMMAND", "x"], ["SET", "{st}s1"]]);
  }

  #transaction(): string[][] {
    const rng = this.#rng;
    const out: string[][] = [["MULTI"]];
    const count = rng.range(0, 5);
    for (let i = 0; i < count; i++) {
      if (rng.chance(0.08)) out.push(this.#refused());
      else if (rng.chance(0.05)) out.push(["MULTI"]); // nested: an error, the MULTI goes on
      else out.push(this.#command());
    }
    out.push(rng.chance(0.8) ? ["EXEC"] : ["DISCARD"]);
    return out;
  }

  #blocking(): string[] {
    const rng = this.#rng;
    const [a, b] = rng.chance(0.5) ? LISTS : [LISTS[1], LISTS[0]];
    const timeout = rng.pick(["0.05", "0.1"]);
    switch (rng.int(9)) {
      case 0:
        return ["BLPOP", a, b, timeout];
      case 1:
        return ["BRPOP", a, timeout];
      case 2:
        return ["BLMOVE", a, b, rng.pick(["LEFT", "RIGHT"]), rng.pick(["LEFT", "RIGHT"]), timeout];
      case 3:
        return ["BRPOPLPUSH", a, b, timeout];
      case 4:
        return ["BLMPOP", timeout, "2", a, b, rng.pick(["LEFT", "RIGHT"]), "COUNT", "2"];
      case 5:
        return [rng.pick(["BZPOPMIN", "BZPOPMAX"]), ZSET, timeout];
      case 6:
        return ["BZMPOP", timeout, "1", ZSET, "MIN"];
      case 7:
        return ["XREAD", "COUNT", "2", "BLOCK", "50", "STREAMS", STREAM, "$"];
      default:
        return ["XREAD", "COUNT", "2", "BLOCK", "50", "STREAMS", STREAM, "0"];
    }
  }

  /** The next episode, and its kind. */
  next(): { kind: string; steps: Step[] } {
    const rng = this.#rng;
    switch (rng.int(6)) {
      case 0:
      case 1:
        return { kind: "transaction", steps: [{ main: this.#transaction() }] };
      case 5: {
        // Pipelined around a blocking command or a transaction: redis-server runs a client's
        // requests one after the other, whatever connection Aster sends each on.
        const middle = rng.chance(0.5) ? [this.#blocking()] : this.#transaction();
        const around = () => Array.from({ length: rng.range(1, 3) }, () => this.#command());
        return { kind: "ordering", steps: [{ main: [...around(), ...middle, ...around()] }] };
      }
      case 2: {
        const watched = [rng.pick([...STRINGS, COUNTER, ...LISTS])];
        if (rng.chance(0.4)) watched.push(rng.pick([HASH, ZSET]));
        const steps: Step[] = [{
          main: [["WATCH", ...watched], ...(rng.chance(0.3) ? [this.#command()] : [])],
        }];
        if (rng.chance(0.5)) {
          const key = rng.pick(watched);
          steps.push({
            other: key === HASH
              ? ["HSET", HASH, "other", this.#value()]
              : key === ZSET
              ? ["ZADD", ZSET, "99", "other"]
              : LISTS.includes(key)
              ? ["RPUSH", key, "other"]
              : ["SET", key, "other"],
          });
        }
        const tail = this.#transaction();
        if (rng.chance(0.15)) tail.unshift(["UNWATCH"]);
        steps.push({ main: tail });
        return { kind: "watch", steps };
      }
      case 3:
        return { kind: "blocking", steps: [{ main: [this.#blocking()] }] };
      default: {
        const count = rng.range(1, 4);
        return {
          kind: "plain",
          steps: [{ main: Array.from({ length: count }, () => this.#command()) }],
        };
      }
    }
  }
}

/** The four connections: the main client and the other writer, on each side. */
export interface StatefulClients {
  direct: RespClient;
  directOther: RespClient;
  proxied: RespClient;
  proxiedOther: RespClient;
}

/**
 * Sends `episodes` random episodes to both sides at once and asserts every reply is the
 * same; returns what the stream covered.
 */
export async function compareStatefulStream(
  clients: StatefulClients,
  opts: { rng: Random; episodes: number; deadlineMs: number },
): Promise<StatefulStats> {
  const generator = new StatefulGenerator(opts.rng);
  const deadline = Date.now() + opts.deadlineMs;
  const stats: StatefulStats = {
    episodes: new Map(),
    brokenWatches: 0,
    aborted: 0,
    blockedNil: 0,
    blockedData: 0,
  };
  for (let n = 0; n < opts.episodes; n++) {
    assert.ok(Date.now() < deadline, `stream not done after ${opts.deadlineMs} ms`);
    const { kind, steps } = generator.next();
    stats.episodes.set(kind, (stats.episodes.get(kind) ?? 0) + 1);
    for (const step of steps) {
      const sent = "main" in step ? step.main : [step.other];
      const [want, got] = "main" in step
        ? await Promise.all([
          clients.direct.pipeline(step.main),
          clients.proxied.pipeline(step.main),
        ])
        : await Promise.all([
          clients.directOther.pipeline([step.other]),
          clients.proxiedOther.pipeline([step.other]),
        ]);
      for (let i = 0; i < sent.length; i++) {
        assert.deepStrictEqual(
          got[i],
          want[i],
          `episode #${n} (${kind}), ${JSON.stringify(sent[i])}\n  redis: ${
            showReply(want[i])
          }\n  aster: ${showReply(got[i])}\n  episode: ${JSON.stringify(steps)}`,
        );
        _count(stats, kind, sent[i][0], want[i]);
      }
    }
  }
  return stats;
}

function _count(stats: StatefulStats, kind: string, name: string, reply: RespValue): void {
  if (name === "EXEC" && reply === null) stats.brokenWatches++;
  if (name === "EXEC" && reply instanceof RespErrorReply && /^EXECABORT/.test(reply.message)) {
    stats.aborted++;
  }
  if (kind === "blocking") {
    if (reply === null) stats.blockedNil++;
    else stats.blockedData++;
  }
}

/** Asserts the stream covered broken watches, aborts and both outcomes of blocking. */
export function assertStatefulCoverage(stats: StatefulStats): void {
  assert.ok(stats.brokenWatches > 3, `only ${stats.brokenWatches} broken WATCHes`);
  assert.ok(stats.aborted > 3, `only ${stats.aborted} EXECABORTs`);
  assert.ok(stats.blockedNil > 3, `only ${stats.blockedNil} blocking timeouts`);
  assert.ok(stats.blockedData > 3, `only ${stats.blockedData} blocking commands served`);
  assert.ok((stats.episodes.get("ordering") ?? 0) > 10, "too few pipelined orderings");
}
