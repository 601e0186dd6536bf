/**
 * TLS sockets through `node:tls`, on Deno (its Node compatibility layer, rustls inside) and on
 * Bun alike; each runtime passes the errors its callers tell apart (`TlsErrors`).
 * Not `Deno.listenTls`: it can neither require client certificates (mutual TLS) nor change
 * a listening socket's certificate (reload without dropping clients); nor `Deno.connectTls`:
 * it cannot send an SNI name other than the host it connects to. Node's event-driven
 * sockets are adapted here to the `ProxyConn` read/write calls sessions and backend
 * connections make; only TLS connections pay for the adapter.
 */
import tls from "node:tls";
import { isIP } from "node:net";
import { clearTimeout, setTimeout } from "node:timers";
import type {
  ListenAddress,
  ProxyConn,
  TlsApi,
  TlsListener,
  TlsServerCredentials,
} from "./sockets.ts";

/** Errors of the runtime's own kinds, so callers tell a closed socket or a taken port apart. */
export interface TlsErrors {
  badResource(message: string): Error;
  brokenPipe(message: string): Error;
  addrInUse(message: string): Error;
  permissionDenied(message: string): Error;
}

/** Plaintext bytes buffered from a socket before it is paused until the reader catches up. */
const HIGH_WATER = 256 * 1024;

/** A reader waiting for bytes. */
interface _Waiter {
  buf: Uint8Array;
  resolve: (n: number | null) => void;
  reject: (err: Error) => void;
}

/** Longest a closed TLS connection may take to send what Node still holds for it, ms. */
const CLOSE_FLUSH_MS = 10_000;

/** A `node:tls` socket as a `ProxyConn`: reads from a queue of received chunks. */
class NodeTlsConn implements ProxyConn {
  /** close() was called: nothing more is written or kept of what arrives. */
  #closed = false;
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #waiter: _Waiter | null = null;
  #paused = false;
  readonly #errors: TlsErrors;
  /** The peer, as Deno's conns give it (the listener logs it). */
  readonly remoteAddr: { transport: "tcp"; hostname: string; port: number };

