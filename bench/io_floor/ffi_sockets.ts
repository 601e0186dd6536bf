/**
 * Measurement only: stand-ins for `Deno.listen` and `Deno.connect` on raw sockets, all on one
 * epoll set driven through Deno's FFI, so Aster's data plane can run unchanged on them
 * (`aster_on_ffi.ts`) and the bench can show what leaving Deno's socket ops would save.
 * IPv4 literals only; anything else goes to Deno's own calls. Needs --allow-ffi, which lifts
 * Deno's sandbox: Aster itself does not use this (bench/README.md, round 4).
 */

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The same call on a helper thread: waits without blocking the event loop.
  epoll_wait_off_thread: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});
const c = libc.symbols;

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_ERROR = 4;
const SO_REUSEPORT = 15;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SHUT_WR = 1;
const MSG_NOSIGNAL = 0x4000;
const EINTR = 4;
const EAGAIN = 11;
const EADDRINUSE = 98;
const EINPROGRESS = 115;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLHUP = 0x10;
const EPOLLRDHUP = 0x2000;
const EPOLLET = 0x80000000;
/** struct epoll_event: packed (12 bytes) on x86_64, 16 bytes elsewhere. */
const EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
const EVENT_DATA_AT = Deno.build.arch === "x86_64" ? 4 : 8;
const MAX_EVENTS = 256;
/** Longest off-thread wait, ms (the loop then looks again). */
const WAIT_MS = 100;
/** Busy turns in a row after which the loop lets timers and other tasks run. */
const TURNS_BEFORE_YIELD = 64;

const errnoView = new Deno.UnsafePointerView(c.__errno_location()!);
const epoll = c.epoll_create1(0);
if (epoll < 0) throw new Error(`epoll_create1 failed: errno ${errnoView.getInt32()}`);
const onEvents = new Map<number, (flags: number) => void>();
const event = new Uint8Array(EVENT_SIZE);
const eventView = new DataView(event.buffer);

function _int(value: number): Uint8Array {
  return new Uint8Array(new Int32Array([value]).buffer);
}

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

/** sockaddr_in of an IPv4 literal, or null for anything else. */
function _ipv4(host: string, port: number): Uint8Array | null {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)) {
    return null;
  }
  const addr = new Uint8Array(16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  addr.set(parts, 4);
  return addr;
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
      const error = errnoView.getInt32();
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
      const error = errnoView.getInt32();
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
    c.setsockopt(this.#fd, IPPROTO_TCP, TCP_NODELAY, _int(noDelay ? 1 : 0), 4);
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
  const addr = port === 0 ? null : _ipv4(hostname, port);
  if (addr === null) return null;
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, _int(1), 4);
  if (options.reusePort) c.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, _int(1), 4);
  if (c.bind(fd, addr, 16) !== 0 || c.listen(fd, 511) !== 0) {
    const error = errnoView.getInt32();
    c.close(fd);
    if (error === EADDRINUSE) throw new Deno.errors.AddrInUse(`${hostname}:${port} is in use`);
    throw new Error(`listening on ${hostname}:${port} failed: errno ${error}`);
  }
  return new FfiListener(fd, { transport: "tcp", hostname, port });
}

function _connect(hostname: string, port: number): Promise<FfiConn> | null {
  const addr = _ipv4(hostname, port);
  if (addr === null) return null;
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c.connect(fd, addr, 16) === 0) return Promise.resolve(new FfiConn(fd));
  const error = errnoView.getInt32();
  if (error !== EINPROGRESS) {
    c.close(fd);
    return Promise.reject(new Deno.errors.ConnectionRefused(`connect failed: errno ${error}`));
  }
  return new Promise((resolve, reject) => {
    _watch(fd, () => {
      _unwatch(fd);
      const value = new Uint8Array(4);
      c.getsockopt(fd, SOL_SOCKET, SO_ERROR, value, _int(4));
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
