/**
 * `deno task release TARGET...`: the release binaries, built with the very flags of
 * `deno task compile` (Deno targets, cross-compiled with `--target`) and
 * `deno task build:bun` (Bun targets: `bun-linux-x64`, `bun-linux-arm64`, ...), named
 * `dist/aster-proxy-VERSION-TARGET`, and `dist/SHA256SUMS` over every `dist/aster-proxy-*`.
 * .github/workflows/release.yml runs it on a version tag.
 */
import { VERSION } from "../src/version.ts";

/** The file a target's binary is written to. */
export function releaseFile(target: string): string {
  return `dist/aster-proxy-${VERSION}-${target}`;
}

/**
 * The command line that builds `target` from deno.json's `tasks`: Bun targets from the
 * `bun build` of `build:bun`, the others from `compile`, each with `--target` added and
 * the output renamed.
 */
export function releaseCommand(tasks: Record<string, string>, target: string): string[] {
  if (target.startsWith("bun-")) {
    const build = tasks["build:bun"].split("&&").map((part) => part.trim())
      .find((part) => part.startsWith("bun build"));
    if (build === undefined) throw new Error("deno task build:bun has no bun build");
    const argv = _renamed(build.split(/\s+/), "--outfile", releaseFile(target));
    return [...argv.slice(0, 2), `--target=${target}`, ...argv.slice(2)];
  }
  const argv = _renamed(tasks.compile.split(/\s+/), "--output", releaseFile(target));
  return [...argv.slice(0, 2), "--target", target, ...argv.slice(2)];
}

function _renamed(argv: string[], flag: string, file: string): string[] {
  const at = argv.indexOf(flag);
  if (at < 0) throw new Error(`${argv.join(" ")}: no ${flag}`);
  return argv.with(at + 1, file);
}

/** `sha256sum` lines for `files` (names without their folder). */
export async function sha256Sums(files: string[]): Promise<string> {
  const lines: string[] = [];
  for (const file of files.toSorted()) {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(file));
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    lines.push(`${hex}  ${file.slice(file.lastIndexOf("/") + 1)}`);
  }
  return lines.map((line) => `${line}\n`).join("");
}

async function main(targets: string[]): Promise<number> {
  if (targets.length === 0) {
    console.error(
      "usage: deno task release TARGET... (e.g. x86_64-unknown-linux-gnu bun-linux-x64)",
    );
    return 2;
  }
  const { tasks } = JSON.parse(await Deno.readTextFile("deno.json"));
  if (targets.some((t) => t.startsWith("bun-"))) {
    const install = await new Deno.Command("bun", { args: ["install", "--frozen-lockfile"] })
      .spawn().status;
    if (!install.success) return 1;
  }
  for (const target of targets) {
    const [program, ...args] = releaseCommand(tasks, target);
    console.error(`release: ${program} ${args.join(" ")}`);
    const status = await new Deno.Command(program, { args }).spawn().status;
    if (!status.success) return 1;
  }
  const files = [...Deno.readDirSync("dist")]
    .filter((e) => e.isFile && e.name.startsWith("aster-proxy-"))
    .map((e) => `dist/${e.name}`);
  await Deno.writeTextFile("dist/SHA256SUMS", await sha256Sums(files));
  console.error(`release: dist/SHA256SUMS over ${files.length} files`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
