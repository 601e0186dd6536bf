/**
 * A connected raw socket: reads and writes that complete at once when the socket is ready,
 * else wait for its next epoll event; whenReadable, setNoDelay, close.
 */
import type { ProxyConn } from "../../sockets.ts";
import type { EpollLoop, Watcher } from "./epoll_loop.ts";
import {
  EAGAIN,
  EINTR,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  errno,
  int32Bytes,
  IPPROTO_TCP,
  MAX_IO_BYTES,
  MSG_NOSIGNAL,
  osError,
  SHUT_WR,
  TCP_NODELAY,
} from "./libc.ts";
import { c } from "./socket_libc.ts";

export const closedError = () => new Deno.errors.BadResource("the socket is closed");

export interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Bytes done, an Error, or undefined when the socket is not ready (EAGAIN). */
export type Attempt<T> = T | Error | undefined;

/** A connected non-blocking socket. */
export class FfiConn implements ProxyConn, Watcher {
  readonly #loop: EpollLoop;
  readonly #fd: number;
  #readable = false;
  /** The peer ended its output or the socket failed: reads never wait again (see #tryRead). */
  #inputEnded = false;
  #writable = true;
  #closed = false;
  #read: (Waiter<number | null> & { buf: Uint8Array }) | null = null;
  /** Set by whenReadable(): called on the next readiness change (or close), then cleared. */
  #onReadable: (() => void) | null = null;
  #write: (Waiter<number> & { buf: Uint8Array }) | null = null;
  /**
   * The peer's IPv4 address in two 16-bit halves (small integers, no heap number) and port,
   * when the listener learned them at accept (-1: unknown); `remoteAddr` builds the object.
   */
  #peerHigh = -1;
  #peerLow = 0;
  #peerPort = 0;

  /** Records the peer accept4 gave: an IPv4 address in two 16-bit halves, and the port. */
  setPeer(high: number, low: number, port: number): void {
    this.#peerHigh = high;
    this.#peerLow = low;
    this.#peerPort = port;
  }

  /** The peer, as Deno's sockets give it, when the listener learned it at accept. */
  get remoteAddr(): { transport: "tcp"; hostname: string; port: number } | undefined {
    if (this.#peerHigh < 0) return undefined;
    const high = this.#peerHigh;
    const low = this.#peerLow;
    return {
      transport: "tcp",
      hostname: `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`,
      port: this.#peerPort,
    };
  }

  constructor(loop: EpollLoop, fd: number) {
    this.#loop = loop;
    this.#fd = fd;
    loop.watch(fd, this);
  }

  /** The generation of this socket's events (see EpollLoop.watch). */
  watchGeneration = 0;

  /** The socket's readiness changed (called by its EpollLoop only). */
  onEpollEvent(flags: number): void {
    if (flags & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
      this.#readable = true;
      if (flags & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) this.#inputEnded = true;
      const callback = this.#onReadable;
      if (callback !== null) {
        this.#onReadable = null;
        callback();
      }
      const waiting = this.#read;
      if (waiting) {
        const outcome = this.#tryRead(waiting.buf);
        if (outcome !== undefined) {
          this.#read = null;
          settle(waiting, outcome);
        }
      }
    }
    if (flags & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
      this.#writable = true;
      const waiting = this.#write;
      if (waiting) {
        const outcome = this.#trySend(waiting.buf);
        if (outcome !== undefined) {
          this.#write = null;
          settle(waiting, outcome);
        }
      }
    }
  }

  #tryRead(buf: Uint8Array): Attempt<number | null> {
    const size = Math.min(buf.length, MAX_IO_BYTES);
    for (;;) {
      const n = c.recv(this.#fd, buf, BigInt(size), 0);
      if (n > 0) {
        // A short read drained the socket, unless its end came with the data: that edge is
        // spent, and the next recv must still be tried to see the end (0 or an error).
        if (n < size && !this.#inputEnded) this.#readable = false;
        return n;
      }
      if (n === 0) return null;
      const error = errno();
      if (error === EINTR) continue;
      if (error === EAGAIN) {
        this.#readable = false;
        return undefined;
      }
      return osError(error);
    }
  }

  #trySend(buf: Uint8Array): Attempt<number> {
    const size = Math.min(buf.length, MAX_IO_BYTES);
    for (;;) {
      const n = c.send(this.#fd, buf, BigInt(size), MSG_NOSIGNAL);
      if (n >= 0) return n;
      const error = errno();
      if (error === EINTR) continue;
      if (error === EAGAIN) {
        this.#writable = false;
        return undefined;
      }
      return osError(error);
    }
  }

  read(buf: Uint8Array): Promise<number | null> {
    let now: number | null | undefined;
    try {
      now = this.tryRead(buf);
    } catch (err) {
      return Promise.reject(err);
    }
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => this.#read = { buf, resolve, reject });
  }

  write(buf: Uint8Array): Promise<number> {
    let now: number;
    try {
      now = this.tryWrite(buf);
    } catch (err) {
      return Promise.reject(err);
    }
    if (now > 0 || buf.length === 0) return Promise.resolve(now);
    return new Promise((resolve, reject) => this.#write = { buf, resolve, reject });
  }

  tryRead(buf: Uint8Array): number | null | undefined {
    if (this.#closed) throw closedError();
    if (this.#read !== null) throw new Deno.errors.Busy("a read is pending");
    if (buf.length === 0) return 0;
    if (!this.#readable) return undefined;
    const now = this.#tryRead(buf);
    if (now instanceof Error) throw now;
    return now;
  }

  whenReadable(callback: () => void): void {
    if (this.#closed || this.#readable) queueMicrotask(callback);
    else this.#onReadable = callback;
  }

  tryWrite(buf: Uint8Array): number {
    if (this.#closed) throw closedError();
    if (this.#write !== null) throw new Deno.errors.Busy("a write is pending");
    if (buf.length === 0 || !this.#writable) return 0;
    const now = this.#trySend(buf);
    if (now instanceof Error) throw now;
    return now ?? 0;
  }

  setNoDelay(noDelay = true): void {
    c.setsockopt(this.#fd, IPPROTO_TCP, TCP_NODELAY, int32Bytes(noDelay ? 1 : 0), 4);
  }

  closeWrite(): void {
    if (this.#closed) throw closedError();
    if (c.shutdown(this.#fd, SHUT_WR) < 0) throw osError(errno(), "shutdown: ");
  }

  close(): void {
    if (this.#closed) throw closedError();
    this.#closed = true;
    this.#loop.unwatch(this.#fd);
    this.#loop.closeFd(this.#fd);
    const read = this.#read;
    const write = this.#write;
    const callback = this.#onReadable;
    this.#read = null;
    this.#write = null;
    this.#onReadable = null;
    read?.reject(closedError());
    write?.reject(closedError());
    // Not from inside close(): the reader finds the socket closed on its next try.
    if (callback !== null) queueMicrotask(callback);
  }
}

export function settle<T>(waiting: Waiter<T>, outcome: T | Error): void {
  if (outcome instanceof Error) waiting.reject(outcome);
  else waiting.resolve(outcome);
}
