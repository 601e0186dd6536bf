/**
 * The load loop of one memcache load connection: batches of `pipeline` random-key requests
 * written at once, their replies read and checked, each request's latency recorded, until
 * the phase (a request budget or a deadline, shared by a thread's connections) is over.
 */
import type { ProxyConn } from "../../src/io/sockets.ts";
import { checkReply, showBytes, UnexpectedReply, type Wire } from "./replies.ts";
import { BUCKET_MS, BUCKETS } from "./results.ts";

/** Per-connection receive buffer (grown on demand). */
const READ_BUFFER = 64 * 1024;

/** Shared by the connections of one thread: the request budget and the counters. */
export class Phase {
  remaining: number;
  readonly deadline: number;
  readonly histogram: Uint32Array | null;
  requests = 0;
  hits = 0;
  misses = 0;
  failed = false;

  constructor(opts: { requests: number; deadline: number; histogram: Uint32Array | null }) {
    this.remaining = opts.requests;
    this.deadline = opts.deadline;
    this.histogram = opts.histogram;
  }

  /** Up to `want` more requests to send, 0 when the phase is over. */
  take(want: number): number {
    if (this.failed) return 0;
    if (this.deadline !== Infinity) return performance.now() < this.deadline ? want : 0;
    const n = Math.min(want, this.remaining);
    this.remaining -= n;
    return n;
  }
}

/** One connection: a send buffer, a receive buffer and the keys in flight. */
export class Client {
  readonly #conn: ProxyConn;
  readonly #wire: Wire;
  readonly #op: "get" | "set";
  #send = new Uint8Array(4096);
  #recv = new Uint8Array(READ_BUFFER);
  #inFlight: Int32Array;
  /** xorshift32 state. */
  #seed: number;

  constructor(conn: ProxyConn, opts: { wire: Wire; op: "get" | "set"; seed: number }) {
    this.#conn = conn;
    this.#wire = opts.wire;
    this.#op = opts.op;
    this.#inFlight = new Int32Array(16);
    this.#seed = (opts.seed * 2654435761) >>> 0 || 1;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /** Sends batches of `pipeline` random-key requests until `phase` runs out. */
  async run(phase: Phase, pipeline: number): Promise<void> {
    const keys = this.#wire.requests.length;
    for (;;) {
      const n = phase.take(pipeline);
      if (n === 0) return;
      const picked: number[] = [];
      for (let i = 0; i < n; i++) picked.push(this.#nextKey() % keys);
      await this.batch(picked, phase);
    }
  }

  /** Writes the requests for `keys`, reads and checks their replies, records latencies. */
  async batch(keys: number[], phase: Phase): Promise<void> {
    const n = keys.length;
    if (this.#inFlight.length < n) this.#inFlight = new Int32Array(n);
    let size = 0;
    for (let i = 0; i < n; i++) size += this.#wire.requests[keys[i]].length;
    if (this.#send.length < size) this.#send = new Uint8Array(size * 2);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const request = this.#wire.requests[keys[i]];
      this.#send.set(request, at);
      at += request.length;
      this.#inFlight[i] = keys[i];
    }
    const sentAt = performance.now();
    await this.#writeAll(this.#send.subarray(0, size));
    await this.#readReplies(n, { phase, sentAt });
  }

  #nextKey(): number {
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Reads until `n` replies are framed and checked. */
  async #readReplies(n: number, opts: { phase: Phase; sentAt: number }): Promise<void> {
    const { phase, sentAt } = opts;
    const histogram = phase.histogram;
    let start = 0;
    let end = 0;
    let done = 0;
    while (done < n) {
      if (end === this.#recv.length) {
        if (start > 0) {
          this.#recv.copyWithin(0, start, end);
          end -= start;
          start = 0;
        } else {
          const grown = new Uint8Array(this.#recv.length * 2);
          grown.set(this.#recv);
          this.#recv = grown;
        }
      }
      const got = await this.#conn.read(this.#recv.subarray(end));
      if (got === null) throw new UnexpectedReply("the server closed the connection");
      end += got;
      const now = performance.now();
      for (;;) {
        if (done === n) break;
        const key = this.#inFlight[done];
        const used = checkReply(this.#recv, start, end, this.#wire, this.#op, key, phase);
        if (used === 0) break;
        start += used;
        done++;
        if (histogram) {
          const bucket = Math.min(BUCKETS - 1, Math.floor((now - sentAt) / BUCKET_MS));
          histogram[bucket]++;
        }
      }
      if (done === n && start !== end) {
        throw new UnexpectedReply(
          `bytes after the last reply: ${showBytes(this.#recv, start, end)}`,
        );
      }
    }
    phase.requests += n;
  }
}
