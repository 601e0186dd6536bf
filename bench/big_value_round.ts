/**
 * One big-value round through a proxy: a pipeline of 5 SETs of one value, then an MGET of the
 * 5 keys, timed from the client (`bench/big_values.ts` and the bench's `bigvalues` section).
 *
 * The client is lean, like redis-benchmark: the SET pipeline is encoded before the clock
 * starts, and the MGET reply is read into one reused buffer and checked by its framing (the
 * array, each bulk's length, each value's first and last byte, the CRLFs) without assembling
 * the values. A general client spent more of the round's time than the proxy did (it copied
 * the 80 MB request into one buffer, and grew and re-framed its read buffer), so it measured
 * itself more than the proxy.
 *
 * Usage: deno run --allow-net bench/big_value_round.ts --port PORT [--mb 16] [--rounds 3]
 * runs one warm-up round of MB-megabyte values through PORT, then ROUNDS rounds, and prints the
 * median seconds as JSON (`{"set": s, "mget": s}`): the bench runs it so, on the load
 * generators' core. The warm-up keeps the client's own cold start (its JIT, its first page
 * faults) out of what is measured.
 */
import { parseArgs } from "node:util";
import { processCpuSeconds } from "./cpu_pinning.ts";

// Over 2 shards (ketama, fnv1a_64, as in tests/helpers' configs) k0, k1, k2 and k10, k11
// fall on different servers: the MGET is split in 2 parts whose values interleave.
const KEYS = ["k0", "k10", "k1", "k11", "k2"];
const encoder = new TextEncoder();
const OK_REPLIES = encoder.encode("+OK\r\n".repeat(KEYS.length));
const CR = 13;
const LF = 10;

/** The SET pipeline's bytes: one buffer, so the timed part only writes. */
function _setPipeline(value: Uint8Array): Uint8Array {
  const heads = KEYS.map((key) =>
    encoder.encode(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n`)
  );
  const size = heads.reduce((sum, head) => sum + head.length + value.length + 2, 0);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const head of heads) {
    bytes.set(head, at);
    bytes.set(value, at += head.length);
    bytes[at += value.length] = CR;
    bytes[at + 1] = LF;
    at += 2;
  }
  return bytes;
}

async function _writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Checks the MGET reply of `KEYS.length` values equal to `value` as it streams in. */
export class MgetReplyCheck {
  /** Bytes of the header line under way (`*5`, `$16777216`). */
  #line: number[] = [];
  /** -1: the array header; 0..n-1: that value's header; n: done. */
  #item = -1;
  /** Body bytes of the current value still to come, then its CRLF (2 more). */
  #bodyLeft = -1;
  readonly #value: Uint8Array;

  constructor(value: Uint8Array) {
    this.#value = value;
  }

  get done(): boolean {
    return this.#item === KEYS.length;
  }

  /** Consumes `chunk`; throws on anything but the expected reply. */
  feed(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.done) throw new Error("MGET: bytes after the reply");
      if (this.#bodyLeft < 0) {
        const byte = chunk[at++];
        if (byte !== LF) {
          this.#line.push(byte);
          continue;
        }
        this.#header(String.fromCharCode(...this.#line));
        this.#line = [];
        continue;
      }
      const valueLength = this.#value.length;
      const first = valueLength + 2 - this.#bodyLeft; // the offset of chunk[at] in the value
      const take = Math.min(this.#bodyLeft, chunk.length - at);
      // The first and last byte of the value and its CRLF; the rest only counted.
      for (const offset of [0, valueLength - 1, valueLength, valueLength + 1]) {
        if (offset < first || offset >= first + take) continue;
        const expected = offset < valueLength
          ? this.#value[offset]
          : offset === valueLength
          ? CR
          : LF;
        if (chunk[at + offset - first] !== expected) {
          throw new Error(`MGET: value ${this.#item} differs at byte ${offset}`);
        }
      }
      this.#bodyLeft -= take;
      at += take;
      if (this.#bodyLeft === 0) {
        this.#bodyLeft = -1;
        this.#item++;
      }
    }
  }

  #header(line: string): void {
    const expected = this.#item < 0 ? `*${KEYS.length}\r` : `$${this.#value.length}\r`;
    if (line !== expected) throw new Error(`MGET: got ${JSON.stringify(line)}`);
    if (this.#item < 0) this.#item = 0;
    else this.#bodyLeft = this.#value.length + 2;
  }
}

/** Seconds of one 5-SET pipeline and one MGET of the 5 values through `port`. */
export async function bigValueRound(
  port: number,
  value: Uint8Array,
  pid?: number,
  setPipeline = _setPipeline(value),
): Promise<{ set: number; mget: number; setCpu: number; mgetCpu: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 30_000);
  try {
    const buffer = new Uint8Array(4 * 2 ** 20);
    const cpu = () => pid === undefined ? Promise.resolve(0) : processCpuSeconds(pid);
    const cpu0 = await cpu();
    let started = performance.now();
    await _writeAll(conn, setPipeline);
    let got = 0;
    while (got < OK_REPLIES.length) {
      const n = await conn.read(buffer.subarray(got, OK_REPLIES.length));
      if (n === null) throw new Error("SET: connection closed");
      got += n;
    }
    const set = (performance.now() - started) / 1000;
    const cpu1 = await cpu();
    if (!buffer.subarray(0, got).every((byte, i) => byte === OK_REPLIES[i])) {
      throw new Error(`SET failed: ${new TextDecoder().decode(buffer.subarray(0, got))}`);
    }
    const check = new MgetReplyCheck(value);
    started = performance.now();
    await _writeAll(
      conn,
      encoder.encode(
        `*${KEYS.length + 1}\r\n$4\r\nMGET\r\n` +
          KEYS.map((k) => `$${k.length}\r\n${k}\r\n`).join(""),
      ),
    );
    while (!check.done) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("MGET: connection closed");
      check.feed(buffer.subarray(0, n));
    }
    const mget = (performance.now() - started) / 1000;
    const cpu2 = await cpu();
    return { set, mget, setCpu: cpu1 - cpu0, mgetCpu: cpu2 - cpu1 };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

if (import.meta.main) {
  const { values: flags } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      mb: { type: "string", default: "16" },
      rounds: { type: "string", default: "3" },
    },
  });
  if (flags.port === undefined) throw new Error("--port PORT is required");
  const port = Number(flags.port);
  const value = new Uint8Array(Number(flags.mb) * 2 ** 20).fill(0x61);
  const setPipeline = _setPipeline(value);
  await bigValueRound(port, value, undefined, setPipeline);
  const sets: number[] = [];
  const mgets: number[] = [];
  for (let round = 0; round < Math.max(1, Number(flags.rounds)); round++) {
    const { set, mget } = await bigValueRound(port, value, undefined, setPipeline);
    sets.push(set);
    mgets.push(mget);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(JSON.stringify({ set: median(sets), mget: median(mgets) }));
}
