/**
 * The documentation tells the truth and cannot drift from the code: every relative link in
 * README.md, CHANGELOG.md and docs/ resolves (files and headings); docs/configuration.md has
 * every config key with the schema's defaults and ranges, and every flag of --help;
 * docs/commands.md agrees with the Redis command table and the memcache decoders;
 * docs/operations.md names every metric and label /metrics renders; deno.json's tasks run
 * Aster with the right flags.
 */
import assert from "node:assert/strict";
import {
  ALLOWABLE_COMMANDS,
  BROADCAST_COMMANDS,
  CLUSTER_KEYS,
  validate,
} from "../src/config/schema.ts";
import { HELP } from "../src/cli.ts";
import { COMMANDS, type CommandSpec } from "../src/protocol/resp/commands.ts";
import { BinaryOpcode } from "../src/protocol/memcache_binary/binary.ts";
import { KEY_HASH_NAMES } from "../src/hash/key_hashes.ts";
import { DISTRIBUTION_NAMES } from "../src/hash/distribution.ts";
import { renderPrometheus } from "../src/metrics/prometheus.ts";
import { emptySnapshot, LATENCY_BUCKETS } from "../src/metrics/worker_metrics.ts";
import { ASTER_V8_FLAGS } from "./helpers/aster.ts";

const ROOT = new URL("../", import.meta.url);

function _read(path: string): string {
  return Deno.readTextFileSync(new URL(path, ROOT));
}

// ---------------------------------------------------------------------------
// Markdown helpers: headings as GitHub slugs them, sections, tables.

/** GitHub's anchor for a heading: lowercase, punctuation dropped, each space a hyphen. */
function githubSlug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(
    / /g,
    "-",
  );
}

/** Markdown without fenced code blocks (their lines blanked, so line numbers stay). */
function _withoutCode(text: string): string {
  let fenced = false;
  return text.split("\n").map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line;
  }).join("\n");
}

/** The anchors of a markdown file's headings, duplicates numbered as GitHub does. */
function _anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const match of _withoutCode(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = githubSlug(match[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count === 0 ? base : `${base}-${count}`);
  }
  return out;
}

interface _Section {
  slug: string;
  body: string;
}

/** Each heading's text up to the next heading of any level. */
function _sections(text: string): _Section[] {
  const out: _Section[] = [];
  let current: _Section | null = null;
  for (const line of _withoutCode(text).split("\n")) {
    const heading = line.match(/^#{1,6}\s+(.+?)\s*$/);
    if (heading) {
      current = { slug: githubSlug(heading[1]), body: "" };
      out.push(current);
    } else if (current) current.body += line + "\n";
  }
  return out;
}

function _section(text: string, slug: string, file: string): string {
  const found = _sections(text).find((s) => s.slug === slug);
  assert.ok(found, `${file} has a section #${slug}`);
  return found.body;
}

/** One markdown table: its header cells and rows, each a record by header. */
interface _Table {
  header: string[];
  rows: Record<string, string>[];
}

function _cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim());
}

/** The tables of a block of markdown, in order. */
function _tables(body: string): _Table[] {
  const tables: _Table[] = [];
  const lines = body.split("\n");
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].trim().startsWith("|") || !/^\s*\|[\s:|-]+\|\s*$/.test(lines[i + 1])) continue;
    const header = _cells(lines[i]);
    const rows: Record<string, string>[] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j].trim().startsWith("|"); j++) {
      const cells = _cells(lines[j]);
      rows.push(Object.fromEntries(header.map((name, k) => [name, cells[k] ?? ""])));
    }
    tables.push({ header, rows });
    i = j;
  }
  return tables;
}

/** The backticked words of a table cell. */
function _codes(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}

// ---------------------------------------------------------------------------
// Links.

/** README.md, CHANGELOG.md and every markdown file under docs/. */
function _docFiles(): string[] {
  const files = ["README.md", "CHANGELOG.md"];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(new URL(dir, ROOT))) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory) walk(`${path}/`);
      else if (entry.name.endsWith(".md")) files.push(path);
    }
  };
  walk("docs/");
  return files;
}

