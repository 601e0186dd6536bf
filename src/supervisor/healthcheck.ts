/**
 * `aster-proxy --healthcheck`: asks the proxy that runs with the same config for /healthz,
 * so a container needs no shell or curl for its HEALTHCHECK (distroless has neither).
 */

/** Longest wait for /healthz, ms: a health check must end on its own. */
const TIMEOUT_MS = 3000;

/**
 * Exit code of a health check: 0 when /healthz answers 200, 1 otherwise; 0 with a note
 * when no metrics endpoint is configured (nothing to ask: the container runtime sees the
 * process itself). `metricsPort` (`--metrics`) wins over `metricsAddr` as when serving.
 */
export async function healthcheck(
  metricsPort: number | null,
  metricsAddr: { host: string; port: number } | null,
): Promise<number> {
  const addr = metricsPort !== null ? { host: "127.0.0.1", port: metricsPort } : metricsAddr;
  if (addr === null) {
    console.log("no metrics endpoint configured (metrics_addr or --metrics): nothing to check");
    return 0;
  }
  // A wildcard listen is asked on loopback.
  const host = addr.host === "0.0.0.0" ? "127.0.0.1" : addr.host === "::" ? "[::1]" : addr.host;
  const url = `http://${
    host.includes(":") && !host.startsWith("[") ? `[${host}]` : host
  }:${addr.port}/healthz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = (await response.text()).trim();
    console.log(`${url}: ${response.status} ${body}`);
    return response.status === 200 ? 0 : 1;
  } catch (err) {
    console.log(`${url}: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}
