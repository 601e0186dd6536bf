/**
 * A test mode for the raw-socket layer: a `Libc` around the real one whose calls fail at
 * random, from a seed, the ways the kernel may make them fail: `recv`/`send`/`accept4`
 * return EAGAIN or EINTR, reads and writes move 1 byte, and (when asked) `recv`/`send`
 * fail with ECONNRESET; `epoll_wait` returns EINTR. Enabled by `ASTER_TEST_IO_FAULTS`
 * (see `parseFaults`), which `ffiSockets()` reads once: then this binding replaces libc's
 * for the isolate, so with it unset the hot path runs exactly as before.
 *
 * The layer's sockets are edge-triggered: after a real EAGAIN (or a short read, which
 * means the socket was drained) the kernel reports the next change of readiness. A
 * made-up EAGAIN or short read leaves bytes behind that no edge will announce, so the
 * injector delivers one itself, in the next `epoll_wait`'s batch, as the kernel would
 * have had the bytes arrived just then. It learns each descriptor's event data from
 * `epoll_ctl`, so made-up events carry the watch's generation like real ones. An event
 * owed while the loop waits on its helper thread wakes that wait (through an eventfd on
 * the epoll set), as a real edge would.
 */

import {
  EAGAIN,
  ECONNRESET,
  EINTR,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLLIN,
  EPOLLOUT,
  EVENT_DATA_AT,
  EVENT_SIZE,
  type Libc,
  setErrno,
} from "./libc.ts";

/** Test-mode calls, opened only when an off-thread wait first needs waking. */
interface EventFdCalls {
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: BufferSource, count: bigint): number | bigint;
  write(fd: number, buf: BufferSource, count: bigint): number | bigint;
}
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/** The environment variable that turns the injector on. */
export const FAULTS_ENV = "ASTER_TEST_IO_FAULTS";

/** How often each fault happens, as a probability per call. */
export interface FaultRates {
  /** recv, send and accept4 fail with EAGAIN (readiness comes back in the next batch). */
  eagain: number;
  /** recv and send fail with EINTR, as do accept4 and epoll_wait. */
  eintr: number;
  /** recv and send move at most 1 byte. */
  short: number;
  /** recv and send fail with ECONNRESET (the connection is then lost). */
  reset: number;
}

/** What `ASTER_TEST_IO_FAULTS` asks for. */
export interface FaultSpec {
  seed: number;
  rates: FaultRates;
}

/** The kinds of fault, in the order `parseFaults` reads them. */
export const FAULT_KINDS = ["eagain", "eintr", "short", "reset"] as const;

/**
 * Reads `ASTER_TEST_IO_FAULTS`: comma-separated `key=value` pairs, `seed` (an integer) and
 * a probability 0..1 per fault kind, e.g. `seed=7,eagain=0.2,eintr=0.1,short=0.3`. Absent
 * kinds are 0. Returns an error text for anything else.
 */
export function parseFaults(text: string): FaultSpec | string {
  const spec: FaultSpec = { seed: 1, rates: { eagain: 0, eintr: 0, short: 0, reset: 0 } };
  for (const pair of text.split(",")) {
    const [key, value, extra] = pair.trim().split("=");
    const n = Number(value);
    if (extra !== undefined || value === undefined || value.trim() === "" || !isFinite(n)) {
      return `expected key=number pairs, got ${JSON.stringify(pair)}`;
    }
    if (key === "seed" && Number.isInteger(n)) spec.seed = n >>> 0;
    else if ((FAULT_KINDS as readonly string[]).includes(key) && n >= 0 && n <= 1) {
      spec.rates[key as keyof FaultRates] = n;
    } else return `unknown key or bad value ${JSON.stringify(pair)}`;
  }
  const total = FAULT_KINDS.reduce((sum, kind) => sum + spec.rates[kind], 0);
  if (total > 1) return `the rates add up to ${total}, more than 1`;
  return spec;
}