function _exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

/** Checks one relative link target ("file", "file#anchor" or "#anchor") from `from`. */
function _checkLink(from: string, target: string): string | null {
  const [path, anchor] = target.split("#", 2) as [string, string | undefined];
  const url = path === "" ? new URL(from, ROOT) : new URL(path, new URL(from, ROOT));
  if (!url.href.startsWith(ROOT.href)) return `${target}: outside the repository`;
  if (!_exists(url)) return `${target}: no such file`;
  if (anchor === undefined || anchor === "") return null;
  if (!url.pathname.endsWith(".md")) return `${target}: an anchor into a file that is not markdown`;
  const anchors = _anchors(Deno.readTextFileSync(url));
  return anchors.has(anchor) ? null : `${target}: no heading #${anchor} in ${url.pathname}`;
}

Deno.test("every relative link in README.md, CHANGELOG.md and docs/ resolves", () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of _docFiles()) {
    // Inline code is not a link either.
    const text = _withoutCode(_read(file)).replace(/`[^`\n]*`/g, "");
    for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1].replace(/^<|>$/g, "");
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      checked++;
      const problem = _checkLink(file, target);
      if (problem !== null) problems.push(`${file}: ${problem}`);
    }
  }
  assert.ok(checked > 50, `only ${checked} links found`);
  assert.deepEqual(problems, []);
});

Deno.test("the docs that errors and --help name exist, with their headings", async () => {
  const problems: string[] = [];
  let named = 0;
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        const text = await Deno.readTextFile(url);
        for (const match of text.matchAll(/\bdocs\/[\w.-]+\.md(?:#[\w-]+)?/g)) {
          named++;
          const problem = _checkLink("README.md", match[0]);
          if (problem !== null) problems.push(`${url.pathname}: ${problem}`);
        }
      }
    }
  };
  await walk(new URL("src/", ROOT));
  assert.ok(named >= 5, `only ${named} doc references found in src/`);
  assert.deepEqual(problems, []);
});

Deno.test("the link checker slugs headings as GitHub does", () => {
  assert.equal(
    githubSlug("Socket I/O: raw sockets through FFI, or Deno's sandbox"),
    "socket-io-raw-sockets-through-ffi-or-denos-sandbox",
  );
  assert.equal(githubSlug("What differs in `redis_cluster`"), "what-differs-in-redis_cluster");
  assert.equal(githubSlug("memcache_binary (binary protocol)"), "memcache_binary-binary-protocol");
  assert.deepEqual([..._anchors("# A\n## A\n```\n# not a heading\n```\n### B-c")], [
    "a",
    "a-1",
    "b-c",
  ]);
  assert.match(_checkLink("README.md", "docs/nope.md") ?? "", /no such file/);
  assert.match(_checkLink("README.md", "docs/commands.md#nope") ?? "", /no heading #nope/);
  assert.equal(_checkLink("docs/commands.md", "#refused-commands"), null);
  assert.equal(_checkLink("docs/commands.md", "../README.md#reference"), null);
});

// ---------------------------------------------------------------------------
// Configuration.

const CONFIGURATION = _read("docs/configuration.md");

/** The cluster-keys table of docs/configuration.md, by key. */
function _keyRows(): Map<string, Record<string, string>> {
  const [table] = _tables(_section(CONFIGURATION, "cluster-keys", "docs/configuration.md"));
  assert.deepEqual(table.header, ["key", "type", "default", "range", "meaning"]);
  return new Map(table.rows.map((row) => [_codes(row.key)[0], row]));
}

const BASE = { name: "c", listen_addr: "127.0.0.1:9001", cache_type: "redis" };
const SERVERS = ["127.0.0.1:7001"];

