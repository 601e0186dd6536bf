/**
 * Incremental decoder of memcached text-protocol requests (classic and meta commands):
 * frames each request as views into the caller's buffer and validates what routing and
 * framing depend on, so a request forwarded verbatim gets exactly the reply memcached
 * would give it, and a request memcached would mis-frame is answered here instead.
 *
 * Limits (memcached 1.6 facts; see DESIGN.md "Where to read up"):
 * - A key is 1..250 bytes (KEY_MAX_LENGTH) of any byte but space and "\n", as memcached
 *   checks only the length; a line ends at its first NUL, as memcached reads it as a C
 *   string ("get a\0b" is "get a"), so no key holds a NUL either.
 * - A command line is at most MAX_LINE_BYTES = 2048 bytes before its "\n". memcached
 *   closes a connection holding more than 2048 bytes without a newline unless the line
 *   starts with "get " or "gets " (multigets are unbounded there: a 40 MB one is served).
 *   We apply the 2048 limit to every line, complete or not, so the outcome never depends
 *   on how bytes arrive, and give retrieval lines ("get", "gets", "gat", "gats" after at
 *   most 100 leading spaces, memcached's own allowance) `maxRetrievalLineBytes`
 *   (`max_multiget_line`, 8 MiB by default) instead of "unbounded", so memory stays
 *   bounded. Longer lines throw ProtocolError (memcached would close without a word).
 *   A line arriving in pieces is searched for its "\n" once: `#scanned` remembers how far.
 * - A value is at most `maxValueBytes` (1 MiB by default, memcached's `-I`).
 *
 * Error kinds:
 * - Framing kept: the result is `{ kind: "error" }` with the reply line memcached gives
 *   (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`) and the line consumed. When the
 *   refused line announced a data block whose length parses (a storage command with a bad
 *   key, flags, exptime or cas, or a value over `maxValueBytes`), the decoder then discards
 *   exactly `<bytes>` + 2 bytes as they arrive, reporting them as `{ kind: "skip" }`
 *   results, without buffering them (memcached's "swallow"). memcached itself swallows
 *   only for oversize values; for the other header errors it reads the data block as a
 *   command line, which a proxy must not imitate.
 * - Framing lost: ProtocolError (the session answers `CLIENT_ERROR <message>` and closes):
 *   a data block not followed by "\r\n" ("bad data chunk"), a storage or `ms` line whose
 *   `<bytes>` does not parse (memcached answers and then reads the data as commands), and
 *   an over-long line.
 */
import { ProtocolError } from "../protocol_error.ts";
import {
  ascii,
  bytesAre,
  CR,
  DEFAULT_MAX_VALUE_BYTES,
  findLf,
  isInt64,
  isUint64,
  isValidKey,
  LF,
  parseLength,
  SPACE,
  startsWith,
  tokenize,
} from "../bytes.ts";
import {
  ADMIN_NOREPLY,
  ARITHMETIC,
  CAS,
  type CommandEntry,
  DELETE,
  GAT,
  lookupCommand,
  type MemcacheCommand,
  META,
  META_NOOP,
  META_SET,
  RETRIEVAL,
  STORAGE,
  TOUCH,
} from "./text_commands.ts";

export type { MemcacheCommand } from "./text_commands.ts";
export { buildRetrieval, type RetrievalHead, withoutNoreply } from "./text_rewrite.ts";

