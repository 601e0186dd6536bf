/**
 * Backend failure in `redis` mode against real redis-servers: ping ejection and rejoin,
 * fast failure and reconnect without ejection, read_timeout on a stalled backend, and a
 * backend killed under a pipeline. Every request must get exactly one reply, in order.
 */

import assert from "node:assert/strict";
import { type AsterProcess, type ClusterToml, startAster } from "./helpers/aster.ts";
import { spreadKeys } from "./helpers/keys.ts";
import { RespClient, RespErrorReply, type RespValue, text } from "./helpers/resp_client.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

const HOST = "127.0.0.1";

Deno.test("ping_fail_limit ejects a stopped node, moves its keys, and takes it back after restart", async () => {
  await using stack = new AsyncDisposableStack();
  const redis = await _startBackends(stack, 3);
  const aster = stack.use(
    await _startAster(redis, {
      ping_fail_limit: 2,
      ping_interval: 100,
      read_timeout: 300,
      dial_timeout: 200,
    }),
  );
  const client = stack.use(await RespClient.connect(aster.ports[0]));
  client.timeoutMs = 2000;

  const keys = spreadKeys("eject", 300);
  const owners = await _writeAndLocate(client, redis, keys, (key) => `v1-${key}`);
  const victim = 1;
  const deadKeys = keys.filter((_, i) => owners[i] === victim);
  const liveKeys = keys.filter((_, i) => owners[i] !== victim);
  const others = redis.filter((_, i) => i !== victim);
  const sizesBefore = await Promise.all(others.map((r) => _dbsize(r.port)));

  await redis[victim].stop();
  const stoppedAt = Date.now();

  // Right after the stop, before any ejection, the dead node's keys fail fast.
  const probe = deadKeys.slice(0, 20);
  const failed = await _timed(() => client.pipeline(probe.map((key) => ["GET", key])));
  assert.ok(failed.ms < 1000, `GETs to the stopped node took ${failed.ms} ms`);
  failed.value.forEach((reply, i) =>
    _assertBackendError(reply, `GET ${probe[i]} right after stop`)
  );
  for (const key of probe.slice(0, 5)) {
    const one = await _timed(() => client.command("GET", key));
    assert.ok(one.ms < 1000, `GET ${key} took ${one.ms} ms`);
    // Already ejected (nil: moved to a node that never had it) or still failing fast.
    if (one.value !== null) _assertBackendError(one.value, `GET ${key} after stop`);
  }

  // Within ~1.5 s the node is ejected and every key works again.
  let moved = false;
  for (let round = 0; round < 60 && Date.now() - stoppedAt < 1500; round++) {
    const replies = await client.pipeline(deadKeys.map((key) => ["SET", key, `v2-${key}`]));
    if (replies.every((reply) => reply === "OK")) {
      moved = true;
      break;
    }
    await _sleep(25);
  }
  const movedAfter = Date.now() - stoppedAt;
  assert.ok(moved, `the stopped node's keys still fail ${movedAfter} ms after the stop`);
  assert.ok(movedAfter <= 1600, `keys moved only after ${movedAfter} ms`);
  await _assertValues(client, deadKeys, (key) => `v2-${key}`);
  await _assertValues(client, liveKeys, (key) => `v1-${key}`); // the others kept their keys
  const sizesAfter = await Promise.all(others.map((r) => _dbsize(r.port)));
  assert.equal(
    sizesAfter[0] + sizesAfter[1],
    sizesBefore[0] + sizesBefore[1] + deadKeys.length,
    `the ${deadKeys.length} moved keys are on the two live nodes`,
  );
  assert.ok(sizesAfter[0] > sizesBefore[0] && sizesAfter[1] > sizesBefore[1], "both took keys");

  // Restart on the same port: the node rejoins and its keys map back to it.
  const restarted = stack.use(await startRedis({ port: redis[victim].port }));
  const restartedAt = Date.now();
  const probeKey = deadKeys[0];
  let back = false;
  for (let round = 0; round < 200 && Date.now() - restartedAt < 5000; round++) {
    const value = `v3-${round}-${probeKey}`;
    assert.equal(await client.command("SET", probeKey, value), "OK");
    if (text(await _direct(restarted.port, ["GET", probeKey])) === value) {
      back = true;
      break;
    }
    await _sleep(50);
  }
  assert.ok(
    back,
    `${probeKey} not back on the restarted node ${Date.now() - restartedAt} ms later`,
  );
  const sets = await client.pipeline(deadKeys.map((key) => ["SET", key, `v4-${key}`]));
  assert.deepEqual(sets, deadKeys.map(() => "OK"));
  const onRestarted = await _directPipeline(restarted.port, deadKeys.map((key) => ["GET", key]));
  assert.deepEqual(onRestarted.map(text), deadKeys.map((key) => `v4-${key}`));
  assert.equal(await _dbsize(restarted.port), deadKeys.length, "only its own keys came back");
  await _assertValues(client, deadKeys, (key) => `v4-${key}`);
  await _assertValues(client, liveKeys, (key) => `v1-${key}`);
  assert.match(aster.log(), /ejected/);
  assert.match(aster.log(), /rejoins the ring/);
});

