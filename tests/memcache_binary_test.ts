/**
 * `memcache_binary` mode against real memcached: hand-built packets through Aster over
 * three memcached: statuses, opaque and cas, quiet runs ending in NOOP, local answers,
 * refusals; then a seeded packet stream compared with one plain memcached.
 *
 * Replay a failure with `ASTER_TEST_SEED=<seed> deno test -A tests/memcache_binary_test.ts`.
 */

import assert from "node:assert/strict";
import { type AsterProcess, startAster, testBothIo } from "./helpers/aster.ts";
import { latin1, MemcacheClient, useMemcached, utf8, valuesOn } from "./helpers/memcache_client.ts";
import { spreadKeys } from "./helpers/keys.ts";
import { Random, testSeed } from "./helpers/random.ts";
import type { ServerProcess } from "./helpers/servers.ts";
import {
  BinaryOpcode as Op,
  type BinaryPacket,
  BinaryStatus as Status,
  encodeBinaryRequest,
} from "../src/protocol/memcache_binary/binary.ts";

const HOST = "127.0.0.1";
const SEED = testSeed(0xb1_4a27);
/** exptime of an increment that must not create a missing item. */
const NO_CREATE = 0xffffffff;

testBothIo(
  "binary: set/get/getk keep opaque and cas; cas, add and replace statuses; delete",
  async () => {
    await using stack = new AsyncDisposableStack();
    const { client } = await _fixture(stack);

    const set = await _call(client, Op.set, {
      key: "alpha",
      value: "one",
      extras: _storage(0xdeadbeef, 0),
      opaque: 0xfeedf00d,
    });
    _expect(set, Op.set, Status.ok, 0xfeedf00d);
    assert.ok(set.cas > 0n, "set returns the new cas");

    const get = await _call(client, Op.get, { key: "alpha", opaque: 7 });
    _expect(get, Op.get, Status.ok, 7);
    assert.equal(get.cas, set.cas, "get returns the stored cas");
    assert.deepEqual([...get.extras], [0xde, 0xad, 0xbe, 0xef], "flags come back as extras");
    assert.equal(latin1(get.key), "", "get carries no key");
    assert.equal(latin1(get.value), "one");

    const getk = await _call(client, Op.getk, { key: "alpha", opaque: 0xffffffff });
    _expect(getk, Op.getk, Status.ok, 0xffffffff);
    assert.equal(latin1(getk.key), "alpha");
    assert.equal(latin1(getk.value), "one");

    const miss = await _call(client, Op.getk, { key: "nope", opaque: 8 });
    _expect(miss, Op.getk, Status.keyNotFound, 8);
    assert.equal(latin1(miss.key), "nope");

    // set with a cas: a stale one is refused, the current one works and moves the cas.
    const stale = await _call(client, Op.set, {
      key: "alpha",
      value: "two",
      extras: _storage(0, 0),
      cas: set.cas + 1000n,
      opaque: 9,
    });
    _expect(stale, Op.set, Status.keyExists, 9);
    const swapped = await _call(client, Op.set, {
      key: "alpha",
      value: "two",
      extras: _storage(1, 0),
      cas: set.cas,
      opaque: 10,
    });
    _expect(swapped, Op.set, Status.ok, 10);
    assert.notEqual(swapped.cas, set.cas);
    const casMissing = await _call(client, Op.set, {
      key: "ghost",
      value: "x",
      extras: _storage(0, 0),
      cas: 5n,
    });
    _expect(casMissing, Op.set, Status.keyNotFound, 0);

    _expect(
      await _call(client, Op.add, { key: "alpha", value: "3", extras: _storage(0, 0), opaque: 11 }),
      Op.add,
      Status.keyExists,
      11,
    );
    _expect(
      await _call(client, Op.add, { key: "beta", value: "b", extras: _storage(0, 0), opaque: 12 }),
      Op.add,
      Status.ok,
      12,
    );
    _expect(
      await _call(client, Op.replace, { key: "gamma", value: "g", extras: _storage(0, 0) }),
      Op.replace,
      Status.keyNotFound,
      0,
    );
    _expect(
      await _call(client, Op.replace, { key: "beta", value: "B", extras: _storage(0, 0) }),
      Op.replace,
      Status.ok,
      0,
    );
    assert.equal(latin1((await _call(client, Op.get, { key: "beta" })).value), "B");

    _expect(await _call(client, Op.delete, { key: "beta", opaque: 13 }), Op.delete, Status.ok, 13);
    _expect(
      await _call(client, Op.delete, { key: "beta", opaque: 14 }),
      Op.delete,
      Status.keyNotFound,
      14,
    );
    _expect(await _call(client, Op.get, { key: "beta" }), Op.get, Status.keyNotFound, 0);
  },
);

