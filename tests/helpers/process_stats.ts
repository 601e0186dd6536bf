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
