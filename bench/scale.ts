/**
 * Scale probes of the end-to-end comparison (`bench/compare.ts`, section `scale`:
 * `bench/sections/scale.ts`), against any RESP proxy on 127.0.0.1:
 *
 * - `measureIdleMemory`: the proxy's RSS growth per idle client connection (each connection
 *   did one PING round trip, so the proxy accepted it and its session exists).
 * - `runConcurrentClients`: many clients connected at once, each doing `SET key:i v:i` then
 *   `GET key:i` and checking it reads its own value back.
 * - `measureBurstMemory`: the proxy's RSS before a burst of clients (each connects and does
 *   one PING, all at once), and `BURST_SETTLE_MS` after they all closed.
 *
 * Every loop is bounded in count and time; every connection opened is closed before a
 * probe returns.
 */
import { rssKiB, type RssParts, rssParts } from "../tests/helpers/process_stats.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Connections opened at once: under the smallest accept backlog (nutcracker: 512). */
export const CONNECT_BATCH = 500;
/** One connect that takes longer than this counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Reads per reply before a round trip gives up (replies here are a few bytes). */
const MAX_READS = 64;
/** Clients of the warm-up before the baseline RSS. */
export const WARM_UP_CLIENTS = 100;
/** Pause before the baseline RSS, so the warm-up clients are gone. */
const SETTLE_MS = 500;
/** How long the connections stay idle before their RSS is taken. */
export const IDLE_MS = 1000;
/** RSS samples per reading (their median), and the pause between them. */
export const RSS_SAMPLES = 3;
const RSS_SAMPLE_GAP_MS = 100;
/** How long all round trips of one probe may take together. */
const ROUND_TRIPS_TIMEOUT_MS = 60_000;

const PING = _resp(["PING"]);
const PONG = "+PONG\r\n";

/** A proxy under test. */
export interface ProbeTarget {
  name: string;
  port: number;
  pid: number;
}

/** What `measureIdleMemory` measured for one proxy. */
export interface IdleMemory {
  name: string;
  /** Connections asked for. */
  count: number;
  /** Connections that completed their PING round trip (and were held idle). */
  idle: number;
  /** RSS after the warm-up, before the connections, KiB. */
  beforeKiB: number;
  /** RSS with the connections idle, KiB. */
  idleKiB: number;
  /** RSS a while after closing them, KiB. */
  closedKiB: number;
  /** (idle - before) per idle connection, KiB. */
  perConnKiB: number;
  /** The same in KB (1000 bytes). */
  perConnKB: number;
}

/** How long after a burst's clients closed its RSS is taken (issue 23: 10 s). */
export const BURST_SETTLE_MS = 10_000;

/** What `measureBurstMemory` measured for one proxy. */
export interface BurstMemory {
  name: string;
  /** RSS before any client connected (its start, as far as the probe can tell), KiB. */
  startKiB: number;
  /** The same RSS by kind: private memory against mapped files' (shared) pages; null when
   * `/proc/PID/status` does not say. */
  startParts: RssParts | null;
  /** Connections asked for. */
  count: number;
  /** Connections that completed their PING round trip. */
  served: number;
  /** RSS after the warm-up, before the burst (its idle level), KiB. */
  beforeKiB: number;
  /** RSS with all the burst's connections open, KiB. */
  peakKiB: number;
  /** RSS `BURST_SETTLE_MS` after they all closed, KiB. */
  afterKiB: number;
  /** after / before. */
  afterRatio: number;
}

/**
 * The proxy's RSS first (`startKiB`: call it before any other probe), then after a warm-up
 * (`WARM_UP_CLIENTS` PINGs); opens `count` connections (in batches) each doing one PING,
 * takes the RSS, closes them all and takes it again `BURST_SETTLE_MS` later.
 */
export async function measureBurstMemory(
  target: ProbeTarget,
  opts: { count: number; signal: AbortSignal },
): Promise<BurstMemory> {
  const startKiB = await _rss(target.pid);
  const startParts = await rssParts(target.pid).catch(() => null);
  await _warmUp(target.port, opts.signal);
  const beforeKiB = await _rss(target.pid);
  const burst = await openConnections(target.port, { count: opts.count, signal: opts.signal });
  let served = 0;
  let peakKiB: number;
  try {
    const deadline = Date.now() + ROUND_TRIPS_TIMEOUT_MS;
    const pongs = await Promise.all(
      burst.conns.map((conn) => roundTrip(conn, PING, PONG, deadline)),
    );
    served = pongs.filter((ok) => ok).length;
    peakKiB = await _rss(target.pid);
  } finally {
    closeAll(burst.conns);
  }
  await _sleep(BURST_SETTLE_MS);
  opts.signal.throwIfAborted();
  const afterKiB = await _rss(target.pid);
  return {
    name: target.name,
    startKiB,
    startParts,
    count: opts.count,
    served,
    beforeKiB,
    peakKiB,
    afterKiB,
    afterRatio: afterKiB / beforeKiB,
  };
}