testBothIo(
  "binary: increment and decrement with initial values, no-create exptime, non-numeric values",
  async () => {
    await using stack = new AsyncDisposableStack();
    const { client } = await _fixture(stack);
    const arith = async (opcode: number, key: string, delta: bigint, initial: bigint, exp = 0) =>
      await _call(client, opcode, { key, extras: _arith(delta, initial, exp), opaque: 77 });

    const created = await arith(Op.increment, "ctr", 5n, 100n);
    _expect(created, Op.increment, Status.ok, 77);
    assert.equal(_u64(created.value), 100n, "a missing counter starts at the initial value");
    assert.ok(created.cas > 0n);
    assert.equal(_u64((await arith(Op.increment, "ctr", 5n, 100n)).value), 105n);
    assert.equal(_u64((await arith(Op.decrement, "ctr", 6n, 0n)).value), 99n);
    assert.equal(_u64((await arith(Op.decrement, "ctr", 1000n, 0n)).value), 0n, "decr floors at 0");
    assert.equal(
      _u64((await arith(Op.increment, "ctr", 2n ** 64n - 1n, 0n)).value),
      2n ** 64n - 1n,
    );
    assert.equal(_u64((await arith(Op.increment, "ctr", 2n, 0n)).value), 1n, "incr wraps");
    // memcached may keep a shrunk number in place, padded with spaces.
    assert.equal(latin1((await _call(client, Op.get, { key: "ctr" })).value).trimEnd(), "1");

    const absent = await arith(Op.increment, "absent", 1n, 10n, NO_CREATE);
    _expect(absent, Op.increment, Status.keyNotFound, 77);
    _expect(await _call(client, Op.get, { key: "absent" }), Op.get, Status.keyNotFound, 0);
    const down = await arith(Op.decrement, "down", 1n, 42n);
    assert.equal(_u64(down.value), 42n);

    await _call(client, Op.set, { key: "word", value: "abc", extras: _storage(0, 0) });
    _expect(await arith(Op.increment, "word", 1n, 0n), Op.increment, Status.nonNumeric, 77);
    _expect(await arith(Op.decrement, "word", 1n, 0n), Op.decrement, Status.nonNumeric, 77);
  },
);

testBothIo("binary: append/prepend, touch and gat/gatk", async () => {
  await using stack = new AsyncDisposableStack();
  const { client } = await _fixture(stack);
  await _call(client, Op.set, { key: "s", value: "mid", extras: _storage(3, 0) });
  _expect(await _call(client, Op.append, { key: "s", value: ">>", opaque: 1 }), Op.append, 0, 1);
  _expect(await _call(client, Op.prepend, { key: "s", value: "<<", opaque: 2 }), Op.prepend, 0, 2);
  const got = await _call(client, Op.get, { key: "s" });
  assert.equal(latin1(got.value), "<<mid>>");
  assert.deepEqual([...got.extras], [0, 0, 0, 3], "append/prepend keep the flags");
  _expect(
    await _call(client, Op.append, { key: "nothing", value: "x", opaque: 3 }),
    Op.append,
    Status.itemNotStored,
    3,
  );
  _expect(
    await _call(client, Op.prepend, { key: "nothing", value: "x", opaque: 4 }),
    Op.prepend,
    Status.itemNotStored,
    4,
  );

  _expect(
    await _call(client, Op.touch, { key: "s", extras: _u32(3600), opaque: 5 }),
    Op.touch,
    0,
    5,
  );
  _expect(
    await _call(client, Op.touch, { key: "nothing", extras: _u32(3600), opaque: 6 }),
    Op.touch,
    Status.keyNotFound,
    6,
  );
  const gat = await _call(client, Op.gat, { key: "s", extras: _u32(0), opaque: 7 });
  _expect(gat, Op.gat, Status.ok, 7);
  assert.equal(latin1(gat.value), "<<mid>>");
  assert.deepEqual([...gat.extras], [0, 0, 0, 3]);
  const gatk = await _call(client, Op.gatk, { key: "s", extras: _u32(0), opaque: 8 });
  _expect(gatk, Op.gatk, Status.ok, 8);
  assert.equal(latin1(gatk.key), "s");
  _expect(
    await _call(client, Op.gat, { key: "nothing", extras: _u32(0), opaque: 9 }),
    Op.gat,
    Status.keyNotFound,
    9,
  );
  // gat with an absolute exptime in the past (over 30 days: a unix time) expires the item.
  await _call(client, Op.gat, { key: "s", extras: _u32(30 * 86400 + 1), opaque: 10 });
  _expect(await _call(client, Op.get, { key: "s" }), Op.get, Status.keyNotFound, 0);
});