Deno.test("without ping_fail_limit a dead node fails fast, the others work, and it reconnects after restart", async () => {
  await using stack = new AsyncDisposableStack();
  const redis = await _startBackends(stack, 3);
  // A long read_timeout, so a request parked until it times out cannot pass for a fast fail.
  const aster = stack.use(await _startAster(redis, { read_timeout: 2000, dial_timeout: 200 }));
  const client = stack.use(await RespClient.connect(aster.ports[0]));
  client.timeoutMs = 2000;

  const keys = spreadKeys("noeject", 150);
  const owners = await _writeAndLocate(client, redis, keys, (key) => `v1-${key}`);
  const victim = 2;
  const deadKeys = keys.filter((_, i) => owners[i] === victim);
  const liveKeys = keys.filter((_, i) => owners[i] !== victim);

  await redis[victim].stop();
  // For ~600 ms: each request to the dead node fails at once, the others answer.
  const until = Date.now() + 600;
  for (let round = 0; round < 40 && Date.now() < until; round++) {
    const dead = deadKeys[round % deadKeys.length];
    const live = liveKeys[round % liveKeys.length];
    const one = await _timed(() => client.command("GET", dead));
    assert.ok(one.ms < 250, `GET ${dead} took ${one.ms} ms`);
    _assertBackendError(one.value, `GET ${dead} while its node is down`);
    assert.equal(text(await client.command("GET", live)), `v1-${live}`);
    await _sleep(20);
  }
  const mixed = await _timed(() => client.pipeline(keys.map((key) => ["GET", key])));
  assert.ok(mixed.ms < 500, `a mixed pipeline took ${mixed.ms} ms`);
  mixed.value.forEach((reply, i) => {
    if (owners[i] === victim) _assertBackendError(reply, `GET ${keys[i]}`);
    else assert.equal(text(reply), `v1-${keys[i]}`);
  });

  // Restarted on the same port, the node is reconnected (with backoff) within ~3 s.
  const restarted = stack.use(await startRedis({ port: redis[victim].port }));
  const restartedAt = Date.now();
  let ok = false;
  for (let round = 0; round < 200 && Date.now() - restartedAt < 3000; round++) {
    const reply = await client.command("SET", deadKeys[0], `v2-${deadKeys[0]}`);
    if (reply === "OK") {
      ok = true;
      break;
    }
    _assertBackendError(reply, `SET ${deadKeys[0]} while reconnecting`);
    await _sleep(50);
  }
  assert.ok(ok, `still failing ${Date.now() - restartedAt} ms after the restart`);
  const sets = await client.pipeline(deadKeys.map((key) => ["SET", key, `v2-${key}`]));
  assert.deepEqual(sets, deadKeys.map(() => "OK"));
  const direct = await _directPipeline(restarted.port, deadKeys.map((key) => ["GET", key]));
  assert.deepEqual(direct.map(text), deadKeys.map((key) => `v2-${key}`));
  await _assertValues(client, liveKeys, (key) => `v1-${key}`);
});

