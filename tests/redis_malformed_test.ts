/**
 * Malformed RESP through Aster in redis mode: each bad client gets one
 * `-ERR Protocol error: ...` reply and is closed, at once, while other clients connected
 * at the same time keep being served; clients that vanish mid-request or with many
 * requests in flight do not disturb the others either.
 */

import assert from "node:assert/strict";
import { type AsterProcess, startAster } from "./helpers/aster.ts";
import { Random } from "./helpers/random.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

const encoder = new TextEncoder();
/** How long a malformed request may wait for its error reply, and then for the close. */
const ANSWER_WITHIN_MS = 1000;
const CLOSE_WITHIN_MS = 2000;

/** Bytes from a string of char codes 0..255 (latin1), so tests can spell raw bytes. */
function _latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

interface Case {
  name: string;
  bytes: Uint8Array;
  /** Replies expected before the error (valid requests ahead of the bad one). */
  before?: unknown[];
  /** The full error text; Redis's own wording where Redis rejects the input too. */
  error: string;
  /** A redis-server gives the same error for these bytes (checked against one). */
  sameAsRedis: boolean;
}

function _cases(): Case[] {
  const cases: Case[] = [
    {
      name: "non-numeric multibulk count",
      bytes: _latin1("*x\r\n"),
      error: "ERR Protocol error: invalid multibulk length",
      sameAsRedis: true,
    },
    {
      name: "simple string where a bulk string belongs",
      bytes: _latin1("*2\r\n+GET\r\n"),
      error: "ERR Protocol error: expected '$', got '+'",
      sameAsRedis: true,
    },
    {
      name: "negative bulk length",
      bytes: _latin1("*1\r\n$-5\r\n"),
      error: "ERR Protocol error: invalid bulk length",
      sameAsRedis: true,
    },
    {
      name: "bulk length over 512 MB (answered without waiting for the body)",
      bytes: _latin1("*1\r\n$536870913\r\n"),
      error: "ERR Protocol error: invalid bulk length",
      sameAsRedis: true,
    },
    {
      name: "argument count over 1,048,576 (Aster's limit: many millions would end a worker)",
      bytes: _latin1("*1048577\r\n"),
      error: "ERR Protocol error: more than 1048576 arguments (Aster's limit)",
      sameAsRedis: false, // Redis 7 allows up to INT_MAX and waits for the arguments
    },
    {
      name: "argument count over INT_MAX",
      bytes: _latin1("*2147483648\r\n"),
      error: "ERR Protocol error: invalid multibulk length",
      sameAsRedis: true,
    },
    {
      name: "inline request over 64 KB without a newline",
      bytes: _latin1("A".repeat(70_000)),
      error: "ERR Protocol error: too big inline request",
      sameAsRedis: true,
    },
    {
      name: "inline line over 64 KB with its newline",
      bytes: _latin1("GET " + "k".repeat(70_000) + "\r\n"),
      error: "ERR Protocol error: too big inline request",
      sameAsRedis: false, // Redis takes it when the whole line arrives in one read
    },
    {
      name: "bulk count line over 64 KB",
      bytes: _latin1("*1\r\n$" + "1".repeat(70_000)),
      error: "ERR Protocol error: too big bulk count string",
      sameAsRedis: true,
    },
    {
      name: "multibulk count line over 64 KB",
      bytes: _latin1("*" + "1".repeat(70_000)),
      error: "ERR Protocol error: too big mbulk count string",
      sameAsRedis: true,
    },
    {
      name: "unbalanced double quote",
      bytes: _latin1('SET "abc def\r\n'),
      error: "ERR Protocol error: unbalanced quotes in request",
      sameAsRedis: true,
    },
    {
      name: "unbalanced single quote",
      bytes: _latin1("GET 'x\r\n"),
      error: "ERR Protocol error: unbalanced quotes in request",
      sameAsRedis: true,
    },
    {
      name: "closing quote followed by a non-space",
      bytes: _latin1('SET "a"b c\r\n'),
      error: "ERR Protocol error: unbalanced quotes in request",
      sameAsRedis: true,
    },
    {
      name: "bulk string not ended by CRLF",
      bytes: _latin1("*1\r\n$4\r\nPINGxx"),
      error: "ERR Protocol error: bulk string is not terminated by CRLF",
      sameAsRedis: false, // Redis skips the two bytes unchecked
    },
    {
      name: "valid local and forwarded requests, then garbage, in one write",
      bytes: _latin1(
        "PING\r\n*2\r\n$3\r\nGET\r\n$9\r\nmalformed\r\n*1\r\n$4\r\nPING\r\n" +
          "MGET malformed 0:other 1:other 2:other\r\n*?\r\n*1\r\n$4\r\nPING\r\n",
      ),
      before: ["PONG", "seen", "PONG", ["seen", "0", "1", "2"]],
      error: "ERR Protocol error: invalid multibulk length",
      sameAsRedis: true,
    },
  ];
  // Random binary garbage, seeded: after "*" a byte that is no digit or "-", so the count
  // can never parse; or a valid header and first argument followed by a byte that is not "$".
  const rng = new Random(0xbad);
  for (let i = 0; i < 8; i++) {
    const garbage = rng.bytes(rng.range(1, 3000));
    let lead: number;
    do lead = rng.int(256); while ((lead >= 0x30 && lead <= 0x39) || lead === 0x2d);
    const bytes = new Uint8Array(garbage.length + 4);
    bytes.set([0x2a, lead], 0); // "*"
    bytes.set(garbage, 2);
    bytes.set([0x0d, 0x0a], garbage.length + 2);
    cases.push({
      name: `random garbage after "*" #${i}`,
      bytes,
      error: "ERR Protocol error: invalid multibulk length",
      // Redis looks for the line end with strchr(), which stops at a NUL byte.
      sameAsRedis: !bytes.subarray(0, bytes.indexOf(0x0d)).includes(0),
    });
  }
  for (let i = 0; i < 4; i++) {
    const garbage = rng.bytes(rng.range(1, 3000));
    if (garbage[0] === 0x24) garbage[0] = 0x25; // never "$"
    const head = _latin1("*3\r\n$3\r\nSET\r\n");
    const bytes = new Uint8Array(head.length + garbage.length);
    bytes.set(head, 0);
    bytes.set(garbage, head.length);
    const shown = _describeByte(garbage[0]);
    cases.push({
      name: `random garbage where an argument belongs #${i}`,
      bytes,
      error: `ERR Protocol error: expected '$', got '${shown}'`,
      sameAsRedis: garbage[0] >= 0x20 && garbage[0] <= 0x7e, // Redis shows other bytes raw
    });
  }
  return cases;
}

