import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { validate } from "./schema.ts";
import { importTwemproxy } from "./twemproxy_import.ts";

/** The README's example nutcracker.yml shapes: a redis pool and a memcached pool. */
const FULL = `
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  redis_auth: s3cret
  redis_db: 2
  timeout: 400
  server_retry_timeout: 2000
  server_failure_limit: 3
  server_connections: 4
  client_connections: 500
  preconnect: true
  backlog: 1024
  servers:
   - 127.0.0.1:6379:1 server1
   - 127.0.0.1:6380:2 server2
beta:
  listen: 0.0.0.0:22122
  hash: murmur
  distribution: modula
  servers:
   - 10.0.0.1:11211:1
   - cache-2:11212:3
`;

function _convert(yaml: string) {
  return importTwemproxy(parseYaml(yaml));
}

Deno.test("importTwemproxy() converts every pool, key by key", () => {
  const { toml, notes, errors } = _convert(FULL);
  assert.deepEqual(errors, []);
  const clusters = (parseToml(toml) as { clusters: Record<string, unknown>[] }).clusters;
  // smol-toml's tables have a null prototype; compare plain copies.
  assert.deepEqual(clusters.map((c) => ({ ...c })), [
    {
      name: "alpha",
      listen_addr: "127.0.0.1:22121",
      cache_type: "redis",
      hash: "fnv1a_64",
      distribution: "ketama",
      hash_tag: "{}",
      servers: ["127.0.0.1:6379:1 server1", "127.0.0.1:6380:2 server2"],
      read_timeout: 400,
      dial_timeout: 400,
      ping_fail_limit: 3,
      ping_interval: 2000,
      password: "s3cret",
      backend_password: "s3cret",
      database: 2,
      node_connections: 4,
      max_clients: 500,
    },
    {
      name: "beta",
      listen_addr: "0.0.0.0:22122",
      cache_type: "memcache",
      hash: "murmur",
      distribution: "modula",
      servers: ["10.0.0.1:11211:1", "cache-2:11212:3"],
    },
  ]);
  const text = notes.join("\n");
  for (const word of ["preconnect", "backlog 1024", "auto_eject_hosts", "forever"]) {
    assert.ok(text.includes(word), `notes mention ${word}:\n${text}`);
  }
  assert.ok(notes.every((note) => /^pool "(alpha|beta)": /.test(note)), "each note names its pool");
});

Deno.test("importTwemproxy() output passes Aster's validation with nutcracker's defaults", () => {
  const { toml, errors } = _convert(FULL);
  assert.deepEqual(errors, []);
  const result = validate(parseToml(toml));
  if (!result.ok) assert.fail(result.errors.join("\n"));
  const [alpha, beta] = result.config.clusters;
  assert.equal(alpha.hashTag, "{}");
  assert.equal(beta.hash, "murmur");
  assert.equal(beta.distribution, "modula");
  assert.equal(beta.pingFailLimit, 0, "no auto_eject_hosts: no ejection");
  assert.deepEqual(beta.servers.map((s) => [s.host, s.port, s.weight]), [
    ["10.0.0.1", 11211, 1],
    ["cache-2", 11212, 3],
  ]);
});

Deno.test("importTwemproxy() fills nutcracker's defaults: fnv1a_64, ketama, eject limits", () => {
  const { toml, errors } = _convert(`
pool:
  listen: 127.0.0.1:22121
  auto_eject_hosts: true
  servers: ["127.0.0.1:6379:1"]
`);
  assert.deepEqual(errors, []);
  const [pool] = (parseToml(toml) as { clusters: Record<string, unknown>[] }).clusters;
  assert.equal(pool.hash, "fnv1a_64");
  assert.equal(pool.distribution, "ketama");
  assert.equal(pool.cache_type, "memcache", "redis: false is nutcracker's default");
  assert.equal(pool.ping_fail_limit, 2);
  assert.equal(pool.ping_interval, 30000);
});

Deno.test("importTwemproxy() keeps nutcracker's server name where Aster would derive another", () => {
  const { toml, errors } = _convert(`
v6:
  listen: "[::1]:22121"
  redis: true
  servers:
   - "::1:7000:1"
   - "[::1]:7002:1"
   - "127.0.0.1:7001:1"
`);
  assert.deepEqual(errors, []);
  const [pool] = (parseToml(toml) as { clusters: Record<string, unknown>[] }).clusters;
  // nutcracker names these "::1:7000" (Aster derives the same from host "::1") and
  // "[::1]:7002" (Aster would derive "::1:7002": the name is kept as an alias).
  assert.deepEqual(pool.servers, ["[::1]:7000:1", "[::1]:7002:1 [::1]:7002", "127.0.0.1:7001:1"]);
  assert.equal(pool.listen_addr, "[::1]:22121");
  assert.ok(validate(parseToml(toml)).ok);
});

