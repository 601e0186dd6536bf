/**
 * Pub/Sub as RESP has it, without connections: a client's subscriptions and the exact
 * confirmation frames redis-server sends for them, the subscribed-state refusal, the
 * commands a subscription connection sends, and the classification of the frames it gets
 * back (RESP2 arrays `*` and RESP3 pushes `>` alike). The connections are
 * src/proxy/subscriber.ts's.
 */
import { encodeCommand } from "./encoder.ts";
import { bytesAre, concatBytes } from "../bytes.ts";

/** What a name is subscribed as: SUBSCRIBE's channel, PSUBSCRIBE's pattern, SSUBSCRIBE's. */
export const SubKind = { channel: 0, pattern: 1, shard: 2 } as const;
export type SubKindValue = typeof SubKind[keyof typeof SubKind];

const encoder = new TextEncoder();
const SUBSCRIBE_WORDS = ["subscribe", "psubscribe", "ssubscribe"];
const UNSUBSCRIBE_WORDS = ["unsubscribe", "punsubscribe", "sunsubscribe"];
const SUBSCRIBE_COMMANDS = ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"].map((w) => encoder.encode(w));
const UNSUBSCRIBE_COMMANDS = ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"].map((w) =>
  encoder.encode(w)
);

/** A name's bytes as a map key (one char per byte: any bytes, no decoding). */
export function nameKey(name: Uint8Array): string {
  let key = "";
  for (let i = 0; i < name.length; i++) key += String.fromCharCode(name[i]);
  return key;
}

/** The bytes of a map key made by nameKey. */
export function keyBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

/** A change to one client's subscriptions, and the frames that confirm it to the client. */
export interface SubscriptionDelta {
  kind: SubKindValue;
  /** Names newly subscribed (subscribe) or no longer subscribed (unsubscribe), as nameKey keys. */
  changed: string[];
  subscribe: boolean;
  /** The client's confirmation: one frame per name, as redis-server writes them. */
  reply: Uint8Array;
}

/** One client's subscriptions (RESP2 semantics: its counts are redis-server's). */
export class ClientSubscriptions {
  /** Per SubKind: the names, in the order subscribed. */
  readonly sets: readonly [Set<string>, Set<string>, Set<string>] = [
    new Set(),
    new Set(),
    new Set(),
  ];

  /** Every subscription: above 0 the client is in the subscribed state. */
  get total(): number {
    return this.sets[0].size + this.sets[1].size + this.sets[2].size;
  }

  /** The count redis-server reports in a confirmation: channels and patterns, or shard channels. */
  count(kind: SubKindValue): number {
    return kind === SubKind.shard ? this.sets[2].size : this.sets[0].size + this.sets[1].size;
  }

  /**
   * (P|S)SUBSCRIBE `names`: one confirmation per name, also for a name already subscribed;
   * RESP3 push frames when `push`.
   */
  subscribe(kind: SubKindValue, names: readonly Uint8Array[], push = false): SubscriptionDelta {
    const set = this.sets[kind];
    const changed: string[] = [];
    const frames: Uint8Array[] = [];
    for (const name of names) {
      const key = nameKey(name);
      if (!set.has(key)) {
        set.add(key);
        changed.push(key);
      }
      frames.push(confirmation(SUBSCRIBE_WORDS[kind], name, this.count(kind), push));
    }
    return { kind, changed, subscribe: true, reply: concatBytes(frames) };
  }

  /**
   * (P|S)UNSUBSCRIBE `names`, or every name of the kind when none is given (then, with none
   * subscribed, one frame with a nil name).
   */
  unsubscribe(kind: SubKindValue, names: readonly Uint8Array[], push = false): SubscriptionDelta {
    const set = this.sets[kind];
    const changed: string[] = [];
    const frames: Uint8Array[] = [];
    const word = UNSUBSCRIBE_WORDS[kind];
    const all = names.length === 0;
    const targets = all ? [...set].map(keyBytes) : names;
    for (const name of targets) {
      const key = nameKey(name);
      if (set.delete(key)) changed.push(key);
      frames.push(confirmation(word, name, this.count(kind), push));
    }
    if (all && frames.length === 0) frames.push(confirmation(word, null, this.count(kind), push));
    return { kind, changed, subscribe: false, reply: concatBytes(frames) };
  }

  /** RESET: every subscription dropped, no reply of its own. */
  clear(): SubscriptionDelta[] {
    const deltas: SubscriptionDelta[] = [];
    for (const kind of [SubKind.channel, SubKind.pattern, SubKind.shard]) {
      const set = this.sets[kind];
      if (set.size === 0) continue;
      deltas.push({ kind, changed: [...set], subscribe: false, reply: new Uint8Array(0) });
      set.clear();
    }
    return deltas;
  }
}

/**
 * Where Redis publishes a keyspace notification name (each node publishes its own keys'
 * events, and a cluster does not carry them to other nodes): "every" node for a
 * `__keyevent@...` channel and for any pattern starting with `__key`; the key's node for a
 * `__keyspace@<db>__:<key>` channel (its key's bytes); null for any other name.
 */
