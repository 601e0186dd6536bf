/**
 * A Pub/Sub fan-out load generator: `--subscribers` connections SUBSCRIBE one channel,
 * then one publisher pipelines `--messages` PUBLISHes (100 per write); the rate is the
 * messages delivered per second (every subscriber's count summed), from the first PUBLISH
 * sent to the last message read. Every connection's bytes are counted against the exact
 * frames redis-server sends (fixed sizes), so a lost or extra byte hangs or fails the run.
 *
 * Usage: deno run --allow-net bench/fan_out_load.ts --port P [--messages N (default 10000)]
 *   [--subscribers N (default 100)] [--json]
 */
import { parseArgs } from "node:util";

/** What one run measured (the shape bench/load_tools.ts reads). */
export interface FanOutResult {
  /** Messages delivered per second, summed over the subscribers. */
  rps: number;
  elapsedMs: number;
}

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
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
export const FAN_OUT_BATCH = 100;
/** Longest a run may take, ms. */
const RUN_TIMEOUT_MS = 60_000;

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

/** One run against `port`: `messages` PUBLISHes, each delivered to every subscriber. */
export async function runFanOut(
  opts: { port: number; messages: number; subscribers: number },
): Promise<FanOutResult> {
  const signal = AbortSignal.timeout(RUN_TIMEOUT_MS);
  const { port, messages } = opts;
  const subscribers: Deno.TcpConn[] = [];
  const publisher = await Deno.connect({ hostname: HOST, port });
  try {
    for (let i = 0; i < opts.subscribers; i++) {
      const conn = await Deno.connect({ hostname: HOST, port });
      subscribers.push(conn);
      await conn.write(encoder.encode(`SUBSCRIBE ${CHANNEL}\r\n`));
      await readBytes(conn, CONFIRMATION.length, signal);
    }
    const started = performance.now();
    const delivered = subscribers.map((conn) => readBytes(conn, messages * MESSAGE.length, signal));
    // PUBLISH replies (`:100\r\n`) are read as they come, so neither side stalls.
    const reply = `:${opts.subscribers}\r\n`;
    const replies = readBytes(publisher, messages * reply.length, signal);
    const batch = new Uint8Array(PUBLISH.length * FAN_OUT_BATCH);
    for (let i = 0; i < FAN_OUT_BATCH; i++) batch.set(PUBLISH, i * PUBLISH.length);
    for (let sent = 0; sent < messages; sent += FAN_OUT_BATCH) {
      const count = Math.min(FAN_OUT_BATCH, messages - sent);
      const bytes = batch.subarray(0, count * PUBLISH.length);
      for (let at = 0; at < bytes.length;) at += await publisher.write(bytes.subarray(at));
    }
    await Promise.all([...delivered, replies]);
    const elapsedMs = performance.now() - started;
    return { rps: messages * opts.subscribers / (elapsedMs / 1000), elapsedMs };
  } finally {
    publisher.close();
    for (const conn of subscribers) conn.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      port: { type: "string" },
      messages: { type: "string", default: "10000" },
      subscribers: { type: "string", default: "100" },
      json: { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port)) {
    console.error("usage: fan_out_load.ts --port P [--messages N] [--subscribers N] [--json]");
    Deno.exit(2);
  }
  const result = await runFanOut({
    port,
    messages: Number(values.messages),
    subscribers: Number(values.subscribers),
  });
  console.log(
    values.json
      ? JSON.stringify(result)
      : `${Math.round(result.rps)} messages/s in ${result.elapsedMs.toFixed(0)} ms`,
  );
}
