/**
 * Configuration types, defaults and validation. Pure: no I/O, no `Deno.*`.
 *
 * `validate()` takes the parsed TOML document (`[[clusters]]` tables with snake_case keys) and
 * returns either a fully defaulted {@link Config} or every problem it found, each naming the
 * cluster, the key and the bad value.
 */

import { DISTRIBUTION_NAMES } from "../hash/distribution.ts";
import { KEY_HASH_NAMES } from "../hash/key_hashes.ts";
import {
  type ClusterConfig,
  type Config,
  type ServerSpec,
  type ValidationResult,
} from "./config_types.ts";
import { type HostPort, parseListen, parseServerEntry, sameSocket } from "./addresses.ts";
import { isTable, showValue, suggestWord } from "./config_words.ts";

import {
  checkAllowCommands,
  checkBackendLogin,
  checkBool,
  checkCacheType,
  checkChoice,
  checkDatabase,
  checkHashTag,
  checkInts,
  checkIo,
  checkKnownKeys,
  checkListenAddr,
  checkModeKeys,
  checkName,
  checkSecrets,
  checkServers,
  checkTls,
  type Fail,
  KEYS_DOC,
  validName,
} from "./cluster_checks.ts";

export * from "./config_types.ts";
export { CLUSTER_KEYS } from "./cluster_checks.ts";

const TOP_KEYS: readonly string[] = ["clusters", "metrics_addr"];

interface _Checked {
  index: number;
  label: string;
  name: string | null;
  listen: HostPort | null;
  listenAddr: string | null;
  /** `tls_listen_addr`, parsed, when set and valid. */
  tlsListen: HostPort | null;
  cluster: ClusterConfig | null;
}

/**
 * Checks a parsed TOML document and fills in defaults. Collects every error (never stops at
 * the first); each names the cluster, the key and the bad value.
 */
