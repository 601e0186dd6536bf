/**
 * Builds a real Redis Cluster (3 masters, 3 replicas) of redis-servers on free 127.0.0.1
 * ports for integration tests, and inspects, reshards and stops it.
 */
import { RespClient, RespErrorReply, type RespValue, text } from "./resp_client.ts";
import { freePort, type ServerProcess, startRedis } from "./servers.ts";
import { SLOT_COUNT } from "../../src/cluster/slot_table.ts";

const HOST = "127.0.0.1";
const NODE_COUNT = 6;
/** `cluster-node-timeout` unless told otherwise, ms. */
const DEFAULT_NODE_TIMEOUT_MS = 1000;
/** Longest wait for a new cluster, or a changed one, to become healthy. */
const HEALTHY_TIMEOUT_MS = 20_000;
/** Longest run of `redis-cli --cluster create`. */
const CREATE_TIMEOUT_MS = 30_000;
/** Pause between health probes. */
const POLL_INTERVAL_MS = 50;
/** Reply wait when probing a node; a node slower than this counts as unreachable. */
const PROBE_TIMEOUT_MS = 1000;
/** Reply wait for commands that change the cluster. */
const COMMAND_TIMEOUT_MS = 5000;
/** MIGRATE's own timeout, ms (below COMMAND_TIMEOUT_MS). */
const MIGRATE_TIMEOUT_MS = 3000;
/** Keys per GETKEYSINSLOT / MIGRATE batch unless told otherwise. */
const DEFAULT_BATCH = 100;
/** Whole-set retries when a node cannot start (a port taken in between). */
const START_ATTEMPTS = 3;

/** Options for `RedisCluster.migrateSlot`. */
export interface MigrateSlotOptions {
  /** Sleep after the slot enters MIGRATING/IMPORTING, after each key batch, ms. @default 0 */
  pauseMs?: number;
  /** Runs once the slot is MIGRATING on the source and IMPORTING on the target, before any key moves. */
  onMigrating?: () => Promise<void>;
  /** Keys per GETKEYSINSLOT and MIGRATE. @default 100 */
  batchSize?: number;
}

/** Options for `RedisCluster.failover`. */
export interface FailoverOptions {
  /** CLUSTER FAILOVER mode; FORCE and TAKEOVER work when the master is down. @default none */
  mode?: "FORCE" | "TAKEOVER";
  /** Longest wait for the promotion and a healthy cluster. @default 20000 */
  timeoutMs?: number;
}

/** A running Redis Cluster; `await using` stops every node. */
export interface RedisCluster extends AsyncDisposable {
  /** All six nodes, in start order (roles change with failovers). */
  nodes: ServerProcess[];
  /** Current masters not flagged `fail`, per CLUSTER NODES of the first reachable node. */
  masters(): Promise<ServerProcess[]>;
  /** Replicas of `master` not flagged `fail`, per CLUSTER NODES of the first reachable node. */
  replicasOf(master: ServerProcess): Promise<ServerProcess[]>;
  /** The master serving `slot`, per CLUSTER SLOTS of the first reachable node. */
  ownerOf(slot: number): Promise<ServerProcess>;
  /** "127.0.0.1:port" for each node. */
  seeds(): string[];
  /** "127.0.0.1:port" of each node's TLS port (a cluster started with `tls`), else []. */
  tlsSeeds(): string[];
  /**
   * Waits until every reachable node reports cluster_state:ok, all agree on a CLUSTER SLOTS
   * map covering the 16384 slots in which every node is reachable (so a dead master must
   * have been failed over and a dead replica flagged `fail`), every node's own role matches
   * that map and every replica has master_link_status:up. A node that refuses connections
   * or does not answer within 1 s counts as unreachable. @default timeoutMs 20000
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Sends CLUSTER FAILOVER (with `opts.mode`) to `replica` and waits until every reachable
   * node sees it serve slots and the cluster is healthy. (CLUSTER FAILOVER replies OK before
   * the promotion, so a bare `waitHealthy()` right after it still sees the old roles.)
   */
  failover(replica: ServerProcess, opts?: FailoverOptions): Promise<void>;
  /**
   * Moves `slot` with its keys from its owner to `target`: SETSLOT IMPORTING on the target,
   * SETSLOT MIGRATING on the source, MIGRATE of the keys in batches (COUNTKEYSINSLOT,
   * GETKEYSINSLOT), then SETSLOT NODE on the target, the source and the other masters, and
   * waits until the cluster is healthy with every node agreeing. Does nothing when `target`
   * already owns the slot.
   */
  migrateSlot(slot: number, target: ServerProcess, opts?: MigrateSlotOptions): Promise<void>;
  /** Stops every node (idempotent). */
  stop(): Promise<void>;
}

