/** INFO and SLOWLOG, answered by Aster in the Redis modes from this worker's counters. */
import { CLIENT_STATES, type ClientState, type ClusterMetrics } from "../metrics/worker_metrics.ts";
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  OK_REPLY,
} from "../protocol/resp/encoder.ts";
import { VERSION } from "../version.ts";
import { parseLongLong } from "../protocol/resp/bytes.ts";
import { sockets } from "../io/sockets.ts";
import { runtime } from "../runtime/runtime.ts";

const decoder = new TextDecoder();

/** As redis-server's `uname` line, from what the runtime knows without the sys permission. */
const OS = `${
  { linux: "Linux", darwin: "Darwin", windows: "Windows" }[runtime.os] ??
    runtime.os
} ${runtime.arch}`;
/** `deno_version`, as before there was another runtime; absent on the others. */
const DENO_VERSION: [string, string][] = runtime.name === "deno"
  ? [["deno_version", runtime.version]]
  : [];
/** 40 hex characters like redis-server's, fixed for this worker's life. */
const RUN_ID = Array.from(crypto.getRandomValues(new Uint8Array(20)))
  .map((byte) => byte.toString(16).padStart(2, "0")).join("");

/** The port of "host:port" / "[v6]:port". */
function _port(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}

function _section(title: string, fields: [string, string | number][]): string {
  return `# ${title}\r\n${fields.map(([k, v]) => `${k}:${v}`).join("\r\n")}\r\n`;
}

/**
 * INFO's `# Cluster` section, as redis-server has it: cluster-aware clients (redis-py's
 * RedisCluster) refuse a node without `cluster_enabled:1`; in `redis_cluster` mode Aster
 * is such a node, a one-node cluster (see cluster_local.ts). Near the end, as in Redis.
 */
function _clusterSection(cacheType: string): string {
  return _section("Cluster", [["cluster_enabled", cacheType === "redis_cluster" ? 1 : 0]]);
}

/** INFO [section ...]: server, clients, stats, backends (this worker's view; never secrets). */
export function infoReply(metrics: ClusterMetrics, argv: readonly Uint8Array[]): Uint8Array {
  return encodeBulk(infoText(metrics, argv));
}

/** The sections INFO's arguments name (lower case; "default" with none), as Redis 7 reads them. */
function _infoWords(argv: readonly Uint8Array[]): string[] {
  return argv.length > 1
    ? argv.slice(1).map((arg) => decoder.decode(arg).toLowerCase())
    : ["default"];
}

/** Whether INFO's arguments ask for `keyspace`: the backends' section (summed), not Aster's. */
export function infoWantsKeyspace(argv: readonly Uint8Array[]): boolean {
  return _infoWords(argv).includes("keyspace");
}

/**
 * Aster's sections INFO's arguments ask for, in Aster's order whatever theirs (as Redis 7
 * does with several), each once; "default", "all" and "everything" ask for every one.
 * Empty when none (`keyspace` alone, an unknown name).
 */