/** validate() of one cluster: BASE with `servers`, plus `extra`. */
function _validate(extra: Record<string, unknown>, top: Record<string, unknown> = {}) {
  const cluster: Record<string, unknown> = { ...BASE, servers: SERVERS, ...extra };
  for (const [key, value] of Object.entries(cluster)) if (value === undefined) delete cluster[key];
  return validate({ ...top, clusters: [cluster] });
}

function _camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

Deno.test("docs/configuration.md lists every config key and no other", () => {
  const documented = [..._keyRows().keys()].sort();
  assert.deepEqual(documented, [...CLUSTER_KEYS, "metrics_addr"].sort());
});

Deno.test("docs/configuration.md gives each key's default as the schema fills it in", () => {
  const result = _validate({});
  assert.ok(result.ok);
  const defaults = result.config.clusters[0] as unknown as Record<string, unknown>;
  for (const [key, row] of _keyRows()) {
    const cell = row.default;
    if (cell === "required") {
      const without = _validate({ [key]: undefined });
      assert.ok(
        !without.ok && without.errors.some((e) => e.includes(`missing required key "${key}"`)),
        key,
      );
      continue;
    }
    const expected = cell === "none" ? null : JSON.parse(_codes(cell)[0] ?? "undefined");
    const actual: unknown = key === "metrics_addr"
      ? result.config.metricsAddr
      : defaults[_camel(key)];
    assert.deepEqual(actual, expected, `default of ${key}`);
  }
});

Deno.test("docs/configuration.md gives each integer key's range as the schema checks it", () => {
  let ranges = 0;
  for (const [key, row] of _keyRows()) {
    const range = _codes(row.range)[0]?.match(/^(-?\d+)\.\.(-?\d+)$/);
    if (!row.type.startsWith("integer")) {
      assert.ok(!range, `${key} is not an integer but has a numeric range`);
      continue;
    }
    assert.ok(range, `${key}: an integer key documents its range as \`min..max\``);
    ranges++;
    const [min, max] = [Number(range[1]), Number(range[2])];
    // The output limits go together: the hard one may not be under the soft one.
    const set = (value: number) =>
      key.startsWith("client_output_")
        ? { client_output_soft_limit: value, client_output_hard_limit: value }
        : { [key]: value };
    for (const value of [min, max]) {
      assert.ok(_validate(set(value)).ok, `${key} = ${value} is valid`);
    }
    for (const value of [min - 1, max + 1]) {
      const result = _validate(set(value));
      assert.ok(
        !result.ok && result.errors.some((e) => e.includes(key)),
        `${key} = ${value} is refused`,
      );
    }
  }
  assert.ok(ranges >= 15);
});

Deno.test("docs/configuration.md lists each choice key's values as the schema takes them", () => {
  const rows = _keyRows();
  const choices = (key: string) => _codes(rows.get(key)!.range);
  assert.deepEqual(choices("hash").sort(), [...KEY_HASH_NAMES].sort());
  assert.deepEqual(choices("distribution").sort(), [...DISTRIBUTION_NAMES].sort());
  assert.deepEqual(choices("allow_commands").sort(), [...ALLOWABLE_COMMANDS].sort());
  for (const key of ["cache_type", "io", "hash", "distribution", "allow_commands"]) {
    const values = choices(key);
    assert.ok(values.length >= 2, key);
    for (const value of values) {
      const result = _validate({ [key]: key === "allow_commands" ? [value] : value });
      assert.ok(result.ok, `${key} = ${value}: ${result.ok ? "" : result.errors.join("; ")}`);
    }
    assert.ok(!_validate({ [key]: key === "allow_commands" ? ["nope"] : "nope" }).ok, key);
  }
});