testBothIo(
  "binary: version and noop answered by Aster, admin opcodes refused, quit and quitq close",
  async () => {
    await using stack = new AsyncDisposableStack();
    const { client, aster } = await _fixture(stack);
    const version = await _call(client, Op.version, { opaque: 21 });
    _expect(version, Op.version, Status.ok, 21);
    assert.match(latin1(version.value), /^aster-/);
    _expect(await _call(client, Op.noop, { opaque: 22 }), Op.noop, Status.ok, 22);
    for (const opcode of [Op.flush, Op.stat]) {
      const refused = await _call(client, opcode, { opaque: 23 });
      _expect(refused, opcode, Status.unknownCommand, 23);
    }
    // A stat group is refused too: memcached answers it with a packet per statistic and an
    // empty one to end, which would be taken for the replies of the requests after it.
    await client.send(_concat([
      _req(Op.stat, { key: "items", opaque: 26 }),
      _req(Op.get, { key: "nothing", opaque: 27 }),
      _req(Op.noop, { opaque: 28 }),
    ]));
    _expect(await client.readPacket(), Op.stat, Status.unknownCommand, 26);
    _expect(await client.readPacket(), Op.get, Status.keyNotFound, 27);
    _expect(await client.readPacket(), Op.noop, Status.ok, 28);

    await client.send(_req(Op.quit, { opaque: 24 }));
    _expect(await client.readPacket(), Op.quit, Status.ok, 24);
    assert.ok(await client.closedWithin(2000), "quit closes the connection");

    const quiet = stack.use(await MemcacheClient.connect(aster.ports[0]));
    await quiet.send(_req(Op.quitq, { opaque: 25 }));
    assert.equal(await quiet.drain(300), "", "quitq sends nothing");
    assert.ok(await quiet.closedWithin(2000), "quitq closes the connection");
  },
);

testBothIo(
  "binary: a pipelined GETKQ/GETQ run over 3 servers returns exactly the hits in request order, then the NOOP",
  async () => {
    await using stack = new AsyncDisposableStack();
    const { client, backends } = await _fixture(stack);
    const keys = spreadKeys("q", 30);
    const present = keys.filter((_, i) => i % 3 !== 1);
    const sets = present.map((key, i) =>
      _req(Op.setq, { key, value: `v-${key}`, extras: _storage(i, 0), opaque: 1000 + i })
    );
    await client.send(_concat([...sets, _req(Op.noop, { opaque: 1 })]));
    assert.deepEqual((await _readUntilNoop(client, sets.length + 1)).map((p) => p.opcode), [
      Op.noop,
    ]);
    const held = await Promise.all(backends.map((m) => valuesOn(m.port, keys)));
    held.forEach((values, i) => assert.ok(values.size >= 3, `backend ${i} holds ${values.size}`));

    // The same key asked twice is answered twice; misses never are.
    const asked = [...keys, keys[0], keys[1]];
    for (const opcode of [Op.getkq, Op.getq]) {
      const run = asked.map((key, i) => _req(opcode, { key, opaque: i }));
      await client.send(_concat([...run, _req(Op.noop, { opaque: 0xabcdef })]));
      const replies = await _readUntilNoop(client, asked.length + 1);
      const hits = asked.flatMap((key, i) => present.includes(key) ? [{ key, i }] : []);
      assert.deepEqual(
        replies.map((p) => [p.opcode, p.opaque, latin1(p.key), latin1(p.value)]),
        [
          ...hits.map(({ key, i }) => [opcode, i, opcode === Op.getkq ? key : "", `v-${key}`]),
          [Op.noop, 0xabcdef, "", ""],
        ],
      );
      replies.slice(0, -1).forEach((p) => {
        assert.equal(p.status, Status.ok);
        assert.ok(p.cas > 0n);
      });
    }
  },
);

