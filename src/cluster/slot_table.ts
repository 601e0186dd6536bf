/** The Redis Cluster slot map: which master (and replicas) serve each of the 16384 slots. */
import { RespErrorReply, type RespValue } from "../protocol/resp/reply_value.ts";

/** Slots in a Redis Cluster. */
export const SLOT_COUNT = 16384;

/** A master and its replicas, as "host:port" addresses. */
export interface ShardAddrs {
  master: string;
  replicas: string[];
}

/** A parsed slot map: the shards and, for each slot, the index of its shard (-1: unowned). */
export interface SlotMap {
  shards: ShardAddrs[];
  /**
   * 16-bit: every request reads it at a random slot, and at 32 KiB (not 64) it stays in a
   * core's L1 beside redis-servers sharing that core (bench/README.md, round 5). A shard owns
   * at least one slot, so its index fits.
   */
  slotShard: Int16Array;
}

const decoder = new TextDecoder();

function _text(value: RespValue): string | null {
  if (value instanceof Uint8Array) return decoder.decode(value);
  return typeof value === "string" ? value : null;
}

/** "host:port", with IPv6 hosts in brackets. */
export function joinAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits "host:port" (IPv6 in brackets); null when malformed. */
export function splitAddr(addr: string): { host: string; port: number } | null {
  const colon = addr.lastIndexOf(":");
  if (colon <= 0) return null;
  let host = addr.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const port = Number(addr.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535 || host === "") return null;
  return { host, port };
}

/**
 * Parses a CLUSTER SLOTS reply. `askedHost` replaces an empty node IP (a node that does
 * not know its own address answers ""). Returns an error text when the reply is not a
 * slot map.
 */
export function parseClusterSlots(reply: RespValue, askedHost: string): SlotMap | string {
  if (reply instanceof RespErrorReply) return `CLUSTER SLOTS failed: ${reply.message}`;
  if (!Array.isArray(reply)) return "CLUSTER SLOTS reply is not an array";
  const shards: ShardAddrs[] = [];
  const byMaster = new Map<string, number>();
  const slotShard = new Int16Array(SLOT_COUNT).fill(-1);
  for (const entry of reply) {
    if (!Array.isArray(entry) || entry.length < 3) return "CLUSTER SLOTS entry is malformed";
    const [first, last] = entry;
    if (
      typeof first !== "number" || typeof last !== "number" || first < 0 || last >= SLOT_COUNT ||
      first > last
    ) {
      return `CLUSTER SLOTS range is invalid: ${first}-${last}`;
    }
    const addrs: string[] = [];
    for (const node of entry.slice(2)) {
      if (!Array.isArray(node) || node.length < 2) return "CLUSTER SLOTS node is malformed";
      const host = _text(node[0]);
      const port = node[1];
      if (host === null || typeof port !== "number" || port < 1 || port > 65535) {
        return "CLUSTER SLOTS node address is malformed";
      }
      addrs.push(joinAddr(host === "" ? askedHost : host, port));
    }
    const master = addrs[0];
    let shard = byMaster.get(master);
    if (shard === undefined) {
      shard = shards.length;
      byMaster.set(master, shard);
      shards.push({ master, replicas: addrs.slice(1) });
    }
    slotShard.fill(shard, first, last + 1);
  }
  return { shards, slotShard };
}

/** Slots no shard serves. */
export function unownedSlots(map: SlotMap): number {
  let count = 0;
  for (const shard of map.slotShard) if (shard < 0) count++;
  return count;
}

/**
 * Parses the target of a redirect error: "MOVED 3999 127.0.0.1:6381" or "ASK ...".
 * Returns null when the error is not a redirect.
 */
export function parseRedirect(
  message: string,
): { kind: "moved" | "ask"; slot: number; addr: string } | null {
  const parts = message.split(" ");
  if (parts.length !== 3 || (parts[0] !== "MOVED" && parts[0] !== "ASK")) return null;
  const slot = Number(parts[1]);
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) return null;
  if (splitAddr(parts[2]) === null) return null;
  return { kind: parts[0] === "MOVED" ? "moved" : "ask", slot, addr: parts[2] };
}
