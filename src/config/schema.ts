/**
 * Configuration types, defaults and validation. Pure: no I/O, no `Deno.*`.
 *
 * `validate()` takes the parsed TOML document (`[[clusters]]` tables with snake_case keys) and
 * returns either a fully defaulted {@link Config} or every problem it found, each naming the
 * cluster, the key and the bad value.
 */

import { DISTRIBUTION_NAMES, type DistributionName } from "../hash/distribution.ts";
import { KEY_HASH_NAMES, type KeyHashName } from "../hash/key_hashes.ts";
import { malformedIpv4 } from "../net/ipv4.ts";

/** The four proxy modes: which wire protocol clients speak and how keys are routed. */
export type CacheType = "redis" | "redis_cluster" | "memcache" | "memcache_binary";

/**
 * What a cluster's workers do socket I/O with: Deno's socket ops, raw sockets via FFI, or
 * FFI where the process may use it and Deno's ops elsewhere ("auto").
 */
export type IoMode = "auto" | "deno" | "ffi";

/** Longest alias: twemproxy's ketama hashes "alias-N" out of an 86-byte buffer. */
const MAX_ALIAS_BYTES = 64;

/** One backend from a `servers` entry (`"host:port:weight alias"`). */
export interface ServerSpec {
  /** Host name or IP address, without brackets for IPv6 (ready for `Deno.connect`). */
  host: string;
  /** TCP port, 1..65535. */
  port: number;
  /**
   * Ketama weight, an integer >= 1.
   * @default 1
   */
  weight: number;
  /**
   * Node alias (hashed instead of the address when set).
   * @default null
   */
  alias: string | null;
  /** "host:port" (IPv6 hosts in brackets: "[::1]:7001"). */
  addr: string;
}

