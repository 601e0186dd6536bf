/** Key -> node for sharded modes: hash tag, fnv1a_64, ketama over the live nodes. */
import { fnv1a64 } from "../hash/fnv.ts";
import { hashTagSlice } from "../hash/hash_tag.ts";
import { KetamaRing, type RingNode } from "../hash/ketama.ts";

/** Picks the node that owns a key. */
export interface Router {
  /** The node index for `key`, or -1 when no node is available. */
  pick(key: Uint8Array): number;
}

/** twemproxy-compatible placement; ejected nodes leave the ring and rejoin later. */
export class RingRouter implements Router {
  readonly #nodes: readonly RingNode[];
  readonly #tag: Uint8Array | null;
  readonly #live: boolean[];
  #ring: KetamaRing;
  /** The node every key maps to while exactly one is live (no hashing needed), else -2. */
  #only = -2;

  constructor(nodes: readonly RingNode[], hashTag: string | null) {
    this.#nodes = nodes;
    this.#tag = hashTag === null ? null : new TextEncoder().encode(hashTag);
    this.#live = nodes.map(() => true);
    this.#ring = new KetamaRing(nodes, this.#live);
    this.#only = this.#soleLiveNode();
  }

  /** The hash tag's two bytes (such as `{}`), or null when none is set. */
  get hashTag(): Uint8Array | null {
    return this.#tag;
  }

  pick(key: Uint8Array): number {
    if (this.#only !== -2) return this.#only;
    const hashed = hashTagSlice(key, this.#tag);
    // twemproxy hashes an empty key to 0 rather than to the FNV offset basis.
    return this.#ring.pick(hashed.length === 0 ? 0 : fnv1a64(hashed));
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
    this.#ring = new KetamaRing(this.#nodes, this.#live);
    this.#only = this.#soleLiveNode();
  }

  /** The one live node, -1 when none is live, -2 when several are (the ring decides). */
  #soleLiveNode(): number {
    const live = this.liveNodes();
    if (live.length > 1) return -2;
    return live.length === 1 ? live[0] : -1;
  }
}
