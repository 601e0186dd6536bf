/**
 * Twemproxy's `distribution:` values: which node a key hash picks (nc_ketama.c, nc_modula.c,
 * nc_random.c of twemproxy 0.5.0). Each is built over the live nodes and rebuilt when one is
 * ejected or comes back.
 */

import { KetamaRing, type RingNode, twemproxyOrder } from "./ketama.ts";

/** The `distribution` values twemproxy 0.5 accepts. */
export const DISTRIBUTION_NAMES = ["ketama", "modula", "random"] as const;

/** One of {@link DISTRIBUTION_NAMES}. */
export type DistributionName = typeof DISTRIBUTION_NAMES[number];

/** Hash -> node over the live nodes. */
export interface Distribution {
  /** Number of live nodes it was built over. */
  readonly liveCount: number;
  /** The index in the original nodes for an unsigned 32-bit key hash; -1 when none is live. */
  pick(hash: number): number;
}

/**
 * `modula`: `hash % total live weight` into a list where each live node appears `weight`
 * times, in nutcracker's server order (sorted by name, see `twemproxyOrder`; not config
 * order). Cumulative weights and a binary search stand in for that list, so
 * large weights cost no memory.
 */
export class ModulaRing implements Distribution {
  readonly liveCount: number;
  /** Sum of the live weights (the C continuum's length). */
  readonly #total: number;
  /** End (exclusive) of each live node's run in the list, ascending. */
  readonly #ends: Float64Array;
  readonly #owners: Int32Array;

  constructor(nodes: readonly RingNode[], live?: readonly boolean[]) {
    const ends: number[] = [];
    const owners: number[] = [];
    let total = 0;
    for (const i of twemproxyOrder(nodes)) {
      const weight = nodes[i].weight;
      if (!Number.isInteger(weight) || weight < 1 || weight > 0xffffffff) {
        throw new RangeError(`modula: node ${i} weight must be a positive integer, got ${weight}`);
      }
      if (live?.[i] === false) continue;
      total += weight;
      ends.push(total);
      owners.push(i);
    }
    if (total > 0xffffffff) throw new RangeError("modula: total weight exceeds uint32");
    this.liveCount = owners.length;
    this.#total = total;
    this.#ends = Float64Array.from(ends);
    this.#owners = Int32Array.from(owners);
  }

  pick(hash: number): number {
    if (this.#total === 0) return -1;
    const slot = hash % this.#total;
    const ends = this.#ends;
    let left = 0;
    let right = ends.length - 1;
    while (left < right) {
      const middle = (left + right) >>> 1;
      if (ends[middle] <= slot) left = middle + 1;
      else right = middle;
    }
    return this.#owners[left];
  }
}

/**
 * `random`: a uniformly random live node per request, whatever the key and the weights
 * (twemproxy lists each live node once and ignores weight here). Placement cannot match
 * nutcracker's, by design.
 */
export class RandomRing implements Distribution {
  readonly liveCount: number;
  readonly #owners: Int32Array;

  constructor(nodes: readonly RingNode[], live?: readonly boolean[]) {
    const owners: number[] = [];
    for (let i = 0; i < nodes.length; i++) if (live?.[i] !== false) owners.push(i);
    this.liveCount = owners.length;
    this.#owners = Int32Array.from(owners);
  }

  pick(_hash: number): number {
    const owners = this.#owners;
    return owners.length === 0 ? -1 : owners[Math.floor(Math.random() * owners.length)];
  }
}

/** Builds the named distribution over `nodes` (dead ones, `live[i] === false`, left out). */
export function buildDistribution(
  name: DistributionName,
  nodes: readonly RingNode[],
  live?: readonly boolean[],
): Distribution {
  switch (name) {
    case "ketama":
      return new KetamaRing(nodes, live);
    case "modula":
      return new ModulaRing(nodes, live);
    case "random":
      return new RandomRing(nodes, live);
  }
}
