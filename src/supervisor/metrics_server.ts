/** The HTTP endpoint: Prometheus `/metrics` summed over workers, and `/healthz`. */
import { logInfo } from "../log.ts";

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
): Promise<Deno.HttpServer> {
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    hostname: address.host,
    port: address.port,
    onListen: () => listening.resolve(),
    onError: (err) =>
      new Response(`error: ${err instanceof Error ? err.message : err}\n`, { status: 500 }),
  }, async (request) => {
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
  });
  await listening.promise;
  logInfo(`metrics on http://${address.host}:${address.port}/metrics`);
  return server;
}
