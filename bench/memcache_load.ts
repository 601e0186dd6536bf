/**
 * A small memcached text-protocol load generator, in the spirit of redis-benchmark: N
 * concurrent connections each send `get` or `set` requests over a fixed key space
 * (`key:0` .. `key:<keys-1>`, picked at random) with a fixed pipeline depth, for a request
 * count or a duration, and report throughput and latency percentiles.
 *
 * Every reply is framed and checked: a `set` must answer exactly `STORED`, a `get` either
 * `END` (a miss) or exactly `VALUE <key> 0 <size>` with the value this generator stores for
 * that key, then `END`. Anything else fails the run. Latency is measured per request from
 * the write of its batch to the parse of its reply (at pipeline 1: send to reply).
 *
 * The connections can be spread over several Web Workers (`--threads`), each an event loop
 * on its own OS thread, so one Deno process can drive more than one core. The result reports
 * the generator's own CPU use: near 100% of its threads means the generator, not the target,
 * set the pace. `--io ffi` runs its sockets on Aster's raw-socket layer (`src/runtime/deno/ffi/`) instead
 * of Deno's socket ops, so that the same core drives more load.
 *
 * Usage: deno run --allow-net --allow-read bench/memcache_load.ts --port P [options]
 * (`--allow-read` lets the worker threads load this file; one thread needs only the net.)
 *
 *   --host H          target host (default 127.0.0.1)
 *   --port P          target port (required)
 *   --op get|set      request kind (default get)
 *   --connections N   concurrent connections (default 50)
 *   --pipeline D      requests in flight per connection (default 1)
 *   --requests N      measured requests in all (default 100000)
 *   --duration S      measure for S seconds instead of a request count
 *   --keys K          key space size (default 10000)
 *   --value-size B    value bytes (default 32)
 *   --threads T       worker threads sharing the connections (default 1)
 *   --warmup-ms MS    unmeasured load first, for the JIT and the connections (default 300)
 *   --io deno|ffi     socket I/O: Deno's ops, or raw sockets through FFI (needs --allow-ffi
 *                     and read access to src/); default deno
 *   --populate        set every key once (pipelined) before the run
 *   --json            print the result as one JSON object
 */
import { parseArgs } from "node:util";
import process from "node:process";
import type { ProxyConn, SocketApi } from "../src/io/sockets.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Latency histogram bucket width, ms (1 µs). */
const BUCKET_MS = 0.001;
/** Buckets: 1 µs each up to 1 s; slower replies land in the last one. */
const BUCKETS = 1_000_000;
/** Per-connection receive buffer (grown on demand). */
const READ_BUFFER = 64 * 1024;
/** Requests per write when populating. */
const POPULATE_PIPELINE = 100;

const CR = 0x0d; // "\r"
const LF = 0x0a; // "\n"

const END = encoder.encode("END\r\n");
const STORED = encoder.encode("STORED\r\n");

/** What a load run does. */
export interface LoadOptions {
  /** @default "127.0.0.1" */
  host?: string;
  port: number;
  /** @default "get" */
  op?: "get" | "set";
  /** @default 50 */
  connections?: number;
  /** @default 1 */
  pipeline?: number;
  /** Measured requests over all connections; ignored when `durationMs` is set. @default 100000 */
  requests?: number;
  /** Measure for this long instead of a request count. */
  durationMs?: number;
  /** @default 10000 */
  keys?: number;
  /** @default 32 */
  valueSize?: number;
  /** @default 1 */
  threads?: number;
  /** @default 300 */
  warmupMs?: number;
  /** Sets every key once before the run. @default false */
  populate?: boolean;
  /** Socket I/O: Deno's ops or raw sockets through FFI (`src/runtime/deno/ffi/`). @default "deno" */
  io?: "deno" | "ffi";
}

