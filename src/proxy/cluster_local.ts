/**
 * CLUSTER subcommands answered as a one-node cluster that owns every slot (SLOTS, SHARDS,
 * NODES, INFO, MYID, KEYSLOT, HELP), or forwarded to the slot's master (COUNTKEYSINSLOT,
 * GETKEYSINSLOT); the rest are refused by name. Replies and errors are redis-server 7's.
 */
import { md5 } from "../hash/md5.ts";
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  encodeMap,
  encodeSimple,
  resp3Reply,
} from "../protocol/resp/encoder.ts";
import { keySlot } from "../hash/key_slot.ts";
import { parseLongLong } from "../protocol/resp/bytes.ts";

/** How Aster presents itself to cluster-aware clients. */
export interface ClusterIdentity {
  /** Advertised IP (from --ip, else the listen host). */
  ip: string;
  port: number;
}

const decoder = new TextDecoder();

/** A stable 40-hex node id derived from the advertised address. */
export function clusterNodeId(identity: ClusterIdentity): string {
  const seed = new TextEncoder().encode(`aster ${identity.ip}:${identity.port}`);
  const hex = (bytes: Uint8Array) =>
    [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return (hex(md5(seed)) + hex(md5(new Uint8Array([...seed, 1])))).slice(0, 40);
}

/** Arity of each subcommand Aster answers or forwards (Redis's `cluster|<sub>` arity). */
const ARITY = new Map([
  ["slots", 2],
  ["shards", 2],
  ["nodes", 2],
  ["info", 2],
  ["myid", 2],
  ["help", 2],
  ["keyslot", 3],
  ["countkeysinslot", 3],
  ["getkeysinslot", 4],
]);

/**
 * Redis 7.0's other CLUSTER subcommands: refused by name. They would change the cluster, or
 * describe links, replicas and failure reports of nodes Aster does not present (LINKS,
 * REPLICAS, SLAVES, COUNT-FAILURE-REPORTS: it is a one-node cluster to its clients).
 */
const REFUSED = new Set([
  "addslots",
  "addslotsrange",
  "bumpepoch",
  "count-failure-reports",
  "delslots",
  "delslotsrange",
  "failover",
  "flushslots",
  "forget",
  "links",
  "meet",
  "replicas",
  "replicate",
  "reset",
  "saveconfig",
  "set-config-epoch",
  "setslot",
  "slaves",
]);

const NOT_AN_INTEGER = "ERR value is not an integer or out of range";

/** CLUSTER HELP: redis-server's lines for the subcommands Aster serves. */
const HELP_LINES = [
  "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "COUNTKEYSINSLOT <slot>",
  "    Return the number of keys in <slot>.",
  "GETKEYSINSLOT <slot> <count>",
  "    Return key names stored by current node in a slot.",
  "INFO",
  "    Return information about the cluster.",
  "KEYSLOT <key>",
  "    Return the hash slot for <key>.",
  "MYID",
  "    Return the node id.",
  "NODES",
  "    Return cluster configuration seen by node. Output format:",
  "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
  "SLOTS",
  "    Return information about slots range mappings. Each range is made of:",
  "    start, end, master and replicas IP addresses, ports and ids",
  "SHARDS",
  "    Return information about slot range mappings and the nodes associated with them.",
  "HELP",
  "    Prints this help.",
];

/**
 * The slot whose master must answer this CLUSTER request (COUNTKEYSINSLOT, GETKEYSINSLOT
 * with valid arguments: the keys live there), or -1 when Aster answers it itself.
 */
export function clusterForwardSlot(argv: readonly Uint8Array[]): number {
  if (argv.length < 3) return -1;
  const sub = decoder.decode(argv[1]).toLowerCase();
  if (argv.length !== ARITY.get(sub) || (sub !== "countkeysinslot" && sub !== "getkeysinslot")) {
    return -1;
  }
  const slot = parseLongLong(argv[2]);
  if (slot === null || slot < 0n || slot >= 16384n) return -1;
  if (sub === "getkeysinslot") {
    const count = parseLongLong(argv[3]);
    if (count === null || count < 0n) return -1;
  }
  return Number(slot);
}

/**
 * The reply to a CLUSTER subcommand Aster answers itself (those `clusterForwardSlot` does
 * not forward: for COUNTKEYSINSLOT and GETKEYSINSLOT, only the argument errors); `resp3`:
 * as redis-server answers a RESP3 client (SHARDS' maps, SLOTS' empty metadata map, NODES
 * and INFO verbatim).
 */
export function clusterLocalReply(
  argv: readonly Uint8Array[],
  identity: ClusterIdentity,
  resp3 = false,
): Uint8Array {
  const given = decoder.decode(argv[1] ?? new Uint8Array());
  const sub = given.toLowerCase();
  const id = clusterNodeId(identity);
  const arity = ARITY.get(sub);
  if (arity !== undefined && argv.length !== arity) {
    return encodeError(`ERR wrong number of arguments for 'cluster|${sub}' command`);
  }
  switch (sub) {
    case "slots":
      return encodeArray([
        encodeArray([
          encodeInteger(0),
          encodeInteger(16383),
          // Redis 7 ends each node with a map of other endpoints: none here.
          encodeArray([
            encodeBulk(identity.ip),
            encodeInteger(identity.port),
            encodeBulk(id),
            encodeMap([], resp3),
          ]),
        ]),
      ]);
    case "shards":
      // Redis 7.0's layout: a map (flat in RESP2) of slot pairs and node maps per shard.
      return encodeArray([
        encodeMap([
          encodeBulk("slots"),
          encodeArray([encodeInteger(0), encodeInteger(16383)]),
          encodeBulk("nodes"),
          encodeArray([
            encodeMap([
              encodeBulk("id"),
              encodeBulk(id),
              encodeBulk("port"),
              encodeInteger(identity.port),
              encodeBulk("ip"),
              encodeBulk(identity.ip),
              encodeBulk("endpoint"),
              encodeBulk(identity.ip),
              encodeBulk("role"),
              encodeBulk("master"),
              encodeBulk("replication-offset"),
              encodeInteger(0),
              encodeBulk("health"),
              encodeBulk("online"),
            ], resp3),
          ]),
        ], resp3),
      ]);
    case "nodes":
      return _text(
        `${id} ${identity.ip}:${identity.port}@${
          identity.port + 10000
        } myself,master - 0 0 1 connected 0-16383\n`,
        resp3,
      );
    case "info":
      return _text(
        [
          "cluster_state:ok",
          "cluster_slots_assigned:16384",
          "cluster_slots_ok:16384",
          "cluster_slots_pfail:0",
          "cluster_slots_fail:0",
          "cluster_known_nodes:1",
          "cluster_size:1",
          "cluster_current_epoch:1",
          "cluster_my_epoch:1",
          "cluster_stats_messages_sent:0",
          "cluster_stats_messages_received:0",
          "total_cluster_links_buffer_limit_exceeded:0",
          "",
        ].join("\r\n"),
        resp3,
      );
    case "myid":
      return encodeBulk(id);
    case "keyslot":
      return encodeInteger(keySlot(argv[2]));
    case "countkeysinslot":
    case "getkeysinslot": {
      // Valid requests were forwarded (clusterForwardSlot); these are Redis's refusals.
      const slot = parseLongLong(argv[2]);
      if (slot === null) return encodeError(NOT_AN_INTEGER);
      if (sub === "countkeysinslot") return encodeError("ERR Invalid slot");
      if (parseLongLong(argv[3]) === null) return encodeError(NOT_AN_INTEGER);
      return encodeError("ERR Invalid slot or number of keys");
    }
    case "help":
      return encodeArray(HELP_LINES.map((line) => encodeSimple(line)));
    default:
      if (!REFUSED.has(sub)) {
        return encodeError(`ERR unknown subcommand '${given.slice(0, 128)}'. Try CLUSTER HELP.`);
      }
      return encodeError(
        `ERR CLUSTER ${sub.toUpperCase()} is not supported by aster (it answers ` +
          "SLOTS, SHARDS, NODES, INFO, MYID, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, HELP)",
      );
  }
}

/** A text reply: a bulk string, or verbatim for a RESP3 client (as redis-server). */
function _text(text: string, resp3: boolean): Uint8Array {
  const bulk = encodeBulk(text);
  return resp3 ? resp3Reply(bulk, true) : bulk;
}