Deno.test("docs/configuration.md documents every flag and environment variable of --help", () => {
  const flags = [...HELP.matchAll(/--([a-z-]+)/g)].map((m) => m[1]);
  assert.ok(flags.length >= 6);
  for (const flag of flags) {
    assert.ok(CONFIGURATION.includes(`--${flag}`), `docs/configuration.md lacks --${flag}`);
  }
  const env = [...HELP.matchAll(/^ {2}([A-Z][A-Z_]+) /gm)].map((m) => m[1]);
  assert.ok(env.length >= 2);
  const [table] = _tables(_section(CONFIGURATION, "environment", "docs/configuration.md"));
  const documented = table.rows.map((row) => _codes(row.environment)[0]);
  for (const name of env) {
    assert.ok(documented.includes(name), `docs/configuration.md lacks ${name}`);
  }
});

// ---------------------------------------------------------------------------
// Commands.

const COMMANDS_MD = _read("docs/commands.md");

/** The command names (lowercase) in column `column` of the section's tables. */
function _names(slug: string, column: string, table?: number): string[] {
  const tables = _tables(_section(COMMANDS_MD, slug, "docs/commands.md"));
  const chosen = table === undefined ? tables : [tables[table]];
  const names: string[] = [];
  for (const t of chosen) {
    assert.ok(t.header.includes(column), `docs/commands.md#${slug}: a "${column}" column`);
    for (const row of t.rows) names.push(..._codes(row[column]).map((n) => n.toLowerCase()));
  }
  return names;
}

const BY_NAME = new Map(COMMANDS.map((spec) => [spec.name, spec]));

function _kinds(...kinds: CommandSpec["kind"][]): string[] {
  return COMMANDS.filter((spec) => kinds.includes(spec.kind)).map((spec) => spec.name).sort();
}

Deno.test("docs/commands.md names only commands of the table", () => {
  const sections = [
    ["forwarded-to-the-keys-backend", "commands"],
    ["split-and-merged", "command"],
    ["answered-by-aster", "command"],
    ["sent-to-one-or-every-backend", "command"],
    ["refused-commands", "commands"],
  ];
  for (const [slug, column] of sections) {
    for (const name of _names(slug, column)) {
      assert.ok(BY_NAME.has(name), `docs/commands.md#${slug}: ${name} is not in the table`);
    }
  }
});

Deno.test("docs/commands.md lists the forwarded, split, answered and server commands", () => {
  assert.deepEqual(
    _names("forwarded-to-the-keys-backend", "commands").sort(),
    _kinds("single", "eval"),
  );
  assert.deepEqual(_names("split-and-merged", "command").sort(), _kinds("multi"));
  const [split] = _tables(_section(COMMANDS_MD, "split-and-merged", "docs/commands.md"));
  for (const row of split.rows) {
    const spec = BY_NAME.get(_codes(row.command)[0].toLowerCase())!;
    const words = { mget: "order", mset: "OK", sum: "sum" }[spec.split!];
    assert.ok(row["merged reply"].includes(words), `${spec.name}'s merge`);
  }
  const answered = _names("answered-by-aster", "command");
  for (const name of _kinds("local")) assert.ok(answered.includes(name), `${name} is answered`);
  for (const name of answered) {
    assert.ok(["local", "unsupported"].includes(BY_NAME.get(name)!.kind), `${name} is answered`);
  }
  assert.deepEqual(_names("sent-to-one-or-every-backend", "command", 0).sort(), _kinds("server"));
  assert.deepEqual(
    _names("sent-to-one-or-every-backend", "command", 1).sort(),
    [...BROADCAST_COMMANDS].sort(),
  );
});

Deno.test("docs/commands.md gives every refused command with its reason", () => {
  const [table] = _tables(_section(COMMANDS_MD, "refused-commands", "docs/commands.md"));
  const refused = new Map<string, string>();
  for (const row of table.rows) {
    for (const name of _codes(row.commands)) refused.set(name.toLowerCase(), row.reason);
  }
  for (const [name, reason] of refused) {
    const spec = BY_NAME.get(name)!;
    assert.equal(spec.kind, "unsupported", `${name} is listed as refused`);
    assert.equal(reason, spec.reason, `${name}'s reason`);
  }
  // The others of kind "unsupported" are answered by Aster whatever the table says.
  const answered = _names("answered-by-aster", "command");
  for (const name of _kinds("unsupported")) {
    assert.ok(refused.has(name) || answered.includes(name), `${name}: refused or answered`);
  }
});

