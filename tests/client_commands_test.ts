/**
 * CLIENT subcommands Aster answers for its own clients: LIST and INFO with the names
 * node-redis and ioredis give, REPLY OFF/SKIP/ON, KILL only where allowed, TRACKING and
 * PAUSE refused.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startAster, testBothIo } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { startRedis } from "./helpers/servers.ts";

testBothIo("CLIENT LIST and INFO show Aster's clients with their names and libraries", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
  const port = aster.ports[0];
  const node = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2, name: "node-conn" });
  node.on("error", () => {});
  await node.connect();
  const io = new Redis({ host: "127.0.0.1", port, connectionName: "io-conn" });
  try {
    await io.ping();
    await using raw = await RespClient.connect(port);
    const id = await raw.command("CLIENT", "ID") as number;
    const list = String(text(await raw.command("CLIENT", "LIST")));
    const lines = list.trimEnd().split("\n");
    assert.equal(lines.length, 3, list);
    assert.ok(lines.some((line) => / name=node-conn /.test(line)), list);
    assert.ok(lines.some((line) => / name=io-conn /.test(line)), list);
    assert.ok(lines.some((line) => / lib-name=node-redis/.test(line)), list);
    for (const line of lines) {
      assert.match(
        line,
        /^id=\d+ addr=127\.0\.0\.1:\d+ laddr=\S* fd=-?\d+ name=\S* age=\d+ idle=\d+ /,
      );
    }
    const info = String(text(await raw.command("CLIENT", "INFO")));
    assert.match(info, new RegExp(`^id=${id} addr=\\S* .* cmd=client\\|info `));
    const byId = String(text(await raw.command("CLIENT", "LIST", "ID", String(id))));
    assert.equal(byId, info.replace("cmd=client|info", "cmd=client|list"));
    assert.equal(await raw.command("CLIENT", "NO-EVICT", "on"), "OK");
    assert.equal(await raw.command("CLIENT", "NO-TOUCH", "on"), "OK");
    assert.match(String(text(await raw.command("CLIENT", "INFO"))), / flags=eT /);
    for (const refused of [["TRACKING", "on"], ["PAUSE", "100"], ["UNPAUSE"]]) {
      const reply = await raw.command("CLIENT", ...refused);
      assert.ok(reply instanceof RespErrorReply, refused.join(" "));
      assert.match(reply.message, /not supported by aster/);
    }
    // KILL is refused unless allowed.
    const kill = await raw.command("CLIENT", "KILL", "ID", "1");
    assert.ok(kill instanceof RespErrorReply && /client-kill/.test(kill.message));
  } finally {
    node.destroy();
    io.disconnect();
  }
});

testBothIo("CLIENT LIST TYPE and ID, and a subscriber's line, as redis-server 7.0", async () => {
  // Its own redis-server behind Aster: Aster's subscription connection is a client there.
  await using backend = await startRedis();
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${backend.port}:1`] }]);
  // A RESP3 subscriber (it may run CLIENT LIST while subscribed) on each side.
  const subscriber = async (port: number) => {
    const client = await RespClient.connect(port);
    await client.sendRaw("HELLO 3\r\nSUBSCRIBE a\r\nPSUBSCRIBE b*\r\n");
    for (let i = 0; i < 3; i++) await client.readRawReply();
    return client;
  };
  await using directSub = await subscriber(redis.port);
  await using asterSub = await subscriber(aster.ports[0]);
  await using direct = await RespClient.connect(redis.port);
  await using proxied = await RespClient.connect(aster.ports[0]);
  const decoder = new TextDecoder();
  // The fields that do not depend on the server's own ids, addresses and buffers.
  const shown = (line: string) =>
    line.split(/\s+/).filter((field) => /^(flags|db|sub|psub|ssub|resp)=/.test(field)).join(" ");
  const list = async (client: RespClient, ...args: string[]) => {
    const reply = await client.command("CLIENT", "LIST", ...args);
    if (reply instanceof RespErrorReply) return `error: ${reply.message}`;
    const lines = String(text(reply)).split("\n").filter((line) => line !== "");
    return lines.map(shown).sort().join("\n");
  };
  for (
    const args of [
      ["TYPE", "pubsub"],
      ["TYPE", "NORMAL"],
      ["TYPE", "master"],
      ["TYPE", "replica"],
      ["TYPE", "slave"],
      ["TYPE", "x"],
      ["TYPE", "constructor"],
      ["TYPE"],
      ["TYPE", "normal", "extra"],
      ["ID", "0"],
      ["ID", "-1"],
      ["ID", "+1"],
      ["ID", "1.0"],
      ["ID", "01"],
      ["ID", " 5"],
      ["ID", "99999999999999999999"],
      ["NOPE", "1"],
    ]
  ) {
    assert.equal(await list(proxied, ...args), await list(direct, ...args), args.join(" "));
  }
  // The subscriber's own line: flag P, its channel and pattern counted.
  const own = async (client: RespClient) =>
    shown(decoder.decode(await client.rawCommand("CLIENT", "INFO")));
  assert.equal(await own(asterSub), await own(directSub));
  assert.match(await own(asterSub), /^flags=P db=0 sub=1 psub=1 ssub=0 /);
  // An ID given twice is listed twice, in the order given.
  const proxiedId = await proxied.command("CLIENT", "ID") as number;
  const twice = String(
    text(await proxied.command("CLIENT", "LIST", "ID", `${proxiedId}`, `${proxiedId}`)),
  );
  assert.equal(twice.split("\n").filter((line) => line.startsWith(`id=${proxiedId} `)).length, 2);
});

testBothIo(
  "CLIENT REPLY OFF and SKIP: the requests run, their replies are not written",
  async () => {
    await using redis = await startRedis();
    await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}:1`] }]);
    await using raw = await RespClient.connect(aster.ports[0]);
    await raw.sendRaw(
      "CLIENT REPLY OFF\r\nSET a 1\r\nMGET a b\r\nCLIENT REPLY ON\r\n" +
        "CLIENT REPLY SKIP\r\nSET b 2\r\nGET a\r\n",
    );
    // OFF, SET a and MGET (while off), SKIP and SET b (skipped) get no reply written.
    assert.equal(await raw.readReply(), "OK", "CLIENT REPLY ON");
    assert.equal(text(await raw.readReply()), "1", "GET a");
    assert.equal(await raw.command("PING"), "PONG");
    await using direct = await RespClient.connect(redis.port);
    assert.equal(text(await direct.command("GET", "b")), "2", "SET b ran");

    // (Un)subscribe confirmations and messages are pushes: written whatever CLIENT REPLY
    // says, as redis-server does.
    const session = async (port: number) => {
      await using sub = await RespClient.connect(port);
      await using pub = await RespClient.connect(port);
      await sub.sendRaw("CLIENT REPLY OFF\r\nSET c 1\r\nSUBSCRIBE ch\r\n");
      const frames = [await sub.readRawReply()];
      assert.equal(await pub.command("PUBLISH", "ch", "hello"), 1);
      frames.push(await sub.readRawReply());
      await sub.sendRaw("UNSUBSCRIBE ch\r\n");
      frames.push(await sub.readRawReply());
      return frames.map((frame) => new TextDecoder().decode(frame));
    };
    assert.deepEqual(await session(aster.ports[0]), await session(redis.port));
  },
);

testBothIo("CLIENT KILL closes Aster's own clients by ID or ADDR where allowed", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}:1`],
    allow_commands: ["client-kill"],
  }]);
  await using victim = await RespClient.connect(aster.ports[0]);
  await using killer = await RespClient.connect(aster.ports[0]);
  const id = await victim.command("CLIENT", "ID") as number;
  assert.equal(await killer.command("CLIENT", "KILL", "ID", String(id)), 1);
  assert.ok(await victim.closedWithin(2000), "the victim was closed");
  assert.equal(await killer.command("CLIENT", "KILL", "ID", String(id)), 0);
  assert.equal(await killer.command("PING"), "PONG");
  // By address: the one CLIENT INFO gives.
  await using second = await RespClient.connect(aster.ports[0]);
  const addr = String(text(await second.command("CLIENT", "INFO"))).match(/ addr=(\S+) /)![1];
  assert.equal(await killer.command("CLIENT", "KILL", "ADDR", addr), 1);
  assert.ok(await second.closedWithin(2000), "the second was closed");
});
