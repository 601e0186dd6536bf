/**
 * What cannot run here, checked as text: the release workflow (.github/workflows/release.yml)
 * and the Dockerfile call only deno tasks that exist, build every promised target with the
 * flags of `deno task compile` and `deno task build:bun`, and the image runs as non-root
 * with a HEALTHCHECK the binary answers. Also: the runtime test tasks list the same files.
 */

import assert from "node:assert/strict";
import { parse } from "yaml";
import { HELP } from "../src/cli.ts";
import { releaseCommand, releaseFile, sha256Sums } from "../tools/release.ts";
import { EMBEDDED_WORKERS } from "../src/runtime/bun/bun_runtime.ts";

const ROOT = new URL("../", import.meta.url);
const TASKS: Record<string, string> = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
).tasks;
const WORKFLOW = await Deno.readTextFile(new URL(".github/workflows/release.yml", ROOT));
const DOCKERFILE = await Deno.readTextFile(new URL("Dockerfile", ROOT));

/** The Deno targets and Bun builds a release ships. */
const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "bun-linux-x64",
];

/** `deno task NAME` calls in `text`, and the words after each (its arguments). */
function _taskCalls(text: string): { task: string; args: string[] }[] {
  return [...text.matchAll(/deno task ([\w:-]+)([^\n&;|]*)/g)].map((m) => ({
    task: m[1],
    args: m[2].trim().split(/\s+/).filter((w) => w !== ""),
  }));
}

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

Deno.test("release.yml: on a version tag, builds every target through deno tasks that exist", () => {
  const workflow = parse(WORKFLOW);
  assert.deepEqual(workflow.on.push.tags, ["v*"]);
  assert.equal(workflow.permissions.contents, "write");
  const steps: Step[] = Object.values(workflow.jobs as Record<string, { steps: Step[] }>)
    .flatMap((job) => job.steps);
  const runs = steps.map((step) => step.run ?? "").join("\n");
  const calls = _taskCalls(runs);
  assert.ok(calls.length > 0, "the workflow calls deno tasks");
  for (const { task } of calls) assert.ok(task in TASKS, `deno task ${task} is not in deno.json`);
  const built = calls.filter((c) => c.task === "release").flatMap((c) => c.args);
  for (const target of TARGETS) assert.ok(built.includes(target), `no release for ${target}`);
  // The runtimes pinned as .ci/run and the Dockerfile pin them.
  const setup = (name: string) => steps.find((s) => s.uses?.startsWith(name))?.with;
  assert.equal(String(setup("denoland/setup-deno")?.["deno-version"]), "2.9.6");
  assert.equal(String(setup("oven-sh/setup-bun")?.["bun-version"]), "1.4.5");
  assert.match(runs, /dist\/SHA256SUMS/);
});

Deno.test("deno task release builds with the flags of deno task compile and build:bun", () => {
  for (const target of TARGETS) {
    const argv = releaseCommand(TASKS, target);
    const bun = target.startsWith("bun-");
    const task = bun ? TASKS["build:bun"].split("&&").at(-1)!.trim() : TASKS.compile;
    // Every word of the task is there, the output renamed, and the target added.
    const output = bun ? "--outfile" : "--output";
    const expected = task.split(/\s+/).map((w, i, all) =>
      all[i - 1] === output ? releaseFile(target) : w
    );
    assert.deepEqual(
      argv.filter((w) => w !== "--target" && w !== target && w !== `--target=${target}`),
      expected,
    );
    assert.ok(argv.includes(bun ? `--target=${target}` : target), target);
    assert.ok(releaseFile(target).startsWith("dist/aster-proxy-"));
  }
});

Deno.test("SHA256SUMS lines are sha256sum's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/aster-proxy-x`, "abc");
    assert.equal(
      await sha256Sums([`${dir}/aster-proxy-x`]),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  aster-proxy-x\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Dockerfile: a Deno or Bun build through deno tasks, non-root, a HEALTHCHECK", () => {
  for (const { task } of _taskCalls(DOCKERFILE)) {
    assert.ok(task in TASKS, `deno task ${task} is not in deno.json`);
  }
  assert.match(DOCKERFILE, /^ARG BUILD=deno$/m);
  assert.match(DOCKERFILE, /^FROM \S+ AS build-deno$/m);
  assert.match(DOCKERFILE, /^FROM \S+ AS build-bun$/m);
  assert.match(DOCKERFILE, /^FROM build-\$\{BUILD\} AS build$/m);
  assert.match(DOCKERFILE, /deno task build:bun/);
  assert.match(DOCKERFILE, /deno task \$\{COMPILE_TASK\}/);
  // The last stage runs as a non-root user, by number.
  const last = DOCKERFILE.slice(DOCKERFILE.lastIndexOf("\nFROM "));
  const user = last.match(/^USER (\d+)(:\d+)?$/m);
  assert.ok(user !== null && Number(user[1]) !== 0, "USER is a non-root uid");
  const health = last.match(/^HEALTHCHECK .*\\\n\s+CMD \[(.*)\]$/m);
  assert.ok(health !== null, "a HEALTHCHECK in exec form");
  const argv = JSON.parse(`[${health[1]}]`);
  assert.equal(argv[0], "/aster-proxy");
  assert.ok(argv.includes("--healthcheck") && HELP.includes("--healthcheck"));
});

Deno.test("deno task test:bun and test:binary run the same existing test files", async () => {
  const files = (task: string) => TASKS[task].split(/\s+/).filter((w) => w.endsWith("_test.ts"));
  assert.ok(files("test:bun").length >= 10);
  assert.deepEqual(files("test:binary"), files("test:bun"));
  for (const file of files("test:bun")) await Deno.stat(new URL(file, ROOT));
});

Deno.test("deno task build:bun embeds every worker the Bun binary looks for", () => {
  const entries = TASKS["build:bun"].split(/\s+/).filter((w) => w.endsWith(".ts"));
  assert.equal(entries[0], "main.ts");
  assert.deepEqual(entries.slice(1), EMBEDDED_WORKERS);
});