/**
 * A cluster whose nodes also listen with TLS and speak TLS among themselves
 * (`--tls-cluster yes --tls-replication yes`); each keeps a plain port for the helper's
 * probes. PEM file paths; clients need no certificate.
 */
export interface ClusterTls {
  cert: string;
  key: string;
  ca: string;
}

/** The TLS ports of nodes started with `tls`, by their node list. */
const tlsPorts = new WeakMap<ServerProcess[], number[]>();

/**
 * Starts six cluster-enabled redis-servers, joins them with `redis-cli --cluster create
 * --cluster-replicas 1` and waits until the cluster is healthy. Stops every node if any
 * step fails.
 */
export async function startRedisCluster(
  opts: { nodeTimeoutMs?: number; tls?: ClusterTls } = {},
): Promise<RedisCluster> {
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  if (!Number.isInteger(nodeTimeoutMs) || nodeTimeoutMs < 50) {
    throw new RangeError(`nodeTimeoutMs must be an integer >= 50, got ${nodeTimeoutMs}`);
  }
  let nodes: ServerProcess[] | null = null;
  let lastError: unknown = null;
  for (let attempt = 0; attempt < START_ATTEMPTS && nodes === null; attempt++) {
    try {
      nodes = await _startNodes(nodeTimeoutMs, opts.tls);
    } catch (error) {
      lastError = error;
    }
  }
  if (nodes === null) throw new Error("could not start cluster nodes", { cause: lastError });
  const cluster = new _Cluster(nodes, opts.tls ? tlsPorts.get(nodes) ?? [] : []);
  try {
    await _createCluster(opts.tls ? cluster.tlsSeeds() : cluster.seeds(), opts.tls);
    await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
    // CLUSTER NODES may still call a just-attached replica a master: wait until it does not.
    await settledMasters(cluster, NODE_COUNT / 2);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/**
 * Runs one command against 127.0.0.1:`port` on a fresh connection and returns its reply
 * (an error reply is returned as a `RespErrorReply`, not thrown).
 */
export async function nodeCommand(
  port: number,
  args: (string | Uint8Array)[],
): Promise<RespValue> {
  return await _command(port, args, COMMAND_TIMEOUT_MS);
}

/** One line of CLUSTER NODES. */
interface _NodeEntry {
  id: string;
  port: number;
  flags: Set<string>;
  /** The master's id for a replica, null for a master. */
  masterId: string | null;
}

/** What one node says about itself and the cluster, for the health check. */
interface _NodeReport {
  port: number;
  state: string;
  role: string;
  masterPort: number | null;
  linkUp: boolean;
  /** Normalized CLUSTER SLOTS, or an error text. */
  slots: _SlotRange[] | string;
}

interface _SlotRange {
  first: number;
  last: number;
  master: number;
  replicas: number[];
}

class _Cluster implements RedisCluster {
  readonly nodes: ServerProcess[];
  readonly #tlsPorts: number[];
  #stopping: Promise<void> | null = null;

  constructor(nodes: ServerProcess[], tlsPorts: number[]) {
    this.nodes = nodes;
    this.#tlsPorts = tlsPorts;
  }

  seeds(): string[] {
    return this.nodes.map((node) => `${HOST}:${node.port}`);
  }

  tlsSeeds(): string[] {
    return this.#tlsPorts.map((port) => `${HOST}:${port}`);
  }

  async masters(): Promise<ServerProcess[]> {
    const entries = await this.#clusterNodes();
    const ports = new Set(
      entries.filter((entry) => entry.flags.has("master") && _usable(entry)).map((e) => e.port),
    );
    return this.nodes.filter((node) => ports.has(node.port));
  }

  async replicasOf(master: ServerProcess): Promise<ServerProcess[]> {
    const entries = await this.#clusterNodes();
    const self = entries.find((entry) => entry.port === master.port);
    if (!self) throw new Error(`node ${master.port} is not in CLUSTER NODES`);
    const ports = new Set(
      entries.filter((entry) => entry.masterId === self.id && _usable(entry)).map((e) => e.port),
    );
    return this.nodes.filter((node) => ports.has(node.port));
  }

  async ownerOf(slot: number): Promise<ServerProcess> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) {
      throw new RangeError(`slot must be an integer in 0..${SLOT_COUNT - 1}, got ${slot}`);
    }
    const ranges = await this.#firstAnswer(async (port) => {
      const parsed = _parseSlots(await _command(port, ["CLUSTER", "SLOTS"], PROBE_TIMEOUT_MS));
      if (typeof parsed === "string") throw new Error(`${port}: ${parsed}`);
      return parsed;
    });
    const range = ranges.find((r) => r.first <= slot && slot <= r.last);
    if (!range) throw new Error(`slot ${slot} is not served by any node`);
    return this.#node(range.master);
  }

  waitHealthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<void> {
    return this.#waitHealthyAnd(timeoutMs, () => null);
  }

  async failover(replica: ServerProcess, opts: FailoverOptions = {}): Promise<void> {
    const args = ["CLUSTER", "FAILOVER", ...(opts.mode ? [opts.mode] : [])];
    await _ok(replica.port, args);
    await this.#waitHealthyAnd(opts.timeoutMs ?? HEALTHY_TIMEOUT_MS, (ranges) => {
      if (ranges.some((range) => range.master === replica.port)) return null;
      return `${replica.port} does not serve any slot yet`;
    });
  }

  /** Waits until the cluster is healthy and `also` finds nothing wrong with its slot map. */
  async #waitHealthyAnd(
    timeoutMs: number,
    also: (ranges: _SlotRange[]) => string | null,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const maxRounds = Math.ceil(timeoutMs / POLL_INTERVAL_MS) + 1;
    let problem = "not checked";
    for (let round = 0; round < maxRounds && Date.now() < deadline; round++) {
      const reports = await Promise.all(this.nodes.map((node) => _report(node.port)));
      const reachable = reports.filter((r): r is _NodeReport => r !== null);
      const found = _healthProblem(reachable) ?? also(reachable[0].slots as _SlotRange[]);
      if (found === null) return;
      problem = found;
      await _sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`cluster not healthy within ${timeoutMs} ms: ${problem}`);
  }

  async migrateSlot(
    slot: number,
    target: ServerProcess,
    opts: MigrateSlotOptions = {},
  ): Promise<void> {
    const batch = opts.batchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`bad batchSize ${batch}`);
    const pause = () => opts.pauseMs ? _sleep(opts.pauseMs) : Promise.resolve();
    const source = await this.ownerOf(slot);
    if (source.port === target.port) return;
    const sourceId = _string(await _ok(source.port, ["CLUSTER", "MYID"]));
    const targetId = _string(await _ok(target.port, ["CLUSTER", "MYID"]));
    const at = `${slot}`;
    // Importing first, so the target already accepts ASKING when the source starts to redirect.
    await _ok(target.port, ["CLUSTER", "SETSLOT", at, "IMPORTING", sourceId]);
    await _ok(source.port, ["CLUSTER", "SETSLOT", at, "MIGRATING", targetId]);
    await opts.onMigrating?.();
    await pause();
    // Keys only leave the source while it is MIGRATING (new keys go to the target by ASK).
    const total = Number(await _ok(source.port, ["CLUSTER", "COUNTKEYSINSLOT", at]));
    const maxBatches = Math.ceil(total / batch) + 10;
    for (let i = 0;; i++) {
      if (i >= maxBatches) throw new Error(`slot ${slot} still holds keys after ${i} batches`);
      const keys = await _ok(source.port, ["CLUSTER", "GETKEYSINSLOT", at, `${batch}`]);
      if (!Array.isArray(keys) || keys.length === 0) break;
      const reply = await _ok(source.port, [
        "MIGRATE",
        HOST,
        `${target.port}`,
        "",
        "0",
        `${MIGRATE_TIMEOUT_MS}`,
        "KEYS",
        ...keys.filter((key): key is Uint8Array => key instanceof Uint8Array),
      ]);
      if (reply !== "OK" && reply !== "NOKEY") throw new Error(`MIGRATE replied ${reply}`);
      await pause();
    }
    // Target first (it bumps its config epoch), then the source, then everyone else.
    await _ok(target.port, ["CLUSTER", "SETSLOT", at, "NODE", targetId]);
    await _ok(source.port, ["CLUSTER", "SETSLOT", at, "NODE", targetId]);
    const others = (await this.masters()).filter((m) => m !== source && m !== target);
    for (const master of others) {
      let reply: RespValue;
      try {
        reply = await nodeCommand(master.port, ["CLUSTER", "SETSLOT", at, "NODE", targetId]);
      } catch {
        continue; // unreachable: it learns the new owner by gossip when it is back
      }
      if (reply instanceof RespErrorReply) {
        throw new Error(`${master.port}: SETSLOT NODE: ${reply.message}`);
      }
    }
    await this.#waitHealthyAnd(HEALTHY_TIMEOUT_MS, (ranges) => {
      const owner = ranges.find((r) => r.first <= slot && slot <= r.last)?.master;
      return owner === target.port ? null : `slot ${slot} is still on ${owner}`;
    });
  }

  stop(): Promise<void> {
    this.#stopping ??= Promise.all(this.nodes.map((node) => node.stop())).then(() => {});
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #node(port: number): ServerProcess {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`the cluster names a node on port ${port} that is not ours`);
    return node;
  }

  #clusterNodes(): Promise<_NodeEntry[]> {
    return this.#firstAnswer(async (port) =>
      _parseNodes(_string(await _ok(port, ["CLUSTER", "NODES"], PROBE_TIMEOUT_MS)))
    );
  }

  /** The answer of the first node, in start order, that gives one. */
  async #firstAnswer<T>(ask: (port: number) => Promise<T>): Promise<T> {
    const errors: string[] = [];
    for (const node of this.nodes) {
      try {
        return await ask(node.port);
      } catch (error) {
        errors.push(`${node.port}: ${error instanceof Error ? error.message : error}`);
      }
    }
    throw new Error(`no cluster node answered: ${errors.join("; ")}`);
  }
}