export function notificationPlacement(
  kind: SubKindValue,
  key: string,
): "every" | Uint8Array | null {
  if (kind === SubKind.shard || !key.startsWith("__key")) return null;
  if (kind === SubKind.pattern || key.startsWith("__keyevent@")) return "every";
  if (!key.startsWith("__keyspace@")) return null;
  const at = key.indexOf("__:", "__keyspace@".length);
  return at < 0 ? null : keyBytes(key.slice(at + 3));
}

/**
 * `*3 $<word> $<name>|nil :<count>`, a confirmation frame as redis-server writes it; as a
 * RESP3 push (`>3`, nil `_`) when `push`.
 */
export function confirmation(
  word: string,
  name: Uint8Array | null,
  count: number,
  push = false,
): Uint8Array {
  const nil = push ? "_" : "$-1";
  const head = encoder.encode(
    `${push ? ">" : "*"}3\r\n$${word.length}\r\n${word}\r\n${
      name === null ? nil : `$${name.length}`
    }\r\n`,
  );
  const tail = encoder.encode(`${name === null ? "" : "\r\n"}:${count}\r\n`);
  return concatBytes(name === null ? [head, tail] : [head, name, tail]);
}

/** PING in the subscribed state: `*2 $4 pong $<arg>`, the argument or empty. */
export function subscribedPong(arg: Uint8Array | undefined): Uint8Array {
  const value = arg ?? new Uint8Array(0);
  return concatBytes([
    encoder.encode(`*2\r\n$4\r\npong\r\n$${value.length}\r\n`),
    value,
    encoder.encode("\r\n"),
  ]);
}

/** Commands that name a subcommand in redis-server's errors (`pubsub|numpat`). */
const CONTAINERS = new Set([
  "acl",
  "client",
  "cluster",
  "command",
  "config",
  "function",
  "latency",
  "memory",
  "module",
  "object",
  "pubsub",
  "script",
  "slowlog",
  "xgroup",
  "xinfo",
]);

/** redis-server's refusal (its text) of any other command in the RESP2 subscribed state. */
export function subscribedError(name: string, argv: readonly Uint8Array[]): string {
  let full = name;
  if (CONTAINERS.has(name) && argv.length > 1) {
    full += "|" + new TextDecoder().decode(argv[1]).toLowerCase();
  }
  return `ERR Can't execute '${full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / ` +
    "RESET are allowed in this context";
}

/** The command that (un)subscribes `names` of `kind` on a subscription connection. */
export function subscriptionCommand(
  kind: SubKindValue,
  subscribe: boolean,
  names: readonly Uint8Array[],
): Uint8Array {
  return encodeCommand([(subscribe ? SUBSCRIBE_COMMANDS : UNSUBSCRIBE_COMMANDS)[kind], ...names]);
}

/** Sent after (un)subscriptions: its pong says the backend has handled everything before it. */
export const MARKER_PING: Uint8Array = encodeCommand([encoder.encode("PING")]);

/** What a frame on a subscription connection is. */
export const PushKind = {
  /** message / pmessage / smessage: for the client. */
  message: 0,
  /** The reply to MARKER_PING. */
  pong: 1,
  /** A (p|s)(un)subscribe confirmation (Aster's own requests: not the client's). */
  confirmation: 2,
  /** An error reply (MOVED for a shard channel on the wrong node...). */
  error: 3,
  /** Anything else. */
  other: 4,
} as const;
export type PushKindValue = typeof PushKind[keyof typeof PushKind];

const MESSAGE_WORDS = ["message", "pmessage", "smessage"].map((w) => encoder.encode(w));
/** What pmessage and smessage share after their first letter. */
const MESSAGE_TAIL = encoder.encode("message");
const CONFIRM_WORDS = [...SUBSCRIBE_WORDS, ...UNSUBSCRIBE_WORDS].map((w) => encoder.encode(w));
const PONG = encoder.encode("pong");
const PONG_SIMPLE = encoder.encode("+PONG\r\n");

/**
 * The bounds of element `index` of an array or push frame of bulk strings, into `out`
 * ([start, end) of its bytes); false when the frame is not one or is shorter.
 */
export function bulkElement(frame: Uint8Array, index: number, out: number[]): boolean {
  if (frame.length < 4 || (frame[0] !== 0x2a && frame[0] !== 0x3e)) return false;
  let at = _lineEnd(frame, 1);
  if (at < 0) return false;
  let count = 0;
  for (let i = 1; i < at; i++) count = count * 10 + frame[i] - 0x30;
  if (index >= count) return false;
  at += 2;
  for (let element = 0; element <= index; element++) {
    if (frame[at] !== 0x24) return false;
    const lineEnd = _lineEnd(frame, at + 1);
    if (lineEnd < 0) return false;
    if (frame[at + 1] === 0x2d) { // nil
      if (element === index) return false;
      at = lineEnd + 2;
      continue;
    }
    let length = 0;
    for (let i = at + 1; i < lineEnd; i++) length = length * 10 + frame[i] - 0x30;
    const start = lineEnd + 2;
    if (element === index) {
      out[0] = start;
      out[1] = start + length;
      return start + length <= frame.length;
    }
    at = start + length + 2;
  }
  return false;
}

