/**
 * The body of a memcache load worker thread (started by run.ts): init -> connect and warm
 * up -> ready; go -> measure -> done.
 */
import { type FromThread, prepareThread, type ToThread } from "./thread.ts";

/** The body of a worker thread: init -> connect and warm up -> ready; go -> measure -> done. */
function _threadMain(): void {
  const self = globalThis as unknown as {
    onmessage: ((event: MessageEvent<ToThread>) => void) | null;
    postMessage(message: FromThread, transfer?: Transferable[]): void;
  };
  let prepared: Awaited<ReturnType<typeof prepareThread>> | null = null;
  const fail = (err: unknown) => {
    prepared?.close();
    self.postMessage({ kind: "error", message: err instanceof Error ? err.message : String(err) });
  };
  self.onmessage = (event) => {
    const message = event.data;
    if (message.kind === "init") {
      const seed = Math.floor(Math.random() * 1e9);
      prepareThread(message.settings, { ...message, seed }).then((thread) => {
        prepared = thread;
        self.postMessage({ kind: "ready" });
      }, fail);
    } else if (message.kind === "go" && prepared) {
      const thread = prepared;
      thread.measure().then((part) => {
        thread.close();
        self.postMessage({ kind: "done", part }, [part.histogram.buffer]);
      }, fail);
    }
  };
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  _threadMain();
}
