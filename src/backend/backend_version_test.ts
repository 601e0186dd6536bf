import assert from "node:assert/strict";
import { compareVersions, parseRedisVersion } from "./backend_version.ts";

const bulk = (text: string) => new TextEncoder().encode(`$${text.length}\r\n${text}\r\n`);

Deno.test("parseRedisVersion() reads redis_version from an INFO server reply", () => {
  const info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
  assert.equal(parseRedisVersion(bulk(info)), "7.0.15");
  assert.equal(parseRedisVersion(bulk("# Server\r\nredis_mode:standalone\r\n")), null);
  assert.equal(
    parseRedisVersion(new TextEncoder().encode("-NOAUTH Authentication required.\r\n")),
    null,
  );
});

Deno.test("compareVersions() orders dotted versions numerically", () => {
  assert.ok(compareVersions("6.2.14", "7.0.0") < 0);
  assert.ok(compareVersions("7.10.1", "7.2.4") > 0);
  assert.equal(compareVersions("7.0", "7.0.0"), 0);
  assert.ok(compareVersions("5.0.0", "4.0.14") > 0);
});
