/** Accepts clients on one address and runs a Session for each. */
import { logDebug, logWarn } from "../log.ts";
import { type OutputLimits, type RequestHandler, Session } from "./session.ts";
import { coarseClock } from "../backend/coarse_clock.ts";
import type { ClusterMetrics } from "../metrics/worker_metrics.ts";
import { type ProxyConn, type ProxyListener, sockets } from "../io/sockets.ts";
import { runtime } from "../runtime/runtime.ts";

/** What a listener needs: where to listen and how to serve a new client. */
export interface ListenerOptions {
  hostname: string;
  port: number;
  /** Share the port with the other workers (SO_REUSEPORT). */
  reusePort: boolean;
  /** The protocol handler of a new session. */
  newHandler: (session: Session) => RequestHandler;
  /** Most sessions at once; a client past it gets an error reply and is closed. */
  maxClients: number;
  /** Close clients idle this long, ms; 0 never does. */
  idleTimeoutMs: number;
  /** Bounds on the replies owed to one client. */
  outputLimits: OutputLimits;
  /** This cluster's counters in this worker. */
  metrics: ClusterMetrics;
}

/** Listening sockets per worker when the port is shared (SO_REUSEPORT). */
const ACCEPT_SOCKETS = 4;

/** How often idle clients are looked for, at most, ms. */
const IDLE_SWEEP_MS = 1000;

/** A listening socket and the sessions it accepted. */
export class Listener {
  /** One socket, or ACCEPT_SOCKETS sharing the port (SO_REUSEPORT), each with its own queue. */
  readonly #listeners: ProxyListener[];
  #options: ListenerOptions;
  readonly #sessions = new Set<Session>();
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
    this.#listeners = [api.listen(address)];
    // Deno accepts one connection per op; with several sockets on the port, accepts run
    // side by side and a burst of connects spreads over several accept queues (511 each)
    // instead of overflowing one (an overflowing SYN waits 1 s for its retry).
    const extra = options.reusePort && options.port !== 0 ? ACCEPT_SOCKETS - 1 : 0;
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
  update(limits: Pick<ListenerOptions, "maxClients" | "idleTimeoutMs" | "outputLimits">): void {
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
    const metrics = this.#options.metrics;
    const session = new Session(++this.#nextId, conn, {
      limits: this.#options.outputLimits,
      metrics,
    });
    session.handler = this.#options.newHandler(session);
    if (this.#sessions.size >= this.#options.maxClients) {
      metrics.clientsRejected++;
      metrics.error("max_clients");
      logWarn(`max_clients reached (${this.#options.maxClients} in this worker): client refused`);
      session.answerAndClose(session.handler.errorReply("max number of clients reached"));
      return;
    }
    this.#sessions.add(session);
    metrics.clientsTotal++;
    metrics.clientsCurrent++;
    session.run().catch((err) => {
      logWarn(`client ${session.id} failed: ${err instanceof Error ? err.stack : err}`);
      session.close();
    }).finally(() => {
      this.#sessions.delete(session);
      metrics.clientsCurrent--;
      logDebug(`client ${session.id} left`);
    });
  }

  /**
   * Graceful stop: stops accepting, lets every client receive the replies it is owed (no
   * new requests are read) for up to `timeoutMs`, then closes whoever is left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#stopAccepting();
    for (const session of this.#sessions) session.shutdown();
    const deadline = performance.now() + timeoutMs;
    while (this.#sessions.size > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.#sessions.size > 0) {
      logWarn(`shutdown_timeout: closing ${this.#sessions.size} clients with replies owed`);
    }
    this.close();
  }

  #stopAccepting(): void {
    clearInterval(this.#idleSweep);
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
    for (const session of this.#sessions) session.close();
  }
}
