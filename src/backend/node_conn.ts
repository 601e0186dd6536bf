/** One pipelined connection to a backend node: a write batch out, a FIFO of waiting sinks back. */
import { LEND_FROM, lentInput, ReadBuffer } from "../io/read_buffer.ts";
import { BufferLease } from "../io/buffer_pool.ts";
import { RingQueue } from "../io/ring_queue.ts";
import { OWN_FROM, WriteBatcher } from "../io/write_batcher.ts";
import { type ProxyConn, sockets, type TlsClientOptions, tlsSockets } from "../io/sockets.ts";
import { logDebug, logWarn } from "../log.ts";
import { coarseClock } from "../io/coarse_clock.ts";
import type { ReplyFramer, ReplySink } from "../protocol/protocol.ts";
import { LatencyRecorder } from "../metrics/worker_metrics.ts";

export type { ReplyFramer } from "../protocol/protocol.ts";

/** Settings of a node connection. */
export interface NodeConnOptions {
  /** Shown in errors and logs: the alias or "host:port". */
  name: string;
  host: string;
  port: number;
  /** Connect timeout, ms. */
  dialTimeout: number;
  /** Longest wait for one reply, ms. */
  readTimeout: number;
  /**
   * Once its client left (clientLeft, closeWrite): the longest wait for one reply, ms, as
   * readTimeout is until then (a dedicated connection's is Infinity; default: readTimeout).
   */
  leftClientTimeout?: number;
  /** Longest a write may stay in flight, ms. */
  writeTimeout: number;
  /** A fresh reply framer for each new socket. */
  newFramer: () => ReplyFramer;
  /** Bytes written first on every new socket (e.g. AUTH), whose replies are checked. */
  handshake?: Uint8Array[];
  /** Connect over TLS with these settings (`backend_tls`); null or absent: plain TCP. */
  tls?: TlsClientOptions | null;
  /**
   * The protocol's judgement of a handshake reply: the refusal (the socket is dropped),
   * or null when accepted. Required with `handshake`.
   */
  handshakeRefusal?: (reply: Uint8Array) => string | null;
}

/** What a connection is for, fixed for its life (reloads replace its options, not these). */
export interface NodeConnTraits {
  /**
   * How large full reads may grow its read buffer: SHARED_READ_BUFFER_GROWS_TO for a pool's
   * shared connections; by default ReadBuffer's 64 KB (a dedicated or subscription
   * connection: there may be thousands, each keeping its buffer while idle).
   */
  readBufferGrowsTo?: number;
}

/**
 * A shared connection's read buffer doubles on full reads up to this. At 64 KB a backend
 * carrying 50 clients' 100 KB replies read about one reply per read and moved the partial
 * next one to the front each time (28 KB copied per reply); at 1 MB a read takes several
 * replies, with a sixth of the reads and a twelfth of the copying. A node pool has a few
 * shared connections per node and worker.
 */
export const SHARED_READ_BUFFER_GROWS_TO = 1024 * 1024;

type State = "connecting" | "up" | "down" | "closed";

/**
 * The one receiver of a connection in push mode (a subscription connection): every frame
 * that no waiting request claims (messages, confirmations, pongs), and the socket's loss.
 */
export interface PushHandler {
  /** One frame: a view into the read buffer, valid during the call (unless `owned`). */
  onFrame(frame: Uint8Array, owned: boolean): void;
  /** The socket failed or the connection was closed: what was subscribed on it is gone. */
  onDown(reason: string): void;
  /**
   * Optional fast path, tried before each frame: takes the run of frames at `start` of
   * `data` (up to `end`) that the handler passes on as one (a subscription's messages),
   * copying what it keeps during the call; returns its length, 0 to take none (the next
   * frame then goes to onFrame).
   */
  takeRun?(data: Uint8Array, start: number, end: number): number;
}

/** First and largest delay between reconnect attempts, ms. */
const BACKOFF_MIN = 50;
const BACKOFF_MAX = 2000;
/** Read buffer of a backend connection: few of them, each carrying many clients' replies. */
const BACKEND_READ_CAPACITY = 16 * 1024;
/**
 * Replies expected to be this large are shown to their sink while they arrive (onPartial):
 * a client then reads a 16 MB value while the rest of it is still coming from the backend.
 */
export const STREAM_FROM = 1024 * 1024;

