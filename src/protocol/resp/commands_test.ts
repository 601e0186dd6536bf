import assert from "node:assert/strict";
import {
  blockingTimeoutMs,
  commandKeyIndexes,
  COMMANDS,
  type CommandSpec,
  isBlockingRequest,
  lookupCommand,
  sortPatternIndexes,
} from "./commands.ts";

const encoder = new TextEncoder();

function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

function spec(name: string): CommandSpec {
  const found = lookupCommand(bytes(name));
  assert.ok(found, `${name} is in the table`);
  return found;
}

/** Splits a command line on spaces into argv bytes. */
function argv(line: string): Uint8Array[] {
  return line.split(" ").map(bytes);
}

function keysOf(line: string): readonly number[] | null {
  const args = argv(line);
  return commandKeyIndexes(spec(line.split(" ")[0]), args);
}

Deno.test("lookupCommand() finds every command of the table by its name", () => {
  for (const command of COMMANDS) assert.equal(lookupCommand(bytes(command.name)), command);
});

Deno.test("lookupCommand() ignores case", () => {
  const get = spec("get");
  assert.equal(lookupCommand(bytes("GET")), get);
  assert.equal(lookupCommand(bytes("gEt")), get);
  assert.equal(lookupCommand(bytes("ZRangeByScore")), spec("zrangebyscore"));
  assert.equal(lookupCommand(bytes("GEORADIUSBYMEMBER_RO"))?.name, "georadiusbymember_ro");
  assert.equal(lookupCommand(bytes("RESTORE-ASKING"))?.name, "restore-asking");
});

