/**
 * Our placement against the real thing: write keys through nutcracker, find which
 * redis-server each one landed on, and check RingRouter picks the same backend, for the
 * default fnv1a_64 + ketama and for every other `hash` x `distribution` twemproxy accepts.
 */

import assert from "node:assert/strict";
import { DISTRIBUTION_NAMES } from "../src/hash/distribution.ts";
import { ketamaName } from "../src/hash/ketama.ts";
import { KEY_HASH_NAMES } from "../src/hash/key_hashes.ts";
import { DEFAULT_PLACEMENT, type Placement, RingRouter } from "../src/proxy/ring_router.ts";
import { spreadKeys } from "./helpers/keys.ts";
import { type ServerProcess, startNutcracker, startRedis } from "./helpers/servers.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const OK = encoder.encode("+OK\r\n");
/** Reply to EXISTS for a key that is there; ":0\r\n" is the same length. */
const EXISTS_YES = encoder.encode(":1\r\n");

/** One `servers:` entry: which redis-server it points at, its weight, its alias. */
interface Entry {
  backend: number;
  weight: number;
  alias: string | null;
}

Deno.test("nutcracker and KetamaRing agree: aliases, weights 2/1/3", async () => {
  await _checkPlacement({
    backends: 3,
    entries: [
      { backend: 0, weight: 2, alias: "alpha" },
      { backend: 1, weight: 1, alias: "beta" },
      { backend: 2, weight: 3, alias: "gamma" },
    ],
    keys: _keys(2000),
  });
});

Deno.test("nutcracker and KetamaRing agree: host:port names, weights 1/2/3/4", async () => {
  await _checkPlacement({
    backends: 4,
    entries: [1, 2, 3, 4].map((weight, backend) => ({ backend, weight, alias: null })),
    keys: _keys(2000),
  });
});

Deno.test("nutcracker and KetamaRing agree: hash_tag {} hashes only the tagged part", async () => {
  // Tags and suffixes from spreadKeys: the servers are named by their random ports, and
  // "user{0}" .. "user{249}" hashed into a few clumps that missed a backend 1 ring in 50.
  const tags = spreadKeys("t", 250);
  const suffixes = spreadKeys("k", 250);
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 1500; i++) keys.push(encoder.encode(`user{${tags[i % 250]}}:${i}`));
  for (const suffix of suffixes) keys.push(encoder.encode(`plain{}:${suffix}`)); // empty tag
  for (const suffix of suffixes) keys.push(encoder.encode(`half}{${suffix}`)); // no closing tag
  await _checkPlacement({
    backends: 3,
    entries: [0, 1, 2].map((backend) => ({ backend, weight: 1, alias: null })),
    keys,
    hashTag: "{}",
  });
});

Deno.test("nutcracker and KetamaRing agree: 25 equal nodes get 156 points each", async () => {
  // 25 aliased entries spread over 5 redis-servers. With 25 equal weights the C float
  // arithmetic yields 156 points per node, not 160: a double-precision port would
  // misplace some keys.
  const entries: Entry[] = [];
  for (let i = 0; i < 25; i++) entries.push({ backend: i % 5, weight: 1, alias: `node${i}` });
  await _checkPlacement({ backends: 5, entries, keys: _keys(2000) });
});

Deno.test("nutcracker and RingRouter agree: every hash with ketama and modula", async (t) => {
  // Mixed weights and names: modula repeats a node `weight` times, ketama hashes the names.
  const entries: Entry[] = [
    { backend: 0, weight: 1, alias: null },
    { backend: 1, weight: 2, alias: "beta" },
    { backend: 2, weight: 3, alias: null },
    { backend: 3, weight: 1, alias: "delta" },
  ];
  const keys = _keys(800);
  for (let i = 0; i < 100; i++) keys.push(encoder.encode(`tag{${i % 20}}:${i}`));
  keys.push(new Uint8Array(0)); // nutcracker hashes an empty key to 0 whatever the hash
  for (const distribution of ["ketama", "modula"] as const) {
    for (const hash of KEY_HASH_NAMES) {
      await t.step(`${hash} + ${distribution}`, async () => {
        await _checkPlacement({
          backends: 4,
          entries,
          keys,
          hashTag: "{}",
          placement: { hash, distribution },
          // crc32 hashes to 0..32767, below nearly every ketama point: twemproxy (and we)
          // put almost every key on the node owning the lowest point.
          everyBackend: !(hash === "crc32" && distribution === "ketama"),
        });
      });
    }
  }
});

