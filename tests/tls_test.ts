/**
 * TLS front and back against real servers, with certificates `openssl` makes per run:
 * TLS clients through Aster to plain redis-server, plain clients to a TLS redis-server
 * (`backend_tls`), both at once, mutual TLS, a wrong CA on either side, memcached with `-Z`,
 * a certificate reload on SIGHUP, and `--check` refusing an expired certificate or a key
 * that does not match. redis_cluster over a TLS cluster is in tls_cluster_test.ts.
 */
import assert from "node:assert/strict";
import { asterCommand, startAster, testBothIo } from "./helpers/aster.ts";
import { makeCerts, type TestCerts } from "./helpers/certs.ts";
import { freePort, startListeningProcess, startRedis } from "./helpers/servers.ts";
import type { ServerProcess } from "./helpers/servers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function resp(...args: string[]): Uint8Array {
  return enc.encode(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`);
}

/** Writes `request` and reads until the reply ends with CRLF and holds `want`, within 5 s. */
async function ask(conn: Deno.Conn, request: Uint8Array, want = /\r\n$/): Promise<string> {
  for (let at = 0; at < request.length;) at += await conn.write(request.subarray(at));
  const buf = new Uint8Array(4096);
  let got = "";
  const deadline = Date.now() + 5000;
  while (!want.test(got)) {
    const timer = new Promise<"late">((r) => setTimeout(() => r("late"), deadline - Date.now()));
    const n = await Promise.race([conn.read(buf), timer]);
    if (n === "late") throw new Error(`no reply within 5 s (got ${JSON.stringify(got)})`);
    if (n === null) throw new Error(`closed (got ${JSON.stringify(got)})`);
    got += dec.decode(buf.subarray(0, n));
  }
  return got;
}

/** A TLS client of 127.0.0.1:`port`, verifying with `ca`, presenting a certificate when given. */
async function tlsClient(
  port: number,
  certs: TestCerts,
  opts: { ca?: string; cert?: string; key?: string } = {},
): Promise<Deno.TlsConn> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [certs.read(opts.ca ?? certs.caCert)],
    ...(opts.cert ? { cert: certs.read(opts.cert), key: certs.read(opts.key!) } : {}),
  });
  await conn.handshake();
  return conn;
}

/** redis-server on a TLS port only (clients need no certificate unless `authClients`). */
async function startTlsRedis(
  certs: TestCerts,
  opts: { cert?: string; key?: string; authClients?: boolean } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "aster-tls-redis-" });
  return await startListeningProcess("redis-server", [
    "--port",
    "0",
    "--tls-port",
    `${port}`,
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--tls-cert-file",
    opts.cert ?? certs.serverCert,
    "--tls-key-file",
    opts.key ?? certs.serverKey,
    "--tls-ca-cert-file",
    certs.caCert,
    "--tls-auth-clients",
    opts.authClients ? "yes" : "no",
  ], { port, hint: "apt-get install -y redis-server" }); // deno-fmt-ignore
}

Deno.test("TLS client -> Aster -> plain redis; plain listen_addr beside tls_listen_addr", async () => {
  await using certs = await makeCerts();
  await using redis = await startRedis();
  const tlsPort = await freePort();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
    tls_listen_addr: `127.0.0.1:${tlsPort}`,
    // Two workers share the TLS port too (SO_REUSEPORT).
    thread: 2,
  }]);
  const secure = await tlsClient(tlsPort, certs);
  assert.equal(await ask(secure, resp("SET", "k", "over-tls")), "+OK\r\n");
  for (let i = 0; i < 8; i++) {
    const other = await tlsClient(tlsPort, certs);
    assert.equal(await ask(other, resp("PING")), "+PONG\r\n");
    other.close();
  }
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  assert.equal(await ask(plain, resp("GET", "k"), /over-tls\r\n$/), "$8\r\nover-tls\r\n");
  // A large value crosses many TLS records both ways.
  const big = "v".repeat(300_000);
  assert.equal(await ask(secure, resp("SET", "big", big)), "+OK\r\n");
  const reply = await ask(secure, resp("GET", "big"), /v\r\n$/);
  assert.equal(reply, `$${big.length}\r\n${big}\r\n`);
  secure.close();
  plain.close();
});

Deno.test("TLS clients: a QUIT after 1,000 PINGs and a half-close get every reply", async () => {
  // Closing destroyed the socket with replies Node still held (170 of 1,001 came), and a
  // client's FIN ended the TLS socket's writing side (a half-closed client got no replies).
  await using certs = await makeCerts();
  await using redis = await startRedis();
  const tlsPort = await freePort();
  await using _aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
    tls_listen_addr: `127.0.0.1:${tlsPort}`,
  }]);
  const readAll = async (conn: Deno.TlsConn): Promise<string> => {
    const chunks: string[] = [];
    const buf = new Uint8Array(65_536);
    const decoder = new TextDecoder();
    for (let i = 0; i < 10_000; i++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf).catch(() => null), // a peer without close_notify
        new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 10_000)),
      ]);
      clearTimeout(timer);
      assert.notEqual(n, "late", "no EOF within 10 s");
      if (n === null || n === "late") break;
      chunks.push(decoder.decode(buf.subarray(0, n)));
    }
    return chunks.join("");
  };
  const quitting = await tlsClient(tlsPort, certs);
  await quitting.write(new TextEncoder().encode("PING\r\n".repeat(1000) + "QUIT\r\n"));
  assert.equal(await readAll(quitting), "+PONG\r\n".repeat(1000) + "+OK\r\n");
  quitting.close();
  const halfClosed = await tlsClient(tlsPort, certs);
  await halfClosed.write(new TextEncoder().encode("SET hc v\r\n" + "GET hc\r\n".repeat(50)));
  await halfClosed.closeWrite();
  assert.equal(await readAll(halfClosed), "+OK\r\n" + "$1\r\nv\r\n".repeat(50));
  halfClosed.close();
});

Deno.test("without tls_listen_addr, listen_addr itself is TLS (no plain listener)", async () => {
  await using certs = await makeCerts();
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
  }]);
  const secure = await tlsClient(aster.ports[0], certs);
  assert.equal(await ask(secure, resp("PING")), "+PONG\r\n");
  secure.close();
  // A plaintext client gets no Redis reply from a TLS port.
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  await plain.write(resp("PING"));
  const buf = new Uint8Array(100);
  const n = await plain.read(buf).catch(() => null);
  assert.ok(n === null || !dec.decode(buf.subarray(0, n)).includes("PONG"));
  plain.close();
});

testBothIo("plain client -> Aster -> TLS redis (backend_tls), and TLS on both sides", async () => {
  await using certs = await makeCerts();
  await using redis = await startTlsRedis(certs);
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
  }, {
    servers: [`127.0.0.1:${redis.port}`],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
    backend_tls_server_name: "redis.test",
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
  }]);
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  assert.equal(await ask(plain, resp("SET", "b", "backend-tls")), "+OK\r\n");
  const both = await tlsClient(aster.ports[1], certs);
  assert.equal(await ask(both, resp("GET", "b"), /tls\r\n$/), "$11\r\nbackend-tls\r\n");
  // A megabyte each way through TLS on both sides, pipelined with a small reply after it.
  const big = "w".repeat(1 << 20);
  assert.equal(await ask(both, resp("SET", "big", big)), "+OK\r\n");
  const request = new Uint8Array([...resp("GET", "big"), ...resp("GET", "b")]);
  const reply = await ask(both, request, /backend-tls\r\n$/);
  assert.equal(reply, `$${big.length}\r\n${big}\r\n$11\r\nbackend-tls\r\n`);
  // A client that leaves while blocked: its TLS connection to Redis is half-closed (close_notify),
  // Redis frees that client, and an element pushed a moment later stays in the list.
  const blocked = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  await blocked.write(new TextEncoder().encode("BLPOP gone 0\r\n"));
  await new Promise((resolve) => setTimeout(resolve, 5));
  blocked.close();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(await ask(plain, resp("RPUSH", "gone", "x")), ":1\r\n");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(await ask(plain, resp("LLEN", "gone")), ":1\r\n", "popped for a client gone");
  plain.close();
  both.close();
});

Deno.test("mutual TLS: a client without a certificate, or another CA's, is refused", async () => {
  await using certs = await makeCerts();
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
    tls_ca: certs.caCert,
  }]);
  const port = aster.ports[0];
  const good = await tlsClient(port, certs, { cert: certs.clientCert, key: certs.clientKey });
  assert.equal(await ask(good, resp("PING")), "+PONG\r\n");
  good.close();
  for (const opts of [{}, { cert: certs.otherServerCert, key: certs.otherServerKey }]) {
    let refused = false;
    try {
      const conn = await tlsClient(port, certs, opts);
      // TLS 1.3: the server's verdict may come with the first read.
      await ask(conn, resp("PING")).finally(() => conn.close());
    } catch {
      refused = true;
    }
    assert.ok(refused, `refused: ${JSON.stringify(opts)}`);
  }
});

Deno.test("a backend whose certificate another CA signed is refused with an error naming it", async () => {
  await using certs = await makeCerts();
  await using redis = await startTlsRedis(certs, {
    cert: certs.otherServerCert,
    key: certs.otherServerKey,
  });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
  }]);
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  const reply = await ask(plain, resp("GET", "x"));
  assert.match(
    reply,
    new RegExp(
      `^-ERR backend 127\\.0\\.0\\.1:${redis.port}.*TLS handshake failed: unable to verify`,
    ),
  );
  plain.close();
  // A wrong server name is refused as well.
  const redisOk = await startTlsRedis(certs);
  try {
    await using named = await startAster([{
      servers: [`127.0.0.1:${redisOk.port}`],
      backend_tls: true,
      backend_tls_ca: certs.caCert,
      backend_tls_server_name: "wrong.test",
    }]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: named.ports[0] });
    assert.match(await ask(conn, resp("GET", "x")), /^-.*TLS.*wrong\.test/);
    conn.close();
  } finally {
    await redisOk.stop();
  }
});

Deno.test("backend client certificate: a redis-server requiring one is served", async () => {
  await using certs = await makeCerts();
  await using redis = await startTlsRedis(certs, { authClients: true });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
    backend_tls_cert: certs.clientCert,
    backend_tls_key: certs.clientKey,
  }]);
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  assert.equal(await ask(plain, resp("SET", "c", "1")), "+OK\r\n");
  plain.close();
});

Deno.test("memcache over TLS: TLS client -> Aster -> memcached -Z", async () => {
  await using certs = await makeCerts();
  const port = await freePort();
  await using memcached = await startListeningProcess("memcached", [
    "-l",
    "127.0.0.1",
    "-p",
    `${port}`,
    "-U",
    "0",
    "-u",
    "root",
    "-Z",
    "-o",
    `ssl_chain_cert=${certs.serverCert},ssl_key=${certs.serverKey}`,
  ], { port, hint: "apt-get install -y memcached" }); // deno-fmt-ignore
  await using aster = await startAster([{
    cache_type: "memcache",
    servers: [`127.0.0.1:${memcached.port}:1`],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
  }]);
  const conn = await tlsClient(aster.ports[0], certs);
  assert.equal(await ask(conn, enc.encode("set m 0 0 5\r\nhello\r\n")), "STORED\r\n");
  assert.equal(
    await ask(conn, enc.encode("get m\r\n"), /END\r\n$/),
    "VALUE m 0 5\r\nhello\r\nEND\r\n",
  );
  conn.close();
});

Deno.test("SIGHUP reloads the certificate: new clients get it, connected ones stay", async () => {
  await using certs = await makeCerts();
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "aster-tls-reload-" });
  const cert = `${dir}/server.crt`;
  await Deno.copyFile(certs.serverCert, cert);
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    tls_cert: cert,
    tls_key: certs.serverKey,
  }]);
  const port = aster.ports[0];
  const before = await tlsClient(port, certs);
  assert.equal(await ask(before, resp("SET", "r", "1")), "+OK\r\n");
  // A certificate from another CA: clients trusting only the first CA now refuse the server.
  await Deno.copyFile(certs.otherServerCert, cert);
  await Deno.copyFile(certs.otherServerKey, `${dir}/server.key`);
  const config = await Deno.readTextFile(aster.configPath);
  await Deno.writeTextFile(
    aster.configPath,
    config.replace(JSON.stringify(certs.serverKey), JSON.stringify(`${dir}/server.key`)),
  );
  aster.kill("SIGHUP");
  let switched = false;
  for (let i = 0; i < 100 && !switched; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      const conn = await tlsClient(port, certs, { ca: certs.otherCaCert });
      conn.close();
      switched = true;
    } catch { /* the old certificate still */ }
  }
  assert.ok(switched, `new clients get the new certificate:\n${aster.log()}`);
  await assert.rejects(() => tlsClient(port, certs));
  // The client connected before the reload keeps its session.
  assert.equal(await ask(before, resp("GET", "r"), /1\r\n$/), "$1\r\n1\r\n");
  before.close();
  // An expired certificate is refused on reload: the running one stays.
  await Deno.copyFile(certs.expiredCert, cert);
  aster.kill("SIGHUP");
  for (let i = 0; i < 100 && !/reload rejected/.test(aster.log()); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(aster.log(), /reload rejected.*\n.*tls_cert .*expired on/);
  const after = await tlsClient(port, certs, { ca: certs.otherCaCert });
  assert.equal(await ask(after, resp("PING")), "+PONG\r\n");
  after.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--check and start refuse an expired certificate and a key that does not match", async () => {
  await using certs = await makeCerts();
  const dir = await Deno.makeTempDir({ prefix: "aster-tls-check-" });
  const cases: [Record<string, string>, RegExp][] = [
    [{ tls_cert: certs.expiredCert, tls_key: certs.serverKey }, /tls_cert .*expired on/],
    [{ tls_cert: certs.serverCert, tls_key: certs.strayKey }, /tls_key .* does not match/],
    [{ tls_cert: `${dir}/missing.crt`, tls_key: certs.serverKey }, /tls_cert: cannot read/],
    [{ tls_cert: certs.serverKey, tls_key: certs.serverKey }, /no PEM certificate/],
    [
      { backend_tls_ca: certs.expiredCert, backend_tls: "true" },
      /backend_tls_ca .*expired on/,
    ],
  ];
  for (const [keys, pattern] of cases) {
    const lines = Object.entries(keys).map(([k, v]) =>
      v === "true" ? `${k} = true` : `${k} = ${JSON.stringify(v)}`
    );
    const path = `${dir}/aster.toml`;
    await Deno.writeTextFile(
      path,
      `[[clusters]]\nname = "c"\nlisten_addr = "127.0.0.1:${await freePort()}"\n` +
        `cache_type = "redis"\nservers = ["127.0.0.1:1"]\n${lines.join("\n")}\n`,
    );
    for (const args of [["--check", "--config", path], ["--config", path]]) {
      const out = await asterCommand(args).output();
      const stderr = dec.decode(out.stderr);
      assert.equal(out.code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, pattern);
      assert.match(stderr, /cluster c:/);
    }
  }
  // A CA bundle with an expired certificate beside a valid one passes (system bundles carry
  // expired roots; a rotation keeps the old CA until it expires).
  const bundle = `${dir}/bundle.crt`;
  await Deno.writeTextFile(
    bundle,
    (await Deno.readTextFile(certs.expiredCert)) + (await Deno.readTextFile(certs.caCert)),
  );
  const bundled = `${dir}/bundle.toml`;
  await Deno.writeTextFile(
    bundled,
    `[[clusters]]\nname = "c"\nlisten_addr = "127.0.0.1:${await freePort()}"\n` +
      `cache_type = "redis"\nservers = ["127.0.0.1:1"]\nbackend_tls = true\n` +
      `backend_tls_ca = ${JSON.stringify(bundle)}\n`,
  );
  const bundleOut = await asterCommand(["--check", "--config", bundled]).output();
  assert.equal(bundleOut.code, 0, dec.decode(bundleOut.stderr));
  // Good files pass, and the summary says where TLS is.
  const path = `${dir}/good.toml`;
  await Deno.writeTextFile(
    path,
    `[[clusters]]\nname = "c"\nlisten_addr = "127.0.0.1:${await freePort()}"\n` +
      `cache_type = "redis"\nservers = ["127.0.0.1:1"]\n` +
      `tls_cert = ${JSON.stringify(certs.serverCert)}\ntls_key = ${
        JSON.stringify(certs.serverKey)
      }\n` +
      `tls_ca = ${JSON.stringify(certs.caCert)}\nbackend_tls = true\n`,
  );
  const out = await asterCommand(["--check", "--config", path]).output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  assert.match(dec.decode(out.stdout), /TLS on 127\.0\.0\.1:\d+ \(mutual\), backend TLS/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SIGHUP applies new backend TLS settings to new backend connections", async () => {
  await using certs = await makeCerts();
  await using redis = await startTlsRedis(certs);
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    backend_tls: true,
    backend_tls_ca: certs.caCert,
    backend_tls_server_name: "redis.test",
  }]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: aster.ports[0] });
  assert.equal(await ask(conn, resp("GET", "none")), "$-1\r\n");
  const config = await Deno.readTextFile(aster.configPath);
  await Deno.writeTextFile(aster.configPath, config.replace('"redis.test"', '"wrong.test"'));
  aster.kill("SIGHUP");
  let reply = "";
  for (let i = 0; i < 100 && !/wrong\.test/.test(reply); i++) {
    await new Promise((r) => setTimeout(r, 50));
    reply = await ask(conn, resp("GET", "none"));
  }
  assert.match(reply, /^-ERR backend .*TLS handshake failed: .*wrong\.test/, aster.log());
  conn.close();
});
