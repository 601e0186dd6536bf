/**
 * The checks of one `[[clusters]]` table's keys, one function per concern; `validate()` in
 * schema.ts calls them in order and assembles the config. Pure.
 */
import { ketamaName } from "../hash/ketama.ts";
import {
  ALLOWABLE_COMMANDS,
  type CacheType,
  type ClusterConfig,
  type IoMode,
  type ServerSpec,
} from "./config_types.ts";
import { type HostPort, parseListen, parseServerEntry, sameSocket } from "./addresses.ts";
import { hasControl, showValue, suggestWord, unitName } from "./config_words.ts";

const CACHE_TYPES: readonly CacheType[] = ["redis", "redis_cluster", "memcache", "memcache_binary"];

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
  "blocking_connections",
  "database",
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
export const KEYS_DOC = "(see docs/configuration.md#cluster-keys)";

const MAX_MS = 3_600_000; // one hour

export interface IntRule {
  min: number;
  max: number;
  unit: string;
  fallback: number;
}

export const INT_RULES = {
  thread: { min: 1, max: 256, unit: "", fallback: 1 },
  read_timeout: { min: 1, max: MAX_MS, unit: "ms", fallback: 2000 },
  write_timeout: { min: 1, max: MAX_MS, unit: "ms", fallback: 2000 },
  dial_timeout: { min: 1, max: MAX_MS, unit: "ms", fallback: 1000 },
  fetch: { min: 1, max: 86_400, unit: "s", fallback: 600 },
  ping_fail_limit: { min: 0, max: 1_000_000, unit: "", fallback: 0 },
  ping_interval: { min: 1, max: MAX_MS, unit: "ms", fallback: 10_000 },
  node_connections: { min: 1, max: 64, unit: "", fallback: 1 },
  blocking_connections: { min: 1, max: 10_000, unit: "", fallback: 64 },
  database: { min: 0, max: 2_147_483_647, unit: "", fallback: 0 },
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
} satisfies Record<string, IntRule>;

/** Reports one problem of the cluster being checked. */
export type Fail = (message: string) => void;

/** `name` when it is usable (a non-empty string without control characters), else null. */
export function validName(name: unknown): string | null {
  return typeof name === "string" && name.trim() !== "" && !hasControl(name) ? name : null;
}

/** Every key is one Aster knows (with a "did you mean" for a near miss). */
export function checkKnownKeys(entry: Record<string, unknown>, fail: Fail): void {
  for (const key of Object.keys(entry)) {
    if (key === "metrics_addr") {
      // TOML puts every key after a [[clusters]] header into that table.
      fail(`metrics_addr is a top-level key: put it above the first [[clusters]] ${KEYS_DOC}`);
    } else if (!CLUSTER_KEYS.includes(key)) {
      const hint = suggestWord(key, CLUSTER_KEYS) || ` (known keys: ${CLUSTER_KEYS.join(", ")})`;
      fail(`unknown key ${JSON.stringify(key)}${hint} ${KEYS_DOC}`);
    }
  }
}

/** `name` is present and usable (`valid` is what `validName` made of it). */
export function checkName(name: unknown, valid: string | null, fail: Fail): void {
  if (name === undefined) fail(`missing required key "name"`);
  else if (valid === null) {
    fail(`name must be a non-empty string without control characters, got ${showValue(name)}`);
  }
}

/** `listen_addr`: a "host:port" string; its host and port, or null. */
export function checkListenAddr(value: unknown, fail: Fail): HostPort | null {
  if (value === undefined) {
    fail(`missing required key "listen_addr"`);
    return null;
  }
  if (typeof value !== "string") {
    fail(`listen_addr must be a "host:port" string, got ${showValue(value)}`);
    return null;
  }
  const listen = parseListen(value);
  if (typeof listen === "string") {
    fail(`listen_addr ${JSON.stringify(value)}: ${listen}`);
    return null;
  }
  return listen;
}

/** The integer keys (timeouts, limits, counts) with their defaults; hard limit >= soft. */
export function checkInts(
  entry: Record<string, unknown>,
  fail: Fail,
): Record<keyof typeof INT_RULES, number> {
  const ints = {} as Record<keyof typeof INT_RULES, number>;
  for (const [key, rule] of Object.entries(INT_RULES)) {
    ints[key as keyof typeof INT_RULES] = checkInt(key, entry[key], rule, fail);
  }
  if (ints.client_output_hard_limit < ints.client_output_soft_limit) {
    fail(
      `client_output_hard_limit (${ints.client_output_hard_limit}) must be at least ` +
        `client_output_soft_limit (${ints.client_output_soft_limit})`,
    );
  }
  return ints;
}

