/**
 * Edge cases of the raw-socket layer (`io = "ffi"`, and `"auto"` with --allow-ffi) seen
 * from outside, with Aster started as `deno task start` starts it: OS errors named in
 * replies, mixed workers (raw listener, backends on Deno's sockets), injected faults.
 */
import assert from "node:assert/strict";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { RespClient, RespErrorReply } from "./helpers/resp_client.ts";
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
