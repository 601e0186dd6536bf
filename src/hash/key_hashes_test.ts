import assert from "node:assert/strict";
import { fnv1a64 } from "./fnv.ts";
import { crc16, crc32a, KEY_HASH_NAMES, KEY_HASHES, type KeyHashName } from "./key_hashes.ts";

const encoder = new TextEncoder();

/** Keys of the table below: ASCII of many lengths, then keys with bytes >= 0x80. */
const KEYS: Uint8Array[] = [
  ..."a|123456789|foobar|user:1000|hello, world!|The quick brown fox jumps over the lazy dog"
    .split("|").map((key) => encoder.encode(key)),
  new Uint8Array([0xc3, 0xa9]), // "é"
  new Uint8Array([0x61, 0x62, 0xe9]), // hsieh reads its third tail byte as a signed char
  new Uint8Array([0x61, 0x62, 0x63, 0x64, 0x80, 0x81, 0xfe]),
  new Uint8Array([0xff, 0x80, 0x7f]),
];

/**
 * What twemproxy's own src/hashkit/*.c return for KEYS, compiled with gcc on x86-64 (signed
 * char), one row per key, columns in KEY_HASH_NAMES order.
 */
const FROM_C = [
  "3392050242 3111502092 31879 26807 3904355907 2248259518 2248273036 84696446 3826002220 2472816263 1262581116 3768813200",
  "3328923845 2498230565 2257596867 19444 3421780262 737744598 600231420 605325334 3146166556 3841726064 3077965456 427260662",
  "4182965735 586569784 2667556901 7926 2666930069 2765990338 4147734504 837857890 3214735720 128288300 2884435735 266177376",
  "3043211087 781738503 3781445233 8052 2675185635 3550362913 2927313545 2796551329 1350311305 3723237737 2384768711 76303748",
  "1395890823 3518683962 2085640118 22680 1486392595 4124678534 1216506004 3605494790 2316077684 2808023792 1625384509 2759591254",
  "1369346549 2642219166 581169352 16719 1095738169 2112060110 3890508048 3922226286 76545936 471461527 818385189 314054204",
  "26298542 2546851174 15296452 3588 235179326 3035330621 3033280513 376872957 1023043777 3203012475 2111574343 934048990",
  "2087468527 2356330952 2088021268 14409 944319484 2488291905 4206748569 3160658113 2981610777 307729637 1806632351 2301080244",
  "993209742 1828424129 2472060460 1775 116340262 2480108842 1360516388 1789287754 1466430692 987600293 642400888 2686121493",
  "3725600580 1005733085 512908163 15072 3135248665 1813151711 1912619183 817040671 2631724399 3414998417 3646443695 426025656",
].map((row) => row.split(" ").map(Number));

function _hash(name: KeyHashName, key: string): number {
  return KEY_HASHES[name](encoder.encode(key));
}

Deno.test("KEY_HASHES has exactly twemproxy 0.5's twelve hashes", () => {
  assert.deepEqual(Object.keys(KEY_HASHES).sort(), [...KEY_HASH_NAMES].sort());
  assert.equal(KEY_HASH_NAMES.length, 12);
  assert.equal(KEY_HASHES.fnv1a_64, fnv1a64, "the default is the existing fnv1a64");
});

Deno.test("every hash matches twemproxy's C code on ASCII and non-ASCII keys", () => {
  const wrong: string[] = [];
  KEYS.forEach((key, row) => {
    KEY_HASH_NAMES.forEach((name, column) => {
      const got = KEY_HASHES[name](key);
      if (got !== FROM_C[row][column]) {
        wrong.push(`${name}(${key.join(",")}) = ${got}, C says ${FROM_C[row][column]}`);
      }
    });
  });
  assert.deepEqual(wrong, []);
});

Deno.test("published vectors: CRC-32, CRC-16/XMODEM, FNV, one-at-a-time, MD5", () => {
  assert.equal(_hash("crc32a", "123456789"), 0xcbf43926); // the CRC-32 check value
  assert.equal(crc32a(encoder.encode("a")), 0xe8b7be43);
  assert.equal(_hash("crc32", "123456789"), (0xcbf43926 >>> 16) & 0x7fff);
  assert.equal(_hash("crc16", "123456789") & 0xffff, 0x31c3); // the XMODEM check value
  assert.equal(_hash("fnv1_32", "foobar"), 0x31f0b262);
  assert.equal(_hash("fnv1a_32", "foobar"), 0xbf9cf968);
  assert.equal(_hash("fnv1_64", "foobar"), 0xa4dda9c2); // 0x340d8765a4dda9c2
  assert.equal(_hash("fnv1_64", "a"), 0x8601b7be); // 0xaf63bd4c8601b7be
  assert.equal(_hash("one_at_a_time", "a"), 0xca2e9442);
  assert.equal(_hash("one_at_a_time", "The quick brown fox jumps over the lazy dog"), 0x519e91f5);
  assert.equal(_hash("md5", "a"), 0xb975c10c); // md5("a") = 0cc175b9..., little-endian
});

Deno.test("crc16 keeps twemproxy's unmasked upper bits", () => {
  // The C state is a uint32_t that is shifted left and never masked to 16 bits.
  const hash = crc16(encoder.encode("123456789"));
  assert.ok(hash > 0xffff, `${hash}`);
});

Deno.test("every hash returns an unsigned 32-bit integer and reads only its view", () => {
  const whole = encoder.encode("xxuser:42:profile-with-a-long-tailyy");
  const view = whole.subarray(2, whole.length - 2);
  const copy = view.slice();
  for (const name of KEY_HASH_NAMES) {
    assert.equal(KEY_HASHES[name](view), KEY_HASHES[name](copy), name);
    for (let length = 1; length < 40; length++) {
      const hash = KEY_HASHES[name](copy.subarray(0, length));
      assert.ok(Number.isInteger(hash) && hash >= 0 && hash <= 0xffffffff, `${name}: ${hash}`);
    }
  }
});
