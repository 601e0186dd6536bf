/**
 * Bun's errors carry Node-style codes (`err.code`: ENOENT, EADDRINUSE, ...); this maps
 * Aster's error kinds onto them, and words socket errors as the OS does (as Deno's read:
 * "Connection refused (os error 111)"), since logs and replies quote them.
 */
import type { ErrorKind } from "../runtime.ts";

const CODES: Record<ErrorKind, readonly string[]> = {
  NotFound: ["ENOENT"],
  IsADirectory: ["EISDIR"],
  PermissionDenied: ["EACCES", "EPERM"],
  NotCapable: [],
  InvalidData: ["ERR_INVALID_ARG_VALUE", "ERR_ENCODING_INVALID_ENCODED_DATA"],
  BadResource: ["EBADF"],
  Interrupted: ["EINTR"],
  AddrInUse: ["EADDRINUSE"],
};

/** True when `err` carries one of the codes of `kind`. */
export function isBunErrorKind(err: unknown, kind: ErrorKind): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && CODES[kind].includes(code);
}

/** An error with a Node-style code. */
export class CodedError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** A socket used after it was closed (Deno's `BadResource`). */
export function badResource(what = "the socket is closed"): CodedError {
  return new CodedError(what, "EBADF");
}

/** The OS's words and Linux errno for the socket errors a proxy meets. */
const OS_WORDS: Record<string, [string, number]> = {
  ECONNREFUSED: ["Connection refused", 111],
  ECONNRESET: ["Connection reset by peer", 104],
  EPIPE: ["Broken pipe", 32],
  ETIMEDOUT: ["Connection timed out", 110],
  EHOSTUNREACH: ["No route to host", 113],
  ENETUNREACH: ["Network is unreachable", 101],
  EADDRINUSE: ["Address already in use", 98],
  EADDRNOTAVAIL: ["Cannot assign requested address", 99],
  EACCES: ["Permission denied", 13],
};

/** `err` reworded as the OS words it, keeping its code ("Connection refused (os error 111)"). */
export function osError(err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in OS_WORDS) {
    const [words, errno] = OS_WORDS[code];
    return new CodedError(`${words} (os error ${errno})`, code);
  }
  return err instanceof Error ? err : new Error(String(err));
}
