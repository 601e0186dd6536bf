/**
 * `aster-proxy import-twemproxy`: a parsed nutcracker.yml (twemproxy 0.5) to the equivalent
 * Aster TOML. Pure: no I/O; the caller reads and parses the YAML.
 *
 * Each pool becomes one `[[clusters]]` table. Placement carries over exactly (servers with
 * their weights and names, hash, distribution, hash_tag); what Aster does differently or not
 * at all is reported in `notes`, and pools that cannot be served at all in `errors`. Every
 * table printed passes Aster's own validation.
 */

import { isIpv6 } from "../net/ipv6.ts";
import { validate } from "./schema.ts";

/** What {@link importTwemproxy} makes of a nutcracker.yml. */
export interface TwemproxyImport {
  /** Aster TOML with one `[[clusters]]` per converted pool; "" when none converted. */
  toml: string;
  /** Settings with no exact equivalent, and how they were handled (for stderr). */
  notes: string[];
  /** Pools left out, each with the reason (for stderr). */
  errors: string[];
}

/** The pool keys nutcracker 0.5 knows (nc_conf.c `conf_commands`). */
/**
 * Shortest ping_interval an imported server_retry_timeout becomes: nutcracker's 0 retries at
 * the next request, which as a ping interval would be a ping per node every millisecond.
 */
const MIN_PING_INTERVAL_MS = 100;

const POOL_KEYS = [
  "listen",
  "hash",
  "hash_tag",
  "distribution",
  "timeout",
  "backlog",
  "client_connections",
  "redis",
  "tcpkeepalive",
  "reuseport",
  "redis_auth",
  "redis_db",
  "preconnect",
  "auto_eject_hosts",
  "server_connections",
  "server_retry_timeout",
  "server_failure_limit",
  "servers",
];

/** Largest Aster timeout and interval, ms (schema.ts). */
const MAX_MS = 3_600_000;
/** Most backend connections per node Aster allows (`node_connections`). */
const MAX_NODE_CONNECTIONS = 64;
/** Most clients Aster allows per cluster (`max_clients`). */
const MAX_CLIENTS = 1_000_000;
/** nutcracker's defaults for the ejection keys (nc_conf.h). */
const DEFAULT_FAILURE_LIMIT = 2;
const DEFAULT_RETRY_TIMEOUT_MS = 30_000;
/** Port whose servers twemproxy names by host alone (ketama.ts has the same rule). */
const KETAMA_DEFAULT_PORT = 11211;

type Value = string | number | boolean | string[];

