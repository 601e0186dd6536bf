/**
 * memcache keys as memcached 1.6 takes them, proved against a real memcached: every byte
 * value and generated keys over the whole byte range go through the text and meta
 * commands, directly and through Aster (over two memcached), and the replies must match
 * byte for byte.
 *
 * Replay a failure with `ASTER_TEST_SEED=<seed> deno test -A tests/memcache_keys_test.ts`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { startAster } from "./helpers/aster.ts";
import { latin1, MemcacheClient, useMemcached } from "./helpers/memcache_client.ts";
import { testSeed } from "./helpers/random.ts";

const SEED = testSeed(0x6b65_7973);
const GENERATED_KEYS = 300;
/** Longest wait for one batch's replies. */
const BATCH_DEADLINE_MS = 5000;
const SPACE = 0x20;
const LF = 0x0a;

/** The key as memcached sees it: the line is a C string, so it ends at a NUL. */
function effectiveLength(key: Uint8Array): number {
  const nul = key.indexOf(0);
  return nul < 0 ? key.length : nul;
}

/**
 * Text and meta requests on one key, in batches each ending in `mn` (whose `MN` closes
 * it). Storage lines with a key over 250 bytes are left out: memcached then reads their
 * data block as a command, which Aster deliberately does not (it discards the block).
 * Requests with such a key go one per batch: a retrieval memcached refuses for its key
 * length drops the replies still queued before it on that connection ("Kill any stacked
 * responses" in proto_text.c), so a pipeline of them loses replies there, not in Aster.
 */
function batches(key: string, short: boolean): string[] {
  const lines = [
    `get ${key}\r\n`,
    short ? `set ${key} 0 0 1\r\nv\r\n` : "",
    `get ${key} zz\r\n`,
    `mg ${key} v f t\r\n`,
    short ? `append ${key} 0 0 1\r\nx\r\n` : "",
    `gat 0 ${key}\r\n`,
    `touch ${key} 100\r\n`,
    `incr ${key} 1\r\n`,
    short ? `ms ${key} 1 T0\r\n5\r\n` : "",
    `ma ${key}\r\n`,
    `mg ${key} v\r\n`,
    `delete ${key}\r\n`,
    `md ${key}\r\n`,
  ].filter((line) => line !== "");
  return short ? [lines.join("") + "mn\r\n"] : lines.map((line) => line + "mn\r\n");
}

/** Reads until the replies end with the batch's `MN` (or the peer closes), bounded. */
async function readBatch(client: MemcacheClient): Promise<string> {
  let out = "";
  const deadline = Date.now() + BATCH_DEADLINE_MS;
  while (!out.endsWith("MN\r\n")) {
    const left = deadline - Date.now();
    if (left <= 0) return out + "<timeout>";
    const more = await client.readSome(left).catch(() => null);
    if (more === null) return out + "<timeout>";
    if (more === "") return out + "<closed>";
    out += more;
  }
  return out;
}

Deno.test("memcache keys: every byte memcached takes in a key, text and meta, as memcached", async () => {
  await using stack = new AsyncDisposableStack();
  const direct = await useMemcached(stack);
  const a = await useMemcached(stack);
  const b = await useMemcached(stack);
  const aster = stack.use(
    await startAster([{
      cache_type: "memcache",
      servers: [`127.0.0.1:${a.port}:1`, `127.0.0.1:${b.port}:1`],
    }]),
  );
  const plain = stack.use(await MemcacheClient.connect(direct.port));
  const proxied = stack.use(await MemcacheClient.connect(aster.ports[0]));
  let compared = 0;
  const check = async (key: Uint8Array) => {
    const text = latin1(key);
    for (const request of batches(text, effectiveLength(key) <= 250)) {
      await plain.send(request);
      const want = await readBatch(plain);
      await proxied.send(request);
      const got = await readBatch(proxied);
      assert.equal(got, want, `key ${JSON.stringify(text)} (${key.length} bytes)`);
    }
    compared++;
  };

  // Every byte value but the separators (space, "\n"): alone, inside a key, at the limit.
  for (let byte = 0; byte < 256; byte++) {
    if (byte === SPACE || byte === LF) continue;
    await check(Uint8Array.of(byte));
    await check(Uint8Array.of(0x61, byte, 0x62));
    await check(new Uint8Array(250).fill(byte));
    await check(new Uint8Array(251).fill(byte));
  }
  // Generated keys over the whole byte range, lengths around the 250-byte limit.
  const keyByte = fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom(0x00, 0x01, 0x09, 0x0d, 0x1b, 0x7f, 0x80, 0xff),
  ).filter((byte) => byte !== SPACE && byte !== LF);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.array(keyByte, { minLength: 1, maxLength: 20 }),
        fc.array(keyByte, { minLength: 240, maxLength: 260 }),
      ),
      async (bytes) => {
        await check(Uint8Array.from(bytes));
      },
    ),
    { seed: SEED, numRuns: GENERATED_KEYS },
  );
  assert.equal(compared, 254 * 4 + GENERATED_KEYS);

  // A key of 251 bytes in a storage line: the same error line (Aster then discards the
  // data block, where memcached would read it as a command).
  const long = latin1(new Uint8Array(251).fill(0x01));
  assert.equal(
    await proxied.request(`set ${long} 0 0 1\r\nv\r\n`),
    "CLIENT_ERROR bad command line format\r\n",
  );
  await plain.send(`set ${long} 0 0 1\r\nv\r\n`);
  assert.equal(await plain.readText(), "CLIENT_ERROR bad command line format\r\n");
});