Deno.test("random: nutcracker accepts it and RingRouter spreads keys over every live node", async () => {
  assert.deepEqual([...DISTRIBUTION_NAMES], ["ketama", "modula", "random"]);
  const nodes = [1, 5, 1].map((weight, i) => ({ name: `n${i}`, weight }));
  const router = new RingRouter(nodes, null, { hash: "md5", distribution: "random" });
  const counts = [0, 0, 0];
  const key = encoder.encode("same-key");
  for (let i = 0; i < 3000; i++) counts[router.pick(key)]++;
  // Each live node listed once, weights ignored, as in twemproxy: about 1000 each.
  for (const count of counts) assert.ok(count > 800 && count < 1200, `${counts}`);
  router.setLive(1, false);
  for (let i = 0; i < 300; i++) assert.notEqual(router.pick(key), 1);

  // nutcracker serves a random pool too: every key reads back through it.
  await using stack = new AsyncDisposableStack();
  const redis: ServerProcess[] = [];
  for (let i = 0; i < 3; i++) redis.push(stack.use(await startRedis()));
  const servers = redis.map((server) => `${HOST}:${server.port}:1`);
  const proxy = stack.use(await startNutcracker({ servers, distribution: "random" }));
  const keys = _keys(300).filter((_, i) => i % 10 !== 9);
  const sets = await _pipeline(
    proxy.port,
    _concat(keys.map((key) => _command([encoder.encode("SET"), key, encoder.encode("v")]))),
    keys.length * OK.length,
  );
  assert.deepEqual(sets, _repeat(OK, keys.length));
  let held = 0;
  for (const server of redis) {
    const exists = _concat(keys.map((key) => _command([encoder.encode("EXISTS"), key])));
    const replies = await _pipeline(server.port, exists, keys.length * EXISTS_YES.length);
    let here = 0;
    for (let k = 0; k < keys.length; k++) {
      if (replies[k * EXISTS_YES.length + 1] === EXISTS_YES[1]) here++;
    }
    assert.ok(here > 0, `nutcracker's random put nothing on ${server.port}`);
    held += here;
  }
  assert.equal(held, keys.length, "each key on exactly one server");
});

/**
 * Starts the backends and nutcracker, SETs every key through it, asks each backend
 * which keys it holds, and asserts each key sits on exactly the backend our ring picks.
 */
