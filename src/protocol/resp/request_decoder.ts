/** Incremental RESP request decoder: frames multibulk and inline requests as views. */
import { ProtocolError } from "../protocol_error.ts";
import {
  ARRAY,
  BACKSLASH,
  BULK,
  CR,
  describeBytes,
  DQUOTE,
  findCrlf,
  LF,
  MAX_ARGUMENTS,
  MAX_ASTER_ARGUMENTS,
  MAX_BULK_LENGTH,
  MAX_INLINE_LENGTH,
  MAX_REQUEST_BYTES,
  MAX_UNAUTHENTICATED_ARGUMENTS,
  MAX_UNAUTHENTICATED_BULK_LENGTH,
  parseInteger,
  SPACE,
  SQUOTE,
  TAB,
} from "./bytes.ts";

/** Span numbers kept for the next request (a 128-argument request's worth). */
const MAX_KEPT_SPANS = 256;

/** One complete client request. */
export interface RespRequest {
  /** Arguments, argv[0] the command name: views into the decoder's input buffer. */
  argv: Uint8Array[];
  /** Bytes the request took in the input, from the `start` given to decode(). */
  size: number;
  /** True for an inline (telnet-style) request: its raw bytes are not RESP. */
  inline: boolean;
}

/**
 * Frames requests from a client byte stream. It keeps its progress inside the current
 * request (offsets relative to the request's start), so a large request arriving in many
 * chunks is scanned once, and the caller may move the unconsumed bytes between calls.
 */
export class RespRequestDecoder {
  /** Arguments announced by the "*N" header; -1 before the header is read. */
  #argc = -1;
  /** Offset from the request start of the next unread byte. */
  #pos = 0;
  /**
   * The client has not authenticated where a password is set: at most 10 arguments of 16 KB
   * each per request, as redis-server limits such a client (set by the planner per request).
   */
  authRequired = false;
  /** Relative [start, end) pairs of the arguments read so far: #spanCount numbers. */
  #spans: number[] = [];
  #spanCount = 0;
  /** How far into a partial header or length line the CR LF search got (read once). */
  #lineScanned = 0;

