/**
 * A load generator for stateful Redis traffic, which redis-benchmark cannot make:
 *
 * - `blpop`: pairs of connections play ping-pong on a list of their own: one sends
 *   `BLPOP {pN}q 0`, the other `LPUSH {pN}q x`; a round trip is over when both replies are
 *   in (the popper got the pushed element). Through Aster each BLPOP takes a dedicated
 *   connection from the pool and gives it back.
 * - `multi`: each connection runs `MULTI`, `SET`, `INCR`, `GET`, `EXEC` pipelined: one
 *   transaction of 3 commands per round trip.
 *
 * Every reply is checked; a wrong one fails the run. Latency is per round trip.
 *
 * Usage: deno run --allow-net bench/stateful_load.ts --port P --test blpop|multi
 *   [--clients N (default 50; blpop: N/2 pairs)] [--requests N (default 20000)] [--json]
 */
import { parseArgs } from "node:util";
import { RespClient, text } from "../tests/helpers/resp_client.ts";

/** What one run measured (the shape bench/load_tools.ts reads). */
export interface StatefulResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  elapsedMs: number;
}

/** Round trips run before measuring, per connection (JIT, pinned connections opened). */
const WARM_UP = 20;

/** One round trip of `test` on `clients` (a pair for blpop); throws on a wrong reply. */
async function _roundTrip(test: string, clients: RespClient[], index: number): Promise<void> {
  if (test === "blpop") {
    const key = `{p${index}}q`;
    const [popped, pushed] = await Promise.all([
      clients[0].command("BLPOP", key, "0"),
      clients[1].command("LPUSH", key, "x"),
    ]);
    const got = text(popped) as string[];
    if (!Array.isArray(got) || got[0] !== key || got[1] !== "x" || typeof pushed !== "number") {
      throw new Error(`BLPOP/LPUSH answered ${JSON.stringify(got)} / ${String(pushed)}`);
    }
    return;
  }
  const key = `{m${index}}k`;
  const replies = await clients[0].pipeline([
    ["MULTI"],
    ["SET", key, "v"],
    ["INCR", `{m${index}}n`],
    ["GET", key],
    ["EXEC"],
  ]);
  const exec = text(replies[4]) as unknown[];
  if (!Array.isArray(exec) || exec.length !== 3 || exec[0] !== "OK" || exec[2] !== "v") {
    throw new Error(`EXEC answered ${JSON.stringify(exec)}`);
  }
}

/** Runs `requests` round trips of `test` over `clients` connections to `port`. */
export async function runStatefulLoad(
  opts: { port: number; test: string; clients: number; requests: number },
): Promise<StatefulResult> {
  const perGroup = opts.test === "blpop" ? 2 : 1;
  const groups = Math.max(1, Math.floor(opts.clients / perGroup));
  const conns = await Promise.all(
    Array.from({ length: groups * perGroup }, () => RespClient.connect(opts.port)),
  );
  try {
    const group = (g: number) => conns.slice(g * perGroup, (g + 1) * perGroup);
    await Promise.all(Array.from({ length: groups }, async (_, g) => {
      for (let i = 0; i < WARM_UP; i++) await _roundTrip(opts.test, group(g), g);
    }));
    const latencies: number[] = [];
    let left = opts.requests;
    const started = performance.now();
    await Promise.all(Array.from({ length: groups }, async (_, g) => {
      while (left > 0) {
        left--;
        const at = performance.now();
        await _roundTrip(opts.test, group(g), g);
        latencies.push(performance.now() - at);
      }
    }));
    const elapsedMs = performance.now() - started;
    latencies.sort((a, b) => a - b);
    const at = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    return {
      rps: latencies.length / (elapsedMs / 1000),
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      elapsedMs,
    };
  } finally {
    for (const conn of conns) conn.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      port: { type: "string" },
      test: { type: "string" },
      clients: { type: "string", default: "50" },
      requests: { type: "string", default: "20000" },
      json: { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  const test = values.test ?? "";
  if (!Number.isInteger(port) || !["blpop", "multi"].includes(test)) {
    console.error(
      "usage: stateful_load.ts --port P --test blpop|multi [--clients N] [--requests N]",
    );
    Deno.exit(2);
  }
  const result = await runStatefulLoad({
    port,
    test,
    clients: Number(values.clients),
    requests: Number(values.requests),
  });
  console.log(
    values.json ? JSON.stringify(result) : `${test}: ${Math.round(result.rps)} round trips/s, ` +
      `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms`,
  );
}