/** Starts the six nodes on distinct free ports (client and bus); stops them all on failure. */
async function _startNodes(nodeTimeoutMs: number, tls?: ClusterTls): Promise<ServerProcess[]> {
  const ports = await _distinctFreePorts(NODE_COUNT * (tls ? 3 : 2));
  const tlsArgs = (i: number) =>
    tls
      ? [
        "--tls-port",
        `${ports[2 * NODE_COUNT + i]}`,
        "--tls-cert-file",
        tls.cert,
        "--tls-key-file",
        tls.key,
        "--tls-ca-cert-file",
        tls.ca,
        "--tls-cluster",
        "yes",
        "--tls-replication",
        "yes",
        "--tls-auth-clients",
        "no",
      ] // deno-fmt-ignore
      : [];
  const started = await Promise.allSettled(
    Array.from({ length: NODE_COUNT }, (_, i) => {
      const port = ports[i];
      return startRedis({
        port,
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `nodes-${port}.conf`,
          "--cluster-node-timeout",
          `${nodeTimeoutMs}`,
          // An explicit bus port: port + 10000 may be taken or above 65535.
          "--cluster-port",
          `${ports[NODE_COUNT + i]}`,
          // A replica may always fail over, however long its master was silent.
          "--cluster-replica-validity-factor",
          "0",
          // Full syncs start at once rather than after the default 5 s.
          "--repl-diskless-sync-delay",
          "0",
          ...tlsArgs(i),
        ],
      });
    }),
  );
  const nodes = started.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw failed.reason;
  }
  if (tls) tlsPorts.set(nodes, ports.slice(2 * NODE_COUNT));
  return nodes;
}