/** Wraps a `Libc` with seeded random faults; `libc` is the binding to use instead. */
export class FaultInjector {
  /** The binding with faults: what the raw-socket layer calls while this is in use. */
  readonly libc: Libc;
  /** Faults made so far, by kind. */
  readonly counts: Record<keyof FaultRates, number> = { eagain: 0, eintr: 0, short: 0, reset: 0 };
  /** Called with the kind of each first fault of its kind (for a log line). */
  onFirst: ((kind: keyof FaultRates) => void) | null = null;
  readonly #real: Libc;
  readonly #rates: FaultRates;
  #state: number;
  /** Each watched descriptor's 8 bytes of event data, as last given to epoll_ctl. */
  readonly #data = new Map<number, Uint8Array>();
  /** Events owed: descriptor to flags, delivered with the next epoll_wait. */
  readonly #owed = new Map<number, number>();
  /** Each epoll set's eventfd, which wakes an off-thread wait when an event is owed. */
  readonly #wakers = new Map<number, number>();
  /** The eventfd of the off-thread wait in progress, if any, and whether it was woken. */
  #waiting: number | null = null;
  #woken = false;
  #eventfd: EventFdCalls | null = null;

  constructor(real: Libc, rates: FaultRates, seed: number) {
    this.#real = real;
    this.#rates = rates;
    this.#state = seed >>> 0;
    const io =
      (call: "recv" | "send", readiness: number): Libc["recv"] => (fd, buf, length, flags) => {
        const fault = this.#draw();
        if (fault === "eagain" || fault === "eintr" || fault === "reset") {
          // The bytes stay: the kernel would announce them (eagain); the caller retries
          // (eintr) or drops the connection (reset).
          if (fault === "eagain") this.#owe(fd, readiness);
          setErrno(fault === "eagain" ? EAGAIN : fault === "eintr" ? EINTR : ECONNRESET);
          return -1;
        }
        if (fault === "short" && length > 1n) {
          const n = real[call](fd, buf, 1n, flags);
          // Maybe more was there: the edge the caller waits for after a short read.
          if (n === 1) this.#owe(fd, readiness);
          return n;
        }
        return real[call](fd, buf, length, flags);
      };
    this.libc = {
      ...real,
      recv: io("recv", EPOLLIN),
      send: io("send", EPOLLOUT),
      accept4: (fd, address, length, flags) => {
        const fault = this.#draw();
        if (fault === "eagain" || fault === "eintr") {
          if (fault === "eagain") this.#owe(fd, EPOLLIN);
          setErrno(fault === "eagain" ? EAGAIN : EINTR);
          return -1;
        }
        return real.accept4(fd, address, length, flags);
      },
      epoll_ctl: (epoll, op, fd, event) => {
        if (op === EPOLL_CTL_ADD || op === EPOLL_CTL_MOD) {
          const bytes = event instanceof Uint8Array ? event : new Uint8Array(event as ArrayBuffer);
          this.#data.set(fd, bytes.slice(EVENT_DATA_AT, EVENT_DATA_AT + 8));
        } else if (op === EPOLL_CTL_DEL) {
          this.#data.delete(fd);
          this.#owed.delete(fd);
        }
        return real.epoll_ctl(epoll, op, fd, event);
      },
      epoll_wait: (epoll, events, max, timeout) => {
        if (this.#drawOnly("eintr")) {
          setErrno(EINTR);
          return -1;
        }
        const ready = real.epoll_wait(epoll, events, max, timeout);
        const bytes = events instanceof Uint8Array ? events : new Uint8Array(events as ArrayBuffer);
        return ready < 0 ? ready : this.#deliver(bytes, ready, max);
      },
      epoll_wait_off_thread: async (epoll, eventsAt, max, timeout) => {
        // Owed events are ready now: no waiting for new ones then.
        const wait = this.#owed.size > 0 ? 0 : timeout;
        this.#waiting = this.#wakerOf(epoll);
        this.#woken = false;
        const ready = await real.epoll_wait_off_thread(epoll, eventsAt, max, wait);
        if (this.#woken) this.#eventfd!.read(this.#waiting, new Uint8Array(8), 8n);
        this.#waiting = null;
        if (ready < 0 || eventsAt === null) return ready;
        const bytes = new Uint8Array(
          Deno.UnsafePointerView.getArrayBuffer(eventsAt, max * EVENT_SIZE),
        );
        return this.#deliver(bytes, ready, max);
      },
    };
  }

  /** Owes `fd` an event with `flags` in the next batch (as a late edge would). */
  queueEvent(fd: number, flags: number): void {
    this.#owe(fd, flags);
  }

  /** Descriptors on an epoll set now. */
  watchedFds(): number[] {
    return [...this.#data.keys()];
  }

  #owe(fd: number, flags: number): void {
    this.#owed.set(fd, (this.#owed.get(fd) ?? 0) | flags);
    if (this.#waiting !== null && !this.#woken) {
      this.#woken = true;
      this.#eventfd!.write(this.#waiting, new BigUint64Array([1n]), 8n);
    }
  }

  /**
   * The eventfd on `epoll`'s set (level-triggered, data matching no watch, so the loop
   * skips its event), made on first use.
   */
  #wakerOf(epoll: number): number {
    let waker = this.#wakers.get(epoll);
    if (waker !== undefined) return waker;
    this.#eventfd ??= Deno.dlopen("libc.so.6", {
      eventfd: { parameters: ["u32", "i32"], result: "i32" },
      read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
      write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    }).symbols;
    waker = this.#eventfd.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (waker < 0) throw new Error("eventfd failed");
    const event = new Uint8Array(EVENT_SIZE);
    const view = new DataView(event.buffer);
    view.setUint32(0, EPOLLIN, true);
    view.setUint32(EVENT_DATA_AT, waker, true);
    view.setUint32(EVENT_DATA_AT + 4, 0, true); // generation 0: no watch has it
    if (this.#real.epoll_ctl(epoll, EPOLL_CTL_ADD, waker, event) !== 0) {
      throw new Error("epoll_ctl(ADD) of the fault injector's eventfd failed");
    }
    this.#wakers.set(epoll, waker);
    return waker;
  }

  /** Adds owed events to a batch of `ready` (merged into one for the same watch). */
  #deliver(events: Uint8Array, ready: number, max: number): number {
    if (this.#owed.size === 0) return ready;
    const view = new DataView(events.buffer, events.byteOffset);
    for (const [fd, flags] of this.#owed) {
      const data = this.#data.get(fd);
      if (data === undefined) {
        this.#owed.delete(fd);
        continue;
      }
      let at = -1;
      for (let i = 0; i < ready && at < 0; i++) {
        const here = events.subarray(
          i * EVENT_SIZE + EVENT_DATA_AT,
          i * EVENT_SIZE + EVENT_DATA_AT + 8,
        );
        if (here.every((byte, k) => byte === data[k])) at = i * EVENT_SIZE;
      }
      if (at < 0) {
        if (ready === max) break; // full: the rest wait for the next batch
        at = ready++ * EVENT_SIZE;
        view.setUint32(at, 0, true);
        events.set(data, at + EVENT_DATA_AT);
      }
      view.setUint32(at, (view.getUint32(at, true) | flags) >>> 0, true);
      this.#owed.delete(fd);
    }
    return ready;
  }

  /** The fault for this call, if any (one draw from the seeded stream per call). */
  #draw(): keyof FaultRates | null {
    let r = this.#next();
    for (const kind of FAULT_KINDS) {
      if (r < this.#rates[kind]) return this.#count(kind);
      r -= this.#rates[kind];
    }
    return null;
  }

  /** True when this call gets fault `kind` (for calls that can have only that one). */
  #drawOnly(kind: keyof FaultRates): boolean {
    return this.#next() < this.#rates[kind] && this.#count(kind) !== null;
  }

  #count(kind: keyof FaultRates): keyof FaultRates {
    if (this.counts[kind]++ === 0) this.onFirst?.(kind);
    return kind;
  }

  /** mulberry32: a float in [0, 1). */
  #next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