Deno.test("read_timeout fails every request to a stalled backend in order, and no late reply leaks", async () => {
  const readTimeout = 300;
  await using stack = new AsyncDisposableStack();
  const redis = await _startBackends(stack, 3);
  const aster = stack.use(await _startAster(redis, { read_timeout: readTimeout }));
  const client = stack.use(await RespClient.connect(aster.ports[0]));
  client.timeoutMs = 3000;

  const keys = spreadKeys("stall", 60);
  const owners = await _writeAndLocate(client, redis, keys, (key) => `v1-${key}`);
  const victim = 0;
  assert.ok(owners.filter((o) => o === victim).length >= 5, "the stalled node owns some keys");

  redis[victim].kill("SIGSTOP");
  try {
    // Two stalled rounds: the first on the original connection, the second on whatever
    // the proxy has after dropping it (a reconnect the stopped server's kernel accepted).
    for (let round = 0; round < 2; round++) {
      if (round === 1) await _sleep(150); // past the first reconnect backoff
      const commands = keys.map((key) => ["GET", key]);
      const replies = await _timedReplies(client, commands);
      const late = readTimeout + 100; // the bound the proxy promises
      replies.forEach(({ value, ms }, i) => {
        const what = `round ${round}: GET ${keys[i]} (node ${owners[i]})`;
        assert.ok(ms <= late, `${what} answered after ${ms} ms`);
        if (owners[i] !== victim) assert.equal(text(value), `v1-${keys[i]}`, what);
        else {
          _assertBackendError(value, what);
          if (round === 0) assert.match((value as RespErrorReply).message, /read_timeout/);
        }
      });
    }
  } finally {
    redis[victim].kill("SIGCONT");
  }

  // The node answers again; every reply matches its own request (distinct values).
  let clean = false;
  for (let round = 0; round < 60 && !clean; round++) {
    const value = (key: string) => `r${round}-${key}`;
    const commands = keys.flatMap((key) => [["SET", key, value(key)], ["GET", key]]);
    const replies = await client.pipeline(commands);
    assert.equal(replies.length, commands.length);
    clean = true;
    for (let i = 0; i < keys.length; i++) {
      const [set, get] = [replies[2 * i], replies[2 * i + 1]];
      const what = `round ${round}: ${keys[i]}`;
      if (set instanceof RespErrorReply || get instanceof RespErrorReply) {
        assert.equal(owners[i], victim, `${what}: error from a healthy node`);
        clean = false;
        continue;
      }
      assert.equal(set, "OK", what);
      assert.equal(text(get), value(keys[i]), `${what}: a reply for another request`);
    }
    if (!clean) await _sleep(50);
  }
  assert.ok(clean, "the stalled node never answered again after SIGCONT");
  // Once more, to catch a late reply that arrived after the first clean round.
  const final = await client.pipeline(keys.map((key) => ["GET", key]));
  const last = final.map(text);
  assert.equal(new Set(last).size, keys.length);
  last.forEach((value, i) => assert.match(String(value), new RegExp(`^r\\d+-${keys[i]}$`)));
  assert.equal(await client.command("PING"), "PONG");
});

Deno.test("a backend killed under a pipeline: every request gets exactly one reply", async () => {
  await using stack = new AsyncDisposableStack();
  const redis = await _startBackends(stack, 3);
  const aster = stack.use(await _startAster(redis, { read_timeout: 5000 }));
  const client = stack.use(await RespClient.connect(aster.ports[0]));
  client.timeoutMs = 4000;

  const keys = spreadKeys("kill", 90);
  const owners = await _writeAndLocate(client, redis, keys, (key) => `v1-${key}`);
  const victim = 1;

  // Stopped first so the victim's requests are surely in flight when it dies.
  redis[victim].kill("SIGSTOP");
  const commands = [...keys, ...keys].map((key) => ["GET", key]);
  const expectReplies = [...owners, ...owners];
  const writing = client.pipeline(commands);
  await _sleep(150);
  redis[victim].kill("SIGKILL");
  const replies = await writing;
  assert.equal(replies.length, commands.length);
  replies.forEach((reply, i) => {
    const key = keys[i % keys.length];
    if (expectReplies[i] === victim) _assertBackendError(reply, `GET ${key} to the killed node`);
    else assert.equal(text(reply), `v1-${key}`, `GET ${key}`);
  });
  // No extra reply is queued behind them: the next reply is this PING's.
  assert.equal(await client.command("PING"), "PONG");
  await _assertValues(client, keys.filter((_, i) => owners[i] !== victim), (key) => `v1-${key}`);
  const dead = keys[owners.indexOf(victim)];
  _assertBackendError(await client.command("GET", dead), `GET ${dead} after the kill`);
  assert.equal(text(await client.command("ECHO", "still-here")), "still-here");
});

