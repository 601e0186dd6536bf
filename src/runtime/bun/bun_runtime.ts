/**
 * The runtime seam on Bun: sockets on `Bun.listen`/`Bun.connect`, HTTP on `Bun.serve`,
 * workers as Web Workers, signals and exit through `process`, files through `node:fs`.
 * Raw sockets through FFI are Deno's only: on Bun `io = "auto"` is Bun's own sockets.
 */
import { readFile } from "node:fs/promises";
import { realpathSync, watch, writeSync } from "node:fs";
import process from "node:process";
import type { FileEvent, Runtime } from "../runtime.ts";
import { bunGlobal } from "./bun_api.ts";
import { badResource, CodedError, isBunErrorKind } from "./bun_errors.ts";
import { nodeTls } from "../node_tls.ts";
import { BUN_SOCKETS } from "./bun_sockets.ts";

/** Node's names for the OS and CPU, as Deno names them. */
const OS: Record<string, string> = { win32: "windows" };
const ARCH: Record<string, string> = { x64: "x86_64", arm64: "aarch64" };

/**
 * The command line after the runtime and the script. In a `bun build --compile` binary
 * argv[1] is the embedded entry (a `/$bunfs/` path), so the rule is the same.
 */
function _args(): string[] {
  return process.argv.slice(2);
}

/**
 * Changes in `folder` as an async iterable, from `fs.watch`'s callbacks. Its iterator's
 * `return()` closes the watcher and ends a `next()` waiting for an event (an async
 * generator's would only be queued behind that wait).
 */
function _watchFolder(folder: string): AsyncIterable<FileEvent> {
  const queue: FileEvent[] = [];
  let waiting: ((result: IteratorResult<FileEvent>) => void) | null = null;
  let done = false;
  const watcher = watch(folder, { persistent: false }, (event, name) => {
    const path = name === null ? folder : `${folder.replace(/\/$/, "")}/${name}`;
    const item: FileEvent = { kind: event === "rename" ? "create" : "modify", paths: [path] };
    if (waiting !== null) {
      const resolve = waiting;
      waiting = null;
      resolve({ value: item, done: false });
    } else queue.push(item);
  });
  const iterator: AsyncIterator<FileEvent> = {
    next: () => {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => waiting = resolve);
    },
    return: () => {
      done = true;
      watcher.close();
      waiting?.({ value: undefined, done: true });
      waiting = null;
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/**
 * `request` with an absolute URL. An HTTP/1.0 request without a Host header (HAProxy's
 * `option httpchk GET /healthz`) reaches Bun's handler with the bare path as its URL,
 * which `new URL` refuses; Deno fills in its own address, and so does this.
 */
function _absolute(request: Request, origin: string): Request {
  return request.url.startsWith("/") ? new Request(origin + request.url, request) : request;
}

/** The target triple, named as Deno's (`Deno.build.target`). */
function _target(os: string, arch: string): string {
  if (os === "linux") return `${arch}-unknown-linux-gnu`;
  if (os === "darwin") return `${arch}-apple-darwin`;
  if (os === "windows") return `${arch}-pc-windows-msvc`;
  return `${arch}-unknown-${os}`;
}

/**
 * Worker entries `deno task build:bun` embeds in the binary (after main.ts), by path from
 * the repository root. A compiled binary's modules are bundled into one, whose
 * `import.meta.url` is the binary's: a worker URL made from it (`../worker/x.ts`) names no
 * file, so the binary finds its worker among these by file name.
 */
export const EMBEDDED_WORKERS = ["src/worker/worker_main.ts"];

/** True inside a `bun build --compile` binary: its modules live under `/$bunfs/`. */
function _compiled(): boolean {
  return import.meta.url.includes("/$bunfs/") || import.meta.url.includes("~BUN");
}

/** The worker to start for `url`: itself from source, the embedded entry in a binary. */
function _workerSpecifier(url: URL): URL | string {
  if (!_compiled()) return url;
  const file = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
  const entry = EMBEDDED_WORKERS.find((path) => path.endsWith(`/${file}`));
  return entry === undefined ? url : `./${entry}`;
}

/** Bun's runtime. */
export function bunRuntime(): Runtime {
  const bun = bunGlobal();
  const os = OS[process.platform] ?? process.platform;
  const arch = ARCH[process.arch] ?? process.arch;
  return {
    name: "bun",
    version: bun.version,
    os,
    arch,
    target: _target(os, arch),
    pid: process.pid,
    args: _args(),
    env: { get: (name) => process.env[name] },

    sockets: BUN_SOCKETS,
    rawSocketsUnavailable: () => "not deno",
    loadRawSockets: () => Promise.reject(new Error("raw sockets through FFI run on Deno only")),
    rawFdReaper: () => null,
    // Not measured on Bun (its GC runs on a timer of its own): nothing forced here.
    releaseMemory: () => {},

    newWorker: (url, name) => new Worker(_workerSpecifier(url), { type: "module", name }),
    onSignal: (signal, listener) => {
      process.on(signal, listener);
    },
    exit: (code) => process.exit(code),
    writeStderr: (bytes) => {
      writeSync(2, bytes);
    },

    readTextFile: (path) => readFile(path, "utf8"),
    realPath: (path) => realpathSync(path),
    watchFolder: _watchFolder,
    isErrorKind: isBunErrorKind,
    tls: nodeTls({
      badResource,
      brokenPipe: (message) => new CodedError(message, "EPIPE"),
      addrInUse: (message) => new CodedError(message, "EADDRINUSE"),
      permissionDenied: (message) => new CodedError(message, "EACCES"),
    }),
    isGranted: () => true,

    serveHttp: ({ hostname, port }, handler) => {
      try {
        const origin = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
        const server = bun.serve({
          hostname,
          port,
          development: false,
          fetch: (request) => handler(_absolute(request, origin)),
        });
        return Promise.resolve({ shutdown: () => server.stop(false) });
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };
}
