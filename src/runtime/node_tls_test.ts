/**
 * The `node:tls` adapter on its own: a server and a client of DENO_TLS exchange more bytes
 * than the adapter buffers before pausing a socket, with a reader that lags, and the
 * listener refuses `accept` once closed.
 */
import assert from "node:assert/strict";
import { nodeTls } from "./node_tls.ts";
import { makeCerts } from "../../tests/helpers/certs.ts";

const DENO_TLS = nodeTls({
  badResource: (message) => new Deno.errors.BadResource(message),
  brokenPipe: (message) => new Deno.errors.BrokenPipe(message),
  addrInUse: (message) => new Deno.errors.AddrInUse(message),
  permissionDenied: (message) => new Deno.errors.PermissionDenied(message),
});
import type { ProxyConn } from "./sockets.ts";

async function writeAll(conn: ProxyConn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function readExactly(conn: ProxyConn, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const n = await conn.read(out.subarray(at, Math.min(size, at + 7000)));
    if (n === null) throw new Error(`EOF after ${at} bytes`);
    at += n;
  }
  return out;
}

Deno.test("DENO_TLS carries 4 MiB each way to a lagging reader, then EOF", async () => {
  await using certs = await makeCerts();
  const credentials = {
    cert: certs.read(certs.serverCert),
    key: certs.read(certs.serverKey),
    ca: null,
  };
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const listener = await DENO_TLS.listen(
    { hostname: "127.0.0.1", port, reusePort: false },
    credentials,
  );
  const client = await DENO_TLS.connect({ hostname: "127.0.0.1", port }, {
    ca: certs.read(certs.caCert),
    cert: null,
    key: null,
    serverName: null,
  });
  const server = await listener.accept();
  const size = 4 << 20;
  const payload = new Uint8Array(size).map((_, i) => i % 251);
  const sent = writeAll(server, payload);
  await new Promise((r) => setTimeout(r, 200)); // the client lags: the adapter pauses
  assert.deepEqual(await readExactly(client, size), payload);
  await sent;
  const back = writeAll(client, payload);
  assert.deepEqual(await readExactly(server, size), payload);
  await back;
  server.close();
  assert.equal(await client.read(new Uint8Array(10)), null);
  client.close();
  listener.close();
  await assert.rejects(() => listener.accept());
});
