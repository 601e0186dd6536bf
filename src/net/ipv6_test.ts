import assert from "node:assert/strict";
import { isIpv6 } from "./ipv6.ts";

Deno.test("isIpv6 takes RFC 4291 literals and nothing else", () => {
  for (
    const good of [
      "::",
      "::1",
      "1::",
      "fe80::1",
      "2001:db8::8a2e:370:7334",
      "1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6::8",
      "::ffff:127.0.0.1",
      "64:ff9b::192.0.2.33",
      "1:2:3:4:5:6:1.2.3.4",
      "ABCD::ef",
    ]
  ) assert.ok(isIpv6(good), good);
  for (
    const bad of [
      "",
      ":",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7::8",
      "12345::1",
      "g::1",
      ":1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:",
      "::1.2.3",
      "::010.0.0.1",
      "1.2.3.4",
      "fe80::1%eth0",
      "1:2:3:4:5:6:7:1.2.3.4",
    ]
  ) assert.ok(!isIpv6(bad), bad);
});
