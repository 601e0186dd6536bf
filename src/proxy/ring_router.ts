/**
 * Key -> node for sharded modes: hash tag, key hash, distribution over the live nodes.
 * twemproxy's default (fnv1a_64 + ketama) is the direct path; the other `hash` and
 * `distribution` values are chosen once, when the router is built.
 */
import {
  buildDistribution,
  type Distribution,
  type DistributionName,
} from "../hash/distribution.ts";
import { fnv1a64 } from "../hash/fnv.ts";
import { hashTagSlice } from "../hash/hash_tag.ts";
import { KetamaRing, type RingNode } from "../hash/ketama.ts";
import { KEY_HASHES, type KeyHash, type KeyHashName } from "../hash/key_hashes.ts";

/** Picks the node that owns a key. */
export interface Router {
  /** The node index for `key`, or -1 when no node is available. */
  pick(key: Uint8Array): number;
}

/** How keys are placed: twemproxy's `hash` and `distribution`. */
export interface Placement {
  hash: KeyHashName;
  distribution: DistributionName;
}

/** twemproxy's defaults, and Aster's. */
export const DEFAULT_PLACEMENT: Readonly<Placement> = { hash: "fnv1a_64", distribution: "ketama" };

/** twemproxy-compatible placement; ejected nodes leave the ring and rejoin later. */
export class RingRouter implements Router {
  readonly #nodes: readonly RingNode[];
  readonly #tag: Uint8Array | null;
  readonly #live: boolean[];
  readonly #distribution: DistributionName;
  readonly #hash: KeyHash;
  /** A KetamaRing on the default path (pick() relies on it), else any distribution. */
  #ring: Distribution;
  /** The node every key maps to while exactly one is live (no hashing needed), else -2. */
  #only = -2;
  /** Bumped whenever a node leaves or rejoins the ring. */
  version = 0;

  constructor(
    nodes: readonly RingNode[],
    hashTag: string | null,
    placement: Readonly<Placement> = DEFAULT_PLACEMENT,
  ) {
    this.#nodes = nodes;
    this.#tag = hashTag === null ? null : new TextEncoder().encode(hashTag);
    this.#live = nodes.map(() => true);
    this.#distribution = placement.distribution;
    // random ignores the key (twemproxy does not hash it either).
    this.#hash = placement.distribution === "random" ? () => 0 : KEY_HASHES[placement.hash];
    this.#ring = buildDistribution(this.#distribution, nodes, this.#live);
    this.#only = this.#soleLiveNode();
    if (placement.hash !== "fnv1a_64" || placement.distribution !== "ketama") {
      // Chosen once: other placements shadow the default pick() on this instance only, so
      // default routers keep today's code and call sites stay monomorphic.
      this.pick = this.#pickConfigured;
    }
  }

  /** True with `distribution = random`: a key has no node of its own. */
  get scattered(): boolean {
    return this.#distribution === "random";
  }

  /** The hash tag's two bytes (such as `{}`), or null when none is set. */
  get hashTag(): Uint8Array | null {
    return this.#tag;
  }

  /** fnv1a_64 + ketama, the default. */
  pick(key: Uint8Array): number {
    if (this.#only !== -2) return this.#only;
    const hashed = hashTagSlice(key, this.#tag);
    // twemproxy hashes an empty key to 0 rather than to the FNV offset basis.
    return (this.#ring as KetamaRing).pick(hashed.length === 0 ? 0 : fnv1a64(hashed));
  }

  /** Any other hash or distribution. */
  #pickConfigured(key: Uint8Array): number {
    if (this.#only !== -2) return this.#only;
    const hashed = hashTagSlice(key, this.#tag);
    // Every twemproxy hash maps an empty key to 0 (server_pool_hash).
    return this.#ring.pick(hashed.length === 0 ? 0 : this.#hash(hashed));
  }

  /** Every node in the ring now (not ejected). */
  liveNodes(): number[] {
    return this.#live.flatMap((live, node) => live ? [node] : []);
  }

  /** False while the node is ejected. */
  isLive(node: number): boolean {
    return this.#live[node];
  }

  /** Takes a node out of the ring or puts it back; the continuum is rebuilt. */
  setLive(node: number, live: boolean): void {
    if (this.#live[node] === live) return;
    this.#live[node] = live;
    this.version++;
    this.#ring = buildDistribution(this.#distribution, this.#nodes, this.#live);
    this.#only = this.#soleLiveNode();
  }

  /** The one live node, -1 when none is live, -2 when several are (the ring decides). */
  #soleLiveNode(): number {
    const live = this.liveNodes();
    if (live.length > 1) return -2;
    return live.length === 1 ? live[0] : -1;
  }
}