function _lineEnd(frame: Uint8Array, from: number): number {
  for (let i = from; i + 1 < frame.length; i++) if (frame[i] === 0x0d) return i;
  return -1;
}

const _bounds = [0, 0];

/** Classifies a frame read on a subscription connection. */
export function pushKind(frame: Uint8Array): PushKindValue {
  if (frame[0] === 0x2d) return PushKind.error;
  if (bytesAre(frame, 0, frame.length, PONG_SIMPLE)) return PushKind.pong;
  if (!bulkElement(frame, 0, _bounds)) return PushKind.other;
  const [start, end] = _bounds;
  for (const word of MESSAGE_WORDS) if (bytesAre(frame, start, end, word)) return PushKind.message;
  if (bytesAre(frame, start, end, PONG)) return PushKind.pong;
  for (const word of CONFIRM_WORDS) {
    if (bytesAre(frame, start, end, word)) return PushKind.confirmation;
  }
  return PushKind.other;
}

/**
 * The bytes at `start` of `buf` (up to `end`) that are complete message frames in a row
 * (message, pmessage, smessage; RESP2 arrays or RESP3 pushes of bulk strings): 0 when the
 * first frame is anything else or incomplete. Frames them and classifies them in one pass
 * over their headers, without looking at their names or payloads: a subscription
 * connection's messages go to the client as one run (one copy, one call), not one by one.
 * A run is at most `maxLength` bytes (a frame that alone is longer: 0).
 */
export function messageRunLength(
  buf: Uint8Array,
  start: number,
  end: number,
  maxLength = Infinity,
): number {
  const limit = Math.min(end, start + maxLength);
  let at = start;
  for (;;) {
    const next = _messageEnd(buf, at, limit);
    if (next < 0) return at - start;
    at = next;
  }
}

/** The end of the message frame at `at`, or -1 when none is complete there. */
function _messageEnd(buf: Uint8Array, at: number, end: number): number {
  // `*3\r\n$7\r\nmessage\r\n`, `*4\r\n$8\r\npmessage\r\n`, `*3\r\n$8\r\nsmessage\r\n` (or `>`)
  if (at + 18 > end || (buf[at] !== 0x2a && buf[at] !== 0x3e)) return -1;
  const count = buf[at + 1] - 0x30;
  if (buf[at + 2] !== 0x0d || buf[at + 3] !== 0x0a || buf[at + 4] !== 0x24) return -1;
  const wordLength = buf[at + 5] - 0x30;
  if (buf[at + 6] !== 0x0d || buf[at + 7] !== 0x0a) return -1;
  const word = at + 8;
  let tail = word;
  if (wordLength === 7) {
    if (count !== 3) return -1;
  } else if (wordLength === 8) {
    const first = buf[word];
    if (count !== (first === 0x70 /* p */ ? 4 : first === 0x73 /* s */ ? 3 : -1)) return -1;
    tail++;
  } else return -1;
  for (let i = 0; i < 7; i++) if (buf[tail + i] !== MESSAGE_TAIL[i]) return -1;
  at = word + wordLength;
  if (buf[at] !== 0x0d || buf[at + 1] !== 0x0a) return -1;
  at += 2;
  for (let element = 1; element < count; element++) {
    if (at >= end || buf[at] !== 0x24) return -1;
    let length = 0;
    let i = at + 1;
    for (; i < end && buf[i] !== 0x0d; i++) {
      const digit = buf[i] - 0x30;
      if (digit < 0 || digit > 9) return -1;
      length = length * 10 + digit;
    }
    if (i === at + 1) return -1;
    at = i + 2 + length; // past `\r\n` and the bytes
    if (at + 2 > end || buf[i + 1] !== 0x0a || buf[at] !== 0x0d || buf[at + 1] !== 0x0a) {
      return -1;
    }
    at += 2;
  }
  return at;
}

/**
 * The subscription a message frame is for: its kind and name key (a pmessage's pattern, a
 * message's or smessage's channel); null for other frames.
 */
export function messageSubscription(frame: Uint8Array): { kind: SubKindValue; key: string } | null {
  if (!bulkElement(frame, 0, _bounds)) return null;
  const first = frame[_bounds[0]];
  const kind = first === 0x70 /* p */
    ? SubKind.pattern
    : first === 0x73 /* s */
    ? SubKind.shard
    : SubKind.channel;
  if (!bulkElement(frame, 1, _bounds)) return null;
  return { kind, key: nameKey(frame.subarray(_bounds[0], _bounds[1])) };
}

/**
 * A `sunsubscribe` frame's channel key (Redis Cluster sends one unasked when the channel's
 * slot moves away), or null for any other frame.
 */
export function shardUnsubscribed(frame: Uint8Array): string | null {
  if (!bulkElement(frame, 0, _bounds)) return null;
  if (!bytesAre(frame, _bounds[0], _bounds[1], CONFIRM_WORDS[5])) return null;
  if (!bulkElement(frame, 1, _bounds)) return null;
  return nameKey(frame.subarray(_bounds[0], _bounds[1]));
}
