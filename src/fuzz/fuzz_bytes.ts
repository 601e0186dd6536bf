/**
 * Byte helpers of the fuzz generators: protocol bytes, ascii/concat, a text frame builder that
 * remembers its length fields, and random payloads, texts and memcached keys.
 */
import { concatBytes, MAX_KEY_LENGTH } from "../protocol/bytes.ts";
import type { LengthField } from "./fuzz_types.ts";
import type { Prng } from "./prng.ts";

/** Protocol bytes the generators and mutators look for or avoid. */
export const CR = 0x0d; // "\r"
export const LF = 0x0a; // "\n"
export const SPACE = 0x20; // " "
export const TAB = 0x09; // "\t"
export const DQUOTE = 0x22; // '"'
export const SQUOTE = 0x27; // "'"
export const BACKSLASH = 0x5c; // "\\"
export const STAR = 0x2a; // "*"

/** Latin-1 text to bytes (protocol words, never user data). */
export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Joins byte arrays. */
export const concat = concatBytes;

/** Accumulates a text frame and the offsets of its decimal length fields. */
export class TextFrame {
  parts: Uint8Array[] = [];
  size = 0;
  lengths: LengthField[] = [];
  /** Text not yet turned into bytes (one conversion per run of text). */
  #text = "";

  add(part: Uint8Array | string): this {
    this.size += part.length;
    if (typeof part === "string") {
      this.#text += part;
      return this;
    }
    this.#flush();
    this.parts.push(part);
    return this;
  }

  /** Adds a decimal length token and remembers where it is. */
  length(value: number, limit: number): this {
    const digits = String(value);
    this.lengths.push({ at: this.size, width: digits.length, format: "decimal", limit });
    return this.add(digits);
  }

  done(): Uint8Array {
    this.#flush();
    return this.parts.length === 1 ? this.parts[0] : concat(this.parts);
  }

  #flush(): void {
    if (this.#text.length === 0) return;
    this.parts.push(ascii(this.#text));
    this.#text = "";
  }
}

/** Printable ASCII the generators draw words and texts from. */
export const PRINTABLE = ascii(
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_:.,;!?/#@{}[]()<>=+*$%&",
);
const _PROTOCOL_BYTES = ascii("\r\n\r\n  $*:+-0123456789-1VALUE END\x80\x81\x00\xff");

/** Random payload bytes of the given length, in one of a few textures. */
export function payloadBytes(rng: Prng, length: number): Uint8Array {
  const mode = rng.int(10);
  if (mode === 9) return new Uint8Array(length).fill(rng.int(256));
  const out = rng.bytes(length);
  if (mode < 4) return out;
  const alphabet = mode < 7 ? PRINTABLE : _PROTOCOL_BYTES;
  for (let i = 0; i < length; i++) out[i] = alphabet[out[i] % alphabet.length];
  return out;
}

/** A payload size: mostly small, sometimes a few KB. */
export function payloadSize(rng: Prng): number {
  const r = rng.int(100);
  if (r < 5) return 0;
  if (r < 45) return rng.range(1, 8);
  if (r < 80) return rng.range(9, 64);
  if (r < 95) return rng.range(65, 512);
  if (r < 99 || rng.chance(0.5)) return rng.range(513, 4096);
  return rng.range(4097, 20000);
}

/** Up to `max` printable characters, sometimes ending in multi-byte UTF-8. */
export function printableText(rng: Prng, max: number): string {
  const n = rng.int(max + 1);
  let out = "";
  for (let i = 0; i < n; i++) out += String.fromCharCode(PRINTABLE[rng.int(PRINTABLE.length)]);
  if (rng.chance(0.05)) out += "é✓"; // multi-byte UTF-8
  return out;
}

const _KEY_BYTES = ascii("abcdefghijklmnopqrstuvwxyz0123456789:_-");

/** A key memcached accepts (mostly printable; it takes any byte but space, "\n" and NUL). */
export function memcacheKey(rng: Prng): Uint8Array {
  const r = rng.int(100);
  const n = r < 80 ? rng.range(1, 16) : r < 99 ? rng.range(17, MAX_KEY_LENGTH) : MAX_KEY_LENGTH;
  const key = new Uint8Array(n);
  const mode = rng.int(10);
  for (let i = 0; i < n; i++) {
    if (mode < 7) key[i] = _KEY_BYTES[rng.int(_KEY_BYTES.length)];
    else if (mode < 9) key[i] = rng.range(0x21, 0x7e);
    else key[i] = rng.chance(0.5) ? rng.range(0x21, 0x7e) : rng.range(0x80, 0xff);
  }
  return key;
}
