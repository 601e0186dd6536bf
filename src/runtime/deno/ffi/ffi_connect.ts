/**
 * Connecting a raw socket: a non-blocking connect to an IPv4 address, whose end the epoll
 * loop reports (writable or failed) and SO_ERROR explains.
 */
import type { ProxyConn } from "../../sockets.ts";
import { type EpollLoop, newSocket } from "./epoll_loop.ts";
import { FfiConn } from "./ffi_conn.ts";
import {
  EINPROGRESS,
  EPOLLERR,
  EPOLLHUP,
  EPOLLOUT,
  errno,
  int32Bytes,
  ipv4Address,
  osError,
  SO_ERROR,
  SOL_SOCKET,
} from "./libc.ts";
import { c } from "./socket_libc.ts";

/** A connection to an IPv4 literal host, or null for other hosts (Deno's sockets take them). */
export function connectIpv4(
  loop: EpollLoop,
  hostname: string,
  port: number,
): Promise<ProxyConn> | null {
  const addr = ipv4Address(hostname, port);
  if (addr === null) return null;
  let fd: number;
  try {
    fd = newSocket(loop);
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
