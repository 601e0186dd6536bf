/**
 * `deno task failover:loop [--runs 30] [--max-minutes 20] [--io ffi|deno]`: runs the manual
 * failover step of tests/redis_cluster_failover_test.ts again and again (a fresh cluster and
 * Aster each time) and reports, per run and in total, the GETs that returned a value older
 * than the client's own latest write. Not part of `deno task test` (the name does not end in `_test.ts`): a
 * rare race needs many runs to show. Exits 1 when any run failed or read a stale value.
 */
import { parseArgs } from "node:util";

interface RunReport {
  seed: number;
  failoverMs: number[];
  ops: Record<string, number>;
  maxLatencyMs: number;
  errors: number;
  staleReads: number;
  firstErrors: string[];
}

const TEST_FILE = new URL("./redis_cluster_failover_test.ts", import.meta.url).pathname;
/** A run past this is stopped and counted as failed (the test bounds itself well below). */
const RUN_TIMEOUT_MS = 120_000;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "30" },
    "max-minutes": { type: "string", default: "20" },
    io: { type: "string" },
  },
});
const runs = Number(values.runs);
const maxMinutes = Number(values["max-minutes"]);
const io = values.io;
if (
  !Number.isInteger(runs) || runs < 1 || !(maxMinutes > 0) ||
  (io !== undefined && io !== "ffi" && io !== "deno")
) {
  console.error(
    "usage: deno task failover:loop [--runs N >= 1] [--max-minutes M > 0] [--io ffi|deno]",
  );
  Deno.exit(2);
}

const dir = await Deno.makeTempDir({ prefix: "aster-failover-loop-" });
const deadline = Date.now() + maxMinutes * 60_000;
let done = 0;
let failed = 0;
let staleTotal = 0;
let staleRuns = 0;
try {
  for (let run = 1; run <= runs; run++) {
    if (Date.now() > deadline) {
      console.log(`stopping after ${done} runs: --max-minutes ${maxMinutes} reached`);
      break;
    }
    const reportPath = `${dir}/run-${run}.jsonl`;
    const started = Date.now();
    const { ok, output } = await _runOnce(reportPath);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const report = await _readReport(reportPath);
    done++;
    const stale = report?.staleReads ?? 0;
    staleTotal += stale;
    if (stale > 0) staleRuns++;
    if (!ok) failed++;
    const facts = report === null
      ? "no report (the step did not get to its end)"
      : `stale reads ${stale}, errors ${report.errors}, ops ${JSON.stringify(report.ops)}, ` +
        `failovers ${report.failoverMs.join("+")} ms, max latency ${report.maxLatencyMs} ms`;
    console.log(`run ${run}/${runs}: ${ok ? "pass" : "FAIL"} in ${seconds} s; ${facts}`);
    if (!ok) {
      for (const line of report?.firstErrors ?? []) console.log(`  ${line}`);
      // The whole output (with Aster's log) is kept: the loop is for rare failures.
      await Deno.writeTextFile(`${dir}/run-${run}.log`, output);
      console.log(`  output: ${dir}/run-${run}.log`);
    }
  }
} finally {
  // Kept when a run failed (its output is there); else removed.
  if (failed === 0) await Deno.remove(dir, { recursive: true });
}
console.log(
  `${done} runs: ${done - failed} passed, ${failed} failed; ` +
    `${staleTotal} stale reads in ${staleRuns} runs`,
);
Deno.exit(failed > 0 || staleTotal > 0 ? 1 : 0);

async function _runOnce(reportPath: string): Promise<{ ok: boolean; output: string }> {
  // Its own process group (setsid): a hung run is killed with the servers it started.
  const child = new Deno.Command("setsid", {
    args: [
      Deno.execPath(),
      "test",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-sys",
      TEST_FILE,
    ],
    env: {
      ASTER_FAILOVER_ONLY: "1",
      ASTER_FAILOVER_REPORT: reportPath,
      NO_COLOR: "1",
      // Aster's socket I/O; absent: the config default.
      ...(io ? { ASTER_FAILOVER_IO: io } : {}),
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The test stops its own servers and bounds its waits: this is a last resort.
  const timer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, RUN_TIMEOUT_MS);
  try {
    const { success, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    return { ok: success, output: decoder.decode(stdout) + decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

async function _readReport(path: string): Promise<RunReport | null> {
  try {
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    return JSON.parse(lines[lines.length - 1]) as RunReport;
  } catch {
    return null;
  }
}