  /**
   * Frames one request at `buf[start]`. Returns null when more bytes are needed; throws
   * ProtocolError for malformed input (the connection's framing is then lost).
   * Empty requests (a blank inline line, "*0") are consumed and reported as an empty argv.
   */
  decode(buf: Uint8Array, start: number, end: number): RespRequest | null {
    if (start >= end) return null;
    if (this.#argc < 0) {
      if (buf[start] !== ARRAY) return this.#decodeInline(buf, start, end);
      const headerEnd = findCrlf(buf, start + Math.max(1, this.#lineScanned), end);
      if (headerEnd < 0) {
        if (end - start > MAX_INLINE_LENGTH) {
          this.#lineScanned = 0;
          throw new ProtocolError("too big mbulk count string");
        }
        this.#lineScanned = end - start - 1; // the CR may be the last byte so far
        return null;
      }
      this.#lineScanned = 0;
      const argc = parseInteger(buf, start + 1, headerEnd);
      if (Number.isNaN(argc) || argc > MAX_ARGUMENTS) {
        throw new ProtocolError("invalid multibulk length");
      }
      if (argc > MAX_UNAUTHENTICATED_ARGUMENTS && this.authRequired) {
        throw new ProtocolError("unauthenticated multibulk length");
      }
      if (argc > MAX_ASTER_ARGUMENTS) {
        throw new ProtocolError(`more than ${MAX_ASTER_ARGUMENTS} arguments (Aster's limit)`);
      }
      if (argc <= 0) return { argv: [], size: headerEnd + 2 - start, inline: false };
      this.#argc = argc;
      this.#pos = headerEnd + 2 - start;
      this.#spanCount = 0;
    }
    const spans = this.#spans;
    while (this.#spanCount < this.#argc * 2) {
      const at = start + this.#pos;
      if (at >= end) return null;
      if (buf[at] !== BULK) {
        this.#reset();
        throw new ProtocolError(`expected '$', got '${describeBytes(buf, at, at + 1)}'`);
      }
      const lineEnd = findCrlf(buf, at + Math.max(1, this.#lineScanned), end);
      if (lineEnd < 0) {
        if (end - at > MAX_INLINE_LENGTH) {
          this.#reset();
          throw new ProtocolError("too big bulk count string");
        }
        this.#lineScanned = end - at - 1;
        return null;
      }
      this.#lineScanned = 0;
      const length = parseInteger(buf, at + 1, lineEnd);
      if (Number.isNaN(length) || length < 0 || length > MAX_BULK_LENGTH) {
        this.#reset();
        throw new ProtocolError("invalid bulk length");
      }
      if (length > MAX_UNAUTHENTICATED_BULK_LENGTH && this.authRequired) {
        this.#reset();
        throw new ProtocolError("unauthenticated bulk length");
      }
      const dataStart = lineEnd + 2;
      const dataEnd = dataStart + length;
      if (dataEnd + 2 - start > MAX_REQUEST_BYTES) {
        // Aster holds a whole request before it sends it: a bound of its own (redis-server
        // takes larger ones made of big arguments), known from the announced lengths.
        this.#reset();
        throw new ProtocolError("request over 1 GiB (Aster's limit)");
      }
      if (dataEnd + 2 > end) {
        this.#needed = dataEnd + 2 - start;
        return null;
      }
      if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
        this.#reset();
        throw new ProtocolError("bulk string is not terminated by CRLF");
      }
      spans[this.#spanCount++] = dataStart - start;
      spans[this.#spanCount++] = dataEnd - start;
      this.#pos = dataEnd + 2 - start;
    }
    const argv = new Array<Uint8Array>(this.#argc);
    for (let i = 0; i < argv.length; i++) {
      argv[i] = buf.subarray(start + spans[2 * i], start + spans[2 * i + 1]);
    }
    const size = this.#pos;
    this.#reset();
    return { argv, size, inline: false };
  }

  /**
   * Bytes the current partial request is known to need from its start, as far as the bulk
   * lengths read so far tell (0 when nothing is known): a read buffer grows to it at once.
   */
  get neededBytes(): number {
    return this.#argc < 0 ? 0 : this.#needed;
  }

  #needed = 0;

  /** Bytes of the current partial request already examined (0 between requests). */
  get pendingBytes(): number {
    return this.#argc < 0 ? 0 : this.#pos;
  }

  #reset(): void {
    this.#argc = -1;
    this.#pos = 0;
    this.#needed = 0;
    this.#spanCount = 0;
    // Spans are reused between requests; one huge request must not keep its array.
    if (this.#spans.length > MAX_KEPT_SPANS) this.#spans = [];
    this.#inlineScanned = 0;
    this.#lineScanned = 0;
  }

  /** Bytes of a partial inline line already searched for its LF (so each byte is read once). */
  #inlineScanned = 0;

  #decodeInline(buf: Uint8Array, start: number, end: number): RespRequest | null {
    let lineEnd = -1;
    for (let i = start + this.#inlineScanned; i < end; i++) {
      if (buf[i] === LF) {
        lineEnd = i;
        break;
      }
    }
    if (lineEnd < 0) {
      if (end - start > MAX_INLINE_LENGTH) {
        this.#inlineScanned = 0;
        throw new ProtocolError("too big inline request");
      }
      this.#inlineScanned = end - start;
      return null;
    }
    this.#inlineScanned = 0;
    if (lineEnd - start > MAX_INLINE_LENGTH) throw new ProtocolError("too big inline request");
    const textEnd = lineEnd > start && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    return { argv: _splitInline(buf, start, textEnd), size: lineEnd + 1 - start, inline: true };
  }
}

/** C's isspace(): the blanks sdssplitargs skips between arguments. */
function _isSpace(byte: number): boolean {
  return byte === SPACE || (byte >= TAB && byte <= CR);
}

/** What ends an unquoted run of an argument in sdssplitargs (not a vertical tab or form feed). */
function _endsWord(byte: number): boolean {
  return byte === SPACE || byte === TAB || byte === CR || byte === LF;
}

/**
 * Splits an inline line into arguments as Redis's sdssplitargs does: a quote anywhere in a
 * word opens a quoted part of that argument ("a\"b c\"" is one argument, "ab c"), a closing
 * quote ends the argument and must be followed by a blank or the end of the line, and an
 * unclosed quote is an error. Double quotes take escapes (\n, \xHH...), single quotes \'.
 * A NUL byte is an ordinary byte here (Redis never gets past one in an inline line).
 */
function _splitInline(buf: Uint8Array, start: number, end: number): Uint8Array[] {
  const argv: Uint8Array[] = [];
  let i = start;
  for (;;) {
    while (i < end && _isSpace(buf[i])) i++;
    if (i >= end) return argv;
    const from = i;
    while (i < end && !_endsWord(buf[i]) && buf[i] !== DQUOTE && buf[i] !== SQUOTE) i++;
    if (i >= end || _endsWord(buf[i])) {
      argv.push(buf.subarray(from, i)); // a plain word: a view
      continue;
    }
    // A quote in the word: the argument is built (rare path, telnet users).
    const out = Array.from(buf.subarray(from, i));
    i = _quotedPart(buf, i, end, out);
    argv.push(Uint8Array.from(out));
  }
}

/** Reads the quoted part opening at `at` into `out`; returns where the argument ends. */
function _quotedPart(buf: Uint8Array, at: number, end: number, out: number[]): number {
  const quote = buf[at];
  let i = at + 1;
  for (;;) {
    if (i >= end) throw new ProtocolError("unbalanced quotes in request");
    const byte = buf[i];
    if (byte === quote) {
      if (i + 1 < end && !_isSpace(buf[i + 1])) {
        throw new ProtocolError("unbalanced quotes in request");
      }
      return i + 1;
    }
    if (byte === BACKSLASH && quote === DQUOTE && i + 1 < end) {
      i++;
      out.push(_unescape(buf, i, end));
      if (buf[i] === 0x78 /* "x" */ && _isHexPair(buf, i + 1, end)) i += 2;
    } else if (byte === BACKSLASH && quote === SQUOTE && i + 1 < end && buf[i + 1] === SQUOTE) {
      out.push(SQUOTE);
      i++;
    } else out.push(byte);
    i++;
  }
}

function _isHexPair(buf: Uint8Array, at: number, end: number): boolean {
  return at + 1 < end && _hex(buf[at]) >= 0 && _hex(buf[at + 1]) >= 0;
}

function _hex(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
}

function _unescape(buf: Uint8Array, at: number, end: number): number {
  switch (buf[at]) {
    case 0x6e: // "n"
      return LF;
    case 0x72: // "r"
      return CR;
    case 0x74: // "t"
      return TAB;
    case 0x62: // "b"
      return 0x08;
    case 0x61: // "a"
      return 0x07;
    case 0x78: // "x"
      if (_isHexPair(buf, at + 1, end)) return _hex(buf[at + 1]) * 16 + _hex(buf[at + 2]);
      return 0x78;
    default:
      return buf[at];
  }
}