testBothIo(
  "binary: a setq run then noop returns only the noop; quiet failures are still answered",
  async () => {
    await using stack = new AsyncDisposableStack();
    const { client, backends } = await _fixture(stack);
    const keys = spreadKeys("sq", 40);
    const sets = keys.map((key, i) =>
      _req(Op.setq, { key, value: `s-${key}`, extras: _storage(0, 0), opaque: i })
    );
    await client.send(_concat([...sets, _req(Op.noop, { opaque: 999 })]));
    const replies = await _readUntilNoop(client, keys.length + 1);
    assert.deepEqual(replies.map((p) => [p.opcode, p.opaque]), [[Op.noop, 999]]);
    const held = await Promise.all(backends.map((m) => valuesOn(m.port, keys)));
    assert.equal(held.reduce((n, values) => n + values.size, 0), keys.length, "all stored");
    held.forEach((values, i) => assert.ok(values.size > 0, `backend ${i} got none`));

    // addq on existing keys and deleteq on missing ones fail: those are answered, in order.
    const mixed = [
      _req(Op.addq, { key: keys[0], value: "x", extras: _storage(0, 0), opaque: 1 }),
      _req(Op.deleteq, { key: keys[1], opaque: 2 }), // deleted: silent
      _req(Op.deleteq, { key: keys[1], opaque: 3 }), // not found: answered
      _req(Op.replaceq, { key: "sq-none", value: "x", extras: _storage(0, 0), opaque: 4 }),
      _req(Op.appendq, { key: keys[2], value: "+", opaque: 5 }), // silent
      _req(Op.incrementq, { key: keys[3], extras: _arith(1n, 0n, 0), opaque: 6 }), // non-numeric
      _req(Op.incrementq, { key: "sq-ctr", extras: _arith(1n, 9n, 0), opaque: 7 }), // silent
      _req(Op.addq, { key: keys[4], value: "x", extras: _storage(0, 0), opaque: 8 }),
      _req(Op.noop, { opaque: 9 }),
    ];
    await client.send(_concat(mixed));
    const answered = await _readUntilNoop(client, mixed.length);
    assert.deepEqual(answered.map((p) => [p.opcode, p.opaque, p.status]), [
      [Op.addq, 1, Status.keyExists],
      [Op.deleteq, 3, Status.keyNotFound],
      [Op.replaceq, 4, Status.keyNotFound],
      [Op.incrementq, 6, Status.nonNumeric],
      [Op.addq, 8, Status.keyExists],
      [Op.noop, 9, Status.ok],
    ]);
    assert.equal(latin1((await _call(client, Op.get, { key: keys[2] })).value), `s-${keys[2]}+`);
    assert.equal(latin1((await _call(client, Op.get, { key: "sq-ctr" })).value), "9");
  },
);

