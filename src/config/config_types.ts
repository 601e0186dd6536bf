/** The types of a validated configuration (see `validate()` in schema.ts). Pure. */
import type { DistributionName } from "../hash/distribution.ts";
import type { KeyHashName } from "../hash/key_hashes.ts";

/** The four proxy modes: which wire protocol clients speak and how keys are routed. */
export type CacheType = "redis" | "redis_cluster" | "memcache" | "memcache_binary";

/**
 * What a cluster's workers do socket I/O with: Deno's socket ops, raw sockets via FFI, or
 * FFI where the process may use it and Deno's ops elsewhere ("auto").
 */
export type IoMode = "auto" | "deno" | "ffi";

/** Longest alias: twemproxy's ketama hashes "alias-N" out of an 86-byte buffer. */

/** One backend from a `servers` entry (`"host:port:weight alias"`). */
export interface ServerSpec {
  /** Host name or IP address, without brackets for IPv6 (ready for the runtime's connect). */
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
  /** Host part of `listen_addr`, without brackets for IPv6 (ready for the runtime's listen). */
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
   * Dedicated backend connections per node per worker for clients in a transaction or a
   * blocking command (`blocking_connections`), 1..10000; past it such a request gets an error.
   * @default 64
   */
  blockingConnections: number;
  /**
   * The backend database every connection selects (`database`), `redis` mode only; a
   * client's `SELECT` of it is answered OK, of another refused.
   * @default 0
   */
  database: number;
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
   * Most clients connected at once (`max_clients`), counted over all the workers; a client
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

/**
 * What `allow_commands` may name: the broadcast commands, and `client-kill` (CLIENT KILL of
 * Aster's own clients of that cluster in the worker, never a backend's).
 */
export const ALLOWABLE_COMMANDS: readonly string[] = [...BROADCAST_COMMANDS, "client-kill"];

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
  /** What is valid but likely not meant (a key set in a mode it does nothing in). */
  warnings?: string[];
}

/** Outcome of {@link validate}: the defaulted config, or every error found. */
export type ValidationResult = { ok: true; config: Config } | { ok: false; errors: string[] };
