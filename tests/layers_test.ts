/**
 * The layer rules of the source tree, checked on every file (issue 18):
 *
 * - only `src/runtime/` touches `Deno.*`, `Bun.*` and `process.*`: everything else goes
 *   through `runtime` (tests, benches and `demo.ts`, which starts servers through the test
 *   helpers, may use Deno);
 * - only `src/runtime/` imports a runtime's implementation (`src/runtime/deno/`,
 *   `src/runtime/bun/`), so another runtime changes nothing outside that folder; and one
 *   runtime's folder never imports another's (each loads where the other's globals are
 *   missing);
 * - `src/protocol/` never imports `src/backend/`: codecs know nothing of connections;
 * - `src/config/` never imports the socket layer (`src/io/`, a runtime's sockets);
 * - `src/backend/` never imports `src/proxy/` or `src/worker/`.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Every .ts file under `dir`, as paths relative to the repository root. */
function _tsFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(..._tsFiles(path));
    else if (entry.name.endsWith(".ts")) found.push(path);
  }
  return found;
}

/** Files that ship: not tests, not benches. */
function _sourceFiles(): string[] {
  return ["main.ts", ..._tsFiles("src")].filter((path) =>
    !path.endsWith("_test.ts") && !path.endsWith("_bench.ts")
  ).sort();
}

/** Characters after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set([..."(,=:[!&|?{};+-*%<>~^"]);

/**
 * `code` with its comments blanked out (newlines kept, so line numbers hold). Strings,
 * template literals (with their `${}` code) and regular expressions are skipped whole,
 * so a `//` inside them does not start a comment.
 */
export function stripComments(code: string): string {
  let out = "";
  let i = 0;
  /** Open `${` depths of the template literals we are inside. */
  const templates: number[] = [];
  let depth = 0;
  let last = ""; // last significant character of code, to tell a regex from a division
  const skipQuoted = (quote: string) => {
    const start = i++;
    while (i < code.length && code[i] !== quote && code[i] !== "\n") i += code[i] === "\\" ? 2 : 1;
    i++;
    out += code.slice(start, i);
  };
  const skipTemplate = () => {
    // From just after a "`" or a "}" closing `${`: to the closing "`" or the next "${".
    const start = i;
    while (i < code.length && code[i] !== "`" && !(code[i] === "$" && code[i + 1] === "{")) {
      i += code[i] === "\\" ? 2 : 1;
    }
    if (code[i] === "`") {
      i++;
    } else if (i < code.length) {
      i += 2;
      templates.push(depth++);
    }
    out += code.slice(start, i);
    last = "`";
  };
  while (i < code.length) {
    const ch = code[i];
    const next = code[i + 1];
    if (ch === "/" && next === "/") {
      while (i < code.length && code[i] !== "\n") i++;
    } else if (ch === "/" && next === "*") {
      const end = code.indexOf("*/", i + 2);
      const stop = end < 0 ? code.length : end + 2;
      out += code.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (ch === '"' || ch === "'") {
      skipQuoted(ch);
      last = ch;
    } else if (ch === "`") {
      out += ch;
      i++;
      skipTemplate();
    } else if (ch === "/" && (last === "" || BEFORE_REGEX.has(last))) {
      const start = i++;
      let inClass = false;
      while (i < code.length && code[i] !== "\n" && (inClass || code[i] !== "/")) {
        if (code[i] === "[") inClass = true;
        else if (code[i] === "]") inClass = false;
        i += code[i] === "\\" ? 2 : 1;
      }
      i++;
      out += code.slice(start, i);
      last = "/";
    } else if (ch === "}" && templates.at(-1) === depth - 1) {
      templates.pop();
      depth--;
      out += ch;
      i++;
      skipTemplate();
    } else {
      if (ch === "{") depth++;
      else if (ch === "}") depth--;
      if (!/\s/.test(ch)) last = ch;
      out += ch;
      i++;
    }
  }
  return out;
}

/** The specifiers `code` imports or re-exports, static and dynamic. */
function _imports(code: string): string[] {
  const found: string[] = [];
  for (const match of code.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g)) {
    found.push(match[1]);
  }
  return found;
}

