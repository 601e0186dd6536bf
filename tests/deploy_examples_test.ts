/**
 * docs/examples/ (docs/deploy.md): each file parsed by its own tool or parser, every Aster
 * config in them validated, and every metric name and error kind the dashboard and alert
 * rules use checked against what src/metrics/prometheus.ts renders. HAProxy's is also run by
 * haproxy_test.ts.
 */
import assert from "node:assert/strict";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { parse as parseToml } from "smol-toml";
import { type Config, validate } from "../src/config/schema.ts";
import { renderPrometheus } from "../src/metrics/prometheus.ts";
import { emptySnapshot } from "../src/metrics/worker_metrics.ts";

const EXAMPLES = new URL("../docs/examples/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, EXAMPLES));

/** Metric families the renderer declares (`# TYPE name type`), with their types. */
function families(): Map<string, string> {
  const text = renderPrometheus(emptySnapshot(), {
    version: "0",
    deno: "0",
    runtime: "deno",
    runtimeVersion: "0",
    workerRestarts: 0,
  });
  const out = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(match[1], match[2]);
  return out;
}

/** The error kinds of `aster_errors_total`, from the ErrorKind union. */
async function errorKinds(): Promise<Set<string>> {
  const source = await Deno.readTextFile(
    new URL("../src/metrics/worker_metrics.ts", import.meta.url),
  );
  const union = /export type ErrorKind =([^;]+);/.exec(source);
  assert.ok(union, "ErrorKind union not found");
  return new Set([...union[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]));
}

/** Every aster_* name in `expr` is a family, or a histogram family's _bucket/_sum/_count. */
function checkNames(expr: string, known: Map<string, string>, where: string): string[] {
  const names = [...expr.matchAll(/\baster_[a-z_]+/g)].map((m) => m[0]);
  for (const name of names) {
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const ok = known.has(name) || (base !== name && known.get(base) === "histogram");
    assert.ok(ok, `${where}: ${name} is not a metric Aster renders`);
  }
  return names;
}

function checkKinds(expr: string, kinds: Set<string>, where: string): void {
  for (const match of expr.matchAll(/\bkind=~?"([^"]+)"/g)) {
    for (const kind of match[1].split("|")) {
      assert.ok(kinds.has(kind), `${where}: error kind ${kind} is not one Aster counts`);
    }
  }
}

function validConfig(text: string, where: string): Config {
  const result = validate(parseToml(text));
  assert.ok(result.ok, `${where}: ${result.ok ? "" : result.errors.join("; ")}`);
  return result.config;
}

