/** The main thread: starts each cluster's workers, watches them, stops them on a signal. */
import type { ClusterConfig, Config } from "../config/schema.ts";
import { logError, logInfo, type LogLevel } from "../log.ts";
import type { FromWorker, ToWorker } from "../worker/messages.ts";

const WORKER_URL = new URL("../worker/worker_main.ts", import.meta.url);
/** Longest wait for a worker to report its listener up. */
const START_TIMEOUT_MS = 10_000;

/**
 * Binds the listen address once without SO_REUSEPORT, then lets it go: workers share the
 * port with SO_REUSEPORT, which would also let them join a port that another Aster (or any
 * reusePort server) already serves. This bind fails in that case.
 */
function _claimPort(cluster: ClusterConfig): void {
  try {
    Deno.listen({ hostname: cluster.listenHost, port: cluster.listenPort }).close();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cluster ${cluster.name}: cannot listen on ${cluster.listenAddr}: ${reason}`);
  }
}

/** A worker and the cluster it serves. */
interface RunningWorker {
  worker: Worker;
  cluster: ClusterConfig;
  stopped: PromiseWithResolvers<void>;
}

/** Extra time past shutdown_timeout a worker gets to report it stopped, ms. */
const STOP_GRACE_MS = 2000;

/** The running workers of every cluster. */
export class Supervisor {
  readonly #workers: RunningWorker[] = [];

  /** Starts `thread` workers per cluster; rejects when any cannot listen. */
  async start(
    config: Config,
    options: { logLevel: LogLevel; advertiseIp?: string },
  ): Promise<void> {
    for (const cluster of config.clusters) _claimPort(cluster);
    const starts: Promise<void>[] = [];
    for (const cluster of config.clusters) {
      for (let index = 0; index < cluster.thread; index++) {
        starts.push(this.#startWorker(cluster, index, options));
      }
    }
    await Promise.all(starts);
  }

  #startWorker(
    cluster: ClusterConfig,
    workerIndex: number,
    options: { logLevel: LogLevel; advertiseIp?: string },
  ): Promise<void> {
    const worker = new Worker(WORKER_URL, {
      type: "module",
      name: `${cluster.name}#${workerIndex}`,
    });
    const stopped = Promise.withResolvers<void>();
    this.#workers.push({ worker, cluster, stopped });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`cluster ${cluster.name}: worker ${workerIndex} did not start`)),
        START_TIMEOUT_MS,
      );
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        if (message.type === "listening") {
          clearTimeout(timer);
          resolve();
        } else if (message.type === "stopped") {
          stopped.resolve();
        } else if (message.type === "failed") {
          clearTimeout(timer);
          reject(
            new Error(
              `cluster ${cluster.name}: cannot listen on ${cluster.listenAddr}: ${message.error}`,
            ),
          );
        }
      };
      worker.onerror = (event) => {
        event.preventDefault();
        clearTimeout(timer);
        logError(`cluster ${cluster.name}: worker ${workerIndex} crashed: ${event.message}`);
        reject(
          new Error(`cluster ${cluster.name}: worker ${workerIndex} crashed: ${event.message}`),
        );
      };
      const start: ToWorker = { type: "start", cluster, workerIndex, ...options };
      worker.postMessage(start);
    });
  }

  /**
   * Graceful stop: every worker stops accepting and finishes the requests in flight, each
   * within its cluster's shutdown_timeout; then all are terminated.
   */
  async stop(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map(async ({ worker, cluster, stopped }) => {
      const stop: ToWorker = { type: "stop" };
      worker.postMessage(stop);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, cluster.shutdownTimeout + STOP_GRACE_MS);
      });
      await Promise.race([stopped.promise, late]);
      clearTimeout(timer);
      worker.terminate();
    }));
    logInfo("stopped");
  }

  /** Terminates every worker at once. */
  kill(): void {
    for (const { worker } of this.#workers.splice(0)) worker.terminate();
  }
}
