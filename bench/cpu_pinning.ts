/**
 * Keeps the load generator and the processes under test on separate cores (`taskset`).
 *
 * On a 2-core machine the load generator, the backends and the proxy are three busy
 * processes on two cores: where the scheduler happens to put them decided more than the
 * proxy did (one pipeline-1 SET run measured Aster/nutcracker anywhere from 0.68x to 1.42x
 * round by round). With the generator alone on the last core and the backends and proxy on
 * the others, rounds agree within a few percent, and the proxy's CPU per request is what
 * sets its pace: it shares its core with the backends, as it would share a host.
 */

/** Which cores each side runs on, as `taskset` cpu lists. */
export interface CpuLayout {
  /** Backends and proxies (the bench process itself, whose children inherit it). */
  system: string;
  /** Load generators. */
  load: string;
  /** Every core: sections that need them all (thread = 2) run unpinned. */
  all: string;
}

/**
 * The layout for this machine, or the reason there is none: fewer than two cores, or no
 * `taskset` (util-linux).
 */
export async function detectCpuLayout(): Promise<CpuLayout | string> {
  const cores = navigator.hardwareConcurrency;
  if (cores < 2) return `${cores} core: nothing to separate`;
  const last = cores - 1;
  const layout = {
    system: last === 1 ? "0" : `0-${last - 1}`,
    load: `${last}`,
    all: `0-${last}`,
  };
  try {
    await setOwnCpus(layout.all);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return layout;
}

/**
 * Moves every thread of this process to `cpus`; processes it starts afterwards inherit
 * them (this is how backends and proxies are placed without knowing their pids).
 */
export async function setOwnCpus(cpus: string): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("taskset", {
      args: ["--all-tasks", "--cpu-list", "--pid", cpus, `${Deno.pid}`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch {
    throw new Error("taskset not found (apt-get install -y util-linux)");
  }
  if (!output.success) {
    throw new Error(`taskset failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
}

/** `command args` run on `cpus` (through taskset), or as it is when `cpus` is null. */
export function onCpus(
  cpus: string | null,
  command: string,
  args: string[],
): { command: string; args: string[] } {
  if (cpus === null) return { command, args };
  return { command: "taskset", args: ["--cpu-list", cpus, command, ...args] };
}

/** Linux clock ticks per second (USER_HZ) in /proc/PID/stat and /proc/stat. */
const TICKS_PER_SECOND = 100;

/** A /proc file through `cat` (Deno reads /proc only with --allow-all); null when unreadable. */
async function _readProc(path: string): Promise<string | null> {
  try {
    const output = await new Deno.Command("cat", {
      args: [path],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return output.success ? new TextDecoder().decode(output.stdout) : null;
  } catch {
    return null;
  }
}

/** CPU seconds process `pid` has used so far (all its threads), or NaN once it is gone. */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await _readProc(`/proc/${pid}/stat`);
  if (stat === null) return NaN;
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime + stime
}

/** Busy and total ticks of one core so far. */
interface CoreTicks {
  busy: number;
  total: number;
}

/** Every core's ticks so far by core number (one read of /proc/stat), or null when unreadable. */
async function _allCoreTicks(): Promise<Map<number, CoreTicks> | null> {
  const stat = await _readProc("/proc/stat");
  if (stat === null) return null;
  const cores = new Map<number, CoreTicks>();
  for (const line of stat.split("\n")) {
    const match = /^cpu(\d+) /.exec(line);
    if (match === null) continue;
    const ticks = line.split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((sum, t) => sum + t, 0);
    const idle = ticks[3] + (ticks[4] ?? 0); // idle + iowait
    cores.set(Number(match[1]), { busy: total - idle, total });
  }
  return cores;
}

/** Busy and total ticks of one core so far (/proc/stat), or null when unreadable. */
export async function coreTicks(core: number): Promise<CoreTicks | null> {
  return (await _allCoreTicks())?.get(core) ?? null;
}

/**
 * Each core's busy share over `sampleMs` (from /proc/stat), for cores whose figures could be
 * read. Taken while the bench runs nothing, a busy core means another process is at work:
 * its share is taken from whatever the section then measures.
 */
export async function coreBusyShares(
  cores: number,
  sampleMs: number,
): Promise<{ core: number; busy: number }[]> {
  const before = await _allCoreTicks();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const after = await _allCoreTicks();
  const shares: { core: number; busy: number }[] = [];
  for (let core = 0; core < cores; core++) {
    const start = before?.get(core);
    const end = after?.get(core);
    if (start === undefined || end === undefined || end.total <= start.total) continue;
    shares.push({ core, busy: (end.busy - start.busy) / (end.total - start.total) });
  }
  return shares;
}
