/** Web Worker entry: one complete data plane for one cluster, driven by supervisor messages. */
/// <reference lib="deno.worker" />
import { configureLog, logError } from "../log.ts";
import type { FromWorker, SharedState, ToWorker } from "./messages.ts";
import { emptySnapshot } from "../metrics/worker_metrics.ts";
import { type DataPlane, type PlaneSharing, startDataPlane } from "./data_plane.ts";

let plane: DataPlane | null = null;
/** Leader decisions that arrived before the data plane subscribed. */
const inbox: SharedState[] = [];
let applyShared: ((state: SharedState) => void) | null = null;

// A bug on one connection's path must not take the whole data plane down with it.
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const reason = event.reason;
  logError(`unhandled rejection: ${reason instanceof Error ? reason.stack : reason}`);
});

function _post(message: FromWorker): void {
  self.postMessage(message);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start": {
      const {
        cluster,
        workerIndex,
        logLevel,
        advertiseIp,
        leader,
        shared,
        reusePort,
        fds,
        clientQuota,
      } = message;
      configureLog(logLevel, `${cluster.name}#${workerIndex}`);
      inbox.push(...shared);
      const sharing: PlaneSharing = {
        leader,
        publish: (state) => _post({ type: "shared", state }),
        askLeader: () => _post({ type: "refresh-wanted" }),
        subscribe: (apply) => {
          applyShared = apply;
          for (const state of inbox.splice(0)) apply(state);
        },
      };
      try {
        plane = await startDataPlane(cluster, {
          reusePort,
          advertiseIp,
          workerIndex,
          sharing,
          fds,
          clientQuota,
        });
        _post({ type: "listening", address: cluster.listenAddr });
      } catch (err) {
        _post({ type: "failed", error: err instanceof Error ? err.message : String(err) });
      }
      return;
    }
    case "metrics": {
      const snapshot = emptySnapshot();
      plane?.metrics.snapshotInto(snapshot);
      _post({ type: "metrics", id: message.id, snapshot });
      return;
    }
    case "shared":
      if (applyShared === null) inbox.push(message.state);
      else applyShared(message.state);
      return;
    case "refresh":
      plane?.refresh();
      return;
    case "reconfigure":
      try {
        await plane?.reconfigure(message.cluster);
        _post({ type: "reconfigured" });
      } catch (err) {
        _post({ type: "reconfigured", error: err instanceof Error ? err.message : String(err) });
      }
      return;
    case "crash":
      // Thrown outside any handler, as a real bug would be: the worker dies.
      setTimeout(() => {
        throw new Error("crash requested by the supervisor (test hook)");
      });
      return;
    case "stop":
      await plane?.drain(() => _post({ type: "stopped-accepting" }));
      plane = null;
      _post({ type: "stopped" });
      return;
  }
};

_post({ type: "ready" });