function _describeByte(byte: number): string {
  return byte >= 0x20 && byte <= 0x7e ? String.fromCharCode(byte) : "?";
}

/** A client that keeps working through everything; counts its own INCRs. */
class _Bystander {
  readonly client: RespClient;
  #count = 0;
  readonly #key: string;

  constructor(client: RespClient, key: string) {
    this.client = client;
    this.#key = key;
  }

  /** A forwarded INCR, a split MGET and a local PING, checked. */
  async check(where: string): Promise<void> {
    const replies = await this.client.pipeline([
      ["INCR", this.#key],
      ["MGET", this.#key, "0:other", "1:other", "2:other"],
      ["PING"],
    ]);
    this.#count++;
    assert.deepStrictEqual(
      text(replies as RespValue),
      [this.#count, [`${this.#count}`, "0", "1", "2"], "PONG"],
      `bystander ${where}`,
    );
  }
}

async function _startProxy(stack: AsyncDisposableStack): Promise<
  { shards: ServerProcess[]; aster: AsterProcess; port: number }
> {
  const shards: ServerProcess[] = [];
  for (let i = 0; i < 3; i++) shards.push(stack.use(await startRedis()));
  const aster = stack.use(
    await startAster([{
      servers: shards.map((shard, i) => `127.0.0.1:${shard.port}:1 shard${i}`),
      hash_tag: "{}",
    }]),
  );
  return { shards, aster, port: aster.ports[0] };
}

/** Sends `bytes` on a fresh connection; returns the replies read before the server closed. */
async function _sendMalformed(
  port: number,
  test: Case,
  target = "aster",
): Promise<{ replies: RespValue[]; ms: number; closed: boolean }> {
  await using bad = await RespClient.connect(port);
  bad.timeoutMs = ANSWER_WITHIN_MS;
  const started = performance.now();
  await bad.sendRaw(test.bytes);
  const replies: RespValue[] = [];
  const expected = (test.before?.length ?? 0) + 1;
  for (let i = 0; i < expected; i++) {
    try {
      replies.push(await bad.readReply());
    } catch (err) {
      const got = Deno.inspect(text(replies as RespValue));
      throw new Error(`${test.name} (${target}): reply ${i}: ${err}; replies so far ${got}`);
    }
  }
  const ms = performance.now() - started;
  const closed = await bad.closedWithin(CLOSE_WITHIN_MS);
  return { replies, ms, closed };
}

Deno.test("redis mode: malformed requests get -ERR Protocol error and only that client is closed", async () => {
  await using stack = new AsyncDisposableStack();
  const { shards, aster, port } = await _startProxy(stack);
  const bystander = new _Bystander(stack.use(await RespClient.connect(port)), "bystander:1");
  assert.deepStrictEqual(
    await bystander.client.pipeline([
      ["MSET", "0:other", "0", "1:other", "1", "2:other", "2", "malformed", "seen"],
    ]),
    ["OK"],
  );
  // A second bystander pipelines continuously while the bad clients come and go.
  const chatter = stack.use(await RespClient.connect(port));
  let stop = false;
  let chats = 0;
  let chatError: unknown = null;
  const chatting = (async () => {
    for (let i = 0; i < 100_000 && !stop; i++) {
      const replies = await chatter.pipeline([["INCR", "chatter"], ["GET", "0:other"]]);
      assert.deepStrictEqual(text(replies as RespValue), [i + 1, "0"], `chatter ${i}`);
      chats++;
    }
  })();

  const cases = _cases();
  try {
    for (const test of cases) {
      await bystander.check(`before ${test.name}`);
      // The bystander's request is in flight while the bad bytes arrive.
      const interleaved = bystander.check(`during ${test.name}`);
      const result = await _sendMalformed(port, test);
      await interleaved;
      const error = result.replies.at(-1);
      assert.ok(error instanceof RespErrorReply, `${test.name}: got ${Deno.inspect(error)}`);
      assert.equal(error.message, test.error, test.name);
      assert.deepStrictEqual(text(result.replies.slice(0, -1)), test.before ?? [], test.name);
      assert.ok(result.ms < ANSWER_WITHIN_MS, `${test.name}: answered after ${result.ms} ms`);
      assert.ok(result.closed, `${test.name}: connection left open`);
      await bystander.check(`after ${test.name}`);
      if (test.sameAsRedis) {
        const fromRedis = await _sendMalformed(shards[0].port, test, "redis-server");
        assert.deepStrictEqual(
          result.replies.at(-1),
          fromRedis.replies.at(-1),
          `redis: ${test.name}`,
        );
      }
    }
  } finally {
    stop = true;
    // A chatter failure surfaces below, unless a case failed first (that error wins).
    chatError = await chatting.then(() => null, (err) => err);
  }
  if (chatError !== null) throw chatError;
  assert.ok(chats > cases.length, `the chatter got only ${chats} round trips`);
  assert.doesNotMatch(aster.log(), /uncaught|panic/i);
});

Deno.test("redis mode: clients vanishing mid-request or with requests in flight do not disturb others", async () => {
  await using stack = new AsyncDisposableStack();
  const { aster, port } = await _startProxy(stack);
  const bystander = new _Bystander(stack.use(await RespClient.connect(port)), "bystander:2");
  const setup = stack.use(await RespClient.connect(port));
  const big = new Random(7).bytes(256 * 1024);
  assert.deepStrictEqual(
    await setup.pipeline([
      ["MSET", "0:other", "0", "1:other", "1", "2:other", "2"],
      ["SET", "big:value", big],
    ]),
    ["OK", "OK"],
  );

  // Half a request, then gone: nothing runs, nothing breaks.
  for (let i = 0; i < 5; i++) {
    await bystander.check(`before half request ${i}`);
    const half = await RespClient.connect(port);
    await half.sendRaw(`*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc${i}`);
    const interleaved = bystander.check(`during half request ${i}`);
    half.close();
    await interleaved;
    await bystander.check(`after half request ${i}`);
  }
  assert.equal(await setup.command("GET", "half"), null);

  // Many requests in flight (forwarded, split, large replies), then gone without reading.
  for (let round = 0; round < 5; round++) {
    const gone = await RespClient.connect(port);
    const commands: string[] = [];
    for (let i = 0; i < 4000; i++) {
      if (i % 100 === 0) commands.push(_resp(["GET", "big:value"]));
      else if (i % 3 === 0) commands.push(_resp(["MGET", "0:other", "1:other", "2:other"]));
      else commands.push(_resp(["INCR", `gone:${round}`]));
    }
    await gone.sendRaw(commands.join(""));
    const interleaved = bystander.check(`during abandoned round ${round}`);
    gone.close();
    await interleaved;
    await bystander.check(`after abandoned round ${round}`);
  }
  // Requests a vanished client sent still ran once each (or not at all), never twice.
  for (let round = 0; round < 5; round++) {
    const counted = Number(text(await setup.command("GET", `gone:${round}`)) ?? 0);
    assert.ok(counted >= 0 && counted <= 2640, `gone:${round} = ${counted}`);
  }
  // The proxy still takes new clients and serves big replies.
  await using fresh = await RespClient.connect(port);
  const reply = await fresh.command("GET", "big:value");
  assert.ok(reply instanceof Uint8Array && reply.length === big.length);
  assert.deepStrictEqual(reply, big);
  assert.doesNotMatch(aster.log(), /uncaught|panic/i);
});

function _resp(args: string[]): string {
  return `*${args.length}\r\n` +
    args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("");
}
