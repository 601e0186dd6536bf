/** The runtime seam on Deno: each call of `Runtime` mapped onto `Deno.*`. */
import type { ErrorKind, Runtime } from "../runtime.ts";
import type { RawFdTable, RawSocketsMissing, SocketApi, TlsApi } from "../sockets.ts";
import { DENO_SOCKETS } from "./deno_sockets.ts";
import { FfiFdReaper } from "./ffi/raw_fd_reaper.ts";

/**
 * Why this process cannot open raw sockets through FFI, or null when it can: they need
 * Linux and the FFI permission (whether libc loads shows only when it is opened).
 */
function _rawSocketsUnavailable(): RawSocketsMissing | null {
  if (Deno.build.os !== "linux") return "not linux";
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return "no ffi permission";
  return null;
}

/** Raw sockets through FFI, loaded on demand: loading opens libc. */
async function _loadRawSockets(fds: RawFdTable | undefined): Promise<SocketApi> {
  const [{ ffiSockets }, { FdOwners }, { mallocTrim }] = await Promise.all([
    import("./ffi/ffi_sockets.ts"),
    import("./ffi/fd_owners.ts"),
    import("./ffi/libc.ts"),
  ]);
  _mallocTrim = mallocTrim;
  return ffiSockets(fds ? { owners: new FdOwners(fds.memory), owner: fds.owner } : null);
}

/** glibc's malloc_trim, once raw sockets opened libc in this isolate. */
let _mallocTrim: (() => void) | null = null;

/** V8's `gc` with `--expose-gc`: options as V8 takes them. */
type ExposedGc = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/**
 * See `Runtime.releaseMemory`. A plain `gc()` gave back 5 of 31 MB after 5,000 clients left:
 * the "last-resort" flavour (V8's low-memory collection: several GCs, free pages unmapped)
 * gave back all of V8's part, 15-30 ms once; malloc_trim then returns the freed socket and
 * buffer memory (bench/README.md, round 10).
 */
function _releaseMemory(): void {
  const gc = (globalThis as { gc?: ExposedGc }).gc;
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
  _mallocTrim?.();
}

/** Deno's runtime. Reads only what needs no permission until a call asks for more. */
export function denoRuntime(): Runtime {
  return {
    name: "deno",
    version: Deno.version.deno,
    os: Deno.build.os,
    arch: Deno.build.arch,
    target: Deno.build.target,
    pid: Deno.pid,
    args: Deno.args,
    env: Deno.env,

    sockets: DENO_SOCKETS,
    tls: {
      listen: async (address, credentials) => (await _nodeTls()).listen(address, credentials),
      connect: async (address, options) => (await _nodeTls()).connect(address, options),
    },
    rawSocketsUnavailable: _rawSocketsUnavailable,
    loadRawSockets: _loadRawSockets,
    rawFdReaper: () => _rawSocketsUnavailable() === null ? new FfiFdReaper() : null,
    releaseMemory: _releaseMemory,

    newWorker: (url, name) => new Worker(url, { type: "module", name }),
    onSignal: (signal, listener) => Deno.addSignalListener(signal, listener),
    exit: (code) => Deno.exit(code),
    writeStderr: (bytes) => {
      Deno.stderr.writeSync(bytes);
    },

    readTextFile: (path) => Deno.readTextFile(path),
    realPath: (path) => Deno.realPathSync(path),
    watchFolder: (folder) => Deno.watchFs(folder, { recursive: false }),
    isErrorKind: (err: unknown, kind: ErrorKind) => err instanceof Deno.errors[kind],
    isGranted: (name, path) => Deno.permissions.querySync({ name, path }).state === "granted",

    serveHttp: async ({ hostname, port }, handler) => {
      const listening = Promise.withResolvers<void>();
      // onListen replaces Deno's "Listening on ..." line: Aster logs its own.
      const server = Deno.serve({ hostname, port, onListen: () => listening.resolve() }, handler);
      await listening.promise;
      return { shutdown: () => server.shutdown() };
    },
  };
}

let _tlsApi: Promise<TlsApi> | null = null;

/**
 * node:tls, loaded the first time TLS is used: importing it loads Deno's Node compatibility
 * layer, about 7 MB of RSS in every isolate, which a proxy without TLS does not need.
 */
function _nodeTls(): Promise<TlsApi> {
  return _tlsApi ??= import("../node_tls.ts").then(({ nodeTls }) =>
    nodeTls({
      badResource: (message) => new Deno.errors.BadResource(message),
      brokenPipe: (message) => new Deno.errors.BrokenPipe(message),
      addrInUse: (message) => new Deno.errors.AddrInUse(message),
      permissionDenied: (message) => new Deno.errors.PermissionDenied(message),
    })
  );
}
