/**
 * IPv6 literals as RFC 4291 writes them: eight groups of 1-4 hex digits, one `::` for a run
 * of zero groups, the last 32 bits optionally a dotted quad. No zone index (`%eth0`).
 */
import { ipv4Octets } from "./ipv4.ts";

const GROUP = /^[0-9A-Fa-f]{1,4}$/;

/** True for a valid IPv6 literal (without brackets). */
export function isIpv6(text: string): boolean {
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = (part: string): string[] | null => (part === "" ? [] : part.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === null || tail === null) return false;
  const all = [...head, ...tail];
  let count = all.length;
  // A dotted quad may end the address, standing for two groups.
  const last = all.at(-1);
  if (last !== undefined && last.includes(".")) {
    if (ipv4Octets(last) === null) return false;
    all.pop();
    count++;
  }
  if (!all.every((group) => GROUP.test(group))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}
