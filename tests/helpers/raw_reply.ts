/** Comparing raw reply bytes, for tests that hold Aster to redis-server byte for byte. */
const decoder = new TextDecoder();

/** True when two replies are the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The start of a reply as readable text, for assertion messages. */
export function showRaw(reply: Uint8Array, max = 200): string {
  return JSON.stringify(decoder.decode(reply.subarray(0, max))) +
    (reply.length > max ? `... (${reply.length} bytes)` : "");
}