interface Pending {
  sink: ReplySink;
  /** When queued (coarse clock), for read_timeout. */
  at: number;
  kind: number;
  /** The write batch it went out in: its start time measures the reply latency. */
  batch: SendBatch;
}

/** Requests written together; one clock read per batch instead of one per request. */
interface SendBatch {
  /** performance.now() when the batch's write started; -1 until then. */
  sentAt: number;
  /** performance.now() when its last byte went to the socket; -1 until then (read_timeout starts). */
  writtenAt: number;
}

/**
 * A backend connection shared by many clients. Requests are appended to one write batch
 * and their sinks to a FIFO; replies complete the FIFO head in order. When the socket
 * fails or a reply is late, every waiting sink gets an error and the socket is replaced;
 * while the node is unreachable, requests fail at once rather than wait.
 */
export class NodeConn {
  options: NodeConnOptions;
  #state: State = "down";
  #conn: ProxyConn | null = null;
  #writer: WriteBatcher | null = null;
  #pending = new RingQueue<Pending>();
  #generation = 0;
  #backoff = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #dialStartedAt = 0;
  #lastError = "not connected yet";
  /** The batch that requests queued now will be written in. */
  #batch: SendBatch = { sentAt: -1, writtenAt: -1 };
  /** The batch being written. */
  #writing: SendBatch | null = null;
  /** performance.now() when the last reply completed: the head has waited since then at most. */
  #headSince = 0;
  /** Reply latency of the requests sent on this connection. */
  readonly latency = new LatencyRecorder();
  /** Push mode: frames with no request waiting go here instead of failing the connection. */
  #push: PushHandler | null = null;
  /**
   * The read loop's framer holds a partial frame (it resumes there): no run may be taken
   * past it by the push handler's fast path.
   */
  #midFrame = false;
  /** closeWrite() was called: nothing more is sent, and the backend's EOF closes it for good. */
  #writeClosed = false;
  /** performance.now() when its client left (clientLeft); -1 while it has not. */
  #leftAt = -1;

  readonly #traits: NodeConnTraits;

  constructor(options: NodeConnOptions, traits: NodeConnTraits = {}) {
    this.options = options;
    this.#traits = traits;
  }

  /** Current state, for health checks and metrics. */
  get state(): State {
    return this.#state;
  }

  /** Requests sent and not yet answered. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The sink of the request the backend answers next (undefined when none waits). */
  get headSink(): ReplySink | undefined {
    return this.#pending.peek()?.sink;
  }

  /** True when this connection can serve a pool with `options` as it is (same node, same handshake). */
  canServe(options: NodeConnOptions): boolean {
    const mine = this.options;
    const same = (a: Uint8Array[] = [], b: Uint8Array[] = []) =>
      a.length === b.length && a.every((bytes, i) => bytes.join() === b[i].join());
    return mine.host === options.host && mine.port === options.port &&
      same(mine.handshake, options.handshake) && this.#state !== "closed" &&
      JSON.stringify(mine.tls ?? null) === JSON.stringify(options.tls ?? null);
  }

  /** Takes new timeouts and name (a reload); the socket stays. */
  adopt(options: NodeConnOptions): void {
    this.options = {
      ...options,
      newFramer: this.options.newFramer,
      handshakeRefusal: this.options.handshakeRefusal,
    };
  }

