/**
 * Backend failures reach clients in words they already match: `timed out`, the OS's
 * `Connection refused` / `Connection reset by peer`, always with the backend's name.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { RespClient, RespErrorReply } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The error message of a reply, failing when it is not an error. */
function _error(reply: unknown): string {
  assert.ok(reply instanceof RespErrorReply, `an error reply, got ${String(reply)}`);
  return reply.message;
}

testBothIo("a refused backend connection names the OS error and the backend", async () => {
  const port = await freePort(); // nothing listens there
  await using aster = await startAster([{
    servers: [`127.0.0.1:${port}:1 redis-1`],
    dial_timeout: 1000,
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  let message = "";
  // The first dial may still be under way: ask until the refusal is known.
  for (let i = 0; i < 40 && !/refused/i.test(message); i++) {
    message = _error(await client.command("GET", "k"));
    if (!/refused/i.test(message)) await sleep(50);
  }
  assert.match(message, /^ERR backend redis-1\b.*Connection refused/, message);
});

testBothIo("a read timeout says timed out, with the backend and the bound", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}:1 redis-2`],
    read_timeout: 400,
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  assert.equal(await client.command("SET", "k", "v"), "OK");
  redis.kill("SIGSTOP");
  try {
    const message = _error(await client.command("GET", "k"));
    assert.equal(message, "ERR backend redis-2: timed out after read_timeout 400 ms");
  } finally {
    redis.kill("SIGCONT");
  }
});

/**
 * A backend that resets each connection (SO_LINGER 0, then close) once a GET arrives, and
 * answers an error to anything before it (the worker's version probe, pings): python3,
 * because Deno offers no SO_LINGER and its close sends FIN even with unread bytes.
 */
const RESETTING_BACKEND = `
import socket, struct, select
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(16)
print(l.getsockname()[1], flush=True)
for _ in range(20):
    s, _ = l.accept()
    while select.select([s], [], [], 10)[0]:
        data = s.recv(65536)
        if not data or b"GET" in data:
            break
        requests = data.count(b"\\r\\n*") + (1 if data.startswith(b"*") else 0)
        s.sendall(b"-ERR not the GET\\r\\n" * max(1, requests))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;

testBothIo("a reset backend connection says Connection reset by peer", async () => {
  const backend = new Deno.Command("python3", {
    args: ["-c", RESETTING_BACKEND],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = backend.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    const port = Number(new TextDecoder().decode(first.value).trim());
    assert.ok(port > 0, "the resetting backend listens");
    await using aster = await startAster([{
      servers: [`127.0.0.1:${port}:1 redis-3`],
      read_timeout: 5000,
    }]);
    await using client = await RespClient.connect(aster.ports[0]);
    const message = _error(await client.command("GET", "k"));
    assert.match(message, /^ERR backend redis-3: .*Connection reset by peer/, message);
  } finally {
    try {
      backend.kill("SIGKILL");
    } catch { /* exited */ }
    await backend.status;
    await backend.stdout.cancel().catch(() => {});
  }
});
