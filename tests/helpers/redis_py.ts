/** Runs redis-py (Debian's python3-redis) scripts for the client-library tests. */
import assert from "node:assert/strict";

/** Runs `script` with python3 and `args`, within `timeoutMs`; returns its stdout parsed as JSON. */
export async function runRedisPy(
  script: string,
  args: string[],
  timeoutMs: number,
): Promise<unknown> {
  const dir = await Deno.makeTempDir({ prefix: "aster-py-" });
  try {
    const path = `${dir}/client.py`;
    await Deno.writeTextFile(path, script);
    // /usr/bin/python3 is Debian's, with python3-redis; a python3 earlier on PATH may lack it.
    const python = await Deno.stat("/usr/bin/python3").then(
      () => "/usr/bin/python3",
      () => "python3",
    );
    const out = await new Deno.Command(python, {
      args: [path, ...args],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    assert.equal(out.code, 0, `redis-py failed:\n${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