export function validate(raw: unknown): ValidationResult {
  const errors: string[] = [];
  if (!isTable(raw)) {
    return {
      ok: false,
      errors: [`config must be a table with [[clusters]], got ${showValue(raw)}`],
    };
  }
  for (const key of Object.keys(raw)) {
    if (!TOP_KEYS.includes(key)) {
      const hint = suggestWord(key, TOP_KEYS) || ` (top-level keys: ${TOP_KEYS.join(", ")})`;
      errors.push(`unknown top-level key ${JSON.stringify(key)}${hint} ${KEYS_DOC}`);
    }
  }
  const list = raw.clusters;
  if (list === undefined) {
    errors.push("missing [[clusters]]: at least one cluster is required");
    return { ok: false, errors };
  }
  if (!Array.isArray(list)) {
    errors.push(`clusters must be an array of tables ([[clusters]]), got ${showValue(list)}`);
    return { ok: false, errors };
  }
  if (list.length === 0) {
    errors.push("clusters is empty: at least one [[clusters]] table is required");
    return { ok: false, errors };
  }
  const warnings: string[] = [];
  const checked = list.map((entry, index) => _checkCluster(entry, index, errors, warnings));
  _checkUniqueNames(checked, errors);
  _checkListenClashes(checked, errors);
  let metricsAddr: Config["metricsAddr"] = null;
  if (raw.metrics_addr !== undefined) {
    const text = raw.metrics_addr;
    const parsed = typeof text === "string" ? parseListen(text) : 'must be a "host:port" string';
    if (typeof parsed === "string") {
      errors.push(`metrics_addr ${showValue(text)}: ${parsed}`);
    } else {
      metricsAddr = { ...parsed, addr: text as string };
      for (const c of checked) {
        for (
          const [key, own] of [["listen_addr", c.listen], ["tls_listen_addr", c.tlsListen]] as const
        ) {
          if (own && sameSocket(own, parsed)) {
            errors.push(
              `metrics_addr ${
                JSON.stringify(text)
              } clashes with ${c.label}'s ${key}: same port ${own.port}`,
            );
          }
        }
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  const clusters = checked.map((c) => c.cluster as ClusterConfig);
  return { ok: true, config: { clusters, metricsAddr, warnings } };
}

/**
 * Parses one `servers` entry: `"host:port:weight alias"`, `"host:port:weight"` or
 * `"host:port"` (weight 1). IPv6 hosts go in brackets: `"[::1]:7001:1"`. Returns the spec, or
 * an error text naming the entry.
 */
export function parseServer(entry: string): ServerSpec | string {
  const parsed = parseServerEntry(entry);
  return typeof parsed === "string" ? `server ${JSON.stringify(entry)}: ${parsed}` : parsed.spec;
}

/**
 * Checks one `[[clusters]]` entry, one concern at a time (the order of its errors is the
 * order of the steps), and builds its config when it has no error.
 */
function _checkCluster(
  entry: unknown,
  index: number,
  errors: string[],
  warnings: string[],
): _Checked {
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
  if (!isTable(entry)) {
    errors.push(`${at} must be a table ([[clusters]]), got ${showValue(entry)}`);
    return out;
  }
  const before = errors.length;
  out.name = validName(entry.name);
  if (out.name !== null) out.label = `cluster ${JSON.stringify(out.name)}`;
  const label = out.label;
  const fail: Fail = (message) => errors.push(`${label}: ${message}`);

  checkKnownKeys(entry, fail);
  checkName(entry.name, out.name, fail);
  const listen = checkListenAddr(entry.listen_addr, fail);
  if (listen !== null) {
    out.listen = listen;
    out.listenAddr = entry.listen_addr as string;
  }
  const cacheType = checkCacheType(entry.cache_type, fail);
  const servers = checkServers(entry.servers, cacheType, fail);
  const ints = checkInts(entry, fail);
  checkDatabase(entry.database, cacheType, fail);
  checkModeKeys(entry, cacheType, (message) => warnings.push(`${label}: ${message}`));
  const readFromSlave = checkBool("read_from_slave", entry.read_from_slave, fail);
  const hashTag = checkHashTag(entry.hash_tag, cacheType, fail);
  const proxyProtocol = checkBool("proxy_protocol", entry.proxy_protocol, fail);
  const hash = checkChoice("hash", entry.hash, KEY_HASH_NAMES, "fnv1a_64", cacheType, fail);
  const distribution = checkChoice(
    "distribution",
    entry.distribution,
    DISTRIBUTION_NAMES,
    "ketama",
    cacheType,
    fail,
  );
  const secrets = checkSecrets(entry, cacheType, fail);
  const allowCommands = checkAllowCommands(entry.allow_commands, cacheType, fail);
  const io = checkIo(entry.io, fail);
  checkBackendLogin(secrets, fail);
  const tls = checkTls(entry, listen, fail);
  if (tls.tlsListenHost !== null && tls.tlsListenPort !== null) {
    out.tlsListen = { host: tls.tlsListenHost, port: tls.tlsListenPort };
  }
  // A server at the cluster's own listen address would be Aster itself: each request would
  // come back to it and wait out read_timeout.
  for (const server of servers ?? []) {
    for (const own of [out.listen, out.tlsListen]) {
      if (own && server.port === own.port && _reaches(own.host, server.host)) {
        fail(`server ${server.addr} is this cluster's own listen address: requests would loop`);
      }
    }
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
      blockingConnections: ints.blocking_connections,
      database: ints.database,
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

/** True when a connection to `server` reaches a listener bound to `bound` (same port). */
function _reaches(bound: string, server: string): boolean {
  const norm = (host: string) => {
    const h = host.toLowerCase();
    return h === "localhost" ? "127.0.0.1" : h === "0:0:0:0:0:0:0:0" ? "::" : h;
  };
  const b = norm(bound);
  const s = norm(server);
  const loopback4 = s.startsWith("127.");
  // 0.0.0.0 takes IPv4 only; "::" both (Linux's default dual stack).
  return b === s || (b === "0.0.0.0" && loopback4) || (b === "::" && (loopback4 || s === "::1"));
}

function _checkListenClashes(checked: _Checked[], errors: string[]): void {
  for (let b = 0; b < checked.length; b++) {
    const later = checked[b];
    if (!later.listen) continue;
    for (let a = 0; a < b; a++) {
      const earlier = checked[a];
      if (!earlier.listen || !sameSocket(earlier.listen, later.listen)) continue;
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
        if (other && sameSocket(a.tlsListen, other) && (other === b.listen || a.index > b.index)) {
          errors.push(
            `${a.label}: tls_listen_addr port ${a.tlsListen.port} clashes with ${b.label}`,
          );
        }
      }
    }
  }
}
