/** Deno's own TCP socket ops as the runtime's `SocketApi` (`--unstable-net` for `reusePort`). */
import type { SocketApi } from "../sockets.ts";

/** Deno's socket ops: its `TcpConn` and `TcpListener` serve as they are, unwrapped. */
export const DENO_SOCKETS: SocketApi = {
  name: "deno",
  rawSockets: () => 0,
  listen: (address) => Deno.listen({ transport: "tcp", ...address } as Deno.TcpListenOptions),
  connect: (address) => Deno.connect(address),
};
