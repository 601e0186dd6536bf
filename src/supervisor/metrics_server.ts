/** The HTTP endpoint: Prometheus `/metrics` summed over workers, and `/healthz`. */
import { logInfo } from "../log.ts";
import { type HttpServer, runtime } from "../runtime/runtime.ts";

/** What the endpoint serves. */
export interface MetricsSource {
  /** The Prometheus text of every worker's counters. */
  render(): Promise<string>;
  /** True while every cluster's workers are listening. */
  healthy(): boolean;
  /** True once a graceful stop began (SIGTERM): not ready, whether still accepting or not. */
  draining?(): boolean;
}

/** Starts serving on `host:port`; resolves once listening. Throws when the port is taken. */
export async function startMetricsServer(
  address: { host: string; port: number },
  source: MetricsSource,
): Promise<HttpServer> {
  const server = await runtime.serveHttp(
    { hostname: address.host, port: address.port },
    async (request) => {
      try {
        return await _respond(request, source);
      } catch (err) {
        return new Response(`error: ${err instanceof Error ? err.message : err}\n`, {
          status: 500,
        });
      }
    },
  );
  logInfo(`metrics on http://${address.host}:${address.port}/metrics`);
  return server;
}

async function _respond(request: Request, source: MetricsSource): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (path === "/metrics") {
    return new Response(await source.render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  }
  if (path === "/healthz") {
    // Draining first: a load balancer takes this instance out before its listener closes.
    if (source.draining?.()) {
      return new Response("draining: stopping, send new clients elsewhere\n", { status: 503 });
    }
    return source.healthy()
      ? new Response("ok\n")
      : new Response("unhealthy: a cluster is not listening\n", { status: 503 });
  }
  return new Response("not found: try /metrics or /healthz\n", { status: 404 });
}
