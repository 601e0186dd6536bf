/** Operations: /metrics that move with traffic, /healthz, a crashed worker restarted. */
import assert from "node:assert/strict";
import { asterCommand, startAster, UNDER_TEST } from "./helpers/aster.ts";
import { RespClient, RespErrorReply, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

async function scrape(port: number, path = "/metrics"): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** `aster-proxy --healthcheck` with the config and `-m port`: its exit code and stdout. */
async function _healthcheck(configPath: string, port: number, env: Record<string, string> = {}) {
  const args = ["--healthcheck", "--config", configPath, "-m", String(port)];
  const out = await asterCommand(args, env).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** The head of the reply to a bare HTTP/1.0 GET of `path` (no Host header). */
async function _http10(port: number, path: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.0\r\n\r\n`));
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

/** The value of one sample line, e.g. `aster_commands_total{cluster="c",command="get"}`. */
function sample(body: string, series: string): number {
  const line = body.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

Deno.test("metrics: counters move with traffic and sum over workers; /healthz is 200", async () => {
  await using redis = await startRedis();
  const metricsPort = await freePort();
  await using aster = await startAster([{
    name: "c",
    servers: [`127.0.0.1:${redis.port}:1 r1`],
    thread: 2,
  }], { args: ["-m", String(metricsPort)] });
  const before = await scrape(metricsPort);
  assert.equal(before.status, 200);
  assert.match(
    before.body,
    /^aster_build_info\{version="[^"]+",deno="[^"]*",runtime="(deno|bun)",runtime_version="[^"]+"\} 1$/m,
  );
  assert.ok(Number.isNaN(sample(before.body, 'aster_commands_total{cluster="c",command="get"}')));

  // Several clients, so both workers serve some of them.
  const clients = await Promise.all(
    Array.from({ length: 8 }, () => RespClient.connect(aster.ports[0])),
  );
  try {
    for (const [i, client] of clients.entries()) {
      assert.equal(await client.command("SET", `k${i}`, "v"), "OK");
      assert.equal(text(await client.command("GET", `k${i}`)), "v");
      assert.equal(text(await client.command("GET", `k${i}`)), "v");
    }
    await clients[0].command("NOSUCHCOMMAND");
    const after = (await scrape(metricsPort)).body;
    assert.equal(sample(after, 'aster_commands_total{cluster="c",command="get"}'), 16);
    assert.equal(sample(after, 'aster_commands_total{cluster="c",command="set"}'), 8);
    assert.equal(sample(after, 'aster_errors_total{cluster="c",kind="refused"}'), 1);
    assert.equal(sample(after, 'aster_client_connections{cluster="c"}'), 8);
    assert.equal(sample(after, 'aster_node_up{cluster="c",node="r1"}'), 1);
    assert.equal(
      sample(after, 'aster_backend_request_seconds_count{cluster="c",node="r1"}'),
      24 + 2,
      "every forwarded request observed once, and each worker's INFO server (its version)",
    );
    assert.ok(sample(after, 'aster_client_bytes_in_total{cluster="c"}') > 0);
    const health = await scrape(metricsPort, "/healthz");
    assert.equal(health.status, 200);
    // HAProxy's `option httpchk GET /healthz`: HTTP/1.0, no Host header.
    assert.match(await _http10(metricsPort, "/healthz"), /^HTTP\/1\.[01] 200 /);
    // --healthcheck (the container's HEALTHCHECK) asks the same endpoint.
    const check = await _healthcheck(aster.configPath, metricsPort);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /\/healthz: 200 /);
    // Straight to the endpoint, whatever proxy the environment names for HTTP.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const proxied = await _healthcheck(aster.configPath, metricsPort, {
      HTTP_PROXY: dead,
      http_proxy: dead,
    });
    assert.equal(proxied.code, 0, proxied.stdout);
    const nobody = await _healthcheck(aster.configPath, await freePort());
    assert.equal(nobody.code, 1, nobody.stdout);
    assert.match(nobody.stdout, /ECONNREFUSED|refused/i, "the refusal is named");
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("a crashed worker is restarted and counted; the others keep serving", async () => {
  await using redis = await startRedis();
  const metricsPort = await freePort();
  await using aster = await startAster([{ servers: [`127.0.0.1:${redis.port}`], thread: 2 }], {
    args: ["-m", String(metricsPort)],
    env: { ASTER_TEST_HOOKS: "1", ASTER_LOG: "warn" },
  });
  // Clients before the crash: those on the surviving worker keep working. The kernel
  // spreads connections by a hash of their ports, in runs, so take many, one at a time.
  const before: RespClient[] = [];
  for (let i = 0; i < 60; i++) before.push(await RespClient.connect(aster.ports[0]));
  try {
    for (const client of before) assert.equal(await client.command("PING"), "PONG");
    aster.kill("SIGUSR2");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const survivors = await Promise.all(
      before.map((client) => client.command("PING").then((r) => r === "PONG", () => false)),
    );
    assert.ok(
      survivors.some((ok) => ok),
      `clients of the other worker are served:\n${aster.log()}`,
    );
    assert.ok(survivors.some((ok) => !ok), "the crashed worker's clients were cut off");
  } finally {
    for (const client of before) client.close();
  }
  // New clients are served again, by both workers once worker 0 is back.
  let restarted = false;
  for (let i = 0; i < 100 && !restarted; i++) {
    try {
      await using client = await RespClient.connect(aster.ports[0]);
      await client.command("SET", "k", `${i}`);
    } catch {
      // a connection queued on the crashed worker's socket is reset: that is the crash
    }
    const body = (await scrape(metricsPort)).body;
    restarted = sample(body, "aster_worker_restarts_total") === 1 &&
      (await scrape(metricsPort, "/healthz")).status === 200;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(restarted, `worker restarted:\n${aster.log()}`);
  assert.match(aster.log(), /worker 0 crashed: .*crash requested/);
  assert.match(aster.log(), /worker 0 restarted/);
  for (let i = 0; i < 10; i++) {
    await using client = await RespClient.connect(aster.ports[0]);
    assert.equal(await client.command("GET", "nope"), null);
  }
});

Deno.test("INFO reports this worker's counters and backends, never passwords", async () => {
  await using redis = await startRedis({ args: ["--requirepass", "backend-pw"] });
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}:1 shard-a`],
    password: "front-pw",
    backend_password: "backend-pw",
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  assert.equal(await client.command("AUTH", "front-pw"), "OK");
  assert.equal(await client.command("SET", "k", "v"), "OK");
  const info = String(text(await client.command("INFO")));
  assert.match(info, /^# Server\r\nredis_version:/);
  // The default io = "auto" with --allow-ffi (as deno task start grants): raw sockets;
  // on Bun, Bun's own sockets.
  assert.match(
    info,
    UNDER_TEST === "deno"
      ? /\r\nio:ffi\r\nio_raw_sockets:[1-9]\d*\r\n/
      : /\r\nio:bun\r\nio_raw_sockets:0\r\n/,
  );
  assert.match(info, /\r\nconnected_clients:1\r\n/);
  assert.match(info, /\r\ntotal_commands_processed:3\r\n/);
  // The backend AUTH handshake, the INFO server that learns its version, and the SET.
  assert.match(info, /\r\nnode_shard-a:up=1,ejected=0,requests=3,/);
  assert.ok(!info.includes("front-pw") && !info.includes("backend-pw"));
  const clients = String(text(await client.command("INFO", "clients")));
  assert.match(clients, /^# Clients\r\n/);
  assert.ok(!clients.includes("# Server"));
});

Deno.test("SLOWLOG GET, LEN and RESET follow slowlog_slower_than and slowlog_max_len", async () => {
  await using redis = await startRedis();
  await using aster = await startAster([{
    servers: [`127.0.0.1:${redis.port}`],
    slowlog_slower_than: 0,
    slowlog_max_len: 3,
  }]);
  await using client = await RespClient.connect(aster.ports[0]);
  for (let i = 0; i < 5; i++) await client.command("SET", `key${i}`, "v");
  assert.equal(await client.command("SLOWLOG", "LEN"), 3);
  const entries = await client.command("SLOWLOG", "GET", "2");
  assert.ok(Array.isArray(entries) && entries.length === 2);
  const newest = entries[0] as unknown[];
  assert.deepEqual(text(newest[3] as Uint8Array[]), ["SLOWLOG", "LEN"]);
  const set = text((entries[1] as unknown[])[3] as Uint8Array[]);
  assert.deepEqual(set, ["SET", "key4", "v"]);
  assert.ok(typeof newest[2] === "number" && newest[2] >= 0);
  assert.equal(await client.command("SLOWLOG", "RESET"), "OK");
  assert.equal(await client.command("SLOWLOG", "LEN"), 1, "only the LEN after the reset");
  // Wrong arguments get redis-server's own errors (checked against it).
  await using direct = await RespClient.connect(redis.port);
  for (
    const args of [
      ["LEN", "x"],
      ["RESET", "x"],
      ["HELP", "x"],
      ["GET", "1", "2"],
      ["GET", "x"],
      ["GET", "01"],
      ["GET", "-2"],
      ["Foo"],
      ["constructor", "x"],
    ]
  ) {
    const want = await direct.command("SLOWLOG", ...args);
    assert.ok(want instanceof RespErrorReply, args.join(" "));
    assert.deepEqual(await client.command("SLOWLOG", ...args), want, args.join(" "));
  }
});
