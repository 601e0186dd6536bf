/** A small RESP client for tests: commands, raw bytes, pipelines, with bounded waits. */
import { RespReplyFramer } from "../../src/protocol/resp/reply_framer.ts";
import { decodeReplyValue, type RespValue } from "../../src/protocol/resp/reply_value.ts";
import { encodeCommand } from "../../src/protocol/resp/encoder.ts";
import { ReadBuffer } from "../../src/io/read_buffer.ts";

export { RespErrorReply, type RespValue } from "../../src/protocol/resp/reply_value.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text of a bulk reply, or the value unchanged. */
export function text(value: RespValue): unknown {
  if (value instanceof Uint8Array) return decoder.decode(value);
  if (Array.isArray(value)) return value.map(text);
  return value;
}

/** One connection to a RESP server. */
export class RespClient implements AsyncDisposable {
  readonly #conn: Deno.TcpConn;
  readonly #buffer = new ReadBuffer();
  readonly #framer = new RespReplyFramer();
  #closed = false;
  /** Longest wait for one reply, ms. */
  timeoutMs = 5000;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RespClient> {
    return new RespClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends one command and returns its reply. */
  async command(...args: (string | Uint8Array)[]): Promise<RespValue> {
    await this.sendRaw(encodeCommand(args.map(_bytes)));
    return await this.readReply();
  }

  /** Sends one command and returns its reply's RESP bytes (to compare with redis-server's). */
  async rawCommand(...args: (string | Uint8Array)[]): Promise<Uint8Array> {
    await this.sendRaw(encodeCommand(args.map(_bytes)));
    return await this.readRawReply();
  }

  /** Sends every command in one write and returns their replies in order. */
  async pipeline(commands: (string | Uint8Array)[][]): Promise<RespValue[]> {
    const raw = await this.rawPipeline(commands);
    return raw.map((reply) => decodeReplyValue(reply).value);
  }

  /** Like pipeline(), the replies as their RESP bytes (to compare with redis-server's). */
  async rawPipeline(commands: (string | Uint8Array)[][]): Promise<Uint8Array[]> {
    const parts = commands.map((args) => encodeCommand(args.map(_bytes)));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    // Write and read at once (a large pipeline fills the socket both ways); a write that
    // fails while reading fails is reported by the read, so its rejection is handled here.
    const writing = this.sendRaw(out);
    writing.catch(() => {});
    const replies: Uint8Array[] = [];
    for (let i = 0; i < commands.length; i++) replies.push(await this.readRawReply());
    await writing;
    return replies;
  }

  /** Writes raw bytes. */
  async sendRaw(bytes: Uint8Array | string): Promise<void> {
    const data = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
    let at = 0;
    while (at < data.length) at += await this.#conn.write(data.subarray(at));
  }

  /** Half-closes: sends FIN after what was written, and reads on. */
  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  /** Reads one reply; throws on timeout or when the server closes first. */
  async readReply(): Promise<RespValue> {
    return decodeReplyValue(await this.readRawReply()).value;
  }

  /** Reads one reply as its RESP bytes (for byte-for-byte comparisons with redis-server). */
  async readRawReply(): Promise<Uint8Array> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const buffer = this.#buffer;
      if (buffer.length > 0) {
        const size = this.#framer.frame(buffer.data, buffer.start, buffer.end);
        if (size >= 0) {
          const bytes = buffer.data.slice(buffer.start, buffer.start + size);
          buffer.start += size;
          return bytes;
        }
      }
      const n = await this.#readWithin(deadline - Date.now());
      if (n === null) throw new Error("connection closed by server");
    }
  }

  /** True when the server closes the connection within `ms` (pending bytes are skipped). */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    try {
      for (;;) {
        if (await this.#readWithin(deadline - Date.now()) === null) return true;
        this.#buffer.start = this.#buffer.end;
      }
    } catch (err) {
      if (err instanceof ReplyTimeout) return false;
      return true; // reset by peer counts as closed
    }
  }

  async #readWithin(ms: number): Promise<number | null> {
    if (ms <= 0) throw new ReplyTimeout();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ReplyTimeout()), ms);
    });
    try {
      const n = await Promise.race([this.#conn.read(this.#buffer.freeSpace()), timeout]);
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

/** No reply arrived in time. */
export class ReplyTimeout extends Error {
  constructor() {
    super("timed out waiting for a reply");
  }
}

function _bytes(arg: string | Uint8Array): Uint8Array {
  return typeof arg === "string" ? encoder.encode(arg) : arg;
}