Deno.test("lookupCommand() finds a name inside a larger buffer view", () => {
  const buffer = bytes("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  assert.equal(lookupCommand(buffer.subarray(8, 11)), spec("get"));
});

Deno.test("lookupCommand() returns undefined for unknown names", () => {
  for (const name of ["", "ge", "gett", "nosuchcommand", "georadiusbymember_rox", "g\u00e9t"]) {
    assert.equal(lookupCommand(bytes(name)), undefined, name);
  }
  assert.equal(lookupCommand(new Uint8Array(4096)), undefined);
  // Bytes that differ from a name only in bit 5 outside the letters must not match.
  assert.equal(lookupCommand(bytes("eval\x7fro")), undefined);
  assert.equal(lookupCommand(Uint8Array.of(0x47, 0x45, 0x54 | 0x80)), undefined);
});

Deno.test("COMMANDS is consistent", () => {
  const names = new Set<string>();
  for (const command of COMMANDS) {
    const { name } = command;
    assert.match(name, /^[a-z][a-z_-]*$/, name);
    assert.ok(!names.has(name), `duplicate ${name}`);
    names.add(name);
    assert.ok(Number.isInteger(command.arity) && command.arity !== 0, `${name} arity`);
    assert.ok(command.firstKey >= 0, `${name} firstKey`);
    if (command.firstKey === 0) {
      assert.equal(command.lastKey, 0, `${name} lastKey`);
      assert.equal(command.keyStep, 0, `${name} keyStep`);
    } else {
      assert.ok(command.keyStep >= 1, `${name} keyStep`);
      assert.ok(command.lastKey < 0 || command.lastKey >= command.firstKey, `${name} lastKey`);
      if (command.arity > 0 && command.lastKey > 0) {
        assert.ok(command.lastKey < command.arity, `${name} keys within arity`);
      }
    }
    if (command.keysFrom === "numkeys") {
      assert.ok((command.numkeysIndex ?? 0) > command.firstKey, `${name} numkeysIndex`);
      assert.ok((command.numkeysIndex ?? 0) < Math.abs(command.arity), `${name} numkeysIndex`);
    } else {
      assert.equal(command.numkeysIndex, undefined, `${name} numkeysIndex`);
    }
    assert.equal(command.split !== undefined, command.kind === "multi", `${name} split`);
    assert.equal(command.reason !== undefined, command.kind === "unsupported", `${name} reason`);
    if (command.reason !== undefined) assert.ok(command.reason.length > 0, `${name} reason`);
    if (command.kind === "single" || command.kind === "multi") {
      assert.ok(
        command.firstKey > 0 || command.keysFrom !== undefined,
        `${name} routed by its keys`,
      );
    }
    if (command.kind === "eval") assert.equal(command.keysFrom, "numkeys", name);
    if (command.kind === "local" || command.kind === "server") {
      assert.equal(command.firstKey, 0, name);
    }
    assert.ok(Object.isFrozen(command), `${name} frozen`);
  }
  assert.ok(Object.isFrozen(COMMANDS));
  assert.ok(COMMANDS.length >= 240, `${COMMANDS.length} commands`);
});

Deno.test("every kind is represented", () => {
  assert.equal(spec("get").kind, "single");
  assert.equal(spec("lcs").kind, "single");
  assert.equal(spec("msetnx").kind, "single");
  assert.equal(spec("pfcount").kind, "single");
  assert.equal(spec("sinterstore").kind, "single");
  assert.equal(spec("rename").kind, "single");
  assert.equal(spec("xread").kind, "single");
  assert.deepEqual(
    ["mget", "mset", "del", "unlink", "exists", "touch"].map((n) => [spec(n).kind, spec(n).split]),
    [
      ["multi", "mget"],
      ["multi", "mset"],
      ["multi", "sum"],
      ["multi", "sum"],
      ["multi", "sum"],
      ["multi", "sum"],
    ],
  );
  for (const name of ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"]) {
    assert.equal(spec(name).kind, "eval", name);
  }
  for (const name of ["ping", "echo", "quit", "select"]) {
    assert.equal(spec(name).kind, "local", name);
  }
  const server = [
    "command",
    "function",
    "script",
    "dbsize",
    "randomkey",
    "scan",
    "lastsave",
    "lolwut",
    "role",
    "time",
  ];
  for (const name of server) assert.equal(spec(name).kind, "server", name);
  const pubsub = ["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe"];
  for (const name of [...pubsub, "sunsubscribe", "pubsub"]) {
    assert.equal(spec(name).kind, "pubsub", name);
  }
  for (const name of ["publish", "spublish"]) assert.equal(spec(name).kind, "single", name);
  const refused = [
    "keys",
    "flushall",
    "flushdb",
    "config",
    "debug",
    "shutdown",
    "save",
    "bgsave",
    "bgrewriteaof",
    "monitor",
    "slaveof",
    "replicaof",
    "sync",
    "psync",
    "migrate",
    "move",
    "wait",
    "client",
    "cluster",
    "acl",
    "module",
    "latency",
    "memory",
    "slowlog",
    "info",
    "auth",
    "hello",
    "swapdb",
    "failover",
    "readonly",
    "readwrite",
    "asking",
    "reset",
    "sentinel",
  ];
  for (const name of refused) assert.equal(spec(name).kind, "unsupported", name);
  assert.equal(spec("keys").reason, "commands over the whole keyspace are not supported");
  // Served on pinned connections (issue 19).
  for (const name of ["multi", "exec", "discard", "watch", "unwatch"]) {
    assert.equal(spec(name).kind, "transaction", name);
  }
  for (const name of ["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzmpop"]) {
    assert.equal(spec(name).kind, "single", name);
  }
});

Deno.test("specs carry Redis's arity and read-only flag", () => {
  assert.deepEqual([spec("get").arity, spec("get").readonly], [2, true]);
  assert.deepEqual([spec("set").arity, spec("set").readonly], [-3, false]);
  assert.deepEqual([spec("getrange").arity, spec("getrange").readonly], [4, true]);
  assert.deepEqual([spec("xread").readonly, spec("xreadgroup").readonly], [true, false]);
  assert.deepEqual([spec("eval_ro").readonly, spec("eval").readonly], [true, false]);
});

Deno.test("commandKeyIndexes() finds single keys and ranges", () => {
  assert.deepEqual(keysOf("GET k"), [1]);
  assert.deepEqual(keysOf("SET k v EX 10"), [1]);
  assert.deepEqual(keysOf("LCS a b"), [1, 2]);
  assert.deepEqual(keysOf("RENAME a b"), [1, 2]);
  assert.deepEqual(keysOf("MGET a b c"), [1, 2, 3]);
  assert.deepEqual(keysOf("MSET a 1 b 2 c 3"), [1, 3, 5]);
  assert.deepEqual(keysOf("DEL a"), [1]);
  assert.deepEqual(keysOf("SDIFFSTORE d a b"), [1, 2, 3]);
  assert.deepEqual(keysOf("PFMERGE d a b"), [1, 2, 3]);
  assert.deepEqual(keysOf("BITOP AND dest a b"), [2, 3, 4]);
  assert.deepEqual(keysOf("BLPOP a b 0"), [1, 2]);
  assert.deepEqual(keysOf("GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 km"), [1, 2]);
  assert.deepEqual(keysOf("PING"), []);
  // Single-key requests share one list: no caller may change it.
  assert.ok(Object.isFrozen(keysOf("GET k")));
});

Deno.test("commandKeyIndexes() finds the key of subcommands at argv[2]", () => {
  assert.deepEqual(keysOf("OBJECT ENCODING key"), [2]);
  assert.deepEqual(keysOf("XINFO STREAM key FULL"), [2]);
  assert.deepEqual(keysOf("XGROUP CREATE key group $ MKSTREAM"), [2]);
  assert.deepEqual(keysOf("OBJECT HELP"), []);
});

Deno.test("commandKeyIndexes() finds no keys in MSET with a key and no value", () => {
  assert.equal(keysOf("MSET a 1 b"), null);
  assert.equal(keysOf("MSETNX a 1 b"), null);
});

Deno.test("commandKeyIndexes() reads EVAL keys from numkeys", () => {
  assert.deepEqual(keysOf("EVAL script 2 a b arg"), [3, 4]);
  assert.deepEqual(keysOf("EVALSHA sha 1 a"), [3]);
  assert.deepEqual(keysOf("FCALL_RO fn 0 arg"), []);
  assert.equal(keysOf("EVAL script 3 a b"), null);
  assert.equal(keysOf("EVAL script 9223372036854775807 a"), null);
  assert.equal(keysOf("EVAL script -1 a"), null);
  for (const bad of ["x", "01", "+1", "1.0", "-0", "-", "9223372036854775808"]) {
    assert.equal(keysOf(`EVAL script ${bad} a`), null, bad);
  }
  assert.equal(
    commandKeyIndexes(spec("eval"), [bytes("EVAL"), bytes("s"), new Uint8Array(0), bytes("a")]),
    null,
  );
});

Deno.test("commandKeyIndexes() reads numkeys of sorted set, list and set commands", () => {
  assert.deepEqual(keysOf("ZUNIONSTORE dest 2 a b WEIGHTS 1 2"), [1, 3, 4]);
  assert.deepEqual(keysOf("ZDIFFSTORE dest 1 a"), [1, 3]);
  assert.deepEqual(keysOf("ZUNION 2 a b WITHSCORES"), [2, 3]);
  assert.deepEqual(keysOf("ZINTERCARD 2 a b LIMIT 1"), [2, 3]);
  assert.deepEqual(keysOf("ZMPOP 1 a MIN"), [2]);
  assert.deepEqual(keysOf("LMPOP 2 a b LEFT"), [2, 3]);
  assert.deepEqual(keysOf("SINTERCARD 2 a b LIMIT 1"), [2, 3]);
  assert.equal(keysOf("ZUNIONSTORE dest 0 a"), null);
  assert.equal(keysOf("ZUNIONSTORE dest 3 a b"), null);
  assert.equal(keysOf("ZINTER x a"), null);
  assert.equal(keysOf("LMPOP 0 a LEFT"), null);
  assert.equal(keysOf("LMPOP x a LEFT"), null);
  assert.equal(keysOf("LMPOP 3 a LEFT"), null);
  assert.equal(keysOf("SINTERCARD 3 a b"), null);
  assert.equal(keysOf("SINTERCARD -1 a"), null);
});

Deno.test("commandKeyIndexes() reads XREAD keys after STREAMS", () => {
  assert.deepEqual(keysOf("XREAD COUNT 1 STREAMS a b 0 0"), [4, 5]);
  assert.deepEqual(keysOf("XREAD streams a 0"), [2]);
  assert.deepEqual(keysOf("XREAD COUNT 1 STREAMS streams 0"), [4]);
  assert.deepEqual(keysOf("XREADGROUP GROUP streams c NOACK STREAMS a >"), [6]);
  assert.deepEqual(keysOf("XREADGROUP GROUP g c COUNT 2 STREAMS a b > >"), [7, 8]);
  assert.equal(keysOf("XREAD COUNT 1 STREAMS a b 0"), null);
  assert.equal(keysOf("XREAD COUNT 1 STREAMS"), null);
  assert.equal(keysOf("XREAD COUNT 1 a 0"), null);
});

Deno.test("commandKeyIndexes() adds STORE destinations of SORT and GEORADIUS", () => {
  assert.deepEqual(keysOf("GEORADIUS k 15 37 200 km WITHDIST ASC"), [1]);
  assert.deepEqual(keysOf("GEORADIUS k 15 37 200 km COUNT 3 STORE d"), [1, 9]);
  assert.deepEqual(keysOf("GEORADIUS k 1 2 3 m store a storedist b"), [1, 7, 9]);
  assert.deepEqual(keysOf("GEORADIUSBYMEMBER k m 3 km STOREDIST d"), [1, 6]);
  assert.deepEqual(keysOf("GEORADIUS_RO k 15 37 200 km"), [1]);
  assert.deepEqual(keysOf("SORT k"), [1]);
  assert.deepEqual(keysOf("SORT k GET store BY x STORE d LIMIT 0 1"), [1, 7]);
  assert.deepEqual(keysOf("SORT k LIMIT 0 store"), [1]);
  assert.deepEqual(keysOf("SORT_RO k ALPHA"), [1]);
});

Deno.test("commandKeyIndexes() never returns an index outside argv", () => {
  for (const command of COMMANDS) {
    for (let argc = 1; argc <= 9; argc++) {
      const args = Array.from({ length: argc }, (_, i) => bytes(i === 0 ? command.name : "1"));
      const keys = commandKeyIndexes(command, args) ?? [];
      for (const index of keys) assert.ok(index >= 1 && index < argc, command.name);
    }
  }
});

Deno.test("isBlockingRequest() spots XREAD BLOCK and the blocking commands", () => {
  const xread = spec("xread");
  assert.equal(isBlockingRequest(xread, argv("XREAD BLOCK 0 STREAMS a 0")), true);
  assert.equal(isBlockingRequest(xread, argv("XREAD COUNT 1 block 100 STREAMS a 0")), true);
  assert.equal(isBlockingRequest(xread, argv("XREAD COUNT 1 STREAMS a 0")), false);
  assert.equal(isBlockingRequest(xread, argv("XREAD STREAMS block 0")), false);
  const group = spec("xreadgroup");
  assert.equal(isBlockingRequest(group, argv("XREADGROUP GROUP g c BLOCK 5 STREAMS a >")), true);
  assert.equal(isBlockingRequest(group, argv("XREADGROUP GROUP block c STREAMS a >")), false);
  assert.equal(isBlockingRequest(spec("blpop"), argv("BLPOP a 0")), true);
  assert.equal(isBlockingRequest(spec("bzmpop"), argv("BZMPOP 0 1 a MIN")), true);
  assert.equal(isBlockingRequest(spec("lpop"), argv("LPOP a")), false);
  assert.equal(isBlockingRequest(spec("get"), argv("GET block")), false);
});

Deno.test("blockingTimeoutMs() reads each blocking command's own timeout", () => {
  const ms = (line: string) => blockingTimeoutMs(spec(line.split(" ")[0]), argv(line));
  assert.equal(ms("BLPOP a b 1.5"), 1500);
  assert.equal(ms("BLPOP a 10"), 10000);
  assert.equal(ms("BLPOP a 007"), 7000);
  assert.equal(ms("BLPOP a -0"), Infinity);
  assert.equal(ms("BLPOP a 1e1"), 10000);
  assert.equal(ms("BRPOP a 0"), Infinity);
  assert.equal(ms("BZPOPMIN a 2"), 2000);
  assert.equal(ms("BLMOVE a b LEFT RIGHT 0.25"), 250);
  assert.equal(ms("BRPOPLPUSH a b 3"), 3000);
  assert.equal(ms("BLMPOP 4 2 a b LEFT"), 4000);
  assert.equal(ms("BZMPOP 0 1 a MIN"), Infinity);
  assert.equal(ms("XREAD COUNT 1 BLOCK 700 STREAMS a 0"), 700);
  assert.equal(ms("XREADGROUP GROUP g c BLOCK 0 STREAMS a >"), Infinity);
  // As C's strtold and Redis's truncation to whole ms read them.
  assert.equal(ms("BLPOP a 0x1p3"), 8000);
  assert.equal(ms("BLPOP a 0x1.8"), 1500);
  assert.equal(ms("BLPOP a 0X.8p1"), 1000);
  assert.equal(ms("BLPOP a +2"), 2000);
  assert.equal(ms("BLPOP a .5"), 500);
  assert.equal(ms("BLPOP a 0.0009"), Infinity, "0 ms: for ever");
  assert.equal(ms("BLPOP a -0.0009"), Infinity, "0 ms: for ever");
  assert.equal(ms("BLPOP a 0.0015"), 1);
  // Invalid: the backend refuses it at once, so no wait of its own.
  assert.equal(ms("BLPOP a -1"), 0);
  assert.equal(ms("BLPOP a x"), 0);
  assert.equal(ms("BLPOP a inf"), 0);
  assert.equal(ms("BLPOP a nan"), 0);
  assert.equal(ms("BLPOP a 0x"), 0);
  assert.equal(ms("BLPOP a 1e"), 0);
  assert.equal(ms("XREAD BLOCK 07 STREAMS a 0"), 0);
  assert.equal(ms("XREAD BLOCK 1.5 STREAMS a 0"), 0);
});

Deno.test("sortPatternIndexes() finds the BY/GET patterns that read other keys, as Redis parses", () => {
  const indexes = (...args: string[]) => sortPatternIndexes(spec(args[0]), args.map(bytes));
  assert.deepEqual(indexes("sort", "k"), []);
  assert.deepEqual(indexes("sort", "k", "BY", "nosort", "GET", "#"), []);
  assert.deepEqual(indexes("sort", "k", "by", "w_*", "get", "o_*", "GET", "#", "GET", "x"), [
    3,
    5,
    9,
  ]);
  assert.deepEqual(indexes("sort", "k", "LIMIT", "0", "1", "ASC", "ALPHA", "DESC", "BY", "w*"), [
    9,
  ]);
  assert.deepEqual(indexes("sort", "k", "STORE", "by", "BY", "w*"), [5]);
  // Where Redis stops with an error, so does the walk (the backend reports the error).
  assert.deepEqual(indexes("sort", "k", "NOSUCH", "BY", "w*"), []);
  assert.deepEqual(indexes("sort", "k", "LIMIT", "x", "1", "BY", "w*"), []);
  assert.deepEqual(indexes("sort_ro", "k", "STORE", "d", "BY", "w*"), []);
  assert.deepEqual(indexes("sort_ro", "k", "BY", "w*", "NOSUCH", "GET", "o*"), [3]);
  assert.deepEqual(indexes("sort", "k", "BY"), []);
});
