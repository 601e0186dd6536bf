/**
 * The PROXY protocol header (HAProxy's `send-proxy` v1 text and `send-proxy-v2` binary) a load
 * balancer sends before the client's own bytes, so the proxy behind it learns the client's real
 * address. Pure: parses bytes, opens nothing. Spec: haproxy.org/download/2.6/doc/proxy-protocol.txt
 */
import type { ProxyConn } from "../io/sockets.ts";

/** The client address a header carried, as a printable `host:port` (`[v6]:port`). */
export interface ProxySource {
  family: "tcp4" | "tcp6";
  address: string;
  port: number;
}

/** What the bytes read so far hold. */
export type ProxyParse =
  /** Too few bytes to decide: read more and call again with all of them. */
  | { kind: "more" }
  /** Not a valid header: the client is closed. */
  | { kind: "error"; message: string }
  /**
   * A whole header of `length` bytes (the client's bytes follow it). `source` is null when the
   * header names no client (v1 UNKNOWN, v2 LOCAL such as a health check, or a family other
   * than TCP over IPv4/IPv6): the connection's own address stands.
   */
  | { kind: "header"; length: number; source: ProxySource | null };

/** The longest v1 header, CRLF included (spec, section 2.1). */
export const V1_MAX = 107;
/** v2's 12-byte signature. */
const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
const V1_PREFIX = new TextEncoder().encode("PROXY ");
/** v2: signature, version/command, family, 2-byte length. */
const V2_FIXED = 16;
/** v2 address block bounds we accept: a header is never this long in practice. */
const V2_MAX_LENGTH = 4096;

/** True when `buf[0, n)` agrees with `prefix` on every byte both have. */
function _agrees(buf: Uint8Array, n: number, prefix: Uint8Array): boolean {
  const m = Math.min(n, prefix.length);
  for (let i = 0; i < m; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

/** Parses the header at the start of `buf[0, n)`. */
export function parseProxyHeader(buf: Uint8Array, n = buf.length): ProxyParse {
  if (n === 0) return { kind: "more" };
  if (buf[0] === 0x0d) {
    if (!_agrees(buf, n, V2_SIGNATURE)) return { kind: "error", message: "bad v2 signature" };
    return _parseV2(buf, n);
  }
  if (!_agrees(buf, n, V1_PREFIX)) {
    return { kind: "error", message: "no PROXY protocol header" };
  }
  return _parseV1(buf, n);
}

function _parseV1(buf: Uint8Array, n: number): ProxyParse {
  let end = -1;
  const limit = Math.min(n, V1_MAX);
  for (let i = 1; i < limit; i++) {
    if (buf[i] === 0x0a) {
      if (buf[i - 1] !== 0x0d) return { kind: "error", message: "v1 line must end in CRLF" };
      end = i + 1;
      break;
    }
  }
  if (end < 0) {
    return n >= V1_MAX
      ? { kind: "error", message: `v1 header longer than ${V1_MAX} bytes` }
      : { kind: "more" };
  }
  const line = new TextDecoder().decode(buf.subarray(0, end - 2));
  if (!/^[\x20-\x7e]*$/.test(line)) return { kind: "error", message: "v1 header not ASCII" };
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "header", length: end, source: null };
  if (parts.length !== 6) return { kind: "error", message: "v1 header needs 6 fields" };
  const [, proto, src, dst, srcPort, dstPort] = parts;
  if (proto !== "TCP4" && proto !== "TCP6") {
    return { kind: "error", message: `v1 protocol must be TCP4, TCP6 or UNKNOWN` };
  }
  const valid = proto === "TCP4" ? _ipv4Text : _ipv6Text;
  if (valid(src) === null || valid(dst) === null) {
    return { kind: "error", message: `v1 ${proto} address invalid` };
  }
  const port = _portText(srcPort);
  if (port === null || _portText(dstPort) === null) {
    return { kind: "error", message: "v1 port invalid" };
  }
  return {
    kind: "header",
    length: end,
    source: proto === "TCP4"
      ? { family: "tcp4", address: src, port }
      : { family: "tcp6", address: _ipv6Text(src)!, port },
  };
}

function _parseV2(buf: Uint8Array, n: number): ProxyParse {
  if (n < V2_FIXED) return { kind: "more" };
  const versionCommand = buf[12];
  if (versionCommand >> 4 !== 2) return { kind: "error", message: "v2 version must be 2" };
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: "error", message: `v2 command ${command} unknown` };
  const family = buf[13];
  const length = (buf[14] << 8) | buf[15];
  if (length > V2_MAX_LENGTH) return { kind: "error", message: `v2 length ${length} too long` };
  const total = V2_FIXED + length;
  if (n < total) return { kind: "more" };
  // LOCAL: the balancer's own connection (health checks); addresses are ignored.
  if (command === 0) return { kind: "header", length: total, source: null };
  const body = buf.subarray(V2_FIXED, total);
  if (family === 0x11) { // TCP over IPv4
    if (length < 12) return { kind: "error", message: "v2 TCP4 address block too short" };
    const address = `${body[0]}.${body[1]}.${body[2]}.${body[3]}`;
    return {
      kind: "header",
      length: total,
      source: { family: "tcp4", address, port: (body[8] << 8) | body[9] },
    };
  }
  if (family === 0x21) { // TCP over IPv6
    if (length < 36) return { kind: "error", message: "v2 TCP6 address block too short" };
    const groups: number[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((body[i] << 8) | body[i + 1]);
    return {
      kind: "header",
      length: total,
      source: { family: "tcp6", address: _formatIpv6(groups), port: (body[32] << 8) | body[33] },
    };
  }
  // UNSPEC, UDP or UNIX: a valid header that names no TCP client.
  return { kind: "header", length: total, source: null };
}

/** `a.b.c.d` with each part 0..255 in decimal without leading zeros, else null. */
function _ipv4Text(text: string): string | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
  }
  return text;
}

