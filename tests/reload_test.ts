/** Hot reload on SIGHUP and with --reload: validated first, applied without dropping clients. */
import assert from "node:assert/strict";
import { type ClusterToml, renderToml, startAster } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 50 ms for up to `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(50)) {
    if (await check()) return true;
  }
  return false;
}

Deno.test("SIGHUP: changed servers apply under traffic, no failed request, no disconnect", async () => {
  await using first = await startRedis();
  await using second = await startRedis();
  const port = await freePort();
  const cluster = (servers: string[]): ClusterToml => ({
    name: "cache",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${port}`,
    thread: 2,
    servers,
  });
  await using aster = await startAster([cluster([`127.0.0.1:${first.port}:1 a`])], {
    env: { ASTER_LOG: "info" },
  });
  // Eight clients in a closed loop of SET/GET with their own keys until told to stop.
  let running = true;
  let requests = 0;
  const failures: string[] = [];
  const clients = await Promise.all(Array.from({ length: 8 }, () => RespClient.connect(port)));
  const loops = clients.map(async (client, c) => {
    for (let i = 0; running && i < 100_000; i++) {
      const key = `c${c}:k${i % 50}`;
      try {
        // A key may move to the added server (the ring changed), so a value written
        // before the switch may be gone; what must not happen is an error or a drop.
        const [set, got] = await client.pipeline([["SET", key, `${i}`], ["GET", key]]);
        if (set !== "OK" || text(got) !== `${i}`) failures.push(`${key}: ${set} ${text(got)}`);
      } catch (err) {
        failures.push(`${key}: ${err}`);
        return;
      }
      requests += 2;
    }
  });
  try {
    await sleep(300);
    await Deno.writeTextFile(
      aster.configPath,
      renderToml([
        cluster([`127.0.0.1:${first.port}:1 a`, `127.0.0.1:${second.port}:1 b`]),
      ]),
    );
    const before = requests;
    aster.kill("SIGHUP");
    assert.ok(
      await eventually(() => /reloaded: reconfigured cache/.test(aster.log())),
      aster.log(),
    );
    // Keys now land on the new server as well.
    assert.ok(
      await eventually(async () => {
        const dbsize = await (await RespClient.connect(second.port)).command("DBSIZE");
        return typeof dbsize === "number" && dbsize > 0;
      }),
      "the added server receives keys",
    );
    await sleep(300);
    running = false;
    await Promise.all(loops);
    assert.deepEqual(failures, []);
    assert.ok(requests > before + 100, `traffic went on through the reload (${requests})`);
    for (const client of clients) assert.equal(await client.command("PING"), "PONG");
  } finally {
    running = false;
    await Promise.all(loops);
    for (const client of clients) client.close();
  }
});

Deno.test("an invalid config on reload is refused and the old one keeps serving", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`] }], {
    env: { ASTER_LOG: "info" },
  });
  await using client = await RespClient.connect(aster.ports[0]);
  await Deno.writeTextFile(aster.configPath, "[[clusters]]\nname = 3\nbogus = true\n");
  aster.kill("SIGHUP");
  assert.ok(await eventually(() => /reload rejected, the running config stays/.test(aster.log())));
  assert.equal(await client.command("SET", "k", "v"), "OK");
  await using fresh = await RespClient.connect(aster.ports[0]);
  assert.equal(text(await fresh.command("GET", "k")), "v");
});

Deno.test("--reload: an added cluster starts listening, a removed one drains and closes", async () => {
  await using redis = await startRedis();
  const [portA, portB] = [await freePort(), await freePort()];
  const a: ClusterToml = {
    name: "a",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${portA}`,
    servers: [`127.0.0.1:${redis.port}`],
  };
  const b: ClusterToml = { ...a, name: "b", listen_addr: `127.0.0.1:${portB}` };
  await using aster = await startAster([a], { args: ["--reload"], env: { ASTER_LOG: "info" } });
  await using clientA = await RespClient.connect(portA);
  assert.equal(await clientA.command("SET", "k", "1"), "OK");
  await Deno.writeTextFile(aster.configPath, renderToml([a, b]));
  assert.ok(await eventually(() => /reloaded: added b/.test(aster.log())), aster.log());
  await using clientB = await RespClient.connect(portB);
  assert.equal(text(await clientB.command("GET", "k")), "1");
  assert.equal(await clientA.command("PING"), "PONG", "cluster a kept its client");

  await Deno.writeTextFile(aster.configPath, renderToml([b]));
  assert.ok(await eventually(() => /reloaded: removed a/.test(aster.log())), aster.log());
  assert.ok(await clientA.closedWithin(2000), "a's clients are closed after draining");
  await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port: portA }));
  assert.equal(await clientB.command("PING"), "PONG");
});

