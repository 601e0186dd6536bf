/**
 * The state both I/O-floor forwarders share: whole requests from many clients go to one
 * backend in arrival order, and each backend reply goes back to the client whose request
 * is oldest. Only the sockets differ between the two forwarders, so their CPU per request
 * differs by what their socket calls cost.
 */
import { RespReplyFramer } from "../../src/protocol/resp/reply_framer.ts";

/** First read buffer of a client; doubled while one request does not fit. */
const CLIENT_BUFFER = 4096;

/** One client: its unframed input and the framer that finds its whole requests. */
export class ClientInput {
  data = new Uint8Array(CLIENT_BUFFER);
  /** Bytes [0, end) are read and not yet forwarded. */
  end = 0;
  readonly #framer = new RespReplyFramer(); // requests are RESP arrays, framed alike

  /** Free space to read into, grown when full. */
  freeSpace(): Uint8Array {
    if (this.end === this.data.length) {
      const grown = new Uint8Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    return this.data.subarray(this.end);
  }

  /**
   * Takes `n` more bytes; returns how many whole requests now start the buffer and their
   * byte length (the caller forwards them, then calls `consume`).
   */
  commit(n: number): { requests: number; bytes: number } {
    this.end += n;
    let at = 0;
    let requests = 0;
    for (let size = this.#framer.frame(this.data, at, this.end); size > 0;) {
      at += size;
      requests++;
      size = at < this.end ? this.#framer.frame(this.data, at, this.end) : -1;
    }
    return { requests, bytes: at };
  }

  /** Drops the first `bytes` (forwarded), keeping a partial request's tail. */
  consume(bytes: number): void {
    this.data.copyWithin(0, bytes, this.end);
    this.end -= bytes;
  }
}

/** Bytes queued for one socket, appended to and taken whole. */
export class OutputQueue {
  #data = new Uint8Array(16 * 1024);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  append(bytes: Uint8Array): void {
    if (this.#length + bytes.length > this.#data.length) {
      let capacity = this.#data.length * 2;
      while (capacity < this.#length + bytes.length) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.#data.subarray(0, this.#length));
      this.#data = grown;
    }
    this.#data.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** The queued bytes as a view (valid until the next append or take). */
  peek(): Uint8Array {
    return this.#data.subarray(0, this.#length);
  }

  /** Drops the first `n` queued bytes (written). */
  drop(n: number): void {
    this.#data.copyWithin(0, n, this.#length);
    this.#length -= n;
  }
}

/** Which client each reply from the backend belongs to, oldest first. */
export class ReplyOwners<C> {
  #owners: (C | undefined)[] = [];
  #head = 0;

  push(owner: C, count: number): void {
    for (let i = 0; i < count; i++) this.#owners.push(owner);
  }

  /** The owner of the next reply; throws if the backend sent a reply nobody asked for. */
  shift(): C {
    if (this.#head >= this.#owners.length) throw new Error("a backend reply nobody waits for");
    const owner = this.#owners[this.#head];
    this.#owners[this.#head++] = undefined;
    if (this.#head > 4096 && this.#head * 2 > this.#owners.length) {
      this.#owners = this.#owners.slice(this.#head);
      this.#head = 0;
    }
    return owner!;
  }
}

/** Frames backend replies and hands each to `deliver` with its owner, in order. */
export function deliverReplies<C>(
  framer: RespReplyFramer,
  buffer: Uint8Array,
  end: number,
  owners: ReplyOwners<C>,
  deliver: (owner: C, reply: Uint8Array) => void,
): number {
  let at = 0;
  for (let size = framer.frame(buffer, at, end); size > 0;) {
    deliver(owners.shift(), buffer.subarray(at, at + size));
    at += size;
    size = at < end ? framer.frame(buffer, at, end) : -1;
  }
  return at;
}

/** `LISTEN_PORT BACKEND_PORT` from the command line of a forwarder. */
export function forwarderPorts(args: string[], usage: string): [number, number] {
  const ports = args.map(Number);
  if (ports.length !== 2 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
    console.error(`usage: ${usage} LISTEN_PORT BACKEND_PORT`);
    Deno.exit(2);
  }
  return [ports[0], ports[1]];
}
