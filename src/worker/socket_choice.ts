/** Which socket API a data plane runs on: the runtime's own sockets, or raw sockets through FFI. */
import type { ClusterConfig } from "../config/schema.ts";
import type { SocketApi } from "../io/sockets.ts";
import { logInfo, logWarn } from "../log.ts";
import { runtime } from "../runtime/runtime.ts";
import type { RawFdTable } from "./messages.ts";

let ffiSocketApi: Promise<SocketApi> | null = null;

/** This isolate's raw-socket API (`io = "ffi"`), loaded on first use: it opens libc. */
function _ffiSockets(fds: RawFdTable | undefined): Promise<SocketApi> {
  ffiSocketApi ??= runtime.loadRawSockets(fds);
  return ffiSocketApi;
}

/**
 * The raw-socket API when `io` asks for it and may have it: always for "ffi" (the config
 * loader already refused a process that cannot), for "auto" only on Linux with the FFI
 * permission and a libc that loads; null means Deno's socket ops.
 */
export async function rawSocketsFor(
  cluster: ClusterConfig,
  fds: RawFdTable | undefined,
): Promise<SocketApi | null> {
  if (cluster.io === "deno") return null;
  if (cluster.io === "ffi") return await _ffiSockets(fds);
  const missing = runtime.rawSocketsUnavailable();
  if (missing === "not linux" || missing === "not deno") return null;
  if (missing === "no ffi permission") {
    logInfo(`cluster ${cluster.name}: io = "auto" uses Deno's socket ops (no --allow-ffi)`);
    return null;
  }
  try {
    return await _ffiSockets(fds);
  } catch (err) {
    ffiSocketApi = null;
    logWarn(
      `cluster ${cluster.name}: io = "auto" uses Deno's socket ops: raw sockets failed to ` +
        `load (${err instanceof Error ? err.message : err})`,
    );
    return null;
  }
}
