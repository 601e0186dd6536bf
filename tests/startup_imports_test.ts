/**
 * What each isolate loads at start (issue 23, memory): the first `node:` module or npm
 * package an isolate imports loads Deno's Node compatibility layer, about 7 MB of RSS per
 * isolate. A worker's data plane must import none statically (TLS loads `node:tls` when a
 * cluster uses it); the main isolate only the config parser (npm smol-toml) and the CLI's
 * `node:util`. Checked on the import graph `deno info --json` reports: cheap, deterministic.
 */
import assert from "node:assert/strict";

interface InfoModule {
  specifier: string;
  kind?: string;
  dependencies?: { specifier: string; isDynamic?: boolean; code?: { specifier: string } }[];
}

/** The node: and npm: modules `entry` reaches through static (non-type) imports. */
async function _staticNodeImports(entry: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects: Record<string, string>;
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const found = new Set<string>();
  const seen = new Set<string>();
  const pending = [...info.roots];
  while (pending.length > 0) {
    let specifier = pending.pop()!;
    specifier = info.redirects[specifier] ?? specifier;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    if (specifier.startsWith("node:") || specifier.startsWith("npm:")) {
      found.add(specifier.replace(/@[^/]*$/, "").replace(/^npm:\//, "npm:"));
      continue;
    }
    for (const dep of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (dep.isDynamic || dep.code === undefined) continue; // loaded later, or types only
      pending.push(dep.code.specifier);
    }
  }
  return [...found].sort();
}

Deno.test("a worker isolate imports no node: module or npm package at start", async () => {
  assert.deepStrictEqual(await _staticNodeImports("src/worker/worker_main.ts"), []);
});

Deno.test("the main isolate imports only smol-toml and node:util at start", async () => {
  const found = await _staticNodeImports("main.ts");
  assert.deepStrictEqual(found.filter((s) => s !== "npm:smol-toml" && s !== "node:util"), []);
});
