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
  const groups = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  // A dotted quad may end the address only (the tail's last group, or the head's without
  // "::"), standing for two groups.
  const ending = halves.length === 2 ? tail : head;
  let count = head.length + tail.length;
  if (ending.length > 0 && ending[ending.length - 1].includes(".")) {
    if (ipv4Octets(ending.pop()!) === null) return false;
    count++;
  }
  if (![...head, ...tail].every((group) => GROUP.test(group))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}
