/**
 * The memcache load generator's requests and reply checking: every key's request bytes and
 * expected hit reply, pre-encoded, and the check that frames one reply and throws on
 * anything but the expected one (a `set` answers exactly `STORED`; a `get` `END` or exactly
 * the value this generator stores for that key, then `END`).
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const CR = 0x0d; // "\r"
const LF = 0x0a; // "\n"

const END = encoder.encode("END\r\n");
const STORED = encoder.encode("STORED\r\n");

/** Every key's request bytes and, for `get`, its expected hit reply, pre-encoded. */
export class Wire {
  readonly requests: Uint8Array[];
  readonly hits: Uint8Array[];

  constructor(op: "get" | "set", opts: { keys: number; valueSize: number }) {
    this.requests = [];
    this.hits = [];
    for (let i = 0; i < opts.keys; i++) {
      const key = `key:${i}`;
      const value = _value(key, opts.valueSize);
      const header = `VALUE ${key} 0 ${opts.valueSize}\r\n`;
      this.hits.push(encoder.encode(`${header}${value}\r\nEND\r\n`));
      this.requests.push(
        encoder.encode(
          op === "get" ? `get ${key}\r\n` : `set ${key} 0 0 ${opts.valueSize}\r\n${value}\r\n`,
        ),
      );
    }
  }
}

/** The value stored under `key`: the key, padded with dots (so a get can be checked). */
function _value(key: string, size: number): string {
  return (key + ".".repeat(size)).slice(0, size);
}

/** Thrown when a reply is not the one expected. */
export class UnexpectedReply extends Error {}

/** The `get` counters a reply check adds to. */
export interface ReplyTally {
  hits: number;
  misses: number;
}

/**
 * Frames and checks one reply at `buf[start..end)` to the request for `key`; returns its
 * length, or 0 when more bytes are needed. Throws on anything but the expected reply.
 */
export function checkReply(
  buf: Uint8Array,
  start: number,
  end: number,
  wire: Wire,
  op: "get" | "set",
  key: number,
  tally: ReplyTally,
): number {
  if (op === "set") {
    if (_matches(buf, start, end, STORED)) return STORED.length;
    if (_isPrefix(buf, start, end, STORED)) return 0;
    return _unexpected(buf, start, end, `set key:${key}`);
  }
  if (_matches(buf, start, end, END)) {
    tally.misses++;
    return END.length;
  }
  const hit = wire.hits[key];
  if (_matches(buf, start, end, hit)) {
    tally.hits++;
    return hit.length;
  }
  if (_isPrefix(buf, start, end, END) || _isPrefix(buf, start, end, hit)) return 0;
  return _unexpected(buf, start, end, `get key:${key}`);
}

/** True when `buf[start..end)` begins with the whole of `expected`. */
function _matches(buf: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start < expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    if (buf[start + i] !== expected[i]) return false;
  }
  return true;
}

/** True when `buf[start..end)` is shorter than `expected` and a prefix of it. */
function _isPrefix(buf: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start >= expected.length) return false;
  for (let i = start; i < end; i++) if (buf[i] !== expected[i - start]) return false;
  return true;
}

/**
 * Called when the bytes at `start` cannot become an expected reply: waits (returns 0) for
 * the rest of their first line so the error shows it, then throws.
 */
function _unexpected(buf: Uint8Array, start: number, end: number, what: string): number {
  if (_lineEnd(buf, start, end) < 0 && end - start < 1024) return 0;
  throw new UnexpectedReply(`${what} got ${showBytes(buf, start, end)}`);
}

/** Index of the "\r" of the first "\r\n" at or after `start`, or -1. */
function _lineEnd(buf: Uint8Array, start: number, end: number): number {
  for (let i = start; i + 1 < end; i++) if (buf[i] === CR && buf[i + 1] === LF) return i;
  return -1;
}

/** Up to 200 bytes at `start`, quoted, for an error message. */
export function showBytes(buf: Uint8Array, start: number, end: number): string {
  return JSON.stringify(decoder.decode(buf.subarray(start, Math.min(end, start + 200))));
}
