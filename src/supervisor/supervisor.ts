/** The main thread: starts each cluster's workers, restarts crashed ones, stops them all. */
import type { ClusterConfig, Config } from "../config/schema.ts";
import { logError, logInfo, type LogLevel, logWarn } from "../log.ts";
import { type MetricsSnapshot } from "../metrics/worker_metrics.ts";
import type { FromWorker, ToWorker } from "../worker/messages.ts";

const WORKER_URL = new URL("../worker/worker_main.ts", import.meta.url);
/** Longest wait for a worker to report its listener up. */
const START_TIMEOUT_MS = 10_000;
/** Extra time past shutdown_timeout a worker gets to report it stopped, ms. */
const STOP_GRACE_MS = 2000;
/** Longest wait for a worker's counters, ms. */
const METRICS_TIMEOUT_MS = 1000;
/** First delay before restarting a crashed worker, doubling while it keeps crashing, ms. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;

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

/** Settings every worker starts with. */
interface WorkerOptions {
  logLevel: LogLevel;
  advertiseIp?: string;
}

/** One worker slot: the cluster and index it serves, and its current Worker. */
interface WorkerSlot {
  cluster: ClusterConfig;
  index: number;
  worker: Worker;
  /** True between "listening" and a crash or stop. */
  listening: boolean;
  stopped: PromiseWithResolvers<void>;
  restartDelay: number;
}

/** The running workers of every cluster. */
export class Supervisor {
  readonly #slots: WorkerSlot[] = [];
  readonly #metricsWaiters = new Map<number, (snapshot: MetricsSnapshot | null) => void>();
  #options: WorkerOptions = { logLevel: "info" };
  #nextMetricsId = 0;
  #stopping = false;
  /** Workers restarted after a crash. */
  restarts = 0;

  /** Starts `thread` workers per cluster; rejects when any cannot listen. */
  async start(config: Config, options: WorkerOptions): Promise<void> {
    this.#options = options;
    for (const cluster of config.clusters) _claimPort(cluster);
    const starts: Promise<void>[] = [];
    for (const cluster of config.clusters) {
      for (let index = 0; index < cluster.thread; index++) {
        const slot = this.#newSlot(cluster, index);
        this.#slots.push(slot);
        starts.push(this.#run(slot));
      }
    }
    await Promise.all(starts);
  }

  /** True while every worker is listening. */
  healthy(): boolean {
    return !this.#stopping && this.#slots.length > 0 && this.#slots.every((s) => s.listening);
  }

  /** Asks every worker for its counters (a worker that does not answer in time is left out). */
  collectMetrics(): Promise<MetricsSnapshot[]> {
    return Promise.all(this.#slots.map((slot) => {
      const id = ++this.#nextMetricsId;
      return new Promise<MetricsSnapshot | null>((resolve) => {
        const timer = setTimeout(() => {
          this.#metricsWaiters.delete(id);
          resolve(null);
        }, METRICS_TIMEOUT_MS);
        this.#metricsWaiters.set(id, (snapshot) => {
          clearTimeout(timer);
          this.#metricsWaiters.delete(id);
          resolve(snapshot);
        });
        const request: ToWorker = { type: "metrics", id };
        slot.worker.postMessage(request);
      });
    })).then((all) => all.filter((snapshot) => snapshot !== null));
  }

  #newSlot(cluster: ClusterConfig, index: number): WorkerSlot {
    const worker = new Worker(WORKER_URL, { type: "module", name: `${cluster.name}#${index}` });
    return {
      cluster,
      index,
      worker,
      listening: false,
      stopped: Promise.withResolvers<void>(),
      restartDelay: 0,
    };
  }

  /** Starts the slot's worker; resolves once it listens, rejects when it cannot. */
  #run(slot: WorkerSlot): Promise<void> {
    const { cluster, index, worker } = slot;
    const label = `cluster ${cluster.name}: worker ${index}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label} did not start`)), START_TIMEOUT_MS);
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        switch (message.type) {
          case "listening":
            clearTimeout(timer);
            slot.listening = true;
            resolve();
            return;
          case "stopped":
            slot.stopped.resolve();
            return;
          case "metrics":
            this.#metricsWaiters.get(message.id)?.(message.snapshot);
            return;
          case "failed":
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
        logError(`${label} crashed: ${event.message}`);
        if (!slot.listening) {
          reject(new Error(`${label} crashed: ${event.message}`));
          return;
        }
        slot.listening = false;
        this.#restart(slot);
      };
      const start: ToWorker = { type: "start", cluster, workerIndex: index, ...this.#options };
      worker.postMessage(start);
    });
  }

  /** Replaces a crashed worker; the others keep serving meanwhile. */
  #restart(crashed: WorkerSlot): void {
    crashed.worker.terminate();
    if (this.#stopping) return;
    const delay = Math.min(
      RESTART_MAX_MS,
      crashed.restartDelay === 0 ? RESTART_MIN_MS : crashed.restartDelay * 2,
    );
    setTimeout(() => {
      if (this.#stopping) return;
      const slot = this.#newSlot(crashed.cluster, crashed.index);
      slot.restartDelay = delay;
      this.#slots[this.#slots.indexOf(crashed)] = slot;
      this.restarts++;
      this.#run(slot).then(
        () => logWarn(`cluster ${slot.cluster.name}: worker ${slot.index} restarted`),
        (err) => {
          logError(err instanceof Error ? err.message : String(err));
          this.#restart(slot);
        },
      );
    }, delay);
  }

  /**
   * Graceful stop: every worker stops accepting and finishes the requests in flight, each
   * within its cluster's shutdown_timeout; then all are terminated.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map(async ({ worker, cluster, stopped }) => {
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

  /** Makes the first worker of every cluster crash (the restart path's test hook). */
  crashFirstWorkers(): void {
    for (const slot of this.#slots) {
      if (slot.index !== 0) continue;
      const crash: ToWorker = { type: "crash" };
      slot.worker.postMessage(crash);
    }
  }

  /** Terminates every worker at once. */
  kill(): void {
    this.#stopping = true;
    for (const { worker } of this.#slots.splice(0)) worker.terminate();
  }
}