/** One complete, valid request. Offsets are relative to the `start` given to decode(). */
export interface MemcacheTextRequest {
  kind: "request";
  command: MemcacheCommand;
  /**
   * Keys as views into the input: one for keyed commands, one or more for get/gets/gat/gats
   * (duplicates kept, in request order), none for mn and admin commands. With `base64Key`
   * the key is still the base64 text as sent.
   */
  keys: Uint8Array[];
  /** The `<exptime>` token of gat/gats (view), else null. */
  exptime: Uint8Array | null;
  /** Tokens after the name of admin commands (views, a trailing "noreply" excluded), else empty. */
  args: readonly Uint8Array[];
  /**
   * The client expects no reply on success: a text "noreply" token (storage, delete,
   * incr/decr, touch, flush_all, verbosity) or a meta "q" flag (mg/ms/md/ma: quiet mode,
   * where failures are still answered).
   */
  noreply: boolean;
  /** Offset of the space before the noreply token / q flag, or -1 (see withoutNoreply()). */
  noreplyAt: number;
  /** Bytes to drop at `noreplyAt` (the space and the token), or 0. */
  noreplyLength: number;
  /** Meta "b" flag: the key is base64 text; hash its decoded bytes to route like memcached. */
  base64Key: boolean;
  /** Offset of the data block (storage commands and ms), or -1. */
  dataStart: number;
  /** Bytes in the data block without its "\r\n", or -1 when there is none. */
  dataLength: number;
  /** Bytes of the whole request, command line and data block included. */
  size: number;
}

/** A refused request whose line was consumed: answer `error` (unless `noreply`) and go on. */
export interface MemcacheTextError {
  kind: "error";
  /** The recognized command, or null for an unknown or empty line. */
  command: MemcacheCommand | null;
  /** The reply line without "\r\n": "ERROR", "CLIENT_ERROR ..." or "SERVER_ERROR ...". */
  error: string;
  /** memcached sends no reply for this error (the refused line carried "noreply"). */
  noreply: boolean;
  /** Bytes consumed: the command line only; a data block follows as "skip" results. */
  size: number;
  /**
   * A key memcached deletes while refusing the request (a `set` or `ms` too large: "avoid
   * stale data persisting"), as a view; else absent.
   */
  staleKey?: Uint8Array;
  /** `staleKey` is base64 text (`ms` with the `b` flag). */
  staleKeyBase64?: boolean;
  /** Close the connection without a reply (an HTTP request line, as memcached does). */
  close?: boolean;
}

/** Bytes of a refused request's data block, discarded as they arrive: consume, answer nothing. */
export interface MemcacheTextSkip {
  kind: "skip";
  size: number;
}

/** What one decode() call produces. */
export type MemcacheTextDecoded = MemcacheTextRequest | MemcacheTextError | MemcacheTextSkip;

/** Options of MemcacheTextDecoder. */
export interface MemcacheTextDecoderOptions {
  /**
   * Largest data block accepted; larger ones get "SERVER_ERROR object too large for cache".
   * @default 1048576
   */
  maxValueBytes?: number;
  /**
   * Longest get/gets/gat/gats command line (bytes before "\n"); other lines stop at 2048.
   * @default 8388608
   */
  maxRetrievalLineBytes?: number;
}

/** Longest non-retrieval command line, bytes before "\n" (memcached's 2048). */
export const MAX_LINE_BYTES = 2048;
/** Default longest retrieval command line. */
export const DEFAULT_MAX_RETRIEVAL_LINE_BYTES = 8 * 1024 * 1024;
/** Leading spaces memcached tolerates before recognizing a long multiget line. */
const MAX_LEADING_SPACES = 100;

const ERROR = "ERROR";
const END = "END";
const BAD_FORMAT = "CLIENT_ERROR bad command line format";
const BAD_DELETE = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
const BAD_EXPTIME = "CLIENT_ERROR invalid exptime argument";
const BAD_DELTA = "CLIENT_ERROR invalid numeric delta argument";
const TOO_LARGE = "SERVER_ERROR object too large for cache";

const NOREPLY = ascii("noreply");
const ZERO = ascii("0");
const QUIET_FLAG = ascii("q");
/** memcached's answer to an mg or ms with a flag given twice. */
const DUPLICATE_FLAG = "CLIENT_ERROR duplicate flag";
/** memcached's answer to an md or ma with a flag given twice. */
const INVALID_FLAG = "CLIENT_ERROR invalid or duplicate flag";
/** memcached's answer to a meta request of more tokens than it reads (see MAX_META_TOKENS). */
const FLAGS_TOO_LONG = "CLIENT_ERROR options flags too long";
/**
 * Most tokens memcached reads in a meta request, command and key included (its
 * MFLAG_MAX_OPT_LENGTH counts one more, an empty last token). Past it an `ms` is refused
 * before its data is read, so memcached would take the data line for a command.
 */
