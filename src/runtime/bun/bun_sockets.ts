/**
 * Bun's own TCP sockets (`Bun.listen`, `Bun.connect`) as the runtime's `SocketApi`. Bun
 * calls back with each chunk it reads; a `BunConn` queues the chunks and hands them out
 * through `tryRead`/`whenReadable` (no promise per read, as `io = "ffi"`'s sockets) or
 * `read`. Past HIGH_WATER queued bytes it pauses the socket, so a client that sends faster
 * than Aster serves it is held back by TCP, not by memory.
 */
import type { ListenAddress, ProxyConn, ProxyListener, SocketApi } from "../sockets.ts";
import { bunGlobal, type BunSocket, type BunSocketHandler, type BunTcpServer } from "./bun_api.ts";
import { badResource, osError } from "./bun_errors.ts";

/**
 * How long a closed connection may wait for its peer's FIN before it is cut: `end()` sends
 * ours and Bun closes the socket when the peer answers, which a stuck peer never does.
 */
const LINGER_MS = 10_000;

/** Queued bytes past which the socket stops reading. */
const HIGH_WATER = 256 * 1024;

type Resolvers<T> = { resolve(value: T): void; reject(err: unknown): void };

/**
 * Readable callbacks due, run together once per event-loop turn. Bun calls each socket's
 * callback on its own and drains the microtasks after each, so waking a session right in
 * its callback would flush the backend write batch (a microtask) once per client: one
 * send per request. Run from one `setImmediate`, every session that became readable in
 * this poll queues its requests first, and the batch goes out in one send, as on Deno.
 */
let due: (() => void)[] = [];
let spare: (() => void)[] = [];

function _runDue(): void {
  const callbacks = due;
  due = spare;
  for (let i = 0; i < callbacks.length; i++) callbacks[i]();
  callbacks.length = 0;
  spare = callbacks;
}

function _callSoon(callback: () => void): void {
  if (due.length === 0) setImmediate(_runDue);
  due.push(callback);
}

/** One TCP connection, fed by Bun's socket callbacks. */
export class BunConn implements ProxyConn {
  readonly #socket: BunSocket<BunConn>;
  /** Chunks read and not yet taken; the first from `#offset`. */
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #queued = 0;
  #paused = false;
  #eof = false;
  #error: Error | null = null;
  #closed = false;
  /** Bun closed the socket. */
  #gone = false;
  #readable: (() => void) | null = null;
  #reader: { buf: Uint8Array } & Resolvers<number | null> | null = null;
  #writer: { buf: Uint8Array } & Resolvers<number> | null = null;

  constructor(socket: BunSocket<BunConn>) {
    this.#socket = socket;
    socket.data = this;
  }