/** One `[[clusters]]` table: one front-end listener and its backends. */
export interface ClusterConfig {
  /** Unique cluster name (logs, metrics). Required. */
  name: string;
  /** Host part of `listen_addr`, without brackets for IPv6 (ready for `Deno.listen`). */
  listenHost: string;
  /** Port part of `listen_addr`, 1..65535. */
  listenPort: number;
  /** `listen_addr` as written. Required. */
  listenAddr: string;
  /** Proxy mode (`cache_type`). Required. */
  cacheType: CacheType;
  /** Backends (`servers`); for `redis_cluster`, the seed nodes. Required, non-empty. */
  servers: ServerSpec[];
  /**
   * Worker threads (`thread`), 1..256.
   * @default 1
   */
  thread: number;
  /**
   * Backend read timeout in milliseconds (`read_timeout`).
   * @default 2000
   */
  readTimeout: number;
  /**
   * Backend write timeout in milliseconds (`write_timeout`).
   * @default 2000
   */
  writeTimeout: number;
  /**
   * Backend connect timeout in milliseconds (`dial_timeout`).
   * @default 1000
   */
  dialTimeout: number;
  /**
   * Cluster topology refresh interval in seconds (`fetch`, redis_cluster only).
   * @default 600
   */
  fetch: number;
  /**
   * Send read-only commands to replicas (`read_from_slave`, redis_cluster only).
   * @default false
   */
  readFromSlave: boolean;
  /**
   * Failed pings before a node is ejected from the ring; 0 turns ejection off
   * (`ping_fail_limit`, ring modes only).
   * @default 0
   */
  pingFailLimit: number;
  /**
   * Interval between health pings in milliseconds (`ping_interval`).
   * @default 10000
   */
  pingInterval: number;
  /**
   * Two characters delimiting the hashed part of a key, e.g. "{}" (`hash_tag`); null hashes
   * the whole key.
   * @default null
   */
  hashTag: string | null;
  /**
   * Key hash of the ring modes (`hash`), any of twemproxy 0.5's: one_at_a_time, md5, crc16,
   * crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins. Not for
   * redis_cluster (CRC16 slots).
   * @default "fnv1a_64"
   */
  hash: KeyHashName;
  /**
   * How the ring modes map a key hash to a server (`distribution`), as twemproxy 0.5 does:
   * ketama (consistent hashing), modula (hash modulo the total weight) or random (any live
   * server per request; for caches of identical data). Not for redis_cluster.
   * @default "ketama"
   */
  distribution: DistributionName;
  /**
   * Backend connections per node per worker (`node_connections`), 1..64.
   * @default 1
   */
  nodeConnections: number;
  /**
   * Largest value a memcache client may store, bytes (`max_value_size`), 1 KiB..1 GiB;
   * larger ones get `SERVER_ERROR object too large for cache`.
   * @default 1048576
   */
  maxValueSize: number;
  /**
   * Longest get/gets/gat/gats command line a memcache client may send, bytes
   * (`max_multiget_line`), 2048..1 GiB; other lines stay at memcached's 2048.
   * @default 8388608
   */
  maxMultigetLine: number;
  /**
   * Most clients connected at once (`max_clients`), shared evenly by the workers; a client
   * past it gets an error reply and is closed.
   * @default 10000
   */
  maxClients: number;
  /**
   * Seconds a client may stay idle (nothing sent, no reply owed) before it is closed
   * (`client_idle_timeout`); 0 never closes idle clients.
   * @default 0
   */
  clientIdleTimeout: number;
  /**
   * Bytes of replies owed to one client above which Aster stops reading its requests until
   * it reads (`client_output_soft_limit`).
   * @default 8388608
   */
  clientOutputSoftLimit: number;
  /**
   * Bytes of replies owed to one client above which it is closed
   * (`client_output_hard_limit`); at least the soft limit.
   * @default 268435456
   */
  clientOutputHardLimit: number;
  /**
   * On SIGTERM/SIGINT, how long requests in flight may take to finish before the proxy
   * exits anyway, ms (`shutdown_timeout`).
   * @default 5000
   */
  shutdownTimeout: number;
  /**
   * On SIGTERM/SIGINT, how long `/healthz` answers 503 "draining" while the listener still
   * accepts, before the graceful stop begins, ms (`drain_delay`): time for a load balancer's
   * checks to see it and send new clients elsewhere.
   * @default 0
   */
  drainDelay: number;
  /**
   * Clients start with a PROXY protocol v1 or v2 header (HAProxy's `send-proxy`), which
   * gives their real address (`proxy_protocol`); a client without a valid one is closed.
   * @default false
   */
  proxyProtocol: boolean;
  /**
   * Password clients must send with AUTH before other commands (`password`); null means
   * no front-end authentication. Redis modes only.
   * @default null
   */
  password: string | null;
  /**
   * Password Aster sends (AUTH) on every backend connection it opens (`backend_password`).
   * Redis modes only.
   * @default null
   */
  backendPassword: string | null;
  /**
   * ACL user name sent with `backend_password` (`backend_username`); null sends AUTH with
   * the password alone.
   * @default null
   */
  backendUsername: string | null;
  /**
   * Requests slower than this many microseconds are logged in SLOWLOG
   * (`slowlog_slower_than`); 0 logs every request, -1 none.
   * @default 10000
   */
  slowlogSlowerThan: number;
  /**
   * Entries SLOWLOG keeps per worker (`slowlog_max_len`).
   * @default 128
   */
  slowlogMaxLen: number;
  /**
   * Server-wide Redis commands an operator allows (`allow_commands`), sent to every backend
   * (every master in a cluster) and merged: KEYS, DBSIZE, FLUSHALL, FLUSHDB, SCRIPT, CONFIG,
   * SAVE, BGSAVE, BGREWRITEAOF, and "function" for FUNCTION FLUSH (its other subcommands
   * need no allowing). Lowercase names. Others stay refused.
   * @default []
   */
  allowCommands: string[];
  /**
   * Socket I/O of this cluster's workers (`io`): "ffi" (raw non-blocking sockets on one
   * epoll loop per worker, called through FFI: less CPU per request; needs `--allow-ffi`,
   * Linux with glibc; IPv4 literals, other hosts fall back to Deno's sockets), "deno"
   * (Deno's socket ops, inside Deno's sandbox), or "auto": "ffi" when the process may use
   * it (Linux, `--allow-ffi`, libc loads), else "deno".
   * @default "auto"
   */
  io: IoMode;
  /**
   * Server certificate chain, a PEM file (`tls_cert`): with `tls_key`, clients connect over
   * TLS (on `tls_listen_addr` when set, else on `listen_addr`).
   * @default null
   */
  tlsCert: string | null;
  /**
   * Private key of `tls_cert`, a PEM file (`tls_key`).
   * @default null
   */
  tlsKey: string | null;
  /**
   * CA certificates, a PEM file (`tls_ca`): when set, TLS clients must present a
   * certificate it signed (mutual TLS).
   * @default null
   */
  tlsCa: string | null;
  /**
   * Where the TLS listener is (`tls_listen_addr`); `listen_addr` then stays plain. Null:
   * `listen_addr` itself is TLS when `tls_cert` is set.
   * @default null
   */
  tlsListenAddr: string | null;
  /** Host part of `tls_listen_addr`, null when unset. */
  tlsListenHost: string | null;
  /** Port part of `tls_listen_addr`, null when unset. */
  tlsListenPort: number | null;
  /**
   * Connect to every backend over TLS (`backend_tls`), verifying its certificate.
   * @default false
   */
  backendTls: boolean;
  /**
   * CA certificates that sign the backends' certificates, a PEM file (`backend_tls_ca`);
   * null trusts the system's roots.
   * @default null
   */
  backendTlsCa: string | null;
  /**
   * Client certificate Aster presents to backends, a PEM file (`backend_tls_cert`).
   * @default null
   */
  backendTlsCert: string | null;
  /**
   * Private key of `backend_tls_cert`, a PEM file (`backend_tls_key`).
   * @default null
   */
  backendTlsKey: string | null;
  /**
   * Name sent as SNI and checked against the backends' certificates
   * (`backend_tls_server_name`); null uses each backend's host.
   * @default null
   */
  backendTlsServerName: string | null;
  /** The front end's PEM texts, read by `loadConfig`; null without TLS or before loading. */
  tlsPem: TlsPem | null;
  /** The back end's PEM texts, read by `loadConfig`; null without TLS or before loading. */
  backendTlsPem: TlsPem | null;
}

/** PEM texts of one side's TLS (the files the config names, read). */
export interface TlsPem {
  /** Certificate chain (the server's, or the client certificate), or null. */
  cert: string | null;
  /** Its private key, or null. */
  key: string | null;
  /** CA certificates to verify the peer with, or null. */
  ca: string | null;
}

/** Commands `allow_commands` may name: the ones that make sense on every backend at once. */
export const BROADCAST_COMMANDS: readonly string[] = [
  "keys",
  "dbsize",
  "flushall",
  "flushdb",
  "script",
  "function",
  "config",
  "save",
  "bgsave",
  "bgrewriteaof",
];

