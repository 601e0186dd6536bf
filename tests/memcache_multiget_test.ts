/**
 * Long memcache multi-get lines (`max_multiget_line`) against real memcached: the lines
 * client libraries build from get_multi calls are served through Aster as memcached serves
 * them directly; a line past the limit is refused and only that client is closed.
 */
import assert from "node:assert/strict";
import { startAster } from "./helpers/aster.ts";
import { MemcacheClient, useMemcached } from "./helpers/memcache_client.ts";

const HOST = "127.0.0.1";

/** `count` distinct keys of `length` bytes. */
function keysOf(count: number, length: number): string[] {
  return Array.from({ length: count }, (_, i) => `mk:${i}:`.padEnd(length, "x"));
}

/** Stores `value-<i>` under every `every`-th key, pipelined, and checks every STORED. */
async function storeSome(client: MemcacheClient, keys: string[], every: number): Promise<void> {
  const stored = keys.filter((_, i) => i % every === 0);
  const sets = stored.map((key, i) => `set ${key} ${i} 0 ${`value-${i}`.length}\r\nvalue-${i}\r\n`);
  await client.send(sets.join(""));
  const replies = await client.readUntil("STORED\r\n", 1).then(async (first) => {
    for (let i = 1; i < stored.length; i++) first.push(await client.readText());
    return first;
  });
  assert.ok(replies.every((reply) => reply === "STORED\r\n"), JSON.stringify(replies.slice(0, 3)));
}

Deno.test("a get of 4,000 keys (a 160 KB line) and an 8 MB one: through Aster as from memcached", async () => {
  await using stack = new AsyncDisposableStack();
  const direct = await useMemcached(stack);
  const backends = [
    await useMemcached(stack),
    await useMemcached(stack),
    await useMemcached(stack),
  ];
  const aster = stack.use(
    await startAster([{
      cache_type: "memcache",
      servers: backends.map((m, i) => `${HOST}:${m.port}:1 mc${i}`),
    }]),
  );
  const plain = stack.use(await MemcacheClient.connect(direct.port));
  const proxied = stack.use(await MemcacheClient.connect(aster.ports[0]));
  plain.timeoutMs = proxied.timeoutMs = 20_000;

  const keys = keysOf(4000, 40);
  await storeSome(plain, keys, 3);
  await storeSome(proxied, keys, 3);
  // cas values differ between one memcached and three: compared without them.
  const noCas = (reply: string) => reply.replace(/^(VALUE \S+ \d+ \d+) \d+\r\n/gm, "$1\r\n");
  let got = "";
  for (const head of ["get", "gets"]) {
    const line = `${head} ${keys.join(" ")}\r\n`;
    assert.ok(line.length > 160_000, `${line.length} bytes`);
    const want = await plain.request(line);
    assert.equal(want.match(/^VALUE /gm)?.length, 1334);
    got = await proxied.request(line);
    assert.equal(noCas(got), noCas(want), head);
  }
  // memcached closes a gat line this long (only get/gets may pass 1 KB without a "\n"
  // there); Aster serves it like gets (a touch gives new cas values).
  assert.equal(noCas(await proxied.request(`gats 0 ${keys.join(" ")}\r\n`)), noCas(got));

  // 8 MiB before the "\n" (the default max_multiget_line), in 100-byte keys.
  const many = keysOf(Math.floor((8 * 1024 * 1024 - 4) / 101), 100);
  await storeSome(plain, many, 83);
  await storeSome(proxied, many, 83);
  const huge = `gets ${many.join(" ")}\r\n`;
  assert.ok(huge.length > 8_000_000 && huge.length - 1 <= 8 * 1024 * 1024, `${huge.length}`);
  const want = await plain.request(huge);
  assert.equal(want.match(/^VALUE /gm)?.length, Math.ceil(many.length / 83));
  assert.equal(noCas(await proxied.request(huge)), noCas(want));
  // The connection goes on, its buffer back to small.
  assert.equal(
    await proxied.request(`get ${many[0]}\r\n`),
    await plain.request(`get ${many[0]}\r\n`),
  );
});

Deno.test("max_multiget_line: a longer retrieval line is refused and that client closed", async () => {
  await using stack = new AsyncDisposableStack();
  const backend = await useMemcached(stack);
  const aster = stack.use(
    await startAster([{
      cache_type: "memcache",
      servers: [`${HOST}:${backend.port}:1`],
      max_multiget_line: 100_000,
    }]),
  );
  const bystander = stack.use(await MemcacheClient.connect(aster.ports[0]));
  const keys = keysOf(4000, 40); // a 164 KB line
  const short = `get ${keys.slice(0, 2000).join(" ")}\r\n`;
  assert.ok(short.length < 100_000);
  assert.equal(await bystander.request(short), "END\r\n");
  // A long gat goes to memcached in lines it takes (it closes a connection on a gat line
  // over 1 KB, which would fail every client sharing it); the bystander is unharmed.
  assert.equal(await bystander.request(`gat 0 ${keys.slice(0, 2000).join(" ")}\r\n`), "END\r\n");
  assert.equal(await bystander.request(`gats ${"0".repeat(1100)}7 ${keys[0]}\r\n`), "END\r\n");
  assert.equal(await bystander.request(short), "END\r\n");

  // memcached itself would close without a word (it serves get lines of any length); Aster
  // says why first, complete line or not.
  for (const ending of ["\r\n", ""]) {
    const client = stack.use(await MemcacheClient.connect(aster.ports[0]));
    await client.send(`get ${keys.join(" ")}${ending}`).catch(() => {});
    assert.equal(await client.readText(), "CLIENT_ERROR line too long\r\n");
    assert.ok(await client.closedWithin(2000));
  }
  // Other commands keep memcached's 2048 bytes.
  const other = stack.use(await MemcacheClient.connect(aster.ports[0]));
  await other.send(`delete ${"k ".repeat(1100)}\r\n`);
  assert.equal(await other.readText(), "CLIENT_ERROR line too long\r\n");
  assert.ok(await other.closedWithin(2000));
  assert.equal(await bystander.request(short), "END\r\n", "other clients are served");
});
