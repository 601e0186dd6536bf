/**
 * Subscriber on in-memory sockets: confirmations wait for the backend, messages reach the
 * client, connections close with the last name and with the client, and names move when
 * the routing changes (subscribed on the new node first on a ring, unsubscribed on the old
 * one first where every node gets every PUBLISH) or when their connection fails.
 */
import assert from "node:assert/strict";
import { type PubsubGauges, Subscriber } from "./subscriber.ts";
import type { Routing } from "./routing.ts";
import { NodePool } from "../backend/node_pool.ts";
import { PinnedPool } from "../backend/pinned_pool.ts";
import type { ReplyTarget } from "../protocol/protocol.ts";
import { ClientSubscriptions, SubKind } from "../protocol/resp/pubsub.ts";
import { RespReplyFramer } from "../protocol/resp/reply_framer.ts";
import { sockets, useSockets } from "../io/sockets.ts";
import { type FakeConn, FakeSockets, settle } from "../../tests/helpers/fake_conn.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const b = (text: string) => encoder.encode(text);
const PONG = "*2\r\n$4\r\npong\r\n$0\r\n\r\n";

/** Two nodes; every name lives on `node` until the test moves it. */
class MovableRouting implements Routing {
  node = 0;
  version = 0;
  constructor(readonly sharedPubsub: boolean) {}
  groupOf(): number {
    return this.node;
  }
  send(): void {
    throw new Error("not used");
  }
  broadcastGroups(): number[] {
    return [0, 1];
  }
  nodeOf(group: number): number {
    return group;
  }
  placementVersion(): number {
    return this.version;
  }
}

/** What the client got: confirmations and messages, in order. */
class Client implements ReplyTarget {
  readonly got: string[] = [];
  readonly gauges: PubsubGauges = { clients: 0, channels: 0, patterns: 0, shardChannels: 0 };
  deliver(frame: Uint8Array): void {
    this.got.push(latin1.decode(frame));
  }
  answer(reply: Uint8Array): void {
    this.got.push(latin1.decode(reply));
  }
  fill(reply: Uint8Array): void {
    this.answer(reply);
  }
  onReply(reply: Uint8Array): void {
    this.answer(reply);
  }
  onError(message: string): void {
    this.got.push(`error: ${message}`);
  }
}

interface Fixture {
  fake: FakeSockets;
  routing: MovableRouting;
  client: Client;
  subscriber: Subscriber;
  subs: ClientSubscriptions;
  /** The subscription connection opened to node `n`'s port (1 + n), the latest. */
  conn(node: number): FakeConn;
}

async function _with(shared: boolean, body: (fx: Fixture) => Promise<void>): Promise<void> {
  const real = sockets();
  const fake = new FakeSockets();
  useSockets(fake);
  const pool = new NodePool(
    [{ name: "n0", host: "127.0.0.1", port: 1 }, { name: "n1", host: "127.0.0.1", port: 2 }],
    {
      connectionsPerNode: 1,
      dialTimeout: 1000,
      readTimeout: 1000,
      writeTimeout: 1000,
      newFramer: () => new RespReplyFramer(),
    },
  );
  const subscriptions = new PinnedPool(pool, { capPerNode: 4 });
  const routing = new MovableRouting(shared);
  const client = new Client();
  const subscriber = new Subscriber(client, { routing, subscriptions });
  try {
    await settle();
    await body({
      fake,
      routing,
      client,
      subscriber,
      subs: new ClientSubscriptions(),
      // The pool's own shared connections are opened first: the last dialled is ours.
      conn: (node) => fake.connTo(`127.0.0.1:${node + 1}`),
    });
  } finally {
    subscriber.close();
    subscriptions.close();
    pool.close();
    useSockets(real);
  }
}

/** The client subscribes `name` and its confirmation comes once node `node` answered. */
async function _subscribe(fx: Fixture, name: string, node: number): Promise<FakeConn> {
  const delta = fx.subs.subscribe(SubKind.channel, [b(name)]);
  fx.subscriber.change(fx.subs, [delta], delta.reply, fx.client);
  await settle();
  const conn = fx.conn(node);
  assert.match(conn.text(), new RegExp(`SUBSCRIBE\r\n\\$${name.length}\r\n${name}\r\n`));
  const before = fx.client.got.length;
  conn.push(`*3\r\n$9\r\nsubscribe\r\n$${name.length}\r\n${name}\r\n:1\r\n`);
  await settle();
  assert.equal(fx.client.got.length, before, "no confirmation before the marker's pong");
  conn.push(PONG);
  await settle();
  assert.equal(fx.client.got.at(-1), latin1.decode(delta.reply));
  return conn;
}