/** A validated configuration: at least one cluster. */
export interface Config {
  /** The `[[clusters]]` tables, in file order. */
  clusters: ClusterConfig[];
  /**
   * Where the Prometheus `/metrics` and `/healthz` endpoint listens (`metrics_addr`,
   * top level); null serves none (the `-m PORT` flag can still turn it on).
   * @default null
   */
  metricsAddr: { host: string; port: number; addr: string } | null;
}

/** Outcome of {@link validate}: the defaulted config, or every error found. */
export type ValidationResult = { ok: true; config: Config } | { ok: false; errors: string[] };

const CACHE_TYPES: readonly CacheType[] = ["redis", "redis_cluster", "memcache", "memcache_binary"];

const TOP_KEYS: readonly string[] = ["clusters", "metrics_addr"];

/** Every key a `[[clusters]]` table may hold. */
export const CLUSTER_KEYS: readonly string[] = [
  "name",
  "listen_addr",
  "cache_type",
  "servers",
  "thread",
  "read_timeout",
  "write_timeout",
  "dial_timeout",
  "fetch",
  "read_from_slave",
  "ping_fail_limit",
  "ping_interval",
  "hash_tag",
  "hash",
  "distribution",
  "node_connections",
  "max_value_size",
  "max_multiget_line",
  "max_clients",
  "client_idle_timeout",
  "client_output_soft_limit",
  "client_output_hard_limit",
  "shutdown_timeout",
  "drain_delay",
  "proxy_protocol",
  "password",
  "backend_password",
  "backend_username",
  "slowlog_slower_than",
  "slowlog_max_len",
  "allow_commands",
  "io",
  "tls_cert",
  "tls_key",
  "tls_ca",
  "tls_listen_addr",
  "backend_tls",
  "backend_tls_ca",
  "backend_tls_cert",
  "backend_tls_key",
  "backend_tls_server_name",
];

const IO_MODES: readonly IoMode[] = ["auto", "deno", "ffi"];

/** Where an unknown key's error sends the reader: the table of every key. */
const KEYS_DOC = "(see docs/configuration.md#cluster-keys)";

const MAX_MS = 3_600_000; // one hour
const MAX_WEIGHT = 1_000_000;

interface _IntRule {
  min: number;
  max: number;
  unit: string;
  fallback: number;
}

const INT_RULES = {
  thread: { min: 1, max: 256, unit: "", fallback: 1 },
  read_timeout: { min: 1, max: MAX_MS, unit: "ms", fallback: 2000 },
  write_timeout: { min: 1, max: MAX_MS, unit: "ms", fallback: 2000 },
  dial_timeout: { min: 1, max: MAX_MS, unit: "ms", fallback: 1000 },
  fetch: { min: 1, max: 86_400, unit: "s", fallback: 600 },
  ping_fail_limit: { min: 0, max: 1_000_000, unit: "", fallback: 0 },
  ping_interval: { min: 1, max: MAX_MS, unit: "ms", fallback: 10_000 },
  node_connections: { min: 1, max: 64, unit: "", fallback: 1 },
  max_value_size: { min: 1024, max: 1024 * 1024 * 1024, unit: "bytes", fallback: 1024 * 1024 },
  max_multiget_line: { min: 2048, max: 1024 * 1024 * 1024, unit: "bytes", fallback: 8 * 2 ** 20 },
  max_clients: { min: 1, max: 1_000_000, unit: "", fallback: 10_000 },
  client_idle_timeout: { min: 0, max: 86_400 * 30, unit: "s", fallback: 0 },
  client_output_soft_limit: { min: 64 * 1024, max: 2 ** 40, unit: "bytes", fallback: 8 * 2 ** 20 },
  client_output_hard_limit: {
    min: 64 * 1024,
    max: 2 ** 40,
    unit: "bytes",
    fallback: 256 * 2 ** 20,
  },
  shutdown_timeout: { min: 0, max: MAX_MS, unit: "ms", fallback: 5000 },
  drain_delay: { min: 0, max: MAX_MS, unit: "ms", fallback: 0 },
  slowlog_slower_than: { min: -1, max: 3_600_000_000, unit: "µs", fallback: 10_000 },
  slowlog_max_len: { min: 0, max: 100_000, unit: "", fallback: 128 },
} satisfies Record<string, _IntRule>;

interface _Listen {
  host: string;
  port: number;
}

interface _Checked {
  index: number;
  label: string;
  name: string | null;
  listen: _Listen | null;
  listenAddr: string | null;
  /** `tls_listen_addr`, parsed, when set and valid. */
  tlsListen: _Listen | null;
  cluster: ClusterConfig | null;
}

/**
 * Checks a parsed TOML document and fills in defaults. Collects every error (never stops at
 * the first); each names the cluster, the key and the bad value.
 */
