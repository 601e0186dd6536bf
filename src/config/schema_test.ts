import assert from "node:assert/strict";
import { type ClusterConfig, parseServer, type ServerSpec, validate } from "./schema.ts";

/** What an unknown key's error ends with: where every key is documented. */
const KEYS_DOC = " (see docs/configuration.md#cluster-keys)";

function _cluster(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "cache-a",
    listen_addr: "127.0.0.1:9001",
    cache_type: "redis",
    servers: ["127.0.0.1:7001:1 redis-1", "127.0.0.1:7002:1 redis-2"],
    ...extra,
  };
}

function _ok(raw: unknown): ClusterConfig[] {
  const result = validate(raw);
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.join("\n")}`);
  return result.config.clusters;
}

function _errors(raw: unknown): string[] {
  const result = validate(raw);
  if (result.ok) assert.fail("expected validation errors");
  return result.errors;
}

function _only(extra: Record<string, unknown>): string[] {
  return _errors({ clusters: [_cluster(extra)] });
}

function _without(key: string): Record<string, unknown> {
  const c = _cluster();
  delete c[key];
  return c;
}

Deno.test("validate() fills every default for a minimal cluster", () => {
  const [c] = _ok({ clusters: [_cluster()] });
  assert.deepEqual(c, {
    name: "cache-a",
    listenHost: "127.0.0.1",
    listenPort: 9001,
    listenAddr: "127.0.0.1:9001",
    cacheType: "redis",
    servers: [
      { host: "127.0.0.1", port: 7001, weight: 1, alias: "redis-1", addr: "127.0.0.1:7001" },
      { host: "127.0.0.1", port: 7002, weight: 1, alias: "redis-2", addr: "127.0.0.1:7002" },
    ],
    thread: 1,
    readTimeout: 2000,
    writeTimeout: 2000,
    dialTimeout: 1000,
    fetch: 600,
    readFromSlave: false,
    pingFailLimit: 0,
    pingInterval: 10000,
    hashTag: null,
    hash: "fnv1a_64",
    distribution: "ketama",
    nodeConnections: 1,
    blockingConnections: 64,
    database: 0,
    maxValueSize: 1048576,
    maxMultigetLine: 8388608,
    maxClients: 10000,
    clientIdleTimeout: 0,
    clientOutputSoftLimit: 8 * 2 ** 20,
    clientOutputHardLimit: 256 * 2 ** 20,
    shutdownTimeout: 5000,
    drainDelay: 0,
    proxyProtocol: false,
    password: null,
    backendPassword: null,
    backendUsername: null,
    slowlogSlowerThan: 10000,
    slowlogMaxLen: 128,
    allowCommands: [],
    io: "auto",
    tlsCert: null,
    tlsKey: null,
    tlsCa: null,
    tlsListenAddr: null,
    tlsListenHost: null,
    tlsListenPort: null,
    backendTls: false,
    backendTlsCa: null,
    backendTlsCert: null,
    backendTlsKey: null,
    backendTlsServerName: null,
    tlsPem: null,
    backendTlsPem: null,
  });
});

Deno.test("validate() takes the TLS keys and refuses those that do not go together", () => {
  const [c] = _ok({
    clusters: [_cluster({
      tls_cert: "/s.crt",
      tls_key: "/s.key",
      tls_ca: "/ca.crt",
      tls_listen_addr: "127.0.0.1:9443",
      backend_tls: true,
      backend_tls_ca: "/b.crt",
      backend_tls_server_name: "redis.test",
    })],
  });
  assert.equal(c.tlsListenPort, 9443);
  assert.equal(c.tlsListenHost, "127.0.0.1");
  assert.equal(c.backendTlsServerName, "redis.test");
  const bad = validate({
    clusters: [_cluster({
      tls_key: "/s.key",
      tls_ca: "/ca.crt",
      tls_listen_addr: "127.0.0.1:9001",
      backend_tls_ca: "/b.crt",
      backend_tls_cert: "/c.crt",
    })],
  });
  assert.ok(!bad.ok);
  const text = bad.errors.join("\n");
  assert.match(text, /tls_cert and tls_key go together/);
  assert.match(text, /tls_ca needs tls_cert/);
  assert.match(text, /tls_listen_addr "127.0.0.1:9001" must differ from listen_addr/);
  assert.match(text, /backend_tls_cert and backend_tls_key go together/);
  assert.match(text, /backend_tls_ca needs backend_tls = true/);
});

Deno.test("validate() keeps every key that is set", () => {
  const [c] = _ok({
    clusters: [_cluster({
      thread: 4,
      read_timeout: 150,
      write_timeout: 250,
      dial_timeout: 50,
      fetch: 30,
      read_from_slave: true,
      ping_fail_limit: 3,
      ping_interval: 500,
      hash_tag: "{}",
      node_connections: 8,
    })],
  });
  assert.equal(c.thread, 4);
  assert.equal(c.readTimeout, 150);
  assert.equal(c.writeTimeout, 250);
  assert.equal(c.dialTimeout, 50);
  assert.equal(c.fetch, 30);
  assert.equal(c.readFromSlave, true);
  assert.equal(c.pingFailLimit, 3);
  assert.equal(c.pingInterval, 500);
  assert.equal(c.hashTag, "{}");
  assert.equal(c.nodeConnections, 8);
});

Deno.test("validate() accepts bigint integers (TOML parsed with integersAsBigInt)", () => {
  const [c] = _ok({ clusters: [_cluster({ thread: 2n, read_timeout: 300n })] });
  assert.equal(c.thread, 2);
  assert.equal(c.readTimeout, 300);
});

Deno.test("validate() accepts several clusters on distinct ports", () => {
  const clusters = _ok({
    clusters: [
      _cluster(),
      _cluster({ name: "cache-b", listen_addr: "127.0.0.1:9002" }),
      _cluster({ name: "cache-c", listen_addr: "[::1]:9001" }),
    ],
  });
  assert.deepEqual(clusters.map((c) => c.name), ["cache-a", "cache-b", "cache-c"]);
});

Deno.test("validate() accepts an IPv6 listen address in brackets", () => {
  const [c] = _ok({ clusters: [_cluster({ listen_addr: "[::1]:9001" })] });
  assert.equal(c.listenHost, "::1");
  assert.equal(c.listenPort, 9001);
  assert.equal(c.listenAddr, "[::1]:9001");
  const [w] = _ok({ clusters: [_cluster({ listen_addr: "[::]:6380" })] });
  assert.equal(w.listenHost, "::");
});

Deno.test("validate() rejects malformed listen addresses", () => {
  const cases: [unknown, RegExp][] = [
    ["127.0.0.1", /listen_addr "127.0.0.1": missing port/],
    ["127.0.0.1:0", /port must be an integer 1..65535, got "0"/],
    ["127.0.0.1:65536", /port must be an integer 1..65535, got "65536"/],
    ["127.0.0.1:abc", /port must be an integer 1..65535, got "abc"/],
    [":9001", /missing host/],
    ["::1:9001", /IPv6 addresses need brackets/],
    ["[::1:9001", /missing "\]"/],
    ["[::1]9001", /expected ":port"/],
    ["[zz]:9001", /"zz" is not an IPv6 address/],
    ["[1::2::3]:9001", /"1::2::3" is not an IPv6 address/],
    ["[:::]:9001", /":::" is not an IPv6 address/],
    ["[1:2:3:4:5:6:7:8:9]:9001", /is not an IPv6 address/],
    ["[fe80::1%eth0]:9001", /zone indexes \("%eth0"\) are not supported/],
    ["127.0.0.1:9001:1", /expected "host:port"/],
    ["bad host:9001", /invalid host "bad host"/],
    [9001, /listen_addr must be a "host:port" string, got 9001 \(a number\)/],
  ];
  for (const [value, pattern] of cases) {
    const errors = _only({ listen_addr: value });
    assert.equal(errors.length, 1, `${value}: ${errors.join("; ")}`);
    assert.match(errors[0], /^cluster "cache-a": listen_addr/);
    assert.match(errors[0], pattern);
  }
});

Deno.test("validate() requires name, listen_addr, cache_type and servers", () => {
  for (const key of ["listen_addr", "cache_type", "servers"]) {
    assert.deepEqual(
      _errors({ clusters: [_without(key)] }).map((e) => e.replace(/ \(one of .*\)$/, "")),
      [`cluster "cache-a": missing required key "${key}"`],
    );
  }
  assert.deepEqual(_errors({ clusters: [_without("name")] }), [
    `clusters[0]: missing required key "name"`,
  ]);
});

Deno.test("validate() names a cluster by index when its name is missing or bad", () => {
  const errors = _errors({
    clusters: [
      _cluster(),
      _cluster({ name: "", listen_addr: "127.0.0.1:9002", thread: 0 }),
      _cluster({ name: 7, listen_addr: "127.0.0.1:9003" }),
    ],
  });
  assert.deepEqual(errors, [
    `clusters[1]: name must be a non-empty string without control characters, got "" (a string)`,
    "clusters[1]: thread must be an integer > 0, got 0",
    "clusters[2]: name must be a non-empty string without control characters, got 7 (a number)",
  ]);
});

Deno.test("validate() accepts the four modes and rejects unknown cache types", () => {
  for (const type of ["redis", "redis_cluster", "memcache", "memcache_binary"]) {
    const servers = ["127.0.0.1:7001", "127.0.0.1:7002"];
    assert.equal(_ok({ clusters: [_cluster({ cache_type: type, servers })] })[0].cacheType, type);
  }
  assert.deepEqual(_only({ cache_type: "redsi" }), [
    `cluster "cache-a": cache_type must be one of redis, redis_cluster, memcache, memcache_binary, ` +
    `got "redsi" (did you mean "redis"?)`,
  ]);
  assert.match(_only({ cache_type: 1 })[0], /cache_type must be one of .*, got 1 \(a number\)$/);
});

Deno.test("validate() wants redis_cluster servers as plain host:port seeds", () => {
  const errors = _only({
    cache_type: "redis_cluster",
    servers: ["127.0.0.1:7000", "127.0.0.1:7001:1", "127.0.0.1:7002 seed"],
  });
  assert.deepEqual(errors, [
    `cluster "cache-a": servers[1] "127.0.0.1:7001:1": redis_cluster servers are seed nodes ` +
    `and must be plain "host:port"`,
    `cluster "cache-a": servers[2] "127.0.0.1:7002 seed": redis_cluster servers are seed ` +
    `nodes and must be plain "host:port"`,
  ]);
});

Deno.test("validate() checks integer keys: type, whole number, range", () => {
  assert.deepEqual(_only({ read_timeout: -5 }), [
    `cluster "cache-a": read_timeout must be an integer > 0, got -5`,
  ]);
  assert.deepEqual(_only({ read_timeout: 0 }), [
    `cluster "cache-a": read_timeout must be an integer > 0, got 0`,
  ]);
  assert.deepEqual(_only({ write_timeout: 3_600_001 }), [
    `cluster "cache-a": write_timeout must be at most 3600000 ms, got 3600001`,
  ]);
  assert.deepEqual(_only({ dial_timeout: "1000" }), [
    `cluster "cache-a": dial_timeout must be an integer (milliseconds), got "1000" (a string)`,
  ]);
  assert.deepEqual(_only({ ping_interval: 1.5 }), [
    `cluster "cache-a": ping_interval must be an integer (milliseconds), got 1.5 (not a whole number)`,
  ]);
  assert.deepEqual(_only({ fetch: 86_401 }), [
    `cluster "cache-a": fetch must be at most 86400 s, got 86401`,
  ]);
  assert.deepEqual(_only({ thread: 257 }), [
    `cluster "cache-a": thread must be at most 256, got 257`,
  ]);
  assert.deepEqual(_only({ thread: true }), [
    `cluster "cache-a": thread must be an integer, got true (a boolean)`,
  ]);
  assert.deepEqual(_only({ ping_fail_limit: -1 }), [
    `cluster "cache-a": ping_fail_limit must be an integer >= 0, got -1`,
  ]);
  assert.deepEqual(_only({ node_connections: 65 }), [
    `cluster "cache-a": node_connections must be at most 64, got 65`,
  ]);
  assert.deepEqual(_only({ node_connections: 0 }), [
    `cluster "cache-a": node_connections must be an integer > 0, got 0`,
  ]);
  assert.deepEqual(_only({ thread: NaN }), [
    `cluster "cache-a": thread must be an integer, got NaN (a number)`,
  ]);
  assert.deepEqual(_only({ thread: 10n ** 20n }), [
    `cluster "cache-a": thread must be at most 256, got 100000000000000000000`,
  ]);
  assert.equal(_ok({ clusters: [_cluster({ ping_fail_limit: 0 })] })[0].pingFailLimit, 0);
});

Deno.test("validate() checks proxy_protocol and drain_delay", () => {
  const [c] = _ok({ clusters: [_cluster({ proxy_protocol: true, drain_delay: 1500 })] });
  assert.equal(c.proxyProtocol, true);
  assert.equal(c.drainDelay, 1500);
  assert.deepEqual(_only({ proxy_protocol: "v2" }), [
    `cluster "cache-a": proxy_protocol must be true or false, got "v2" (a string)`,
  ]);
  assert.deepEqual(_only({ drain_delay: -1 }), [
    `cluster "cache-a": drain_delay must be an integer >= 0, got -1`,
  ]);
});

Deno.test("validate() checks read_from_slave and hash_tag", () => {
  assert.deepEqual(_only({ read_from_slave: "yes" }), [
    `cluster "cache-a": read_from_slave must be true or false, got "yes" (a string)`,
  ]);
  for (const tag of ["{", "{}}", "", "é}", 12]) {
    const errors = _only({ hash_tag: tag });
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^cluster "cache-a": hash_tag must be exactly two printable ASCII/);
  }
  assert.equal(_ok({ clusters: [_cluster({ hash_tag: "$$" })] })[0].hashTag, "$$");
  assert.match(
    _only({ cache_type: "redis_cluster", servers: ["127.0.0.1:7000"], hash_tag: "$$" })[0],
    /hash_tag "\$\$" cannot be used with redis_cluster/,
  );
});

Deno.test("validate() reports unknown keys with the closest known key", () => {
  assert.deepEqual(_only({ read_timout: 100 }), [
    `cluster "cache-a": unknown key "read_timout" (did you mean "read_timeout"?)${KEYS_DOC}`,
  ]);
  assert.deepEqual(_only({ readTimeout: 100 }), [
    `cluster "cache-a": unknown key "readTimeout" (did you mean "read_timeout"?)${KEYS_DOC}`,
  ]);
  assert.deepEqual(_only({ listen_adr: "x" }), [
    `cluster "cache-a": unknown key "listen_adr" (did you mean "listen_addr"?)${KEYS_DOC}`,
  ]);
  assert.deepEqual(_only({ threads: 2 }), [
    `cluster "cache-a": unknown key "threads" (did you mean "thread"?)${KEYS_DOC}`,
  ]);
  // A top-level key written after [[clusters]] lands in that table: say where it belongs.
  assert.deepEqual(_only({ metrics_addr: "127.0.0.1:9100" }), [
    `cluster "cache-a": metrics_addr is a top-level key: put it above the first [[clusters]]${KEYS_DOC}`,
  ]);
  const far = _only({ colour: "blue" });
  assert.equal(far.length, 1);
  assert.match(far[0], /^cluster "cache-a": unknown key "colour" \(known keys: name, listen_addr,/);
});

Deno.test("validate() rejects unknown top-level keys with a suggestion", () => {
  assert.deepEqual(_errors({ cluster: [_cluster()] }), [
    `unknown top-level key "cluster" (did you mean "clusters"?)${KEYS_DOC}`,
    "missing [[clusters]]: at least one cluster is required",
  ]);
  assert.deepEqual(_errors({ clusters: [_cluster()], log_level: "info" }), [
    `unknown top-level key "log_level" (top-level keys: clusters, metrics_addr)${KEYS_DOC}`,
  ]);
});

Deno.test("validate() rejects a document without clusters", () => {
  assert.deepEqual(_errors({}), ["missing [[clusters]]: at least one cluster is required"]);
  assert.deepEqual(_errors({ clusters: [] }), [
    "clusters is empty: at least one [[clusters]] table is required",
  ]);
  assert.deepEqual(_errors({ clusters: { name: "a" } }), [
    "clusters must be an array of tables ([[clusters]]), got a table",
  ]);
  assert.deepEqual(_errors({ clusters: [_cluster(), "x"] }), [
    `clusters[1] must be a table ([[clusters]]), got "x" (a string)`,
  ]);
  assert.deepEqual(_errors(null), ["config must be a table with [[clusters]], got null"]);
  assert.deepEqual(_errors([1]), [
    "config must be a table with [[clusters]], got [1] (an array)",
  ]);
});

Deno.test("validate() collects every error instead of stopping at the first", () => {
  const errors = _errors({
    clusters: [
      _cluster({ read_timeout: -5, thread: "4", hash_tag: "{", read_timout: 1 }),
      { listen_addr: "0.0.0.0:9001", cache_type: "memcache", servers: [] },
      _cluster({ listen_addr: "127.0.0.1:9002", servers: "127.0.0.1:7001" }),
    ],
  });
  assert.deepEqual(errors, [
    `cluster "cache-a": unknown key "read_timout" (did you mean "read_timeout"?)${KEYS_DOC}`,
    `cluster "cache-a": thread must be an integer, got "4" (a string)`,
    `cluster "cache-a": read_timeout must be an integer > 0, got -5`,
    `cluster "cache-a": hash_tag must be exactly two printable ASCII characters, e.g. "{}", ` +
    `got "{" (a string)`,
    `clusters[1]: missing required key "name"`,
    "clusters[1]: servers must list at least one backend, got []",
    `cluster "cache-a": servers must be an array of strings, got "127.0.0.1:7001" (a string)`,
    `cluster "cache-a": name is used by more than one cluster (clusters[0], clusters[2])`,
    `clusters[1]: listen_addr "0.0.0.0:9001" clashes with cluster "cache-a" ` +
    `(listen_addr "127.0.0.1:9001"): same port 9001`,
  ]);
});

Deno.test("validate() rejects duplicate cluster names", () => {
  const errors = _errors({
    clusters: [_cluster(), _cluster({ listen_addr: "127.0.0.1:9002" })],
  });
  assert.deepEqual(errors, [
    `cluster "cache-a": name is used by more than one cluster (clusters[0], clusters[1])`,
  ]);
});

Deno.test("validate() rejects listen addresses that share a port", () => {
  const clash = (a: string, b: string) =>
    validate({
      clusters: [_cluster({ listen_addr: a }), _cluster({ name: "cache-b", listen_addr: b })],
    });
  const same = clash("127.0.0.1:9001", "127.0.0.1:9001");
  assert.equal(same.ok, false);
  assert.deepEqual(!same.ok && same.errors, [
    `cluster "cache-b": listen_addr "127.0.0.1:9001" clashes with cluster "cache-a" ` +
    `(listen_addr "127.0.0.1:9001"): same port 9001`,
  ]);
  assert.equal(clash("0.0.0.0:9001", "127.0.0.1:9001").ok, false);
  assert.equal(clash("127.0.0.1:9001", "0.0.0.0:9001").ok, false);
  assert.equal(clash("[::]:9001", "10.0.0.1:9001").ok, false);
  assert.equal(clash("localhost:9001", "127.0.0.1:9001").ok, false);
  assert.equal(clash("[::1]:9001", "[::1]:9001").ok, false);
  assert.equal(clash("127.0.0.1:9001", "127.0.0.2:9001").ok, true);
  assert.equal(clash("127.0.0.1:9001", "[::1]:9001").ok, true);
  assert.equal(clash("0.0.0.0:9001", "0.0.0.0:9002").ok, true);
});

Deno.test("validate() rejects duplicate server addresses and aliases in a cluster", () => {
  assert.deepEqual(
    _only({ servers: ["127.0.0.1:7001:1 a", "127.0.0.1:7001:2 b", "127.0.0.1:7003 a"] }),
    [
      `cluster "cache-a": servers[1] "127.0.0.1:7001:2 b": duplicate address 127.0.0.1:7001 ` +
      `(already servers[0])`,
      `cluster "cache-a": servers[2] "127.0.0.1:7003 a": duplicate alias "a" (already servers[0])`,
    ],
  );
  // An alias that is another server's address (its name when it has no alias), either way.
  assert.deepEqual(
    _only({ servers: ["127.0.0.1:7001:1", "127.0.0.1:7002:1 127.0.0.1:7001"] }),
    [
      `cluster "cache-a": servers[1] "127.0.0.1:7002:1 127.0.0.1:7001": duplicate name ` +
      `"127.0.0.1:7001" (servers[0]'s address is that name too; a name places keys on the ring)`,
    ],
  );
  assert.equal(
    _only({ servers: ["127.0.0.1:7002:1 127.0.0.1:7001", "127.0.0.1:7001:1"] }).length,
    1,
  );
  // On port 11211 the ring names a server by its host alone, as nutcracker does.
  assert.equal(_only({ servers: ["10.0.0.1:11211:1", "10.0.0.2:11211:1 10.0.0.1"] }).length, 1);
  _ok({
    clusters: [_cluster({ servers: ["10.0.0.1:11211:1", "10.0.0.2:11211:1 10.0.0.1:11211"] })],
  });
  // The same address in two clusters is fine.
  _ok({
    clusters: [_cluster(), _cluster({ name: "cache-b", listen_addr: "127.0.0.1:9002" })],
  });
});

