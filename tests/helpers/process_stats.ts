/** Resident memory of a process, via `ps` (reading /proc needs --allow-all in Deno). */
export async function rssKiB(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const kib = Number(new TextDecoder().decode(stdout).trim());
  if (!(kib > 0)) throw new Error(`no RSS for pid ${pid}`);
  return kib;
}

/** A process's resident memory by kind (`/proc/PID/status`), KiB. */
export interface RssParts {
  /** Private memory: heaps, stacks, buffers. */
  anonKiB: number;
  /** Pages of mapped files, mostly the executable's code: shared with every process running it. */
  fileKiB: number;
  /** Shared memory. */
  shmemKiB: number;
}

/** `pid`'s resident memory split by kind (read with `cat`, for the reason given above). */
export async function rssParts(pid: number): Promise<RssParts> {
  const { stdout, success } = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!success) throw new Error(`no status for pid ${pid}`);
  return parseRssParts(new TextDecoder().decode(stdout));
}

/** The RssAnon, RssFile and RssShmem lines of a `/proc/PID/status` text. */
export function parseRssParts(status: string): RssParts {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status);
    if (match === null) throw new Error(`no ${name} in /proc/PID/status`);
    return Number(match[1]);
  };
  return { anonKiB: field("RssAnon"), fileKiB: field("RssFile"), shmemKiB: field("RssShmem") };
}
