/** Twemproxy's `hash_tag`: hash only the part of a key between two tag bytes. */

/**
 * The part of `key` to hash under the two-byte hash tag `tag` (such as `{}`): the
 * bytes between the first `tag[0]` and the first `tag[1]` after it, when both are
 * found with at least one byte between them; otherwise the whole key (also when
 * `tag` is null). Always a view into `key`, never a copy.
 */
export function hashTagSlice(key: Uint8Array, tag: Uint8Array | null): Uint8Array {
  if (tag === null || tag.length < 2) return key;
  const start = key.indexOf(tag[0]);
  if (start < 0) return key;
  const end = key.indexOf(tag[1], start + 1);
  if (end - start <= 1) return key; // not found (-1) or nothing between the tags
  return key.subarray(start + 1, end);
}
