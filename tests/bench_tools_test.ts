/**
 * The measuring tools `deno task bench` relies on: CPU accounting and core placement
 * (bench/cpu_pinning.ts), the cluster-enabled backends of its cluster section
 * (bench/one_master_clusters.ts), the forwarders of its io section (bench/io_floor/) and
 * the allocation sampler (bench/heap_profile.ts), the baseline revision
 * (bench/baseline.ts), the memcache load generator (bench/memcache_load.ts) and the
 * stateful one (bench/stateful_load.ts), the RSS split of the scale section
 * (tests/helpers/process_stats.ts), against real processes and a real Aster.
 */
import assert from "node:assert/strict";
import { coreBusyShares, coreTicks, onCpus, processCpuSeconds } from "../bench/cpu_pinning.ts";
import { extractBaseline } from "../bench/baseline.ts";
import { allocationSites, sampleHeap } from "../bench/heap_profile.ts";
import { startOneMasterClusters } from "../bench/one_master_clusters.ts";
import { runFanOut } from "../bench/fan_out_load.ts";
import { runStatefulLoad } from "../bench/stateful_load.ts";
import { startAster } from "./helpers/aster.ts";
import { parseRssParts, rssKiB, rssParts } from "./helpers/process_stats.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { freePort, startListeningProcess, startMemcached, startRedis } from "./helpers/servers.ts";

Deno.test("onCpus wraps a command in taskset only when given cores", () => {
  assert.deepEqual(onCpus(null, "redis-benchmark", ["-q"]), {
    command: "redis-benchmark",
    args: ["-q"],
  });
  assert.deepEqual(onCpus("1", "redis-benchmark", ["-q"]), {
    command: "taskset",
    args: ["--cpu-list", "1", "redis-benchmark", "-q"],
  });
});

