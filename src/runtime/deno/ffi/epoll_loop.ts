/**
 * The raw sockets' event loop: one edge-triggered epoll set per worker and the handler of
 * each descriptor on it, polled without blocking while sockets are ready and on a helper
 * thread when none is; it also opens and closes the descriptors (recording them in the
 * shared `FdOwners` table).
 */
import { logError, logWarn } from "../../../log.ts";
import type { FdOwners } from "./fd_owners.ts";
import {
  AF_INET,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLLET,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  errno,
  EVENT_DATA_AT,
  EVENT_SIZE,
  osError,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
} from "./libc.ts";
import { c } from "./socket_libc.ts";

const MAX_EVENTS = 256;
/** Longest off-thread wait, ms (the loop then looks again). */
const WAIT_MS = 100;
/** Longest pause after a failed epoll_wait, ms. */
const WAIT_FAILED_MAX_MS = 1000;
/** Busy turns in a row after which the loop lets timers and Deno's own ops run. */
const TURNS_BEFORE_YIELD = 64;
/**
 * How long the loop keeps polling once a batch left nothing ready, before it waits on the
 * helper thread, ms. A backend's reply to what the batch sent usually comes within this; the
 * hand-off to the helper thread and back costs more (about 45 us of CPU and as much latency).
 */
const POLL_MS = 0.05;
/**
 * A poll that catches an event earns a credit (up to this many), one that catches nothing
 * costs two: under pipelined load the backend takes longer than POLL_MS, and a core it
 * shares with the proxy is better left to it.
 */
const POLL_CREDIT_MAX = 8;
/** With no credit left, one quiet gap in this many is still polled, to notice a change. */
const POLL_PROBE_EVERY = 16;

type EventHandler = (flags: number) => void;

/** The shared descriptor table and this worker's id in it. */
export interface FdOwnership {
  owners: FdOwners;
  owner: number;
}

/**
 * What hears a watched descriptor's events, and the generation they carry (set by watch).
 * A connection is its own watcher: no record or closure per socket (idle-client memory).
 */
export interface Watcher {
  watchGeneration: number;
  onEpollEvent(flags: number): void;
}

/**
 * One epoll set and the handler of each descriptor on it; opens and closes descriptors.
 * Exported for tests.
 *
 * An event's data is the descriptor (low 32 bits) and the generation of its watch (high 32
 * bits): a handler that closes a descriptor and opens another, which the kernel gives the
 * same number, must not hand the new socket the old one's events still queued in this batch.
 */
export class EpollLoop {
  readonly #epoll: number;
  readonly #handlers = new Map<number, Watcher>();
  #generation = 0;
  readonly #ownership: FdOwnership | null;
  readonly #event = new Uint8Array(EVENT_SIZE);
  readonly #eventView = new DataView(this.#event.buffer);
  /** Outside the JS heap (see epoll_wait_off_thread); never freed: one per worker. */
  readonly #eventsAt: Deno.PointerObject;
  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  #running = false;
  /** epoll_wait failures in a row. */
  #waitFailures = 0;
  /** How long to poll after a batch before waiting off-thread (0: not at all), ms. */
  readonly #pollMs: number;
  /** See POLL_CREDIT_MAX. */
  #pollCredit = POLL_CREDIT_MAX;
  /** Quiet gaps after a batch while out of credit. */
  #gapsWithoutCredit = 0;

