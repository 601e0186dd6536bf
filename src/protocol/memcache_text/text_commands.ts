/**
 * The memcached text commands the decoder knows, each with its request shape (how the
 * tokens after the name are read), and the name lookup by bytes.
 */
import { ascii, bytesAre } from "../bytes.ts";

/** Command names the decoder recognizes (memcached's are lower case and case-sensitive). */
export type MemcacheCommand =
  | "get"
  | "gets"
  | "gat"
  | "gats"
  | "set"
  | "add"
  | "replace"
  | "append"
  | "prepend"
  | "cas"
  | "delete"
  | "incr"
  | "decr"
  | "touch"
  | "mg"
  | "ms"
  | "md"
  | "ma"
  | "mn"
  | "me"
  | "version"
  | "quit"
  | "verbosity"
  | "flush_all"
  | "stats"
  | "shutdown"
  | "cache_memlimit"
  | "slabs"
  | "lru"
  | "lru_crawler"
  | "watch";

// Request shapes: how the tokens after the name are read.
export const STORAGE = 0; // set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply]
export const CAS = 1; // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
export const RETRIEVAL = 2; // get/gets <key>+
export const GAT = 3; // gat/gats <exptime> <key>+
export const DELETE = 4; // delete <key> [0] [noreply]
export const ARITHMETIC = 5; // incr/decr <key> <delta> [noreply]
export const TOUCH = 6; // touch <key> <exptime> [noreply]
export const META = 7; // mg/md/ma/me <key> <flag>*
export const META_SET = 8; // ms <key> <datalen> <flag>*
export const META_NOOP = 9; // mn
export const ADMIN = 10; // version, quit, stats ...: tokens kept as args
export const ADMIN_NOREPLY = 11; // flush_all, verbosity: args, optional trailing noreply

/** A command the decoder knows: its name, as bytes, and its shape. */
export interface CommandEntry {
  name: MemcacheCommand;
  word: Uint8Array;
  shape: number;
}

const _SHAPES: [MemcacheCommand, number][] = [
  ["get", RETRIEVAL],
  ["gets", RETRIEVAL],
  ["gat", GAT],
  ["gats", GAT],
  ["set", STORAGE],
  ["add", STORAGE],
  ["replace", STORAGE],
  ["append", STORAGE],
  ["prepend", STORAGE],
  ["cas", CAS],
  ["delete", DELETE],
  ["incr", ARITHMETIC],
  ["decr", ARITHMETIC],
  ["touch", TOUCH],
  ["mg", META],
  ["ms", META_SET],
  ["md", META],
  ["ma", META],
  ["mn", META_NOOP],
  ["me", META],
  ["version", ADMIN],
  ["quit", ADMIN],
  ["verbosity", ADMIN_NOREPLY],
  ["flush_all", ADMIN_NOREPLY],
  ["stats", ADMIN],
  ["shutdown", ADMIN],
  ["cache_memlimit", ADMIN],
  ["slabs", ADMIN],
  ["lru", ADMIN],
  ["lru_crawler", ADMIN],
  ["watch", ADMIN],
];

/** Other names memcached still reads as a command: `bget`, an old alias of `get`. */
const _ALIASES: [string, MemcacheCommand][] = [["bget", "get"]];

/** Name lookup without decoding: candidates keyed by length and first byte, compared as bytes. */
const _entries = new Map<number, CommandEntry[]>();
/** Each command name as bytes. */
export const commandWords = new Map<MemcacheCommand, Uint8Array>();
for (const [name, shape] of _SHAPES) commandWords.set(name, _addEntry(name, name, shape));
for (const [alias, name] of _ALIASES) _addEntry(alias, name, _SHAPES.find(([n]) => n === name)![1]);

function _addEntry(text: string, name: MemcacheCommand, shape: number): Uint8Array {
  const word = ascii(text);
  const slot = word.length * 256 + word[0];
  const list = _entries.get(slot) ?? [];
  list.push({ name, word, shape });
  _entries.set(slot, list);
  return word;
}

/** The command whose name is `buf[from, to)`, or null. */
export function lookupCommand(buf: Uint8Array, from: number, to: number): CommandEntry | null {
  const list = _entries.get((to - from) * 256 + buf[from]);
  if (list === undefined) return null;
  for (const entry of list) {
    if (bytesAre(buf, from, to, entry.word)) return entry;
  }
  return null;
}
