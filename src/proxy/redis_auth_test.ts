import assert from "node:assert/strict";
import { answerAuth, answerHello, constantTimeEqual } from "./redis_auth.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const argv = (...args: string[]) => args.map((a) => enc.encode(a));
const PASSWORD = enc.encode("s3cret");

Deno.test("constantTimeEqual() compares bytes of any lengths", () => {
  assert.ok(constantTimeEqual(enc.encode("abc"), enc.encode("abc")));
  assert.ok(!constantTimeEqual(enc.encode("abc"), enc.encode("abd")));
  assert.ok(!constantTimeEqual(enc.encode("abc"), enc.encode("abcd")));
  assert.ok(!constantTimeEqual(enc.encode(""), enc.encode("a")));
  assert.ok(constantTimeEqual(enc.encode(""), enc.encode("")));
});

Deno.test("answerAuth() accepts the password alone or with the default user", () => {
  assert.deepEqual(answerAuth(argv("AUTH", "s3cret"), PASSWORD).ok, true);
  assert.deepEqual(answerAuth(argv("AUTH", "default", "s3cret"), PASSWORD).ok, true);
  const wrong = answerAuth(argv("AUTH", "nope"), PASSWORD);
  assert.equal(wrong.ok, false);
  assert.match(dec.decode(wrong.reply), /^-WRONGPASS/);
  assert.equal(answerAuth(argv("AUTH", "alice", "s3cret"), PASSWORD).ok, false);
  assert.match(dec.decode(answerAuth(argv("AUTH", "x"), null).reply), /without any password/);
  // Redis 7 without requirepass: the default user is nopass, any password opens it.
  assert.equal(answerAuth(argv("AUTH", "default", "x"), null).ok, true);
  assert.equal(answerAuth(argv("AUTH", "alice", "x"), null).ok, false);
  assert.equal(
    dec.decode(answerAuth(argv("AUTH", "a", "b", "c"), PASSWORD).reply),
    "-ERR syntax error\r\n",
  );
});

Deno.test("answerHello() speaks RESP2 and can authenticate", () => {
  const context = {
    password: PASSWORD,
    authenticated: false,
    clientId: 7,
    version: "6.2.14",
    mode: "cluster",
    protocol: 2,
    resp3: false,
  };
  assert.match(dec.decode(answerHello(argv("HELLO", "2"), context).reply), /^-NOAUTH/);
  const ok = answerHello(argv("HELLO", "2", "AUTH", "default", "s3cret"), context);
  assert.equal(ok.ok, true);
  assert.match(dec.decode(ok.reply), /^\*14\r\n/);
  // The backends' version and the mode, as redis-server would say them.
  assert.match(dec.decode(ok.reply), /\$7\r\nversion\r\n\$6\r\n6\.2\.14\r\n/);
  assert.match(dec.decode(ok.reply), /\$4\r\nmode\r\n\$7\r\ncluster\r\n/);
  // Backends older than Redis 6 (`resp3: false`): HELLO 3 is refused as such a server does.
  assert.match(dec.decode(answerHello(argv("HELLO", "3"), context).reply), /^-NOPROTO/);
  const bad = answerHello(argv("HELLO", "2", "AUTH", "default", "x"), context);
  assert.match(dec.decode(bad.reply), /^-WRONGPASS/);
  // A successful AUTH option holds though a later option fails, as in redis-server 7.0.
  const partly = answerHello(argv("HELLO", "2", "AUTH", "default", "s3cret", "Foo"), context);
  assert.equal(dec.decode(partly.reply), "-ERR Syntax error in HELLO option 'Foo'\r\n");
  assert.equal(partly.ok, true);
});

Deno.test("answerHello() switches to RESP3 and back, a map under RESP3, NOPROTO past 3", () => {
  const context = {
    password: null,
    authenticated: true,
    clientId: 3,
    version: "7.0.15",
    mode: "standalone",
    protocol: 2,
    resp3: true,
  };
  const three = answerHello(argv("HELLO", "3"), context);
  assert.equal(three.protocol, 3);
  // redis-server 7.0.15's reply to HELLO 3, byte for byte (its id was 3 too).
  assert.equal(
    dec.decode(three.reply),
    "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n" +
      "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n" +
      "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
  );
  // A bare HELLO reports the protocol in force, in it.
  const bare = answerHello(argv("HELLO"), { ...context, protocol: 3 });
  assert.equal(bare.protocol, 3);
  assert.match(dec.decode(bare.reply), /^%7\r\n.*proto\r\n:3\r\n/s);
  const two = answerHello(argv("HELLO", "2"), { ...context, protocol: 3 });
  assert.equal(two.protocol, 2);
  assert.match(dec.decode(two.reply), /^\*14\r\n/);
  for (const version of ["4", "1", "0", "-1"]) {
    const refused = answerHello(argv("HELLO", version), { ...context, protocol: 3 });
    assert.equal(dec.decode(refused.reply), "-NOPROTO unsupported protocol version\r\n");
    assert.equal(refused.protocol, 3, "unchanged");
  }
  // A refused option leaves the protocol as it was.
  const bad = answerHello(argv("HELLO", "3", "SETNAME", "a b"), context);
  assert.equal(bad.protocol, 2);
});