const MAX_META_TOKENS = 19;
const BASE64_FLAG = ascii("b");
/** First letters memcached dispatches on before its HTTP check ("sxx HTTP/1.1" gets ERROR). */
const _DISPATCHED = new Set([..."gsacidt"].map((c) => c.charCodeAt(0)));
/** How an HTTP request line's last token starts. */
const HTTP_VERSION = ascii("HTTP/");

/** Long retrieval lines memcached keeps reading: these prefixes after leading spaces. */
const _RETRIEVAL_PREFIXES = ["get ", "gets ", "gat ", "gats "].map(ascii);

const _NO_ARGS: readonly Uint8Array[] = Object.freeze([]);

/**
 * Frames requests from a client byte stream. Progress inside the current request (the
 * scanned part of a long line, the parsed header of a storage command waiting for its
 * data) is kept relative to the request's start, so a large request arriving in many
 * chunks is scanned once, and the caller may move the unconsumed bytes between calls.
 */
export class MemcacheTextDecoder {
  #maxValueBytes: number;
  #maxRetrievalLine: number;
  /** Bytes of the current line already searched for "\n". */
  #scanned = 0;
  /** Token [start, end) pairs of the line being parsed (absolute, valid within one call). */
  #tokens: number[] = [];
  /** Bytes of a refused data block still to discard. */
  #skip = 0;
  /** A storage request whose header is parsed, waiting for its data block (or null). */
  #pending: _Pending | null = null;

