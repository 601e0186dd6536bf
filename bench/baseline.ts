/**
 * Another revision of Aster to measure beside this checkout (`deno task bench --baseline
 * REV`): before/after ratios of a change in one run, alternating with it, instead of two
 * runs minutes apart whose absolute numbers differ by more than most changes.
 */
import type { AsterSource } from "../tests/helpers/aster.ts";

const REPO = new URL("..", import.meta.url).pathname;

/** A revision's files extracted into a temporary directory; removed on dispose. */
export interface Baseline extends AsyncDisposable {
  /** The revision as given, and the commit it names. */
  revision: string;
  commit: string;
  source: AsterSource;
}

async function _git(args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: REPO, stdout: "piped", stderr: "piped" })
    .output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${text(out.stderr)}`);
  return text(out.stdout);
}

/** Extracts `revision` (anything `git rev-parse` takes) of this repository. */
export async function extractBaseline(revision: string): Promise<Baseline> {
  let commit: string;
  try {
    commit = await _git(["rev-parse", "--verify", "--quiet", `${revision}^{commit}`]);
  } catch {
    throw new Error(`--baseline: ${JSON.stringify(revision)} is not a commit of this repository`);
  }
  const dir = await Deno.makeTempDir({ prefix: "aster-baseline-" });
  try {
    const tar = `${dir}/.revision.tar`;
    await _git(["archive", "--format=tar", "-o", tar, commit]);
    const untar = await new Deno.Command("tar", { args: ["-xf", tar, "-C", dir], stderr: "piped" })
      .output();
    await Deno.remove(tar);
    if (!untar.success) throw new Error(`tar: ${new TextDecoder().decode(untar.stderr)}`);
    return {
      revision,
      commit,
      source: { main: `${dir}/main.ts`, config: `${dir}/deno.json` },
      [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}