/** An IPv6 literal in canonical (RFC 5952) form, or null when it is not one. */
function _ipv6Text(text: string): string | null {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text)) return null;
  let head = text;
  const tail: number[] = [];
  const v4 = text.lastIndexOf(":");
  if (text.includes(".")) {
    const dotted = _ipv4Text(text.slice(v4 + 1));
    if (dotted === null) return null;
    const b = dotted.split(".").map(Number);
    tail.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
    head = text.slice(0, v4 + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string) => s === "" ? [] : s.split(":");
  const left = parse(halves[0]);
  const right = halves.length === 2 ? parse(halves[1]) : [];
  const groups: number[] = [];
  for (const g of [...left, ...right]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
  }
  const fill = 8 - left.length - right.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  for (const g of left) groups.push(parseInt(g, 16));
  for (let i = 0; i < fill; i++) groups.push(0);
  for (const g of right) groups.push(parseInt(g, 16));
  groups.push(...tail);
  return _formatIpv6(groups);
}

/** RFC 5952: lower-case hex, the longest run (2+) of zero groups as `::`. */
function _formatIpv6(groups: number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(":");
  return `${hex.slice(0, bestAt).join(":")}::${hex.slice(bestAt + bestLen).join(":")}`;
}

/** A decimal port 0..65535 without leading zeros, else null. */
function _portText(text: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatPeer(source: { address: string; port: number }): string {
  return source.address.includes(":")
    ? `[${source.address}]:${source.port}`
    : `${source.address}:${source.port}`;
}

/** The socket's peer as `host:port` when the socket knows it (Deno's do), else "". */
export function socketPeer(conn: ProxyConn): string {
  const addr = (conn as { remoteAddr?: { transport: string; hostname: string; port: number } })
    .remoteAddr;
  return addr?.transport === "tcp" ? formatPeer({ address: addr.hostname, port: addr.port }) : "";
}