Deno.test("a removed cluster still finishing a request holds up no later reload", async () => {
  await using redis = await startRedis();
  const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()];
  const a: ClusterToml = {
    name: "a",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${portA}`,
    servers: [`127.0.0.1:${redis.port}`],
    shutdown_timeout: 60_000,
  };
  const b: ClusterToml = { ...a, name: "b", listen_addr: `127.0.0.1:${portB}` };
  const c: ClusterToml = { ...a, name: "c", listen_addr: `127.0.0.1:${portC}` };
  await using aster = await startAster([a, b], { args: ["--reload"], env: { ASTER_LOG: "info" } });
  await using blocked = await RespClient.connect(portA);
  await blocked.sendRaw("*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n");
  await using other = await RespClient.connect(portB);
  assert.equal(await other.command("PING"), "PONG");

  await Deno.writeTextFile(aster.configPath, renderToml([b]));
  assert.ok(await eventually(() => /reloaded: removed a/.test(aster.log())), aster.log());
  await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port: portA }));
  // a drains (its client waits in BLPOP) while the next reload goes on.
  await Deno.writeTextFile(aster.configPath, renderToml([b, c]));
  assert.ok(await eventually(() => /reloaded: added c/.test(aster.log())), aster.log());
  await using third = await RespClient.connect(portC);
  assert.equal(await third.command("PING"), "PONG");
  // The blocked request is still served, then its client closed.
  assert.equal(await other.command("RPUSH", "queue", "job"), 1);
  assert.deepEqual(text(await blocked.readReply()), ["queue", "job"]);
  assert.ok(await blocked.closedWithin(5000), "a's client closed once drained");
});

Deno.test("--reload follows a Kubernetes ConfigMap update: ..data swapped to a new folder, every time", async () => {
  await using first = await startRedis();
  await using second = await startRedis();
  const port = await freePort();
  const cluster = (server: number): ClusterToml => ({
    name: "cm",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${port}`,
    servers: [`127.0.0.1:${server}`],
  });
  // The volume's layout: aster.toml -> ..data/aster.toml, ..data -> ..vN.
  const volume = await Deno.makeTempDir({ prefix: "aster-cm-" });
  const publish = async (version: number, toml: string) => {
    await Deno.mkdir(`${volume}/..v${version}`);
    await Deno.writeTextFile(`${volume}/..v${version}/aster.toml`, toml);
    await Deno.symlink(`..v${version}`, `${volume}/..data_tmp`);
    await Deno.rename(`${volume}/..data_tmp`, `${volume}/..data`);
    if (version > 1) await Deno.remove(`${volume}/..v${version - 1}`, { recursive: true });
  };
  try {
    await publish(1, renderToml([cluster(first.port)]));
    await Deno.symlink("..data/aster.toml", `${volume}/aster.toml`);
    // The later --config wins over the file startAster writes (the same cluster).
    await using aster = await startAster([cluster(first.port)], {
      args: ["--reload", "--config", `${volume}/aster.toml`],
      env: { ASTER_LOG: "info" },
    });
    await using client = await RespClient.connect(port);
    await using direct1 = await RespClient.connect(first.port);
    await using direct2 = await RespClient.connect(second.port);
    // Three updates, alternating the server: each one applies.
    for (let version = 2; version <= 4; version++) {
      const server = version % 2 === 0 ? second : first;
      await publish(version, renderToml([cluster(server.port)]));
      const key = `cm:${version}`;
      assert.ok(
        await eventually(async () => {
          await client.command("SET", key, "v");
          return text(await (server === first ? direct1 : direct2).command("GET", key)) === "v";
        }),
        `update ${version} applied:\n${aster.log()}`,
      );
    }
  } finally {
    await Deno.remove(volume, { recursive: true });
  }
});

Deno.test("a reload right after a worker crashed completes, and the restarted worker takes it", async () => {
  await using first = await startRedis();
  await using second = await startRedis();
  const port = await freePort();
  const cluster = (server: number): ClusterToml => ({
    name: "crash",
    cache_type: "redis",
    listen_addr: `127.0.0.1:${port}`,
    servers: [`127.0.0.1:${server}`],
    thread: 2,
  });
  await using aster = await startAster([cluster(first.port)], {
    env: { ASTER_TEST_HOOKS: "1", ASTER_LOG: "info" },
  });
  aster.kill("SIGUSR2"); // worker 0 crashes; its restart waits a little
  assert.ok(await eventually(() => /crashed/.test(aster.log())), aster.log());
  await Deno.writeTextFile(aster.configPath, renderToml([cluster(second.port)]));
  aster.kill("SIGHUP");
  assert.ok(await eventually(() => /reloaded: reconfigured crash/.test(aster.log())), aster.log());
  assert.ok(await eventually(() => /worker 0 restarted/.test(aster.log())), aster.log());
  // The dead worker's raw listener is closed 200 ms after it ended (REAP_DELAY_MS): until
  // then the kernel may still hand it a new connection, reset when it closes.
  await sleep(500);
  // Every worker, the restarted one included, now writes to the second server.
  await using direct = await RespClient.connect(second.port);
  for (let i = 0; i < 40; i++) {
    await using client = await RespClient.connect(port);
    assert.equal(await client.command("SET", `crash:${i}`, "v"), "OK");
    assert.equal(text(await direct.command("GET", `crash:${i}`)), "v", `client ${i}`);
  }
});