export function validate(raw: unknown): ValidationResult {
  const errors: string[] = [];
  if (!_isTable(raw)) {
    return { ok: false, errors: [`config must be a table with [[clusters]], got ${_show(raw)}`] };
  }
  for (const key of Object.keys(raw)) {
    if (!TOP_KEYS.includes(key)) {
      const hint = _suggest(key, TOP_KEYS) || ` (top-level keys: ${TOP_KEYS.join(", ")})`;
      errors.push(`unknown top-level key ${JSON.stringify(key)}${hint} ${KEYS_DOC}`);
    }
  }
  const list = raw.clusters;
  if (list === undefined) {
    errors.push("missing [[clusters]]: at least one cluster is required");
    return { ok: false, errors };
  }
  if (!Array.isArray(list)) {
    errors.push(`clusters must be an array of tables ([[clusters]]), got ${_show(list)}`);
    return { ok: false, errors };
  }
  if (list.length === 0) {
    errors.push("clusters is empty: at least one [[clusters]] table is required");
    return { ok: false, errors };
  }
  const checked = list.map((entry, index) => _checkCluster(entry, index, errors));
  _checkUniqueNames(checked, errors);
  _checkListenClashes(checked, errors);
  let metricsAddr: Config["metricsAddr"] = null;
  if (raw.metrics_addr !== undefined) {
    const text = raw.metrics_addr;
    const parsed = typeof text === "string" ? _parseListen(text) : 'must be a "host:port" string';
    if (typeof parsed === "string") {
      errors.push(`metrics_addr ${_show(text)}: ${parsed}`);
    } else metricsAddr = { ...parsed, addr: text as string };
  }
  if (errors.length > 0) return { ok: false, errors };
  const clusters = checked.map((c) => c.cluster as ClusterConfig);
  return { ok: true, config: { clusters, metricsAddr } };
}

/**
 * Parses one `servers` entry: `"host:port:weight alias"`, `"host:port:weight"` or
 * `"host:port"` (weight 1). IPv6 hosts go in brackets: `"[::1]:7001:1"`. Returns the spec, or
 * an error text naming the entry.
 */
export function parseServer(entry: string): ServerSpec | string {
  const parsed = _parseServer(entry);
  return typeof parsed === "string" ? `server ${JSON.stringify(entry)}: ${parsed}` : parsed.spec;
}

/** Reports one problem of the cluster being checked. */
type _Fail = (message: string) => void;

/**
 * Checks one `[[clusters]]` entry, one concern at a time (the order of its errors is the
 * order of the steps), and builds its config when it has no error.
 */
function _checkCluster(entry: unknown, index: number, errors: string[]): _Checked {
  const at = `clusters[${index}]`;
  const out: _Checked = {
    index,
    label: at,
    name: null,
    listen: null,
    listenAddr: null,
    tlsListen: null,
    cluster: null,
  };
  if (!_isTable(entry)) {
    errors.push(`${at} must be a table ([[clusters]]), got ${_show(entry)}`);
    return out;
  }
  const before = errors.length;
  out.name = _validName(entry.name);
  if (out.name !== null) out.label = `cluster ${JSON.stringify(out.name)}`;
  const label = out.label;
  const fail: _Fail = (message) => errors.push(`${label}: ${message}`);

  _checkKnownKeys(entry, fail);
  _checkName(entry.name, out.name, fail);
  const listen = _checkListenAddr(entry.listen_addr, fail);
  if (listen !== null) {
    out.listen = listen;
    out.listenAddr = entry.listen_addr as string;
  }
  const cacheType = _checkCacheType(entry.cache_type, fail);
  const servers = _checkServers(entry.servers, cacheType, fail);
  const ints = _checkInts(entry, fail);
  const readFromSlave = _checkBool("read_from_slave", entry.read_from_slave, fail);
  const hashTag = _checkHashTag(entry.hash_tag, cacheType, fail);
  const proxyProtocol = _checkBool("proxy_protocol", entry.proxy_protocol, fail);
  const hash = _checkChoice("hash", entry.hash, KEY_HASH_NAMES, "fnv1a_64", cacheType, fail);
  const distribution = _checkChoice(
    "distribution",
    entry.distribution,
    DISTRIBUTION_NAMES,
    "ketama",
    cacheType,
    fail,
  );
  const secrets = _checkSecrets(entry, cacheType, fail);
  const allowCommands = _checkAllowCommands(entry.allow_commands, cacheType, fail);
  const io = _checkIo(entry.io, fail);
  _checkBackendLogin(secrets, fail);
  const tls = _checkTls(entry, listen, fail);
  if (tls.tlsListenHost !== null && tls.tlsListenPort !== null) {
    out.tlsListen = { host: tls.tlsListenHost, port: tls.tlsListenPort };
  }
  if (proxyProtocol && tls.tlsCert !== null) {
    // A balancer sends the PROXY header before the ClientHello, in the clear.
    fail(
      `proxy_protocol cannot be used with tls_cert: the PROXY header would come before the TLS handshake`,
    );
  }

  if (errors.length === before && out.name && out.listen && cacheType && servers) {
    out.cluster = {
      name: out.name,
      listenHost: out.listen.host,
      listenPort: out.listen.port,
      listenAddr: out.listenAddr as string,
      cacheType,
      servers,
      thread: ints.thread,
      readTimeout: ints.read_timeout,
      writeTimeout: ints.write_timeout,
      dialTimeout: ints.dial_timeout,
      fetch: ints.fetch,
      readFromSlave,
      pingFailLimit: ints.ping_fail_limit,
      pingInterval: ints.ping_interval,
      hashTag,
      hash,
      distribution,
      nodeConnections: ints.node_connections,
      maxValueSize: ints.max_value_size,
      maxMultigetLine: ints.max_multiget_line,
      maxClients: ints.max_clients,
      clientIdleTimeout: ints.client_idle_timeout,
      clientOutputSoftLimit: ints.client_output_soft_limit,
      clientOutputHardLimit: ints.client_output_hard_limit,
      shutdownTimeout: ints.shutdown_timeout,
      drainDelay: ints.drain_delay,
      proxyProtocol,
      password: secrets.password,
      backendPassword: secrets.backend_password,
      backendUsername: secrets.backend_username,
      slowlogSlowerThan: ints.slowlog_slower_than,
      slowlogMaxLen: ints.slowlog_max_len,
      allowCommands,
      io,
      ...tls,
      tlsPem: null,
      backendTlsPem: null,
    };
  }
  return out;
}

