/** Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key or its {hash tag}, mod 16384. */
import calculateSlot from "cluster-key-slot";

/** The slot of `key`, computed on the raw bytes (cluster-key-slot indexes byte arrays as-is). */
export function keySlot(key: Uint8Array): number {
  return calculateSlot(key as unknown as string);
}
