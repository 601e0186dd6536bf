/**
 * Large replies go out to the client while they arrive (cut-through): a 16 MB value is not
 * held back until its last byte came from the backend, an MGET split over two shards starts
 * with its first value, and a reply cut by its backend closes that one client only.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { startFakeRedis } from "./helpers/fake_redis.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { encodeArray, encodeBulk } from "../src/protocol/resp/encoder.ts";
import { concatBytes } from "../src/protocol/bytes.ts";

const encoder = new TextEncoder();
const MB = 2 ** 20;

/** A gate a scripted reply waits at until the test opens it. */
function _gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => open = resolve);
  return { wait, open };
}

/** The value a scripted backend holds for `key`: `size` bytes that differ per key. */
function _valueOf(key: string, size = 2 * MB): Uint8Array {
  const seed = [...key].reduce((sum, c) => sum * 31 + c.charCodeAt(0), 7) & 0xff;
  return new Uint8Array(size).map((_, i) => (seed + i) % 253);
}

/** A backend that answers INFO and small commands, and `big` as the test scripts it. */
function _scripted(big: (argv: string[]) => AsyncIterable<Uint8Array> | Uint8Array | null) {
  return startFakeRedis((argv) => {
    const name = argv[0].toLowerCase();
    if (name === "info") return encodeBulk("# Server\r\nredis_version:7.0.0\r\n");
    if (name === "ping") return encoder.encode("+PONG\r\n");
    if (name === "get" && argv[1] === "small") return encodeBulk("v");
    if (name === "get" || name === "mget") return big(argv);
    return encoder.encode("+OK\r\n");
  });
}

/** Reads from `conn` until `bytes` arrived in all (or EOF, or `timeoutMs`): what arrived. */
async function _readUntil(conn: Deno.Conn, bytes: number, timeoutMs: number) {
  const chunks: Uint8Array[] = [];
  let got = 0;
  let eof = false;
  const deadline = Date.now() + timeoutMs;
  const buf = new Uint8Array(1 * MB);
  while (got < bytes && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), Math.max(1, deadline - Date.now()));
    });
    const n = await Promise.race([conn.read(buf), late]);
    clearTimeout(timer);
    if (n === "late") break;
    if (n === null) {
      eof = true;
      break;
    }
    chunks.push(buf.slice(0, n));
    got += n;
  }
  return { bytes: concatBytes(chunks), eof };
}

/** Equal bytes, or a short message naming the first difference (a diff of MBs is slow). */
function _assertBytes(got: Uint8Array, want: Uint8Array, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  const at = got.findIndex((byte, i) => byte !== want[i]);
  assert.equal(at, -1, `${label}: first difference at byte ${at}`);
}

testBothIo(
  "a large value reaches the client while the rest of it is still on its way",
  async () => {
    const gate = _gate();
    const reply = encodeBulk(_valueOf("big", 16 * MB));
    await using fake = _scripted(async function* () {
      yield reply.subarray(0, 4 * MB);
      await gate.wait;
      yield reply.subarray(4 * MB);
    });
    await using aster = await startAster([{ servers: [`127.0.0.1:${fake.port}:1 slow`] }]);
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
    await conn.write(encoder.encode("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n*1\r\n$4\r\nPING\r\n"));
    try {
      // Before: nothing at all until the backend sent the last byte.
      const start = await _readUntil(conn, 3 * MB, 10_000);
      assert.ok(start.bytes.length >= 3 * MB, `only ${start.bytes.length} bytes before the rest`);
      gate.open();
      const rest = await _readUntil(conn, reply.length + 7 - start.bytes.length, 10_000);
      const all = concatBytes([start.bytes, rest.bytes]);
      _assertBytes(all, concatBytes([reply, encoder.encode("+PONG\r\n")]), "GET big, PING");
    } finally {
      gate.open();
    }
  },
);

testBothIo(
  "a reply its backend cuts after its start went out closes that client only",
  async () => {
    const reply = encodeBulk(_valueOf("big", 8 * MB));
    await using fake = _scripted(async function* () {
      yield reply.subarray(0, 3 * MB);
      throw new Error("the backend goes away mid-reply");
    });
    await using aster = await startAster([{ servers: [`127.0.0.1:${fake.port}:1 cut`] }]);
    await using other = await RespClient.connect(aster.ports[0]);
    assert.equal(text(await other.command("GET", "small")), "v");
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
    await conn.write(encoder.encode("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n*1\r\n$4\r\nPING\r\n"));
    const got = await _readUntil(conn, reply.length, 10_000);
    assert.ok(got.eof, "closed: no reply can follow a cut one");
    assert.ok(got.bytes.length >= 1 * MB && got.bytes.length < reply.length);
    _assertBytes(got.bytes, reply.subarray(0, got.bytes.length), "the start, as sent");
    // The backend connection is replaced; the other client never noticed.
    const deadline = Date.now() + 5000;
    let answer: unknown = null;
    while (Date.now() < deadline) {
      answer = text(await other.command("GET", "small"));
      if (answer === "v") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(answer, "v");
  },
);

testBothIo(
  "an MGET over two shards starts with its first values while a part is still arriving",
  async () => {
    const gate = _gate();
    let stall = false;
    const seen: string[][] = [[], []];
    /** Shard `index`'s MGET reply; with `stall`, shard 1 stops halfway through its first value. */
    const shard = (index: number) =>
      _scripted((argv) => {
        if (argv[0].toLowerCase() !== "mget") return encodeBulk(_valueOf(argv[1]));
        const keys = argv.slice(1);
        seen[index].push(...keys);
        const reply = encodeArray(keys.map((key) => encodeBulk(_valueOf(key))));
        if (index === 0 || !stall) return reply;
        const halfway = 1 * MB;
        return (async function* () {
          yield reply.subarray(0, halfway);
          await gate.wait;
          yield reply.subarray(halfway);
        })();
      });
    await using fast = shard(0);
    await using slow = shard(1);
    await using aster = await startAster([{
      servers: [`127.0.0.1:${fast.port}:1 fast`, `127.0.0.1:${slow.port}:1 slow`],
    }]);
    // Which shard holds which key (ketama over the names): asked once, unstalled.
    const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
    {
      await using client = await RespClient.connect(aster.ports[0]);
      client.timeoutMs = 10_000;
      const all = await client.command("MGET", ...words);
      assert.ok(Array.isArray(all) && all.length === words.length);
    }
    assert.ok(seen[0].length > 0 && seen[1].length > 0, `split: ${JSON.stringify(seen)}`);
    // A key of the fast shard first, then one of the slow shard, then the rest.
    const keys = [
      seen[0][0],
      seen[1][0],
      ...words.filter((w) => w !== seen[0][0] && w !== seen[1][0]),
    ];
    const want = encodeArray(keys.map((key) => encodeBulk(_valueOf(key))));
    stall = true;
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
    await conn.write(encodeArray(["MGET", ...keys].map((arg) => encodeBulk(arg))));
    try {
      // The header and the first value, while the slow shard is halfway through the second.
      const first = encodeBulk(_valueOf(keys[0])).length + 4;
      const start = await _readUntil(conn, first, 10_000);
      assert.ok(start.bytes.length >= first, `only ${start.bytes.length} bytes before the rest`);
      gate.open();
      const rest = await _readUntil(conn, want.length - start.bytes.length, 10_000);
      _assertBytes(concatBytes([start.bytes, rest.bytes]), want, "MGET");
    } finally {
      gate.open();
    }
  },
);