/** `name` when it is usable (a non-empty string without control characters), else null. */
function _validName(name: unknown): string | null {
  return typeof name === "string" && name.trim() !== "" && !_hasControl(name) ? name : null;
}

/** Every key is one Aster knows (with a "did you mean" for a near miss). */
function _checkKnownKeys(entry: Record<string, unknown>, fail: _Fail): void {
  for (const key of Object.keys(entry)) {
    if (!CLUSTER_KEYS.includes(key)) {
      const hint = _suggest(key, CLUSTER_KEYS) || ` (known keys: ${CLUSTER_KEYS.join(", ")})`;
      fail(`unknown key ${JSON.stringify(key)}${hint} ${KEYS_DOC}`);
    }
  }
}

/** `name` is present and usable (`valid` is what `_validName` made of it). */
function _checkName(name: unknown, valid: string | null, fail: _Fail): void {
  if (name === undefined) fail(`missing required key "name"`);
  else if (valid === null) {
    fail(`name must be a non-empty string without control characters, got ${_show(name)}`);
  }
}

/** `listen_addr`: a "host:port" string; its host and port, or null. */
function _checkListenAddr(value: unknown, fail: _Fail): _Listen | null {
  if (value === undefined) {
    fail(`missing required key "listen_addr"`);
    return null;
  }
  if (typeof value !== "string") {
    fail(`listen_addr must be a "host:port" string, got ${_show(value)}`);
    return null;
  }
  const listen = _parseListen(value);
  if (typeof listen === "string") {
    fail(`listen_addr ${JSON.stringify(value)}: ${listen}`);
    return null;
  }
  return listen;
}

/** The integer keys (timeouts, limits, counts) with their defaults; hard limit >= soft. */
function _checkInts(
  entry: Record<string, unknown>,
  fail: _Fail,
): Record<keyof typeof INT_RULES, number> {
  const ints = {} as Record<keyof typeof INT_RULES, number>;
  for (const [key, rule] of Object.entries(INT_RULES)) {
    ints[key as keyof typeof INT_RULES] = _checkInt(key, entry[key], rule, fail);
  }
  if (ints.client_output_hard_limit < ints.client_output_soft_limit) {
    fail(
      `client_output_hard_limit (${ints.client_output_hard_limit}) must be at least ` +
        `client_output_soft_limit (${ints.client_output_soft_limit})`,
    );
  }
  return ints;
}

/** `read_from_slave`: a boolean, false by default. */
function _checkBool(key: string, value: unknown, fail: _Fail): boolean {
  if (value === undefined) return false;
  if (typeof value === "boolean") return value;
  fail(`${key} must be true or false, got ${_show(value)}`);
  return false;
}

/** `hash_tag`: two printable characters, only `{}` in redis_cluster; null when unset. */
function _checkHashTag(tag: unknown, cacheType: CacheType | null, fail: _Fail): string | null {
  if (tag === undefined) return null;
  if (typeof tag !== "string" || !/^[\x21-\x7e]{2}$/.test(tag)) {
    fail(`hash_tag must be exactly two printable ASCII characters, e.g. "{}", got ${_show(tag)}`);
    return null;
  }
  if (cacheType === "redis_cluster" && tag !== "{}") {
    const shown = JSON.stringify(tag);
    fail(`hash_tag ${shown} cannot be used with redis_cluster, which always hashes {...}`);
    return null;
  }
  return tag;
}

/** The secret keys of the cluster, null when unset. */
type _Secrets = Record<"password" | "backend_password" | "backend_username", string | null>;

/** `password`, `backend_password`, `backend_username`: Redis modes only, never echoed. */
function _checkSecrets(
  entry: Record<string, unknown>,
  cacheType: CacheType | null,
  fail: _Fail,
): _Secrets {
  const secrets: _Secrets = { password: null, backend_password: null, backend_username: null };
  for (const key of ["password", "backend_password", "backend_username"] as const) {
    const value = entry[key];
    if (value === undefined) continue;
    // Never echo a secret in an error.
    if (typeof value !== "string" || value === "" || /[\r\n\0]/.test(value)) {
      fail(`${key} must be a non-empty string without CR, LF or NUL`);
    } else if (cacheType === "memcache" || cacheType === "memcache_binary") {
      fail(`${key} is for the Redis modes; memcached has no AUTH`);
    } else secrets[key] = value;
  }
  return secrets;
}

/** A backend user name needs its password (a lone password is the default user's). */
function _checkBackendLogin(secrets: _Secrets, fail: _Fail): void {
  if (secrets.backend_username !== null && secrets.backend_password === null) {
    fail(`backend_username needs backend_password`);
  }
}