Deno.test("validate() reports every bad server entry with its index", () => {
  const errors = _only({
    servers: ["127.0.0.1:7001", 5, "127.0.0.1", "127.0.0.1:7002:0", "h:7003:1 a b", ""],
  });
  assert.deepEqual(errors, [
    `cluster "cache-a": servers[1] must be a string like "host:port:weight alias", ` +
    `got 5 (a number)`,
    `cluster "cache-a": servers[2] "127.0.0.1": missing port (expected "host:port")`,
    `cluster "cache-a": servers[3] "127.0.0.1:7002:0": weight must be an integer 1..1000000, ` +
    `got "0"`,
    `cluster "cache-a": servers[4] "h:7003:1 a b": expected "host:port:weight alias"; ` +
    `the alias must not contain spaces`,
    `cluster "cache-a": servers[5] "": empty server entry (expected "host:port:weight alias")`,
  ]);
});

Deno.test("parseServer() reads the three entry forms", () => {
  const full: ServerSpec = {
    host: "127.0.0.1",
    port: 7001,
    weight: 10,
    alias: "redis-1",
    addr: "127.0.0.1:7001",
  };
  assert.deepEqual(parseServer("127.0.0.1:7001:10 redis-1"), full);
  assert.deepEqual(parseServer("127.0.0.1:7001:10"), { ...full, alias: null });
  assert.deepEqual(parseServer("127.0.0.1:7001"), { ...full, weight: 1, alias: null });
  assert.deepEqual(parseServer("  127.0.0.1:7001:10   redis-1 "), full);
  assert.deepEqual(parseServer("cache.internal:6379"), {
    host: "cache.internal",
    port: 6379,
    weight: 1,
    alias: null,
    addr: "cache.internal:6379",
  });
});