testBothIo(
  "binary: a bad magic byte closes the connection; a too-large value gets status 3 and the connection goes on",
  async () => {
    await using stack = new AsyncDisposableStack();
    const { client, aster } = await _fixture(stack);
    const big = new Uint8Array(1024 * 1024 + 1).fill(0x61);
    const tooLarge = await _call(client, Op.set, {
      key: "big",
      value: big,
      extras: _storage(0, 0),
      opaque: 31,
    });
    _expect(tooLarge, Op.set, Status.valueTooLarge, 31);
    const quietTooLarge = _req(Op.setq, { key: "big", value: big, extras: _storage(0, 0) });
    await client.send(_concat([quietTooLarge, _req(Op.noop, { opaque: 32 })]));
    const replies = await _readUntilNoop(client, 2);
    assert.deepEqual(replies.map((p) => [p.opcode, p.status]), [
      [Op.setq, Status.valueTooLarge],
      [Op.noop, Status.ok],
    ]);
    const fits = new Uint8Array(900 * 1024).fill(0x62);
    _expect(
      await _call(client, Op.set, { key: "big", value: fits, extras: _storage(0, 0), opaque: 33 }),
      Op.set,
      Status.ok,
      33,
    );
    const back = await _call(client, Op.get, { key: "big", opaque: 34 });
    assert.equal(back.value.length, fits.length);
    assert.ok(back.value.every((byte) => byte === 0x62));
    // A key over 250 bytes: refused, the connection goes on.
    const longKey = await _call(client, Op.get, { key: "k".repeat(251), opaque: 35 });
    _expect(longKey, Op.get, Status.invalidArguments, 35);
    _expect(await _call(client, Op.noop, { opaque: 36 }), Op.noop, Status.ok, 36);

    const bad = stack.use(await MemcacheClient.connect(aster.ports[0]));
    const packet = _req(Op.get, { key: "big" });
    packet[0] = 0x81; // a response magic
    await bad.send(packet);
    assert.ok(await bad.closedWithin(2000), "bad magic closes the connection");
    const text = stack.use(await MemcacheClient.connect(aster.ports[0]));
    await text.send("get big\r\n");
    assert.ok(await text.closedWithin(2000), "a text command is bad magic too");
    _expect(await _call(client, Op.noop, { opaque: 37 }), Op.noop, Status.ok, 37);
  },
);

testBothIo(
  "binary: a SET or SETQ too large drops the key's old value as memcached does, an ADD keeps it",
  async () => {
    await using stack = new AsyncDisposableStack();
    const direct = await useMemcached(stack);
    const { aster } = await _fixture(stack);
    const big = new Uint8Array(2_000_000).fill(0x61); // over memcached's and Aster's 1 MiB
    const old = { value: "abc", extras: _storage(5, 0) };
    const script = _concat([
      _req(Op.set, { key: "a", ...old, opaque: 1 }),
      _req(Op.set, { key: "a", value: big, extras: _storage(0, 0), opaque: 2 }),
      _req(Op.getk, { key: "a", opaque: 3 }),
      _req(Op.set, { key: "b", ...old, opaque: 4 }),
      _req(Op.setq, { key: "b", value: big, extras: _storage(0, 0), opaque: 5 }),
      _req(Op.getk, { key: "b", opaque: 6 }),
      _req(Op.set, { key: "c", ...old, opaque: 7 }),
      _req(Op.add, { key: "c", value: big, extras: _storage(0, 0), opaque: 8 }),
      _req(Op.getk, { key: "c", opaque: 9 }),
      _req(Op.noop, { opaque: 10 }),
    ]);
    const [want, got] = await Promise.all([direct.port, aster.ports[0]].map(async (port) => {
      await using client = await MemcacheClient.connect(port);
      await client.send(script);
      return (await _readUntilNoop(client, 10)).map(_comparable);
    }));
    assert.deepEqual(
      want.map(([opcode, status, opaque]) => [opcode, status, opaque]),
      [
        [Op.set, Status.ok, 1],
        [Op.set, Status.valueTooLarge, 2],
        [Op.getk, Status.keyNotFound, 3],
        [Op.set, Status.ok, 4],
        [Op.setq, Status.valueTooLarge, 5],
        [Op.getk, Status.keyNotFound, 6],
        [Op.set, Status.ok, 7],
        [Op.add, Status.valueTooLarge, 8],
        [Op.getk, Status.ok, 9],
        [Op.noop, Status.ok, 10],
      ],
      "memcached's own answers",
    );
    assert.deepEqual(got, want);
  },
);