/** `allow_commands`: broadcast commands the Redis modes may run, lower-cased, no repeats. */
function _checkAllowCommands(
  value: unknown,
  cacheType: CacheType | null,
  fail: _Fail,
): string[] {
  const allowCommands: string[] = [];
  if (value === undefined) return allowCommands;
  if (!Array.isArray(value)) {
    fail(`allow_commands must be an array of command names, got ${_show(value)}`);
    return allowCommands;
  }
  for (const item of value) {
    const name = typeof item === "string" ? item.toLowerCase() : "";
    if (!BROADCAST_COMMANDS.includes(name)) {
      const shown = typeof item === "string" ? JSON.stringify(item) : _show(item);
      const allowed = BROADCAST_COMMANDS.join(", ");
      fail(`allow_commands: ${shown} cannot be allowed (allowed: ${allowed})`);
    } else if (cacheType === "memcache" || cacheType === "memcache_binary") {
      fail(`allow_commands is for the Redis modes`);
    } else if (!allowCommands.includes(name)) allowCommands.push(name);
  }
  return allowCommands;
}

/** The TLS keys of a cluster, as `ClusterConfig` holds them. */
type _Tls = Pick<
  ClusterConfig,
  | "tlsCert"
  | "tlsKey"
  | "tlsCa"
  | "tlsListenAddr"
  | "tlsListenHost"
  | "tlsListenPort"
  | "backendTls"
  | "backendTlsCa"
  | "backendTlsCert"
  | "backendTlsKey"
  | "backendTlsServerName"
>;

/**
 * The TLS keys: file paths (read and checked by `loadConfig`), the TLS listen address, and
 * the pairs that go together (a certificate needs its key; a CA or a TLS address needs the
 * certificate; the backend keys need `backend_tls`).
 */
function _checkTls(entry: Record<string, unknown>, listen: _Listen | null, fail: _Fail): _Tls {
  const path = (key: string): string | null => {
    const value = entry[key];
    if (value === undefined) return null;
    if (typeof value === "string" && value.trim() !== "" && !_hasControl(value)) return value;
    fail(`${key} must be the path of a PEM file, got ${_show(value)}`);
    return null;
  };
  const tls: _Tls = {
    tlsCert: path("tls_cert"),
    tlsKey: path("tls_key"),
    tlsCa: path("tls_ca"),
    tlsListenAddr: null,
    tlsListenHost: null,
    tlsListenPort: null,
    backendTls: _checkBool("backend_tls", entry.backend_tls, fail),
    backendTlsCa: path("backend_tls_ca"),
    backendTlsCert: path("backend_tls_cert"),
    backendTlsKey: path("backend_tls_key"),
    backendTlsServerName: null,
  };
  if (entry.tls_listen_addr !== undefined) {
    const value = entry.tls_listen_addr;
    const parsed = typeof value === "string" ? _parseListen(value) : 'must be a "host:port" string';
    if (typeof parsed === "string") fail(`tls_listen_addr ${_show(value)}: ${parsed}`);
    else if (listen !== null && _sameSocket(listen, parsed)) {
      fail(`tls_listen_addr ${JSON.stringify(value)} must differ from listen_addr`);
    } else {
      tls.tlsListenAddr = value as string;
      tls.tlsListenHost = parsed.host;
      tls.tlsListenPort = parsed.port;
    }
  }
  const name = entry.backend_tls_server_name;
  if (name !== undefined) {
    if (typeof name === "string" && /^[A-Za-z0-9._:-]+$/.test(name)) {
      tls.backendTlsServerName = name;
    } else fail(`backend_tls_server_name must be a host name, got ${_show(name)}`);
  }
  if ((tls.tlsCert === null) !== (tls.tlsKey === null)) {
    fail(`tls_cert and tls_key go together: set both or neither`);
  }
  for (const key of ["tls_ca", "tls_listen_addr"]) {
    if (entry[key] !== undefined && tls.tlsCert === null) fail(`${key} needs tls_cert and tls_key`);
  }
  if ((tls.backendTlsCert === null) !== (tls.backendTlsKey === null)) {
    fail(`backend_tls_cert and backend_tls_key go together: set both or neither`);
  }
  if (!tls.backendTls) {
    for (const key of ["backend_tls_ca", "backend_tls_cert", "backend_tls_key"]) {
      if (entry[key] !== undefined) fail(`${key} needs backend_tls = true`);
    }
    if (name !== undefined) fail(`backend_tls_server_name needs backend_tls = true`);
  }
  return tls;
}

/** `io`: which socket layer the workers use, "auto" by default. */
function _checkIo(value: unknown, fail: _Fail): IoMode {
  if (value === undefined) return "auto";
  if (typeof value === "string" && IO_MODES.includes(value as IoMode)) return value as IoMode;
  fail(`io must be one of ${IO_MODES.join(", ")}, got ${_show(value)}`);
  return "auto";
}

/** `hash` or `distribution`: one of twemproxy's names, and only in the ring modes. */
function _checkChoice<T extends string>(
  key: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
  cacheType: CacheType | null,
  fail: (m: string) => void,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    const got = typeof value === "string"
      ? `${JSON.stringify(value)}${_suggest(value, allowed)}`
      : _show(value);
    fail(`${key} must be one of ${allowed.join(", ")}, got ${got}`);
    return fallback;
  }
  if (cacheType === "redis_cluster") {
    fail(
      `${key} cannot be set for redis_cluster, which places keys by CRC16 hash slots; ` +
        `${key} is for redis, memcache and memcache_binary`,
    );
    return fallback;
  }
  return value as T;
}

function _checkCacheType(value: unknown, fail: (m: string) => void): CacheType | null {
  if (value === undefined) {
    fail(`missing required key "cache_type" (one of ${CACHE_TYPES.join(", ")})`);
    return null;
  }
  if (typeof value !== "string" || !CACHE_TYPES.includes(value as CacheType)) {
    const got = typeof value === "string"
      ? `${JSON.stringify(value)}${_suggest(value, CACHE_TYPES)}`
      : _show(value);
    fail(`cache_type must be one of ${CACHE_TYPES.join(", ")}, got ${got}`);
    return null;
  }
  return value as CacheType;
}