async function _checkPlacement(
  test: {
    backends: number;
    entries: Entry[];
    keys: Uint8Array[];
    hashTag?: string;
    placement?: Placement;
    /** Require keys on every backend, so a placement bug cannot hide. @default true */
    everyBackend?: boolean;
  },
): Promise<void> {
  const placement = test.placement ?? DEFAULT_PLACEMENT;
  await using stack = new AsyncDisposableStack();
  const redis: ServerProcess[] = [];
  for (let i = 0; i < test.backends; i++) redis.push(stack.use(await startRedis()));
  const servers = test.entries.map((entry) => {
    const line = `${HOST}:${redis[entry.backend].port}:${entry.weight}`;
    return entry.alias === null ? line : `${line} ${entry.alias}`;
  });
  const proxy = stack.use(
    await startNutcracker({ servers, hashTag: test.hashTag, ...placement }),
  );

  const sets = await _pipeline(
    proxy.port,
    _concat(test.keys.map((key) => _command([encoder.encode("SET"), key, encoder.encode("v")]))),
    test.keys.length * OK.length,
  );
  assert.deepEqual(sets, _repeat(OK, test.keys.length), "every SET through nutcracker is +OK");

  const exists = _concat(test.keys.map((key) => _command([encoder.encode("EXISTS"), key])));
  const holders: number[][] = test.keys.map(() => []);
  for (let b = 0; b < redis.length; b++) {
    const replies = await _pipeline(redis[b].port, exists, test.keys.length * EXISTS_YES.length);
    assert.equal(replies.length, test.keys.length * EXISTS_YES.length);
    for (let k = 0; k < test.keys.length; k++) {
      if (replies[k * EXISTS_YES.length + 1] === EXISTS_YES[1]) holders[k].push(b);
    }
  }

  for (let b = 0; b < redis.length && test.everyBackend !== false; b++) {
    assert.ok(holders.some((on) => on.includes(b)), `backend ${b} got no keys: a weak test`);
  }

  const nodes = test.entries.map((entry) => ({
    name: ketamaName({ host: HOST, port: redis[entry.backend].port, alias: entry.alias }),
    weight: entry.weight,
  }));
  const router = new RingRouter(nodes, test.hashTag ?? null, placement);
  const wrong: string[] = [];
  for (let k = 0; k < test.keys.length; k++) {
    const key = test.keys[k];
    const expected = test.entries[router.pick(key)].backend;
    if (holders[k].length !== 1 || holders[k][0] !== expected) {
      wrong.push(`${JSON.stringify(_show(key))}: on ${holders[k]}, ring says ${expected}`);
    }
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${test.keys.length} keys misplaced`);
}

/** `count` keys: mostly ASCII, one in ten with bytes >= 0x80 (signed-char hashing). */
function _keys(count: number): Uint8Array[] {
  const keys: Uint8Array[] = [];
  let seed = 12345;
  for (let i = 0; i < count; i++) {
    if (i % 10 !== 9) {
      keys.push(encoder.encode(`key:${i}`));
      continue;
    }
    const key = new Uint8Array(4 + (i % 13));
    for (let j = 0; j < key.length; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      key[j] = 0x80 | (seed >>> 24); // high bytes only: never CR or LF
    }
    key.set(encoder.encode(`${i % 1000}`.padStart(3, "0")), 0);
    keys.push(key);
  }
  return keys;
}

/** A RESP multibulk command. */
function _command(args: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const arg of args) {
    parts.push(encoder.encode(`$${arg.length}\r\n`), arg, encoder.encode("\r\n"));
  }
  return _concat(parts);
}

function _concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function _repeat(part: Uint8Array, times: number): Uint8Array {
  return _concat(Array.from({ length: times }, () => part));
}

function _show(key: Uint8Array): string {
  return Array.from(
    key,
    (b) => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16)}`,
  )
    .join("");
}

/**
 * Sends `payload` to 127.0.0.1:`port` while reading until `replyLength` bytes came
 * back, the peer closed, or `timeoutMs` passed; returns the bytes read.
 */
async function _pipeline(
  port: number,
  payload: Uint8Array,
  replyLength: number,
  timeoutMs = 10_000,
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: HOST, port });
  let closed = false;
  const close = () => {
    if (!closed) conn.close();
    closed = true;
  };
  const timer = setTimeout(close, timeoutMs);
  const reply = new Uint8Array(replyLength);
  let got = 0;
  const writing = (async () => {
    for (let at = 0; at < payload.length;) at += await conn.write(payload.subarray(at));
  })().catch((error) => error);
  try {
    while (got < replyLength) {
      const n = await conn.read(reply.subarray(got));
      if (n === null) break;
      got += n;
    }
  } catch (error) {
    if (!closed) throw error; // a timeout closed the socket: return what came back
  } finally {
    clearTimeout(timer);
    close();
  }
  const writeError = await writing;
  if (writeError !== undefined && got < replyLength) throw writeError;
  return reply.subarray(0, got);
}