  constructor(opts: MemcacheTextDecoderOptions = {}) {
    this.#maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.#maxRetrievalLine = Math.max(
      opts.maxRetrievalLineBytes ?? DEFAULT_MAX_RETRIEVAL_LINE_BYTES,
      MAX_LINE_BYTES,
    );
  }

  /**
   * Bytes the partial storage request at the read position needs in all, once its command
   * line is read (0 otherwise): a read buffer grows to it at once.
   */
  get neededBytes(): number {
    const pending = this.#pending;
    return pending === null ? 0 : pending.dataStart + pending.dataLength + 2;
  }

  /**
   * Decodes one request at `buf[start]`: a request, a refused request to answer, a run of
   * discarded bytes, or null when more bytes are needed. Throws ProtocolError when the
   * framing of the stream is lost.
   */
  decode(buf: Uint8Array, start: number, end: number): MemcacheTextDecoded | null {
    if (this.#skip > 0) {
      const size = Math.min(this.#skip, end - start);
      if (size <= 0) return null;
      this.#skip -= size;
      return { kind: "skip", size };
    }
    if (this.#pending !== null) return this.#completeData(buf, start, end);
    if (start >= end) return null;
    const lf = findLf(buf, start + this.#scanned, end);
    if (lf < 0) {
      this.#scanned = end - start;
      this.#checkLineLength(buf, start, end);
      return null;
    }
    this.#scanned = 0;
    this.#checkLineLength(buf, start, lf);
    const textEnd = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    const lineSize = lf + 1 - start;
    const t = tokenize(buf, start, textEnd, this.#tokens);
    if (t.length === 0) return _error(null, ERROR, lineSize);
    const entry = lookupCommand(buf, t[0], t[1]);
    if (entry === null) {
      const refused = _error(null, ERROR, lineSize);
      // An HTTP request line: memcached closes without a word (a browser or a proxy is
      // talking to it), rather than answer ERROR to every header line; only where its
      // dispatch by first letter (g, s, a, c, i, d, t, and two-letter m...) has not answered.
      if (
        t[1] - t[0] >= 2 && !_DISPATCHED.has(buf[t[0]]) &&
        !(buf[t[0]] === 0x6d && t[1] - t[0] === 2) &&
        startsWith(buf, t[t.length - 2], t[t.length - 1], HTTP_VERSION)
      ) refused.close = true;
      return refused;
    }
    const line: _Line = { buf, start, size: lineSize, t, entry };
    switch (entry.shape) {
      case STORAGE:
      case CAS:
        return this.#storage(line, end);
      case META_SET:
        return this.#metaSet(line, end);
      case RETRIEVAL:
      case GAT:
        return _retrieval(line);
      case DELETE:
        return _delete(line);
      case ARITHMETIC:
      case TOUCH:
        return _keyAndNumber(line);
      case META:
        return _meta(line);
      case META_NOOP:
        return _request(line, [], -1);
      default:
        return _admin(line);
    }
  }

  /** Bytes of the current refused data block still to be discarded. */
  get pendingSkip(): number {
    return this.#skip;
  }

  /** Throws when the line at `start` (ending at `to`, or unfinished at `to`) is too long. */
  #checkLineLength(buf: Uint8Array, start: number, to: number): void {
    const length = to - start;
    if (length <= MAX_LINE_BYTES) return;
    if (length <= this.#maxRetrievalLine && _isRetrievalLine(buf, start, to)) return;
    this.#reset();
    throw new ProtocolError("line too long");
  }

  /** set/add/replace/append/prepend/cas: validate the header, then wait for the data. */
  #storage(line: _Line, end: number): MemcacheTextDecoded | null {
    const { buf, t, entry } = line;
    const base = entry.shape === CAS ? 6 : 5;
    const count = t.length / 2;
    if (count !== base && count !== base + 1) return _error(entry.name, ERROR, line.size);
    const length = parseLength(buf, t[8], t[9]);
    if (length < 0) {
      this.#reset();
      throw new ProtocolError("bad command line format");
    }
    // An extra token that is not "noreply" is ignored, as memcached does.
    const noreplyToken = count === base + 1 && bytesAre(buf, t[2 * base], t[2 * base + 1], NOREPLY)
      ? 2 * base
      : -1;
    const noreply = noreplyToken >= 0;
    let problem: string | null = null;
    if (
      !isValidKey(buf, t[2], t[3]) || !isUint64(buf, t[4], t[5]) || !isInt64(buf, t[6], t[7]) ||
      (entry.shape === CAS && !isUint64(buf, t[10], t[11]))
    ) {
      problem = BAD_FORMAT;
    } else if (length > this.#maxValueBytes) {
      problem = TOO_LARGE;
    }
    if (problem !== null) {
      this.#skip = length + 2;
      const refused: MemcacheTextError = {
        kind: "error",
        command: entry.name,
        error: problem,
        noreply,
        size: line.size,
      };
      // memcached drops the old value of a `set` it cannot store (only `set`, not add,
      // replace, append, prepend or cas), so a client never reads it after the refusal.
      if (problem === TOO_LARGE && entry.name === "set") {
        refused.staleKey = buf.subarray(t[2], t[3]);
      }
      return refused;
    }
    this.#pending = {
      command: entry.name,
      keyFrom: t[2] - line.start,
      keyTo: t[3] - line.start,
      noreplyAt: noreply ? t[noreplyToken] - 1 - line.start : -1,
      noreplyLength: noreply ? NOREPLY.length + 1 : 0,
      base64Key: false,
      dataStart: line.size,
      dataLength: length,
    };
    return this.#completeData(buf, line.start, end);
  }

  /** ms <key> <datalen> <flag>*: validate, then wait for the data. */
  #metaSet(line: _Line, end: number): MemcacheTextDecoded | null {
    const { buf, t, entry } = line;
    const count = t.length / 2;
    if (count < 2) return _error(entry.name, ERROR, line.size);
    if (count < 3) return _error(entry.name, BAD_FORMAT, line.size);
    const length = parseLength(buf, t[4], t[5]);
    if (length < 0) {
      this.#reset();
      throw new ProtocolError("bad command line format");
    }
    // Meta errors are answered even in quiet mode.
    let problem: string | null = null;
    if (!isValidKey(buf, t[2], t[3])) problem = BAD_FORMAT;
    else if (count > MAX_META_TOKENS) problem = FLAGS_TOO_LONG;
    else if (_flagCount(buf, t, 3, QUIET_FLAG) > 1) problem = DUPLICATE_FLAG;
    else if (length > this.#maxValueBytes) problem = TOO_LARGE;
    if (problem !== null) {
      this.#skip = length + 2;
      const refused = _error(entry.name, problem, line.size);
      // memcached drops the old value of any `ms` too large to store, whatever its mode, once
      // its flags passed (else it refuses them first and keeps the value).
      if (problem === TOO_LARGE && _msFlagsPass(buf, t)) {
        refused.staleKey = buf.subarray(t[2], t[3]);
        refused.staleKeyBase64 = _findFlag(buf, t, 3, BASE64_FLAG) >= 0;
      }
      return refused;
    }
    const quiet = _findFlagByLetter(buf, t, 3, QUIET_FLAG);
    this.#pending = {
      command: entry.name,
      keyFrom: t[2] - line.start,
      keyTo: t[3] - line.start,
      noreplyAt: quiet >= 0 ? t[quiet] - 1 - line.start : -1,
      noreplyLength: quiet >= 0 ? t[quiet + 1] - t[quiet] + 1 : 0,
      base64Key: _findFlag(buf, t, 3, BASE64_FLAG) >= 0,
      dataStart: line.size,
      dataLength: length,
    };
    return this.#completeData(buf, line.start, end);
  }

  #completeData(buf: Uint8Array, start: number, end: number): MemcacheTextRequest | null {
    const pending = this.#pending!;
    const dataEnd = start + pending.dataStart + pending.dataLength;
    if (dataEnd + 2 > end) return null;
    if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
      this.#reset();
      throw new ProtocolError("bad data chunk");
    }
    this.#pending = null;
    return {
      kind: "request",
      command: pending.command,
      keys: [buf.subarray(start + pending.keyFrom, start + pending.keyTo)],
      exptime: null,
      args: _NO_ARGS,
      noreply: pending.noreplyAt >= 0,
      noreplyAt: pending.noreplyAt,
      noreplyLength: pending.noreplyLength,
      base64Key: pending.base64Key,
      dataStart: pending.dataStart,
      dataLength: pending.dataLength,
      size: dataEnd + 2 - start,
    };
  }

  #reset(): void {
    this.#scanned = 0;
    this.#pending = null;
    this.#skip = 0;
  }
}