  constructor(socket: tls.TLSSocket, errors: TlsErrors) {
    this.#socket = socket;
    this.#errors = errors;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#closed) return; // read on only to see the peer's FIN
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#waiter !== null) {
        const waiter = this.#waiter;
        this.#waiter = null;
        waiter.resolve(this.#take(waiter.buf));
      } else if (this.#queued > HIGH_WATER && !this.#paused) {
        this.#paused = true;
        socket.pause();
      }
    });
    socket.on("end", () => this.#finish(null));
    socket.on("close", () => this.#finish(null));
    socket.on("error", (err: Error) => this.#finish(err));
  }

  #finish(err: Error | null): void {
    if (err !== null && this.#error === null && !this.#ended) this.#error = err;
    this.#ended = true;
    const waiter = this.#waiter;
    if (waiter === null || this.#chunks.length > 0) return;
    this.#waiter = null;
    if (this.#error !== null) waiter.reject(this.#error);
    else waiter.resolve(null);
  }

  #take(buf: Uint8Array): number {
    let n = 0;
    while (n < buf.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const size = Math.min(chunk.length, buf.length - n);
      buf.set(size === chunk.length ? chunk : chunk.subarray(0, size), n);
      n += size;
      if (size === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(size);
    }
    this.#queued -= n;
    if (this.#paused && this.#queued <= HIGH_WATER / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
    return n;
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(buf));
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#waiter = { buf, resolve, reject };
    });
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(this.#errors.badResource("closed"));
    }
    // Node may hold the bytes until they are sent; the caller reuses its buffer at once.
    const n = buf.length;
    if (this.#socket.write(buf.slice())) return Promise.resolve(n);
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.#socket.off("close", onClose);
        resolve(n);
      };
      const onClose = () => {
        this.#socket.off("drain", onDrain);
        reject(this.#error ?? this.#errors.brokenPipe("closed while writing"));
      };
      this.#socket.once("drain", onDrain);
      this.#socket.once("close", onClose);
    });
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  closeWrite(): void {
    if (this.#closed || this.#socket.destroyed) throw this.#errors.badResource("closed");
    this.#socket.end(); // close_notify and FIN after what Node holds; reading goes on
  }

  close(): void {
    this.#closed = true;
    // What arrives from now on is dropped, and a paused socket reads on to see the peer's FIN.
    this.#chunks.length = 0;
    this.#queued = 0;
    if (this.#paused) this.#socket.resume();
    // end(): what Node still holds is sent first, then close_notify and FIN (destroy() threw
    // it away: a QUIT after 1,000 PINGs got 170 replies). A peer that never takes it is cut
    // off after a while (a timer that keeps no event loop alive).
    if (!this.#socket.destroyed) {
      this.#socket.end();
      const socket = this.#socket;
      const timer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS).unref();
      socket.once("close", () => clearTimeout(timer));
    }
    this.#finish(null);
  }
}

/** A `node:tls` server as a `TlsListener`: accepted (handshaken) sockets queue for accept(). */
class NodeTlsListener implements TlsListener {
  readonly #server: tls.Server;
  readonly #ready: ProxyConn[] = [];
  #waiter: { resolve: (conn: ProxyConn) => void; reject: (err: Error) => void } | null = null;
  #closed = false;
  readonly #errors: TlsErrors;

  constructor(server: tls.Server, errors: TlsErrors) {
    this.#server = server;
    this.#errors = errors;
    server.on("secureConnection", (socket: tls.TLSSocket) => {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      const conn = new NodeTlsConn(socket, errors);
      if (this.#waiter !== null) {
        const waiter = this.#waiter;
        this.#waiter = null;
        waiter.resolve(conn);
      } else this.#ready.push(conn);
    });
    // A failed handshake (no client certificate, wrong CA, not TLS) ends that socket only.
    server.on("tlsClientError", (_err: Error, socket: tls.TLSSocket) => socket.destroy());
  }

  accept(): Promise<ProxyConn> {
    const conn = this.#ready.shift();
    if (conn !== undefined) return Promise.resolve(conn);
    if (this.#closed) return Promise.reject(this.#errors.badResource("listener closed"));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  setCredentials(credentials: TlsServerCredentials): void {
    this.#server.setSecureContext(_secureContext(credentials));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Stops accepting; connections already accepted are the sessions' and stay open.
    this.#server.close();
    for (const conn of this.#ready.splice(0)) conn.close();
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(this.#errors.badResource("listener closed"));
  }
}

function _secureContext(credentials: TlsServerCredentials): tls.SecureContextOptions {
  return {
    cert: credentials.cert,
    key: credentials.key,
    ...(credentials.ca === null ? {} : { ca: credentials.ca }),
  };
}

/** An error of the runtime's kind for a failed bind, so callers tell "in use" apart. */
function _listenError(
  err: Error & { code?: string },
  address: ListenAddress,
  errors: TlsErrors,
): Error {
  const where = `${address.hostname}:${address.port}`;
  if (err.code === "EADDRINUSE") return errors.addrInUse(`${where} is in use`);
  if (err.code === "EACCES") return errors.permissionDenied(`${where}: ${err.message}`);
  return err;
}

/** TLS sockets through `node:tls`, failing with `errors` of the runtime's kinds. */
export function nodeTls(errors: TlsErrors): TlsApi {
  return {
    listen(address, credentials) {
      const mutual = credentials.ca !== null;
      const server = tls.createServer({
        ..._secureContext(credentials),
        // Mutual TLS is fixed per listener: a reload that turns it on or off restarts it.
        requestCert: mutual,
        rejectUnauthorized: mutual,
        // A client that half-closes (sends FIN) still reads its replies, as on plain TCP.
        allowHalfOpen: true,
      });
      const listener = new NodeTlsListener(server, errors);
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(_listenError(err, address, errors));
        server.once("error", onError);
        server.listen(
          { host: address.hostname, port: address.port, reusePort: address.reusePort },
          () => {
            server.off("error", onError);
            resolve(listener);
          },
        );
      });
    },

    connect(address, options) {
      const host = address.hostname;
      // SNI carries names only; an IP host is still verified against the certificate's IPs.
      const servername = options.serverName ?? (isIP(host) === 0 ? host : undefined);
      return new Promise((resolve, reject) => {
        const socket = tls.connect({
          host,
          port: address.port,
          servername,
          ...(options.ca === null ? {} : { ca: options.ca }),
          ...(options.cert === null ? {} : { cert: options.cert }),
          ...(options.key === null ? {} : { key: options.key }),
          rejectUnauthorized: true,
        });
        const onError = (err: Error) => {
          socket.destroy();
          reject(new Error(`TLS handshake failed: ${err.message}`));
        };
        socket.once("error", onError);
        socket.once("secureConnect", () => {
          socket.off("error", onError);
          resolve(new NodeTlsConn(socket, errors));
        });
      });
    },
  };
}
