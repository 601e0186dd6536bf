/** Host and port parsing for `listen_addr`, `servers` and `metrics_addr`. Pure. */
import { isIpv6 } from "../net/ipv6.ts";
import { malformedIpv4 } from "../net/ipv4.ts";
import type { ServerSpec } from "./config_types.ts";
import { hasControl } from "./config_words.ts";

/** Longest alias, bytes: twemproxy hashes "name-N" from a fixed buffer. */
const MAX_ALIAS_BYTES = 64;
/** Largest server weight. */
export const MAX_WEIGHT = 1_000_000;

/** A parsed "host:port" (host without brackets for IPv6). */
export interface HostPort {
  host: string;
  port: number;
}

/** True when two listen addresses would bind the same socket (a wildcard takes every host). */
export function sameSocket(x: HostPort, y: HostPort): boolean {
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

/** Parses "host:port" or "[v6]:port", or says what is wrong. */
export function parseListen(text: string): HostPort | string {
  const parts = _splitHost(text);
  if (typeof parts === "string") return parts;
  if (parts.rest.length !== 1) {
    return `expected "host:port" (IPv6 as "[::1]:port")`;
  }
  const port = _parsePort(parts.rest[0]);
  if (typeof port === "string") return port;
  return { host: parts.host, port };
}

/** Parses "host:port:weight alias" (weight and alias optional), or says what is wrong. */
export function parseServerEntry(entry: string): { spec: ServerSpec; weighted: boolean } | string {
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
  if (alias !== null && hasControl(alias)) return `alias must not contain control characters`;
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
  // Forms other proxies or clients take, named so the fix is plain.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return `a URL is no address here: write "host:port" (no scheme, no credentials)`;
  }
  if (text.startsWith("/")) return `unix sockets are not supported: write "host:port"`;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return `missing "]" after the IPv6 address`;
    const host = text.slice(1, close);
    if (host.includes("%")) {
      return `${JSON.stringify(host)}: IPv6 zone indexes ("%eth0") are not supported`;
    }
    if (!isIpv6(host)) return `${JSON.stringify(host)} is not an IPv6 address`;
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
