/** The main thread: starts each cluster's workers, restarts crashed ones, stops them all. */
import type { ClusterConfig, Config } from "../config/schema.ts";
import { logError, logInfo, type LogLevel, logWarn } from "../log.ts";
import { type MetricsSnapshot } from "../metrics/worker_metrics.ts";
import type {
  ClientCells,
  FromWorker,
  RawFdTable,
  SharedState,
  StartMessage,
  ToWorker,
} from "../worker/messages.ts";
import { runtime } from "../runtime/runtime.ts";
import type { RawFdReaper } from "../runtime/sockets.ts";

const WORKER_URL = new URL("../worker/worker_main.ts", import.meta.url);
/** Longest wait for a worker to report its listener up. */
const START_TIMEOUT_MS = 10_000;
/** Extra time past shutdown_timeout a worker gets to report it stopped, ms. */
const STOP_GRACE_MS = 2000;
/**
 * Wait between terminating a worker and closing its raw descriptors, ms: terminate() only
 * asks its thread to stop, and one still running must not touch a number already reused.
 */
const REAP_DELAY_MS = 200;
/** Longest wait for a worker's counters, ms. */
const METRICS_TIMEOUT_MS = 1000;
/**
 * A worker's error in one line: Deno's message is one ("Uncaught Error: ..."); Bun's
 * starts with a code frame, so its error's own words are used.
 */
function _crashReason(event: ErrorEvent): string {
  if (!event.message.includes("\n")) return event.message;
  const error: unknown = event.error;
  if (error instanceof Error) return `Uncaught ${error.name}: ${error.message}`;
  const line = event.message.split("\n").find((l) => /^\w*error: /i.test(l.trim()));
  return line?.trim() ?? event.message.replaceAll("\n", " ");
}

/** First delay before restarting a crashed worker, doubling while it keeps crashing, ms. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;

/**
 * Binds the listen address once without SO_REUSEPORT, then lets it go: workers share the
 * port with SO_REUSEPORT, which would also let them join a port that another Aster (or any
 * reusePort server) already serves. This bind fails in that case.
 */
function _claimPort(cluster: ClusterConfig): void {
  _claimListenPort(cluster);
  _claimTlsPort(cluster);
}

/** The `listen_addr` part of `_claimPort`. */
function _claimListenPort(cluster: ClusterConfig): void {
  try {
    const address = { hostname: cluster.listenHost, port: cluster.listenPort, reusePort: false };
    runtime.sockets.listen(address).close();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cluster ${cluster.name}: cannot listen on ${cluster.listenAddr}: ${reason}`);
  }
}

/** Same for `tls_listen_addr`, when set. */
function _claimTlsPort(cluster: ClusterConfig): void {
  if (cluster.tlsListenHost === null || cluster.tlsListenPort === null) return;
  try {
    const address = { hostname: cluster.tlsListenHost, port: cluster.tlsListenPort };
    runtime.sockets.listen({ ...address, reusePort: false }).close();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `cluster ${cluster.name}: cannot listen on tls_listen_addr ${cluster.tlsListenAddr}: ${reason}`,
    );
  }
}

/**
 * True when workers can share a port with SO_REUSEPORT and the kernel spreads clients over
 * them (Linux). Elsewhere each cluster runs one accepting worker.
 */
export function reusePortWorks(): boolean {
  if (runtime.os !== "linux") return false;
  try {
    runtime.sockets.listen({ hostname: "127.0.0.1", port: 0, reusePort: true }).close();
    return true;
  } catch {
    return false;
  }
}

/** Settings every worker starts with. */
interface WorkerOptions {
  logLevel: LogLevel;
  advertiseIp?: string;
}

/** Cells per cluster in its shared client counts: every worker, and those still draining. */
const CLIENT_CELLS = 512;

/** One worker slot: the cluster and index it serves, and its current Worker. */
interface WorkerSlot {
  cluster: ClusterConfig;
  index: number;
  worker: Worker;
  /** True between "listening" and a crash or stop. */
  listening: boolean;
  /** Once asked to stop: its listeners are closed (or it stopped). */
  stoppedAccepting: PromiseWithResolvers<void>;
  stopped: PromiseWithResolvers<void>;
  restartDelay: number;
  /** Set while a reconfigure is applied. */
  reconfigured?: PromiseWithResolvers<void>;
  /** Set once asked to stop: a crash then is not restarted. */
  stopping?: boolean;
  /** Where the worker records its raw descriptors, when the process may open them. */
  fds?: RawFdTable;
  /** Its cell in the cluster's client counts (null: none free, it counts alone). */
  clientQuota: ClientCells | null;
  /** The config its worker was started with. */
  startedWith?: ClusterConfig;
}

/**
 * Terminates a worker and closes the raw descriptors (`io = "ffi"`) it left open: Deno
 * closes only its own resources, and a leftover listener would keep taking its share of
 * the port's new connections with no one to accept them.
 */
function _endWorker(slot: WorkerSlot, reaper: RawFdReaper | null): Promise<void> {
  slot.worker.terminate();
  const fds = slot.fds;
  if (reaper === null || fds === undefined) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, REAP_DELAY_MS)).then(() => reaper.reap(fds))
    .then(
      (count) => {
        if (count > 0) {
          logInfo(
            `cluster ${slot.cluster.name}: worker ${slot.index}: closed ${count} raw sockets`,
          );
        }
      },
      (err) => logError(`closing a worker's raw sockets failed: ${err}`),
    );
}