/** What a load run measured. */
export interface LoadResult {
  op: "get" | "set";
  connections: number;
  pipeline: number;
  threads: number;
  /** Replies received in the measured phase. */
  requests: number;
  elapsedMs: number;
  /** Requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** `get` replies with a value. */
  hits: number;
  /** `get` replies without one. */
  misses: number;
  /** The generator's CPU time over its wall time and threads (1 = every thread busy). */
  cpu: number;
}

/** Options with every default filled in. */
type _Settings = Required<Omit<LoadOptions, "durationMs">> & { durationMs: number | null };

/** What one thread measured (histogram and absolute times, to merge). */
interface _Part {
  requests: number;
  hits: number;
  misses: number;
  /** performance.timeOrigin + now() at the measured phase's start and end. */
  startAt: number;
  endAt: number;
  histogram: Uint32Array<ArrayBuffer>;
}

/** Messages a worker thread sends to the coordinator. */
type _FromWorker =
  | { kind: "ready" }
  | { kind: "done"; part: _Part }
  | { kind: "error"; message: string };

/** Messages the coordinator sends to a worker thread. */
type _ToWorker =
  | { kind: "init"; settings: _Settings; connections: number; requests: number }
  | { kind: "go" };

// ---------------------------------------------------------------------------------------
// Requests and expected replies

/** Every key's request bytes and, for `get`, its expected hit reply, pre-encoded. */
class _Wire {
  readonly requests: Uint8Array[];
  readonly hits: Uint8Array[];

  constructor(op: "get" | "set", opts: { keys: number; valueSize: number }) {
    this.requests = [];
    this.hits = [];
    for (let i = 0; i < opts.keys; i++) {
      const key = `key:${i}`;
      const value = _value(key, opts.valueSize);
      const header = `VALUE ${key} 0 ${opts.valueSize}\r\n`;
      this.hits.push(encoder.encode(`${header}${value}\r\nEND\r\n`));
      this.requests.push(
        encoder.encode(
          op === "get" ? `get ${key}\r\n` : `set ${key} 0 0 ${opts.valueSize}\r\n${value}\r\n`,
        ),
      );
    }
  }
}

/** The value stored under `key`: the key, padded with dots (so a get can be checked). */
function _value(key: string, size: number): string {
  return (key + ".".repeat(size)).slice(0, size);
}

// ---------------------------------------------------------------------------------------
// One connection

/** Thrown when a reply is not the one expected. */
class UnexpectedReply extends Error {}

/** Shared by the connections of one thread: the request budget and the counters. */
class _Phase {
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
class _Client {
  readonly #conn: ProxyConn;
  readonly #wire: _Wire;
  readonly #op: "get" | "set";
  #send = new Uint8Array(4096);
  #recv = new Uint8Array(READ_BUFFER);
  #inFlight: Int32Array;
  /** xorshift32 state. */
  #seed: number;

  constructor(conn: ProxyConn, opts: { wire: _Wire; op: "get" | "set"; seed: number }) {
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
  async run(phase: _Phase, pipeline: number): Promise<void> {
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
  async batch(keys: number[], phase: _Phase): Promise<void> {
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
  async #readReplies(n: number, opts: { phase: _Phase; sentAt: number }): Promise<void> {
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
        const used = this.#frame(start, end, this.#inFlight[done], phase);
        if (used === 0) break;
        start += used;
        done++;
        if (histogram) {
          const bucket = Math.min(BUCKETS - 1, Math.floor((now - sentAt) / BUCKET_MS));
          histogram[bucket]++;
        }
      }
      if (done === n && start !== end) {
        throw new UnexpectedReply(`bytes after the last reply: ${_show(this.#recv, start, end)}`);
      }
    }
    phase.requests += n;
  }

