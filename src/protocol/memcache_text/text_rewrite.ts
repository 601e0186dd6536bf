/** Requests rewritten on their way to memcached: a multi-get's parts, a noreply dropped. */
import { ascii, SPACE } from "../bytes.ts";
import { commandWords, type MemcacheCommand } from "./text_commands.ts";
import type { MemcacheTextRequest } from "./text_request.ts";

const CRLF = ascii("\r\n");

/** What buildRetrieval() needs of a request: its command and, for gat/gats, the exptime. */
export interface RetrievalHead {
  command: MemcacheCommand;
  exptime: Uint8Array | null;
}

/**
 * Encodes `<command> [<exptime>] <key>+\r\n` for a subset of a multi-key retrieval's keys
 * (a decoded get/gets/gat/gats request is itself a valid `head`).
 */
export function buildRetrieval(head: RetrievalHead, keys: Uint8Array[]): Uint8Array {
  const word = commandWords.get(head.command);
  const gat = head.command === "gat" || head.command === "gats";
  if (word === undefined || (!gat && head.command !== "get" && head.command !== "gets")) {
    throw new TypeError(`not a retrieval command: ${head.command}`);
  }
  if (keys.length === 0) throw new TypeError("a retrieval needs at least one key");
  if (gat && head.exptime === null) throw new TypeError(`${head.command} needs an exptime`);
  let size = word.length + CRLF.length;
  if (gat) size += 1 + head.exptime!.length;
  for (const key of keys) size += 1 + key.length;
  const out = new Uint8Array(size);
  out.set(word, 0);
  let at = word.length;
  if (gat) {
    out[at++] = SPACE;
    out.set(head.exptime!, at);
    at += head.exptime!.length;
  }
  for (const key of keys) {
    out[at++] = SPACE;
    out.set(key, at);
    at += key.length;
  }
  out.set(CRLF, at);
  return out;
}

/**
 * Copies a request without its noreply token / q flag, so a proxy can ask the backend for
 * the reply and drop it itself. `raw` is the request's bytes (`size` from its start);
 * returns `raw` itself when there is nothing to remove.
 */
export function withoutNoreply(raw: Uint8Array, req: MemcacheTextRequest): Uint8Array {
  if (req.noreplyAt < 0) return raw;
  const out = new Uint8Array(raw.length - req.noreplyLength);
  out.set(raw.subarray(0, req.noreplyAt), 0);
  out.set(raw.subarray(req.noreplyAt + req.noreplyLength), req.noreplyAt);
  return out;
}