/** Repository-relative paths of the local files `path` imports. */
function _localImports(path: string): string[] {
  const code = stripComments(Deno.readTextFileSync(join(ROOT, path)));
  return _imports(code).filter((specifier) => specifier.startsWith(".")).map((specifier) =>
    relative(ROOT, resolve(ROOT, dirname(path), specifier))
  );
}

Deno.test("stripComments blanks comments and keeps code, strings, templates and regexes", () => {
  assert.equal(stripComments("a; // Deno.exit()\nb;"), "a; \nb;");
  assert.equal(stripComments("/* Deno.pid\n */x"), " ".repeat(11) + "\n   x");
  assert.equal(stripComments('f("http://x"); // y'), 'f("http://x"); ');
  assert.equal(stripComments("`a ${b // c\n} //d` // e"), "`a ${b \n} //d` ");
  assert.equal(stripComments("x = /\\/\\/[/]/g; // z"), "x = /\\/\\/[/]/g; ");
  assert.equal(stripComments("a = b / c; // d / e"), "a = b / c; ");
  assert.match(stripComments("/** Deno.listen */ Deno.exit(1);"), /^ +Deno\.exit\(1\);$/);
});

Deno.test("only src/runtime/ touches Deno.*, Bun.* or process.* (tests, benches and demo.ts may)", () => {
  const offenders: string[] = [];
  for (const path of _sourceFiles()) {
    if (path.startsWith("src/runtime/")) continue;
    const lines = stripComments(Deno.readTextFileSync(join(ROOT, path))).split("\n");
    lines.forEach((line, at) => {
      if (/\b(Deno|Bun|process)\.[A-Za-z]/.test(line)) {
        offenders.push(`${path}:${at + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(offenders, [], "use src/runtime/runtime.ts instead");
});

Deno.test("only src/runtime/ imports a runtime's implementation", () => {
  const offenders = _sourceFiles().filter((path) => !path.startsWith("src/runtime/"))
    .flatMap((path) =>
      _localImports(path).filter((target) =>
        /^src\/runtime\/(?!runtime\.ts$|sockets\.ts$)/.test(target)
      )
        .map((target) => `${path} imports ${target}`)
    );
  assert.deepEqual(offenders, [], "import src/runtime/runtime.ts or src/runtime/sockets.ts");
});

Deno.test("a runtime's folder never imports another runtime's", () => {
  const folder = (path: string) => path.match(/^src\/runtime\/(\w+)\//)?.[1];
  const offenders = _sourceFiles().filter((path) => folder(path) !== undefined)
    .flatMap((path) =>
      _localImports(path).filter((target) => {
        const other = folder(target);
        return other !== undefined && other !== folder(path);
      }).map((target) => `${path} imports ${target}`)
    );
  assert.deepEqual(offenders, []);
});

Deno.test("src/protocol/ never imports src/backend/", () => {
  const offenders = _sourceFiles().filter((path) => path.startsWith("src/protocol/"))
    .flatMap((path) =>
      _localImports(path).filter((target) => target.startsWith("src/backend/"))
        .map((target) => `${path} imports ${target}`)
    );
  assert.deepEqual(offenders, []);
});

Deno.test("src/config/ never imports the socket layer", () => {
  const offenders = _sourceFiles().filter((path) => path.startsWith("src/config/"))
    .flatMap((path) =>
      _localImports(path).filter((target) =>
        target.startsWith("src/io/") || target === "src/runtime/sockets.ts" ||
        target.startsWith("src/runtime/deno/") || target.startsWith("src/runtime/bun/")
      ).map((target) => `${path} imports ${target}`)
    );
  assert.deepEqual(offenders, []);
});

Deno.test("src/backend/ never imports src/proxy/ or src/worker/: only the worker wires a proxy", () => {
  const offenders = _sourceFiles().filter((path) => path.startsWith("src/backend/"))
    .flatMap((path) =>
      _localImports(path).filter((target) =>
        target.startsWith("src/proxy/") || target.startsWith("src/worker/")
      ).map((target) => `${path} imports ${target}`)
    );
  assert.deepEqual(offenders, []);
});
