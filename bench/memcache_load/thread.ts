/**
 * One thread of a memcache load run: its connections (Deno's sockets or Aster's raw ones),
 * the unmeasured warm-up, the measured phase, and the populating of every key; and the
 * messages between a worker thread and the coordinator.
 */
import type { SocketApi } from "../../src/io/sockets.ts";
import { Client, Phase } from "./connection.ts";
import type { Settings } from "./load_options.ts";
import { Wire } from "./replies.ts";
import { BUCKETS, type Part } from "./results.ts";

/** Requests per write when populating. */
const POPULATE_PIPELINE = 100;

/** Messages a worker thread sends to the coordinator. */
export type FromThread =
  | { kind: "ready" }
  | { kind: "done"; part: Part }
  | { kind: "error"; message: string };

/** Messages the coordinator sends to a worker thread. */
export type ToThread =
  | { kind: "init"; settings: Settings; connections: number; requests: number }
  | { kind: "go" };

let rawSockets: Promise<SocketApi> | null = null;

/** This thread's sockets for `io` (raw ones loaded on first use: that opens libc). */
function _sockets(io: "deno" | "ffi"): Promise<SocketApi> | null {
  if (io === "deno") return null;
  rawSockets ??= import("../../src/runtime/deno/ffi/ffi_sockets.ts").then((module) =>
    module.ffiSockets()
  );
  return rawSockets;
}

/** Connects `count` clients; closes those already open if one fails. */
export async function connectClients(
  settings: Settings,
  count: number,
  seed: number,
): Promise<Client[]> {
  const wire = new Wire(settings.op, settings);
  const clients: Client[] = [];
  const api = await _sockets(settings.io);
  try {
    for (let i = 0; i < count; i++) {
      const address = { hostname: settings.host, port: settings.port };
      const conn = api ? await api.connect(address) : await Deno.connect(address);
      conn.setNoDelay(true);
      clients.push(new Client(conn, { wire, op: settings.op, seed: seed + i + 1 }));
    }
  } catch (err) {
    for (const client of clients) client.close();
    throw err;
  }
  return clients;
}

/** Runs every client until `phase` is over; the first failure stops the others. */
async function _runPhase(clients: Client[], phase: Phase, pipeline: number): Promise<void> {
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
function _timedPhase(ms: number): Phase {
  return new Phase({ requests: 0, deadline: performance.now() + ms, histogram: null });
}

/** Connects and warms up one thread's clients; `measure()` then runs the measured phase. */
export async function prepareThread(
  settings: Settings,
  opts: { connections: number; requests: number; seed: number },
): Promise<{ measure: () => Promise<Part>; close: () => void }> {
  const clients = await connectClients(settings, opts.connections, opts.seed);
  const close = () => clients.forEach((client) => client.close());
  try {
    if (settings.warmupMs > 0) {
      await _runPhase(clients, _timedPhase(settings.warmupMs), settings.pipeline);
    }
  } catch (err) {
    close();
    throw err;
  }
  const measure = async (): Promise<Part> => {
    const histogram = new Uint32Array(BUCKETS);
    const startAt = performance.timeOrigin + performance.now();
    const phase = settings.durationMs === null
      ? new Phase({ requests: opts.requests, deadline: Infinity, histogram })
      : new Phase({
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
export async function populate(settings: Settings): Promise<void> {
  const [client] = await connectClients({ ...settings, op: "set" }, 1, 0);
  try {
    const phase = new Phase({ requests: Infinity, deadline: Infinity, histogram: null });
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
