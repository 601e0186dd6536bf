import assert from "node:assert/strict";
import { ipv4Octets, malformedIpv4 } from "./ipv4.ts";

Deno.test("ipv4Octets() reads only dotted quads of decimal 0..255 without leading zeros", () => {
  assert.deepEqual(ipv4Octets("127.0.0.1"), [127, 0, 0, 1]);
  assert.deepEqual(ipv4Octets("0.0.0.0"), [0, 0, 0, 0]);
  assert.deepEqual(ipv4Octets("255.255.255.255"), [255, 255, 255, 255]);
  for (
    const host of [
      "010.0.0.1", // octal to inet_aton, 10 to Number()
      "127.0.0.", // Number("") is 0
      "0x7f.0.0.1",
      "127.1",
      "127.0.0.1.",
      "1.2.3.4.5",
      "256.0.0.1",
      "1e2.0.0.1",
      " 127.0.0.1",
      "127.0.0.1 ",
      "+1.0.0.1",
      "2130706433",
      "localhost",
      "::1",
    ]
  ) assert.equal(ipv4Octets(host), null, host);
});

Deno.test("malformedIpv4() flags hosts that read as an address but are not a dotted quad", () => {
  for (const host of ["010.0.0.1", "127.0.0.", "0x7f.0.0.1", "127.1", "256.1.1.1", "2130706433"]) {
    assert.equal(malformedIpv4(host), true, host);
  }
  for (const host of ["127.0.0.1", "localhost", "redis-1", "cache.example.com.", "a1.b2", "::1"]) {
    assert.equal(malformedIpv4(host), false, host);
  }
});
