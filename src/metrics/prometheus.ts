/** Sums worker snapshots and renders them in the Prometheus text exposition format. */
import {
  emptySnapshot,
  LATENCY_BUCKETS,
  type MetricsSnapshot,
  type NodeSnapshot,
} from "./worker_metrics.ts";

function _addRecord(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

/** Adds up the snapshots of many workers (nodes: gauges OR-ed, histograms summed). */
export function sumSnapshots(snapshots: readonly MetricsSnapshot[]): MetricsSnapshot {
  const total = emptySnapshot();
  const nodes = new Map<string, NodeSnapshot>();
  for (const snap of snapshots) {
    for (const [cluster, c] of Object.entries(snap.clients)) {
      const t = total.clients[cluster] ?? { current: 0, total: 0, rejected: 0 };
      t.current += c.current;
      t.total += c.total;
      t.rejected += c.rejected;
      total.clients[cluster] = t;
    }
    _addRecord(total.commands, snap.commands);
    _addRecord(total.errors, snap.errors);
    _addRecord(total.redirects, snap.redirects);
    _addRecord(total.clientStates, snap.clientStates);
    _addRecord(total.topologyRefreshes, snap.topologyRefreshes);
    _addRecord(total.bytesIn, snap.bytesIn);
    _addRecord(total.bytesOut, snap.bytesOut);
    for (const [cluster, p] of Object.entries(snap.pubsub)) {
      const t = total.pubsub[cluster] ?? { clients: 0, channels: 0, patterns: 0, shardChannels: 0 };
      t.clients += p.clients;
      t.channels += p.channels;
      t.patterns += p.patterns;
      t.shardChannels += p.shardChannels;
      total.pubsub[cluster] = t;
    }
    for (const node of snap.nodes) {
      const key = `${node.cluster}\t${node.node}`;
      const seen = nodes.get(key);
      if (seen === undefined) {
        nodes.set(key, {
          ...node,
          latency: { counts: [...node.latency.counts], sum: node.latency.sum },
        });
        continue;
      }
      seen.up = Math.max(seen.up, node.up);
      seen.pending += node.pending;
      seen.pinned += node.pinned;
      seen.ejected = Math.max(seen.ejected, node.ejected);
      seen.latency.sum += node.latency.sum;
      node.latency.counts.forEach((count, i) => seen.latency.counts[i] += count);
    }
  }
  total.nodes = [...nodes.values()];
  return total;
}

/** Escapes a label value. */
function _label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function _labels(pairs: Record<string, string>): string {
  const inner = Object.entries(pairs).map(([k, v]) => `${k}="${_label(v)}"`).join(",");
  return `{${inner}}`;
}

/** Facts about the process rendered with the counters. */
export interface BuildInfo {
  version: string;
  /** Deno's version, "" on another runtime. */
  deno: string;
  /** The runtime Aster runs on ("deno", "bun") and its version. */
  runtime: string;
  runtimeVersion: string;
  workerRestarts: number;
}

/** Renders a summed snapshot as Prometheus text. */
export function renderPrometheus(snap: MetricsSnapshot, info: BuildInfo): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  family("aster_build_info", "gauge", "Aster's version and its runtime's; always 1.");
  const { version, deno, runtime, runtimeVersion } = info;
  out.push(
    `aster_build_info${_labels({ version, deno, runtime, runtime_version: runtimeVersion })} 1`,
  );
  family("aster_worker_restarts_total", "counter", "Workers restarted after a crash.");
  out.push(`aster_worker_restarts_total ${info.workerRestarts}`);

  family("aster_client_connections", "gauge", "Client connections open now.");
  for (const [cluster, c] of Object.entries(snap.clients)) {
    out.push(`aster_client_connections${_labels({ cluster })} ${c.current}`);
  }
  family("aster_client_connections_total", "counter", "Client connections accepted.");
  for (const [cluster, c] of Object.entries(snap.clients)) {
    out.push(`aster_client_connections_total${_labels({ cluster })} ${c.total}`);
  }
  family("aster_client_rejected_total", "counter", "Clients refused by max_clients.");
  for (const [cluster, c] of Object.entries(snap.clients)) {
    out.push(`aster_client_rejected_total${_labels({ cluster })} ${c.rejected}`);
  }
  const pairs = (
    name: string,
    help: string,
    record: Record<string, number>,
    second: string,
    type = "counter",
  ) => {
    family(name, type, help);
    for (const [key, value] of Object.entries(record)) {
      const [cluster, other] = key.split("\t");
      out.push(`${name}${_labels({ cluster, [second]: other })} ${value}`);
    }
  };
  pairs("aster_commands_total", "Requests by command name.", snap.commands, "command");
  pairs("aster_errors_total", "Error replies and refusals by kind.", snap.errors, "kind");
  pairs("aster_redirects_total", "Redis Cluster redirects followed.", snap.redirects, "type");
  pairs(
    "aster_clients_in_state",
    "Clients blocked, in a transaction... now.",
    snap.clientStates,
    "state",
    "gauge",
  );
  const perCluster = (name: string, help: string, record: Record<string, number>) => {
    family(name, "counter", help);
    for (const [cluster, value] of Object.entries(record)) {
      out.push(`${name}${_labels({ cluster })} ${value}`);
    }
  };
  perCluster(
    "aster_topology_refreshes_total",
    "Cluster slot map refreshes.",
    snap.topologyRefreshes,
  );
  perCluster("aster_client_bytes_in_total", "Bytes read from clients.", snap.bytesIn);
  perCluster("aster_client_bytes_out_total", "Bytes written to clients.", snap.bytesOut);

  family("aster_pubsub_clients", "gauge", "Clients subscribed to a channel or pattern now.");
  for (const [cluster, p] of Object.entries(snap.pubsub)) {
    out.push(`aster_pubsub_clients${_labels({ cluster })} ${p.clients}`);
  }
  family(
    "aster_pubsub_subscriptions",
    "gauge",
    "Subscriptions clients hold now, by kind (channel, pattern, shard_channel).",
  );
  for (const [cluster, p] of Object.entries(snap.pubsub)) {
    const kinds = { channel: p.channels, pattern: p.patterns, shard_channel: p.shardChannels };
    for (const [kind, count] of Object.entries(kinds)) {
      out.push(`aster_pubsub_subscriptions${_labels({ cluster, kind })} ${count}`);
    }
  }

  family("aster_node_up", "gauge", "1 when a connection to the backend node is up.");
  for (const n of snap.nodes) {
    out.push(`aster_node_up${_labels({ cluster: n.cluster, node: n.node })} ${n.up}`);
  }
  family("aster_node_ejected", "gauge", "1 when the node is ejected from the ring.");
  for (const n of snap.nodes) {
    out.push(`aster_node_ejected${_labels({ cluster: n.cluster, node: n.node })} ${n.ejected}`);
  }
  family("aster_backend_pending_requests", "gauge", "Requests sent to the node, not answered yet.");
  for (const n of snap.nodes) {
    out.push(
      `aster_backend_pending_requests${_labels({ cluster: n.cluster, node: n.node })} ${n.pending}`,
    );
  }
  family("aster_pinned_connections", "gauge", "Dedicated connections to the node held by clients.");
  for (const n of snap.nodes) {
    out.push(
      `aster_pinned_connections${_labels({ cluster: n.cluster, node: n.node })} ${n.pinned}`,
    );
  }
  family("aster_backend_request_seconds", "histogram", "Backend request latency per node.");
  for (const n of snap.nodes) {
    let cumulative = 0;
    const base = { cluster: n.cluster, node: n.node };
    LATENCY_BUCKETS.forEach((bound, i) => {
      cumulative += n.latency.counts[i];
      out.push(
        `aster_backend_request_seconds_bucket${
          _labels({ ...base, le: String(bound) })
        } ${cumulative}`,
      );
    });
    cumulative += n.latency.counts[LATENCY_BUCKETS.length];
    out.push(
      `aster_backend_request_seconds_bucket${_labels({ ...base, le: "+Inf" })} ${cumulative}`,
    );
    out.push(`aster_backend_request_seconds_sum${_labels(base)} ${n.latency.sum}`);
    out.push(`aster_backend_request_seconds_count${_labels(base)} ${cumulative}`);
  }
  return out.join("\n") + "\n";
}
