/** A small memcached client for tests: raw text or packets out, framed replies back, bounded waits. */
import { ReadBuffer } from "../../src/io/read_buffer.ts";
import { type ServerProcess, startMemcached } from "./servers.ts";
import { ReplyTimeout } from "./resp_client.ts";
import {
  type BinaryPacket,
  decodeBinaryPacket,
  MemcacheBinaryResponseFramer,
} from "../../src/protocol/memcache_binary/binary.ts";

const LF = 0x0a; // "\n"
const CR = 0x0d; // "\r"
const encoder = new TextEncoder();

/** Bytes as a string, one char per byte (binary safe, unlike UTF-8). */
export function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** A string of byte-sized chars as bytes (the inverse of latin1()). */
export function bytesOf(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** One connection to memcached or Aster. */
export class MemcacheClient implements AsyncDisposable {
  readonly #conn: Deno.TcpConn;
  readonly #buffer = new ReadBuffer();
  readonly #framer = new MemcacheBinaryResponseFramer({ maxValueBytes: 64 * 1024 * 1024 });
  #closed = false;
  #reading: Promise<number | null> | null = null;
  /** Longest wait for one reply, ms. */
  timeoutMs = 5000;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<MemcacheClient> {
    return new MemcacheClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes raw bytes (a string is sent one byte per char). */
  async send(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? bytesOf(data) : data;
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Sends `data` and reads one text reply. */
  async request(data: Uint8Array | string): Promise<string> {
    await this.send(data);
    return await this.readText();
  }

  /**
   * Reads one text reply: `VALUE` blocks up to `END` (or an error line), a `VA` line and
   * its data block, or any single line. Throws on timeout, close, or a malformed reply.
   */
  async readReply(): Promise<Uint8Array> {
    return await this.#next((buf, start, end) => _frameText(buf, start, end));
  }

  /** readReply() as a latin1 string. */
  async readText(): Promise<string> {
    return latin1(await this.readReply());
  }

  /** Reads text replies until one equals `last` (included), at most `max` of them. */
  async readUntil(last: string, max: number): Promise<string[]> {
    const replies: string[] = [];
    for (let i = 0; i < max; i++) {
      const reply = await this.readText().catch((err) => {
        throw new Error(`${err.message} after ${JSON.stringify(replies)}`, { cause: err });
      });
      replies.push(reply);
      if (reply === last) return replies;
    }
    throw new Error(`no ${JSON.stringify(last)} within ${max} replies: ${JSON.stringify(replies)}`);
  }

  /** Reads one binary response packet (a copy). */
  async readPacket(): Promise<BinaryPacket> {
    const bytes = await this.#next((buf, start, end) => this.#framer.frame(buf, start, end));
    return decodeBinaryPacket(bytes);
  }

  /** True when the peer closes within `ms`; bytes that arrive meanwhile are skipped. */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    this.#buffer.start = this.#buffer.end;
    try {
      for (let i = 0; i < 10_000; i++) {
        if (await this.#readWithin(deadline - Date.now()) === null) return true;
        this.#buffer.start = this.#buffer.end;
      }
      return false;
    } catch (err) {
      if (err instanceof ReplyTimeout) return false;
      return true; // reset by peer counts as closed
    }
  }

  /** Unread bytes that arrive within `ms` (for "no reply expected" checks). */
  async drain(ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    try {
      for (let i = 0; i < 10_000; i++) {
        if (await this.#readWithin(deadline - Date.now()) === null) break;
      }
    } catch (err) {
      if (!(err instanceof ReplyTimeout)) throw err;
    }
    const b = this.#buffer;
    const out = latin1(b.data.subarray(b.start, b.end));
    b.start = b.end;
    return out;
  }

  /**
   * The bytes that arrive next, unframed (buffered ones first), within `ms`; "" when the
   * peer has closed. Throws ReplyTimeout when nothing arrives in time.
   */
  async readSome(ms: number): Promise<string> {
    const b = this.#buffer;
    if (b.length === 0 && await this.#readWithin(ms) === null) return "";
    const out = latin1(b.data.subarray(b.start, b.end));
    b.start = b.end;
    return out;
  }

  async #next(frame: (buf: Uint8Array, start: number, end: number) => number): Promise<Uint8Array> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const b = this.#buffer;
      if (b.length > 0) {
        const size = frame(b.data, b.start, b.end);
        if (size >= 0) {
          const bytes = b.data.slice(b.start, b.start + size);
          b.start += size;
          return bytes;
        }
      }
      if (await this.#readWithin(deadline - Date.now()) === null) {
        throw new Error("connection closed by server");
      }
    }
  }

  async #readWithin(ms: number): Promise<number | null> {
    if (ms <= 0) throw new ReplyTimeout();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), ms);
    });
    // A read that lost a race is still under way (into the buffer's free tail): reuse it,
    // or the bytes it gets would be lost.
    this.#reading ??= this.#conn.read(this.#buffer.freeSpace());
    try {
      const n = await Promise.race([this.#reading, timeout]);
      // Thrown here rather than from the timer, so the stack shows the waiting caller.
      if (n === "timeout") throw new ReplyTimeout();
      this.#reading = null;
      if (n !== null) this.#buffer.commit(n);
      return n;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reading?.catch(() => {}); // a read left by a timeout fails on close: expected
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Size of the complete text reply at `buf[start]`, or -1; stateless (rescans its lines). */
function _frameText(buf: Uint8Array, start: number, end: number): number {
  let at = start;
  let inValues = false;
  for (;;) {
    const lf = buf.subarray(at, end).indexOf(LF);
    if (lf < 0) return -1;
    const next = at + lf + 1;
    if (lf === 0 || buf[next - 2] !== CR) throw new Error(`reply line without CRLF at ${at}`);
    const line = latin1(buf.subarray(at, next - 2));
    const words = line.split(" ");
    const block = words[0] === "VALUE" ? 3 : words[0] === "VA" && !inValues ? 1 : -1;
    if (block < 0) {
      if (inValues && line !== "END" && !/^(ERROR|CLIENT_ERROR|SERVER_ERROR)( |$)/.test(line)) {
        throw new Error(`unexpected line after VALUE blocks: ${JSON.stringify(line)}`);
      }
      return next - start;
    }
    const length = Number(words[block]);
    if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad header: ${line}`);
    const dataEnd = next + length;
    if (dataEnd + 2 > end) return -1;
    if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
      throw new Error(`data block of ${JSON.stringify(line)} not followed by CRLF`);
    }
    at = dataEnd + 2;
    if (block === 1) return at - start;
    inValues = true;
  }
}

/** UTF-8 bytes of `text` (keys and values in binary tests). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The values of `keys` that the memcached on `port` holds (text gets of 100 keys at a time). */
export async function valuesOn(port: number, keys: string[]): Promise<Map<string, string>> {
  await using client = await MemcacheClient.connect(port);
  const found = new Map<string, string>();
  for (let i = 0; i < keys.length; i += 100) {
    const reply = await client.request(`get ${keys.slice(i, i + 100).join(" ")}\r\n`);
    for (const block of parseValues(reply)) found.set(block.key, block.data);
  }
  return found;
}

/** One `VALUE <key> <flags> <bytes> [<cas>]` block of a retrieval reply. */
export interface ValueBlock {
  key: string;
  flags: string;
  cas: string | null;
  data: string;
}

/** The VALUE blocks of a text retrieval reply (as readText() returns it), in order. */
export function parseValues(reply: string): ValueBlock[] {
  const blocks: ValueBlock[] = [];
  let at = 0;
  while (reply.startsWith("VALUE ", at)) {
    const eol = reply.indexOf("\r\n", at);
    const [, key, flags, bytes, cas] = reply.slice(at, eol).split(" ");
    const data = reply.slice(eol + 2, eol + 2 + Number(bytes));
    blocks.push({ key, flags, cas: cas ?? null, data });
    at = eol + 2 + Number(bytes) + 2;
  }
  return blocks;
}

/**
 * Starts memcached owned by `stack`, stopped with SIGKILL (by its PID): it holds nothing
 * worth a graceful exit, and SIGTERM costs it ~0.75 s.
 */
export async function useMemcached(
  stack: AsyncDisposableStack,
  opts: { port?: number; args?: string[] } = {},
): Promise<ServerProcess> {
  const server = await startMemcached(opts);
  stack.defer(async () => {
    server.kill("SIGKILL");
    await server.stop();
  });
  return server;
}