  /** The peer, as Deno's `TcpConn` names it (the listener logs it). */
  get remoteAddr(): { transport: "tcp"; hostname: string; port: number } {
    return {
      transport: "tcp",
      hostname: this.#socket.remoteAddress,
      port: this.#socket.remotePort ?? 0,
    };
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(badResource());
    if (this.#queued > 0) return Promise.resolve(this.#take(buf));
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#eof) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#reader = { buf, resolve, reject };
    });
  }

  tryRead(buf: Uint8Array): number | null | undefined {
    if (this.#closed) throw badResource();
    if (this.#queued > 0) return this.#take(buf);
    if (this.#error !== null) throw this.#error;
    return this.#eof ? null : undefined;
  }

  whenReadable(callback: () => void): void {
    if (this.#queued > 0 || this.#eof || this.#closed) {
      queueMicrotask(callback);
      return;
    }
    this.#readable = callback;
  }

  tryWrite(buf: Uint8Array): number {
    if (this.#closed || this.#writer !== null) return 0;
    const n = this.#socket.write(buf);
    return n > 0 ? n : 0;
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(badResource());
    if (this.#error !== null) return Promise.reject(this.#error);
    const n = this.#socket.write(buf);
    if (n > 0) return Promise.resolve(n);
    // Not on the peer's FIN alone: a half-closed client still reads its replies.
    if (n < 0 || this.#gone) return Promise.reject(osError({ code: "EPIPE" }));
    // The kernel's buffer is full: Bun calls drain when it has room.
    return new Promise((resolve, reject) => {
      this.#writer = { buf, resolve, reject };
    });
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  closeWrite(): void {
    if (this.#closed || this.#gone) throw badResource();
    this.#socket.shutdown();
  }

  close(): void {
    if (this.#closed) throw badResource();
    this.#closed = true;
    this.#chunks = [];
    this.#queued = 0;
    // Half-open sockets (a client may send FIN and still read its replies): end() sends
    // FIN after what the kernel holds; Bun closes the socket once the peer has sent its own.
    this.#socket.end();
    if (!this.#gone) {
      const socket = this.#socket;
      const timer = setTimeout(() => this.#gone || socket.terminate(), LINGER_MS);
      (timer as unknown as { unref?(): void }).unref?.();
    }
    this.#settle(badResource());
  }

  /** Bun read `data`: it is the chunk's own copy, kept as it is. */
  onData(data: Uint8Array): void {
    if (this.#closed) return;
    this.#chunks.push(data);
    this.#queued += data.length;
    if (this.#queued > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#wake();
  }

  /** The peer sent FIN (or the socket closed, with `error` when it failed). */
  onEnd(error?: Error): void {
    this.#eof = true;
    if (error !== undefined && this.#error === null) this.#error = osError(error);
    if (this.#writer !== null && error !== undefined) this.#settle(this.#error!);
    this.#wake();
  }

  /** The socket is gone: pending reads see EOF (or its error), pending writes fail. */
  onClose(error?: Error): void {
    this.#gone = true;
    this.onEnd(error);
    this.#settle(this.#error ?? osError({ code: "EPIPE" }));
  }

  /** Bun has room to write again. */
  onDrain(): void {
    const writer = this.#writer;
    if (writer === null) return;
    const n = this.#socket.write(writer.buf);
    if (n === 0) return;
    this.#writer = null;
    if (n > 0) writer.resolve(n);
    else writer.reject(osError({ code: "EPIPE" }));
  }

  /** Fails the pending write (and read, once closed) with `err`. */
  #settle(err: Error): void {
    const writer = this.#writer;
    this.#writer = null;
    writer?.reject(err);
    if (this.#closed) {
      const reader = this.#reader;
      this.#reader = null;
      reader?.reject(err);
      this.#wake();
    }
  }

  /** Completes a pending read and calls the readable callback. */
  #wake(): void {
    const reader = this.#reader;
    if (reader !== null) {
      this.#reader = null;
      if (this.#queued > 0) reader.resolve(this.#take(reader.buf));
      else if (this.#error !== null) reader.reject(this.#error);
      else reader.resolve(null);
    }
    const callback = this.#readable;
    if (callback !== null) {
      this.#readable = null;
      _callSoon(callback);
    }
  }

  /** Copies queued bytes into `buf`: as many as fit. */
  #take(buf: Uint8Array): number {
    let n = 0;
    const chunks = this.#chunks;
    while (n < buf.length && chunks.length > 0) {
      const chunk = chunks[0];
      const count = Math.min(buf.length - n, chunk.length - this.#offset);
      buf.set(
        this.#offset === 0 && count === chunk.length
          ? chunk
          : chunk.subarray(this.#offset, this.#offset + count),
        n,
      );
      n += count;
      this.#offset += count;
      if (this.#offset === chunk.length) {
        chunks.shift();
        this.#offset = 0;
      }
    }
    this.#queued -= n;
    if (this.#paused && this.#queued < HIGH_WATER / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
    return n;
  }
}

/** Socket callbacks shared by every connection: each finds its `BunConn` in `socket.data`. */
const CONN_EVENTS: BunSocketHandler<BunConn> = {
  data: (socket, data) => socket.data.onData(data),
  drain: (socket) => socket.data?.onDrain(),
  end: (socket) => socket.data?.onEnd(),
  close: (socket, error) => socket.data?.onClose(error),
  error: (socket, error) => socket.data?.onClose(error),
};

/** A listening socket: connections Bun accepted wait in a queue for `accept()`. */
class BunListener implements ProxyListener {
  readonly #server: BunTcpServer;
  readonly #accepted: BunConn[] = [];
  #waiting: Resolvers<ProxyConn> | null = null;
  #closed = false;

  constructor(address: ListenAddress) {
    try {
      this.#server = bunGlobal().listen<BunConn>({
        hostname: address.hostname,
        port: address.port,
        reusePort: address.reusePort,
        allowHalfOpen: true,
        socket: { ...CONN_EVENTS, open: (socket) => this.#onOpen(new BunConn(socket)) },
      });
    } catch (err) {
      throw osError(err);
    }
  }

  accept(): Promise<ProxyConn> {
    if (this.#closed) return Promise.reject(badResource("the listener is closed"));
    const conn = this.#accepted.shift();
    if (conn !== undefined) return Promise.resolve(conn);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  close(): void {
    if (this.#closed) throw badResource("the listener is closed");
    this.#closed = true;
    // Open connections stay: they belong to their sessions (graceful stop drains them).
    this.#server.stop(false);
    for (const conn of this.#accepted.splice(0)) conn.close();
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(badResource("the listener is closed"));
  }

  #onOpen(conn: BunConn): void {
    if (this.#closed) {
      conn.close();
      return;
    }
    const waiting = this.#waiting;
    if (waiting === null) {
      this.#accepted.push(conn);
      return;
    }
    this.#waiting = null;
    waiting.resolve(conn);
  }
}

/** Connects, resolving once the connection is open; errors are worded as the OS's. */
async function _connect(address: { hostname: string; port: number }): Promise<ProxyConn> {
  let conn: BunConn | undefined;
  try {
    await bunGlobal().connect<BunConn>({
      hostname: address.hostname,
      port: address.port,
      allowHalfOpen: true,
      socket: {
        ...CONN_EVENTS,
        open: (socket) => {
          conn = new BunConn(socket);
        },
      },
    });
  } catch (err) {
    throw osError(err);
  }
  return conn!;
}

/** Bun's own sockets. */
export const BUN_SOCKETS: SocketApi = {
  name: "bun",
  rawSockets: () => 0,
  listen: (address) => new BunListener(address),
  connect: _connect,
};