Deno.test("a backend killed in the middle of a long pipeline: one reply per request, in order", async () => {
  await using stack = new AsyncDisposableStack();
  const redis = await _startBackends(stack, 3);
  const aster = stack.use(await _startAster(redis, { read_timeout: 5000 }));
  const client = stack.use(await RespClient.connect(aster.ports[0]));
  client.timeoutMs = 4000;

  const keys = spreadKeys("midkill", 200);
  const owners = await _writeAndLocate(client, redis, keys, (key) => `v1-${key}`);
  const victim = 0;
  const rounds = 40; // 8000 requests
  const commands: string[][] = [];
  for (let r = 0; r < rounds; r++) for (const key of keys) commands.push(["GET", key]);
  const writing = client.pipeline(commands);
  await _sleep(5);
  redis[victim].kill("SIGKILL");
  const replies = await writing;
  assert.equal(replies.length, commands.length);
  let errors = 0;
  replies.forEach((reply, i) => {
    const k = i % keys.length;
    if (reply instanceof RespErrorReply) {
      assert.equal(owners[k], victim, `error for ${keys[k]} on a live node: ${reply.message}`);
      _assertBackendError(reply, `GET ${keys[k]}`);
      errors++;
    } else assert.equal(text(reply), `v1-${keys[k]}`, `reply ${i} (GET ${keys[k]})`);
  });
  assert.ok(errors > 0, "the kill came after the whole pipeline: a weak test");
  assert.equal(await client.command("PING"), "PONG");
  await _assertValues(client, keys.filter((_, i) => owners[i] !== victim), (key) => `v1-${key}`);
});

/** Starts `count` redis-servers owned by `stack`. */
async function _startBackends(stack: AsyncDisposableStack, count: number) {
  const redis: ServerProcess[] = [];
  for (let i = 0; i < count; i++) redis.push(stack.use(await startRedis()));
  return redis;
}

/** Starts Aster in redis mode over `redis` with extra cluster keys. */
function _startAster(redis: ServerProcess[], extra: ClusterToml): Promise<AsterProcess> {
  return startAster([{ servers: redis.map((r) => `${HOST}:${r.port}:1`), ...extra }], {
    env: { ASTER_LOG: "info" },
  });
}

/**
 * SETs every key through the proxy, then asks each backend which keys it holds; returns
 * each key's backend index and checks every backend got some.
 */
async function _writeAndLocate(
  client: RespClient,
  redis: ServerProcess[],
  keys: string[],
  value: (key: string) => string,
): Promise<number[]> {
  const sets = await client.pipeline(keys.map((key) => ["SET", key, value(key)]));
  assert.deepEqual(sets, keys.map(() => "OK"));
  const owners = keys.map(() => -1);
  for (const [index, server] of redis.entries()) {
    const found = await _directPipeline(server.port, keys.map((key) => ["EXISTS", key]));
    found.forEach((exists, k) => {
      if (exists !== 1) return;
      assert.equal(owners[k], -1, `${keys[k]} is on two backends`);
      owners[k] = index;
    });
  }
  assert.ok(owners.every((o) => o >= 0), "every key is on some backend");
  for (let i = 0; i < redis.length; i++) assert.ok(owners.includes(i), `backend ${i} got no key`);
  return owners;
}

async function _assertValues(
  client: RespClient,
  keys: string[],
  value: (key: string) => string,
): Promise<void> {
  const replies = await client.pipeline(keys.map((key) => ["GET", key]));
  assert.deepEqual(replies.map(text), keys.map(value));
}

function _assertBackendError(reply: RespValue, what: string): void {
  assert.ok(reply instanceof RespErrorReply, `${what}: expected an error, got ${text(reply)}`);
  assert.match(reply.message, /^ERR backend /, what);
}

/** Sends `commands` in one write and reads the replies, timing each from the write. */
async function _timedReplies(
  client: RespClient,
  commands: string[][],
): Promise<{ value: RespValue; ms: number }[]> {
  const body = commands.map((args) =>
    `*${args.length}\r\n` + args.map((a) => `$${new TextEncoder().encode(a).length}\r\n${a}\r\n`)
      .join("")
  ).join("");
  const start = Date.now();
  await client.sendRaw(body);
  const out: { value: RespValue; ms: number }[] = [];
  for (let i = 0; i < commands.length; i++) {
    const value = await client.readReply();
    out.push({ value, ms: Date.now() - start });
  }
  return out;
}

async function _timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  const value = await run();
  return { value, ms: Date.now() - start };
}

async function _direct(port: number, command: string[]): Promise<RespValue> {
  return (await _directPipeline(port, [command]))[0];
}

async function _directPipeline(port: number, commands: string[][]): Promise<RespValue[]> {
  await using direct = await RespClient.connect(port);
  direct.timeoutMs = 2000;
  return await direct.pipeline(commands);
}

async function _dbsize(port: number): Promise<number> {
  const size = await _direct(port, ["DBSIZE"]);
  assert.equal(typeof size, "number");
  return size as number;
}

function _sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
