/**
 * The supervisor's side of `FdOwners`: the table shared with every worker, an owner id per
 * worker, and closing the raw descriptors (`io = "ffi"`) a worker still held when it
 * ended. Deno closes a terminated worker's own resources, not what it opened through FFI.
 */
import { FdOwners } from "./fd_owners.ts";
import type { RawFdReaper, RawFdTable } from "../../sockets.ts";

/** Descriptors the table covers: past this (a raised RLIMIT_NOFILE) they go untracked. */
const TRACKED_FDS = 1 << 20;

/** The `RawFdReaper` of raw sockets through Deno's FFI. */
export class FfiFdReaper implements RawFdReaper {
  readonly #memory = FdOwners.memory(TRACKED_FDS);
  readonly #owners = new FdOwners(this.#memory);
  #lastOwner = 0;

  /** The table and a fresh owner id for a new worker. */
  newTable(): RawFdTable {
    return { memory: this.#memory, owner: ++this.#lastOwner };
  }

  /** Closes what the worker of `table` still held (call once it is terminated); a count. */
  async reap(table: RawFdTable): Promise<number> {
    const left = this.#owners.reap(table.owner);
    if (left.length === 0) return 0;
    const { c } = await import("./libc.ts");
    for (const fd of left) c.close(fd);
    return left.length;
  }
}