Deno.test("parseServer() accepts IPv6 hosts in brackets", () => {
  assert.deepEqual(parseServer("[::1]:7001:2 v6"), {
    host: "::1",
    port: 7001,
    weight: 2,
    alias: "v6",
    addr: "[::1]:7001",
  });
  assert.deepEqual(parseServer("[fe80::1]:7001"), {
    host: "fe80::1",
    port: 7001,
    weight: 1,
    alias: null,
    addr: "[fe80::1]:7001",
  });
});

Deno.test("parseServer() returns an error text naming the entry", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", `server "127.0.0.1": missing port (expected "host:port")`],
    ["127.0.0.1:x", `server "127.0.0.1:x": port must be an integer 1..65535, got "x"`],
    [
      "127.0.0.1:7001:0",
      `server "127.0.0.1:7001:0": weight must be an integer 1..1000000, got "0"`,
    ],
    [
      "127.0.0.1:7001:-1",
      `server "127.0.0.1:7001:-1": weight must be an integer 1..1000000, got "-1"`,
    ],
    [
      "127.0.0.1:7001:1.5",
      `server "127.0.0.1:7001:1.5": weight must be an integer 1..1000000, got "1.5"`,
    ],
    ["::1:7001", `server "::1:7001": IPv6 addresses need brackets, e.g. "[::1]:7001"`],
    ["[1::2::3]:7001:1", `server "[1::2::3]:7001:1": "1::2::3" is not an IPv6 address`],
    [
      "redis://127.0.0.1:7001",
      `server "redis://127.0.0.1:7001": a URL is no address here: write "host:port" (no scheme, no credentials)`,
    ],
    [
      "/tmp/redis.sock",
      `server "/tmp/redis.sock": unix sockets are not supported: write "host:port"`,
    ],
    [
      "h:1:2:3",
      `server "h:1:2:3": expected "host:port", "host:port:weight" or "host:port:weight alias"`,
    ],
    [
      "a:1:1 b c",
      `server "a:1:1 b c": expected "host:port:weight alias"; the alias must not contain spaces`,
    ],
  ];
  for (const [entry, message] of cases) assert.equal(parseServer(entry), message);
});