function _checkServers(
  value: unknown,
  cacheType: CacheType | null,
  fail: (m: string) => void,
): ServerSpec[] | null {
  if (value === undefined) {
    fail(`missing required key "servers"`);
    return null;
  }
  if (!Array.isArray(value)) {
    fail(`servers must be an array of strings, got ${_show(value)}`);
    return null;
  }
  if (value.length === 0) {
    fail("servers must list at least one backend, got []");
    return null;
  }
  const specs: ServerSpec[] = [];
  const byAddr = new Map<string, number>();
  const byAlias = new Map<string, number>();
  let ok = true;
  value.forEach((item, i) => {
    const at = `servers[${i}]`;
    if (typeof item !== "string") {
      fail(`${at} must be a string like "host:port:weight alias", got ${_show(item)}`);
      ok = false;
      return;
    }
    const where = `${at} ${JSON.stringify(item)}`;
    const parsed = _parseServer(item);
    if (typeof parsed === "string") {
      fail(`${where}: ${parsed}`);
      ok = false;
      return;
    }
    const spec = parsed.spec;
    if (cacheType === "redis_cluster" && (spec.alias !== null || parsed.weighted)) {
      fail(`${where}: redis_cluster servers are seed nodes and must be plain "host:port"`);
      ok = false;
    }
    const addrKey = `${spec.host.toLowerCase()}:${spec.port}`;
    const sameAddr = byAddr.get(addrKey);
    if (sameAddr !== undefined) {
      fail(`${where}: duplicate address ${spec.addr} (already servers[${sameAddr}])`);
      ok = false;
    } else byAddr.set(addrKey, i);
    if (spec.alias !== null) {
      const sameAlias = byAlias.get(spec.alias);
      if (sameAlias !== undefined) {
        fail(
          `${where}: duplicate alias ${JSON.stringify(spec.alias)} (already servers[${sameAlias}])`,
        );
        ok = false;
      } else byAlias.set(spec.alias, i);
    }
    specs.push(spec);
  });
  return ok ? specs : null;
}

function _checkInt(key: string, value: unknown, rule: _IntRule, fail: (m: string) => void): number {
  if (value === undefined) return rule.fallback;
  const unit = rule.unit ? ` ${rule.unit}` : "";
  const shape = rule.unit ? `an integer (${_unitName(rule.unit)})` : "an integer";
  let n: number;
  if (typeof value === "bigint") {
    n = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : (value > 0n ? Infinity : -Infinity);
  } else if (typeof value === "number" && Number.isFinite(value)) {
    if (!Number.isInteger(value)) {
      fail(`${key} must be ${shape}, got ${value} (not a whole number)`);
      return rule.fallback;
    }
    n = value;
  } else {
    fail(`${key} must be ${shape}, got ${_show(value)}`);
    return rule.fallback;
  }
  if (n < rule.min) {
    fail(
      `${key} must be an integer ${rule.min === 0 ? ">= 0" : `> ${rule.min - 1}`}, got ${value}`,
    );
    return rule.fallback;
  }
  if (n > rule.max) {
    fail(`${key} must be at most ${rule.max}${unit}, got ${value}`);
    return rule.fallback;
  }
  return n;
}

function _checkUniqueNames(checked: _Checked[], errors: string[]): void {
  const seen = new Map<string, number[]>();
  for (const c of checked) {
    if (c.name === null) continue;
    const list = seen.get(c.name) ?? [];
    list.push(c.index);
    seen.set(c.name, list);
  }
  for (const [name, indexes] of seen) {
    if (indexes.length < 2) continue;
    const where = indexes.map((i) => `clusters[${i}]`).join(", ");
    errors.push(
      `cluster ${JSON.stringify(name)}: name is used by more than one cluster (${where})`,
    );
  }
}

function _checkListenClashes(checked: _Checked[], errors: string[]): void {
  for (let b = 0; b < checked.length; b++) {
    const later = checked[b];
    if (!later.listen) continue;
    for (let a = 0; a < b; a++) {
      const earlier = checked[a];
      if (!earlier.listen || !_sameSocket(earlier.listen, later.listen)) continue;
      errors.push(
        `${later.label}: listen_addr ${JSON.stringify(later.listenAddr)} clashes with ${
          earlier.label === later.label ? `clusters[${a}]` : earlier.label
        } (listen_addr ${JSON.stringify(earlier.listenAddr)}): same port ${later.listen.port}`,
      );
    }
  }
  // A TLS address may not take another cluster's port either (its own is checked apart).
  for (const a of checked) {
    if (!a.tlsListen) continue;
    for (const b of checked) {
      if (a === b) continue;
      for (const other of [b.listen, b.tlsListen]) {
        if (other && _sameSocket(a.tlsListen, other) && (other === b.listen || a.index > b.index)) {
          errors.push(
            `${a.label}: tls_listen_addr port ${a.tlsListen.port} clashes with ${b.label}`,
          );
        }
      }
    }
  }
}

function _sameSocket(x: _Listen, y: _Listen): boolean {
  if (x.port !== y.port) return false;
  const hx = _bindHost(x.host);
  const hy = _bindHost(y.host);
  return hx === hy || hx === "*" || hy === "*";
}

