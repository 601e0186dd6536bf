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
});

Deno.test("answerHello() speaks RESP2 and can authenticate", () => {
  const context = {
    password: PASSWORD,
    authenticated: false,
    clientId: 7,
    version: "6.2.14",
    mode: "cluster",
  };
  assert.match(dec.decode(answerHello(argv("HELLO", "2"), context).reply), /^-NOAUTH/);
  const ok = answerHello(argv("HELLO", "2", "AUTH", "default", "s3cret"), context);
  assert.equal(ok.ok, true);
  assert.match(dec.decode(ok.reply), /^\*14\r\n/);
  // The backends' version and the mode, as redis-server would say them.
  assert.match(dec.decode(ok.reply), /\$7\r\nversion\r\n\$6\r\n6\.2\.14\r\n/);
  assert.match(dec.decode(ok.reply), /\$4\r\nmode\r\n\$7\r\ncluster\r\n/);
  assert.match(dec.decode(answerHello(argv("HELLO", "3"), context).reply), /^-NOPROTO/);
  const bad = answerHello(argv("HELLO", "2", "AUTH", "default", "x"), context);
  assert.match(dec.decode(bad.reply), /^-WRONGPASS/);
});