const message = (channel: string, text: string) =>
  `*3\r\n$7\r\nmessage\r\n$${channel.length}\r\n${channel}\r\n$${text.length}\r\n${text}\r\n`;

Deno.test("Subscriber confirms after the backend, delivers, and closes idle connections", async () => {
  await _with(false, async (fx) => {
    const conn = await _subscribe(fx, "news", 0);
    assert.deepEqual(fx.client.gauges, { clients: 1, channels: 1, patterns: 0, shardChannels: 0 });
    conn.push(message("news", "hello"));
    await settle();
    assert.equal(fx.client.got.at(-1), message("news", "hello"));
    const delta = fx.subs.unsubscribe(SubKind.channel, []);
    fx.subscriber.change(fx.subs, [delta], delta.reply, fx.client);
    await settle();
    assert.match(conn.text(), /UNSUBSCRIBE\r\n\$4\r\nnews\r\n\*1\r\n\$4\r\nPING\r\n$/);
    // A message published before the unsubscription took effect is not written after it.
    conn.push(message("news", "late"));
    conn.push(PONG);
    await settle();
    assert.equal(fx.client.got.at(-1), latin1.decode(delta.reply));
    assert.equal(fx.subscriber.connectionCount, 0);
    assert.ok(conn.closed, "closed, not pooled");
    assert.deepEqual(fx.client.gauges, { clients: 0, channels: 0, patterns: 0, shardChannels: 0 });
  });
});

Deno.test("Subscriber on a ring moves a channel: subscribed on the new node first", async () => {
  await _with(false, async (fx) => {
    const old = await _subscribe(fx, "ch", 0);
    fx.routing.node = 1;
    fx.routing.version++;
    fx.subscriber.check();
    await settle();
    const fresh = fx.conn(1);
    assert.match(fresh.text(), /SUBSCRIBE\r\n\$2\r\nch\r\n/);
    assert.match(old.text(), /UNSUBSCRIBE\r\n\$2\r\nch\r\n/);
    fresh.push(PONG);
    old.push(PONG);
    await settle();
    assert.ok(old.closed);
    fresh.push(message("ch", "moved"));
    await settle();
    assert.equal(fx.client.got.at(-1), message("ch", "moved"));
  });
});

Deno.test("Subscriber where every node gets every PUBLISH: unsubscribed on the old node first", async () => {
  await _with(true, async (fx) => {
    // Shared Pub/Sub: classic channels live in group 0 whatever their name.
    const old = await _subscribe(fx, "ch", 0);
    fx.routing.node = 1;
    fx.routing.version++;
    // Group 0's node moves (a failover): the routing says node 1 now.
    fx.routing.nodeOf = (group: number) => group === 0 ? 1 : group;
    fx.subscriber.check();
    await settle();
    assert.match(old.text(), /UNSUBSCRIBE\r\n\$2\r\nch\r\n/);
    assert.equal(fx.fake.addresses.filter((a) => a === "127.0.0.1:2").length, 1, "not yet");
    old.push(PONG);
    await settle();
    const fresh = fx.conn(1);
    assert.match(fresh.text(), /SUBSCRIBE\r\n\$2\r\nch\r\n/);
  });
});

Deno.test("Subscriber places its names again after their connection failed", async () => {
  await _with(false, async (fx) => {
    const first = await _subscribe(fx, "ch", 0);
    first.fail("reset by peer");
    await settle();
    // Retried after the backoff (100 ms) by the ticker.
    await new Promise((resolve) => setTimeout(resolve, 250));
    await settle();
    const second = fx.conn(0);
    assert.notEqual(second, first);
    assert.match(second.text(), /SUBSCRIBE\r\n\$2\r\nch\r\n/);
    fx.subscriber.close();
    assert.ok(second.closed);
  });
});