Deno.test("importTwemproxy() leaves out pools Aster cannot serve, naming pool and reason", () => {
  const { toml, errors } = _convert(`
unix:
  listen: /tmp/nutcracker.sock 0666
  servers: ["127.0.0.1:6379:1"]
sock_server:
  listen: 127.0.0.1:22123
  servers: ["/var/run/redis.sock:1"]
bad_hash:
  listen: 127.0.0.1:22124
  hash: sha1
  servers: ["127.0.0.1:6379:1"]
zero:
  listen: 127.0.0.1:22125
  servers: ["127.0.0.1:6379:0"]
auth_memcache:
  listen: 127.0.0.1:22126
  redis_auth: pw
  servers: ["127.0.0.1:11211:1"]
good:
  listen: 127.0.0.1:22127
  servers: ["127.0.0.1:11211:1"]
`);
  assert.equal(errors.length, 5, errors.join("\n"));
  assert.match(errors[0], /^pool "unix": listens on a unix socket/);
  assert.match(errors[1], /^pool "sock_server": server \/var\/run\/redis.sock:1 is a unix socket/);
  assert.match(errors[2], /^pool "bad_hash": hash must be one of one_at_a_time, .*got "sha1"/);
  assert.match(errors[3], /^pool "zero": .*weight must be an integer/);
  assert.match(errors[4], /^pool "auth_memcache": redis_auth is only valid for a redis pool/);
  const clusters = (parseToml(toml) as { clusters: Record<string, unknown>[] }).clusters;
  assert.deepEqual(clusters.map((c) => c.name), ["good"]);
});

Deno.test("importTwemproxy() refuses pools that share a listen port, and non-maps", () => {
  const clash = _convert(`
a:
  listen: 127.0.0.1:22121
  servers: ["127.0.0.1:6379:1"]
b:
  listen: 0.0.0.0:22121
  servers: ["127.0.0.1:6380:1"]
`);
  // The first pool is converted; the one clashing with it is not, and says why.
  assert.deepEqual(
    (parseToml(clash.toml) as { clusters: { name: string }[] }).clusters.map((c) => c.name),
    ["a"],
  );
  assert.match(
    clash.errors.join("\n"),
    /^pool "b": listen_addr "0.0.0.0:22121" clashes with cluster "a".*; not converted$/,
  );
  // A listen with a weight is no "host:port" (nutcracker refuses it too).
  assert.match(
    _convert(`c:\n  listen: 127.0.0.1:22125:1\n  servers: ["127.0.0.1:6379:1"]\n`).errors[0],
    /^pool "c": listen "127.0.0.1:22125:1" is not "host:port"; not converted$/,
  );
  assert.deepEqual(
    _convert(`v6:\n  listen: "[::1]:22125"\n  servers: ["127.0.0.1:6379:1"]\n`).errors,
    [],
  );
  // server_retry_timeout 0 (retry at the next request) is no ping every millisecond.
  const retry = _convert(
    `r:\n  listen: 127.0.0.1:22126\n  auto_eject_hosts: true\n  server_retry_timeout: 0\n` +
      `  servers: ["127.0.0.1:6379:1"]\n`,
  );
  assert.match(retry.toml, /ping_interval = 100\n/);
  assert.match(retry.notes.join("\n"), /server_retry_timeout 0 becomes ping_interval 100/);
  assert.equal(importTwemproxy(null).errors.length, 1);
  assert.equal(importTwemproxy(["a"]).errors.length, 1);
});

Deno.test("importTwemproxy() checks nutcracker's booleans and numbers", () => {
  const { errors } = _convert(`
yes_bool:
  listen: 127.0.0.1:22121
  redis: yes
  servers: ["127.0.0.1:6379:1"]
neg:
  listen: 127.0.0.1:22122
  timeout: -1
  servers: ["127.0.0.1:6379:1"]
`);
  assert.match(errors[0], /^pool "yes_bool": redis must be true or false/);
  assert.match(errors[1], /^pool "neg": timeout must be a number >= 0/);
});

Deno.test("importTwemproxy() notes unknown keys and caps values above Aster's limits", () => {
  const { toml, notes, errors } = _convert(`
big:
  listen: 127.0.0.1:22121
  redis: true
  timeout: 99999999
  server_connections: 1000
  client_connections: 5000000
  listne: oops
  servers: ["127.0.0.1:6379:1"]
`);
  assert.deepEqual(errors, []);
  const [pool] = (parseToml(toml) as { clusters: Record<string, unknown>[] }).clusters;
  assert.equal(pool.read_timeout, 3_600_000);
  assert.equal(pool.node_connections, 64);
  assert.equal(pool.max_clients, 1_000_000);
  assert.match(notes.join("\n"), /unknown key "listne"/);
  assert.ok(validate(parseToml(toml)).ok);
});
