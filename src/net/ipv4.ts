/**
 * IPv4 literals as raw sockets read them: four decimal numbers 0..255 without leading
 * zeros, and nothing else. inet_aton and resolvers also read `010.0.0.1` (octal: 8.0.0.1),
 * `0x7f.0.0.1` or `127.1`; `Number()` reads `010` as 10 and `""` as 0. Pure (no libc), so
 * the config can refuse what the two socket paths would read differently.
 */

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const DOTTED_QUAD = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** The four bytes of a dotted-quad IPv4 literal, or null for anything else. */
export function ipv4Octets(host: string): number[] | null {
  return DOTTED_QUAD.test(host) ? host.split(".").map(Number) : null;
}

/**
 * True when `host` reads as an IPv4 address somewhere (its last label is a number, decimal
 * or `0x` hex, as URL parsers and inet_aton decide) without being a dotted quad: a host
 * name cannot end in a numeric label, so such a host is a mistyped address.
 */
export function malformedIpv4(host: string): boolean {
  const labels = host.split(".");
  const last = labels.at(-1) === "" && labels.length > 1 ? labels.at(-2)! : labels.at(-1)!;
  return /^([0-9]+|0x[0-9a-f]*)$/i.test(last) && ipv4Octets(host) === null;
}
