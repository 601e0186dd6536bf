/**
 * An in-memory socket for unit tests of the core (Session, NodeConn, routing): no ports,
 * no event loop waits beyond microtasks. A test plays the peer: it pushes bytes for the
 * code under test to read and inspects what the code wrote.
 */
import { type ProxyConn, type SocketApi, sockets, useSockets } from "../../src/io/sockets.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** A ProxyConn whose peer is the test. */
export class FakeConn implements ProxyConn {
  /** Every chunk the code under test wrote, in order. */
  readonly writes: Uint8Array[] = [];
  /** True once the code under test closed it. */
  closed = false;
  /** When true, writes stay pending (a client that does not read) until `releaseWrites()`. */
  stallWrites = false;
  /** Bytes the peer sent that no read has taken yet. */
  #inbox: Uint8Array[] = [];
  #eof = false;
  #failure: Error | null = null;
  #reader:
    | { buf: Uint8Array; resolve: (n: number | null) => void; reject: (e: Error) => void }
    | null = null;
  #stalled: { bytes: Uint8Array; resolve: (n: number) => void }[] = [];
  #written = 0;
  /** Set by whenReadable(): called once the peer sends, ends or fails (or on close). */
  #onReadable: (() => void) | null = null;
  /** Reads without a promise (`tryRead`, `whenReadable`), as `io = "ffi"`'s sockets do. */
  tryRead?: (buf: Uint8Array) => number | null | undefined;
  whenReadable?: (callback: () => void) => void;
  /** True once the code under test half-closed it (the peer would read EOF). */
  writeClosed = false;
  /** Half-closes (absent with `halfCloses: false`, as a socket that cannot). */
  closeWrite?: () => void;

  /**
   * `readsNow`: also reads as raw sockets do (tryRead and whenReadable), not only read().
   * `halfCloses` (default true): it has closeWrite().
   */
  constructor(options: { readsNow?: boolean; halfCloses?: boolean } = {}) {
    if (options.halfCloses ?? true) {
      this.closeWrite = () => {
        if (this.closed) throw new Error("BadResource: closed");
        this.writeClosed = true;
      };
    }
    if (!options.readsNow) return;
    this.tryRead = (buf) => {
      if (this.closed) throw new Error("BadResource: closed");
      if (this.#inbox.length > 0) return this.#take(buf);
      if (this.#failure !== null) throw this.#failure;
      return this.#eof ? null : undefined;
    };
    this.whenReadable = (callback) => {
      if (this.closed || this.#inbox.length > 0 || this.#eof || this.#failure !== null) {
        queueMicrotask(callback);
      } else this.#onReadable = callback;
    };
  }

  /** Moves the oldest bytes sent into `buf`; returns how many. */
  #take(buf: Uint8Array): number {
    const head = this.#inbox[0];
    const n = Math.min(head.length, buf.length);
    buf.set(head.subarray(0, n));
    if (n === head.length) this.#inbox.shift();
    else this.#inbox[0] = head.subarray(n);
    return n;
  }

  /** The peer sends `data` (a string is sent as Latin-1 bytes). */
  push(data: string | Uint8Array): void {
    this.#inbox.push(typeof data === "string" ? encoder.encode(data) : data.slice());
    this.#serve();
  }

  /** The peer closes its side: the next read sees EOF. */
  end(): void {
    this.#eof = true;
    this.#serve();
  }

  /** The socket fails: the pending read (or the next one) rejects with `message`. */
  fail(message: string): void {
    this.#failure = new Error(message);
    this.#serve();
  }

  /** Everything written so far, as text. */
  text(): string {
    return this.writes.map((bytes) => latin1.decode(bytes)).join("");
  }

  /** Bytes written so far. */
  get writtenBytes(): number {
    return this.#written;
  }

  /** Completes the writes held by `stallWrites` (and stops stalling). */
  releaseWrites(): void {
    this.stallWrites = false;
    for (const { bytes, resolve } of this.#stalled.splice(0)) {
      this.#record(bytes);
      resolve(bytes.length);
    }
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.closed) return Promise.reject(new Error("BadResource: closed"));
    return new Promise((resolve, reject) => {
      this.#reader = { buf, resolve, reject };
      this.#serve();
    });
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error("Broken pipe (os error 32)"));
    if (this.stallWrites) {
      return new Promise((resolve) => this.#stalled.push({ bytes: buf.slice(), resolve }));
    }
    this.#record(buf);
    return Promise.resolve(buf.length);
  }