  /** Starts connecting now. */
  connect(): void {
    if (this.#state === "closed" || this.#state === "connecting" || this.#state === "up") return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#open();
  }

  /**
   * Queues one encoded request. `bytes` is copied, so it may be a view into a reused
   * buffer. When the node is down the sink fails at once, synchronously. `kind` is handed
   * to the framer with the reply (0 unless the protocol needs it).
   */
  send(bytes: Uint8Array, sink: ReplySink, kind = 0): void {
    if (
      this.#state === "down" || this.#state === "closed" || this.#writer === null ||
      this.#writeClosed
    ) {
      sink.onError(`backend ${this.options.name} is unavailable: ${this.#lastError}`);
      return;
    }
    if (lentInput.open && bytes.length >= LEND_FROM) {
      // A large request in a session's read buffer, which it will not reuse until the
      // lease says every lent request was written: no copy.
      lentInput.taken = true;
      this.#writer.appendLent(bytes, lentInput.lease ??= new BufferLease());
    } else this.#writer.append(bytes);
    this.#pending.push({ sink, at: coarseClock.now, kind, batch: this.#batch });
  }

  /**
   * Push mode (a subscription connection): frames that no request waits for go to
   * `handler`, and the loss of the socket is reported to it. The handshake's replies still
   * complete their requests first.
   */
  setPushHandler(handler: PushHandler | null): void {
    this.#push = handler;
  }

  /**
   * Push mode: queues bytes whose replies go to the push handler (no request waits for
   * them). False when the connection is down.
   */
  sendPush(bytes: Uint8Array): boolean {
    if (this.#state === "down" || this.#state === "closed" || this.#writer === null) return false;
    this.#writer.append(bytes);
    return true;
  }

  /** Fails what is late: the oldest reply past read_timeout, a write or dial past its bound. */
  checkTimeouts(now: number): void {
    if (this.#state === "connecting") {
      if (now - this.#dialStartedAt > this.options.dialTimeout) {
        this.#fail(`connect timed out after ${this.options.dialTimeout} ms`);
      }
      return;
    }
    if (this.#state !== "up") return;
    const head = this.#pending.peek();
    // A request's read_timeout counts from when it was wholly written (until then
    // write_timeout bounds it) and the reply before it was complete: not time spent queued
    // behind other requests, however large their bytes or replies.
    const writtenAt = head?.batch.writtenAt ?? -1;
    const left = this.#leftAt >= 0;
    const readTimeout = left
      ? this.options.leftClientTimeout ?? this.options.readTimeout
      : this.options.readTimeout;
    if (
      writtenAt >= 0 && now - Math.max(writtenAt, this.#headSince, this.#leftAt) > readTimeout
    ) {
      this.#fail(
        left
          ? `timed out: no reply within ${readTimeout} ms after its client left`
          : `timed out after read_timeout ${readTimeout} ms`,
      );
      return;
    }
    const writeStartedAt = this.#writer?.writeStartedAt ?? -1;
    if (writeStartedAt >= 0 && now - writeStartedAt > this.options.writeTimeout) {
      this.#fail(`write timed out after ${this.options.writeTimeout} ms`);
    }
  }

  /** True once closeWrite() was called: the connection is never used again. */
  get writeClosed(): boolean {
    return this.#writeClosed;
  }

  /**
   * The client of this dedicated connection ended its input: from now on each reply must
   * come within `leftClientTimeout` (counted from now at the earliest), so a backend that
   * went quiet does not keep a leaving client's session and connection.
   */
  clientLeft(): void {
    if (this.#leftAt < 0) this.#leftAt = performance.now();
  }

  /**
   * Half-closes a dedicated connection whose client left while blocked: once what is queued
   * is written (after the dial, if it is under way), the backend reads EOF after it and does
   * what redis-server does when a client leaves: it answers what it read (those replies
   * still arrive), frees a blocked client (a BLPOP pops nothing) and closes, which closes
   * this for good (what still waits gets an error). Implies clientLeft(). False when the
   * connection is down or its socket cannot half-close: the caller closes it instead.
   */
  closeWrite(): boolean {
    const conn = this.#conn;
    if (this.#state === "down" || this.#state === "closed") return false;
    if (conn !== null && conn.closeWrite === undefined) return false;
    this.clientLeft();
    if (this.#writeClosed) return true;
    this.#writeClosed = true;
    this.#lastError = "connection closing";
    if (conn !== null && this.#state === "up") this.#closeWriteWhenWritten(conn);
    return true;
  }

  /** Half-closes `conn` once the writer has written what is queued (see closeWrite). */
  #closeWriteWhenWritten(conn: ProxyConn): void {
    const generation = this.#generation;
    this.#writer!.idle().then(() => {
      if (generation !== this.#generation) return;
      try {
        Promise.resolve(conn.closeWrite!()).catch((err) => this.#fail(_osMessage(err)));
      } catch (err) {
        this.#fail(_osMessage(err));
      }
    });
  }

  /** Closes for good: waiting sinks get an error, no reconnect. */
  close(): void {
    this.#closeFor("connection closed by proxy");
  }

  /** Closes for good, failing every waiting sink with `reason` (a pinned request's deadline). */
  abort(reason: string): void {
    if (this.#state === "closed") return;
    logWarn(`backend ${this.options.name}: ${reason}`);
    this.#closeFor(reason);
  }

  /** Closes for good, failing every waiting sink with `reason`; no reconnect. */
  #closeFor(reason: string): void {
    if (this.#state === "closed") return;
    this.#drop(reason);
    this.#state = "closed";
    clearTimeout(this.#retryTimer);
  }

  #open(): void {
    const generation = ++this.#generation;
    this.#state = "connecting";
    this.#dialStartedAt = coarseClock.now;
    this.#writer = new WriteBatcher(null, (err) => {
      if (generation === this.#generation) this.#fail(`write failed: ${_osMessage(err)}`);
    }, { keepBuffers: true });
    this.#batch = { sentAt: -1, writtenAt: -1 };
    this.#writer.onFlush = (startedAt) => {
      // What was queued so far goes out now; later requests join the next batch.
      this.#batch.sentAt = startedAt;
      this.#writing = this.#batch;
      this.#batch = { sentAt: -1, writtenAt: -1 };
    };
    this.#writer.onWritten = () => {
      // A clock read per backend write (not per request): the coarse clock may be a tick old.
      if (this.#writing !== null) this.#writing.writtenAt = performance.now();
      this.#writing = null;
    };
    for (const bytes of this.options.handshake ?? []) this.#sendHandshake(bytes);
    const address = { hostname: this.options.host, port: this.options.port };
    // TLS always runs on the runtime's TLS sockets, even when plain ones are raw.
    const tls = this.options.tls;
    (tls ? tlsSockets().connect(address, tls) : sockets().connect(address)).then(
      (conn) => {
        if (generation !== this.#generation) {
          conn.close();
          return;
        }
        conn.setNoDelay(true);
        this.#conn = conn;
        this.#state = "up";
        this.#backoff = 0;
        this.#writer!.attach(conn);
        logDebug(`backend ${this.options.name} connected`);
        this.#readLoop(conn, generation);
        // Its client left while it was dialled (closeWrite).
        if (this.#writeClosed) {
          if (conn.closeWrite === undefined) this.close();
          else this.#closeWriteWhenWritten(conn);
        }
      },
      (err) => {
        if (generation === this.#generation) {
          // Raw sockets say "connect failed" themselves: not twice.
          this.#fail(`connect failed: ${_osMessage(err).replace(/^connect failed: /, "")}`);
        }
      },
    );
  }

  #sendHandshake(bytes: Uint8Array): void {
    const name = this.options.name;
    this.#writer!.append(bytes);
    this.#pending.push({
      sink: {
        onReply: (reply) => {
          const refusal = this.options.handshakeRefusal?.(reply) ?? null;
          if (refusal !== null) this.#fail(`handshake refused by ${name}: ${refusal}`);
        },
        onError: () => {},
      },
      at: coarseClock.now,
      kind: 0,
      batch: this.#batch,
    });
  }

  async #readLoop(conn: ProxyConn, generation: number): Promise<void> {
    const buffer = new ReadBuffer(BACKEND_READ_CAPACITY, {
      keepGrown: true,
      growsTo: this.#traits.readBufferGrowsTo,
    });
    const framer = this.options.newFramer();
    // A framer that announces reply sizes lets a large reply grow its buffer from the pool in
    // one step: after one is handed on, the connection reads on in a small buffer.
    const announcesSizes = framer.neededBytes !== undefined;
    this.#midFrame = false;
    try {
      for (;;) {
        const n = await conn.read(buffer.freeSpace());
        if (generation !== this.#generation) return;
        const readAt = performance.now(); // one clock read per chunk of replies
        if (n === null) {
          // After closeWrite() this is the backend's answer: #fail closes quietly then.
          this.#fail("connection closed by backend");
          return;
        }
        buffer.commit(n);
        let replied = false;
        while (buffer.start < buffer.end) {
          const head = this.#pending.peek();
          if (head === undefined) {
            if (this.#push !== null) {
              if (!this.#pushFrame(framer, buffer)) break;
              if (generation !== this.#generation) return;
              continue;
            }
            this.#fail("reply without a request");
            return;
          }
          const size = framer.frame(buffer.data, buffer.start, buffer.end, head.kind);
          this.#midFrame = size < 0;
          if (size < 0) {
            if (announcesSizes) {
              // A large reply under way: room for all of it at once, not 4x at a time.
              const needed = framer.neededBytes!;
              if (needed > buffer.data.length - buffer.start) buffer.expect(needed);
              if (needed >= STREAM_FROM && head.sink.onPartial !== undefined) {
                this.#offerPartial(head.sink, buffer);
                if (generation !== this.#generation) return;
              }
            }
            break;
          }
          const reply = buffer.data.subarray(buffer.start, buffer.start + size);
          buffer.start += size;
          // A large reply is handed on in the buffer it was read into, not copied: the
          // connection reads on in a new buffer. So is one whose start was lent already.
          const owned = size >= OWN_FROM || buffer.lease !== null;
          // The sink holds the buffer until it drops the lease (or GC, if it never does).
          let lease: BufferLease | undefined;
          if (owned) {
            lease = buffer.lease ?? new BufferLease();
            buffer.lease = null;
            lease.hold();
            lease.seal(buffer.detach(!announcesSizes));
          }
          this.#pending.shift();
          replied = true;
          if (head.batch.sentAt >= 0) this.latency.observeMs(readAt - head.batch.sentAt);
          try {
            head.sink.onReply(reply, owned, lease);
          } catch (err) {
            logWarn(`reply handler failed: ${_message(err)}`);
          }
          if (generation !== this.#generation) return;
        }
        if (replied) this.#headSince = readAt;
      }
    } catch (err) {
      if (generation === this.#generation) this.#fail(_osMessage(err));
    }
  }

  /**
   * Shows the head's sink the large reply read so far, for it to write on what it can
   * (cut-through); views it keeps are lent under the buffer's lease.
   */
  #offerPartial(sink: ReplySink, buffer: ReadBuffer): void {
    const lease = buffer.lease ??= new BufferLease();
    try {
      sink.onPartial!(buffer.data, buffer.start, buffer.end, lease);
    } catch (err) {
      logWarn(`reply handler failed: ${_message(err)}`);
    }
  }

  /** Hands the next complete frame to the push handler; false when more bytes are needed. */
  #pushFrame(framer: ReplyFramer, buffer: ReadBuffer): boolean {
    const push = this.#push!;
    if (push.takeRun !== undefined && !this.#midFrame) {
      let run = 0;
      try {
        run = push.takeRun(buffer.data, buffer.start, buffer.end);
      } catch (err) {
        logWarn(`push handler failed: ${_message(err)}`);
      }
      if (run > 0) {
        buffer.start += run;
        return true;
      }
    }
    const size = framer.frame(buffer.data, buffer.start, buffer.end, 0);
    this.#midFrame = size < 0;
    if (size < 0) return false;
    const frame = buffer.data.subarray(buffer.start, buffer.start + size);
    buffer.start += size;
    const owned = size >= OWN_FROM;
    if (owned) buffer.detach();
    try {
      push.onFrame(frame, owned);
    } catch (err) {
      logWarn(`push handler failed: ${_message(err)}`);
    }
    return true;
  }

  /** Drops the socket, fails every waiting sink and schedules a reconnect with backoff. */
  #fail(reason: string): void {
    if (this.#state === "closed") return;
    if (this.#writeClosed) {
      this.#closeFor(reason); // its client is leaving: no reconnect, nothing to warn of
      return;
    }
    logWarn(`backend ${this.options.name}: ${reason}`);
    this.#drop(reason);
    this.#state = "down";
    this.#backoff = Math.min(BACKOFF_MAX, this.#backoff === 0 ? BACKOFF_MIN : this.#backoff * 2);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === "down") this.#open();
    }, this.#backoff);
  }

  #drop(reason: string): void {
    this.#generation++;
    this.#lastError = reason;
    this.#writer?.discard();
    this.#writer = null;
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    this.#conn = null;
    const message = `backend ${this.options.name}: ${reason}`;
    const push = this.#push;
    if (push !== null) {
      this.#push = null;
      try {
        push.onDown(message);
      } catch (err) {
        logWarn(`push handler failed: ${_message(err)}`);
      }
    }
    for (const { sink } of this.#pending.drain()) {
      try {
        sink.onError(message);
      } catch (err) {
        logWarn(`error handler failed: ${_message(err)}`);
      }
    }
  }
}

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The OS's words for the socket errors a backend connection meets (Linux errno values). */
const OS_ERRORS: Record<number, string> = {
  32: "Broken pipe",
  104: "Connection reset by peer",
  110: "Connection timed out",
  111: "Connection refused",
  113: "No route to host",
};

/**
 * A socket error as clients match it: the OS's words (`Connection refused`), as Deno's
 * errors say them, also when a raw-socket error gives only `errno N`.
 */
function _osMessage(err: unknown): string {
  const message = _message(err);
  return message.replace(/errno (\d+)/, (whole, code) => {
    const words = OS_ERRORS[Number(code)];
    return words === undefined || message.includes(words) ? whole : `${words} (${whole})`;
  });
}