/** Converts a parsed nutcracker.yml (a map of pool name to pool settings). */
export function importTwemproxy(doc: unknown): TwemproxyImport {
  const notes: string[] = [];
  const errors: string[] = [];
  if (!_isMap(doc) || Object.keys(doc).length === 0) {
    errors.push("nutcracker.yml must map pool names to pool settings, e.g. `alpha: {listen: ...}`");
    return { toml: "", notes, errors };
  }
  const tables: { pool: string; entries: [string, Value][] }[] = [];
  for (const [pool, settings] of Object.entries(doc)) {
    const converted = _convertPool(pool, settings, notes);
    if (typeof converted === "string") {
      errors.push(`pool ${JSON.stringify(pool)}: ${converted}; not converted`);
      continue;
    }
    // Aster's own validation is the judge: what it refuses is not printed.
    const checked = validate({ clusters: [Object.fromEntries(converted)] });
    if (!checked.ok) {
      const why = checked.errors.map((e) => e.replace(/^cluster "[^"]*": /, "")).join("; ");
      errors.push(`pool ${JSON.stringify(pool)}: ${why}; not converted`);
      continue;
    }
    tables.push({ pool, entries: converted });
  }
  // Pools that only clash with each other (the same listen port) are refused by nutcracker
  // too: the first one stays, a later one that clashes with those kept is not converted.
  const kept: typeof tables = [];
  for (const table of tables) {
    const together = validate({
      clusters: [...kept, table].map((t) => Object.fromEntries(t.entries)),
    });
    if (together.ok) kept.push(table);
    else {
      const why = together.errors.map((e) => e.replace(/^cluster "[^"]*": /, "")).join("; ");
      errors.push(`pool ${JSON.stringify(table.pool)}: ${why}; not converted`);
    }
  }
  if (kept.length === 0) return { toml: "", notes, errors };
  const parts = ["# Converted from twemproxy (nutcracker.yml) by aster-proxy import-twemproxy."];
  for (const table of kept) parts.push(_renderTable(table.pool, table.entries));
  return { toml: parts.join("\n\n") + "\n", notes, errors };
}

/** One pool to Aster keys in print order, or why it cannot be converted. */
function _convertPool(
  pool: string,
  settings: unknown,
  notes: string[],
): [string, Value][] | string {
  if (!_isMap(settings)) return "settings must be a map of keys (listen, servers, ...)";
  const note = (text: string) => notes.push(`pool ${JSON.stringify(pool)}: ${text}`);
  const out: [string, Value][] = [["name", pool]];

  for (const key of Object.keys(settings)) {
    if (!POOL_KEYS.includes(key)) note(`unknown key "${key}" (nutcracker 0.5 refuses it): ignored`);
  }

  const listen = _text(settings.listen);
  if (listen === null) return `"listen" is missing or not a string`;
  if (listen.startsWith("/")) return `listens on a unix socket (${listen}); Aster listens on TCP`;
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon);
  // A host with a colon must be IPv6 ("127.0.0.1:22125:1" is a weight nutcracker refuses).
  if (colon <= 0 || (host.includes(":") && !isIpv6(host.replace(/^\[(.*)\]$/, "$1")))) {
    return `listen ${JSON.stringify(listen)} is not "host:port"`;
  }
  out.push(["listen_addr", `${_bracket(listen.slice(0, colon))}:${listen.slice(colon + 1)}`]);

  const redis = _bool(settings.redis, "redis");
  if (typeof redis === "string") return redis;
  out.push(["cache_type", redis ? "redis" : "memcache"]);

  // Printed even when unset: they decide where every key lives.
  for (const [key, fallback] of [["hash", "fnv1a_64"], ["distribution", "ketama"]]) {
    const value = settings[key] ?? fallback;
    const text = _text(value);
    if (text === null) return `${key} must be a string, got ${JSON.stringify(value)}`;
    out.push([key, text]);
  }
  if (settings.hash_tag !== undefined) {
    const tag = _text(settings.hash_tag);
    if (tag === null) return `hash_tag must be a string`;
    out.push(["hash_tag", tag]);
  }

  const servers = _servers(settings.servers);
  if (typeof servers === "string") return servers;
  out.push(["servers", servers]);

  const num = (key: string): number | null | string => {
    const value = settings[key];
    if (value === undefined) return null;
    const text = typeof value === "number" ? String(value) : _text(value);
    // nutcracker takes non-negative decimal integers only (nc_atoi).
    if (text === null || !/^\d{1,10}$/.test(text)) return `${key} must be a number >= 0`;
    return Number(text);
  };
  const numbers: Record<string, number | null> = {};
  for (
    const key of [
      "timeout",
      "backlog",
      "client_connections",
      "redis_db",
      "server_connections",
      "server_retry_timeout",
      "server_failure_limit",
    ]
  ) {
    const n = num(key);
    if (typeof n === "string") return n;
    numbers[key] = n;
  }

  // timeout: how long nutcracker waits to connect to a server or for its reply.
  const timeout = numbers.timeout;
  if (timeout === null || timeout === 0) {
    note(
      "nutcracker waits for servers forever without a timeout; Aster always times out: " +
        "read_timeout and dial_timeout keep their defaults (2000 ms, 1000 ms)",
    );
  } else {
    const ms = Math.min(timeout, MAX_MS);
    if (ms !== timeout) note(`timeout ${timeout} ms is above Aster's longest: ${MAX_MS} ms`);
    out.push(["read_timeout", ms], ["dial_timeout", ms]);
  }

  const autoEject = _bool(settings.auto_eject_hosts, "auto_eject_hosts");
  if (typeof autoEject === "string") return autoEject;
  if (autoEject) {
    let limit = numbers.server_failure_limit ?? DEFAULT_FAILURE_LIMIT;
    if (limit === 0) {
      note("server_failure_limit 0 becomes ping_fail_limit 1 (0 turns Aster's ejection off)");
      limit = 1;
    }
    const asked = numbers.server_retry_timeout ?? DEFAULT_RETRY_TIMEOUT_MS;
    const retry = Math.max(MIN_PING_INTERVAL_MS, Math.min(asked, MAX_MS));
    if (retry !== asked) {
      note(
        `server_retry_timeout ${asked} becomes ping_interval ${retry} (a ping per node that often)`,
      );
    }
    out.push(["ping_fail_limit", limit], ["ping_interval", retry]);
    note(
      `auto_eject_hosts: nutcracker ejects a server after ${limit} failed requests and retries ` +
        `it after server_retry_timeout; Aster pings every node every ping_interval (${retry} ms), ` +
        `ejects it after ping_fail_limit (${limit}) failed pings in a row and takes it back ` +
        `at the first good one`,
    );
  } else if (numbers.server_failure_limit !== null || numbers.server_retry_timeout !== null) {
    note(
      "server_failure_limit and server_retry_timeout do nothing without auto_eject_hosts: ignored",
    );
  }

  const redisAuth = settings.redis_auth;
  if (redisAuth !== undefined) {
    const password = _text(redisAuth);
    if (password === null || password === "") return "redis_auth must be a non-empty string";
    if (!redis) return "redis_auth is only valid for a redis pool (nutcracker refuses it)";
    // nutcracker both requires AUTH from clients and sends it to every server.
    out.push(["password", password], ["backend_password", password]);
  }
  if (numbers.redis_db !== null && numbers.redis_db !== 0) {
    if (redis) out.push(["database", numbers.redis_db]);
    else note(`redis_db ${numbers.redis_db} is for redis pools: ignored`);
  }

  const connections = numbers.server_connections;
  if (connections === 0) return "server_connections cannot be 0 (nutcracker refuses it)";
  if (connections !== null && connections > 1) {
    const n = Math.min(connections, MAX_NODE_CONNECTIONS);
    if (n !== connections) note(`server_connections ${connections} is above Aster's ${n}`);
    out.push(["node_connections", n]);
    note("node_connections counts per worker thread; nutcracker's server_connections per process");
  }
  const clients = numbers.client_connections;
  if (clients !== null && clients > 0) {
    const n = Math.min(clients, MAX_CLIENTS);
    out.push(["max_clients", n]);
    note(
      `client_connections ${clients} becomes max_clients ${n}; nutcracker 0.5.0 ignores ` +
        `client_connections (it always allows any number), Aster enforces max_clients`,
    );
  } else {
    note("client_connections is unlimited in nutcracker; Aster's max_clients defaults to 10000");
  }

  const backlog = numbers.backlog;
  if (backlog !== null) {
    note(`backlog ${backlog} has no equivalent (the runtime's backlog is used)`);
  }
  for (const key of ["preconnect", "tcpkeepalive", "reuseport"]) {
    const value = _bool(settings[key], key);
    if (typeof value === "string") return value;
    if (value) note(`${key}: true has no equivalent in Aster: ignored`);
  }
  return out;
}

/** nutcracker `servers:` entries to Aster ones, keeping every server's hashed name. */
function _servers(value: unknown): string[] | string {
  if (!Array.isArray(value) || value.length === 0) return `"servers" must be a non-empty list`;
  const out: string[] = [];
  for (const item of value) {
    const entry = _text(item);
    if (entry === null) return `servers: ${JSON.stringify(item)} is not a string`;
    if (entry.startsWith("/")) return `server ${entry} is a unix socket; Aster connects over TCP`;
    // "host:port:weight [name]", parsed from the end as nutcracker does (conf_add_server).
    const space = entry.lastIndexOf(" ");
    const name = space < 0 ? null : entry.slice(space + 1);
    const address = space < 0 ? entry : entry.slice(0, space);
    const weightAt = address.lastIndexOf(":");
    const portAt = weightAt <= 0 ? -1 : address.lastIndexOf(":", weightAt - 1);
    if (portAt <= 0) return `server ${JSON.stringify(entry)} is not "host:port:weight [name]"`;
    const host = address.slice(0, portAt);
    const port = address.slice(portAt + 1, weightAt);
    const weight = address.slice(weightAt + 1);
    // nutcracker names an unnamed server "host:port", or "host" on port 11211: Aster derives
    // the same name from an unbracketed host, else the name is kept as an explicit alias.
    const twemproxyName = name ??
      (Number(port) === KETAMA_DEFAULT_PORT ? host : `${host}:${port}`);
    const bracketed = _bracket(host);
    // Aster keeps IPv6 hosts unbracketed (schema.ts) and names servers from that.
    const asterHost = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    const asterName = Number(port) === KETAMA_DEFAULT_PORT ? asterHost : `${asterHost}:${port}`;
    const alias = name ?? (asterName === twemproxyName ? null : twemproxyName);
    out.push(`${bracketed}:${port}:${weight}${alias === null ? "" : ` ${alias}`}`);
  }
  return out;
}

/** An IPv6 host in brackets, as Aster's addresses write it. */
function _bracket(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** A YAML scalar as nutcracker reads it (libyaml hands it every scalar as text). */
function _text(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return null;
}

/** A nutcracker boolean: exactly true or false; unset is false (its defaults). */
function _bool(value: unknown, key: string): boolean | string {
  if (value === undefined) return false;
  const text = _text(value);
  if (text === "true") return true;
  if (text === "false") return false;
  return `${key} must be true or false (nutcracker refuses ${JSON.stringify(value)})`;
}

function _isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function _renderTable(pool: string, entries: [string, Value][]): string {
  const lines = ["[[clusters]]", `# twemproxy pool ${JSON.stringify(pool)}`];
  for (const [key, value] of entries) lines.push(`${key} = ${_renderValue(value)}`);
  return lines.join("\n");
}

/** A TOML value. JSON strings are TOML basic strings (same escapes). */
function _renderValue(value: Value): string {
  if (Array.isArray(value)) {
    return `[\n${value.map((item) => `  ${JSON.stringify(item)},\n`).join("")}]`;
  }
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}