testBothIo(
  "binary differential: a seeded packet stream gets the same responses through Aster as from one memcached",
  async () => {
    await using stack = new AsyncDisposableStack();
    const direct = await useMemcached(stack);
    const { client, backends } = await _fixture(stack);
    const plain = stack.use(await MemcacheClient.connect(direct.port));
    const rng = new Random(SEED);
    // Counters get numbers only and texts never meet incr/decr: memcached may store a number
    // that shrank in place padded with spaces, or not, depending on timing, so a padded
    // counter is compared trimmed and never has text appended.
    const texts = spreadKeys("bd", 16);
    const counters = spreadKeys("bc", 8);
    const keys = [...texts, ...counters];
    const quietOps = [Op.getq, Op.getkq, Op.setq, Op.addq, Op.replaceq, Op.deleteq];
    const counts = new Map<number, number>();
    for (let batch = 0; batch < 150; batch++) {
      const packets: Uint8Array[] = [];
      const size = rng.range(1, 12);
      for (let i = 0; i < size; i++) {
        const opcode: number = rng.pick([
          Op.get,
          Op.getk,
          Op.set,
          Op.add,
          Op.replace,
          Op.delete,
          Op.increment,
          Op.decrement,
          Op.append,
          Op.prepend,
          Op.touch,
          Op.gat,
          Op.gatk,
          ...quietOps,
          Op.incrementq,
          Op.appendq,
          Op.gatq,
          Op.gatkq,
        ]);
        counts.set(opcode, (counts.get(opcode) ?? 0) + 1);
        const arithmetic = ([Op.increment, Op.decrement, Op.incrementq] as number[]).includes(
          opcode,
        );
        const appending = ([Op.append, Op.prepend, Op.appendq] as number[]).includes(opcode);
        const key = rng.pick(arithmetic ? counters : appending ? texts : keys);
        packets.push(_randomPacket(rng, opcode, key, counters.includes(key), batch * 100 + i));
      }
      packets.push(_req(Op.noop, { opaque: 0x7fff0000 + batch }));
      const run = async (c: MemcacheClient) => {
        await c.send(_concat(packets));
        return (await _readUntilNoop(c, packets.length)).map(_comparable);
      };
      const [want, got] = await Promise.all([run(plain), run(client)]);
      assert.deepEqual(got, want, `batch ${batch} (seed ${SEED}) differs`);
    }
    assert.ok(counts.size >= 20, "most opcodes were sent");
    const held = await Promise.all(backends.map((m) => valuesOn(m.port, keys)));
    held.forEach((values, i) => assert.ok(values.size > 0, `backend ${i} holds none`));
  },
);

// ---------------------------------------------------------------------------
// Helpers.

interface PacketFields {
  key?: string;
  value?: string | Uint8Array;
  extras?: Uint8Array;
  opaque?: number;
  cas?: bigint;
}

testBothIo(
  "binary: a value over 1 MiB that memcached holds comes back; the shared connection lives on",
  async () => {
    await using stack = new AsyncDisposableStack();
    // memcached takes items up to 4 MB; Aster keeps its default max_value_size (1 MiB), which
    // bounds what clients send, not what a server holds.
    const memcached = await useMemcached(stack, { args: ["-I", "4m"] });
    const aster = stack.use(
      await startAster([{
        cache_type: "memcache_binary",
        servers: [`${HOST}:${memcached.port}:1 big`],
      }]),
    );
    const client = stack.use(await MemcacheClient.connect(aster.ports[0]));
    const half = "x".repeat(800_000);
    _expect(
      await _call(client, Op.set, { key: "grow", value: half, extras: _storage(0, 0) }),
      Op.set,
      Status.ok,
      0,
    );
    _expect(await _call(client, Op.append, { key: "grow", value: half }), Op.append, Status.ok, 0);
    const other = stack.use(await MemcacheClient.connect(aster.ports[0]));
    _expect(
      await _call(other, Op.set, { key: "small", value: "s", extras: _storage(0, 0) }),
      Op.set,
      Status.ok,
      0,
    );
    // The big GET and another client's small GETs share the backend connection.
    await client.send(_req(Op.get, { key: "grow", opaque: 1 }));
    await other.send(
      _concat(Array.from({ length: 50 }, (_, i) => _req(Op.get, { key: "small", opaque: i }))),
    );
    const big = await client.readPacket();
    _expect(big, Op.get, Status.ok, 1);
    assert.equal(big.value.length, 1_600_000);
    for (let i = 0; i < 50; i++) {
      const small = await other.readPacket();
      _expect(small, Op.get, Status.ok, i);
      assert.equal(latin1(small.value), "s");
    }
  },
);