Deno.test("processCpuSeconds grows while a process computes; NaN once it is gone", async () => {
  const busy = new Deno.Command(Deno.execPath(), {
    args: ["eval", "const end = Date.now() + 800; while (Date.now() < end) {}"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const first = await processCpuSeconds(busy.pid);
  await new Promise((resolve) => setTimeout(resolve, 400));
  const later = await processCpuSeconds(busy.pid);
  await busy.status;
  assert.ok(Number.isFinite(first), `no CPU figure for a running process: ${first}`);
  // Spinning for 400 ms on a shared core still shows: 10 ms ticks, a low bar on purpose.
  assert.ok(later - first >= 0.05, `CPU ${first} s then ${later} s`);
  assert.ok(Number.isNaN(await processCpuSeconds(busy.pid)), "a reaped process has no figure");
});

Deno.test("rssParts: private memory a process fills counts as anonymous, and the parts add up to its RSS", async () => {
  const filling = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "const b = new Uint8Array(64 << 20).fill(7); console.log('full'); " +
      "setTimeout(() => console.log(b[0]), 5000);",
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = filling.stdout.getReader();
  try {
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /full/);
    const parts = await rssParts(filling.pid);
    const total = await rssKiB(filling.pid);
    assert.ok(parts.anonKiB >= 64 * 1024, `anonymous ${parts.anonKiB} KiB`);
    assert.ok(parts.fileKiB > 0);
    const sum = parts.anonKiB + parts.fileKiB + parts.shmemKiB;
    assert.ok(Math.abs(sum - total) <= total * 0.05, `parts ${sum} KiB, ps ${total} KiB`);
  } finally {
    filling.kill();
    await filling.status;
    await reader.cancel();
  }
  assert.throws(() => parseRssParts("VmRSS:\t  100 kB\nRssAnon:\t  60 kB\n"), /RssFile/);
});

Deno.test("coreTicks reads one core's busy and total ticks; null for a core that does not exist", async () => {
  const first = await coreTicks(0);
  assert.ok(first !== null, "no cpu0 line in /proc/stat");
  assert.ok(first.busy > 0 && first.busy <= first.total, JSON.stringify(first));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const later = await coreTicks(0);
  assert.ok(later !== null && later.total >= first.total, "ticks went backwards");
  assert.equal(await coreTicks(100_000), null);
});

Deno.test("coreBusyShares sees a core another process keeps busy", async () => {
  const spin = new Deno.Command("taskset", {
    args: [
      ...["--cpu-list", "0", Deno.execPath()],
      ...["eval", "const end = Date.now() + 1500; while (Date.now() < end) {}"],
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((resolve) => setTimeout(resolve, 400)); // past Deno's start-up
    const shares = await coreBusyShares(navigator.hardwareConcurrency, 500);
    const core0 = shares.find(({ core }) => core === 0);
    assert.ok(core0 !== undefined && core0.busy > 0.6, JSON.stringify(shares));
    assert.ok(shares.every(({ busy }) => busy >= 0 && busy <= 1), JSON.stringify(shares));
  } finally {
    await spin.status;
  }
});

Deno.test("heap_profile names the function that allocates in a running process", async () => {
  const port = await freePort();
  // One function allocates 1 KiB arrays nonstop; the rest of the program allocates little.
  const program = `function makeGarbage() { const kept = []; for (let i = 0; i < 2000; i++) ` +
    `kept.push(new Array(128).fill(i)); return kept.length; } ` +
    `const timer = setInterval(makeGarbage, 1); setTimeout(() => clearInterval(timer), 15000);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `--inspect=127.0.0.1:${port}`, program],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    // Sampling starts while the program may still be starting: the tool waits for it.
    const sites = allocationSites(await sampleHeap(port, 1));
    assert.ok(sites.length > 0, "no samples");
    assert.match(sites[0].site, /^makeGarbage /, JSON.stringify(sites.slice(0, 3)));
    assert.ok(sites[0].share > 0.5, JSON.stringify(sites.slice(0, 3)));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

async function _git(args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
  assert.ok(out.success, `git ${args.join(" ")}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("baseline: a revision is extracted, runs as Aster from its own files, and is removed after", async () => {
  const head = (await _git(["rev-parse", "HEAD"])).trim();
  let dir: string;
  {
    await using baseline = await extractBaseline("HEAD");
    assert.equal(baseline.commit, head);
    dir = baseline.source.main.replace(/\/main\.ts$/, "");
    assert.notEqual(dir, Deno.cwd());
    assert.equal(
      await Deno.readTextFile(baseline.source.main),
      await _git(["show", "HEAD:main.ts"]),
    );
    await using redis = await startRedis();
    await using aster = await startAster(
      [{ cache_type: "redis", servers: [`127.0.0.1:${redis.port}:1`] }],
      { source: baseline.source },
    );
    // Deno reads /proc only with --allow-all: ask ps for the command line.
    const ps = await new Deno.Command("ps", { args: ["-o", "args=", "-p", `${aster.pid}`] })
      .output();
    const args = new TextDecoder().decode(ps.stdout).trim().split(" ");
    assert.ok(args.includes(baseline.source.main), args.join(" "));
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(text(await client.command("SET", "baseline:k", "v")), "OK");
    assert.equal(text(await client.command("GET", "baseline:k")), "v");
  }
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  await assert.rejects(extractBaseline("no-such-revision"), /is not a commit of this repository/);
});

Deno.test("one-master clusters: each master owns every slot, has a linked replica, and serves single-key requests of Aster's redis mode", async () => {
  await using stack = new AsyncDisposableStack();
  const pairs = await startOneMasterClusters(stack, 2);
  const servers = pairs.map(({ master }, i) => `127.0.0.1:${master.port}:1 shard-${i}`);
  const aster = stack.use(await startAster([{ cache_type: "redis", servers }]));
  await using client = await RespClient.connect(aster.ports[0]);
  const keys = Array.from({ length: 40 }, (_, i) => `one-master:${i}`);
  for (const key of keys) assert.equal(text(await client.command("SET", key, `v-${key}`)), "OK");
  let stored = 0;
  for (const { master, replica } of pairs) {
    await using node = await RespClient.connect(master.port);
    const info = String(text(await node.command("CLUSTER", "INFO")));
    assert.match(info, /^cluster_state:ok\r?$/m);
    assert.match(info, /^cluster_slots_assigned:16384\r?$/m);
    // Every write reached the replica too (WAIT: replicas that acknowledged).
    assert.equal(text(await node.command("WAIT", "1", "2000")), 1, `replica ${replica.port}`);
    stored += Number(text(await node.command("DBSIZE")));
  }
  // The ring spread the keys over both masters, none was refused with MOVED or CLUSTERDOWN.
  assert.equal(stored, keys.length);
  for (const key of keys) assert.equal(text(await client.command("GET", key)), `v-${key}`);
  // What they cannot stand in for: a multi-key command whose keys span slots is refused by
  // a cluster-enabled redis-server, which is why the bench runs only GET and SET on them.
  const crossSlot = await client.command("MGET", ...keys);
  assert.match(String((crossSlot as { message?: string }).message), /^CROSSSLOT/);
});

for (
  const [file, permission] of [
    ["deno_ops_forwarder.ts", "--allow-net"],
    ["raw_epoll_forwarder.ts", "--allow-ffi"],
  ]
) {
  Deno.test(`io floor ${file}: every client gets its own replies, pipelined and split requests included`, async () => {
    await using stack = new AsyncDisposableStack();
    const redis = stack.use(await startRedis());
    const port = await freePort();
    const path = new URL(`../bench/io_floor/${file}`, import.meta.url).pathname;
    stack.use(
      await startListeningProcess(
        Deno.execPath(),
        ["run", permission, path, `${port}`, `${redis.port}`],
        { port, hint: "deno" },
      ),
    );
    const clients: RespClient[] = [];
    for (let i = 0; i < 5; i++) clients.push(stack.use(await RespClient.connect(port)));
    // Concurrent clients, interleaved in the backend's one stream.
    await Promise.all(clients.map(async (client, i) => {
      for (let n = 0; n < 20; n++) {
        assert.equal(text(await client.command("SET", `io:${i}`, `v${i}-${n}`)), "OK");
        assert.equal(text(await client.command("GET", `io:${i}`)), `v${i}-${n}`);
      }
    }));
    // A pipeline in one write: its replies in order.
    const batch = Array.from({ length: 30 }, () => ["INCR", "io:counter"]);
    const replies = await clients[0].pipeline(batch);
    assert.deepEqual(replies.map(text), Array.from({ length: 30 }, (_, n) => n + 1));
    // A request split over two writes, another client's request between the halves.
    await clients[1].sendRaw("*3\r\n$3\r\nSET\r\n$8\r\nio:split");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(text(await clients[2].command("GET", "io:0")), "v0-19");
    await clients[1].sendRaw("\r\n$5\r\nwhole\r\n");
    assert.equal(text(await clients[1].readReply()), "OK");
    assert.equal(text(await clients[3].command("GET", "io:split")), "whole");
  });
}

for (const io of ["deno", "ffi"]) {
  Deno.test(`memcache_load --io ${io}: every reply checked against a real memcached; a wrong server fails the run`, async () => {
    await using memcached = await startMemcached();
    await using redis = await startRedis();
    const load = new URL("../bench/memcache_load.ts", import.meta.url).pathname;
    const run = (port: number, extra: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "--allow-net", "--allow-ffi", "--allow-read", load, "--json", "--io", io],
          ...["--port", `${port}`, "--connections", "4", "--keys", "100", "--warmup-ms", "0"],
          ...extra,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const decoder = new TextDecoder();
    const set = await run(memcached.port, ["--op", "set", "--requests", "200", "--populate"]);
    assert.ok(set.success, decoder.decode(set.stderr));
    const get = await run(memcached.port, ["--op", "get", "--requests", "500", "--pipeline", "4"]);
    assert.ok(get.success, decoder.decode(get.stderr));
    const result = JSON.parse(decoder.decode(get.stdout));
    assert.equal(result.requests, 500);
    assert.equal(result.hits, 500);
    assert.equal(result.misses, 0);
    // redis-server answers memcache text with errors: the generator must not count them.
    const wrong = await run(redis.port, ["--op", "get", "--requests", "10"]);
    assert.equal(wrong.success, false);
    assert.match(decoder.decode(wrong.stderr), /memcache_load failed/);
  });
}

Deno.test("stateful_load: BLPOP ping-pong and MULTI/EXEC round trips through Aster, replies checked", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  for (const test of ["blpop", "multi"]) {
    const result = await runStatefulLoad({ port: aster.ports[0], test, clients: 8, requests: 400 });
    assert.ok(result.rps > 0 && result.p99Ms >= result.p50Ms, `${test}: ${JSON.stringify(result)}`);
  }
  // Every BLPOP popped what its partner pushed: the lists are empty; 400+ transactions ran.
  await using direct = await RespClient.connect(redis.port);
  for (let pair = 0; pair < 4; pair++) assert.equal(await direct.command("LLEN", `{p${pair}}q`), 0);
  let increments = 0;
  for (let c = 0; c < 8; c++) increments += Number(text(await direct.command("GET", `{m${c}}n`)));
  assert.ok(increments >= 400, `${increments} transactions`);
});

Deno.test("fan_out_load: every subscriber gets every message, through Aster as directly", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  for (const port of [redis.port, aster.ports[0]]) {
    // Bytes are counted exactly: a missing message would hang until the run's timeout.
    const result = await runFanOut({ port, messages: 250, subscribers: 5 });
    assert.ok(result.rps > 0 && result.elapsedMs > 0, JSON.stringify(result));
  }
  // Each subscription connection is gone once the run closed its client.
  await using direct = await RespClient.connect(redis.port);
  for (let i = 0; i < 50; i++) {
    const numsub = text(await direct.command("PUBSUB", "NUMSUB", "bench-fan-out")) as unknown[];
    if (numsub[1] === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail("subscribers left on redis-server after the runs");
});
