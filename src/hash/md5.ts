/** MD5 (RFC 1321) from node:crypto: ketama hashes server names with it, off the hot path. */
import { createHash } from "node:crypto";

/** The 16-byte MD5 digest of `data`. */
export function md5(data: Uint8Array): Uint8Array {
  const digest = createHash("md5").update(data).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}