/**
 * `database`: the backend database every connection selects, for the `redis` mode only:
 * a Redis Cluster has database 0 alone, memcached none.
 */
export function checkDatabase(value: unknown, cacheType: CacheType | null, fail: Fail): void {
  if (value === undefined || cacheType === null || cacheType === "redis") return;
  fail(
    cacheType === "redis_cluster"
      ? `database cannot be set for redis_cluster: a Redis Cluster serves database 0 only`
      : `database is for the redis mode; memcached has no databases`,
  );
}

/** `read_from_slave`: a boolean, false by default. */
export function checkBool(key: string, value: unknown, fail: Fail): boolean {
  if (value === undefined) return false;
  if (typeof value === "boolean") return value;
  fail(`${key} must be true or false, got ${showValue(value)}`);
  return false;
}

/** `hash_tag`: two printable characters, only `{}` in redis_cluster; null when unset. */
export function checkHashTag(tag: unknown, cacheType: CacheType | null, fail: Fail): string | null {
  if (tag === undefined) return null;
  if (typeof tag !== "string" || !/^[\x21-\x7e]{2}$/.test(tag)) {
    fail(
      `hash_tag must be exactly two printable ASCII characters, e.g. "{}", got ${showValue(tag)}`,
    );
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
export type Secrets = Record<"password" | "backend_password" | "backend_username", string | null>;

/** `password`, `backend_password`, `backend_username`: Redis modes only, never echoed. */
export function checkSecrets(
  entry: Record<string, unknown>,
  cacheType: CacheType | null,
  fail: Fail,
): Secrets {
  const secrets: Secrets = { password: null, backend_password: null, backend_username: null };
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
export function checkBackendLogin(secrets: Secrets, fail: Fail): void {
  if (secrets.backend_username !== null && secrets.backend_password === null) {
    fail(`backend_username needs backend_password`);
  }
}

/** `allow_commands`: broadcast commands the Redis modes may run, lower-cased, no repeats. */
export function checkAllowCommands(
  value: unknown,
  cacheType: CacheType | null,
  fail: Fail,
): string[] {
  const allowCommands: string[] = [];
  if (value === undefined) return allowCommands;
  if (!Array.isArray(value)) {
    fail(`allow_commands must be an array of command names, got ${showValue(value)}`);
    return allowCommands;
  }
  for (const item of value) {
    const name = typeof item === "string" ? item.toLowerCase() : "";
    if (!ALLOWABLE_COMMANDS.includes(name)) {
      const shown = typeof item === "string" ? JSON.stringify(item) : showValue(item);
      const allowed = ALLOWABLE_COMMANDS.join(", ");
      fail(`allow_commands: ${shown} cannot be allowed (allowed: ${allowed})`);
    } else if (cacheType === "memcache" || cacheType === "memcache_binary") {
      fail(`allow_commands is for the Redis modes`);
    } else if (!allowCommands.includes(name)) allowCommands.push(name);
  }
  return allowCommands;
}

/** The TLS keys of a cluster, as `ClusterConfig` holds them. */
export type TlsKeys = Pick<
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
export function checkTls(
  entry: Record<string, unknown>,
  listen: HostPort | null,
  fail: Fail,
): TlsKeys {
  const path = (key: string): string | null => {
    const value = entry[key];
    if (value === undefined) return null;
    if (typeof value === "string" && value.trim() !== "" && !hasControl(value)) return value;
    fail(`${key} must be the path of a PEM file, got ${showValue(value)}`);
    return null;
  };
  const tls: TlsKeys = {
    tlsCert: path("tls_cert"),
    tlsKey: path("tls_key"),
    tlsCa: path("tls_ca"),
    tlsListenAddr: null,
    tlsListenHost: null,
    tlsListenPort: null,
    backendTls: checkBool("backend_tls", entry.backend_tls, fail),
    backendTlsCa: path("backend_tls_ca"),
    backendTlsCert: path("backend_tls_cert"),
    backendTlsKey: path("backend_tls_key"),
    backendTlsServerName: null,
  };
  if (entry.tls_listen_addr !== undefined) {
    const value = entry.tls_listen_addr;
    const parsed = typeof value === "string" ? parseListen(value) : 'must be a "host:port" string';
    if (typeof parsed === "string") fail(`tls_listen_addr ${showValue(value)}: ${parsed}`);
    else if (listen !== null && sameSocket(listen, parsed)) {
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
    } else fail(`backend_tls_server_name must be a host name, got ${showValue(name)}`);
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
export function checkIo(value: unknown, fail: Fail): IoMode {
  if (value === undefined) return "auto";
  if (typeof value === "string" && IO_MODES.includes(value as IoMode)) return value as IoMode;
  fail(`io must be one of ${IO_MODES.join(", ")}, got ${showValue(value)}`);
  return "auto";
}

/** Keys that act in some modes only, the modes they act in, and how the docs call those. */
const MODE_KEYS: Record<string, [readonly CacheType[], string]> = {
  ping_fail_limit: [["redis", "memcache", "memcache_binary"], "the ring modes"],
  fetch: [["redis_cluster"], "redis_cluster"],
  read_from_slave: [["redis_cluster"], "redis_cluster"],
  max_value_size: [["memcache", "memcache_binary"], "the memcache modes"],
  max_multiget_line: [["memcache"], "memcache (text)"],
};

/**
 * Warns of a key set in a mode it does nothing in, to a value other than its default (as if
 * it were in effect: `ping_fail_limit = 3` in `redis_cluster` ejects nothing). A warning, not
 * an error: a file that lists every key, as default.toml does, stays valid.
 */
export function checkModeKeys(
  entry: Record<string, unknown>,
  cacheType: CacheType | null,
  warn: (m: string) => void,
): void {
  if (cacheType === null) return;
  for (const [key, [modes, where]] of Object.entries(MODE_KEYS)) {
    const value = entry[key];
    if (value === undefined || modes.includes(cacheType)) continue;
    const fallback = key === "read_from_slave"
      ? false
      : INT_RULES[key as keyof typeof INT_RULES].fallback;
    if (value !== fallback) warn(`${key} is for ${where}; it does nothing in ${cacheType} mode`);
  }
}

/** `hash` or `distribution`: one of twemproxy's names, and only in the ring modes. */
export function checkChoice<T extends string>(
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
      ? `${JSON.stringify(value)}${suggestWord(value, allowed)}`
      : showValue(value);
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

export function checkCacheType(value: unknown, fail: (m: string) => void): CacheType | null {
  if (value === undefined) {
    fail(`missing required key "cache_type" (one of ${CACHE_TYPES.join(", ")})`);
    return null;
  }
  if (typeof value !== "string" || !CACHE_TYPES.includes(value as CacheType)) {
    const got = typeof value === "string"
      ? `${JSON.stringify(value)}${suggestWord(value, CACHE_TYPES)}`
      : showValue(value);
    fail(`cache_type must be one of ${CACHE_TYPES.join(", ")}, got ${got}`);
    return null;
  }
  return value as CacheType;
}

export function checkServers(
  value: unknown,
  cacheType: CacheType | null,
  fail: (m: string) => void,
): ServerSpec[] | null {
  if (value === undefined) {
    fail(`missing required key "servers"`);
    return null;
  }
  if (!Array.isArray(value)) {
    fail(`servers must be an array of strings, got ${showValue(value)}`);
    return null;
  }
  if (value.length === 0) {
    fail("servers must list at least one backend, got []");
    return null;
  }
  const specs: ServerSpec[] = [];
  const byAddr = new Map<string, number>();
  const byName = new Map<string, { index: number; aliased: boolean }>();
  let ok = true;
  value.forEach((item, i) => {
    const at = `servers[${i}]`;
    if (typeof item !== "string") {
      fail(`${at} must be a string like "host:port:weight alias", got ${showValue(item)}`);
      ok = false;
      return;
    }
    const where = `${at} ${JSON.stringify(item)}`;
    const parsed = parseServerEntry(item);
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
    // A server's name (its alias, else its address, the host alone on port 11211) places
    // its keys on the ring: two of a name would share their points, so one would get no keys
    // (nutcracker refuses it too).
    const name = ketamaName(spec);
    const sameName = byName.get(name);
    if (sameName !== undefined) {
      const other = `servers[${sameName.index}]`;
      fail(
        spec.alias !== null && sameName.aliased
          ? `${where}: duplicate alias ${JSON.stringify(name)} (already ${other})`
          : `${where}: duplicate name ${JSON.stringify(name)} (${other}'s ` +
            `${
              sameName.aliased ? "alias" : "address"
            } is that name too; a name places keys on the ring)`,
      );
      ok = false;
    } else byName.set(name, { index: i, aliased: spec.alias !== null });
    specs.push(spec);
  });
  return ok ? specs : null;
}

export function checkInt(
  key: string,
  value: unknown,
  rule: IntRule,
  fail: (m: string) => void,
): number {
  if (value === undefined) return rule.fallback;
  const unit = rule.unit ? ` ${rule.unit}` : "";
  const shape = rule.unit ? `an integer (${unitName(rule.unit)})` : "an integer";
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
    fail(`${key} must be ${shape}, got ${showValue(value)}`);
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