  /**
   * Frames and checks one reply at `start`; returns its length, or 0 when more bytes are
   * needed. Throws on anything but the expected reply.
   */
  #frame(start: number, end: number, key: number, phase: _Phase): number {
    const buf = this.#recv;
    if (this.#op === "set") {
      if (_matches(buf, start, end, STORED)) return STORED.length;
      if (_isPrefix(buf, start, end, STORED)) return 0;
      return _unexpected(buf, start, end, `set key:${key}`);
    }
    if (_matches(buf, start, end, END)) {
      phase.misses++;
      return END.length;
    }
    const hit = this.#wire.hits[key];
    if (_matches(buf, start, end, hit)) {
      phase.hits++;
      return hit.length;
    }
    if (_isPrefix(buf, start, end, END) || _isPrefix(buf, start, end, hit)) return 0;
    return _unexpected(buf, start, end, `get key:${key}`);
  }
}

/** True when `buf[start..end)` begins with the whole of `expected`. */
function _matches(buf: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start < expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    if (buf[start + i] !== expected[i]) return false;
  }
  return true;
}

/** True when `buf[start..end)` is shorter than `expected` and a prefix of it. */
function _isPrefix(buf: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start >= expected.length) return false;
  for (let i = start; i < end; i++) if (buf[i] !== expected[i - start]) return false;
  return true;
}

/**
 * Called when the bytes at `start` cannot become an expected reply: waits (returns 0) for
 * the rest of their first line so the error shows it, then throws.
 */
function _unexpected(buf: Uint8Array, start: number, end: number, what: string): number {
  if (_lineEnd(buf, start, end) < 0 && end - start < 1024) return 0;
  throw new UnexpectedReply(`${what} got ${_show(buf, start, end)}`);
}

/** Index of the "\r" of the first "\r\n" at or after `start`, or -1. */
function _lineEnd(buf: Uint8Array, start: number, end: number): number {
  for (let i = start; i + 1 < end; i++) if (buf[i] === CR && buf[i + 1] === LF) return i;
  return -1;
}

function _show(buf: Uint8Array, start: number, end: number): string {
  return JSON.stringify(decoder.decode(buf.subarray(start, Math.min(end, start + 200))));
}

// ---------------------------------------------------------------------------------------
// One thread: its connections, warm-up and measured phase

let rawSockets: Promise<SocketApi> | null = null;

/** This thread's sockets for `io` (raw ones loaded on first use: that opens libc). */
function _sockets(io: "deno" | "ffi"): Promise<SocketApi> | null {
  if (io === "deno") return null;
  rawSockets ??= import("../src/runtime/deno/ffi/ffi_sockets.ts").then((module) =>
    module.ffiSockets()
  );
  return rawSockets;
}

/** Connects `count` clients; closes those already open if one fails. */
async function _connect(settings: _Settings, count: number, seed: number): Promise<_Client[]> {
  const wire = new _Wire(settings.op, settings);
  const clients: _Client[] = [];
  const api = await _sockets(settings.io);
  try {
    for (let i = 0; i < count; i++) {
      const address = { hostname: settings.host, port: settings.port };
      const conn = api ? await api.connect(address) : await Deno.connect(address);
      conn.setNoDelay(true);
      clients.push(new _Client(conn, { wire, op: settings.op, seed: seed + i + 1 }));
    }
  } catch (err) {
    for (const client of clients) client.close();
    throw err;
  }
  return clients;
}

/** Runs every client until `phase` is over; the first failure stops the others. */
async function _runPhase(clients: _Client[], phase: _Phase, pipeline: number): Promise<void> {
  const runs = clients.map((client) =>
    client.run(phase, pipeline).catch((err) => {
      phase.failed = true;
      throw err;
    })
  );
  const settled = await Promise.allSettled(runs);
  const failure = settled.find((s) => s.status === "rejected");
  if (failure) throw (failure as PromiseRejectedResult).reason;
}

/** A phase that runs for `ms` (unmeasured). */
function _timedPhase(ms: number): _Phase {
  return new _Phase({ requests: 0, deadline: performance.now() + ms, histogram: null });
}

