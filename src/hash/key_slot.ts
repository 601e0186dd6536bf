/**
 * Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key or its {hash tag}, mod 16384.
 * Written out here rather than taken from npm's cluster-key-slot: an npm package loads Deno's
 * Node compatibility layer into every worker isolate (several MB of RSS each).
 */

/** CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0) of every byte value. */
const TABLE = new Uint16Array(256);
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
  TABLE[byte] = crc & 0xffff;
}

/** CRC16 of `key[start, end)`, continuing from `crc`. */
function _crc16(crc: number, key: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[(crc >> 8) ^ key[i]];
  return crc;
}

/**
 * The slot of `key`, on its raw bytes. Only the bytes between the first "{" and the first
 * "}" after it are hashed, when there are any (an empty tag "{}" hashes the whole key).
 * One pass finds the "{" and hashes up to it (no indexOf: a call per key cost more than
 * the hash of a short key), so a key without a tag is read once.
 */
export function keySlot(key: Uint8Array): number {
  const end = key.length;
  let crc = 0;
  for (let i = 0; i < end; i++) {
    const byte = key[i];
    if (byte === 0x7b) {
      for (let close = i + 1; close < end; close++) {
        if (key[close] !== 0x7d) continue;
        if (close > i + 1) return _crc16(0, key, i + 1, close) & 0x3fff;
        break;
      }
      return _crc16(crc, key, i, end) & 0x3fff;
    }
    crc = ((crc << 8) & 0xffff) ^ TABLE[(crc >> 8) ^ byte];
  }
  return crc & 0x3fff;
}
