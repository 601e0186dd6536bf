/**
 * Keys for tests over a ketama ring (`redis`, `memcache` and `memcache_binary` modes).
 *
 * A backend without an alias is named by its `host:port` on the ring, and the helpers
 * start backends on free ports, so the ring differs from run to run. Keys that differ
 * only in their last bytes, such as `f0` .. `f499`, do not sample it: twemproxy's fnv1a_64
 * keeps 32 bits and mixes trailing bytes weakly, and those 500 keys hash into 6 clumps
 * covering 0.3% of the ring, so for about 1 port pair in 100 every one of them (and any
 * one other key) lands on the same server. Tests that need keys on several servers take
 * `spreadKeys`, or name the backends by alias so that the ring is the same every run.
 */
import assert from "node:assert/strict";
import type { RespClient } from "./resp_client.ts";

/**
 * `count` distinct keys spread over a ketama ring: `prefix:` and a scrambled suffix (a
 * bijection of i), whose hashes spread where `prefix:0..n` would crowd onto one node.
 */
export function spreadKeys(prefix: string, count: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `${prefix}:${(Math.imul(i + 1, 2654435761) >>> 0).toString(36)}`,
  );
}

/**
 * Which of `servers` (redis-server ports) holds each of `keys` once written through
 * `client` (Aster); asserts that each is on exactly one. The keys are deleted after.
 */
export async function serversOf(
  client: RespClient,
  servers: RespClient[],
  keys: string[],
): Promise<number[]> {
  const sets = await client.pipeline(keys.map((key) => ["SET", key, "1"]));
  assert.deepEqual(sets, keys.map(() => "OK"));
  const holders: number[][] = keys.map(() => []);
  for (const [index, server] of servers.entries()) {
    const found = await server.pipeline(keys.map((key) => ["EXISTS", key]));
    found.forEach((exists, k) => exists === 1 && holders[k].push(index));
  }
  await client.pipeline(keys.map((key) => ["DEL", key]));
  return holders.map((on, k) => {
    assert.equal(on.length, 1, `${keys[k]} is on servers [${on}], not on exactly one`);
    return on[0];
  });
}

/**
 * A key that Aster (through `client`) places on another of `servers` than `anchor`: the
 * first of 64 spread keys `prefix:...` that does. Asserts there is one, and that every key
 * is on exactly one server.
 */
export async function keyOnAnotherServer(
  client: RespClient,
  servers: RespClient[],
  anchor: string,
  prefix: string,
): Promise<string> {
  const candidates = spreadKeys(prefix, 64);
  const [home, ...elsewhere] = await serversOf(client, servers, [anchor, ...candidates]);
  const far = candidates.find((_, i) => elsewhere[i] !== home);
  assert.ok(far !== undefined, `all 64 keys ${prefix}:... are on server ${home}, as ${anchor} is`);
  return far;
}
