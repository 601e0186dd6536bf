/**
 * Runs a memcache load: fills in the settings, populates when asked, splits connections and
 * requests over the threads (this one, or one Web Worker each, started together after
 * their warm-up), and merges what they measured.
 */
import process from "node:process";
import { type LoadOptions, resolveSettings, type Settings } from "./load_options.ts";
import { UnexpectedReply } from "./replies.ts";
import { type LoadResult, mergeParts, type Part } from "./results.ts";
import { type FromThread, populate, prepareThread, type ToThread } from "./thread.ts";

/** The module each worker thread runs. */
const WORKER = new URL("./worker.ts", import.meta.url);

/** `total` split into `parts` near-equal shares. */
function _shares(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

/** Runs one load against a memcached text-protocol endpoint and returns what it measured. */
export async function runMemcacheLoad(opts: LoadOptions): Promise<LoadResult> {
  const settings = resolveSettings(opts);
  if (settings.populate) await populate(settings);
  const connections = _shares(settings.connections, settings.threads);
  const requests = _shares(settings.requests, settings.threads);
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  let parts: Part[];
  if (settings.threads === 1) {
    const thread = await prepareThread(settings, {
      connections: connections[0],
      requests: requests[0],
      seed: 0,
    });
    try {
      parts = [await thread.measure()];
    } finally {
      thread.close();
    }
  } else {
    parts = await _runThreads(settings, { connections, requests });
  }
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - wallBefore;
  return mergeParts(parts, {
    settings,
    cpu: (cpu.user + cpu.system) / 1000 / wallMs / settings.threads,
  });
}

/** Starts one worker per thread, warms all up, starts them together, collects their parts. */
async function _runThreads(
  settings: Settings,
  opts: { connections: number[]; requests: number[] },
): Promise<Part[]> {
  const workers = opts.connections.map(() =>
    new Worker(WORKER, { type: "module", name: "memcache-load" })
  );
  try {
    const next = workers.map((worker) => _messages(worker));
    workers.forEach((worker, i) => {
      const init: ToThread = {
        kind: "init",
        settings,
        connections: opts.connections[i],
        requests: opts.requests[i],
      };
      worker.postMessage(init);
    });
    const ready = await Promise.all(next.map((receive) => receive()));
    _throwIfError(ready);
    for (const worker of workers) worker.postMessage({ kind: "go" } satisfies ToThread);
    const done = await Promise.all(next.map((receive) => receive()));
    _throwIfError(done);
    return done.map((message) => (message as { part: Part }).part);
  } finally {
    for (const worker of workers) worker.terminate();
  }
}

/** A function returning the worker's next message each time it is called. */
function _messages(worker: Worker): () => Promise<FromThread> {
  const queue: FromThread[] = [];
  const waiting: ((message: FromThread) => void)[] = [];
  const push = (message: FromThread) => {
    const resolve = waiting.shift();
    if (resolve) resolve(message);
    else queue.push(message);
  };
  worker.onmessage = (event: MessageEvent<FromThread>) => push(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    push({ kind: "error", message: event.message });
  };
  return () => {
    const message = queue.shift();
    if (message) return Promise.resolve(message);
    return new Promise((resolve) => waiting.push(resolve));
  };
}

function _throwIfError(messages: FromThread[]): void {
  const error = messages.find((m) => m.kind === "error");
  if (error) throw new UnexpectedReply((error as { message: string }).message);
}