Deno.test("parseServer() refuses aliases too long for twemproxy-compatible hashing", () => {
  assert.equal(typeof parseServer(`127.0.0.1:7000:1 ${"a".repeat(64)}`), "object");
  assert.match(String(parseServer(`127.0.0.1:7000:1 ${"a".repeat(65)}`)), /at most 64 bytes/);
});

Deno.test("validate() wants the hard output limit at least the soft one", () => {
  assert.deepEqual(
    _only({ client_output_soft_limit: 1_000_000, client_output_hard_limit: 900_000 }),
    [
      `cluster "cache-a": client_output_hard_limit (900000) must be at least ` +
      `client_output_soft_limit (1000000)`,
    ],
  );
});

Deno.test("validate() reads metrics_addr and the password keys without echoing secrets", () => {
  const ok = validate({
    metrics_addr: "127.0.0.1:9100",
    clusters: [_cluster({ password: "s3cret", backend_password: "b", backend_username: "u" })],
  });
  assert.ok(ok.ok);
  assert.deepEqual(ok.config.metricsAddr, {
    host: "127.0.0.1",
    port: 9100,
    addr: "127.0.0.1:9100",
  });
  assert.equal(ok.config.clusters[0].password, "s3cret");
  const bad = validate({
    metrics_addr: "nowhere",
    clusters: [
      _cluster({ password: "bad\nsecret", backend_username: "u" }),
      _cluster({
        name: "mc",
        listen_addr: "127.0.0.1:9002",
        cache_type: "memcache",
        password: "x",
      }),
    ],
  });
  assert.ok(!bad.ok);
  assert.equal(bad.errors.length, 4);
  assert.ok(bad.errors.every((e) => !e.includes("secret")), bad.errors.join("\n"));
  assert.match(bad.errors.join("\n"), /backend_username needs backend_password/);
  assert.match(bad.errors.join("\n"), /memcached has no AUTH/);
  assert.match(bad.errors.join("\n"), /^metrics_addr "nowhere"/m);
});

