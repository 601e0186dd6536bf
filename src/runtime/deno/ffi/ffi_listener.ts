/**
 * A listening raw socket: bind and listen on an IPv4 address, then accept connections as
 * they come (each one a new `FfiConn` on the same epoll loop).
 */
import type { ListenAddress, ProxyConn, ProxyListener } from "../../sockets.ts";
import { logWarn } from "../../../log.ts";
import { type EpollLoop, newSocket } from "./epoll_loop.ts";
import { type Attempt, closedError, FfiConn, settle, type Waiter } from "./ffi_conn.ts";
import {
  AF_INET,
  EADDRINUSE,
  EAGAIN,
  ECONNABORTED,
  EINTR,
  errno,
  int32Bytes,
  ipv4Address,
  osError,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOL_SOCKET,
} from "./libc.ts";
import { c } from "./socket_libc.ts";

const LISTEN_BACKLOG = 511;

// Where accept4 writes the peer's address (a sockaddr_in: the listener is IPv4), reused by
// every accept of the worker: read at once, before the next one.
const PEER = new Uint8Array(16);
const PEER_LENGTH = new Int32Array(1);
/** Their pointers, taken at the first accept (not at import: FFI may be off then). */
let _peerPointers: [Deno.PointerValue, Deno.PointerValue] | null = null;

/** Gives `conn` the peer accept4 wrote into PEER, when IPv4 (CLIENT LIST, logs). */
function _setPeer(conn: FfiConn): void {
  if (PEER_LENGTH[0] < 8 || (PEER[0] | (PEER[1] << 8)) !== AF_INET) return;
  conn.setPeer((PEER[4] << 8) | PEER[5], (PEER[6] << 8) | PEER[7], (PEER[2] << 8) | PEER[3]);
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
      settle(waiting, outcome);
    });
  }

  #tryAccept(): Attempt<ProxyConn> {
    for (;;) {
      PEER_LENGTH[0] = PEER.length;
      _peerPointers ??= [Deno.UnsafePointer.of(PEER), Deno.UnsafePointer.of(PEER_LENGTH)];
      const [peer, peerLength] = _peerPointers;
      const fd = c.accept4(this.#fd, peer, peerLength, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        this.#loop.adopt(fd);
        try {
          const conn = new FfiConn(this.#loop, fd);
          _setPeer(conn);
          return conn;
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
    if (this.#closed) return Promise.reject(closedError());
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
    waiting?.reject(closedError());
  }
}

/** A listener on `address`, or null when its host is not an IPv4 literal (or port is 0). */
export function listenIpv4(loop: EpollLoop, address: ListenAddress): ProxyListener | null {
  const { hostname, port } = address;
  const addr = port === 0 ? null : ipv4Address(hostname, port);
  if (addr === null) return null;
  const fd = newSocket(loop);
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

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
