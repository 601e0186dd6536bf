/**
 * `io = "ffi"`: the data plane's sockets as raw non-blocking sockets on one edge-triggered
 * epoll set per worker, called through Deno's FFI, instead of Deno's socket ops. A read or
 * write that can complete does so at once, without an op, a tokio task or a promise hop per
 * call: at pipeline 1 this costs about a quarter less CPU per request (bench/README.md).
 *
 * Covers IPv4 literals (listen and connect); other hosts (names, IPv6) fall back to Deno's
 * own sockets, which then run beside this loop. Needs --allow-ffi (which lifts Deno's
 * sandbox) and glibc; loading this module opens libc.so.6.
 *
 * Every descriptor opened here is recorded in the shared `FdOwners` table (when the
 * supervisor gave one), so that the supervisor can close them if this worker dies.
 */

import type { ListenAddress, ProxyConn, ProxyListener, SocketApi } from "../../sockets.ts";
import { DENO_SOCKETS } from "../deno_sockets.ts";
import { logError, logWarn } from "../../../log.ts";
import type { FdOwners } from "./fd_owners.ts";
import { FaultInjector, FAULTS_ENV, parseFaults } from "./faults.ts";
import {
  AF_INET,
  c as libc,
  EADDRINUSE,
  EAGAIN,
  ECONNABORTED,
  EINPROGRESS,
  EINTR,
  EPOLL_CLOEXEC,
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
  type Libc,
  MAX_IO_BYTES,
  MSG_NOSIGNAL,
  osError,
  SO_ERROR,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "./libc.ts";

/** The libc calls this layer makes: libc's own, or a fault injector around them (tests). */
let c: Libc = libc;

/**
 * Makes this isolate's raw sockets call `binding` from now on (tests; `ASTER_TEST_IO_FAULTS`
 * at start): a swap, not a branch per call. Returns the binding used until now.
 */
export function useLibc(binding: Libc): Libc {
  const previous = c;
  c = binding;
  return previous;
}

const MAX_EVENTS = 256;
/** Longest off-thread wait, ms (the loop then looks again). */
const WAIT_MS = 100;
/** Longest pause after a failed epoll_wait, ms. */
const WAIT_FAILED_MAX_MS = 1000;
/** Busy turns in a row after which the loop lets timers and Deno's own ops run. */
const TURNS_BEFORE_YIELD = 64;
const LISTEN_BACKLOG = 511;

type EventHandler = (flags: number) => void;

/** The shared descriptor table and this worker's id in it. */
export interface FdOwnership {
  owners: FdOwners;
  owner: number;
}

/** A watched descriptor's handler and the generation its events carry. */
interface Watch {
  generation: number;
  handler: EventHandler;
}

/**
 * One epoll set and the handler of each descriptor on it; opens and closes descriptors.
 * Exported for tests.
 *
 * An event's data is the descriptor (low 32 bits) and the generation of its watch (high 32
 * bits): a handler that closes a descriptor and opens another, which the kernel gives the
 * same number, must not hand the new socket the old one's events still queued in this batch.
 */
export class EpollLoop {
  readonly #epoll: number;
  readonly #handlers = new Map<number, Watch>();
  #generation = 0;
  readonly #ownership: FdOwnership | null;
  readonly #event = new Uint8Array(EVENT_SIZE);
  readonly #eventView = new DataView(this.#event.buffer);
  /** Outside the JS heap (see epoll_wait_off_thread); never freed: one per worker. */
  readonly #eventsAt: Deno.PointerObject;
  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  #running = false;
  /** epoll_wait failures in a row. */
  #waitFailures = 0;

  constructor(ownership: FdOwnership | null) {
    this.#ownership = ownership;
    const bytes = EVENT_SIZE * MAX_EVENTS;
    const at = c.malloc(BigInt(bytes));
    if (at === null) throw new Error("malloc failed");
    this.#eventsAt = at;
    this.#events = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(at, bytes));
    this.#eventsView = new DataView(this.#events.buffer);
    this.#epoll = c.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epoll < 0) throw osError(errno(), "epoll_create1 failed: ");
    this.adopt(this.#epoll);
  }

  /** `fd` was just opened by this worker: recorded so the supervisor can close it. */
  adopt(fd: number): void {
    this.#ownership?.owners.own(fd, this.#ownership.owner);
  }

  /** Closes `fd`, unless the supervisor already took it (this worker is being ended). */
  closeFd(fd: number): void {
    const ownership = this.#ownership;
    if (ownership === null || ownership.owners.release(fd, ownership.owner)) c.close(fd);
  }

  /**
   * Edge-triggered: a descriptor hears once per change of readiness, in or out. Throws when
   * epoll refuses it: the caller fails that socket, which would otherwise never hear again.
   */
  watch(fd: number, handler: EventHandler): void {
    const generation = this.#generation = (this.#generation + 1) >>> 0 || 1;
    this.#eventView.setUint32(0, (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) >>> 0, true);
    this.#eventView.setUint32(EVENT_DATA_AT, fd, true);
    this.#eventView.setUint32(EVENT_DATA_AT + 4, generation, true);
    if (c.epoll_ctl(this.#epoll, EPOLL_CTL_ADD, fd, this.#event) !== 0) {
      throw osError(errno(), "epoll_ctl(ADD) failed: ");
    }
    this.#handlers.set(fd, { generation, handler });
    if (!this.#running) {
      this.#running = true;
      // Not from inside watch(): no handler runs before its caller has finished.
      queueMicrotask(() => this.#pollWhileWatched());
    }
  }

  /** Descriptors watched now. */
  get watched(): number {
    return this.#handlers.size;
  }

  unwatch(fd: number): void {
    if (!this.#handlers.delete(fd)) return;
    // Never expected (the descriptor is open and on the set); closing it removes it anyway.
    if (c.epoll_ctl(this.#epoll, EPOLL_CTL_DEL, fd, this.#event) !== 0) {
      logWarn(`epoll_ctl(DEL) of descriptor ${fd} failed: ${osError(errno()).message}`);
    }
  }

  #dispatch(count: number): void {
    const view = this.#eventsView;
    for (let i = 0; i < count; i++) {
      const at = i * EVENT_SIZE;
      const watch = this.#handlers.get(view.getUint32(at + EVENT_DATA_AT, true));
      // A descriptor closed earlier in this batch has no handler any more, or one of a new
      // socket with the same number and another generation.
      if (
        watch === undefined || watch.generation !== view.getUint32(at + EVENT_DATA_AT + 4, true)
      ) {
        continue;
      }
      try {
        watch.handler(view.getUint32(at, true));
      } catch (err) {
        // Readers run from here (whenReadable): a bug in one must not stop the loop.
        logError(`socket event handler failed: ${err instanceof Error ? err.stack : err}`);
      }
    }
  }

  /**
   * Polls without blocking while sockets are ready, letting the promise reactions of each
   * batch run in between; waits on a helper thread when none is, so the event loop (timers,
   * worker messages, Deno's own ops) stays free. Every `TURNS_BEFORE_YIELD` busy turns one
   * wait goes through the helper thread anyway, so those still run under constant load.
   * Ends once no descriptor is watched.
   */
  async #pollWhileWatched(): Promise<void> {
    let busyTurns = 0;
    for (;;) {
      // Nothing left to watch: stop, so an isolate whose sockets are all closed can exit
      // (a pending off-thread wait keeps its event loop alive). watch() starts it again.
      if (this.#handlers.size === 0) {
        this.#running = false;
        return;
      }
      let ready = busyTurns < TURNS_BEFORE_YIELD
        ? c.epoll_wait(this.#epoll, this.#events, MAX_EVENTS, 0)
        : 0;
      if (ready > 0) busyTurns++;
      else {
        if (ready < 0 && errno() !== EINTR) {
          await this.#waitFailed(errno());
          continue;
        }
        const timeoutMs = busyTurns >= TURNS_BEFORE_YIELD ? 0 : WAIT_MS;
        busyTurns = 0;
        ready = await c.epoll_wait_off_thread(this.#epoll, this.#eventsAt, MAX_EVENTS, timeoutMs);
        // The helper thread's errno is out of reach: asking again here says why it failed.
        if (ready < 0) ready = c.epoll_wait(this.#epoll, this.#events, MAX_EVENTS, 0);
        if (ready < 0 && errno() !== EINTR) {
          await this.#waitFailed(errno());
          continue;
        }
      }
      if (ready >= 0) this.#waitFailures = 0;
      if (ready > 0) this.#dispatch(ready);
      await null; // the reactions of what this batch settled
    }
  }

  /**
   * epoll_wait failed with `error` (not EINTR): nothing can be heard until it works again.
   * Logged (the first time and every 60th), then a pause doubling from 10 ms to 1 s, so a
   * failure that persists does not spin the worker.
   */
  async #waitFailed(error: number): Promise<void> {
    const failures = ++this.#waitFailures;
    if (failures % 60 === 1) {
      logError(
        `epoll_wait failed${failures > 1 ? ` ${failures} times in a row` : ""}: ` +
          `${osError(error).message}; raw sockets of this worker wait until it works again`,
      );
    }
    const pauseMs = Math.min(WAIT_FAILED_MAX_MS, 10 * 2 ** Math.min(failures - 1, 10));
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

const _closed = () => new Deno.errors.BadResource("the socket is closed");

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Bytes done, an Error, or undefined when the socket is not ready (EAGAIN). */
type Attempt<T> = T | Error | undefined;

/** A connected non-blocking socket. */
class FfiConn implements ProxyConn {
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

  constructor(loop: EpollLoop, fd: number) {
    this.#loop = loop;
    this.#fd = fd;
    loop.watch(fd, (flags) => this.#onEvent(flags));
  }

  #onEvent(flags: number): void {
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
          _settle(waiting, outcome);
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
          _settle(waiting, outcome);
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
    if (this.#closed) throw _closed();
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
    if (this.#closed) throw _closed();
    if (this.#write !== null) throw new Deno.errors.Busy("a write is pending");
    if (buf.length === 0 || !this.#writable) return 0;
    const now = this.#trySend(buf);
    if (now instanceof Error) throw now;
    return now ?? 0;
  }

  setNoDelay(noDelay = true): void {
    c.setsockopt(this.#fd, IPPROTO_TCP, TCP_NODELAY, int32Bytes(noDelay ? 1 : 0), 4);
  }

  close(): void {
    if (this.#closed) throw _closed();
    this.#closed = true;
    this.#loop.unwatch(this.#fd);
    this.#loop.closeFd(this.#fd);
    const read = this.#read;
    const write = this.#write;
    const callback = this.#onReadable;
    this.#read = null;
    this.#write = null;
    this.#onReadable = null;
    read?.reject(_closed());
    write?.reject(_closed());
    // Not from inside close(): the reader finds the socket closed on its next try.
    if (callback !== null) queueMicrotask(callback);
  }
}

function _settle<T>(waiting: Waiter<T>, outcome: T | Error): void {
  if (outcome instanceof Error) waiting.reject(outcome);
  else waiting.resolve(outcome);
}

/** A listening non-blocking socket. */
class FfiListener implements ProxyListener {
  readonly #loop: EpollLoop;
  readonly #fd: number;
  #readable = true;
  #closed = false;
  #accept: Waiter<ProxyConn> | null = null;

  constructor(loop: EpollLoop, fd: number) {
    this.#loop = loop;
    this.#fd = fd;
    loop.watch(fd, () => {
      this.#readable = true;
      const waiting = this.#accept;
      if (waiting === null) return;
      const outcome = this.#tryAccept();
      if (outcome === undefined) return;
      this.#accept = null;
      _settle(waiting, outcome);
    });
  }

  #tryAccept(): Attempt<ProxyConn> {
    for (;;) {
      const fd = c.accept4(this.#fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        this.#loop.adopt(fd);
        try {
          return new FfiConn(this.#loop, fd);
        } catch (err) {
          // Not on the epoll set, it would never be served: the client sees it closed.
          this.#loop.closeFd(fd);
          logWarn(`accepted connection dropped: ${_message(err)}`);
          continue;
        }
      }
      const error = errno();
      // A client that left before it was accepted: take the next one.
      if (error === EINTR || error === ECONNABORTED) continue;
      if (error === EAGAIN) {
        this.#readable = false;
        return undefined;
      }
      // Out of descriptors or memory: the connection stays queued, so the next accept()
      // (the listener retries after a pause) tries again without waiting for a new edge.
      return osError(error, "accept failed: ");
    }
  }

  accept(): Promise<ProxyConn> {
    if (this.#closed) return Promise.reject(_closed());
    if (this.#accept !== null) return Promise.reject(new Deno.errors.Busy("an accept is pending"));
    const now = this.#readable ? this.#tryAccept() : undefined;
    if (now instanceof Error) return Promise.reject(now);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => this.#accept = { resolve, reject });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.unwatch(this.#fd);
    this.#loop.closeFd(this.#fd);
    const waiting = this.#accept;
    this.#accept = null;
    waiting?.reject(_closed());
  }
}

function _newSocket(loop: EpollLoop): number {
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw osError(errno(), "socket failed: ");
  loop.adopt(fd);
  return fd;
}

function _listen(loop: EpollLoop, address: ListenAddress): ProxyListener | null {
  const { hostname, port } = address;
  const addr = port === 0 ? null : ipv4Address(hostname, port);
  if (addr === null) return null;
  const fd = _newSocket(loop);
  c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, int32Bytes(1), 4);
  if (address.reusePort) c.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, int32Bytes(1), 4);
  if (c.bind(fd, addr, addr.length) !== 0 || c.listen(fd, LISTEN_BACKLOG) !== 0) {
    const error = errno();
    loop.closeFd(fd);
    if (error === EADDRINUSE) throw new Deno.errors.AddrInUse(`${hostname}:${port} is in use`);
    throw osError(error, `listening on ${hostname}:${port} failed: `);
  }
  try {
    return new FfiListener(loop, fd);
  } catch (err) {
    loop.closeFd(fd);
    throw err;
  }
}

function _connect(loop: EpollLoop, hostname: string, port: number): Promise<ProxyConn> | null {
  const addr = ipv4Address(hostname, port);
  if (addr === null) return null;
  let fd: number;
  try {
    fd = _newSocket(loop);
  } catch (err) {
    return Promise.reject(err);
  }
  if (c.connect(fd, addr, addr.length) === 0) return _connected(loop, fd);
  const error = errno();
  if (error !== EINPROGRESS) {
    loop.closeFd(fd);
    return Promise.reject(osError(error));
  }
  // The handshake ended once the socket is writable or failed; SO_ERROR says how.
  return new Promise((resolve, reject) => {
    try {
      loop.watch(fd, (flags) => {
        if ((flags & (EPOLLOUT | EPOLLERR | EPOLLHUP)) === 0) return; // not over yet
        loop.unwatch(fd);
        const failure = _socketError(fd);
        if (failure === 0) _connected(loop, fd).then(resolve, reject);
        else {
          loop.closeFd(fd);
          reject(osError(failure));
        }
      });
    } catch (err) {
      loop.closeFd(fd);
      reject(err);
    }
  });
}

/** The connection on connected socket `fd`, or why it cannot be served (fd then closed). */
function _connected(loop: EpollLoop, fd: number): Promise<ProxyConn> {
  try {
    return Promise.resolve(new FfiConn(loop, fd));
  } catch (err) {
    loop.closeFd(fd);
    return Promise.reject(err);
  }
}

/** SO_ERROR of `fd` (and clears it): 0, or the errno a pending connect ended with. */
function _socketError(fd: number): number {
  const value = new Int32Array(1);
  const size = int32Bytes(4);
  if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, new Uint8Array(value.buffer), size) !== 0) {
    return errno();
  }
  return value[0];
}

/**
 * Raw sockets on one epoll loop of this isolate; hosts that are not IPv4 literals go to
 * Deno's sockets.
 */
export function ffiSockets(ownership: FdOwnership | null = null): SocketApi {
  _faultsFromEnv();
  const loop = new EpollLoop(ownership);
  return {
    name: "ffi",
    rawSockets: () => loop.watched,
    listen: (address) => _listen(loop, address) ?? DENO_SOCKETS.listen(address),
    connect: ({ hostname, port }) =>
      _connect(loop, hostname, port) ?? DENO_SOCKETS.connect({ hostname, port }),
  };
}

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

let faultsRead = false;

/**
 * Test mode: with `ASTER_TEST_IO_FAULTS` set (see faults.ts), this isolate's raw sockets
 * call libc through a seeded fault injector from now on. Read once per isolate.
 */
function _faultsFromEnv(): void {
  if (faultsRead) return;
  faultsRead = true;
  let text: string | undefined;
  try {
    text = Deno.env.get(FAULTS_ENV);
  } catch {
    return; // no --allow-env: no test mode
  }
  if (!text) return;
  const spec = parseFaults(text);
  if (typeof spec === "string") throw new Error(`${FAULTS_ENV}: ${spec}`);
  const injector = new FaultInjector(c, spec.rates, spec.seed);
  injector.onFirst = (kind) => logWarn(`${FAULTS_ENV}: first ${kind} fault injected`);
  useLibc(injector.libc);
  logWarn(`${FAULTS_ENV}: raw socket calls fail at random (${text})`);
}
