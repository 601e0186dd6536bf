/** Loads a config file: read it, parse the TOML, validate it (see `schema.ts`). */

import { parse } from "smol-toml";
import { type Config, validate } from "./schema.ts";
import { runtime } from "../runtime/runtime.ts";

/** A config file that cannot be used; `errors` lists every problem, one line each. */
export class ConfigError extends Error {
  /** Every problem found, one line each (at least one). */
  readonly errors: string[];

  /** `message` is the summary to print; `errors` the individual problems. */
  constructor(message: string, errors: string[]) {
    super(message);
    this.name = "ConfigError";
    this.errors = errors;
  }
}

/**
 * Reads, parses and validates the TOML config at `path`. Throws {@link ConfigError} when the
 * file cannot be read, is not valid TOML (the message carries the line and column), or does
 * not validate (the error carries every problem found).
 */
export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await runtime.readTextFile(path);
  } catch (err) {
    const message = `cannot read config file ${path}: ${_readReason(err)}`;
    throw new ConfigError(message, [message]);
  }

  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    const { line, detail } = _tomlError(err, path);
    throw new ConfigError(detail ? `${line}\n${detail}` : line, [line]);
  }

  const result = validate(raw);
  if (!result.ok) {
    const n = result.errors.length;
    const head = `invalid config file ${path} (${n} ${n === 1 ? "error" : "errors"}):`;
    throw new ConfigError([head, ...result.errors.map((e) => `  ${e}`)].join("\n"), result.errors);
  }
  const tlsProblems: string[] = [];
  for (const cluster of result.config.clusters) {
    if (cluster.tlsCert === null && !cluster.backendTls) continue;
    // Loaded only for TLS: it imports node:crypto (the Node compatibility layer, ~7 MB of RSS).
    const { loadTlsFiles } = await import("./tls_files.ts");
    tlsProblems.push(...await loadTlsFiles(cluster, (file) => _readText(file)));
  }
  if (tlsProblems.length > 0) {
    const head = `config file ${path}: bad TLS certificate or key:`;
    throw new ConfigError([head, ...tlsProblems.map((e) => `  ${e}`)].join("\n"), tlsProblems);
  }
  const problems = _runtimeProblems(result.config);
  if (problems.length > 0) {
    const head = `config file ${path} cannot run in this process:`;
    throw new ConfigError([head, ...problems.map((e) => `  ${e}`)].join("\n"), problems);
  }
  return result.config;
}

/**
 * What a valid config needs from the process that this one lacks: `io = "ffi"` needs Deno,
 * Linux and the FFI permission.
 */
function _runtimeProblems(config: Config): string[] {
  const problems: string[] = [];
  for (const cluster of config.clusters) {
    if (cluster.io !== "ffi") continue;
    const missing = runtime.rawSocketsUnavailable();
    if (missing === "not deno") {
      problems.push(
        `cluster ${cluster.name}: io = "ffi" runs on Deno only (this is ${runtime.name} ` +
          `${runtime.version}): use io = "auto", which is ${runtime.name}'s own sockets here`,
      );
    } else if (missing === "not linux") {
      problems.push(`cluster ${cluster.name}: io = "ffi" runs on Linux only`);
    } else if (missing === "no ffi permission") {
      problems.push(
        `cluster ${cluster.name}: io = "ffi" needs the FFI permission: run with --allow-ffi ` +
          `(deno task start grants it; deno task start:sandboxed does not)`,
      );
    }
  }
  return problems;
}

/** A file's text, or an error whose message says why it cannot be read. */
async function _readText(file: string): Promise<string> {
  try {
    return await runtime.readTextFile(file);
  } catch (err) {
    throw new Error(_readReason(err));
  }
}

function _readReason(err: unknown): string {
  if (runtime.isErrorKind(err, "NotFound")) return "no such file";
  if (runtime.isErrorKind(err, "IsADirectory")) return "it is a directory";
  if (runtime.isErrorKind(err, "PermissionDenied")) return "permission denied";
  if (runtime.isErrorKind(err, "NotCapable")) return "read access not granted (--allow-read)";
  if (runtime.isErrorKind(err, "InvalidData")) return "not valid UTF-8 text";
  return err instanceof Error ? err.message : String(err);
}

/** "PATH:LINE:COLUMN: invalid TOML: reason", plus the parser's code excerpt. */
function _tomlError(err: unknown, path: string): { line: string; detail: string } {
  const message = err instanceof Error ? err.message : String(err);
  const [first, ...rest] = message.split("\n");
  const reason = first.replace(/^Invalid TOML document:\s*/, "");
  const e = err as { line?: unknown; column?: unknown };
  const where = typeof e.line === "number" && typeof e.column === "number"
    ? `${path}:${e.line}:${e.column}`
    : path;
  return { line: `${where}: invalid TOML: ${reason}`, detail: rest.join("\n").trim() };
}
