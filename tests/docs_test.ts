/** The README and deno.json tell the truth about every config key, flag and task flag. */
import assert from "node:assert/strict";
import { CLUSTER_KEYS } from "../src/config/schema.ts";
import { HELP } from "../src/cli.ts";
import { ASTER_V8_FLAGS } from "./helpers/aster.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README documents every config key", () => {
  for (const key of [...CLUSTER_KEYS, "metrics_addr"]) {
    assert.match(README, new RegExp("\\| `" + key + "`"), `README table lacks ${key}`);
  }
});

Deno.test("README documents every command-line flag of --help", () => {
  const flags = [...HELP.matchAll(/--([a-z-]+)/g)].map((m) => m[1]);
  assert.ok(flags.length >= 6);
  for (const flag of flags) assert.ok(README.includes(`--${flag}`), `README lacks --${flag}`);
});

Deno.test("tests run Aster with the V8 flags of deno task start and compile", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const task of ["start", "start:sandboxed", "compile", "compile:sandboxed"]) {
    const flags = config.tasks[task].split(" ");
    assert.ok(flags.includes(ASTER_V8_FLAGS), `deno task ${task} lacks ${ASTER_V8_FLAGS}`);
    // io = "auto" (the default) runs on raw sockets only where --allow-ffi is granted.
    assert.equal(flags.includes("--allow-ffi"), !task.endsWith(":sandboxed"), task);
  }
});

Deno.test("docs/ARCHITECTURE.md names only source files and folders that exist", async () => {
  const map = await Deno.readTextFile(new URL("../docs/ARCHITECTURE.md", import.meta.url));
  const paths = new Set([...map.matchAll(/\bsrc\/[\w/.-]*[\w/]/g)].map((m) => m[0]));
  assert.ok(paths.size >= 30, `only ${paths.size} paths named`);
  for (const path of paths) {
    const info = await Deno.stat(new URL(`../${path}`, import.meta.url)).catch(() => null);
    assert.ok(info !== null, `docs/ARCHITECTURE.md names ${path}, which does not exist`);
    assert.equal(info.isDirectory, path.endsWith("/"), `${path}: file or folder as named`);
  }
});

Deno.test("README links docs/ARCHITECTURE.md", () => {
  assert.ok(README.includes("docs/ARCHITECTURE.md"), "README does not link the architecture map");
});
