/**
 * The socket calls a data plane makes (listen, accept, connect, read, write), behind one
 * interface so a worker can run them on Deno's socket ops (the default) or on raw sockets
 * driven through FFI (`io = "ffi"`, `src/io/ffi/ffi_sockets.ts`). Each worker is its own
 * isolate and serves one cluster, so the choice is made once per isolate, at start.
 */

/** A connected TCP socket: what sessions and backend connections use of `Deno.TcpConn`. */
export interface ProxyConn {
  /** Bytes read into `buf`, or null at EOF. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Bytes written (possibly fewer than `buf` holds). */
  write(buf: Uint8Array): Promise<number>;
  /** Bytes the socket takes now without waiting, 0 when none (optional: see WriteBatcher). */
  tryWrite?(buf: Uint8Array): number;
  /**
   * Reads what is there now without waiting: bytes read, null at EOF, undefined when nothing
   * is (then `whenReadable`). Optional, with `whenReadable`: sockets that have both
   * (`io = "ffi"`) save a promise per read. Throws when the read fails.
   */
  tryRead?(buf: Uint8Array): number | null | undefined;
  /** Calls `callback` once, from the event loop, when a read may find bytes, EOF or an error, or on close. */
  whenReadable?(callback: () => void): void;
  setNoDelay(noDelay?: boolean): void;
  /** Throws when already closed (as Deno's does). */
  close(): void;
}

/** A listening TCP socket. `accept()` rejects with `Deno.errors.BadResource` once closed. */
export interface ProxyListener {
  accept(): Promise<ProxyConn>;
  close(): void;
}

/** Where to listen: a host (name or IP literal), a port, and whether workers share it. */
export interface ListenAddress {
  hostname: string;
  port: number;
  /** SO_REUSEPORT: every worker of the cluster listens on the same port. */
  reusePort: boolean;
}

/** Opens sockets. */
export interface SocketApi {
  /** What INFO reports as `io`: the cluster's `io` setting in effect. */
  readonly name: "deno" | "ffi";
  /** Sockets open on raw FFI calls now (0 on Deno's ops); INFO's `io_raw_sockets`. */
  rawSockets(): number;
  /** Binds at once: throws when the address is taken. */
  listen(address: ListenAddress): ProxyListener;
  connect(address: { hostname: string; port: number }): Promise<ProxyConn>;
}

/** Deno's own socket ops (`--unstable-net` for `reusePort`). */
export const DENO_SOCKETS: SocketApi = {
  name: "deno",
  rawSockets: () => 0,
  listen: (address) => Deno.listen({ transport: "tcp", ...address } as Deno.TcpListenOptions),
  connect: (address) => Deno.connect(address),
};

/**
 * Why this process cannot open raw sockets through FFI (`io = "ffi"`), or null when it can:
 * they need Linux and the FFI permission (whether libc loads shows only when it is opened).
 */
export function rawSocketsUnavailable(): "not linux" | "no ffi permission" | null {
  if (Deno.build.os !== "linux") return "not linux";
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return "no ffi permission";
  return null;
}

let current: SocketApi = DENO_SOCKETS;

/** The socket API of this isolate. */
export function sockets(): SocketApi {
  return current;
}

/** Chooses the socket API of this isolate (a worker does it once, before it listens). */
export function useSockets(api: SocketApi): void {
  current = api;
}
