/**
 * Runs one cluster's data plane in the main isolate (no Web Worker), so `deno run
 * --cpu-prof` profiles the hot path: the supervisor's workers are not covered by it.
 *
 * Usage: deno run --cpu-prof --unstable-net -A bench/plane_profile.ts CONFIG [SECONDS]
 * Serves the first cluster of CONFIG for SECONDS (default 30), then exits.
 */
import { loadConfig } from "../src/config/load.ts";
import { startDataPlane } from "../src/worker/data_plane.ts";

const [path, seconds = "30"] = Deno.args;
if (path === undefined) {
  console.error("usage: plane_profile.ts CONFIG [SECONDS]");
  Deno.exit(2);
}
const config = await loadConfig(path);
const plane = await startDataPlane(config.clusters[0], { reusePort: false });
console.log(`serving ${config.clusters[0].listenAddr} for ${seconds} s`);
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
plane.close();