/** A complete command line being parsed. */
interface _Line {
  buf: Uint8Array;
  start: number;
  size: number;
  /** Token [start, end) pairs, absolute offsets; t[0], t[1] is the command name. */
  t: number[];
  entry: CommandEntry;
}

/** A storage header waiting for its data block; offsets relative to the request start. */
interface _Pending {
  command: MemcacheCommand;
  keyFrom: number;
  keyTo: number;
  noreplyAt: number;
  noreplyLength: number;
  base64Key: boolean;
  dataStart: number;
  dataLength: number;
}

function _error(command: MemcacheCommand | null, error: string, size: number): MemcacheTextError {
  return { kind: "error", command, error, noreply: false, size };
}

/** A one-line request with the given keys; `noreplyToken` indexes `t` or is -1. */
function _request(line: _Line, keys: Uint8Array[], noreplyToken: number): MemcacheTextRequest {
  const noreply = noreplyToken >= 0;
  return {
    kind: "request",
    command: line.entry.name,
    keys,
    exptime: null,
    args: _NO_ARGS,
    noreply,
    noreplyAt: noreply ? line.t[noreplyToken] - 1 - line.start : -1,
    noreplyLength: noreply ? line.t[noreplyToken + 1] - line.t[noreplyToken] + 1 : 0,
    base64Key: false,
    dataStart: -1,
    dataLength: -1,
    size: line.size,
  };
}