  setNoDelay(): void {}

  close(): void {
    if (this.closed) throw new Error("BadResource: already closed");
    this.closed = true;
    const callback = this.#onReadable;
    this.#onReadable = null;
    if (callback !== null) queueMicrotask(callback);
    const reader = this.#reader;
    this.#reader = null;
    reader?.reject(new Error("Interrupted: closed"));
  }

  #record(buf: Uint8Array): void {
    this.writes.push(buf.slice());
    this.#written += buf.length;
  }

  #serve(): void {
    const callback = this.#onReadable;
    if (callback !== null) {
      this.#onReadable = null;
      queueMicrotask(callback);
    }
    const reader = this.#reader;
    if (reader === null) return;
    if (this.#inbox.length > 0) {
      this.#reader = null;
      reader.resolve(this.#take(reader.buf));
    } else if (this.#failure !== null) {
      this.#reader = null;
      reader.reject(this.#failure);
    } else if (this.#eof) {
      this.#reader = null;
      reader.resolve(null);
    }
  }
}

/**
 * A SocketApi whose connect() hands out FakeConns the test scripts: each connect takes the
 * next entry of `script` (a conn, or an Error to refuse with), and a fresh FakeConn when the
 * script is used up. Every conn handed out is kept in `opened`.
 */
export class FakeSockets implements SocketApi {
  readonly name = "deno";
  readonly opened: FakeConn[] = [];
  /** The "host:port" each conn of `opened` was dialled to. */
  readonly addresses: string[] = [];
  readonly script: (FakeConn | Error)[] = [];
  /** Whether the conns made when the script is used up can half-close (FakeConn's option). */
  halfCloses = true;
  /** While true, a connect stays under way until releaseConnects(). */
  holdConnects = false;
  #heldConnects: (() => void)[] = [];

  /** Completes the connects held by `holdConnects` (and stops holding). */
  releaseConnects(): void {
    this.holdConnects = false;
    for (const complete of this.#heldConnects.splice(0)) complete();
  }

  /** The last conn dialled to `addr` ("host:port"). */
  connTo(addr: string): FakeConn {
    const at = this.addresses.lastIndexOf(addr);
    if (at < 0) throw new Error(`nothing dialled ${addr}`);
    return this.opened[at];
  }

  rawSockets(): number {
    return 0;
  }

  listen(): never {
    throw new Error("FakeSockets does not listen");
  }

  connect(address: { hostname: string; port: number }): Promise<FakeConn> {
    const next = this.script.shift() ?? new FakeConn({ halfCloses: this.halfCloses });
    if (next instanceof Error) return Promise.reject(next);
    this.opened.push(next);
    this.addresses.push(`${address.hostname}:${address.port}`);
    if (this.holdConnects) {
      return new Promise((resolve) => this.#heldConnects.push(() => resolve(next)));
    }
    return Promise.resolve(next);
  }
}

/** Lets queued microtasks and promise callbacks run (a few hops deep). */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
}

/** Runs `body` with fake sockets installed, and puts the real ones back after. */
export async function withFakeSockets(body: (fake: FakeSockets) => Promise<void>): Promise<void> {
  const real = sockets();
  const fake = new FakeSockets();
  useSockets(fake);
  try {
    await body(fake);
  } finally {
    useSockets(real);
  }
}
