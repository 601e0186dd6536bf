/**
 * Twemproxy's twelve key hashes (`hash:` in nutcracker.yml, src/hashkit/ of twemproxy 0.5.0),
 * each returning the same unsigned 32-bit value nutcracker computes on x86-64.
 *
 * Twemproxy reads keys through `const char *`, which is signed on x86-64: wherever the C code
 * widens `key[i]` itself (fnv1_64, fnv1_32, fnv1a_32, one_at_a_time, the tail byte of
 * hsieh), a byte >= 0x80 is sign-extended first. `(byte << 24) >> 24` does the same here.
 * The others (md5, crc16, crc32, crc32a, murmur, jenkins) read bytes as unsigned or mask
 * the sign bits away.
 *
 * None of these is called for an empty key: nutcracker hashes it to 0 (see RingRouter).
 */

import { fnv1a64 } from "./fnv.ts";
import { md5 } from "./md5.ts";

/** A key hash: the bytes of a key (or of its hash-tag part) to an unsigned 32-bit number. */
export type KeyHash = (key: Uint8Array) => number;

/** The `hash` values twemproxy 0.5 accepts, in its order (nc_hashkit.h). */
export const KEY_HASH_NAMES = [
  "one_at_a_time",
  "md5",
  "crc16",
  "crc32",
  "crc32a",
  "fnv1_64",
  "fnv1a_64",
  "fnv1_32",
  "fnv1a_32",
  "hsieh",
  "murmur",
  "jenkins",
] as const;

/** One of {@link KEY_HASH_NAMES}. */
export type KeyHashName = typeof KEY_HASH_NAMES[number];

/** `key[i]` read as a signed C `char` and widened to 32 bits. */
function _signed(byte: number): number {
  return (byte << 24) >> 24;
}

/** Bob Jenkins' one-at-a-time hash (`hash_one_at_a_time`). */
export function oneAtATime(key: Uint8Array): number {
  let value = 0;
  for (let i = 0; i < key.length; i++) {
    value = (value + _signed(key[i])) | 0;
    value = (value + (value << 10)) | 0;
    value ^= value >>> 6;
  }
  value = (value + (value << 3)) | 0;
  value ^= value >>> 11;
  value = (value + (value << 15)) | 0;
  return value >>> 0;
}

/** The first four bytes of the key's MD5 digest, little-endian (`hash_md5`). */
export function md5Hash(key: Uint8Array): number {
  const d = md5(key);
  return (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0;
}

const CRC16_TABLE = (() => {
  // CRC-16/XMODEM, polynomial 0x1021, MSB first: twemproxy's crc16tab.
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[n] = crc & 0xffff;
  }
  return table;
})();

/**
 * Twemproxy's `hash_crc16`: CRC-16/XMODEM in its low 16 bits, but the state is a `uint32_t`
 * that is never masked, so earlier bytes also pile up, shifted, in the upper 16 bits; the
 * full 32-bit value is the hash.
 */
export function crc16(key: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < key.length; i++) {
    crc = (crc << 8) ^ CRC16_TABLE[((crc >>> 8) ^ key[i]) & 0xff];
  }
  return crc >>> 0;
}

const CRC32_TABLE = (() => {
  // The reflected CRC-32 table (polynomial 0xedb88320), as in twemproxy's crc32tab.
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    table[n] = crc;
  }
  return table;
})();

function _crc32(key: Uint8Array): number {
  let crc = -1;
  for (let i = 0; i < key.length; i++) crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ key[i]) & 0xff];
  return ~crc >>> 0;
}

/** Twemproxy's `hash_crc32` (libmemcached's): bits 16..30 of the standard CRC-32. */
export function crc32(key: Uint8Array): number {
  return (_crc32(key) >>> 16) & 0x7fff;
}

/** The standard CRC-32 (IEEE 802.3, as zlib computes it): `hash_crc32a`. */
export function crc32a(key: Uint8Array): number {
  return _crc32(key);
}

/** Low 32 bits of the 64-bit FNV offset basis and prime (see fnv.ts for why they suffice). */
const FNV64_OFFSET_LO = 0x84222325;
const FNV64_PRIME_LO = 0x000001b3;
const FNV32_OFFSET = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;

/** Low 32 bits of 64-bit FNV-1 (multiply, then XOR): `hash_fnv1_64`. */
export function fnv164(key: Uint8Array): number {
  let hash = FNV64_OFFSET_LO | 0;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash, FNV64_PRIME_LO) ^ _signed(key[i]);
  return hash >>> 0;
}

/** 32-bit FNV-1: `hash_fnv1_32`. */
export function fnv132(key: Uint8Array): number {
  let hash = FNV32_OFFSET | 0;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash, FNV32_PRIME) ^ _signed(key[i]);
  return hash >>> 0;
}

/** 32-bit FNV-1a: `hash_fnv1a_32`. */
export function fnv1a32(key: Uint8Array): number {
  let hash = FNV32_OFFSET | 0;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ _signed(key[i]), FNV32_PRIME);
  return hash >>> 0;
}

/**
 * Paul Hsieh's SuperFastHash (`hash_hsieh`). On x86-64 the 16-bit reads are the byte-wise
 * little-endian macro; the third tail byte is read as a signed `char`.
 */
