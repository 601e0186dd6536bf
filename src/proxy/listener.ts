/** Accepts clients on one address and runs a Session for each. */
import type { ClientQuota } from "./client_quota.ts";
import { logDebug, logEnabled, logWarn } from "../log.ts";
import { type OutputLimits, Session, type SessionMode } from "./session.ts";
import { coarseClock } from "../io/coarse_clock.ts";
import type { ClusterMetrics } from "../metrics/worker_metrics.ts";
import {
  type ProxyConn,
  type ProxyListener,
  sockets,
  type TlsListener,
  type TlsServerCredentials,
  tlsSockets,
} from "../io/sockets.ts";
import { runtime } from "../runtime/runtime.ts";
import { formatPeer, parseProxyHeader, socketPeer } from "./proxy_protocol.ts";

/** What a listener needs: where to listen and how to serve a new client. */
export interface ListenerOptions {
  hostname: string;
  port: number;
  /** Share the port with the other workers (SO_REUSEPORT). */
  reusePort: boolean;
  /** The mode's protocol and where its sessions send requests. */
  mode: SessionMode;
  /**
   * Most sessions at once (of the whole cluster with `quota`, else of this listener); a client
   * past it gets an error reply and is closed.
   */
  maxClients: number;
  /** The cluster's count of clients over its workers; absent: this listener counts alone. */
  quota?: ClientQuota;
  /** Close clients idle this long, ms; 0 never does. */
  idleTimeoutMs: number;
  /** Bounds on the replies owed to one client. */
  outputLimits: OutputLimits;
  /** This cluster's counters in this worker. */
  metrics: ClusterMetrics;
  /** Clients start with a PROXY protocol header (`proxy_protocol`). */
  proxyProtocol?: boolean;
  /** Listen in plain TCP on `hostname:port` (default true); false when only TLS listens. */
  plain?: boolean;
}

/** Longest wait for a PROXY protocol header, ms: a balancer sends it with the connect. */
const PROXY_HEADER_TIMEOUT_MS = 5000;
/** Room for the longest header accepted (v2: 16 bytes and up to 4096 of addresses/TLVs). */
const PROXY_HEADER_BUFFER = 16 + 4096;

/**
 * A client's connection after its PROXY header: the bytes read past the header come first,
 * then the socket's own. Everything else is the socket's.
 */
function _afterHeader(conn: ProxyConn, rest: Uint8Array): ProxyConn {
  let pending: Uint8Array | null = rest;
  const take = (buf: Uint8Array): number => {
    const n = Math.min(buf.length, pending!.length);
    buf.set(pending!.subarray(0, n));
    pending = n === pending!.length ? null : pending!.subarray(n);
    return n;
  };
  const wrapped: ProxyConn = {
    read: (buf) => pending !== null ? Promise.resolve(take(buf)) : conn.read(buf),
    write: (buf) => conn.write(buf),
    setNoDelay: (noDelay) => conn.setNoDelay(noDelay),
    close: () => conn.close(),
  };
  if (conn.tryWrite) wrapped.tryWrite = (buf) => conn.tryWrite!(buf);
  if (conn.tryRead && conn.whenReadable) {
    wrapped.tryRead = (buf) => pending !== null ? take(buf) : conn.tryRead!(buf);
    wrapped.whenReadable = (callback) =>
      pending !== null ? queueMicrotask(callback) : conn.whenReadable!(callback);
  }
  return wrapped;
}

/** Listening sockets per worker when the port is shared (SO_REUSEPORT). */
const ACCEPT_SOCKETS = 4;

/** How often idle clients are looked for, at most, ms. */
const IDLE_SWEEP_MS = 1000;

/** A listening socket and the sessions it accepted. */
export class Listener {
  /** One socket, or ACCEPT_SOCKETS sharing the port (SO_REUSEPORT), each with its own queue. */
  readonly #listeners: ProxyListener[];
  /** The TLS sockets (see `listenTls`), whose certificate a reload replaces. */
  readonly #tlsListeners: TlsListener[] = [];
  #options: ListenerOptions;
  readonly #sessions = new Set<Session>();
  /**
   * Sessions not closed yet: those reading (`#sessions`) and those whose read loop ended
   * while replies are still owed (a half-closed client, a graceful stop). A drain waits for
   * these, not for the read loops alone.
   */
  readonly #unclosed = new Set<Session>();
  #nextId = 0;
  #idleSweep: ReturnType<typeof setInterval> | undefined;

