/**
 * The state both I/O-floor forwarders share: whole requests from many clients go to one
 * backend in arrival order, and each backend reply goes back to the client whose request
 * is oldest. Only the sockets differ between the two forwarders, so their CPU per request
 * differs by what their socket calls cost.
 */
import { ReadBuffer } from "../../src/io/read_buffer.ts";
import { RespReplyFramer } from "../../src/protocol/resp/reply_framer.ts";

/** First read buffer of a client. */
const CLIENT_BUFFER = 4096;
/** First read buffer of the backend connection, which carries every client's replies. */
const BACKEND_BUFFER = 64 * 1024;

/** One client's input: its whole requests are taken from the front as they complete. */
export class ClientInput {
  readonly #buffer = new ReadBuffer(CLIENT_BUFFER);
  readonly #framer = new RespReplyFramer(); // requests are RESP arrays, framed alike

  /** Free space to read into. */
  freeSpace(): Uint8Array {
    return this.#buffer.freeSpace();
  }

  /**
   * Takes `n` bytes just read into `freeSpace()`; returns the whole requests now complete
   * (a view, valid until the next `freeSpace()`) and how many they are. A partial
   * request's tail stays for the next read.
   */
  commit(n: number): { requests: number; bytes: Uint8Array } {
    const buffer = this.#buffer;
    buffer.commit(n);
    let at = buffer.start;
    let requests = 0;
    for (let size = this.#framer.frame(buffer.data, at, buffer.end); size > 0;) {
      at += size;
      requests++;
      size = at < buffer.end ? this.#framer.frame(buffer.data, at, buffer.end) : -1;
    }
    const bytes = buffer.data.subarray(buffer.start, at);
    buffer.start = at;
    return { requests, bytes };
  }
}

/** The backend connection's input: each reply goes to the owner of the oldest request. */
export class BackendInput<C> {
  /** Who sent each request still waiting for its reply, oldest first. */
  readonly owners = new ReplyOwners<C>();
  readonly #buffer = new ReadBuffer(BACKEND_BUFFER);
  readonly #framer = new RespReplyFramer();

  /** Free space to read into. */
  freeSpace(): Uint8Array {
    return this.#buffer.freeSpace();
  }

  /**
   * Takes `n` bytes just read into `freeSpace()` and hands each complete reply (a view,
   * valid during the call) to `deliver` with its owner, in order.
   */
  commit(n: number, deliver: (owner: C, reply: Uint8Array) => void): void {
    const buffer = this.#buffer;
    buffer.commit(n);
    let at = buffer.start;
    for (let size = this.#framer.frame(buffer.data, at, buffer.end); size > 0;) {
      deliver(this.owners.shift(), buffer.data.subarray(at, at + size));
      at += size;
      size = at < buffer.end ? this.#framer.frame(buffer.data, at, buffer.end) : -1;
    }
    buffer.start = at;
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
class ReplyOwners<C> {
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

/** `LISTEN_PORT BACKEND_PORT` from the command line of a forwarder. */
export function forwarderPorts(args: string[], usage: string): [number, number] {
  const ports = args.map(Number);
  if (ports.length !== 2 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
    console.error(`usage: ${usage} LISTEN_PORT BACKEND_PORT`);
    Deno.exit(2);
  }
  return [ports[0], ports[1]];
}