export function hsieh(key: Uint8Array): number {
  const length = key.length;
  let hash = 0;
  let at = 0;
  for (let blocks = length >>> 2; blocks > 0; blocks--) {
    hash = (hash + (key[at] | (key[at + 1] << 8))) | 0;
    const tmp = ((key[at + 2] | (key[at + 3] << 8)) << 11) ^ hash;
    hash = (hash << 16) ^ tmp;
    at += 4;
    hash = (hash + (hash >>> 11)) | 0;
  }
  switch (length & 3) {
    case 3:
      hash = (hash + (key[at] | (key[at + 1] << 8))) | 0;
      hash ^= hash << 16;
      hash ^= _signed(key[at + 2]) << 18;
      hash = (hash + (hash >>> 11)) | 0;
      break;
    case 2:
      hash = (hash + (key[at] | (key[at + 1] << 8))) | 0;
      hash ^= hash << 11;
      hash = (hash + (hash >>> 17)) | 0;
      break;
    case 1:
      hash = (hash + key[at]) | 0;
      hash ^= hash << 10;
      hash = (hash + (hash >>> 1)) | 0;
      break;
  }
  hash ^= hash << 3;
  hash = (hash + (hash >>> 5)) | 0;
  hash ^= hash << 4;
  hash = (hash + (hash >>> 17)) | 0;
  hash ^= hash << 25;
  hash = (hash + (hash >>> 6)) | 0;
  return hash >>> 0;
}

const MURMUR_M = 0x5bd1e995;

/** MurmurHash2 seeded with `0xdeadbeef * length` (`hash_murmur`). */
export function murmur(key: Uint8Array): number {
  let length = key.length;
  let h = Math.imul(0xdeadbeef, length) ^ length;
  let at = 0;
  while (length >= 4) {
    let k = key[at] | (key[at + 1] << 8) | (key[at + 2] << 16) | (key[at + 3] << 24);
    k = Math.imul(k, MURMUR_M);
    k ^= k >>> 24;
    k = Math.imul(k, MURMUR_M);
    h = Math.imul(h, MURMUR_M) ^ k;
    at += 4;
    length -= 4;
  }
  switch (length) {
    case 3:
      h ^= key[at + 2] << 16;
    // falls through
    case 2:
      h ^= key[at + 1] << 8;
    // falls through
    case 1:
      h ^= key[at];
      h = Math.imul(h, MURMUR_M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, MURMUR_M);
  h ^= h >>> 15;
  return h >>> 0;
}

function _rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The little-endian 32-bit word at `at`, bytes at or past `end` read as zero. */
function _word(key: Uint8Array, at: number, end: number): number {
  let word = 0;
  for (let i = 3; i >= 0; i--) word = (word << 8) | (at + i < end ? key[at + i] : 0);
  return word;
}

/**
 * Bob Jenkins' lookup3 `hashlittle` with initval 13 (`hash_jenkins`). Its aligned 32-bit,
 * 16-bit and byte-wise paths give the same value on little-endian machines; this is the
 * byte-wise one.
 */
export function jenkins(key: Uint8Array): number {
  const end = key.length;
  let a = (0xdeadbeef + end + 13) | 0;
  let b = a;
  let c = a;
  let at = 0;
  for (; end - at > 12; at += 12) {
    a = (a + _word(key, at, end)) | 0;
    b = (b + _word(key, at + 4, end)) | 0;
    c = (c + _word(key, at + 8, end)) | 0;
    // mix(a, b, c)
    a = (a - c) | 0;
    a ^= _rot(c, 4);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= _rot(a, 6);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= _rot(b, 8);
    b = (b + a) | 0;
    a = (a - c) | 0;
    a ^= _rot(c, 16);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= _rot(a, 19);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= _rot(b, 4);
    b = (b + a) | 0;
  }
  if (at === end) return c >>> 0; // no final mix when the last block is empty
  // The last 1..12 bytes, zero-padded.
  a = (a + _word(key, at, end)) | 0;
  b = (b + _word(key, at + 4, end)) | 0;
  c = (c + _word(key, at + 8, end)) | 0;
  // final(a, b, c)
  c ^= b;
  c = (c - _rot(b, 14)) | 0;
  a ^= c;
  a = (a - _rot(c, 11)) | 0;
  b ^= a;
  b = (b - _rot(a, 25)) | 0;
  c ^= b;
  c = (c - _rot(b, 16)) | 0;
  a ^= c;
  a = (a - _rot(c, 4)) | 0;
  b ^= a;
  b = (b - _rot(a, 14)) | 0;
  c ^= b;
  c = (c - _rot(b, 24)) | 0;
  return c >>> 0;
}

/** Every key hash by its twemproxy name. */
export const KEY_HASHES: Readonly<Record<KeyHashName, KeyHash>> = {
  one_at_a_time: oneAtATime,
  md5: md5Hash,
  crc16,
  crc32,
  crc32a,
  fnv1_64: fnv164,
  fnv1a_64: fnv1a64,
  fnv1_32: fnv132,
  fnv1a_32: fnv1a32,
  hsieh,
  murmur,
  jenkins,
};
