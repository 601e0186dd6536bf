/**
 * memcached text-protocol replies from a backend: framing (the shape of a reply depends on
 * the request it answers), splitting a multiget reply into its value blocks, and merging
 * the parts of a multiget fanned out over several servers.
 *
 * Reply shapes (memcached 1.6):
 * - "retrieval" (get/gets/gat/gats): `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`*
 *   then `END\r\n`; an error line (`ERROR`, `CLIENT_ERROR x`, `SERVER_ERROR x`) may end
 *   it instead, after zero or more blocks.
 * - "line": one line (STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED, a number,
 *   `VERSION x`, OK, or an error line).
 * - "meta": `VA <size> <flags>*\r\n<data>\r\n`, or one line (HD, NF, NS, EX, EN, MN,
 *   `ME <key> ...`, or an error line).
 */
import { ProtocolError } from "../protocol_error.ts";
import {
  ascii,
  bytesAre,
  concatBytes,
  CR,
  DEFAULT_MAX_VALUE_BYTES,
  findLf,
  LF,
  parseLength,
  SPACE,
  startsWith,
  tokenize,
} from "../bytes.ts";
import type { MemcacheCommand } from "./text_request.ts";

/** How a reply is framed: see the module comment. */
export type MemcacheReplyKind = "retrieval" | "line" | "meta";

/** Options of MemcacheTextReplyFramer. */
export interface MemcacheTextReplyFramerOptions {
  /**
   * Largest data block accepted in a reply: keep it at least the backends' item size limit.
   * @default 1048576
   */
  maxValueBytes?: number;
}

/** Longest reply line accepted from a backend (VALUE/VA headers, ME lines, errors). */
const MAX_REPLY_LINE = 8 * 1024;

const VALUE_ = ascii("VALUE ");
const VA_ = ascii("VA ");
const END = ascii("END");
const END_LINE = ascii("END\r\n");
const ERROR = ascii("ERROR");
const CLIENT_ERROR = ascii("CLIENT_ERROR");
const SERVER_ERROR = ascii("SERVER_ERROR");

/**
 * Finds reply boundaries without copying. Progress inside a reply (the start of the
 * current line or block, the end of a data block being waited for) is kept relative to
 * the reply's start, so a large reply arriving in many chunks is scanned once.
 */
export class MemcacheTextReplyFramer {
  #maxValueBytes: number;
  /** Offset from the reply start of the next line to read. */
  #pos = 0;
  /** Offset from the reply start where the pending data block and its CRLF end, or -1. */
  #dataEnd = -1;
  /** Token [start, end) pairs of the line being read. */
  #tokens: number[] = [];

  constructor(opts: MemcacheTextReplyFramerOptions = {}) {
    this.#maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  }

  /**
   * Returns the size of the complete reply at `buf[start]` to a request of the given kind
   * (see replyKind()), or -1 when more bytes are needed. Throws ProtocolError on a
   * malformed reply. `kind` must stay the same until the reply is complete.
   */
  frame(buf: Uint8Array, start: number, end: number, kind: MemcacheReplyKind): number {
    for (;;) {
      if (this.#dataEnd >= 0) {
        const dataEnd = start + this.#dataEnd;
        if (dataEnd > end) return -1;
        if (buf[dataEnd - 2] !== CR || buf[dataEnd - 1] !== LF) {
          throw this.#fail("data block is not terminated by CRLF");
        }
        this.#pos = this.#dataEnd;
        this.#dataEnd = -1;
        if (kind === "retrieval") continue;
        return this.#done();
      }
      const at = start + this.#pos;
      const lf = findLf(buf, at, end);
      if (lf < 0) {
        if (end - at > MAX_REPLY_LINE) throw this.#fail("reply line too long");
        return -1;
      }
      if (lf - at > MAX_REPLY_LINE) throw this.#fail("reply line too long");
      const textEnd = lf > at && buf[lf - 1] === CR ? lf - 1 : lf;
      const next = lf + 1 - start;
      if (kind === "line") {
        this.#pos = next;
        return this.#done();
      }
      if (kind === "meta") {
        if (startsWith(buf, at, textEnd, VA_)) {
          this.#dataEnd = next + this.#dataLength(buf, at, textEnd, 1) + 2;
          continue;
        }
        this.#pos = next;
        return this.#done();
      }
      if (startsWith(buf, at, textEnd, VALUE_)) {
        this.#dataEnd = next + this.#dataLength(buf, at, textEnd, 3) + 2;
        continue;
      }
      if (bytesAre(buf, at, textEnd, END) || _isErrorLine(buf, at, textEnd)) {
        this.#pos = next;
        return this.#done();
      }
      throw this.#fail("unexpected line in a retrieval reply");
    }
  }

  /** Reads the length in token `index` of a VALUE (3) or VA (1) header line. */
  #dataLength(buf: Uint8Array, from: number, to: number, index: number): number {
    const t = tokenize(buf, from, to, this.#tokens);
    const count = t.length / 2;
    const valid = index === 3 ? count === 4 || count === 5 : count >= 2;
    const length = valid ? parseLength(buf, t[2 * index], t[2 * index + 1]) : -1;
    if (length < 0 || length > this.#maxValueBytes) {
      throw this.#fail("bad value header in reply");
    }
    return length;
  }

  #done(): number {
    const size = this.#pos;
    this.#pos = 0;
    return size;
  }

