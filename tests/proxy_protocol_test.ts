/**
 * `proxy_protocol = true`: a raw socket sends PROXY v1/v2 headers (whole, in pieces, with the
 * first request in the same write, malformed) to a real Aster over a real redis-server. The
 * address a header names is what Aster's logs and max_clients see. HAProxy's own send-proxy /
 * send-proxy-v2 are in haproxy_test.ts.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { startRedis } from "./helpers/servers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function resp(...args: string[]): Uint8Array {
  return enc.encode(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Reads until `want` bytes came or the peer closed (null then), within 5 s. */
async function readSome(conn: Deno.Conn, want: number): Promise<string | null> {
  const buf = new Uint8Array(4096);
  let got = "";
  const deadline = Date.now() + 5000;
  while (got.length < want) {
    const timer = new Promise<"late">((r) => setTimeout(() => r("late"), deadline - Date.now()));
    const n = await Promise.race([conn.read(buf), timer]);
    if (n === "late") throw new Error(`no reply within 5 s (got ${JSON.stringify(got)})`);
    if (n === null) return got === "" ? null : got;
    got += dec.decode(buf.subarray(0, n));
  }
  return got;
}

/** Polls the log (up to 5 s) for `pattern`. */
async function logShows(log: () => string, pattern: RegExp): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (pattern.test(log())) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function startPair(extra: Record<string, number | boolean> = {}) {
  const redis = await startRedis();
  const aster = await startAster([{
    name: "pp",
    servers: [`127.0.0.1:${redis.port}:1 r1`],
    proxy_protocol: true,
    ...extra,
  }], { env: { ASTER_LOG: "debug" } });
  return {
    redis,
    aster,
    connect: () => Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] }),
    async [Symbol.asyncDispose]() {
      await aster.stop();
      await redis.stop();
    },
  };
}

testBothIo(
  "PROXY v1 TCP4 and its first request in one write; UNKNOWN keeps the socket's address",
  async () => {
    await using pair = await startPair();
    const conn = await pair.connect();
    try {
      const header = enc.encode("PROXY TCP4 192.0.2.7 127.0.0.1 51234 6379\r\n");
      await conn.write(concat(header, resp("SET", "pp:v1", "x"), resp("GET", "pp:v1")));
      assert.equal(await readSome(conn, 12), "+OK\r\n$1\r\nx\r\n");
    } finally {
      conn.close();
    }
    assert.ok(
      await logShows(pair.aster.log, /client \d+ from 192\.0\.2\.7:51234/),
      pair.aster.log(),
    );

    const unknown = await pair.connect();
    try {
      await unknown.write(concat(enc.encode("PROXY UNKNOWN\r\n"), resp("PING")));
      assert.equal(await readSome(unknown, 7), "+PONG\r\n");
    } finally {
      unknown.close();
    }
  },
);

testBothIo("PROXY v2 over IPv6 sent a few bytes at a time, then requests", async () => {
  await using pair = await startPair();
  const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
  const dst = [...new Array(15).fill(0), 1];
  const body = [...src, ...dst, 0x04, 0xd2, 0x18, 0xeb];
  const header = new Uint8Array([...SIG, 0x21, 0x21, 0, body.length, ...body]);
  const bytes = concat(header, resp("PING"));
  const conn = await pair.connect();
  try {
    // Pieces that split the signature, the length and the address block.
    for (let at = 0; at < bytes.length; at += 5) {
      await conn.write(bytes.subarray(at, at + 5));
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(await readSome(conn, 7), "+PONG\r\n");
  } finally {
    conn.close();
  }
  assert.ok(await logShows(pair.aster.log, /client \d+ from \[2001:db8::42\]:1234/));
});

testBothIo(
  "a malformed PROXY header closes that client without a reply; others are served",
  async () => {
    await using pair = await startPair();
    for (
      const bad of [
        resp("PING"), // no header at all
        enc.encode("PROXY TCP4 300.1.1.1 127.0.0.1 1 2\r\n"),
        new Uint8Array([...SIG, 0x31, 0x11, 0, 12, ...new Array(12).fill(1)]), // version 3
      ]
    ) {
      const conn = await pair.connect();
      try {
        await conn.write(bad);
        assert.equal(await readSome(conn, 1), null, `closed after ${dec.decode(bad)}`);
      } finally {
        conn.close();
      }
    }
    assert.ok(await logShows(pair.aster.log, /bad PROXY protocol header/));
    const good = await pair.connect();
    try {
      await good.write(
        concat(enc.encode("PROXY TCP4 10.9.8.7 10.0.0.1 1000 6379\r\n"), resp("PING")),
      );
      assert.equal(await readSome(good, 7), "+PONG\r\n");
    } finally {
      good.close();
    }
  },
);

Deno.test("max_clients refuses by the address the PROXY header names", async () => {
  await using pair = await startPair({ max_clients: 1 });
  const first = await pair.connect();
  const second = await pair.connect();
  try {
    await first.write(
      concat(enc.encode("PROXY TCP4 10.0.0.1 10.0.0.2 1111 6379\r\n"), resp("PING")),
    );
    assert.equal(await readSome(first, 7), "+PONG\r\n");
    await second.write(enc.encode("PROXY TCP4 198.51.100.4 10.0.0.2 4242 6379\r\n"));
    assert.equal(await readSome(second, 35), "-ERR max number of clients reached\r\n");
  } finally {
    first.close();
    second.close();
  }
  assert.ok(await logShows(pair.aster.log, /client 198\.51\.100\.4:4242 refused/));
});