/** Three memcached and Aster in memcache_binary mode over them, and one client. */
async function _fixture(stack: AsyncDisposableStack): Promise<{
  backends: ServerProcess[];
  aster: AsterProcess;
  client: MemcacheClient;
}> {
  const backends: ServerProcess[] = [];
  for (let i = 0; i < 3; i++) backends.push(await useMemcached(stack));
  const servers = backends.map((m, i) => `${HOST}:${m.port}:1 mb${i}`);
  const aster = stack.use(await startAster([{ cache_type: "memcache_binary", servers }]));
  const client = stack.use(await MemcacheClient.connect(aster.ports[0]));
  return { backends, aster, client };
}

function _req(opcode: number, fields: PacketFields): Uint8Array {
  return encodeBinaryRequest({
    opcode,
    key: fields.key === undefined ? undefined : utf8(fields.key),
    value: typeof fields.value === "string" ? utf8(fields.value) : fields.value,
    extras: fields.extras,
    opaque: fields.opaque ?? 0,
    cas: fields.cas,
  });
}

/** Sends one request and reads one response. */
async function _call(
  client: MemcacheClient,
  opcode: number,
  fields: PacketFields,
): Promise<BinaryPacket> {
  await client.send(_req(opcode, fields));
  return await client.readPacket();
}

function _expect(packet: BinaryPacket, opcode: number, status: number, opaque: number): void {
  const what = `${latin1(packet.value).slice(0, 80)}`;
  assert.deepEqual(
    { opcode: packet.opcode, status: packet.status, opaque: packet.opaque, magic: packet.magic },
    { opcode, status, opaque, magic: 0x81 },
    `response value: ${what}`,
  );
}

/** Reads responses until a NOOP (included), at most `max`. */
async function _readUntilNoop(client: MemcacheClient, max: number): Promise<BinaryPacket[]> {
  const replies: BinaryPacket[] = [];
  for (let i = 0; i < max; i++) {
    const packet = await client.readPacket();
    replies.push(packet);
    if (packet.opcode === Op.noop) return replies;
  }
  throw new Error(`no NOOP within ${max} responses`);
}

/** A response with its cas reduced to zero or not (cas values differ between servers). */
function _comparable(p: BinaryPacket): unknown[] {
  return [
    p.opcode,
    p.status,
    p.opaque,
    p.cas === 0n ? 0 : 1,
    [...p.extras],
    latin1(p.key),
    latin1(p.value).replace(/^(\d+) +$/, "$1"),
  ];
}

function _randomPacket(
  rng: Random,
  opcode: number,
  key: string,
  counter: boolean,
  opaque: number,
): Uint8Array {
  const value = counter ? String(rng.int(1000)) : `v${rng.int(1e6)}`.repeat(rng.range(1, 4));
  const exptime = rng.pick([0, 0, 3600, NO_CREATE]);
  switch (opcode) {
    case Op.set:
    case Op.add:
    case Op.replace:
    case Op.setq:
    case Op.addq:
    case Op.replaceq:
      return _req(opcode, { key, value, extras: _storage(rng.int(2 ** 32), 0), opaque });
    case Op.append:
    case Op.prepend:
    case Op.appendq:
      return _req(opcode, { key, value, opaque });
    case Op.increment:
    case Op.decrement:
    case Op.incrementq: {
      const extras = _arith(BigInt(rng.int(1000)), BigInt(rng.int(100)), exptime);
      return _req(opcode, { key, extras, opaque });
    }
    case Op.touch:
    case Op.gat:
    case Op.gatk:
    case Op.gatq:
    case Op.gatkq:
      return _req(opcode, { key, extras: _u32(rng.pick([0, 3600])), opaque });
    default:
      return _req(opcode, { key, opaque });
  }
}

/** set/add/replace extras: flags, exptime. */
function _storage(flags: number, exptime: number): Uint8Array {
  return _concat([_u32(flags), _u32(exptime)]);
}

/** incr/decr extras: delta, initial value, exptime. */
function _arith(delta: bigint, initial: bigint, exptime: number): Uint8Array {
  const out = new Uint8Array(20);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, delta);
  view.setBigUint64(8, initial);
  view.setUint32(16, exptime);
  return out;
}

function _u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

function _u64(bytes: Uint8Array): bigint {
  assert.equal(bytes.length, 8, "a counter is 8 bytes");
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
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
