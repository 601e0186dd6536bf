/**
 * Twemproxy's ketama consistent-hash ring (`ketama_update` and `ketama_dispatch` in
 * nc_ketama.c, 0.5.0), rebuilt so that every key lands on the node nutcracker picks.
 */

import { md5 } from "./md5.ts";

/** One server on the ring: its ketama name (see `ketamaName`) and its weight (>= 1). */
export interface RingNode {
  name: string;
  weight: number;
}

/** Port whose servers are hashed by host alone, for libmemcached compatibility. */
const KETAMA_DEFAULT_PORT = 11211;
/** Points per server at the average weight. */
const POINTS_PER_SERVER = 160;
/** Points drawn from one MD5 digest. */
const POINTS_PER_HASH = 4;

const encoder = new TextEncoder();

/**
 * The name a server is hashed by on the ring: its alias when it has one, otherwise
 * `host:port`, or `host` alone when the port is 11211.
 */
export function ketamaName(server: { host: string; port: number; alias: string | null }): string {
  if (server.alias !== null) return server.alias;
  return server.port === KETAMA_DEFAULT_PORT ? server.host : `${server.host}:${server.port}`;
}

/**
 * Node indexes in nutcracker's server order: it sorts a pool's servers by name (byte length
 * first, then bytes, as `string_compare` does) when it checks them for duplicates, and that
 * order is the one its distributions walk. Names are unique, so the order is total.
 */
export function twemproxyOrder(nodes: readonly RingNode[]): number[] {
  const names = nodes.map((node) => encoder.encode(node.name));
  return nodes.map((_, i) => i).sort((a, b) => {
    const x = names[a];
    const y = names[b];
    if (x.length !== y.length) return x.length - y.length;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return a - b;
  });
}

/**
 * A ketama continuum over the live nodes, placing keys exactly as twemproxy does.
 *
 * Names are hashed as UTF-8. Twemproxy formats each `name-index` into an 86-byte
 * buffer, so names longer than about 80 bytes hash unpredictably there; keep
 * aliases short.
 */
export class KetamaRing {
  /** Number of live nodes the ring was built over. */
  readonly liveCount: number;
  /** Number of points on the continuum. */
  readonly pointCount: number;
  /** Point values, ascending. */
  #values: Uint32Array;
  /** Index into the original `nodes` of the node owning each point. */
  #owners: Int32Array;

  /**
   * Builds the continuum over `nodes`, leaving out those whose `live` entry is false
   * (a missing entry counts as live).
   */
  constructor(nodes: readonly RingNode[], live?: readonly boolean[]) {
    let liveCount = 0;
    let totalWeight = 0;
    for (let i = 0; i < nodes.length; i++) {
      const weight = nodes[i].weight;
      if (!Number.isInteger(weight) || weight < 1 || weight > 0xffffffff) {
        throw new RangeError(`ketama: node ${i} weight must be a positive integer, got ${weight}`);
      }
      if (live?.[i] === false) continue;
      liveCount++;
      totalWeight += weight;
    }
    if (totalWeight > 0xffffffff) throw new RangeError("ketama: total weight exceeds uint32");
    this.liveCount = liveCount;

    // Points per node, in float32 like the C code (see _pointsPerServer).
    const counts = new Uint32Array(nodes.length);
    let total = 0;
    for (let i = 0; i < nodes.length; i++) {
      if (live?.[i] === false) continue;
      counts[i] = _pointsPerServer(nodes[i].weight, totalWeight, liveCount);
      total += counts[i];
    }

    const values = new Uint32Array(total);
    const owners = new Int32Array(total);
    let at = 0;
    // Built in nutcracker's server order, so that points of equal value keep its order.
    for (const i of twemproxyOrder(nodes)) {
      for (let p = 0; p < counts[i] / POINTS_PER_HASH; p++) {
        const digest = md5(encoder.encode(`${nodes[i].name}-${p}`));
        for (let x = 0; x < POINTS_PER_HASH; x++) {
          const o = x * 4;
          values[at] =
            (digest[o] | (digest[o + 1] << 8) | (digest[o + 2] << 16) | (digest[o + 3] << 24)) >>>
            0;
          owners[at] = i;
          at++;
        }
      }
    }

    // Sort by value; equal values keep build order (glibc's qsort is a merge sort).
    const order = new Uint32Array(total);
    for (let i = 0; i < total; i++) order[i] = i;
    order.sort((a, b) => values[a] - values[b] || a - b);
    this.#values = new Uint32Array(total);
    this.#owners = new Int32Array(total);
    for (let i = 0; i < total; i++) {
      this.#values[i] = values[order[i]];
      this.#owners[i] = owners[order[i]];
    }
    this.pointCount = total;
  }

  /**
   * The index in the original `nodes` of the node owning `hash` (an unsigned 32-bit
   * key hash): the first point at or after it, wrapping to the first point; -1 when
   * the ring is empty.
   */
  pick(hash: number): number {
    const values = this.#values;
    let left = 0;
    let right = values.length;
    if (right === 0) return -1;
    while (left < right) {
      const middle = (left + right) >>> 1;
      if (values[middle] < hash) left = middle + 1;
      else right = middle;
    }
    return this.#owners[right === values.length ? 0 : right];
  }
}

/**
 * `floorf(pct * 160 / 4 * nlive + 1e-10) * 4` with `pct = (float)weight / total`,
 * each step rounded to float32 as C does; the epsilon is a double, so that one sum
 * is done in double and then rounded back to float32.
 */
function _pointsPerServer(weight: number, totalWeight: number, liveCount: number): number {
  const f = Math.fround;
  const pct = f(f(weight) / f(totalWeight));
  const perHash = f(f(f(pct * POINTS_PER_SERVER) / POINTS_PER_HASH) * f(liveCount));
  return Math.floor(f(perHash + 0.0000000001)) * POINTS_PER_HASH;
}
