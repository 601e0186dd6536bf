/** Raw reply bytes, for tests that hold Aster to redis-server byte for byte. */
import { RespReplyFramer } from "../../src/protocol/resp/reply_framer.ts";
import { encodeCommand } from "../../src/protocol/resp/encoder.ts";
import { ReadBuffer } from "../../src/io/read_buffer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A connection that sends commands and returns each reply's raw bytes. */
export class RawClient implements AsyncDisposable {
  readonly #conn: Deno.TcpConn;
  readonly #buffer = new ReadBuffer();
  readonly #framer = new RespReplyFramer();
  /** Longest wait for one reply, ms. */
  timeoutMs = 10_000;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends one command, returns its reply's bytes. */
  async command(...args: (string | Uint8Array)[]): Promise<Uint8Array> {
    const bytes = encodeCommand(args.map((a) => typeof a === "string" ? encoder.encode(a) : a));
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
    return await this.#read();
  }

  /** Sends one command, returns its reply as text (latin1-safe for comparisons). */
  async text(...args: (string | Uint8Array)[]): Promise<string> {
    return decoder.decode(await this.command(...args));
  }

  async #read(): Promise<Uint8Array> {
    const buffer = this.#buffer;
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      if (buffer.length > 0) {
        const size = this.#framer.frame(buffer.data, buffer.start, buffer.end);
        if (size >= 0) {
          const reply = buffer.data.slice(buffer.start, buffer.start + size);
          buffer.start += size;
          return reply;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a reply");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#conn.read(buffer.freeSpace()),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timed out waiting for a reply")), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (n === null) throw new Error("connection closed before the reply was complete");
      buffer.commit(n);
    }
  }

  close(): void {
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

/** True when two replies are the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The start of a reply as readable text, for assertion messages. */
export function showRaw(reply: Uint8Array, max = 200): string {
  return JSON.stringify(decoder.decode(reply.subarray(0, max))) +
    (reply.length > max ? `... (${reply.length} bytes)` : "");
}
