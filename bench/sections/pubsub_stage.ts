/**
 * The Pub/Sub stage of the `redis` section: one publisher pipelines PUBLISH to a channel
 * that 100 subscribers follow, through Aster and on one redis-server directly; the row is
 * the messages delivered per second (every subscriber's count summed), from the first
 * PUBLISH sent to the last message read.
 */
import { startAster } from "../../tests/helpers/aster.ts";
import { startRedis } from "../../tests/helpers/servers.ts";
import type { Sample, Stage, Target, Workload } from "../types.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
/** Subscribers of the channel. */
export const FAN_OUT_SUBSCRIBERS = 100;
/** The row's label. */
export const FAN_OUT_LABEL = `PUBLISH to ${FAN_OUT_SUBSCRIBERS} subscribers`;
const CHANNEL = "bench-fan-out";
const PAYLOAD = "0123456789abcdef";
/** Each subscriber's confirmation, then each message: fixed sizes, counted by bytes. */
const CONFIRMATION = `*3\r\n$9\r\nsubscribe\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n:1\r\n`;
const MESSAGE = `*3\r\n$7\r\nmessage\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n` +
  `$${PAYLOAD.length}\r\n${PAYLOAD}\r\n`;
const PUBLISH = encoder.encode(
  `*3\r\n$7\r\nPUBLISH\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n$${PAYLOAD.length}\r\n${PAYLOAD}\r\n`,
);
/** PUBLISH requests per write. */
const BATCH = 100;
/** Longest a run may take, ms. */
const RUN_TIMEOUT_MS = 60_000;

/** A target that measures delivered messages per second on `port`. */
function fanOutTarget(
  name: string,
  port: number,
  process?: { pid: number; log: () => string },
): Target {
  return {
    name,
    run: (workload, signal) => runFanOut(port, workload, signal),
    pid: process?.pid,
    log: process?.log,
  };
}

/** Reads from `conn` until `bytes` more have come (or the run is over). */
async function readBytes(conn: Deno.TcpConn, bytes: number, signal: AbortSignal): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let left = bytes;
  while (left > 0) {
    signal.throwIfAborted();
    const n = await conn.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) throw new Error("connection closed during the fan-out run");
    left -= n;
  }
}

/**
 * One run: `workload.requests / 10` PUBLISHes, each delivered to every subscriber (10x the
 * requests in deliveries: runs long enough to measure on redis-server directly).
 */
async function runFanOut(
  port: number,
  workload: Workload,
  outer: AbortSignal,
): Promise<Map<string, Sample>> {
  const signal = AbortSignal.any([outer, AbortSignal.timeout(RUN_TIMEOUT_MS)]);
  const messages = Math.max(1, Math.floor(workload.requests / 10));
  const subscribers: Deno.TcpConn[] = [];
  const publisher = await Deno.connect({ hostname: HOST, port });
  try {
    for (let i = 0; i < FAN_OUT_SUBSCRIBERS; i++) {
      const conn = await Deno.connect({ hostname: HOST, port });
      subscribers.push(conn);
      await conn.write(encoder.encode(`SUBSCRIBE ${CHANNEL}\r\n`));
      await readBytes(conn, CONFIRMATION.length, signal);
    }
    const started = performance.now();
    const delivered = subscribers.map((conn) => readBytes(conn, messages * MESSAGE.length, signal));
    // PUBLISH replies (`:100\r\n`, 6 bytes each) are read as they come, so neither side stalls.
    const replies = readBytes(publisher, messages * `:${FAN_OUT_SUBSCRIBERS}\r\n`.length, signal);
    const batch = new Uint8Array(PUBLISH.length * BATCH);
    for (let i = 0; i < BATCH; i++) batch.set(PUBLISH, i * PUBLISH.length);
    for (let sent = 0; sent < messages; sent += BATCH) {
      const count = Math.min(BATCH, messages - sent);
      const bytes = batch.subarray(0, count * PUBLISH.length);
      for (let at = 0; at < bytes.length;) at += await publisher.write(bytes.subarray(at));
    }
    await Promise.all([...delivered, replies]);
    const elapsedMs = performance.now() - started;
    const sample: Sample = {
      rps: messages * FAN_OUT_SUBSCRIBERS / (elapsedMs / 1000),
      p50Ms: null,
      p99Ms: null,
      cpu: null,
      targetCpuUs: null,
      elapsedMs,
      tickMs: null,
    };
    return new Map([[FAN_OUT_LABEL, sample]]);
  } finally {
    publisher.close();
    for (const conn of subscribers) conn.close();
  }
}

/** One redis-server directly and behind Aster (`redis`, `thread = 1`). */
export const pubsubStage: Stage = {
  title: `PUBLISH fan-out to ${FAN_OUT_SUBSCRIBERS} subscribers`,
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const aster = stack.use(
      await startAster([{ name: "bench", servers: [`127.0.0.1:${redis.port}:1`], thread: 1 }]),
    );
    const workload = (requests: number): Workload => ({
      pipeline: 1,
      requests,
      tests: { command: [], label: FAN_OUT_LABEL },
    });
    return {
      targets: [
        fanOutTarget("direct", redis.port),
        fanOutTarget("aster", aster.ports[0], aster),
      ],
      workloads: [workload(options.requests)],
      warmUp: workload(20_000),
      notes: [
        `${FAN_OUT_LABEL}: messages delivered per second, summed over the subscribers ` +
        `(one publisher pipelining ${BATCH} PUBLISH per write).`,
      ],
    };
  },
};