/** `WARM_UP_CLIENTS` PINGs on fresh connections, closed, then `SETTLE_MS` for the RSS to settle. */
async function _warmUp(port: number, signal: AbortSignal): Promise<void> {
  const warm = await openConnections(port, { count: WARM_UP_CLIENTS, signal });
  try {
    const deadline = Date.now() + ROUND_TRIPS_TIMEOUT_MS;
    await Promise.all(warm.conns.map((conn) => roundTrip(conn, PING, PONG, deadline)));
  } finally {
    closeAll(warm.conns);
  }
  await _sleep(SETTLE_MS);
}

/** What `runConcurrentClients` measured for one proxy. */
export interface ConcurrentClients {
  name: string;
  count: number;
  /** Connections that opened. */
  opened: number;
  /** Clients that got `+OK` and then their own value back. */
  served: number;
  /** Time to open all connections, ms. */
  connectMs: number;
  /** Time from the first connect to the last reply, ms. */
  totalMs: number;
  /** The first connect error, if any. */
  firstError: string | null;
}

/**
 * Warms `target` up (`WARM_UP_CLIENTS` PINGs on fresh connections), takes its RSS, opens
 * `count` connections each doing one PING, holds them idle for `IDLE_MS`, takes its RSS
 * again, closes them and takes it once more.
 */
export async function measureIdleMemory(
  target: ProbeTarget,
  opts: { count: number; signal: AbortSignal },
): Promise<IdleMemory> {
  await _warmUp(target.port, opts.signal);
  const beforeKiB = await _rss(target.pid);
  const conns: Deno.TcpConn[] = [];
  let idle = 0;
  try {
    const deadline = Date.now() + ROUND_TRIPS_TIMEOUT_MS;
    // Batches: open, PING each, then the next batch; all stay open.
    for (let i = 0; i < opts.count && Date.now() < deadline; i += CONNECT_BATCH) {
      const batch = await openConnections(target.port, {
        count: Math.min(CONNECT_BATCH, opts.count - i),
        signal: opts.signal,
      });
      conns.push(...batch.conns);
      const pongs = await Promise.all(
        batch.conns.map((conn) => roundTrip(conn, PING, PONG, deadline)),
      );
      idle += pongs.filter((ok) => ok).length;
    }
    await _sleep(IDLE_MS);
    opts.signal.throwIfAborted();
    const idleKiB = await _rss(target.pid);
    closeAll(conns);
    await _sleep(IDLE_MS);
    const closedKiB = await _rss(target.pid);
    const perConnKiB = idle > 0 ? (idleKiB - beforeKiB) / idle : NaN;
    return {
      name: target.name,
      count: opts.count,
      idle,
      beforeKiB,
      idleKiB,
      closedKiB,
      perConnKiB,
      perConnKB: perConnKiB * 1024 / 1000,
    };
  } finally {
    closeAll(conns);
  }
}

/**
 * Opens `count` connections to `target` (in batches), then has every one send
 * `SET key:i v:i`, wait for `+OK`, send `GET key:i` and check the reply is its own value;
 * closes them all.
 */
export async function runConcurrentClients(
  target: { name: string; port: number },
  opts: { count: number; signal: AbortSignal },
): Promise<ConcurrentClients> {
  const started = performance.now();
  const opened = await openConnections(target.port, { count: opts.count, signal: opts.signal });
  // An interrupt ends the round trips at once instead of at their deadline.
  const onAbort = () => closeAll(opened.conns);
  opts.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const connectMs = performance.now() - started;
    const deadline = Date.now() + ROUND_TRIPS_TIMEOUT_MS;
    const served = await Promise.all(opened.conns.map(async (conn, i) => {
      const value = `v:${i}`;
      const set = await roundTrip(conn, _resp(["SET", `key:${i}`, value]), "+OK\r\n", deadline);
      if (!set) return false;
      const want = `$${value.length}\r\n${value}\r\n`;
      return await roundTrip(conn, _resp(["GET", `key:${i}`]), want, deadline);
    }));
    opts.signal.throwIfAborted();
    return {
      name: target.name,
      count: opts.count,
      opened: opened.conns.length,
      served: served.filter((ok) => ok).length,
      connectMs,
      totalMs: performance.now() - started,
      firstError: opened.firstError,
    };
  } finally {
    opts.signal.removeEventListener("abort", onAbort);
    closeAll(opened.conns);
  }
}

