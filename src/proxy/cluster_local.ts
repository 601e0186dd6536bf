/** CLUSTER SLOTS / NODES / INFO answered as a one-node cluster that owns every slot. */
import { md5 } from "../hash/md5.ts";
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  OK_REPLY,
} from "../protocol/resp/encoder.ts";
import { keySlot } from "../hash/key_slot.ts";

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

/** The reply to a CLUSTER subcommand. */
export function clusterLocalReply(
  argv: readonly Uint8Array[],
  identity: ClusterIdentity,
): Uint8Array {
  const sub = decoder.decode(argv[1] ?? new Uint8Array()).toLowerCase();
  const id = clusterNodeId(identity);
  switch (sub) {
    case "slots":
      return encodeArray([
        encodeArray([
          encodeInteger(0),
          encodeInteger(16383),
          encodeArray([encodeBulk(identity.ip), encodeInteger(identity.port), encodeBulk(id)]),
        ]),
      ]);
    case "nodes":
      return encodeBulk(
        `${id} ${identity.ip}:${identity.port}@${
          identity.port + 10000
        } myself,master - 0 0 1 connected 0-16383\n`,
      );
    case "info":
      return encodeBulk(
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
          "",
        ].join("\r\n"),
      );
    case "myid":
      return encodeBulk(id);
    case "keyslot":
      return argv.length === 3
        ? encodeInteger(keySlot(argv[2]))
        : encodeError("ERR wrong number of arguments for 'cluster|keyslot' command");
    case "readonly":
    case "readwrite":
      return OK_REPLY;
    default:
      return encodeError(
        `ERR CLUSTER ${sub.toUpperCase()} is not supported by aster (SLOTS, NODES, INFO, MYID, KEYSLOT are)`,
      );
  }
}
