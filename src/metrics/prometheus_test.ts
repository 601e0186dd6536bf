import assert from "node:assert/strict";
import { renderPrometheus, sumSnapshots } from "./prometheus.ts";
import {
  emptySnapshot,
  LATENCY_BUCKETS,
  type MetricsSnapshot,
  type NodeSnapshot,
} from "./worker_metrics.ts";

const INFO = {
  version: "9.9.9",
  deno: "2.9.6",
  runtime: "deno",
  runtimeVersion: "2.9.6",
  workerRestarts: 3,
};

function _node(cluster: string, node: string, fields: Partial<NodeSnapshot> = {}): NodeSnapshot {
  const counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  return {
    cluster,
    node,
    up: 1,
    ejected: 0,
    pending: 0,
    pinned: 0,
    latency: { counts, sum: 0 },
    ...fields,
  };
}

function _worker(fill: (snap: MetricsSnapshot) => void): MetricsSnapshot {
  const snap = emptySnapshot();
  fill(snap);
  return snap;
}

/** The value of the one sample line `name{labels}` in `text`. */
function _sample(text: string, series: string): number {
  const lines = text.split("\n").filter((line) => line.startsWith(`${series} `));
  assert.equal(lines.length, 1, `one sample ${series}, got ${lines.length}`);
  return Number(lines[0].slice(series.length + 1));
}

Deno.test("sumSnapshots() adds counters of every worker and keeps clusters apart", () => {
  const a = _worker((s) => {
    s.clients.c1 = { current: 2, total: 10, rejected: 1 };
    s.commands["c1\tget"] = 5;
    s.errors["c1\tbackend"] = 1;
    s.bytesIn.c1 = 100;
  });
  const b = _worker((s) => {
    s.clients.c1 = { current: 3, total: 4, rejected: 0 };
    s.clients.c2 = { current: 1, total: 1, rejected: 0 };
    s.commands["c1\tget"] = 7;
    s.commands["c2\tset"] = 1;
    s.bytesIn.c1 = 50;
  });
  const total = sumSnapshots([a, b]);
  assert.deepEqual(total.clients, {
    c1: { current: 5, total: 14, rejected: 1 },
    c2: { current: 1, total: 1, rejected: 0 },
  });
  assert.deepEqual(total.commands, { "c1\tget": 12, "c2\tset": 1 });
  assert.deepEqual(total.errors, { "c1\tbackend": 1 });
  assert.deepEqual(total.bytesIn, { c1: 150 });
  // The inputs are not changed.
  assert.equal(a.commands["c1\tget"], 5);
});

Deno.test("sumSnapshots() ORs node gauges, sums pending and latency, and copies histograms", () => {
  const first = _node("c", "redis-1", { up: 0, pending: 2 });
  first.latency.counts[0] = 4;
  first.latency.sum = 0.5;
  const second = _node("c", "redis-1", { up: 1, ejected: 1, pending: 3 });
  second.latency.counts[0] = 1;
  second.latency.counts[LATENCY_BUCKETS.length] = 2;
  second.latency.sum = 7;
  const other = _node("c", "redis-2", { up: 0 });
  const total = sumSnapshots([
    _worker((s) => s.nodes.push(first)),
    _worker((s) => s.nodes.push(second, other)),
  ]);
  assert.equal(total.nodes.length, 2);
  const merged = total.nodes.find((n) => n.node === "redis-1")!;
  assert.equal(merged.up, 1);
  assert.equal(merged.ejected, 1);
  assert.equal(merged.pending, 5);
  assert.equal(merged.latency.counts[0], 5);
  assert.equal(merged.latency.counts[LATENCY_BUCKETS.length], 2);
  assert.equal(merged.latency.sum, 7.5);
  assert.equal(first.latency.counts[0], 4, "the first worker's histogram is not summed into");
  assert.equal(total.nodes.find((n) => n.node === "redis-2")!.up, 0);
});

Deno.test("renderPrometheus() declares every family once, before its samples", () => {
  const snap = sumSnapshots([_worker((s) => {
    s.clients.c = { current: 1, total: 2, rejected: 0 };
    s.commands["c\tget"] = 3;
    s.errors["c\toutput_limit"] = 1;
    s.redirects["c\tmoved"] = 2;
    s.topologyRefreshes.c = 1;
    s.bytesIn.c = 10;
    s.bytesOut.c = 20;
    s.nodes.push(_node("c", "n1"));
  })]);
  const text = renderPrometheus(snap, INFO);
  assert.ok(text.endsWith("\n"));
  const declared = new Map<string, string>();
  for (const line of text.trimEnd().split("\n")) {
    const type = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
    if (type !== null) {
      assert.ok(!declared.has(type[1]), `${type[1]} declared twice`);
      declared.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const sample = /^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+-]+)$/.exec(line);
    assert.ok(sample !== null, `not a sample line: ${line}`);
    const family = sample[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(declared.has(sample[1]) || declared.get(family) === "histogram", line);
  }
  assert.equal(declared.get("aster_errors_total"), "counter");
  assert.equal(declared.get("aster_node_up"), "gauge");
  assert.equal(
    _sample(
      text,
      'aster_build_info{version="9.9.9",deno="2.9.6",runtime="deno",runtime_version="2.9.6"}',
    ),
    1,
  );
  assert.equal(_sample(text, "aster_worker_restarts_total"), 3);
  assert.equal(_sample(text, 'aster_errors_total{cluster="c",kind="output_limit"}'), 1);
  assert.equal(_sample(text, 'aster_redirects_total{cluster="c",type="moved"}'), 2);
  assert.equal(_sample(text, 'aster_client_bytes_out_total{cluster="c"}'), 20);
});

Deno.test("renderPrometheus() renders histogram buckets cumulatively up to +Inf", () => {
  const node = _node("c", "n1");
  node.latency.counts[0] = 2;
  node.latency.counts[3] = 1;
  node.latency.counts[LATENCY_BUCKETS.length] = 4;
  node.latency.sum = 12.5;
  const text = renderPrometheus(sumSnapshots([_worker((s) => s.nodes.push(node))]), INFO);
  const bucket = (le: string) =>
    _sample(text, `aster_backend_request_seconds_bucket{cluster="c",node="n1",le="${le}"}`);
  assert.equal(bucket(String(LATENCY_BUCKETS[0])), 2);
  assert.equal(bucket(String(LATENCY_BUCKETS[2])), 2);
  assert.equal(bucket(String(LATENCY_BUCKETS[3])), 3);
  assert.equal(bucket(String(LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1])), 3);
  assert.equal(bucket("+Inf"), 7);
  assert.equal(_sample(text, 'aster_backend_request_seconds_count{cluster="c",node="n1"}'), 7);
  assert.equal(_sample(text, 'aster_backend_request_seconds_sum{cluster="c",node="n1"}'), 12.5);
});

Deno.test("renderPrometheus() escapes backslashes, quotes and newlines in label values", () => {
  const snap = sumSnapshots([_worker((s) => s.nodes.push(_node('we"ird\\na\nme', "n")))]);
  const text = renderPrometheus(snap, INFO);
  assert.equal(_sample(text, 'aster_node_up{cluster="we\\"ird\\\\na\\nme",node="n"}'), 1);
});