function _bindHost(host: string): string {
  const h = host.toLowerCase();
  if (h === "0.0.0.0" || h === "::" || h === "0:0:0:0:0:0:0:0") return "*";
  if (h === "localhost") return "127.0.0.1";
  return h;
}

function _parseListen(text: string): _Listen | string {
  const parts = _splitHost(text);
  if (typeof parts === "string") return parts;
  if (parts.rest.length !== 1) {
    return `expected "host:port" (IPv6 as "[::1]:port")`;
  }
  const port = _parsePort(parts.rest[0]);
  if (typeof port === "string") return port;
  return { host: parts.host, port };
}

function _parseServer(entry: string): { spec: ServerSpec; weighted: boolean } | string {
  const fields = entry.trim().split(/\s+/);
  if (fields[0] === "") return `empty server entry (expected "host:port:weight alias")`;
  if (fields.length > 2) {
    return `expected "host:port:weight alias"; the alias must not contain spaces`;
  }
  const parts = _splitHost(fields[0]);
  if (typeof parts === "string") return parts;
  if (parts.rest.length < 1 || parts.rest.length > 2) {
    return `expected "host:port", "host:port:weight" or "host:port:weight alias"`;
  }
  const port = _parsePort(parts.rest[0]);
  if (typeof port === "string") return port;
  let weight = 1;
  if (parts.rest.length === 2) {
    const text = parts.rest[1];
    const n = /^\d{1,7}$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= MAX_WEIGHT)) {
      return `weight must be an integer 1..${MAX_WEIGHT}, got ${JSON.stringify(text)}`;
    }
    weight = n;
  }
  const alias = fields.length === 2 ? fields[1] : null;
  if (alias !== null && _hasControl(alias)) return `alias must not contain control characters`;
  // twemproxy hashes "name-N" from an 86-byte buffer: longer names place keys unpredictably.
  if (alias !== null && new TextEncoder().encode(alias).length > MAX_ALIAS_BYTES) {
    return `alias must be at most ${MAX_ALIAS_BYTES} bytes`;
  }
  const addr = parts.host.includes(":") ? `[${parts.host}]:${port}` : `${parts.host}:${port}`;
  return {
    spec: { host: parts.host, port, weight, alias, addr },
    weighted: parts.rest.length === 2,
  };
}

/** Splits "host:a:b" or "[v6]:a:b" into the host and the colon-separated rest. */
function _splitHost(text: string): { host: string; rest: string[] } | string {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return `missing "]" after the IPv6 address`;
    const host = text.slice(1, close);
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(":")) {
      return `${JSON.stringify(host)} is not an IPv6 address`;
    }
    const after = text.slice(close + 1);
    if (!after.startsWith(":")) return `expected ":port" after "[${host}]"`;
    return { host, rest: after.slice(1).split(":") };
  }
  const parts = text.split(":");
  if ((parts.length > 4 || text.includes("::")) && /^[0-9A-Fa-f:.]+$/.test(text)) {
    return `IPv6 addresses need brackets, e.g. "[::1]:7001"`;
  }
  const host = parts[0];
  if (host === "") return `missing host (expected "host:port")`;
  if (!/^[A-Za-z0-9._-]+$/.test(host)) return `invalid host ${JSON.stringify(host)}`;
  // Raw sockets would read 010.0.0.1 as 10.0.0.1, Deno's resolver as 8.0.0.1.
  if (malformedIpv4(host)) {
    return `${JSON.stringify(host)} is not an IPv4 address: write four decimal numbers ` +
      `0..255 without leading zeros, e.g. "127.0.0.1"`;
  }
  if (parts.length < 2) return `missing port (expected "host:port")`;
  return { host, rest: parts.slice(1) };
}

function _parsePort(text: string): number | string {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    return `port must be an integer 1..65535, got ${JSON.stringify(text)}`;
  }
  return n;
}

function _hasControl(text: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f]/.test(text);
}

function _isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

function _unitName(unit: string): string {
  return unit === "ms"
    ? "milliseconds"
    : unit === "s"
    ? "seconds"
    : unit === "µs"
    ? "microseconds"
    : unit;
}

/** Renders a bad value for an error message, with its type when that is not obvious. */
function _show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return `${JSON.stringify(value)} (a string)`;
  if (typeof value === "number" || typeof value === "bigint") return `${value} (a number)`;
  if (typeof value === "boolean") return `${value} (a boolean)`;
  if (value instanceof Date) return `${value.toISOString()} (a date)`;
  if (Array.isArray(value)) {
    let text: string;
    try {
      text = JSON.stringify(value, (_k, v) => typeof v === "bigint" ? Number(v) : v);
    } catch {
      text = "[...]";
    }
    if (text.length > 60) text = `${text.slice(0, 57)}...`;
    return `${text} (an array)`;
  }
  if (value === null) return "null";
  return "a table";
}

/** " (did you mean "x"?)" for the closest known word, or "" when none is close. */
function _suggest(word: string, known: readonly string[]): string {
  const norm = (s: string) => s.toLowerCase().replaceAll("-", "_");
  let best = "";
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = _distance(norm(word), norm(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const close = bestDistance <= Math.max(2, Math.floor(word.length / 3)) ||
    (word.length >= 4 && norm(best).includes(norm(word)));
  return close ? ` (did you mean ${JSON.stringify(best)}?)` : "";
}

/** Optimal string alignment distance: edits, with a swap of neighbours counting as one. */
function _distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) rows[i].push(i === 0 ? j : 0);
  }
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}
