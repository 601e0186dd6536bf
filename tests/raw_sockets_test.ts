/**
 * Edge cases of the raw-socket layer (`io = "ffi"`, and `"auto"` with --allow-ffi) seen
 * from outside, with Aster started as `deno task start` starts it: OS errors named in
 * replies, mixed workers (raw listener, backends on Deno's sockets), injected faults.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { ReplyTimeout, RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { encodeCommand } from "../src/protocol/resp/encoder.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

testBothIo(
  "a refused or reset backend connection is named by its OS error, as Deno words it",
  async () => {
    await using stack = new AsyncDisposableStack();
    const redis = stack.use(await startRedis());
    const dead = await freePort(); // nothing listens here
    const aster = stack.use(
      await startAster([
        { servers: [`127.0.0.1:${redis.port}:1 live`], read_timeout: 10_000 },
        { servers: [`127.0.0.1:${dead}:1 dead`] },
      ]),
    );
    const toDead = stack.use(await RespClient.connect(aster.ports[1]));
    const refused = await toDead.command("GET", "k");
    assert.ok(
      refused instanceof RespErrorReply,
      `expected an error, got ${JSON.stringify(refused)}`,
    );
    assert.match(refused.message, /dead/);
    assert.match(refused.message, /Connection refused \(os error 111\)/);

    const client = stack.use(await RespClient.connect(aster.ports[0]));
    assert.equal(await client.command("SET", "k", "v"), "OK");
    // The request waits unread in a stopped redis-server's socket; killed, the kernel resets
    // the connection (unread data), and Aster's read of the reply fails with ECONNRESET.
    redis.kill("SIGSTOP");
    const pending = client.command("GET", "k");
    await new Promise((resolve) => setTimeout(resolve, 200));
    redis.kill("SIGKILL");
    const reset = await pending;
    assert.ok(reset instanceof RespErrorReply, `expected an error, got ${JSON.stringify(reset)}`);
    assert.match(reset.message, /live/);
    assert.match(reset.message, /Connection reset by peer \(os error 104\)/);
  },
);

/** INFO's io lines of the worker serving `client`. */
async function _ioInfo(client: RespClient): Promise<{ io: string; raw: number }> {
  const info = String(text(await client.command("INFO", "server")));
  return {
    io: /\r\nio:(\w+)\r\n/.exec(info)?.[1] ?? "?",
    raw: Number(/\r\nio_raw_sockets:(\d+)\r\n/.exec(info)?.[1]),
  };
}