/** get/gets <key>+ and gat/gats <exptime> <key>+. */
function _retrieval(line: _Line): MemcacheTextDecoded {
  const { buf, t, entry } = line;
  const first = entry.shape === GAT ? 2 : 1; // index of the first key token
  const count = t.length / 2;
  if (count <= 1) return _error(entry.name, ERROR, line.size);
  if (first === 2 && !isInt64(buf, t[2], t[3])) return _error(entry.name, BAD_EXPTIME, line.size);
  // memcached answers "gat <exptime>" without a key with an empty result.
  if (count <= first) return _error(entry.name, END, line.size);
  const keys = new Array<Uint8Array>(count - first);
  for (let i = first; i < count; i++) {
    const from = t[2 * i];
    const to = t[2 * i + 1];
    if (!isValidKey(buf, from, to)) return _error(entry.name, BAD_FORMAT, line.size);
    keys[i - first] = buf.subarray(from, to);
  }
  const req = _request(line, keys, -1);
  if (first === 2) req.exptime = buf.subarray(t[2], t[3]);
  return req;
}

/** delete <key> [0] [noreply]: the legacy "0" hold time is accepted, as memcached does. */
function _delete(line: _Line): MemcacheTextDecoded {
  const { buf, t, entry } = line;
  const count = t.length / 2;
  if (count < 2 || count > 4) return _error(entry.name, ERROR, line.size);
  const last = t.length - 2;
  const noreply = count > 2 && bytesAre(buf, t[last], t[last + 1], NOREPLY);
  if (count > 2) {
    const holdIsZero = bytesAre(buf, t[4], t[5], ZERO);
    const valid = (count === 3 && (holdIsZero || noreply)) ||
      (count === 4 && holdIsZero && noreply);
    if (!valid) {
      return { kind: "error", command: entry.name, error: BAD_DELETE, noreply, size: line.size };
    }
  }
  if (!isValidKey(buf, t[2], t[3])) {
    return { kind: "error", command: entry.name, error: BAD_FORMAT, noreply, size: line.size };
  }
  return _request(line, [buf.subarray(t[2], t[3])], noreply ? last : -1);
}

/** incr/decr <key> <delta> [noreply] and touch <key> <exptime> [noreply]. */
function _keyAndNumber(line: _Line): MemcacheTextDecoded {
  const { buf, t, entry } = line;
  const count = t.length / 2;
  if (count !== 3 && count !== 4) return _error(entry.name, ERROR, line.size);
  const noreply = count === 4 && bytesAre(buf, t[6], t[7], NOREPLY);
  let problem: string | null = null;
  if (!isValidKey(buf, t[2], t[3])) problem = BAD_FORMAT;
  else if (entry.shape === TOUCH && !isInt64(buf, t[4], t[5])) problem = BAD_EXPTIME;
  else if (entry.shape === ARITHMETIC && !isUint64(buf, t[4], t[5])) problem = BAD_DELTA;
  if (problem !== null) {
    return { kind: "error", command: entry.name, error: problem, noreply, size: line.size };
  }
  return _request(line, [buf.subarray(t[2], t[3])], noreply ? 6 : -1);
}

/** mg/md/ma/me <key> <flag>*: the flags are left to the backend, but for q and b. */
function _meta(line: _Line): MemcacheTextDecoded {
  const { buf, t, entry } = line;
  if (t.length < 4) return _error(entry.name, entry.name === "me" ? BAD_FORMAT : ERROR, line.size);
  if (!isValidKey(buf, t[2], t[3])) return _error(entry.name, BAD_FORMAT, line.size);
  const key = [buf.subarray(t[2], t[3])];
  if (entry.name === "me") {
    // me reads no flags but a `b` right after the key; memcached answers the rest.
    const req = _request(line, key, -1);
    req.base64Key = t.length >= 6 && bytesAre(buf, t[4], t[5], BASE64_FLAG);
    return req;
  }
  // memcached refuses a repeated flag, after a line of too many tokens (which it answers
  // itself); a repeated q would also survive withoutNoreply().
  if (t.length / 2 <= MAX_META_TOKENS && _flagCount(buf, t, 2, QUIET_FLAG) > 1) {
    return _error(entry.name, entry.name === "mg" ? DUPLICATE_FLAG : INVALID_FLAG, line.size);
  }
  const req = _request(line, key, _findFlagByLetter(buf, t, 2, QUIET_FLAG));
  req.base64Key = _findFlag(buf, t, 2, BASE64_FLAG) >= 0;
  return req;
}

