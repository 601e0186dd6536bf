/**
 * SCAN over every node (every master in `redis_cluster` mode): Aster's cursor carries the
 * index of the node being scanned in its high bits and that node's own cursor in the low
 * ones; a node's scan ending moves the cursor to the next node's start.
 *
 * Encoding: `cursor = node * 2^40 + backendCursor`, so every cursor stays below 2^53 and a
 * client that parses cursors as JavaScript numbers keeps them exact. Cursor 0 is node 0's
 * start, as with one server. A backend cursor of 2^40 or more (a table of over 10^12
 * buckets) is answered with an error rather than a wrong cursor.
 *
 * Nodes are numbered in `broadcastGroups()` order (the live ring nodes, or one slot per
 * master). While that list does not change, a full iteration returns every key present
 * throughout it, as Redis guarantees for one server. When it changes mid-scan (a node
 * ejected or back, a resharding or failover), the index then names another node: keys may
 * be returned twice or missed, and an index past the end finishes the scan (cursor 0).
 */
import {
  bulkSize,
  encodeCommand,
  encodeError,
  encodeProxyError,
  headerSize,
  writeBulk,
  writeHeader,
} from "./encoder.ts";
import { ARRAY } from "./bytes.ts";
import type { SplitPart, SplitStrategy } from "../split_merge.ts";

/** The node index starts at this bit of an Aster cursor. */
export const SCAN_NODE_SHIFT = 40;
const NODE_UNIT = 2 ** SCAN_NODE_SHIFT;
/** Up to 2^12 nodes keep cursors under 2^53. */
export const SCAN_MAX_NODES = 2 ** 12;

const encoder = new TextEncoder();
const INVALID_CURSOR = encodeError("ERR invalid cursor");
const BAD_REPLY = encodeError("ERR unexpected reply from backend");
/** The reply of a scan whose node index is past the last node: the iteration is over. */
export const SCAN_DONE_REPLY: Uint8Array = encoder.encode("*2\r\n$1\r\n0\r\n*0\r\n");

/**
 * An Aster cursor split in its node index and that node's cursor; null when malformed. Read
 * as redis-server reads a cursor (C's strtoul): an optional sign, digits up to 2^64 - 1, a
 * negative one wrapped, the empty string 0; no leading space. A cursor from past the last
 * node (any above 2^53) ends the scan.
 */
export function parseScanCursor(bytes: Uint8Array): { node: number; cursor: number } | null {
  if (bytes.length > 0 && bytes.length <= 15 && bytes[0] >= 0x30 && bytes[0] <= 0x39) {
    // The usual form, what encodeScanCursor makes: digits only, below 2^53.
    let value = 0;
    for (const byte of bytes) {
      if (byte < 0x30 || byte > 0x39) return null;
      value = value * 10 + (byte - 0x30);
    }
    const node = Math.floor(value / NODE_UNIT);
    return { node, cursor: value - node * NODE_UNIT };
  }
  const match = /^([+-]?)([0-9]*)$/.exec(new TextDecoder("latin1").decode(bytes));
  if (match === null || (match[1] !== "" && match[2] === "")) return null;
  let value = match[2] === "" ? 0n : BigInt(match[2]);
  if (value > _MAX_U64) return null;
  if (match[1] === "-") value = (_MAX_U64 + 1n - value) & _MAX_U64;
  const unit = BigInt(NODE_UNIT);
  return { node: Number(value / unit), cursor: Number(value % unit) };
}

const _MAX_U64 = (1n << 64n) - 1n;

/** The Aster cursor for `cursor` on node `node`. */
export function encodeScanCursor(node: number, cursor: number): string {
  return String(node * NODE_UNIT + cursor);
}

/**
 * The one part of a SCAN: the request with the node's own cursor, and its reply with the
 * cursor made Aster's (the next node's start when this node is done).
 */
export class ScanSplit implements SplitStrategy {
  readonly #request: Uint8Array;
  readonly #node: number;
  readonly #nodes: number;

  /** `argv` is the client's SCAN; `cursor` the node's cursor; `nodes` how many there are. */
  constructor(argv: readonly Uint8Array[], node: number, cursor: number, nodes: number) {
    const sent = argv.slice();
    sent[1] = encoder.encode(String(cursor));
    this.#request = encodeCommand(sent);
    this.#node = node;
    this.#nodes = nodes;
  }

  request(_part: SplitPart, _index: number): Uint8Array {
    return this.#request;
  }

  failure(message: string): Uint8Array {
    return encodeProxyError(message);
  }

  isScratch(_merged: Uint8Array): boolean {
    return false;
  }

  merge(replies: readonly Uint8Array[], _parts: readonly SplitPart[]): Uint8Array {
    const reply = replies[0];
    if (reply[0] === 0x2d /* "-" */) return reply;
    return rewriteScanReply(reply, this.#node, this.#nodes);
  }
}

/**
 * A backend's SCAN reply (`*2`, the cursor as a bulk string, the keys' array) with the
 * cursor replaced by Aster's; the keys' bytes are copied unchanged.
 */
export function rewriteScanReply(reply: Uint8Array, node: number, nodes: number): Uint8Array {
  // "*2\r\n$<n>\r\n<cursor>\r\n<keys...>"
  if (reply[0] !== ARRAY || reply[1] !== 0x32 || reply[4] !== 0x24 /* "$" */) return BAD_REPLY;
  let at = 5;
  let length = 0;
  while (at < reply.length && reply[at] !== 0x0d) length = length * 10 + (reply[at++] - 0x30);
  const start = at + 2;
  const end = start + length;
  if (end + 2 > reply.length) return BAD_REPLY;
  const parsed = parseScanCursor(reply.subarray(start, end));
  if (parsed === null || parsed.node !== 0) return BAD_REPLY;
  let next: string;
  if (parsed.cursor !== 0) next = encodeScanCursor(node, parsed.cursor);
  else next = node + 1 < nodes ? encodeScanCursor(node + 1, 0) : "0";
  const rest = reply.subarray(end + 2);
  const cursor = encoder.encode(next);
  const out = new Uint8Array(headerSize(2) + bulkSize(cursor) + rest.length);
  let w = writeHeader(out, 0, ARRAY, 2);
  w = writeBulk(out, w, cursor);
  out.set(rest, w);
  return out;
}

/** The SCAN error for a malformed cursor (redis-server's words). */
export function invalidCursorReply(): Uint8Array {
  return INVALID_CURSOR;
}
