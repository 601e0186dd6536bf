/**
 * The `io` section: the floor under a proxy's CPU per request. redis-benchmark GET and SET
 * at pipeline 1 through nutcracker, Aster, and two minimal forwarders over one redis-server,
 * one on Deno's socket ops and one on raw epoll through FFI (`bench/io_floor/`), beside
 * Aster on raw sockets and on Deno's ops (`aster-deno`), for those and for the MGET over
 * three shards.
 */
import { freePort, startListeningProcess, startRedis } from "../../tests/helpers/servers.ts";
import { redisBenchmarkTarget } from "../load_tools.ts";
import { redisProxyTargets, serverEntry, startProxies } from "../proxies.ts";
import { rowLabel } from "../results.ts";
import { SANDBOXED, WARM_UP } from "../settings.ts";
import { ratioCheck, ratioOf } from "../targets.ts";
import type { Section, SectionRun, Stage, TargetCheck } from "../types.ts";
import { MGET_KEYS, mgetStage } from "./mget_stage.ts";

/** The two forwarders of the `io` section, with the permission each needs. */
const IO_FLOOR_FORWARDERS = [
  { name: "deno-ops", file: "deno_ops_forwarder.ts", permission: "--allow-net" },
  { name: "raw-epoll", file: "raw_epoll_forwarder.ts", permission: "--allow-ffi" },
] as const;

/**
 * One redis-server behind nutcracker, Aster (raw sockets), Aster on Deno's ops and the two
 * `bench/io_floor/` forwarders, which do no more than frame requests and replies: what each
 * costs per request at pipeline 1 is the floor its socket calls set.
 */
const ioFloorStage: Stage = {
  title: "GET/SET at pipeline 1, one redis-server",
  async start(stack, options) {
    const redis = stack.use(await startRedis());
    const servers = [serverEntry(redis.port, 0)];
    const targets = redisProxyTargets(await startProxies(stack, { servers, sandboxed: true }));
    for (const forwarder of IO_FLOOR_FORWARDERS) {
      const port = await freePort();
      const file = new URL(`../io_floor/${forwarder.file}`, import.meta.url).pathname;
      const args = ["run", forwarder.permission, file, `${port}`, `${redis.port}`];
      const started = stack.use(
        await startListeningProcess(Deno.execPath(), args, { port, hint: "deno" }),
      );
      targets.push(redisBenchmarkTarget(forwarder.name, { port, pid: started.pid }));
    }
    return {
      targets,
      workloads: [{ pipeline: 1, requests: options.requests, tests: ["get", "set"] }],
      warmUp: WARM_UP,
      notes: [
        "deno-ops and raw-epoll (bench/io_floor/): one redis-server, requests framed and " +
        "forwarded in one write per turn, replies framed and returned; nothing else. " +
        "deno-ops uses conn.read/conn.write like Aster, raw-epoll libc epoll/recv/send " +
        'through FFI. aster: raw sockets on one FFI epoll loop (io = "auto" with ' +
        `--allow-ffi); ${SANDBOXED}: Deno's socket ops (io = "deno", no --allow-ffi).`,
      ],
    };
  },
};

/** The io section's info rows: the forwarders' and Aster's CPU per request, MGET req/s. */
function ioChecks(run: SectionRun): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const row = rowLabel("GET", 1);
  for (const [target, base] of [["deno-ops", "nutcracker"], ["raw-epoll", "nutcracker"]]) {
    const ratio = ratioOf(run.results, row, { target, base, field: "targetCpuUs" });
    const what = `io GET+SET P1 CPU per request, ${target} forwarder/${base}`;
    checks.push(ratioCheck(what, ratio, {}));
  }
  const mget = rowLabel(`MGET x${MGET_KEYS.length}`, 1);
  // req/s for MGET only: the GET/SET rows are generator-bound (the report says so).
  const asterRows: [string, string, "targetCpuUs" | "rps", string][] = [
    ["GET+SET P1", row, "targetCpuUs", SANDBOXED],
    [mget, mget, "targetCpuUs", SANDBOXED],
    ["GET+SET P1", row, "targetCpuUs", "nutcracker"],
    [mget, mget, "targetCpuUs", "nutcracker"],
    [mget, mget, "rps", SANDBOXED],
    [mget, mget, "rps", "nutcracker"],
  ];
  for (const [name, at, field, base] of asterRows) {
    const ratio = ratioOf(run.results, at, { target: "aster", base, field });
    const label = field === "rps" ? "req/s" : "CPU per request";
    checks.push(ratioCheck(`io ${name} ${label}, aster/${base}`, ratio, {}));
  }
  return checks;
}

/** The `io` section (the socket-call floor). */
export const ioSection: Section = {
  name: "io",
  title: "io: the socket-call floor: minimal forwarders beside the proxies, Aster on raw " +
    "sockets and on Deno's ops",
  columns: [
    { target: "nutcracker", label: "nutcracker" },
    { target: "aster", label: "aster" },
    { target: SANDBOXED, label: SANDBOXED },
    { target: "deno-ops", label: "deno-ops" },
    { target: "raw-epoll", label: "raw-epoll" },
  ],
  ratios: [
    ["aster", SANDBOXED],
    ["aster", "nutcracker"],
    ["deno-ops", "nutcracker"],
    ["raw-epoll", "nutcracker"],
    ["aster", "raw-epoll"],
    [SANDBOXED, "deno-ops"],
  ],
  stages: [ioFloorStage, mgetStage({ inIo: true })],
  pinned: true,
  checks: ioChecks,
};
