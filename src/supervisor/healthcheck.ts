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
    const { status, body } = await _get(host, addr.port);
    console.log(`${url}: ${status} ${body.trim()}`);
    return status === 200 ? 0 : 1;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = err instanceof Error ? err.message : String(err);
    console.log(`${url}: ${code !== undefined && !why.includes(code) ? `${code}: ` : ""}${why}`);
    return 1;
  }
}

/**
 * GET /healthz straight to the endpoint with node:http, which (unlike fetch) takes no
 * HTTP_PROXY from the environment: a container with a proxy set must not ask it.
 */
async function _get(host: string, port: number): Promise<{ status: number; body: string }> {
  const http = await import("node:http");
  return await new Promise((resolve, reject) => {
    const request = http.get({
      host: host.replace(/^\[(.*)\]$/, "$1"),
      port,
      path: "/healthz",
      agent: false,
      timeout: TIMEOUT_MS,
    }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => body += chunk);
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    request.on("error", reject);
  });
}
