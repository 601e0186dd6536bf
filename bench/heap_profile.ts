/**
 * Where a running Deno process allocates: V8's sampling heap profiler, reached through the
 * inspector of a process started with `--inspect=127.0.0.1:PORT`, over SECONDS. It prints
 * the bytes allocated per call site (the function and its two callers), largest first,
 * counting objects a GC has already collected: the hot path's garbage is the point.
 *
 * Usage: deno run --allow-net bench/heap_profile.ts PORT [SECONDS] [TOP]
 *
 * ```sh
 * deno run --inspect=127.0.0.1:9229 --unstable-net -A bench/plane_profile.ts my.toml 30 &
 * redis-benchmark -p PORT -c 50 -n 3000000 -P 16 -t get -q &   # load meanwhile
 * deno run --allow-net bench/heap_profile.ts 9229 4
 * ```
 */

/** A node of the profile the inspector returns (`HeapProfiler.SamplingHeapProfileNode`). */
export interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapProfileNode[];
}

/** Bytes allocated at one call site: the allocating function and its two callers. */
export interface AllocationSite {
  site: string;
  bytes: number;
  share: number;
}

/** Sums a sampled profile's bytes by call site, largest first. */
export function allocationSites(head: HeapProfileNode): AllocationSite[] {
  const bytesBySite = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapProfileNode, callers: string[]): void => {
    const frame = node.callFrame;
    const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${
      frame.lineNumber + 1
    }`;
    if (node.selfSize > 0) {
      const site = [name, ...callers.slice(0, 2)].join(" < ");
      bytesBySite.set(site, (bytesBySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, [name, ...callers]);
  };
  walk(head, []);
  return [...bytesBySite].sort((a, b) => b[1] - a[1]).map(([site, bytes]) => ({
    site,
    bytes,
    share: bytes / total,
  }));
}

/** How long sampleHeap waits for the inspector to come up and list its program, ms. */
const INSPECTOR_WAIT_MS = 10_000;

/**
 * The inspector's WebSocket URL for the program on `port`. A process just started answers
 * on its inspector port before it lists the program (an empty list), or not at all yet:
 * both are waited out, up to INSPECTOR_WAIT_MS.
 */
async function _debuggerUrl(port: number): Promise<string> {
  const deadline = Date.now() + INSPECTOR_WAIT_MS;
  for (;;) {
    try {
      const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      if (Array.isArray(targets) && targets.length > 0) return targets[0].webSocketDebuggerUrl;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`the inspector on port ${port} lists no program`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A DevTools protocol session with one process's inspector. */
export interface Inspector {
  /** Calls `method` and resolves with its result (rejects with the inspector's error). */
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Events the inspector sends (e.g. `HeapProfiler.addHeapSnapshotChunk`) go here. */
  onEvent: ((method: string, params: Record<string, unknown>) => void) | null;
  close(): void;
}

/** Opens a session with the inspector of the process on `port` (started with `--inspect`). */
export async function openInspector(port: number): Promise<Inspector> {
  const socket = new WebSocket(await _debuggerUrl(port));
  const opened = Promise.withResolvers<void>();
  socket.onopen = () => opened.resolve();
  socket.onerror = () => opened.reject(new Error(`no inspector session on port ${port}`));
  await opened.promise;
  const waiting = new Map<number, PromiseWithResolvers<Record<string, unknown>>>();
  let nextId = 0;
  const inspector: Inspector = {
    send(method, params = {}) {
      const call = Promise.withResolvers<Record<string, unknown>>();
      waiting.set(++nextId, call);
      socket.send(JSON.stringify({ id: nextId, method, params }));
      return call.promise;
    },
    onEvent: null,
    close: () => socket.close(),
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id === undefined) {
      inspector.onEvent?.(message.method, message.params);
      return;
    }
    const call = waiting.get(message.id);
    if (call === undefined) return;
    waiting.delete(message.id);
    if (message.error) call.reject(new Error(JSON.stringify(message.error)));
    else call.resolve(message.result);
  };
  socket.onclose = () => {
    for (const call of waiting.values()) call.reject(new Error("inspector closed the session"));
  };
  return inspector;
}

/** Samples `port`'s process for `seconds` and returns its profile's head node. */
export async function sampleHeap(port: number, seconds: number): Promise<HeapProfileNode> {
  const inspector = await openInspector(port);
  try {
    await inspector.send("HeapProfiler.enable");
    await inspector.send("HeapProfiler.startSampling", {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const { profile } = await inspector.send("HeapProfiler.stopSampling");
    return (profile as { head: HeapProfileNode }).head;
  } finally {
    inspector.close();
  }
}

if (import.meta.main) {
  const [port, seconds = "5", top = "30"] = Deno.args;
  if (port === undefined) {
    console.error("usage: heap_profile.ts PORT [SECONDS] [TOP]");
    Deno.exit(2);
  }
  const sites = allocationSites(await sampleHeap(Number(port), Number(seconds)));
  const total = sites.reduce((sum, site) => sum + site.bytes, 0);
  console.log(`${(total / 2 ** 20).toFixed(1)} MiB sampled in ${seconds} s`);
  for (const { site, share } of sites.slice(0, Number(top))) {
    console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${site}`);
  }
}
