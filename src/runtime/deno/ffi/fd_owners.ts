/**
 * Which worker owns each raw descriptor (`io = "ffi"`), in memory shared by the supervisor
 * and every worker. When a Web Worker ends, Deno closes its own resources but not the
 * descriptors it opened through FFI: a crashed or terminated worker would leave its
 * listener (still taking its share of new connections on the reusePort group), its
 * clients and its backends open. The supervisor closes what the table says the worker
 * still owned. Pure: the caller does the closing.
 *
 * Each slot holds the owner's id (0: no one). Releasing is a compare-and-swap, so of a
 * dying worker and the supervisor exactly one closes a descriptor, and neither closes a
 * number that was closed and then reused by another worker.
 */
export class FdOwners {
  readonly #slots: Int32Array;

  /** Over `memory` (from `FdOwners.memory`), shared between threads. */
  constructor(memory: SharedArrayBuffer) {
    this.#slots = new Int32Array(memory);
  }

  /** Shared memory for descriptors below `size`. */
  static memory(size: number): SharedArrayBuffer {
    return new SharedArrayBuffer(size * Int32Array.BYTES_PER_ELEMENT);
  }

  /** `fd` was just opened by `owner` (a descriptor past the table goes untracked). */
  own(fd: number, owner: number): void {
    if (fd >= 0 && fd < this.#slots.length) Atomics.store(this.#slots, fd, owner);
  }

  /** `owner` is about to close `fd`: true when it may (it still owned it, or untracked). */
  release(fd: number, owner: number): boolean {
    if (fd < 0 || fd >= this.#slots.length) return true;
    return Atomics.compareExchange(this.#slots, fd, owner, 0) === owner;
  }

  /** Takes every descriptor `owner` still holds: the caller closes them. */
  reap(owner: number): number[] {
    const slots = this.#slots;
    const taken: number[] = [];
    for (let fd = slots.indexOf(owner); fd >= 0; fd = slots.indexOf(owner, fd + 1)) {
      if (Atomics.compareExchange(slots, fd, owner, 0) === owner) taken.push(fd);
    }
    return taken;
  }
}
