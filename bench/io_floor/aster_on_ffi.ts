/**
 * Measurement only: Aster's data plane, unchanged, on the raw sockets of
 * `ffi_sockets.ts` instead of Deno's socket ops, in the main isolate (like
 * `bench/plane_profile.ts`). The bench's `io` section runs it beside Aster to show what
 * moving every socket onto one FFI epoll loop would save.
 *
 * Usage: deno run --allow-ffi --allow-net --allow-read --allow-env \
 *   bench/io_floor/aster_on_ffi.ts CONFIG
 * Serves every cluster of CONFIG (thread = 1 each) until killed.
 */
import { installFfiSockets } from "./ffi_sockets.ts";
import { loadConfig } from "../../src/config/load.ts";
import { startDataPlane } from "../../src/worker/data_plane.ts";

const [path] = Deno.args;
if (path === undefined) {
  console.error("usage: aster_on_ffi.ts CONFIG");
  Deno.exit(2);
}
installFfiSockets();
const config = await loadConfig(path);
for (const cluster of config.clusters) {
  await startDataPlane(cluster, { reusePort: false });
  console.log(`serving ${cluster.listenAddr} on FFI sockets`);
}