/**
 * True when memcached's checks of an `ms`'s flags pass, so it goes on to store (and, with a
 * value too large, deletes the old one): no flag twice or unknown, numbers that parse, a
 * base64 key that decodes, a mode of E, A, P, R or S, an opaque of at most 32 bytes.
 */
function _msFlagsPass(buf: Uint8Array, t: number[]): boolean {
  const seen = new Set<number>();
  for (let i = 6; i < t.length; i += 2) {
    const letter = buf[t[i]];
    if (seen.has(letter)) return false;
    seen.add(letter);
    const value = _latin1.decode(buf.subarray(t[i] + 1, t[i + 1]));
    switch (String.fromCharCode(letter)) {
      case "N":
      case "T":
      case "R":
        if (!/^[+-]?\d+$/.test(value) || Math.abs(Number(value)) > 2 ** 31 - 1) return false;
        break;
      case "F":
        if (!/^\+?\d+$/.test(value) || Number(value) > 2 ** 32 - 1) return false;
        break;
      case "C":
      case "J":
      case "D":
        if (!/^\+?\d+$/.test(value) || BigInt(value) > 2n ** 64n - 1n) return false;
        break;
      case "M":
        if (value.length !== 1 || !"EAPRS".includes(value)) return false;
        break;
      case "O":
        if (t[i + 1] - t[i] > 32) return false;
        break;
      case "b":
        if (!_decodesAsBase64(_latin1.decode(buf.subarray(t[2], t[3])))) return false;
        break;
      default:
        if (!"lPLkstcfvhuqI".includes(String.fromCharCode(letter))) return false;
    }
  }
  return true;
}

function _decodesAsBase64(text: string): boolean {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    return false;
  }
  try {
    return atob(text).length > 0;
  } catch {
    return false;
  }
}

const _latin1 = new TextDecoder("latin1");

/** version, quit, stats, flush_all ...: recognized by name, arguments passed on as views. */
function _admin(line: _Line): MemcacheTextRequest {
  const { buf, t, entry } = line;
  let count = t.length / 2;
  let noreplyToken = -1;
  if (
    entry.shape === ADMIN_NOREPLY && count > 1 &&
    bytesAre(buf, t[t.length - 2], t[t.length - 1], NOREPLY)
  ) {
    noreplyToken = t.length - 2;
    count--;
  }
  const req = _request(line, [], noreplyToken);
  if (count > 1) {
    const args = new Array<Uint8Array>(count - 1);
    for (let i = 1; i < count; i++) args[i - 1] = buf.subarray(t[2 * i], t[2 * i + 1]);
    req.args = args;
  }
  return req;
}

/**
 * How many flag tokens (from token `first`) are the one-letter flag `flag`: memcached reads
 * a meta flag from the token's first byte, so "q\r" is a q too.
 */
function _flagCount(buf: Uint8Array, t: number[], first: number, flag: Uint8Array): number {
  let count = 0;
  for (let i = 2 * first; i < t.length; i += 2) if (buf[t[i]] === flag[0]) count++;
  return count;
}

/** Index in `t` of the first flag token (from token `first`) starting with `flag`, or -1. */
function _findFlagByLetter(buf: Uint8Array, t: number[], first: number, flag: Uint8Array): number {
  for (let i = 2 * first; i < t.length; i += 2) if (buf[t[i]] === flag[0]) return i;
  return -1;
}

/** Index in `t` of the first flag token (from token `first`) equal to `flag`, or -1. */
function _findFlag(buf: Uint8Array, t: number[], first: number, flag: Uint8Array): number {
  for (let i = 2 * first; i < t.length; i += 2) {
    if (bytesAre(buf, t[i], t[i + 1], flag)) return i;
  }
  return -1;
}

/** True when a line starts with a retrieval command after at most 100 spaces. */
function _isRetrievalLine(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && buf[i] === SPACE && i - start <= MAX_LEADING_SPACES) i++;
  if (i - start > MAX_LEADING_SPACES) return false;
  return _RETRIEVAL_PREFIXES.some((prefix) => startsWith(buf, i, end, prefix));
}