Deno.test("validate() accepts only broadcastable commands in allow_commands", () => {
  assert.deepEqual(
    _ok({ clusters: [_cluster({ allow_commands: ["KEYS", "flushdb", "keys"] })] })[0]
      .allowCommands,
    ["keys", "flushdb"],
  );
  const errors = _only({ allow_commands: ["shutdown", "debug", 3] });
  assert.equal(errors.length, 3);
  assert.match(errors[0], /allow_commands: "shutdown" cannot be allowed \(allowed: keys, /);
});

Deno.test("validate() takes io = auto, deno or ffi (auto by default) and names the choices", () => {
  assert.equal(_ok({ clusters: [_cluster({})] })[0].io, "auto");
  assert.equal(_ok({ clusters: [_cluster({ io: "auto" })] })[0].io, "auto");
  assert.equal(_ok({ clusters: [_cluster({ io: "ffi" })] })[0].io, "ffi");
  assert.equal(_ok({ clusters: [_cluster({ io: "deno" })] })[0].io, "deno");
  const errors = _only({ io: "epoll" });
  assert.deepEqual(errors.length, 1);
  assert.match(errors[0], /io must be one of auto, deno, ffi, got "epoll" \(a string\)/);
  assert.match(_only({ io: true })[0], /io must be one of auto, deno, ffi, got true \(a boolean\)/);
});

Deno.test("validate() takes max_multiget_line of 2048 bytes .. 1 GiB", () => {
  const [c] = _ok({ clusters: [_cluster({ max_multiget_line: 65536 })] });
  assert.equal(c.maxMultigetLine, 65536);
  assert.equal(_ok({ clusters: [_cluster({ max_multiget_line: 2048 })] })[0].maxMultigetLine, 2048);
  for (const bad of [2047, 2 ** 30 + 1, "8m", 1.5]) {
    const errors = _only({ max_multiget_line: bad });
    assert.equal(errors.length, 1, String(bad));
    assert.match(errors[0], /max_multiget_line/);
  }
});

Deno.test("validate() takes every twemproxy hash and distribution in the ring modes", () => {
  const hashes = [
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
  ];
  for (const cacheType of ["redis", "memcache", "memcache_binary"]) {
    for (const hash of hashes) {
      for (const distribution of ["ketama", "modula", "random"]) {
        const [c] = _ok({ clusters: [_cluster({ cache_type: cacheType, hash, distribution })] });
        assert.equal(c.hash, hash);
        assert.equal(c.distribution, distribution);
      }
    }
  }
});

Deno.test("validate() names the accepted hash and distribution values", () => {
  const [hash] = _only({ hash: "fnv1a-64" });
  assert.match(hash, /cluster "cache-a": hash must be one of one_at_a_time, md5, .*, jenkins/);
  assert.match(hash, /got "fnv1a-64" \(did you mean "fnv1a_64"\?\)/);
  const [distribution] = _only({ distribution: "consistent" });
  assert.match(distribution, /distribution must be one of ketama, modula, random/);
  assert.match(_only({ hash: 3 })[0], /hash must be one of .*, got 3 \(a number\)/);
});

Deno.test("validate() refuses hash and distribution for redis_cluster", () => {
  const cluster = { cache_type: "redis_cluster", servers: ["127.0.0.1:7001"] };
  for (const extra of [{ hash: "fnv1a_64" }, { distribution: "ketama" }]) {
    const [error] = _only({ ...cluster, ...extra });
    const key = Object.keys(extra)[0];
    assert.match(error, new RegExp(`${key} cannot be set for redis_cluster.*CRC16 hash slots`));
  }
});

Deno.test("validate() refuses IPv4 literals that are not four decimal numbers 0..255", () => {
  // Raw sockets and Deno's resolver would read these differently (or not at all).
  for (const host of ["010.0.0.1", "127.0.0.", "0x7f.0.0.1", "127.1", "256.0.0.1", "2130706433"]) {
    const message = new RegExp(
      `"${host.replaceAll(".", "\\.")}" is not an IPv4 address: write four decimal numbers`,
    );
    const listen = _only({ listen_addr: `${host}:9001` });
    assert.equal(listen.length, 1, `${host}: ${listen.join("; ")}`);
    assert.match(listen[0], /^cluster "cache-a": listen_addr/);
    assert.match(listen[0], message);
    const server = _only({ servers: [`${host}:7001:1 a`] });
    assert.equal(server.length, 1, `${host}: ${server.join("; ")}`);
    assert.match(server[0], /servers\[0\]/);
    assert.match(server[0], message);
    assert.match(String(parseServer(`${host}:7001`)), message);
  }
  // Host names, dotted quads and IPv6 still pass.
  for (const host of ["127.0.0.1", "10.1.2.3", "localhost", "redis-1", "cache.example.com"]) {
    assert.equal(typeof parseServer(`${host}:7001:1`), "object", host);
    assert.equal(_ok({ clusters: [_cluster({ listen_addr: `${host}:9001` })] }).length, 1, host);
  }
});

Deno.test("validate() refuses a tls_listen_addr on another cluster's port", () => {
  const tls = { tls_cert: "/s.crt", tls_key: "/s.key", tls_listen_addr: "127.0.0.1:9100" };
  const result = validate({
    clusters: [
      _cluster({ name: "a", ...tls }),
      _cluster({ name: "b", listen_addr: "127.0.0.1:9100" }),
    ],
  });
  assert.ok(!result.ok);
  assert.ok(result.errors.some((e) => /"a": tls_listen_addr port 9100 clashes with/.test(e)));
});

Deno.test("validate() refuses proxy_protocol with a TLS listener", () => {
  const result = validate({
    clusters: [_cluster({ tls_cert: "/s.crt", tls_key: "/s.key", proxy_protocol: true })],
  });
  assert.ok(!result.ok);
  assert.ok(result.errors.some((e) => /proxy_protocol cannot be used with tls_cert/.test(e)));
});

Deno.test("validate() takes database in the redis mode only", () => {
  assert.equal(_ok({ clusters: [_cluster({ database: 5 })] })[0].database, 5);
  assert.equal(_ok({ clusters: [_cluster()] })[0].database, 0);
  assert.deepEqual(
    _only({ cache_type: "redis_cluster", servers: ["127.0.0.1:7000"], database: 1 }),
    [
      `cluster "cache-a": database cannot be set for redis_cluster: a Redis Cluster serves database 0 only`,
    ],
  );
  assert.deepEqual(_only({ cache_type: "memcache", database: 1 }), [
    `cluster "cache-a": database is for the redis mode; memcached has no databases`,
  ]);
  assert.match(_only({ database: -1 })[0], /database/);
});

Deno.test("validate() refuses a server at the cluster's own address and a metrics_addr on a listen port", () => {
  for (const listen of ["127.0.0.1:9001", "0.0.0.0:9001"]) {
    assert.deepEqual(_only({ listen_addr: listen, servers: ["127.0.0.1:9001:1"] }), [
      `cluster "cache-a": server 127.0.0.1:9001 is this cluster's own listen address: requests would loop`,
    ]);
  }
  for (
    const [listen, server] of [["[::]:9001", "[::1]:9001:1"], [
      "localhost:9001",
      "127.0.0.1:9001:1",
    ]]
  ) {
    assert.equal(
      _only({ listen_addr: listen, servers: [server] }).length,
      1,
      `${listen} ${server}`,
    );
  }
  // IPv6 loopback does not reach a listener on 0.0.0.0 (IPv4 only).
  _ok({ clusters: [_cluster({ listen_addr: "0.0.0.0:9001", servers: ["[::1]:9001:1"] })] });
  // Another port, or another host on a bound address: a backend like any.
  _ok({ clusters: [_cluster({ servers: ["127.0.0.1:9002:1"] })] });
  _ok({ clusters: [_cluster({ listen_addr: "127.0.0.2:9001", servers: ["127.0.0.1:9001:1"] })] });
  assert.deepEqual(_errors({ clusters: [_cluster()], metrics_addr: "0.0.0.0:9001" }), [
    `metrics_addr "0.0.0.0:9001" clashes with cluster "cache-a"'s listen_addr: same port 9001`,
  ]);
  _ok({ clusters: [_cluster()], metrics_addr: "127.0.0.1:9100" });
});

Deno.test("validate() warns of a key set, to other than its default, in a mode it does nothing in", () => {
  const warnings = (extra: Record<string, unknown>) => {
    const result = validate({ clusters: [_cluster(extra)] });
    assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
    return result.config.warnings;
  };
  const cluster = { cache_type: "redis_cluster", servers: ["127.0.0.1:7001"] };
  // (ping_interval also paces the backend version probe, in every mode: no warning.)
  assert.deepEqual(warnings({ ...cluster, ping_fail_limit: 3, ping_interval: 500 }), [
    `cluster "cache-a": ping_fail_limit is for the ring modes; it does nothing in redis_cluster mode`,
  ]);
  assert.deepEqual(warnings({ read_from_slave: true, fetch: 60, max_value_size: 4096 }), [
    `cluster "cache-a": fetch is for redis_cluster; it does nothing in redis mode`,
    `cluster "cache-a": read_from_slave is for redis_cluster; it does nothing in redis mode`,
    `cluster "cache-a": max_value_size is for the memcache modes; it does nothing in redis mode`,
  ]);
  // At their defaults (as default.toml lists every key), or in their own mode: nothing.
  assert.deepEqual(warnings({ ...cluster, ping_fail_limit: 0, fetch: 60 }), []);
  assert.deepEqual(warnings({ read_from_slave: false, ping_fail_limit: 3 }), []);
});