  #fail(message: string): ProtocolError {
    this.#pos = 0;
    this.#dataEnd = -1;
    return new ProtocolError(message);
  }
}

/**
 * The reply kind to frame for a request's command. Admin commands other than version,
 * verbosity and flush_all have multi-line replies (stats) or none (quit): answer them locally.
 */
export function replyKind(command: MemcacheCommand): MemcacheReplyKind {
  switch (command) {
    case "get":
    case "gets":
    case "gat":
    case "gats":
      return "retrieval";
    case "mg":
    case "ms":
    case "md":
    case "ma":
    case "mn":
    case "me":
      return "meta";
    default:
      return "line";
  }
}

/** A framed retrieval reply cut into its value blocks and its last line. */
export interface RetrievalReplyParts {
  /** Each `VALUE ...\r\n<data>\r\n` block, raw (views into the reply). */
  blocks: Uint8Array[];
  /** The final line with its "\r\n": `END\r\n` or an error line (view). */
  tail: Uint8Array;
}

/** Cuts a retrieval reply framed by MemcacheTextReplyFramer into blocks and its tail. */
export function splitRetrievalReply(reply: Uint8Array): RetrievalReplyParts {
  const blocks: Uint8Array[] = [];
  const tokens: number[] = [];
  let at = 0;
  while (startsWith(reply, at, reply.length, VALUE_)) {
    const lf = findLf(reply, at, reply.length);
    if (lf < 0) throw new ProtocolError("truncated retrieval reply");
    const textEnd = lf > at && reply[lf - 1] === CR ? lf - 1 : lf;
    const t = tokenize(reply, at, textEnd, tokens);
    const length = t.length >= 8 ? parseLength(reply, t[6], t[7]) : -1;
    const blockEnd = lf + 1 + length + 2;
    if (length < 0 || blockEnd > reply.length) throw new ProtocolError("truncated retrieval reply");
    blocks.push(reply.subarray(at, blockEnd));
    at = blockEnd;
  }
  return { blocks, tail: reply.subarray(at) };
}

/** The value blocks of a framed retrieval reply (views), in the order the server sent them. */
export function valueBlocks(reply: Uint8Array): Uint8Array[] {
  return splitRetrievalReply(reply).blocks;
}

/** The key of a `VALUE <key> ...` block (view). */
export function blockKey(block: Uint8Array): Uint8Array {
  let i = VALUE_.length;
  while (i < block.length && block[i] !== SPACE && block[i] !== CR && block[i] !== LF) i++;
  return block.subarray(VALUE_.length, i);
}

/** One server's share of a fanned-out multiget. */
export interface RetrievalPart {
  /** Indexes into the original request's keys of the keys sent to this server, ascending. */
  keys: number[];
  /** That server's framed reply. */
  reply: Uint8Array;
}

/**
 * Joins the replies of a multiget split over servers into one reply: the value blocks in
 * the order of the original request's `keys` (a miss is simply absent; a key asked twice
 * is answered twice, as memcached does), then `END\r\n`, or, when a part ended with an
 * error line, that error line instead (memcached also ends a multiget with an error line
 * after the blocks it already sent). The walk relies on each server answering in the
 * order of the keys it was sent, as memcached does, so it is linear; blocks it cannot
 * place are appended rather than dropped.
 */
export function mergeRetrieval(keys: Uint8Array[], parts: RetrievalPart[]): Uint8Array {
  const owner = new Int32Array(keys.length).fill(-1);
  const split = parts.map((part, index) => {
    for (const k of part.keys) owner[k] = index;
    return splitRetrievalReply(part.reply);
  });
  const cursor = new Array<number>(parts.length).fill(0);
  const chosen: Uint8Array[] = [];
  for (let i = 0; i < keys.length; i++) {
    const p = owner[i];
    if (p < 0) continue;
    const blocks = split[p].blocks;
    const c = cursor[p];
    if (c < blocks.length && _equal(blockKey(blocks[c]), keys[i])) {
      chosen.push(blocks[c]);
      cursor[p] = c + 1;
    }
  }
  let tail: Uint8Array = END_LINE;
  for (let p = 0; p < split.length; p++) {
    for (let c = cursor[p]; c < split[p].blocks.length; c++) chosen.push(split[p].blocks[c]);
    const partTail = split[p].tail;
    if (tail === END_LINE && !startsWith(partTail, 0, partTail.length, END_LINE)) tail = partTail;
  }
  chosen.push(tail);
  return concatBytes(chosen);
}

/** Encodes a reply line (a local answer such as an error): `line` + "\r\n". */
export function textLine(line: string): Uint8Array {
  return ascii(line + "\r\n");
}

/** True for `ERROR`, `ERROR <msg>`, `CLIENT_ERROR <msg>` or `SERVER_ERROR <msg>`. */
function _isErrorLine(buf: Uint8Array, from: number, to: number): boolean {
  for (const word of [ERROR, CLIENT_ERROR, SERVER_ERROR]) {
    if (startsWith(buf, from, to, word)) {
      const after = from + word.length;
      return after === to || buf[after] === SPACE;
    }
  }
  return false;
}

function _equal(a: Uint8Array, b: Uint8Array): boolean {
  return bytesAre(a, 0, a.length, b);
}