  /** Binds at once: throws when the address is taken. */
  constructor(options: ListenerOptions) {
    this.#options = options;
    const address = {
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort,
    };
    const api = sockets();
    this.#listeners = options.plain === false ? [] : [api.listen(address)];
    // Deno accepts one connection per op; with several sockets on the port, accepts run
    // side by side and a burst of connects spreads over several accept queues (511 each)
    // instead of overflowing one (an overflowing SYN waits 1 s for its retry).
    const extra = options.plain !== false && options.reusePort && options.port !== 0
      ? ACCEPT_SOCKETS - 1
      : 0;
    try {
      for (let i = 0; i < extra; i++) this.#listeners.push(api.listen(address));
    } catch (err) {
      for (const listener of this.#listeners) listener.close();
      throw err;
    }
    if (options.idleTimeoutMs > 0) {
      const every = Math.min(IDLE_SWEEP_MS, options.idleTimeoutMs);
      this.#idleSweep = setInterval(() => this.#closeIdle(), every);
    }
  }

  /**
   * Also accepts TLS clients on `hostname:port` (the runtime's TLS, whatever `io` is);
   * call before `serve`. Rejects when the address cannot be bound.
   */
  async listenTls(
    address: { hostname: string; port: number },
    credentials: TlsServerCredentials,
  ): Promise<void> {
    const listener = await tlsSockets().listen(
      { ...address, reusePort: this.#options.reusePort },
      credentials,
    );
    this.#tlsListeners.push(listener);
    this.#listeners.push(listener);
  }

  /** New TLS clients get `credentials` (a reload); connected ones keep theirs. */
  setTlsCredentials(credentials: TlsServerCredentials): void {
    for (const listener of this.#tlsListeners) listener.setCredentials(credentials);
  }

  #closeIdle(): void {
    const since = coarseClock.now - this.#options.idleTimeoutMs;
    for (const session of this.#sessions) {
      if (session.idleSince(since)) {
        logDebug(`client ${session.id} idle for ${this.#options.idleTimeoutMs} ms: closed`);
        session.close();
      }
    }
  }

  /** Applies new limits (a reload); they bind new clients, and idle checks of all. */
  update(
    limits: Pick<
      ListenerOptions,
      "maxClients" | "idleTimeoutMs" | "outputLimits" | "proxyProtocol"
    >,
  ): void {
    const idleChanged = limits.idleTimeoutMs !== this.#options.idleTimeoutMs;
    this.#options = { ...this.#options, ...limits };
    if (!idleChanged) return;
    clearInterval(this.#idleSweep);
    this.#idleSweep = undefined;
    if (limits.idleTimeoutMs > 0) {
      const every = Math.min(IDLE_SWEEP_MS, limits.idleTimeoutMs);
      this.#idleSweep = setInterval(() => this.#closeIdle(), every);
    }
  }

  /** Connected clients now. */
  get openSessions(): number {
    return this.#sessions.size;
  }

  /** Accepts clients until closed. */
  async serve(): Promise<void> {
    await Promise.all(this.#listeners.map((listener) => this.#acceptLoop(listener)));
  }

  async #acceptLoop(listener: ProxyListener): Promise<void> {
    for (;;) {
      let conn: ProxyConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (runtime.isErrorKind(err, "BadResource") || runtime.isErrorKind(err, "Interrupted")) {
          return;
        }
        logWarn(`accept failed: ${err instanceof Error ? err.message : err}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.#start(conn);
    }
  }

  #start(conn: ProxyConn): void {
    try {
      conn.setNoDelay(true);
    } catch {
      // the client may already be gone
    }
    if (!this.#options.proxyProtocol) {
      this.#open(conn, null);
      return;
    }
    // The header is read and removed before the session exists, so the session, its
    // logs and max_clients see the client the balancer names, and its first request only.
    this.#pending.add(conn);
    this.#readProxyHeader(conn).then((opened) => {
      this.#pending.delete(conn);
      if (opened === null || this.#closing) {
        try {
          conn.close();
        } catch {
          // already closed
        }
        return;
      }
      this.#open(opened.conn, opened.peer);
    });
  }

  /** Connections still sending their PROXY header (closed with the listener). */
  readonly #pending = new Set<ProxyConn>();
  #closing = false;

  /**
   * Reads the PROXY header: the connection with the bytes past it, and the client's address
   * (the socket's own for v1 UNKNOWN / v2 LOCAL); null when the header is malformed, late,
   * or the client left.
   */
  async #readProxyHeader(conn: ProxyConn): Promise<{ conn: ProxyConn; peer: string } | null> {
    const peerOfSocket = socketPeer(conn);
    const buf = new Uint8Array(PROXY_HEADER_BUFFER);
    let filled = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), PROXY_HEADER_TIMEOUT_MS);
    });
    try {
      // Each read adds at least one byte; the buffer bounds the loop.
      while (filled < buf.length) {
        const n = await Promise.race([conn.read(buf.subarray(filled)), late]);
        if (n === "late") {
          this.#badHeader(peerOfSocket, `no PROXY header within ${PROXY_HEADER_TIMEOUT_MS} ms`);
          return null;
        }
        if (n === null) return null;
        filled += n;
        const parsed = parseProxyHeader(buf, filled);
        if (parsed.kind === "more") continue;
        if (parsed.kind === "error") {
          this.#badHeader(peerOfSocket, parsed.message);
          return null;
        }
        const rest = buf.slice(parsed.length, filled);
        const peer = parsed.source === null ? peerOfSocket : formatPeer(parsed.source);
        return { conn: rest.length > 0 ? _afterHeader(conn, rest) : conn, peer };
      }
      this.#badHeader(peerOfSocket, "PROXY header too long");
      return null;
    } catch (err) {
      logDebug(`client ${peerOfSocket}: ${err instanceof Error ? err.message : err}`);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  #badHeader(peer: string, why: string): void {
    const metrics = this.#options.metrics;
    metrics.error("protocol");
    logWarn(`client ${peer || "?"}: bad PROXY protocol header (${why}): closed`);
  }

  /**
   * Starts a session for a client whose address is `peer` ("" when unknown; null: the
   * socket's, formatted when first asked for, not kept per idle client).
   */
  #open(conn: ProxyConn, peer: string | null): void {
    const metrics = this.#options.metrics;
    const session = new Session(++this.#nextId, conn, {
      limits: this.#options.outputLimits,
      metrics,
      peer,
      peers: this.#sessions,
      ...this.#options.mode,
    });
    const quota = this.#options.quota;
    if (
      quota === undefined
        ? this.#unclosed.size >= this.#options.maxClients
        : !quota.tryTake(this.#options.maxClients)
    ) {
      metrics.clientsRejected++;
      metrics.error("max_clients");
      logWarn(
        `max_clients reached (${this.#options.maxClients}${
          quota === undefined ? " in this worker" : ""
        }): client ${session.peer || session.id} refused`,
      );
      session.answerAndClose(session.protocol.errorReply("max number of clients reached"));
      return;
    }
    this.#sessions.add(session);
    this.#unclosed.add(session);
    session.onClosed = this.#sessionClosed;
    if (logEnabled("debug")) logDebug(`client ${session.id} from ${session.peer || "?"}`);
    metrics.clientsTotal++;
    metrics.clientsCurrent++;
    try {
      session.serve(this.#sessionEnded);
    } catch (err) {
      logWarn(`client ${session.id} failed: ${err instanceof Error ? err.stack : err}`);
      session.close();
      this.#sessionEnded(session);
    }
  }

  /** A session's read loop ended (once; one function for all: no closure per client). */
  readonly #sessionEnded = (session: Session): void => {
    if (!this.#sessions.delete(session)) return;
    if (logEnabled("debug")) logDebug(`client ${session.id} left (${session.peer || "?"})`);
  };

  /**
   * A session was closed (once; one function for all). Only now does it stop counting
   * toward max_clients: a half-closed client still being written to holds its socket.
   */
  readonly #sessionClosed = (session: Session): void => {
    if (!this.#unclosed.delete(session)) return;
    this.#options.quota?.release();
    this.#options.metrics.clientsCurrent--;
  };

  /**
   * Graceful stop: stops accepting, lets every client receive the replies it is owed (no
   * new requests are read) for up to `timeoutMs`, then closes whoever is left.
   */
  async drain(timeoutMs: number, stoppedAccepting: () => void = () => {}): Promise<void> {
    this.#stopAccepting();
    stoppedAccepting();
    for (const session of this.#sessions) session.shutdown();
    const deadline = performance.now() + timeoutMs;
    // Until every session is closed: one whose read loop ended may still be writing.
    while (this.#unclosed.size > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.#unclosed.size > 0) {
      logWarn(`shutdown_timeout: closing ${this.#unclosed.size} clients with replies owed`);
    }
    this.close();
  }

  #stopAccepting(): void {
    this.#closing = true;
    clearInterval(this.#idleSweep);
    for (const conn of this.#pending) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // already closed
      }
    }
  }

  /** Stops accepting and closes every client. */
  close(): void {
    this.#stopAccepting();
    for (const session of [...this.#unclosed]) session.close();
  }
}