async function _distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < count * 20 && ports.size < count; i++) ports.add(await freePort());
  if (ports.size < count) throw new Error(`found only ${ports.size} distinct free ports`);
  return [...ports];
}

/** `redis-cli --cluster create` over `seeds`, one replica per master, bounded in time. */
async function _createCluster(seeds: string[], tls?: ClusterTls): Promise<void> {
  let output: Deno.CommandOutput;
  const tlsArgs = tls ? ["--tls", "--cacert", tls.ca] : [];
  try {
    output = await new Deno.Command("redis-cli", {
      args: [
        ...tlsArgs,
        "--cluster",
        "create",
        ...seeds,
        "--cluster-replicas",
        "1",
        "--cluster-yes",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(CREATE_TIMEOUT_MS),
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("redis-cli not found: install with apt-get install -y redis-tools");
    }
    throw error;
  }
  if (!output.success) {
    const decoder = new TextDecoder();
    const said = (decoder.decode(output.stdout) + decoder.decode(output.stderr))
      .replace(new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g"), "");
    const how = output.signal ? `killed by ${output.signal}` : `exit code ${output.code}`;
    throw new Error(`redis-cli --cluster create failed (${how}):\n${said.slice(-3000)}`);
  }
}

/** What the node on `port` says, or null when it is unreachable or too slow. */
async function _report(port: number): Promise<_NodeReport | null> {
  let replies: RespValue[];
  try {
    await using client = await RespClient.connect(port);
    client.timeoutMs = PROBE_TIMEOUT_MS;
    // One by one: RespClient.pipeline() leaves its write rejecting unhandled when the
    // server resets the connection (a node being killed), which fails the whole test.
    replies = [
      await client.command("CLUSTER", "INFO"),
      await client.command("INFO", "replication"),
      await client.command("CLUSTER", "SLOTS"),
    ];
  } catch {
    return null;
  }
  const [info, replication, slots] = replies;
  const field = (reply: RespValue, name: string) => {
    if (!(reply instanceof Uint8Array)) return "";
    return new RegExp(`^${name}:(.*)$`, "m").exec(_string(reply))?.[1]?.trim() ?? "";
  };
  const masterPort = field(replication, "master_port");
  return {
    port,
    state: info instanceof RespErrorReply ? info.message : field(info, "cluster_state"),
    role: field(replication, "role"),
    masterPort: masterPort === "" ? null : Number(masterPort),
    linkUp: field(replication, "master_link_status") === "up",
    slots: _parseSlots(slots),
  };
}

/** Why the reachable nodes do not make a healthy cluster, or null when they do. */
function _healthProblem(reports: _NodeReport[]): string | null {
  if (reports.length === 0) return "no node reachable";
  for (const report of reports) {
    if (report.state !== "ok") return `${report.port}: cluster_state:${report.state}`;
    if (typeof report.slots === "string") return `${report.port}: ${report.slots}`;
  }
  const maps = reports.map((r) => JSON.stringify(r.slots));
  const differs = maps.findIndex((map) => map !== maps[0]);
  if (differs > 0) {
    return `CLUSTER SLOTS differs: ${reports[0].port} says ${maps[0]}, ` +
      `${reports[differs].port} says ${maps[differs]}`;
  }
  const ranges = reports[0].slots as _SlotRange[];
  let next = 0;
  for (const range of ranges) {
    if (range.first !== next) return `slots ${next}..${range.first - 1} are not covered`;
    next = range.last + 1;
  }
  if (next !== SLOT_COUNT) return `slots ${next}..${SLOT_COUNT - 1} are not covered`;
  const reachable = new Set(reports.map((r) => r.port));
  for (const range of ranges) {
    const missing = [range.master, ...range.replicas].find((port) => !reachable.has(port));
    if (missing !== undefined) return `${missing} is in CLUSTER SLOTS but unreachable`;
  }
  for (const report of reports) {
    const serves = ranges.find((r) => r.master === report.port);
    const replicates = ranges.find((r) => r.replicas.includes(report.port));
    if (serves && report.role !== "master") return `${report.port} serves slots as ${report.role}`;
    if (replicates && (report.role !== "slave" || report.masterPort !== replicates.master)) {
      return `${report.port} is listed as a replica of ${replicates.master} but says ` +
        `role:${report.role} master_port:${report.masterPort}`;
    }
    if (report.role === "slave" && !report.linkUp) {
      return `${report.port}: master_link_status is not up`;
    }
  }
  return null;
}

/** CLUSTER SLOTS as ranges sorted by first slot, replicas sorted by port; or an error text. */
function _parseSlots(reply: RespValue): _SlotRange[] | string {
  if (reply instanceof RespErrorReply) return `CLUSTER SLOTS: ${reply.message}`;
  if (!Array.isArray(reply)) return "CLUSTER SLOTS reply is not an array";
  const ranges: _SlotRange[] = [];
  for (const entry of reply) {
    if (!Array.isArray(entry) || entry.length < 3) return "CLUSTER SLOTS entry is malformed";
    const [first, last, ...servers] = entry;
    const ports = servers.map((server) => Array.isArray(server) ? server[1] : null);
    if (
      typeof first !== "number" || typeof last !== "number" || first < 0 || first > last ||
      last >= SLOT_COUNT || !ports.every((port) => typeof port === "number")
    ) {
      return `CLUSTER SLOTS entry is malformed: ${JSON.stringify(text(entry))}`;
    }
    const [master, ...replicas] = ports as number[];
    ranges.push({ first, last, master, replicas: replicas.sort((a, b) => a - b) });
  }
  return ranges.sort((a, b) => a.first - b.first);
}

/** CLUSTER NODES text as entries (hostnames after "," and slot lists are ignored). */
function _parseNodes(body: string): _NodeEntry[] {
  const entries: _NodeEntry[] = [];
  for (const line of body.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields.length < 8) continue;
    const [id, address, flags, master] = fields;
    const hostPort = address.split("@")[0].split(",")[0];
    const port = Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
    entries.push({
      id,
      port,
      flags: new Set(flags.split(",")),
      masterId: master === "-" ? null : master,
    });
  }
  return entries;
}

/** Not failed, and with a known address. */
function _usable(entry: _NodeEntry): boolean {
  return !entry.flags.has("fail") && !entry.flags.has("noaddr") && !entry.flags.has("handshake");
}

async function _command(
  port: number,
  args: (string | Uint8Array)[],
  timeoutMs: number,
): Promise<RespValue> {
  await using client = await RespClient.connect(port);
  client.timeoutMs = timeoutMs;
  return await client.command(...args);
}

/** Runs a command and throws when it replies with an error. */
async function _ok(
  port: number,
  args: (string | Uint8Array)[],
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<RespValue> {
  const reply = await _command(port, args, timeoutMs);
  if (reply instanceof RespErrorReply) {
    const shown = args.map((arg) => typeof arg === "string" ? arg : "<key>").slice(0, 6);
    throw new Error(`${port}: ${shown.join(" ")}: ${reply.message}`);
  }
  return reply;
}

function _string(value: RespValue): string {
  const shown = text(value);
  if (typeof shown !== "string") throw new Error(`expected a string reply, got ${shown}`);
  return shown;
}

function _sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The `count` masters, once every node's gossip agrees (CLUSTER NODES of the first node may
 * still call a just-attached replica a master right after the cluster is healthy).
 */
export async function settledMasters(cluster: RedisCluster, count = 3): Promise<ServerProcess[]> {
  const deadline = Date.now() + 10_000;
  let masters: ServerProcess[] = [];
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    masters = await cluster.masters();
    if (masters.length === count) return masters;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${masters.length} masters after 10 s: ${masters.map((m) => m.port)}`);
}
