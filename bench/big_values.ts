/**
 * Big values through each proxy: a pipeline of 5 SETs of 16 MB, then an MGET of the 5 keys,
 * against one redis-server directly, through nutcracker and through Aster (as `deno task
 * start` runs it, or sandboxed with `--io deno`), in alternating rounds; prints the median
 * seconds of each and Aster's ratio to nutcracker (issue 17, point 6).
 *
 * With `--baseline REV`, Aster as of that revision runs too (`aster-base`), alternating.
 *
 * Usage: deno run -A bench/big_values.ts [--rounds 7] [--mb 16] [--io ffi|deno] [--baseline REV]
 */
import { parseArgs } from "node:util";
import { startAster } from "../tests/helpers/aster.ts";
import { RespClient } from "../tests/helpers/resp_client.ts";
import { startNutcracker, startRedis } from "../tests/helpers/servers.ts";
import { extractBaseline } from "./baseline.ts";

/** Seconds of one 5-SET pipeline and one MGET of the 5 values through `port`. */
export async function bigValueRound(
  port: number,
  value: Uint8Array,
): Promise<{ set: number; mget: number }> {
  await using client = await RespClient.connect(port);
  client.timeoutMs = 30_000;
  const keys = [0, 1, 2, 3, 4].map((i) => `big:${i}`);
  let started = performance.now();
  const replies = await client.pipeline(keys.map((key) => ["SET", key, value]));
  const set = (performance.now() - started) / 1000;
  if (replies.some((reply) => reply !== "OK")) {
    throw new Error(`SET failed: ${replies.map((r) => JSON.stringify(r))}`);
  }
  started = performance.now();
  const values = await client.command("MGET", ...keys);
  const mget = (performance.now() - started) / 1000;
  if (!Array.isArray(values) || values.some((v) => !(v instanceof Uint8Array))) {
    throw new Error("MGET failed");
  }
  return { set, mget };
}

function _median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

if (import.meta.main) {
  const { values: flags } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "7" },
      mb: { type: "string", default: "16" },
      io: { type: "string", default: "ffi" },
      baseline: { type: "string" },
    },
  });
  const rounds = Number(flags.rounds);
  const value = new Uint8Array(Number(flags.mb) * 2 ** 20).fill(0x61);
  await using redis = await startRedis();
  await using nutcracker = await startNutcracker({ servers: [`127.0.0.1:${redis.port}:1`] });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}:1`],
    read_timeout: 10_000,
  }], { sandboxed: flags.io === "deno" });
  const targets: [string, number][] = [
    ["direct", redis.port],
    ["nutcracker", nutcracker.port],
    ["aster", aster.ports[0]],
  ];
  await using stack = new AsyncDisposableStack();
  if (flags.baseline !== undefined) {
    const base = stack.use(await extractBaseline(flags.baseline));
    const old = stack.use(
      await startAster([{ servers: [`127.0.0.1:${redis.port}:1`], read_timeout: 10_000 }], {
        sandboxed: flags.io === "deno",
        source: base.source,
      }),
    );
    targets.push(["aster-base", old.ports[0]]);
  }
  const results = new Map<string, { set: number[]; mget: number[] }>();
  for (const [name] of targets) results.set(name, { set: [], mget: [] });
  for (const [, port] of targets) await bigValueRound(port, value); // warm up
  for (let round = 0; round < rounds; round++) {
    for (const [name, port] of targets) {
      const { set, mget } = await bigValueRound(port, value);
      results.get(name)!.set.push(set);
      results.get(name)!.mget.push(mget);
    }
  }
  const median = (name: string, kind: "set" | "mget") => _median(results.get(name)![kind]);
  for (const [name] of targets) {
    console.log(
      `${name.padEnd(11)} 5 x ${flags.mb} MB SET pipeline ${median(name, "set").toFixed(3)} s, ` +
        `MGET ${median(name, "mget").toFixed(3)} s`,
    );
  }
  if (flags.baseline !== undefined) {
    console.log(
      `aster/aster-base time: SET pipeline ${
        (median("aster", "set") / median("aster-base", "set")).toFixed(2)
      }x, MGET ${(median("aster", "mget") / median("aster-base", "mget")).toFixed(2)}x`,
    );
  }
  console.log(
    `aster/nutcracker time: SET pipeline ${
      (median("aster", "set") / median("nutcracker", "set")).toFixed(2)
    }x, MGET ${
      (median("aster", "mget") / median("nutcracker", "mget")).toFixed(2)
    }x (io ${flags.io})`,
  );
}