  constructor(ownership: FdOwnership | null, pollMs = POLL_MS) {
    this.#ownership = ownership;
    this.#pollMs = pollMs;
    const bytes = EVENT_SIZE * MAX_EVENTS;
    const at = c.malloc(BigInt(bytes));
    if (at === null) throw new Error("malloc failed");
    this.#eventsAt = at;
    this.#events = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(at, bytes));
    this.#eventsView = new DataView(this.#events.buffer);
    this.#epoll = c.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epoll < 0) throw osError(errno(), "epoll_create1 failed: ");
    this.adopt(this.#epoll);
  }

  /** `fd` was just opened by this worker: recorded so the supervisor can close it. */
  adopt(fd: number): void {
    this.#ownership?.owners.own(fd, this.#ownership.owner);
  }

  /** Closes `fd`, unless the supervisor already took it (this worker is being ended). */
  closeFd(fd: number): void {
    const ownership = this.#ownership;
    if (ownership === null || ownership.owners.release(fd, ownership.owner)) c.close(fd);
  }

  /**
   * Edge-triggered: a descriptor hears once per change of readiness, in or out. Throws when
   * epoll refuses it: the caller fails that socket, which would otherwise never hear again.
   */
  watch(fd: number, handler: EventHandler | Watcher): void {
    const generation = this.#generation = (this.#generation + 1) >>> 0 || 1;
    this.#eventView.setUint32(0, (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) >>> 0, true);
    this.#eventView.setUint32(EVENT_DATA_AT, fd, true);
    this.#eventView.setUint32(EVENT_DATA_AT + 4, generation, true);
    if (c.epoll_ctl(this.#epoll, EPOLL_CTL_ADD, fd, this.#event) !== 0) {
      throw osError(errno(), "epoll_ctl(ADD) failed: ");
    }
    const watcher = typeof handler === "function"
      ? { watchGeneration: 0, onEpollEvent: handler }
      : handler;
    watcher.watchGeneration = generation;
    this.#handlers.set(fd, watcher);
    if (!this.#running) {
      this.#running = true;
      // Not from inside watch(): no handler runs before its caller has finished.
      queueMicrotask(() => this.#pollWhileWatched());
    }
  }

  /** Descriptors watched now. */
  get watched(): number {
    return this.#handlers.size;
  }

  unwatch(fd: number): void {
    if (!this.#handlers.delete(fd)) return;
    // Never expected (the descriptor is open and on the set); closing it removes it anyway.
    if (c.epoll_ctl(this.#epoll, EPOLL_CTL_DEL, fd, this.#event) !== 0) {
      logWarn(`epoll_ctl(DEL) of descriptor ${fd} failed: ${osError(errno()).message}`);
    }
  }

  #dispatch(count: number): void {
    const view = this.#eventsView;
    for (let i = 0; i < count; i++) {
      const at = i * EVENT_SIZE;
      const watch = this.#handlers.get(view.getUint32(at + EVENT_DATA_AT, true));
      // A descriptor closed earlier in this batch has no handler any more, or one of a new
      // socket with the same number and another generation.
      if (
        watch === undefined ||
        watch.watchGeneration !== view.getUint32(at + EVENT_DATA_AT + 4, true)
      ) {
        continue;
      }
      try {
        watch.onEpollEvent(view.getUint32(at, true));
      } catch (err) {
        // Readers run from here (whenReadable): a bug in one must not stop the loop.
        logError(`socket event handler failed: ${err instanceof Error ? err.stack : err}`);
      }
    }
  }

  /**
   * Polls without blocking while sockets are ready, letting the promise reactions of each
   * batch run in between; waits on a helper thread when none is, so the event loop (timers,
   * worker messages, Deno's own ops) stays free. Every `TURNS_BEFORE_YIELD` busy turns one
   * wait goes through the helper thread anyway, so those still run under constant load (a
   * turn that polled after its batch counts as busy when the poll caught something: at
   * pipeline 1 timers wait up to 64 round trips, as they did under load before).
   * Ends once no descriptor is watched.
   */
  async #pollWhileWatched(): Promise<void> {
    let busyTurns = 0;
    let dispatched = false;
    for (;;) {
      // Nothing left to watch: stop, so an isolate whose sockets are all closed can exit
      // (a pending off-thread wait keeps its event loop alive). watch() starts it again.
      if (this.#handlers.size === 0) {
        this.#running = false;
        return;
      }
      let ready = 0;
      if (busyTurns < TURNS_BEFORE_YIELD) {
        ready = c.epoll_wait(this.#epoll, this.#events, MAX_EVENTS, 0);
        if (ready === 0 && dispatched && this.#mayPoll()) {
          ready = await this.#pollBriefly();
          // The last socket closed while polling: stop (above) rather than wait off-thread.
          if (this.#handlers.size === 0) continue;
        }
      }
      dispatched = false;
      if (ready > 0) busyTurns++;
      else {
        if (ready < 0 && errno() !== EINTR) {
          await this.#waitFailed(errno());
          continue;
        }
        const timeoutMs = busyTurns >= TURNS_BEFORE_YIELD ? 0 : WAIT_MS;
        busyTurns = 0;
        ready = await c.epoll_wait_off_thread(this.#epoll, this.#eventsAt, MAX_EVENTS, timeoutMs);
        // The helper thread's errno is out of reach: asking again here says why it failed.
        if (ready < 0) ready = c.epoll_wait(this.#epoll, this.#events, MAX_EVENTS, 0);
        if (ready < 0 && errno() !== EINTR) {
          await this.#waitFailed(errno());
          continue;
        }
      }
      if (ready >= 0) this.#waitFailures = 0;
      dispatched = ready > 0;
      if (dispatched) this.#dispatch(ready);
      await null; // the reactions of what this batch settled
    }
  }

  /** Whether to poll in this quiet gap after a batch (see POLL_CREDIT_MAX). */
  #mayPoll(): boolean {
    if (this.#pollMs <= 0) return false;
    if (this.#pollCredit > 0) return true;
    return ++this.#gapsWithoutCredit % POLL_PROBE_EVERY === 0;
  }

  /**
   * Polls for up to `#pollMs`, letting promise reactions run between polls (what the last
   * batch queued, such as its writes, goes out first), and keeps the credit. At pipeline 1
   * this halves a request's CPU and latency: the reply is caught here rather than through
   * two thread hand-offs. Stops early when nothing is watched any more.
   */
  async #pollBriefly(): Promise<number> {
    const until = performance.now() + this.#pollMs;
    let ready = 0;
    do {
      await null;
      ready = c.epoll_wait(this.#epoll, this.#events, MAX_EVENTS, 0);
      if (ready < 0 && errno() === EINTR) ready = 0;
    } while (ready === 0 && this.#handlers.size > 0 && performance.now() < until);
    this.#pollCredit = ready > 0
      ? Math.min(this.#pollCredit + 1, POLL_CREDIT_MAX)
      : Math.max(this.#pollCredit - 2, 0);
    // A failure is left to the wait that follows, which reports it with its errno.
    return ready > 0 ? ready : 0;
  }

  /**
   * epoll_wait failed with `error` (not EINTR): nothing can be heard until it works again.
   * Logged (the first time and every 60th), then a pause doubling from 10 ms to 1 s, so a
   * failure that persists does not spin the worker.
   */
  async #waitFailed(error: number): Promise<void> {
    const failures = ++this.#waitFailures;
    if (failures % 60 === 1) {
      logError(
        `epoll_wait failed${failures > 1 ? ` ${failures} times in a row` : ""}: ` +
          `${osError(error).message}; raw sockets of this worker wait until it works again`,
      );
    }
    const pauseMs = Math.min(WAIT_FAILED_MAX_MS, 10 * 2 ** Math.min(failures - 1, 10));
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** A non-blocking IPv4 TCP socket, recorded as this worker's (see `EpollLoop.adopt`). */
export function newSocket(loop: EpollLoop): number {
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw osError(errno(), "socket failed: ");
  loop.adopt(fd);
  return fd;
}
