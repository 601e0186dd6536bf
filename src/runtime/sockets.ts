/**
 * The socket calls a data plane makes (listen, accept, connect, read, write), behind one
 * interface so a worker can run them on the runtime's own socket ops (the default) or on
 * raw sockets driven through FFI (`io = "ffi"`). Types only: each runtime implements them
 * (`src/runtime/deno/`, `src/runtime/bun/`), and `src/io/sockets.ts` holds the one this isolate uses.
 */

/** A connected TCP socket: what sessions and backend connections use of a runtime's TCP conn. */
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
  /**
   * Half-closes: the peer reads EOF after what was written; reading goes on until it closes
   * too. Optional (without it a caller closes instead); throws or rejects when closed.
   */
  closeWrite?(): void | Promise<void>;
  /** Throws when already closed (as Deno's does). */
  close(): void;
}

/**
 * A listening TCP socket. `accept()` rejects with an error of kind `BadResource` once closed
 * (see `runtime.isErrorKind`).
 */
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
  readonly name: "deno" | "bun" | "ffi";
  /** Sockets open on raw FFI calls now (0 on the runtime's ops); INFO's `io_raw_sockets`. */
  rawSockets(): number;
  /** Binds at once: throws when the address is taken. */
  listen(address: ListenAddress): ProxyListener;
  connect(address: { hostname: string; port: number }): Promise<ProxyConn>;
}

/** Why raw sockets through FFI cannot run in this process. */
export type RawSocketsMissing = "not linux" | "no ffi permission" | "not deno";

/** The supervisor's table of raw descriptors and the id one worker records them under. */
export interface RawFdTable {
  memory: SharedArrayBuffer;
  owner: number;
}

/**
 * The supervisor's side of the raw descriptor table: a table per new worker, and closing
 * the raw descriptors a worker still held when it ended (the runtime closes only its own
 * resources, not what a worker opened through FFI).
 */
export interface RawFdReaper {
  /** The table and a fresh owner id for a new worker. */
  newTable(): RawFdTable;
  /** Closes what the worker of `table` still held (call once it is terminated); a count. */
  reap(table: RawFdTable): Promise<number>;
}

/** A TLS server's credentials, PEM texts. */
export interface TlsServerCredentials {
  /** Certificate chain. */
  cert: string;
  /** Its private key. */
  key: string;
  /** CA certificates: when set, clients must present a certificate one of them signed. */
  ca: string | null;
}

/** How a TLS client verifies its server, and the certificate it presents, PEM texts. */
export interface TlsClientOptions {
  /** CA certificates to verify the server with; null: the system's roots. */
  ca: string | null;
  /** Client certificate and key, or null. */
  cert: string | null;
  key: string | null;
  /** Name sent as SNI and checked against the certificate; null: the host connected to. */
  serverName: string | null;
}

/** A listening TLS socket whose credentials can change while it listens. */
export interface TlsListener extends ProxyListener {
  /** New clients get these credentials; connected ones keep theirs. */
  setCredentials(credentials: TlsServerCredentials): void;
}

/**
 * The runtime's TLS sockets. TLS always runs on them, whatever `io` picks for plain
 * sockets: raw FFI sockets carry no TLS. Their conns read and write plaintext.
 */
export interface TlsApi {
  /** Resolves once bound; rejects (kind `AddrInUse`, ...) when it cannot. */
  listen(address: ListenAddress, credentials: TlsServerCredentials): Promise<TlsListener>;
  /** Resolves once the handshake succeeded (the server verified); rejects with why not. */
  connect(
    address: { hostname: string; port: number },
    options: TlsClientOptions,
  ): Promise<ProxyConn>;
}
