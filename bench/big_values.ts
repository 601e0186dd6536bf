/**
 * Big values through each proxy: a pipeline of 5 SETs of 16 MB, then an MGET of the 5 keys,
 * against one redis-server directly, through nutcracker and through Aster (as `deno task
 * start` runs it, or sandboxed with `--io deno`), in alternating rounds; prints the median
 * seconds of each and Aster's ratio to nutcracker (issue 17, point 6).
 *
 * With `--baseline REV`, Aster as of that revision runs too (`aster-base`), alternating.
 *
 * With `--shards 2` the keys spread over two redis-servers (the issue-23 row: the MGET is
 * split and merged); direct then means the first server only, each value's round trip.
 *
 * Usage: deno run -A bench/big_values.ts [--rounds 7] [--mb 16] [--shards 1|2] [--io ffi|deno]
 *   [--baseline REV]
 */
import { parseArgs } from "node:util";
import { startAster } from "../tests/helpers/aster.ts";
import { startNutcracker, startRedis } from "../tests/helpers/servers.ts";
import { extractBaseline } from "./baseline.ts";
import { bigValueRound } from "./big_value_round.ts";

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
      shards: { type: "string", default: "1" },
      io: { type: "string", default: "ffi" },
      baseline: { type: "string" },
    },
  });
  await _compare(flags);
}

/** Starts the servers and proxies and prints each one's median round (the standalone run). */
async function _compare(
  flags: { rounds: string; mb: string; shards: string; io: string; baseline?: string },
): Promise<void> {
  const rounds = Number(flags.rounds);
  const value = new Uint8Array(Number(flags.mb) * 2 ** 20).fill(0x61);
  await using redis = await startRedis();
  await using redis2 = Number(flags.shards) > 1 ? await startRedis() : null;
  // Named, so that ketama places the keys by name, the same in every run (not by port).
  const servers = [redis, redis2].filter((r) => r !== null).map((r, i) =>
    `127.0.0.1:${r.port}:1 shard-${i}`
  );
  await using nutcracker = await startNutcracker({ servers });
  await using aster = await startAster([{ servers, read_timeout: 10_000 }], {
    sandboxed: flags.io === "deno",
  });
  // name, port, pid of the process whose CPU time is counted (the proxy, or the server)
  const targets: [string, number, number][] = [
    ...(redis2 === null ? [["direct", redis.port, redis.pid] as [string, number, number]] : []),
    ["nutcracker", nutcracker.port, nutcracker.pid],
    ["aster", aster.ports[0], aster.pid],
  ];
  await using stack = new AsyncDisposableStack();
  if (flags.baseline !== undefined) {
    const base = stack.use(await extractBaseline(flags.baseline));
    const old = stack.use(
      await startAster([{ servers, read_timeout: 10_000 }], {
        sandboxed: flags.io === "deno",
        source: base.source,
      }),
    );
    targets.push(["aster-base", old.ports[0], old.pid]);
  }
  type Kind = "set" | "mget" | "setCpu" | "mgetCpu";
  const results = new Map<string, Record<Kind, number[]>>();
  for (const [name] of targets) results.set(name, { set: [], mget: [], setCpu: [], mgetCpu: [] });
  for (const [, port] of targets) await bigValueRound(port, value); // warm up
  for (let round = 0; round < rounds; round++) {
    for (const [name, port, pid] of targets) {
      const times = await bigValueRound(port, value, pid);
      for (const kind of ["set", "mget", "setCpu", "mgetCpu"] as const) {
        results.get(name)![kind].push(times[kind]);
      }
    }
  }
  const median = (name: string, kind: Kind) => _median(results.get(name)![kind]);
  for (const [name] of targets) {
    console.log(
      `${name.padEnd(11)} 5 x ${flags.mb} MB SET pipeline ${median(name, "set").toFixed(3)} s, ` +
        `MGET ${median(name, "mget").toFixed(3)} s (rounds SET ${
          results.get(name)!.set.map((x) => x.toFixed(3)).join(" ")
        }; MGET ${results.get(name)!.mget.map((x) => x.toFixed(3)).join(" ")}); ` +
        `CPU s: SET ${median(name, "setCpu").toFixed(3)}, MGET ${
          median(name, "mgetCpu").toFixed(3)
        }`,
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
    }x (io ${flags.io}); CPU: SET pipeline ${
      (median("aster", "setCpu") / median("nutcracker", "setCpu")).toFixed(2)
    }x, MGET ${(median("aster", "mgetCpu") / median("nutcracker", "mgetCpu")).toFixed(2)}x`,
  );
}
