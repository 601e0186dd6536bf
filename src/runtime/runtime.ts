/**
 * The runtime seam: everything Aster asks of the JavaScript runtime (sockets, workers,
 * signals, files, environment, permissions, FFI, build facts, stderr, HTTP, exit) goes
 * through the `runtime` object below. Only `src/runtime/` touches `Deno.*`
 * (tests/layers_test.ts checks it); a second runtime adds a folder beside `deno/` and a
 * line here. Resolved once, when this module loads: callers hold plain objects, and the
 * sockets it opens are the runtime's own (no call or promise added per read on Deno).
 * Only this runtime's module is loaded (a dynamic import, awaited at the top level: the other
 * runtime's would load Deno's Node compatibility layer, megabytes per isolate). A worker
 * evaluates this before it sets its message handler, so it says "ready" first (see
 * src/worker/messages.ts).
 */
import { onBun } from "./bun/bun_api.ts";
import type { RawFdReaper, RawFdTable, RawSocketsMissing, SocketApi, TlsApi } from "./sockets.ts";

/** The process signals Aster listens for. */
export type Signal = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGUSR2";

/**
 * Kinds of failure callers tell apart, named as Deno names its error classes (other
 * runtimes map their error codes onto them).
 */
export type ErrorKind =
  | "NotFound"
  | "IsADirectory"
  | "PermissionDenied"
  | "NotCapable"
  | "InvalidData"
  | "BadResource"
  | "Interrupted"
  | "AddrInUse";

/** Permissions a sandboxed runtime may withhold. */
export type Permission = "read" | "ffi";

/** A change in a watched folder. */
export interface FileEvent {
  /** "access", "create", "modify", "remove", ... */
  kind: string;
  /** Absolute paths the event concerns. */
  paths: string[];
}

/** A running HTTP server. */
export interface HttpServer {
  /** Stops listening and resolves once open requests are answered. */
  shutdown(): Promise<void>;
}

/** What Aster needs from the runtime it runs on. */
export interface Runtime {
  /** The runtime's name: "deno" or "bun". */
  readonly name: string;
  /** The runtime's version, e.g. "2.9.6". */
  readonly version: string;
  /** The operating system: "linux", "darwin", "windows", ... */
  readonly os: string;
  /** The CPU architecture: "x86_64", "aarch64", ... */
  readonly arch: string;
  /** The target triple the runtime was built for, e.g. "x86_64-unknown-linux-gnu". */
  readonly target: string;
  /** This process's id. */
  readonly pid: number;
  /** The command line, without the runtime and the script. */
  readonly args: string[];
  /** Environment variables (`get` throws when the sandbox withholds them). */
  readonly env: { get(name: string): string | undefined };

  /** The runtime's own TCP sockets. */
  readonly sockets: SocketApi;
  /** The runtime's TLS sockets: every TLS connection uses them, whatever `io` is. */
  readonly tls: TlsApi;
  /** Why raw sockets through FFI (`io = "ffi"`) cannot run here, or null when they can. */
  rawSocketsUnavailable(): RawSocketsMissing | null;
  /**
   * Loads the raw-socket API of this isolate (opens libc: may reject); `fds` is the
   * supervisor's descriptor table, when it keeps one.
   */
  loadRawSockets(fds: RawFdTable | undefined): Promise<SocketApi>;
  /** A reaper for the raw descriptors of ended workers, or null where there are none. */
  rawFdReaper(): RawFdReaper | null;
  /**
   * Gives freed memory back to the system after a burst of clients left: a full GC where
   * the runtime allows one (Deno: `--expose-gc`, as `deno task start` runs it), then
   * malloc's free pages (glibc `malloc_trim`, once this isolate has opened libc). Costs a
   * full GC: call it rarely (`src/worker/burst_release.ts`).
   */
  releaseMemory(): void;

  /** Starts a module worker (a thread with its own isolate) named `name`. */
  newWorker(url: URL, name: string): Worker;
  /** Calls `listener` on every `signal` the process receives. */
  onSignal(signal: Signal, listener: () => void): void;
  /** Ends the process with `code`. */
  exit(code: number): never;
  /** Writes `bytes` to stderr at once (throws when stderr is closed). */
  writeStderr(bytes: Uint8Array): void;

  /** The file's text (UTF-8). */
  readTextFile(path: string): Promise<string>;
  /** The absolute path with symbolic links resolved (throws when absent). */
  realPath(path: string): string;
  /** Changes in `folder` (not its subfolders), until the process ends. */
  watchFolder(folder: string): AsyncIterable<FileEvent>;
  /** True when `err` is a runtime error of `kind`. */
  isErrorKind(err: unknown, kind: ErrorKind): boolean;
  /** True when the sandbox grants `permission` (for `path`, when given). */
  isGranted(permission: Permission, path?: string | URL): boolean;

  /**
   * Serves HTTP on `hostname:port`; resolves once listening, rejects when it cannot
   * (e.g. the port is taken).
   */
  serveHttp(
    address: { hostname: string; port: number },
    handler: (request: Request) => Response | Promise<Response>,
  ): Promise<HttpServer>;
}

/** The runtime this process runs on. */
export const runtime: Runtime = onBun()
  ? (await import("./bun/bun_runtime.ts")).bunRuntime()
  : (await import("./deno/deno_runtime.ts")).denoRuntime();