/** Asks a worker to stop gracefully; terminates it once it has, or after the bound. */
async function _stopWorker(slot: WorkerSlot, reaper: RawFdReaper | null): Promise<void> {
  slot.listening = false;
  slot.stopping = true;
  const stop: ToWorker = { type: "stop" };
  slot.worker.postMessage(stop);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, slot.cluster.shutdownTimeout + STOP_GRACE_MS);
  });
  await Promise.race([slot.stopped.promise, late]);
  clearTimeout(timer);
  await _endWorker(slot, reaper);
}

/** True when two configs of a cluster can be swapped in place (same port, mode, workers). */
function _sameShape(a: ClusterConfig, b: ClusterConfig): boolean {
  return a.listenAddr === b.listenAddr && a.cacheType === b.cacheType && a.thread === b.thread &&
    a.io === b.io && _sameTlsListener(a, b);
}

/**
 * True when the TLS listener stays as it is (same address, TLS and mutual TLS on or off
 * alike): a reload then only swaps its certificate, and TLS clients stay connected.
 */
function _sameTlsListener(a: ClusterConfig, b: ClusterConfig): boolean {
  return a.tlsListenAddr === b.tlsListenAddr && (a.tlsCert === null) === (b.tlsCert === null) &&
    (a.tlsCa === null) === (b.tlsCa === null);
}

/** The running workers of every cluster. */
export class Supervisor {
  readonly #slots: WorkerSlot[] = [];
  readonly #metricsWaiters = new Map<number, (snapshot: MetricsSnapshot | null) => void>();
  #options: WorkerOptions = { logLevel: "info" };
  #nextMetricsId = 0;
  /** The latest state each cluster's leader decided, by cluster name and kind. */
  readonly #shared = new Map<string, Map<string, SharedState>>();
  #stopping = false;
  readonly #clientCells = new Map<string, { counts: Int32Array; free: number[] }>();
  /** Workers a reload took out, finishing their requests; and the drains under way. */
  readonly #retiring = new Set<WorkerSlot>();
  readonly #retired = new Set<Promise<void>>();
  /** Closes the raw sockets a worker that ended left open (null: no FFI in this process). */
  readonly #reaper = runtime.rawFdReaper();
  /** Without SO_REUSEPORT only one worker can accept on a port. */
  #singleWorker = false;
  /** Workers restarted after a crash. */
  restarts = 0;

  /** Starts `thread` workers per cluster; rejects when any cannot listen. */
  async start(config: Config, options: WorkerOptions): Promise<void> {
    this.#options = options;
    if (!reusePortWorks()) {
      this.#singleWorker = true;
      const asked = config.clusters.filter((cluster) => cluster.thread > 1);
      if (asked.length > 0) {
        logWarn(
          `SO_REUSEPORT is not available on ${runtime.os}: one accepting worker per ` +
            `cluster (thread ignored for ${asked.map((c) => c.name).join(", ")})`,
        );
      }
    }
    for (const cluster of config.clusters) _claimPort(cluster);
    const starts: Promise<void>[] = [];
    for (const cluster of config.clusters) {
      for (let index = 0; index < this.#threads(cluster); index++) {
        const slot = this.#newSlot(cluster, index);
        this.#slots.push(slot);
        starts.push(this.#run(slot));
      }
    }
    await Promise.all(starts);
  }

  #threads(cluster: ClusterConfig): number {
    return this.#singleWorker ? 1 : cluster.thread;
  }