/**
 * Opens `count` connections to 127.0.0.1:`port`, `CONNECT_BATCH` at a time; a connect that
 * fails or takes over `CONNECT_TIMEOUT_MS` is counted, not thrown.
 */
export async function openConnections(
  port: number,
  opts: { count: number; signal: AbortSignal },
): Promise<{ conns: Deno.TcpConn[]; failed: number; firstError: string | null }> {
  const conns: Deno.TcpConn[] = [];
  let failed = 0;
  let firstError: string | null = null;
  try {
    for (let i = 0; i < opts.count; i += CONNECT_BATCH) {
      opts.signal.throwIfAborted();
      const size = Math.min(CONNECT_BATCH, opts.count - i);
      const batch = await Promise.all(Array.from({ length: size }, () => _connect(port)));
      for (const result of batch) {
        if (result instanceof Error) {
          failed++;
          firstError ??= result.message;
        } else {
          conns.push(result);
        }
      }
    }
  } catch (err) {
    closeAll(conns);
    throw err;
  }
  return { conns, failed, firstError };
}

/** Closes every connection, ignoring ones already closed. */
export function closeAll(conns: Deno.TcpConn[]): void {
  for (const conn of conns) _close(conn);
}

/**
 * Writes `request` and reads until `want.length` bytes arrived; true when they are `want`.
 * The connection is closed if `deadline` (epoch ms) passes first.
 */
export async function roundTrip(
  conn: Deno.TcpConn,
  request: Uint8Array,
  want: string,
  deadline: number,
): Promise<boolean> {
  const timer = setTimeout(() => _close(conn), Math.max(0, deadline - Date.now()));
  try {
    for (let written = 0, tries = 0; written < request.length && tries < MAX_READS; tries++) {
      written += await conn.write(request.subarray(written));
    }
    const buf = new Uint8Array(Math.max(64, want.length));
    let got = "";
    for (let reads = 0; got.length < want.length && reads < MAX_READS; reads++) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += decoder.decode(buf.subarray(0, n));
    }
    return got === want;
  } catch {
    return false; // closed at the deadline, or reset by the server
  } finally {
    clearTimeout(timer);
  }
}

/** One connection, or the error that kept it from opening within `CONNECT_TIMEOUT_MS`. */
async function _connect(port: number): Promise<Deno.TcpConn | Error> {
  const connecting = Deno.connect({ hostname: HOST, port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Error>((resolve) => {
    timer = setTimeout(
      () => resolve(new Error(`connect took over ${CONNECT_TIMEOUT_MS} ms`)),
      CONNECT_TIMEOUT_MS,
    );
  });
  try {
    const result = await Promise.race([
      connecting.catch((err) => err instanceof Error ? err : new Error(String(err))),
      timeout,
    ]);
    // A connect that completes after its timeout is closed, never leaked.
    if (result instanceof Error) connecting.then(_close, () => {});
    return result;
  } finally {
    clearTimeout(timer);
  }
}

function _close(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** A command as a RESP array of bulk strings (nutcracker takes no inline commands). */
function _resp(args: string[]): Uint8Array {
  const parts = args.map((arg) => `$${encoder.encode(arg).length}\r\n${arg}\r\n`);
  return encoder.encode(`*${args.length}\r\n${parts.join("")}`);
}

/** The median of `RSS_SAMPLES` readings of `pid`'s RSS, KiB. */
async function _rss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RSS_SAMPLES; i++) {
    if (i > 0) await _sleep(RSS_SAMPLE_GAP_MS);
    samples.push(await rssKiB(pid));
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

function _sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The open-file limit this process (and what it spawns) runs with, or NaN if unknown. */
export async function openFileLimit(): Promise<number> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", "ulimit -n"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = decoder.decode(out.stdout).trim();
    return text === "unlimited" ? Infinity : Number(text);
  } catch {
    return NaN;
  }
}