/** Waits (up to 5 s) until `client` is its worker's only client: others' closes were read. */
async function _onlyClient(client: RespClient): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const info = String(text(await client.command("INFO", "clients")));
    if (/\r\nconnected_clients:1\r\n/.test(info)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether this host has IPv6 loopback (without it the "IPv6" backend goes by name too). */
const IPV6 = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

for (const io of ["ffi", "auto"]) {
  Deno.test(`io = ${io}, mixed: a raw 127.0.0.1 listener, backends by host name and IPv6 on Deno's sockets beside a raw IPv4 one`, async () => {
    await using stack = new AsyncDisposableStack();
    // docker/aster.toml names every backend by host name: those take Deno's sockets.
    const byName = stack.use(await startRedis());
    const byIpv6 = stack.use(
      await startRedis(IPV6 ? { args: ["--bind", "127.0.0.1", "::1"] } : {}),
    );
    const byIpv4 = stack.use(await startRedis());
    const servers = [
      `localhost:${byName.port}:1 name`,
      IPV6 ? `[::1]:${byIpv6.port}:1 ipv6` : `localhost:${byIpv6.port}:1 ipv6`,
      `127.0.0.1:${byIpv4.port}:1 ipv4`,
    ];
    // A second cluster (its own worker) without the IPv4 backend, to count raw sockets by.
    const aster = stack.use(
      await startAster([{ io, servers, hash_tag: "{}" }, { io, servers: servers.slice(0, 2) }]),
    );
    const client = stack.use(await RespClient.connect(aster.ports[0]));
    const keys = Array.from({ length: 300 }, (_, n) => `mixed:${n}`);
    const sets = await client.pipeline(keys.map((key) => ["SET", key, `v-${key}`]));
    assert.ok(sets.every((reply) => reply === "OK"), JSON.stringify(sets.slice(0, 3)));
    assert.deepEqual(text(await client.command("MGET", ...keys)), keys.map((k) => `v-${k}`));
    const gets = await client.pipeline(keys.map((key) => ["GET", key]));
    assert.deepEqual(gets.map(text), keys.map((k) => `v-${k}`));
    // Busy raw sockets must not starve Deno's: 20 clients pipelining at once over all three.
    const clients = await Promise.all(
      Array.from({ length: 20 }, () => RespClient.connect(aster.ports[0])),
    );
    for (const c of clients) stack.use(c);
    await Promise.all(clients.map(async (c, i) => {
      for (let round = 0; round < 5; round++) {
        const replies = await c.pipeline(keys.map((key) => ["GET", key]));
        assert.deepEqual(replies.map(text), keys.map((k) => `v-${k}`), `client ${i}`);
      }
      c.close();
    }));
    // Every backend holds some keys: each of the three connections carried traffic.
    for (const server of [byName, byIpv6, byIpv4]) {
      await using direct = await RespClient.connect(server.port);
      const size = Number(await direct.command("DBSIZE"));
      assert.ok(size > 0 && size < 300, `backend on ${server.port} holds ${size} keys`);
    }
    // Both workers run raw sockets; of the backends only the IPv4 one is raw (the counts
    // differ by it), and a client of the raw listener is raw (one more while connected).
    // The 20 clients' sockets close when Aster reads their EOF: count once it has.
    await _onlyClient(client);
    const mixed = await _ioInfo(client);
    const other = stack.use(await RespClient.connect(aster.ports[1]));
    assert.equal(await other.command("SET", "other", "o"), "OK");
    assert.equal(text(await other.command("GET", "other")), "o");
    const withoutIpv4 = await _ioInfo(other);
    assert.equal(mixed.io, "ffi");
    assert.equal(withoutIpv4.io, "ffi");
    assert.equal(mixed.raw - withoutIpv4.raw, 1, JSON.stringify({ mixed, withoutIpv4 }));
    const second = stack.use(await RespClient.connect(aster.ports[0]));
    assert.equal((await _ioInfo(second)).raw, mixed.raw + 1);
    second.close();
    assert.equal(await aster.stop(), 0);
  });
}

/** Faults the libc layer injects in the tests below (see src/runtime/deno/ffi/faults.ts). */
const FAULTS = "seed=1729,eagain=0.1,eintr=0.1,short=0.25";

Deno.test("injected EAGAIN, EINTR and 1-byte reads and writes: the differential and pipeline-order tests still pass", async () => {
  // The injector is on and makes each kind of fault, on both client and backend sockets.
  {
    await using redis = await startRedis();
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1 r`] }], {
      env: { ASTER_TEST_IO_FAULTS: FAULTS },
    });
    await using client = await RespClient.connect(aster.ports[0]);
    const big = "b".repeat(256 * 1024);
    assert.equal(await client.command("SET", "big", big), "OK");
    assert.equal(text(await client.command("GET", "big")), big);
    const replies = await client.pipeline(
      Array.from({ length: 500 }, (_, n) => ["ECHO", `e${n}`]),
    );
    assert.deepEqual(replies.map(text), Array.from({ length: 500 }, (_, n) => `e${n}`));
    for (const kind of ["eagain", "eintr", "short"]) {
      assert.match(aster.log(), new RegExp(`first ${kind} fault injected`), aster.log());
    }
  }
  // Those test files as they are, with the faults in every Aster they start (not in the
  // [io = deno] variants, which have no raw sockets).
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-sys",
      "--filter",
      // Their raw-socket tests (names not ending in "[io = deno]"), and memcache's
      // differential test.
      "/^(redis mode|memcache differential).*[^\\]]$/",
      new URL("./redis_differential_test.ts", import.meta.url).pathname,
      new URL("./redis_pipeline_test.ts", import.meta.url).pathname,
      new URL("./memcache_text_test.ts", import.meta.url).pathname,
    ],
    env: { ASTER_TEST_IO_FAULTS: FAULTS, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const report = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, report);
  // Both files ran (their raw-socket tests only), none failed.
  assert.match(report, /random command stream gives the same replies .* ok/, report);
  assert.match(report, /10,000-command pipeline in one write .* ok/, report);
  assert.match(report, /memcache differential: .* ok/, report);
  assert.doesNotMatch(report, /\[io = deno\] \.\.\./, report);
});

Deno.test("injected ECONNRESET: every request gets exactly one reply, in order, or its connection closes; Aster keeps serving", async () => {
  await using redis = await startRedis();
  const values = Array.from({ length: 100 }, (_, n) => `value-${n}-${"v".repeat(n * 10)}`);
  {
    await using direct = await RespClient.connect(redis.port);
    await direct.pipeline(values.map((value, n) => ["SET", `k${n}`, value]));
  }
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1 r`] }], {
    env: { ASTER_TEST_IO_FAULTS: `${FAULTS},reset=0.005` },
  });
  const stats = { values: 0, errors: 0, closed: 0, complete: 0 };
  const errorTexts = new Set<string>();
  const requests = values.map((_, n) => ["GET", `k${n}`]);
  const pipeline = _concat(requests.map((args) => encodeCommand(args.map(_utf8))));
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: 5 }, async () => {
      await using client = await RespClient.connect(aster.ports[0]);
      await client.sendRaw(pipeline);
      let n = 0;
      try {
        for (; n < requests.length; n++) {
          const reply = await client.readReply();
          if (reply instanceof RespErrorReply) {
            stats.errors++;
            errorTexts.add(reply.message.replace(/\d+ ms/, "N ms"));
          } else {
            assert.equal(text(reply), values[n], `reply ${n} is another request's`);
            stats.values++;
          }
        }
        // Nothing more than one reply per request: the next reply answers this PING.
        assert.equal(text(await client.command("PING")), "PONG");
        stats.complete++;
      } catch (err) {
        // A reset client socket ends the connection: the client sees it closed, never a
        // reply missing while the connection stays open (ReplyTimeout).
        if (err instanceof ReplyTimeout || err instanceof assert.AssertionError) throw err;
        stats.closed++;
      }
    }));
  }
  assert.ok(stats.values > 200, JSON.stringify(stats));
  assert.ok(stats.complete > 10, JSON.stringify(stats));
  assert.ok(stats.closed + stats.errors > 0, `no reset seen: ${JSON.stringify(stats)}`);
  for (const message of errorTexts) {
    assert.match(
      message,
      /^(ERR )?backend r\b.*Connection reset by peer \(os error 104\)/,
      message,
    );
  }
  assert.match(aster.log(), /first reset fault injected/);
  // Still serving after all that (a request may meet a reset too: a few tries).
  let pong = "";
  for (let i = 0; i < 10 && pong !== "PONG"; i++) {
    try {
      await using client = await RespClient.connect(aster.ports[0]);
      pong = String(text(await client.command("PING")));
    } catch { /* reset: try again */ }
  }
  assert.equal(pong, "PONG");
});

function _utf8(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

function _concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