Deno.test("docs/commands.md lists every memcache text command and binary opcode", () => {
  const source = _read("src/protocol/memcache_text/text_commands.ts");
  const shapes = source.match(/const _SHAPES[^=]*= \[([\s\S]*?)\n\];/);
  assert.ok(shapes, "src/protocol/memcache_text/text_commands.ts has its _SHAPES table");
  const text = [...shapes[1].matchAll(/\["([a-z_]+)", [A-Z_]+\]/g)].map((m) => m[1]);
  assert.ok(text.length >= 20);
  // And the aliases memcached still reads (`bget`).
  const aliases = source.match(/const _ALIASES[^=]*= \[(.*)\];/);
  assert.ok(aliases, "src/protocol/memcache_text/text_commands.ts has its _ALIASES table");
  text.push(...[...aliases[1].matchAll(/\["([a-z_]+)", "[a-z_]+"\]/g)].map((m) => m[1]));
  assert.deepEqual(_names("memcache-text-protocol", "command").sort(), text.sort());
  assert.deepEqual(
    _names("memcache_binary-binary-protocol", "opcodes").sort(),
    Object.keys(BinaryOpcode).sort(),
  );
});

// ---------------------------------------------------------------------------
// Metrics.

Deno.test("docs/operations.md names every metric /metrics renders, with its type and labels", () => {
  const snap = emptySnapshot();
  snap.clients.c = { current: 1, total: 1, rejected: 1 };
  for (const record of [snap.commands, snap.errors, snap.redirects, snap.clientStates]) {
    record["c\tx"] = 1;
  }
  for (const record of [snap.topologyRefreshes, snap.bytesIn, snap.bytesOut]) record.c = 1;
  snap.pubsub.c = { clients: 1, channels: 1, patterns: 1, shardChannels: 1 };
  snap.nodes.push({
    cluster: "c",
    node: "n",
    up: 1,
    ejected: 0,
    pending: 0,
    pinned: 0,
    latency: { counts: new Array(LATENCY_BUCKETS.length + 1).fill(1), sum: 1 },
  });
  const text = renderPrometheus(snap, {
    version: "v",
    deno: "d",
    runtime: "r",
    runtimeVersion: "rv",
    workerRestarts: 0,
  });
  const rendered = new Map<string, { type: string; labels: Set<string> }>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    rendered.set(m[1], { type: m[2], labels: new Set() });
  }
  for (const m of text.matchAll(/^([a-z_]+)(?:\{([^}]*)\})? \S+$/gm)) {
    const family = rendered.get(m[1]) ?? rendered.get(m[1].replace(/_(bucket|sum|count)$/, ""));
    assert.ok(family, `${m[1]} belongs to a declared family`);
    for (const label of (m[2] ?? "").matchAll(/([a-z_]+)="/g)) family.labels.add(label[1]);
  }
  const operations = _read("docs/operations.md");
  const [table] = _tables(_section(operations, "metrics", "docs/operations.md"));
  const documented = new Map(table.rows.map((row) => [_codes(row.metric)[0], row]));
  assert.deepEqual([...documented.keys()].sort(), [...rendered.keys()].sort());
  for (const [name, { type, labels }] of rendered) {
    const row = documented.get(name)!;
    assert.equal(row.type, type, `${name}'s type`);
    assert.deepEqual(_codes(row.labels).sort(), [...labels].sort(), `${name}'s labels`);
  }
  const histogram = documented.get("aster_backend_request_seconds")!;
  assert.ok(histogram.meaning.includes(LATENCY_BUCKETS.join(", ")), "the histogram's buckets");
});

// ---------------------------------------------------------------------------
// deno.json.

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
  assert.ok(_read("README.md").includes("docs/ARCHITECTURE.md"), "README does not link the map");
});
