/**
 * Twemproxy's `fnv1a_64` key hash (`hash_fnv1a_64` in nc_fnv.c).
 *
 * Twemproxy seeds and multiplies with the 64-bit FNV offset basis and prime but keeps
 * the state in a `uint32_t`. The low 32 bits of a product depend only on the low 32
 * bits of its factors, so this equals the low 32 bits of a full 64-bit FNV-1a, and
 * one `Math.imul` per byte computes it exactly.
 *
 * One quirk carries over: twemproxy reads the key through a signed `char`, so on
 * x86-64 (where nutcracker runs) a byte >= 0x80 is sign-extended before the XOR and
 * flips the upper 24 bits too. We do the same, so non-ASCII keys land where
 * nutcracker puts them.
 */

/** Low 32 bits of the 64-bit FNV offset basis 0xcbf29ce484222325. */
const OFFSET_LO = 0x84222325;
/** Low 32 bits of the 64-bit FNV prime 0x100000001b3. */
const PRIME_LO = 0x000001b3;

/** Twemproxy's `fnv1a_64` hash of `key`, as an unsigned 32-bit number. */
export function fnv1a64(key: Uint8Array): number {
  let hash = OFFSET_LO | 0;
  for (let i = 0; i < key.length; i++) {
    // `(key[i] << 24) >> 24` sign-extends the byte like a C `char` on x86-64.
    hash = Math.imul(hash ^ ((key[i] << 24) >> 24), PRIME_LO);
  }
  return hash >>> 0;
}