Deno.test("haproxy.cfg: haproxy -c accepts it, with checks on /healthz and a PROXY header", async () => {
  const text = await read("haproxy.cfg");
  assert.match(text, /^\s*mode tcp$/m);
  assert.match(text, /^\s*option httpchk GET \/healthz$/m);
  assert.match(text, /\bsend-proxy-v2\b/);
  const check = await new Deno.Command("haproxy", {
    args: ["-c", "-f", new URL("haproxy.cfg", EXAMPLES).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(check.stdout) + new TextDecoder().decode(check.stderr);
  assert.equal(check.code, 0, said);
  assert.match(said, /Configuration file is valid/);
});

Deno.test("kubernetes.yaml: a valid Aster config, probes on its /healthz, grace above the drain", async () => {
  const docs = parseAllDocuments(await read("kubernetes.yaml"));
  for (const doc of docs) assert.deepEqual(doc.errors, []);
  const objects = docs.map((doc) => doc.toJS());
  const byKind = new Map(objects.map((o) => [o.kind, o]));
  assert.deepEqual([...byKind.keys()].sort(), ["ConfigMap", "Deployment", "Service"]);
  const config = validConfig(byKind.get("ConfigMap").data["aster.toml"], "ConfigMap aster.toml");
  assert.ok(config.metricsAddr, "metrics_addr set, for the probes");
  const [cluster] = config.clusters;

  const deployment = byKind.get("Deployment");
  const pod = deployment.spec.template.spec;
  assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
  const [container] = pod.containers;
  const ports = new Map(
    container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
  );
  assert.equal(ports.get("metrics"), config.metricsAddr!.port);
  assert.equal(ports.get("redis"), cluster.listenPort);
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.equal(probe.httpGet.path, "/healthz");
    assert.equal(ports.get(probe.httpGet.port) ?? probe.httpGet.port, config.metricsAddr!.port);
  }
  // The readiness probe sees the 503 within drain_delay; SIGKILL comes after the drain.
  const readiness = container.readinessProbe;
  assert.ok(readiness.periodSeconds * readiness.failureThreshold * 1000 < cluster.drainDelay);
  assert.ok(
    pod.terminationGracePeriodSeconds * 1000 > cluster.drainDelay + cluster.shutdownTimeout,
  );
  const volume = pod.volumes.find((v: { name: string }) => v.name === "config");
  assert.equal(volume.configMap.name, byKind.get("ConfigMap").metadata.name);
  const mount = container.volumeMounts.find((m: { name: string }) => m.name === "config");
  const configArg = container.args[container.args.indexOf("--config") + 1];
  assert.equal(configArg, `${mount.mountPath}/aster.toml`);

  const service = byKind.get("Service");
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  assert.equal(service.spec.ports[0].targetPort, "redis");
});

/** `[section]` -> key -> values (systemd allows a key more than once). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(pair && current, `aster.service line ${i + 1}: ${raw}`);
    current.set(pair[1], [...(current.get(pair[1]) ?? []), pair[2]]);
  }
  return sections;
}

Deno.test("aster.service: the keys a stop and a reload need; systemd-analyze verify is clean", async () => {
  const text = await read("aster.service");
  const unit = parseUnit(text);
  assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
  const service = unit.get("Service")!;
  const one = (key: string) => {
    const values = service.get(key);
    assert.equal(values?.length, 1, `Service.${key} once`);
    return values![0];
  };
  assert.match(one("ExecStart"), /^\/\S+\/aster-proxy --config \/\S+\.toml$/);
  assert.match(one("ExecReload"), /kill -HUP \$MAINPID$/);
  assert.equal(one("KillSignal"), "SIGTERM");
  assert.equal(one("Restart"), "on-failure");
  assert.ok(Number(one("LimitNOFILE")) >= 10_000 * 2, "descriptors for max_clients' default");
  // The Kubernetes example's drain_delay + shutdown_timeout, the sizes the docs recommend.
  const k8s = parseAllDocuments(await read("kubernetes.yaml")).map((d) => d.toJS());
  const toml = k8s.find((o) => o.kind === "ConfigMap").data["aster.toml"];
  const [cluster] = validConfig(toml, "kubernetes.yaml").clusters;
  assert.ok(Number(one("TimeoutStopSec")) * 1000 > cluster.drainDelay + cluster.shutdownTimeout);
  assert.deepEqual(unit.get("Install")!.get("WantedBy"), ["multi-user.target"]);

  // systemd's own check, with ExecStart pointed at an executable that exists here.
  const dir = await Deno.makeTempDir({ prefix: "aster-unit-" });
  try {
    await Deno.writeTextFile(`${dir}/aster-proxy`, "#!/bin/sh\n", { mode: 0o755 });
    const path = `${dir}/aster.service`;
    await Deno.writeTextFile(path, text.replace(/^ExecStart=\S+/m, `ExecStart=${dir}/aster-proxy`));
    let result: Deno.CommandOutput;
    try {
      result = await new Deno.Command("systemd-analyze", {
        args: ["verify", "--man=no", path],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return; // no systemd here: the key checks stand
      throw err;
    }
    const said = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, said);
    // Unknown or misspelt keys are only warnings there: none allowed here.
    assert.doesNotMatch(said, /Unknown|ignoring|Failed|Invalid/i, said);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("grafana-dashboard.json: JSON, unique panel ids, every metric one Aster renders", async () => {
  const dashboard = JSON.parse(await read("grafana-dashboard.json"));
  const known = families();
  const kinds = await errorKinds();
  assert.equal(typeof dashboard.title, "string");
  assert.equal(typeof dashboard.uid, "string");
  const ids = dashboard.panels.map((p: { id: number }) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids unique");
  const used = new Set<string>();
  for (const panel of dashboard.panels) {
    assert.ok(panel.targets.length > 0, `panel ${panel.title} has queries`);
    const refIds = panel.targets.map((t: { refId: string }) => t.refId);
    assert.equal(new Set(refIds).size, refIds.length, `${panel.title}: refIds unique`);
    for (const target of panel.targets) {
      const names = checkNames(target.expr, known, `panel "${panel.title}"`);
      assert.ok(names.length > 0, `panel "${panel.title}": ${target.expr} uses no Aster metric`);
      checkKinds(target.expr, kinds, `panel "${panel.title}"`);
      for (const name of names) used.add(name.replace(/_(bucket|sum|count)$/, ""));
    }
  }
  for (const variable of dashboard.templating.list) {
    if (typeof variable.query === "string") checkNames(variable.query, known, variable.name);
  }
  // The dashboard leaves no family out (a new metric shows up here when it is added).
  assert.deepEqual([...known.keys()].filter((name) => !used.has(name)), []);
});

Deno.test("alerts.yaml: rule groups over Aster's metrics: node down, ejections, errors, output limit", async () => {
  const doc = parseYaml(await read("alerts.yaml"));
  const known = families();
  const kinds = await errorKinds();
  const rules: { alert: string; expr: string; labels: Record<string, string> }[] = doc.groups
    .flatMap((group: { name: string; rules: unknown[] }) => {
      assert.equal(typeof group.name, "string");
      return group.rules;
    });
  const names = rules.map((rule) => rule.alert);
  assert.equal(new Set(names).size, names.length, "alert names unique");
  const exprOf = new Map<string, string>();
  for (const rule of rules) {
    assert.match(rule.alert, /^[A-Z][A-Za-z]+$/);
    assert.equal(typeof rule.expr, "string");
    assert.ok(["critical", "warning"].includes(rule.labels.severity), rule.alert);
    const annotations = (rule as unknown as { annotations: Record<string, string> }).annotations;
    assert.equal(typeof annotations.summary, "string", `${rule.alert}: summary`);
    checkNames(rule.expr, known, rule.alert);
    checkKinds(rule.expr, kinds, rule.alert);
    exprOf.set(rule.alert, rule.expr);
  }
  const covers = (pattern: RegExp) => [...exprOf.values()].some((expr) => pattern.test(expr));
  assert.ok(covers(/aster_node_up\b.*== 0/), "a node-down rule");
  assert.ok(covers(/aster_node_ejected\b/), "an ejection rule");
  assert.ok(
    covers(/aster_errors_total\{kind="backend"\}.*\/.*aster_commands_total/s),
    "error rate",
  );
  assert.ok(covers(/aster_errors_total\{kind="output_limit"\}/), "output-limit closes");
});

Deno.test("docs/deploy.md: its TOML examples are valid configs and it links every example", async () => {
  const text = await Deno.readTextFile(new URL("../docs/deploy.md", import.meta.url));
  const blocks = [...text.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length > 0);
  for (const block of blocks) validConfig(block, "docs/deploy.md");
  for await (const entry of Deno.readDir(EXAMPLES)) {
    assert.ok(text.includes(`(examples/${entry.name})`), `docs/deploy.md links ${entry.name}`);
  }
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  assert.match(readme, /\(docs\/deploy\.md\)/, "README links docs/deploy.md");
});