  /**
   * A cell for a new worker in its cluster's shared client counts, so max_clients bounds all
   * of the cluster's workers; one array per cluster name for the life of the process (workers
   * still draining after a reload keep counting in it). Null when every cell is taken.
   */
  #takeCell(cluster: ClusterConfig): ClientCells | null {
    let cells = this.#clientCells.get(cluster.name);
    if (cells === undefined) {
      // Element 0 holds one past the highest cell handed out: sums read cells 1 up to it.
      const counts = new Int32Array(new SharedArrayBuffer(4 * (CLIENT_CELLS + 1)));
      Atomics.store(counts, 0, 1);
      // Low cells first (a stack): the sums stay short.
      cells = { counts, free: Array.from({ length: CLIENT_CELLS }, (_, i) => CLIENT_CELLS - i) };
      this.#clientCells.set(cluster.name, cells);
    }
    const cell = cells.free.pop();
    if (cell === undefined) {
      logWarn(`cluster ${cluster.name}: no client count cell left; a worker counts its own share`);
      return null;
    }
    Atomics.store(cells.counts, cell, 0);
    if (cell + 1 > Atomics.load(cells.counts, 0)) Atomics.store(cells.counts, 0, cell + 1);
    return { counts: cells.counts, cell };
  }

  /** A worker has ended: its clients went with it, its cell is free. */
  #releaseCell(slot: WorkerSlot): void {
    const quota = slot.clientQuota;
    if (quota === null) return;
    slot.clientQuota = null;
    Atomics.store(quota.counts, quota.cell, 0);
    this.#clientCells.get(slot.cluster.name)?.free.push(quota.cell);
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
    const worker = runtime.newWorker(WORKER_URL, `${cluster.name}#${index}`);
    return {
      cluster,
      index,
      worker,
      fds: this.#reaper?.newTable(),
      listening: false,
      stoppedAccepting: Promise.withResolvers<void>(),
      stopped: Promise.withResolvers<void>(),
      restartDelay: 0,
      clientQuota: this.#takeCell(cluster),
    };
  }

  /** Starts the slot's worker; resolves once it listens, rejects when it cannot. */
  #run(slot: WorkerSlot): Promise<void> {
    const { cluster, index, worker } = slot;
    const label = `cluster ${cluster.name}: worker ${index}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label} did not start`)), START_TIMEOUT_MS);
      const start: StartMessage = {
        type: "start",
        cluster,
        workerIndex: index,
        ...this.#options,
        leader: index === 0,
        reusePort: !this.#singleWorker,
        fds: slot.fds,
        clientQuota: slot.clientQuota ?? undefined,
        shared: [],
      };
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        switch (message.type) {
          case "ready":
            // The leader's decisions as they are now, not when the worker was made; the
            // config too (a reload may have changed it meanwhile).
            start.shared = [...(this.#shared.get(cluster.name)?.values() ?? [])];
            start.cluster = slot.startedWith = slot.cluster;
            worker.postMessage(start);
            return;
          case "listening":
            clearTimeout(timer);
            slot.listening = true;
            resolve();
            return;
          case "stopped-accepting":
            slot.stoppedAccepting.resolve();
            return;
          case "stopped":
            slot.stoppedAccepting.resolve();
            slot.stopped.resolve();
            return;
          case "metrics":
            this.#metricsWaiters.get(message.id)?.(message.snapshot);
            return;
          case "shared":
            this.#share(slot, message.state);
            return;
          case "refresh-wanted":
            this.#leaderOf(cluster.name)?.worker.postMessage({ type: "refresh" } as ToWorker);
            return;
          case "reconfigured":
            if (message.error) logError(`${label}: reload failed: ${message.error}`);
            slot.reconfigured?.resolve();
            slot.reconfigured = undefined;
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
        const reason = _crashReason(event);
        logError(`${label} crashed: ${reason}`);
        // A dead worker accepts nothing and has nothing to finish: a reload or stop waiting
        // for it goes on.
        slot.stoppedAccepting.resolve();
        slot.stopped.resolve();
        if (slot.stopping || !slot.listening) {
          reject(new Error(`${label} crashed: ${reason}`)); // a start under way fails
          return;
        }
        slot.listening = false;
        slot.reconfigured?.resolve();
        this.#restart(slot);
      };
    });
  }

  /** Keeps a leader's decision and hands it to the cluster's other workers. */
  #share(from: WorkerSlot, state: SharedState): void {
    const name = from.cluster.name;
    const states = this.#shared.get(name) ?? new Map<string, SharedState>();
    states.set(state.kind, state);
    this.#shared.set(name, states);
    const message: ToWorker = { type: "shared", state };
    for (const slot of this.#slots) {
      if (slot !== from && slot.cluster.name === name) slot.worker.postMessage(message);
    }
  }

  #leaderOf(name: string): WorkerSlot | undefined {
    return this.#slots.find((slot) => slot.cluster.name === name && slot.index === 0);
  }

  /** Replaces a crashed worker; the others keep serving meanwhile. */
  #restart(crashed: WorkerSlot): void {
    _endWorker(crashed, this.#reaper);
    this.#releaseCell(crashed);
    if (this.#stopping || crashed.stopping) return;
    const delay = Math.min(
      RESTART_MAX_MS,
      crashed.restartDelay === 0 ? RESTART_MIN_MS : crashed.restartDelay * 2,
    );
    setTimeout(() => {
      if (this.#stopping || crashed.stopping || !this.#slots.includes(crashed)) return;
      // The same slot object with a new worker: a reload that took the slot meanwhile (to
      // reconfigure or drain it) acts on the worker that runs now. It starts with the
      // slot's config, which such a reload may have changed.
      const fresh = this.#newSlot(crashed.cluster, crashed.index);
      Object.assign(crashed, { ...fresh, restartDelay: delay, reconfigured: undefined });
      const slot = crashed;
      this.restarts++;
      this.#run(slot).then(
        () => {
          logWarn(`cluster ${slot.cluster.name}: worker ${slot.index} restarted`);
          // A reload while it started: it runs the config it was sent at "ready".
          if (slot.startedWith !== slot.cluster) this.#reconfigure(slot, slot.cluster);
        },
        (err) => {
          logError(err instanceof Error ? err.message : String(err));
          this.#restart(slot);
        },
      );
    }, delay);
  }

  /**
   * Applies a new config while serving. Clusters whose listen address, mode and thread
   * count are unchanged are reconfigured in place (clients stay connected, requests in
   * flight finish on the old backends); others are replaced by new workers, added or
   * drained. New ports are claimed before anything changes: a reload that cannot bind
   * them is refused whole and the old config keeps serving.
   */
  async reload(next: Config): Promise<string[]> {
    const byName = new Map<string, WorkerSlot[]>();
    for (const slot of this.#slots) {
      const list = byName.get(slot.cluster.name) ?? [];
      list.push(slot);
      byName.set(slot.cluster.name, list);
    }
    const freedPorts = new Set<number>();
    for (const [name, slots] of byName) {
      const replacement = next.clusters.find((c) => c.name === name);
      if (replacement === undefined || replacement.listenPort !== slots[0].cluster.listenPort) {
        freedPorts.add(slots[0].cluster.listenPort);
      }
    }
    const usedPorts = new Set(this.#slots.map((slot) => slot.cluster.listenPort));
    for (const cluster of next.clusters) {
      const old = byName.get(cluster.name)?.[0].cluster;
      // A TLS port new to this cluster (one it holds already is no conflict).
      if (old?.tlsListenPort !== cluster.tlsListenPort) _claimTlsPort(cluster);
      if (old?.listenPort === cluster.listenPort) continue;
      if (usedPorts.has(cluster.listenPort) && freedPorts.has(cluster.listenPort)) continue;
      _claimListenPort(cluster); // throws: nothing has changed yet
    }

    const changes: string[] = [];
    // Removed clusters (and those moving to another port or mode) stop accepting first,
    // which frees their ports for clusters added by the same reload; they finish their
    // requests (up to shutdown_timeout) while the reload goes on, and later ones too.
    const replaced: ClusterConfig[] = [];
    for (const [name, slots] of byName) {
      const cluster = next.clusters.find((c) => c.name === name);
      if (cluster !== undefined && _sameShape(cluster, slots[0].cluster)) continue;
      if (cluster !== undefined) replaced.push(cluster);
      this.#shared.delete(name);
      if (cluster === undefined || cluster.listenPort !== slots[0].cluster.listenPort) {
        await this.#drainSlots(slots);
        changes.push(cluster === undefined ? `removed ${name}` : `moved ${name}`);
      }
    }
    for (const cluster of next.clusters) {
      const slots = byName.get(cluster.name);
      if (slots === undefined) {
        await this.#startCluster(cluster);
        changes.push(`added ${cluster.name}`);
      } else if (replaced.includes(cluster)) {
        if (cluster.listenPort === slots[0].cluster.listenPort) {
          // Same port, new shape: new workers join the port, then the old ones drain (the
          // new ones serve meanwhile: the reload does not wait).
          await this.#startCluster(cluster);
          this.#drainSlots(slots);
          changes.push(`restarted ${cluster.name}`);
        } else {
          await this.#startCluster(cluster);
        }
      } else if (JSON.stringify(cluster) !== JSON.stringify(slots[0].cluster)) {
        // Ejections and maps were decided for the old servers: the leader decides anew.
        this.#shared.delete(cluster.name);
        await Promise.all(slots.map((slot) => this.#reconfigure(slot, cluster)));
        changes.push(`reconfigured ${cluster.name}`);
      }
    }
    return changes;
  }

  async #startCluster(cluster: ClusterConfig): Promise<void> {
    const slots = Array.from(
      { length: this.#threads(cluster) },
      (_, i) => this.#newSlot(cluster, i),
    );
    this.#slots.push(...slots);
    await Promise.all(slots.map((slot) => this.#run(slot)));
  }

  /**
   * Stops some workers gracefully (as on SIGTERM) and forgets them once stopped; until then
   * stop() waits for them too and kill() ends them. Resolves once they stopped accepting.
   */
  #drainSlots(slots: WorkerSlot[]): Promise<void> {
    for (const slot of slots) {
      const at = this.#slots.indexOf(slot);
      if (at >= 0) this.#slots.splice(at, 1);
      this.#retiring.add(slot);
    }
    const drained = Promise.all(slots.map(async (slot) => {
      await _stopWorker(slot, this.#reaper);
      this.#releaseCell(slot);
      this.#retiring.delete(slot);
    })).then(
      () => {},
      (err) => logWarn(`stopping removed workers: ${err instanceof Error ? err.message : err}`),
    );
    this.#retired.add(drained);
    drained.finally(() => this.#retired.delete(drained));
    return Promise.race([
      Promise.all(slots.map((slot) => slot.stoppedAccepting.promise)).then(() => {}),
      drained,
    ]);
  }

  #reconfigure(slot: WorkerSlot, cluster: ClusterConfig): Promise<void> {
    slot.cluster = cluster;
    // A dead worker (waiting for its restart) answers nothing: its restart takes the config.
    if (!slot.listening) return Promise.resolve();
    const done = Promise.withResolvers<void>();
    slot.reconfigured = done;
    const message: ToWorker = { type: "reconfigure", cluster };
    slot.worker.postMessage(message);
    return done.promise;
  }

  /** True from the start of a graceful stop: /healthz then answers 503 "draining". */
  get draining(): boolean {
    return this.#stopping;
  }

  /**
   * Graceful stop: /healthz turns not ready at once (`draining`) while the workers keep
   * accepting for the longest `drain_delay`, so a load balancer sends new clients elsewhere
   * first; then every worker stops accepting and finishes the requests in flight, each
   * within its cluster's shutdown_timeout; then all are terminated.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    const delay = Math.max(0, ...this.#slots.map((slot) => slot.cluster.drainDelay));
    if (delay > 0) {
      logInfo(`draining: /healthz is 503, still accepting for ${delay} ms (drain_delay)`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    await Promise.all([
      ...this.#slots.splice(0).map((slot) => _stopWorker(slot, this.#reaper)),
      ...this.#retired, // clusters a reload removed, still finishing their requests
    ]);
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
    for (const { worker } of this.#retiring) worker.terminate();
    this.#retiring.clear();
  }
}
