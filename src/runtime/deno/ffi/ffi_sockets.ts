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
 *
 * The parts: epoll_loop.ts (the epoll set and dispatch), ffi_conn.ts (a connection's reads,
 * writes and close), ffi_listener.ts (listen and accept), ffi_connect.ts (connect) and
 * socket_libc.ts (the libc binding they call through, swappable for a fault injector).
 */
import type { SocketApi } from "../../sockets.ts";
import { DENO_SOCKETS } from "../deno_sockets.ts";
import { EpollLoop, type FdOwnership } from "./epoll_loop.ts";
import { connectIpv4 } from "./ffi_connect.ts";
import { listenIpv4 } from "./ffi_listener.ts";
import { faultsFromEnv } from "./socket_libc.ts";

export { EpollLoop, type FdOwnership } from "./epoll_loop.ts";
export { useLibc } from "./socket_libc.ts";

/**
 * Raw sockets on one epoll loop of this isolate; hosts that are not IPv4 literals go to
 * Deno's sockets. `pollMs`: how long the loop polls after a batch (tests).
 */
export function ffiSockets(ownership: FdOwnership | null = null, pollMs?: number): SocketApi {
  faultsFromEnv();
  const loop = new EpollLoop(ownership, pollMs);
  return {
    name: "ffi",
    rawSockets: () => loop.watched,
    listen: (address) => listenIpv4(loop, address) ?? DENO_SOCKETS.listen(address),
    connect: ({ hostname, port }) =>
      connectIpv4(loop, hostname, port) ?? DENO_SOCKETS.connect({ hostname, port }),
  };
}
