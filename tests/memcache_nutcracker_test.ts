/**
 * Aster in `memcache` mode places keys exactly as nutcracker (twemproxy) does over the same
 * memcached servers: keys written through one are read through the other, and each key
 * sits on exactly one server.
 */

import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { spreadKeys } from "./helpers/keys.ts";
import { MemcacheClient, useMemcached, valuesOn } from "./helpers/memcache_client.ts";
import { startNutcracker } from "./helpers/servers.ts";

const HOST = "127.0.0.1";

Deno.test("nutcracker and Aster agree in memcache mode: aliased servers", async () => {
  await _checkAgreement({ weights: [1, 1, 1], aliases: true });
});

Deno.test("nutcracker and Aster agree in memcache mode: host:port names, weights 2/1/3", async () => {
  // A server on port 11211 is named by its host alone; 11211 cannot be bound reliably
  // here, so that case is left to the KetamaRing unit tests.
  await _checkAgreement({ weights: [2, 1, 3], aliases: false });
});

/** Writes 1,000 keys through each proxy and reads them through the other. */
async function _checkAgreement(opts: { weights: number[]; aliases: boolean }): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const backends = [];
  for (const _ of opts.weights) backends.push(await useMemcached(stack));
  const servers = backends.map((m, i) =>
    `${HOST}:${m.port}:${opts.weights[i]}${opts.aliases ? ` cache-${i}` : ""}`
  );
  const nutcracker = stack.use(await startNutcracker({ servers, redis: false }));
  const aster = stack.use(await startAster([{ cache_type: "memcache", servers }]));
  const viaNutcracker = stack.use(await MemcacheClient.connect(nutcracker.port));
  const viaAster = stack.use(await MemcacheClient.connect(aster.ports[0]));

  const tag = opts.aliases ? "a" : "h";
  const fromNutcracker = _keys(`${tag}n`);
  const fromAster = _keys(`${tag}a`);
  await _setAll(viaNutcracker, fromNutcracker);
  await _setAll(viaAster, fromAster);

  // Each key is on exactly one server, and every server has a share (the shares follow the
  // weights only roughly: ring points are hashed from names that include random ports).
  const all = [...fromNutcracker, ...fromAster];
  const held = await Promise.all(backends.map((m) => valuesOn(m.port, all)));
  for (const key of all) {
    assert.equal(held.filter((values) => values.get(key) === _value(key)).length, 1, key);
  }
  held.forEach((values, i) => assert.ok(values.size >= 20, `server ${i} holds ${values.size}`));

  // Read through the other proxy: a miss means the two placed the key differently.
  await _getAll(viaAster, fromNutcracker, "set through nutcracker, read through Aster");
  await _getAll(viaNutcracker, fromAster, "set through Aster, read through nutcracker");
}

/** 1,000 keys of several shapes: scrambled, sequential, numeric, long. */
function _keys(prefix: string): string[] {
  return [
    ...spreadKeys(`${prefix}-spread`, 400),
    ...Array.from({ length: 300 }, (_, i) => `${prefix}:user:${i}`),
    ...Array.from({ length: 200 }, (_, i) => `${i * 7919}${prefix}`),
    ...Array.from({ length: 100 }, (_, i) => `${prefix}/${"x".repeat(i + 100)}/${i}`),
  ];
}

function _value(key: string): string {
  return `value-of-${key.length}-${key.slice(0, 20)}`;
}

/** Sets every key (pipelined, 100 a write); each must be STORED. */
async function _setAll(client: MemcacheClient, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 100) {
    const chunk = keys.slice(i, i + 100);
    await client.send(
      chunk.map((key) => {
        const value = _value(key);
        return `set ${key} 0 0 ${value.length}\r\n${value}\r\n`;
      }).join(""),
    );
    for (const key of chunk) assert.equal(await client.readText(), "STORED\r\n", `set ${key}`);
  }
}

/** Multi-gets every key, 50 at a time; each must come back with its value, in order. */
async function _getAll(client: MemcacheClient, keys: string[], what: string): Promise<void> {
  const missing: string[] = [];
  for (let i = 0; i < keys.length; i += 50) {
    const chunk = keys.slice(i, i + 50);
    const reply = await client.request(`get ${chunk.join(" ")}\r\n`);
    const expected = chunk.map((key) => {
      const value = _value(key);
      return `VALUE ${key} 0 ${value.length}\r\n${value}\r\n`;
    });
    if (reply !== expected.join("") + "END\r\n") {
      missing.push(...chunk.filter((_, k) => !reply.includes(expected[k])));
      assert.ok(missing.length > 0, `${what}: a get reply is malformed:\n${reply.slice(0, 500)}`);
    }
  }
  assert.deepEqual(missing, [], `${what}: ${missing.length} of ${keys.length} keys missed`);
}