export function infoText(metrics: ClusterMetrics, argv: readonly Uint8Array[]): string {
  const words = new Set(_infoWords(argv));
  const facts = metrics.facts;
  const sections: Record<string, () => string> = {
    server: () => {
      const { version, source } = metrics.redisVersion();
      const uptime = Math.floor((Date.now() - facts.startedAt) / 1000);
      // redis-server's fields first (clients read redis_version); Aster's own under proxy_*.
      return _section("Server", [
        ["redis_version", version],
        ["redis_version_source", source],
        ["redis_mode", facts.cacheType === "redis_cluster" ? "cluster" : "standalone"],
        ["os", OS],
        ["arch_bits", 64],
        ["process_id", runtime.pid],
        ["run_id", RUN_ID],
        ["tcp_port", _port(facts.listenAddr)],
        ["uptime_in_seconds", uptime],
        ["uptime_in_days", Math.floor(uptime / 86400)],
        ["proxy_name", "aster"],
        ["proxy_version", VERSION],
        ["proxy_mode", facts.cacheType],
        ["cluster_name", metrics.cluster],
        ...DENO_VERSION,
        ["runtime", runtime.name],
        ["runtime_version", runtime.version],
        ["worker", `${facts.workerIndex + 1}/${facts.workerCount}`],
        ["listen_addr", facts.listenAddr],
        ["io", sockets().name],
        ["io_raw_sockets", sockets().rawSockets()],
      ]);
    },
    clients: () =>
      _section("Clients", [
        ["connected_clients", metrics.clientsCurrent],
        ["total_connections_received", metrics.clientsTotal],
        ["rejected_connections", metrics.clientsRejected],
        // redis-server 7.2's name; then the subscriptions Aster's clients hold, by kind.
        ["pubsub_clients", metrics.pubsub.clients],
        ["pubsub_channel_subscriptions", metrics.pubsub.channels],
        ["pubsub_pattern_subscriptions", metrics.pubsub.patterns],
        ["pubsub_shard_channel_subscriptions", metrics.pubsub.shardChannels],
        ...(Object.keys(CLIENT_STATES) as ClientState[]).map((
          state,
        ): [string, number] => [CLIENT_STATES[state], metrics.clientStates[state]]),
      ]),
    stats: () => {
      let commands = 0;
      for (const count of metrics.commands.values()) commands += count;
      const errors = [...metrics.errors].map(([kind, n]) => `${kind}=${n}`).join(",");
      return _section("Stats", [
        ["total_commands_processed", commands],
        ["total_net_input_bytes", metrics.bytesIn],
        ["total_net_output_bytes", metrics.bytesOut],
        ["errors", errors === "" ? "none" : errors],
        ["redirects_moved", metrics.moved],
        ["redirects_ask", metrics.ask],
        ["slowlog_len", metrics.slowlog.length],
      ]);
    },
    backends: () =>
      _section(
        "Backends",
        metrics.nodeSource().map((node) => {
          const count = node.latency.counts.reduce((a, b) => a + b, 0);
          const avgUs = count === 0 ? 0 : Math.round((node.latency.sum / count) * 1e6);
          return [
            `node_${node.node}`,
            `up=${node.up},ejected=${node.ejected},requests=${count},avg_latency_us=${avgUs},` +
            `pinned=${node.pinned}`,
          ];
        }),
      ),
    cluster: () => _clusterSection(facts.cacheType),
  };
  const every = words.has("default") || words.has("all") || words.has("everything");
  return Object.keys(sections)
    .filter((name) => every || words.has(name))
    .map((name) => sections[name]())
    .join("\r\n");
}

/** SLOWLOG GET [count] | LEN | RESET | HELP. */
export function slowlogReply(metrics: ClusterMetrics, argv: readonly Uint8Array[]): Uint8Array {
  const sub = argv.length > 1 ? decoder.decode(argv[1]) : "";
  const log = metrics.slowlog;
  const lower = sub.toLowerCase();
  // Redis's arity of each subcommand, and its words for a wrong one.
  if (_SLOWLOG_NO_ARGUMENT.has(lower) && argv.length !== 2) {
    return encodeError(`ERR wrong number of arguments for 'slowlog|${lower}' command`);
  }
  switch (lower) {
    case "get": {
      if (argv.length > 3) {
        return encodeError(
          `ERR unknown subcommand or wrong number of arguments for '${sub}'. Try SLOWLOG HELP.`,
        );
      }
      let count = 10;
      if (argv.length > 2) {
        const asked = parseLongLong(argv[2]);
        if (asked === null || asked < -1n) {
          return encodeError("ERR count should be greater than or equal to -1");
        }
        count = asked === -1n ? log.length : Number(asked);
      }
      return encodeArray(
        log.get(count).map((entry) =>
          encodeArray([
            encodeInteger(entry.id),
            encodeInteger(entry.unixTime),
            encodeInteger(entry.durationUs),
            encodeArray(entry.args.map((arg) => encodeBulk(arg))),
            encodeBulk(""),
            encodeBulk(""),
          ])
        ),
      );
    }
    case "len":
      return encodeInteger(log.length);
    case "reset":
      log.reset();
      return OK_REPLY;
    case "help":
      return encodeArray(
        [
          "SLOWLOG GET [<count>]: the newest entries (10 by default, -1 for all).",
          "SLOWLOG LEN: the number of entries.",
          "SLOWLOG RESET: forget every entry.",
          "Entries time each request from when Aster read it to when its reply was ready.",
        ].map((line) => encodeBulk(line)),
      );
    default:
      return encodeError(`ERR unknown subcommand '${sub}'. Try SLOWLOG HELP.`);
  }
}

/** The SLOWLOG subcommands that take no argument (GET takes an optional count). */
const _SLOWLOG_NO_ARGUMENT = new Set(["len", "reset", "help"]);