/** Connects and warms up one thread's clients; `measure()` then runs the measured phase. */
async function _prepare(
  settings: _Settings,
  opts: { connections: number; requests: number; seed: number },
): Promise<{ measure: () => Promise<_Part>; close: () => void }> {
  const clients = await _connect(settings, opts.connections, opts.seed);
  const close = () => clients.forEach((client) => client.close());
  try {
    if (settings.warmupMs > 0) {
      await _runPhase(clients, _timedPhase(settings.warmupMs), settings.pipeline);
    }
  } catch (err) {
    close();
    throw err;
  }
  const measure = async (): Promise<_Part> => {
    const histogram = new Uint32Array(BUCKETS);
    const startAt = performance.timeOrigin + performance.now();
    const phase = settings.durationMs === null
      ? new _Phase({ requests: opts.requests, deadline: Infinity, histogram })
      : new _Phase({
        requests: 0,
        deadline: performance.now() + settings.durationMs,
        histogram,
      });
    await _runPhase(clients, phase, settings.pipeline);
    const endAt = performance.timeOrigin + performance.now();
    return {
      requests: phase.requests,
      hits: phase.hits,
      misses: phase.misses,
      startAt,
      endAt,
      histogram,
    };
  };
  return { measure, close };
}

/** Sets every key once through one connection, `POPULATE_PIPELINE` at a time. */
async function populate(settings: _Settings): Promise<void> {
  const [client] = await _connect({ ...settings, op: "set" }, 1, 0);
  try {
    const phase = new _Phase({ requests: Infinity, deadline: Infinity, histogram: null });
    for (let first = 0; first < settings.keys; first += POPULATE_PIPELINE) {
      const keys: number[] = [];
      for (let k = first; k < Math.min(settings.keys, first + POPULATE_PIPELINE); k++) {
        keys.push(k);
      }
      await client.batch(keys, phase);
    }
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------
// Coordinator

function _settings(opts: LoadOptions): _Settings {
  const settings: _Settings = {
    host: opts.host ?? "127.0.0.1",
    port: opts.port,
    op: opts.op ?? "get",
    connections: opts.connections ?? 50,
    pipeline: opts.pipeline ?? 1,
    requests: opts.requests ?? 100_000,
    durationMs: opts.durationMs ?? null,
    keys: opts.keys ?? 10_000,
    valueSize: opts.valueSize ?? 32,
    threads: opts.threads ?? 1,
    warmupMs: opts.warmupMs ?? 300,
    populate: opts.populate ?? false,
    io: opts.io ?? "deno",
  };
  if (settings.io !== "deno" && settings.io !== "ffi") {
    throw new RangeError(`io must be deno or ffi, got ${settings.io}`);
  }
  const positive = ["port", "connections", "pipeline", "requests", "keys", "valueSize", "threads"];
  for (const name of positive) {
    const value = settings[name as keyof _Settings] as number;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (settings.port > 65535) throw new RangeError(`port out of range: ${settings.port}`);
  if (settings.threads > settings.connections) {
    throw new RangeError("threads must not exceed connections");
  }
  if (!Number.isFinite(settings.warmupMs) || settings.warmupMs < 0) {
    throw new RangeError(`warmupMs must be >= 0, got ${settings.warmupMs}`);
  }
  if (settings.durationMs !== null && !(settings.durationMs > 0)) {
    throw new RangeError(`durationMs must be > 0, got ${settings.durationMs}`);
  }
  if (settings.op !== "get" && settings.op !== "set") {
    throw new RangeError(`op must be get or set, got ${settings.op}`);
  }
  return settings;
}

/** `total` split into `parts` near-equal shares. */
function _shares(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

/** Runs one load against a memcached text-protocol endpoint and returns what it measured. */
export async function runMemcacheLoad(opts: LoadOptions): Promise<LoadResult> {
  const settings = _settings(opts);
  if (settings.populate) await populate(settings);
  const connections = _shares(settings.connections, settings.threads);
  const requests = _shares(settings.requests, settings.threads);
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  let parts: _Part[];
  if (settings.threads === 1) {
    const thread = await _prepare(settings, {
      connections: connections[0],
      requests: requests[0],
      seed: 0,
    });
    try {
      parts = [await thread.measure()];
    } finally {
      thread.close();
    }
  } else {
    parts = await _runThreads(settings, { connections, requests });
  }
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - wallBefore;
  return _merge(parts, {
    settings,
    cpu: (cpu.user + cpu.system) / 1000 / wallMs / settings.threads,
  });
}

/** Starts one worker per thread, warms all up, starts them together, collects their parts. */
async function _runThreads(
  settings: _Settings,
  opts: { connections: number[]; requests: number[] },
): Promise<_Part[]> {
  const workers = opts.connections.map(() =>
    new Worker(import.meta.url, { type: "module", name: "memcache-load" })
  );
  try {
    const next = workers.map((worker) => _messages(worker));
    workers.forEach((worker, i) => {
      const init: _ToWorker = {
        kind: "init",
        settings,
        connections: opts.connections[i],
        requests: opts.requests[i],
      };
      worker.postMessage(init);
    });
    const ready = await Promise.all(next.map((receive) => receive()));
    _throwIfError(ready);
    for (const worker of workers) worker.postMessage({ kind: "go" } satisfies _ToWorker);
    const done = await Promise.all(next.map((receive) => receive()));
    _throwIfError(done);
    return done.map((message) => (message as { part: _Part }).part);
  } finally {
    for (const worker of workers) worker.terminate();
  }
}

/** A function returning the worker's next message each time it is called. */
function _messages(worker: Worker): () => Promise<_FromWorker> {
  const queue: _FromWorker[] = [];
  const waiting: ((message: _FromWorker) => void)[] = [];
  const push = (message: _FromWorker) => {
    const resolve = waiting.shift();
    if (resolve) resolve(message);
    else queue.push(message);
  };
  worker.onmessage = (event: MessageEvent<_FromWorker>) => push(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    push({ kind: "error", message: event.message });
  };
  return () => {
    const message = queue.shift();
    if (message) return Promise.resolve(message);
    return new Promise((resolve) => waiting.push(resolve));
  };
}

function _throwIfError(messages: _FromWorker[]): void {
  const error = messages.find((m) => m.kind === "error");
  if (error) throw new UnexpectedReply((error as { message: string }).message);
}

/** Joins the threads' parts into one result. */
function _merge(parts: _Part[], opts: { settings: _Settings; cpu: number }): LoadResult {
  const histogram = new Uint32Array(BUCKETS);
  for (const part of parts) {
    for (let i = 0; i < BUCKETS; i++) histogram[i] += part.histogram[i];
  }
  const requests = parts.reduce((sum, p) => sum + p.requests, 0);
  const elapsedMs = Math.max(...parts.map((p) => p.endAt)) -
    Math.min(...parts.map((p) => p.startAt));
  const { settings } = opts;
  return {
    op: settings.op,
    connections: settings.connections,
    pipeline: settings.pipeline,
    threads: settings.threads,
    requests,
    elapsedMs,
    rps: requests / (elapsedMs / 1000),
    p50Ms: percentile(histogram, 0.5),
    p99Ms: percentile(histogram, 0.99),
    maxMs: percentile(histogram, 1),
    hits: parts.reduce((sum, p) => sum + p.hits, 0),
    misses: parts.reduce((sum, p) => sum + p.misses, 0),
    cpu: opts.cpu,
  };
}

/** The latency, ms, below which `fraction` of the recorded requests fall (bucket upper edge). */
export function percentile(histogram: Uint32Array, fraction: number): number {
  let total = 0;
  for (let i = 0; i < histogram.length; i++) total += histogram[i];
  if (total === 0) return NaN;
  const rank = Math.max(1, Math.ceil(total * fraction));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= rank) return (i + 1) * BUCKET_MS;
  }
  return histogram.length * BUCKET_MS;
}

// ---------------------------------------------------------------------------------------
// Worker thread

/** The body of a worker thread: init -> connect and warm up -> ready; go -> measure -> done. */
function _workerMain(): void {
  const self = globalThis as unknown as {
    onmessage: ((event: MessageEvent<_ToWorker>) => void) | null;
    postMessage(message: _FromWorker, transfer?: Transferable[]): void;
  };
  let prepared: Awaited<ReturnType<typeof _prepare>> | null = null;
  const fail = (err: unknown) => {
    prepared?.close();
    self.postMessage({ kind: "error", message: err instanceof Error ? err.message : String(err) });
  };
  self.onmessage = (event) => {
    const message = event.data;
    if (message.kind === "init") {
      const seed = Math.floor(Math.random() * 1e9);
      _prepare(message.settings, { ...message, seed }).then((thread) => {
        prepared = thread;
        self.postMessage({ kind: "ready" });
      }, fail);
    } else if (message.kind === "go" && prepared) {
      const thread = prepared;
      thread.measure().then((part) => {
        thread.close();
        self.postMessage({ kind: "done", part }, [part.histogram.buffer]);
      }, fail);
    }
  };
}

// ---------------------------------------------------------------------------------------
// Command line

/** Parses the command line into load options and output format; throws on bad input. */
function parseOptions(args: string[]): { load: LoadOptions; json: boolean } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      op: { type: "string" },
      connections: { type: "string" },
      pipeline: { type: "string" },
      requests: { type: "string" },
      duration: { type: "string" },
      keys: { type: "string" },
      "value-size": { type: "string" },
      threads: { type: "string" },
      "warmup-ms": { type: "string" },
      populate: { type: "boolean" },
      io: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (values.port === undefined) throw new Error("--port is required");
  const num = (value: string | undefined) => value === undefined ? undefined : Number(value);
  const duration = num(values.duration);
  return {
    load: {
      host: values.host,
      port: Number(values.port),
      op: values.op as "get" | "set" | undefined,
      connections: num(values.connections),
      pipeline: num(values.pipeline),
      requests: num(values.requests),
      durationMs: duration === undefined ? undefined : duration * 1000,
      keys: num(values.keys),
      valueSize: num(values["value-size"]),
      threads: num(values.threads),
      warmupMs: num(values["warmup-ms"]),
      populate: values.populate,
      io: values.io as "deno" | "ffi" | undefined,
    },
    json: values.json ?? false,
  };
}

/** The result as a few human-readable lines. */
function formatResult(result: LoadResult): string {
  const lines = [
    `${result.op} x ${result.requests} requests, ${result.connections} connections, ` +
    `pipeline ${result.pipeline}, ${result.threads} thread(s), ${result.elapsedMs.toFixed(0)} ms`,
    `  throughput  ${Math.round(result.rps).toLocaleString("en-US")} req/s`,
    `  latency     p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms, ` +
    `max ${result.maxMs.toFixed(3)} ms`,
    `  generator   ${(result.cpu * 100).toFixed(0)}% CPU of its thread(s)`,
  ];
  if (result.op === "get") lines.push(`  hits        ${result.hits}, misses ${result.misses}`);
  if (result.cpu > 0.9) {
    lines.push("  note        the generator was CPU-bound: the target may be faster than this");
  }
  return lines.join("\n");
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(Deno.args);
    _settings(parsed.load);
  } catch (err) {
    console.error(`memcache_load: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  try {
    const result = await runMemcacheLoad(parsed.load);
    console.log(parsed.json ? JSON.stringify(result) : formatResult(result));
    return 0;
  } catch (err) {
    console.error(`memcache_load failed: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  _workerMain();
} else if (import.meta.main) {
  Deno.exit(await main());
}
