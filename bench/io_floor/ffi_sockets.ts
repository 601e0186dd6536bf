/**
 * Measurement only: stand-ins for `Deno.listen` and `Deno.connect` on raw sockets, all on one
 * epoll set driven through Deno's FFI, so Aster's data plane can run unchanged on them
 * (`aster_on_ffi.ts`) and the bench can show what leaving Deno's socket ops would save.
 * IPv4 literals only; anything else goes to Deno's own calls. Needs --allow-ffi, which lifts
 * Deno's sandbox: Aster itself does not use this (bench/README.md, round 4).
 */

import {
  AF_INET,
  c,
  EADDRINUSE,
  EAGAIN,
  EINPROGRESS,
  EINTR,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  errno,
  EVENT_DATA_AT,
  EVENT_SIZE,
  int32Bytes,
  IPPROTO_TCP,
  ipv4Address,
  MSG_NOSIGNAL,
  SHUT_WR,
  SO_ERROR,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "./libc.ts";

const MAX_EVENTS = 256;
/** Longest off-thread wait, ms (the loop then looks again). */
const WAIT_MS = 100;
/** Busy turns in a row after which the loop lets timers and other tasks run. */
const TURNS_BEFORE_YIELD = 64;

const epoll = c.epoll_create1(0);
if (epoll < 0) throw new Error(`epoll_create1 failed: errno ${errno()}`);
const onEvents = new Map<number, (flags: number) => void>();
const event = new Uint8Array(EVENT_SIZE);
const eventView = new DataView(event.buffer);

/** Edge-triggered: each socket hears once per change of readiness, in or out. */
function _watch(fd: number, onEvent: (flags: number) => void): void {
  onEvents.set(fd, onEvent);
  eventView.setUint32(0, (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) >>> 0, true);
  eventView.setUint32(EVENT_DATA_AT, fd, true);
  c.epoll_ctl(epoll, EPOLL_CTL_ADD, fd, event);
}

function _unwatch(fd: number): void {
  onEvents.delete(fd);
  c.epoll_ctl(epoll, EPOLL_CTL_DEL, fd, event);
}

const _closed = () => new Deno.errors.BadResource("the socket is closed");

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** The part of Deno.TcpConn Aster uses, on a non-blocking socket. */
class FfiConn {
  readonly #fd: number;
  #readable = false;
  #writable = true;
  #closed = false;
  #read: (Waiter<number | null> & { buf: Uint8Array }) | null = null;
  #write: (Waiter<number> & { buf: Uint8Array }) | null = null;

  constructor(fd: number) {
    this.#fd = fd;
    _watch(fd, (flags) => this.#onEvent(flags));
  }

  #onEvent(flags: number): void {
    if (flags & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
      this.#readable = true;
      const waiting = this.#read;
      if (waiting) this.#settle(waiting, this.#tryRead(waiting.buf), () => this.#read = null);
    }
    if (flags & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
      this.#writable = true;
      const waiting = this.#write;
      if (waiting) this.#settle(waiting, this.#trySend(waiting.buf), () => this.#write = null);
    }
  }

  #settle<T>(waiting: Waiter<T>, outcome: T | Error | undefined, clear: () => void): void {
    if (outcome === undefined) return;
    clear();
    if (outcome instanceof Error) waiting.reject(outcome);
    else waiting.resolve(outcome);
  }

  /** Bytes read, null at EOF, an Error, or undefined when nothing is there yet. */
  #tryRead(buf: Uint8Array): number | null | Error | undefined {
    for (;;) {
      const n = Number(c.recv(this.#fd, buf, BigInt(buf.length), 0));
      if (n > 0) {
        if (n < buf.length) this.#readable = false; // a short read drained the socket
        return n;
      }
      if (n === 0) return null;
      const error = errno();
      if (error === EINTR) continue;
      if (error === EAGAIN) {
        this.#readable = false;
        return undefined;
      }
      return new Deno.errors.ConnectionReset(`recv failed: errno ${error}`);
    }
  }

  #trySend(buf: Uint8Array): number | Error | undefined {
    for (;;) {
      const n = Number(c.send(this.#fd, buf, BigInt(buf.length), MSG_NOSIGNAL));
      if (n >= 0) return n;
      const error = errno();
      if (error === EINTR) continue;
      if (error === EAGAIN) {
        this.#writable = false;
        return undefined;
      }
      return new Deno.errors.BrokenPipe(`send failed: errno ${error}`);
    }
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(_closed());
    if (buf.length === 0) return Promise.resolve(0);
    const now = this.#readable ? this.#tryRead(buf) : undefined;
    if (now instanceof Error) return Promise.reject(now);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => this.#read = { buf, resolve, reject });
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(_closed());
    const now = this.#writable ? this.#trySend(buf) : undefined;
    if (now instanceof Error) return Promise.reject(now);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => this.#write = { buf, resolve, reject });
  }

  setNoDelay(noDelay = true): void {
    c.setsockopt(this.#fd, IPPROTO_TCP, TCP_NODELAY, int32Bytes(noDelay ? 1 : 0), 4);
  }

  closeWrite(): Promise<void> {
    c.shutdown(this.#fd, SHUT_WR);
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) throw _closed();
    this.#closed = true;
    _unwatch(this.#fd);
    c.close(this.#fd);
    this.#read?.reject(_closed());
    this.#write?.reject(_closed());
    this.#read = null;
    this.#write = null;
  }
}

/** The part of Deno.TcpListener Aster uses. */
class FfiListener {
  readonly #fd: number;
  readonly addr: Deno.NetAddr;
  #readable = true;
  #closed = false;
  #accept: Waiter<FfiConn> | null = null;

  constructor(fd: number, addr: Deno.NetAddr) {
    this.#fd = fd;
    this.addr = addr;
    _watch(fd, () => {
      this.#readable = true;
      const waiting = this.#accept;
      const conn = waiting ? this.#tryAccept() : undefined;
      if (waiting && conn) {
        this.#accept = null;
        waiting.resolve(conn);
      }
    });
  }

  #tryAccept(): FfiConn | undefined {
    const fd = c.accept4(this.#fd, null, null, SOCK_NONBLOCK);
    if (fd >= 0) return new FfiConn(fd);
    this.#readable = false;
    return undefined;
  }

  accept(): Promise<FfiConn> {
    if (this.#closed) return Promise.reject(_closed());
    const conn = this.#readable ? this.#tryAccept() : undefined;
    if (conn) return Promise.resolve(conn);
    return new Promise((resolve, reject) => this.#accept = { resolve, reject });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    _unwatch(this.#fd);
    c.close(this.#fd);
    this.#accept?.reject(_closed());
    this.#accept = null;
  }
}

function _listen(options: Deno.TcpListenOptions): FfiListener | null {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 0;
  const addr = port === 0 ? null : ipv4Address(hostname, port);
  if (addr === null) return null;
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, int32Bytes(1), 4);
  if (options.reusePort) c.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, int32Bytes(1), 4);
  if (c.bind(fd, addr, 16) !== 0 || c.listen(fd, 511) !== 0) {
    const error = errno();
    c.close(fd);
    if (error === EADDRINUSE) throw new Deno.errors.AddrInUse(`${hostname}:${port} is in use`);
    throw new Error(`listening on ${hostname}:${port} failed: errno ${error}`);
  }
  return new FfiListener(fd, { transport: "tcp", hostname, port });
}

function _connect(hostname: string, port: number): Promise<FfiConn> | null {
  const addr = ipv4Address(hostname, port);
  if (addr === null) return null;
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c.connect(fd, addr, 16) === 0) return Promise.resolve(new FfiConn(fd));
  const error = errno();
  if (error !== EINPROGRESS) {
    c.close(fd);
    return Promise.reject(new Deno.errors.ConnectionRefused(`connect failed: errno ${error}`));
  }
  return new Promise((resolve, reject) => {
    _watch(fd, () => {
      _unwatch(fd);
      const value = new Uint8Array(4);
      c.getsockopt(fd, SOL_SOCKET, SO_ERROR, value, int32Bytes(4));
      const failure = new DataView(value.buffer).getInt32(0, true);
      if (failure === 0) resolve(new FfiConn(fd));
      else {
        c.close(fd);
        reject(new Deno.errors.ConnectionRefused(`connect failed: errno ${failure}`));
      }
    });
  });
}

const events = new Uint8Array(EVENT_SIZE * MAX_EVENTS);
const eventsView = new DataView(events.buffer);

function _dispatch(count: number): void {
  for (let i = 0; i < count; i++) {
    const flags = eventsView.getUint32(i * EVENT_SIZE, true);
    onEvents.get(eventsView.getUint32(i * EVENT_SIZE + EVENT_DATA_AT, true))?.(flags);
  }
}

/**
 * Polls without blocking while sockets are ready, letting the promise reactions of each
 * batch run in between; waits on a helper thread when none is. Every `TURNS_BEFORE_YIELD`
 * busy turns one wait goes through the helper thread anyway, so timers still run.
 */
async function _pollForever(): Promise<never> {
  let busyTurns = 0;
  for (;;) {
    let ready = busyTurns < TURNS_BEFORE_YIELD ? c.epoll_wait(epoll, events, MAX_EVENTS, 0) : 0;
    if (ready > 0) busyTurns++;
    else {
      const timeoutMs = busyTurns >= TURNS_BEFORE_YIELD ? 0 : WAIT_MS;
      busyTurns = 0;
      ready = await c.epoll_wait_off_thread(epoll, events, MAX_EVENTS, timeoutMs);
    }
    if (ready > 0) _dispatch(ready);
    await null; // the reactions of what this batch settled
  }
}

/**
 * Replaces `Deno.listen` and `Deno.connect` in this isolate with the raw-socket versions
 * (falling back to Deno's for what they do not cover) and starts the poll loop.
 */
export function installFfiSockets(): void {
  const denoListen = Deno.listen;
  const denoConnect = Deno.connect;
  const listen = (options: Deno.TcpListenOptions) => _listen(options) ?? denoListen(options);
  const connect = (options: Deno.ConnectOptions) =>
    _connect(options.hostname ?? "127.0.0.1", options.port) ?? denoConnect(options);
  Object.assign(Deno, { listen, connect });
  _pollForever();
}
