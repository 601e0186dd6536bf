/** Keeps one worker's view of a Redis Cluster: slot owners, replicas, refreshes. */
import type { NodePool } from "../backend/node_pool.ts";
import { logInfo, logWarn } from "../log.ts";
import { encodeCommandText } from "../protocol/resp/encoder.ts";
import { decodeReplyValue } from "../protocol/resp/reply_value.ts";
import {
  parseClusterSlots,
  SLOT_COUNT,
  type SlotMap,
  splitAddr,
  unownedSlots,
} from "./slot_table.ts";

const CLUSTER_SLOTS = encodeCommandText("CLUSTER", "SLOTS");
/** Shortest gap between two refreshes triggered by redirects or failures, ms. */
const MIN_REFRESH_GAP_MS = 100;
/** Delay between retries while no node answers, doubling up to the largest, ms. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;
/** Longest wait for one CLUSTER SLOTS reply, ms. */
const FETCH_TIMEOUT_MS = 2000;

/**
 * How a cluster's workers share one topology: the leader fetches CLUSTER SLOTS and
 * publishes each map; followers ask the leader for a refresh and apply what it publishes.
 */
export interface TopologySharing {
  leader: boolean;
  /** Leader: hands a fetched map to the other workers. */
  publish(map: SlotMap): void;
  /** Follower: asks the leader for a refresh. */
  askLeader(): void;
}

/** How a topology is refreshed. */
export interface TopologyOptions {
  /** Seed nodes, "host:port". */
  seeds: readonly string[];
  /** Periodic refresh, seconds. */
  fetchIntervalS: number;
  /** Absent: this worker fetches on its own. */
  sharing?: TopologySharing;
  /** Longest a node that left the map keeps its connections for requests in flight, ms. */
  retireAfterMs: number;
  /** Reads may go to replicas: refresh sooner while a shard lists none. */
  wantReplicas: boolean;
}

/** How long a MOVED outranks a fetched map that disagrees with it, ms. */
const MOVED_TRUST_MS = 2000;

/**
 * How long slots a fetched map lists under nobody stay with the owner they had, ms (see
 * ClusterTopology.#keepOwners).
 */
const UNOWNED_DOUBT_MS = 2000;

/** How often a leaving node is checked for requests still in flight, ms. */
const RETIRE_POLL_MS = 50;

/** Longest wait of a follower for the leader's first map, ms. */
const FOLLOWER_FIRST_MAP_MS = 5000;

/** A shard as node indexes of the pool: the master first, then replicas. */
interface Shard {
  nodes: number[];
}

/**
 * Slot -> node indexes, refreshed from CLUSTER SLOTS. Refreshes run one at a time; every
 * trigger while one runs is served by one more refresh after it.
 */
export class ClusterTopology {
  readonly #pool: NodePool;
  readonly #options: TopologyOptions;
  #shards: Shard[] = [];
  /** Shard index per slot; -1 while unowned or unknown. */
  #slotShard: Int16Array = new Int16Array(SLOT_COUNT).fill(-1);
  #inFlight: Promise<void> | null = null;
  #wanted = false;
  #lastRefreshAt = 0;
  #retryDelay = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #periodic: ReturnType<typeof setInterval>;
  #closed = false;
  /** Recent MOVED redirects: slot -> the address the owner named, and when. */
  readonly #moved = new Map<number, { addr: string; at: number }>();
  #recheckTimer: ReturnType<typeof setTimeout> | undefined;
  /** Nodes that left the map and still have requests in flight. */
  readonly #leaving = new Set<number>();
  /** When fetched maps began to list under nobody slots this map has owners for; -1: not. */
  #unownedSince = -1;
  #replicaRetryMs = 0;
  #replicaTimer: ReturnType<typeof setTimeout> | undefined;
  /** Refreshes completed, for tests and metrics. */
  refreshes = 0;
  /** Callers of freshMap() waiting for `refreshes` to reach `at`. */
  #freshWaiters: { at: number; done: () => void }[] = [];

  #mapArrived: PromiseWithResolvers<void> | null = null;

  constructor(pool: NodePool, options: TopologyOptions) {
    this.#pool = pool;
    this.#options = options;
    this.#periodic = setInterval(() => this.requestRefresh(), options.fetchIntervalS * 1000);
  }

  /** True when another worker fetches the map for this one. */
  get #follower(): boolean {
    return this.#options.sharing !== undefined && !this.#options.sharing.leader;
  }

  /** Applies a map published by the leader (followers). */
  applyShared(map: SlotMap): void {
    if (this.#closed) return;
    this.#apply(map, "the leader worker");
    this.#refreshed();
    this.#mapArrived?.resolve();
    this.#mapArrived = null;
  }

  /** Counts a completed refresh and lets freshMap()'s callers waiting for it go on. */
  #refreshed(): void {
    this.refreshes++;
    if (this.#freshWaiters.length === 0) return;
    for (const waiter of [...this.#freshWaiters]) {
      if (waiter.at <= this.refreshes) waiter.done();
    }
  }

  /**
   * Resolves once a map fetched after this call is in (asked for now, rate-limited like any
   * refresh; a follower asks its leader), or after `timeoutMs` with the map as it is. A fetch
   * under way may have begun before: then the one after it.
   */
  freshMap(timeoutMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const at = this.refreshes + (this.#inFlight !== null ? 2 : 1);
    this.requestRefresh();
    return new Promise((resolve) => {
      const waiter = {
        at,
        done: () => {
          clearTimeout(timer);
          const index = this.#freshWaiters.indexOf(waiter);
          if (index >= 0) this.#freshWaiters.splice(index, 1);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, timeoutMs);
      this.#freshWaiters.push(waiter);
    });
  }

  /** True when `node` is the master or a replica of `slot`'s shard in this map. */
  serves(slot: number, node: number): boolean {
    const shard = this.#slotShard[slot];
    return shard >= 0 && this.#shards[shard].nodes.includes(node);
  }

  /** True once a slot map has been loaded. */
  get ready(): boolean {
    return this.#shards.length > 0;
  }

  /** The master node of `slot`, or -1 when unknown. */
  masterOf(slot: number): number {
    const shard = this.#slotShard[slot];
    return shard < 0 ? -1 : this.#shards[shard].nodes[0];
  }

  /** A node that may serve reads of `slot`: the master or a replica, rotating by `turn`. */
  readerOf(slot: number, turn: number): number {
    const shard = this.#slotShard[slot];
    if (shard < 0) return -1;
    const nodes = this.#shards[shard].nodes;
    return nodes[turn % nodes.length];
  }

  /** One slot of each shard (a way to reach every master). */
  shardSlots(): number[] {
    const first = new Map<number, number>();
    this.#slotShard.forEach((shard, slot) => {
      if (shard >= 0 && !first.has(shard)) first.set(shard, slot);
    });
    return [...first.values()];
  }

  /** Applies a MOVED at once (the slot now belongs to `addr`) and schedules a refresh. */
  noteMoved(slot: number, addr: string): number {
    const node = this.nodeFor(addr);
    let shard = this.#shards.findIndex((s) => s.nodes[0] === node);
    if (shard < 0) {
      shard = this.#shards.length;
      this.#shards.push({ nodes: [node] });
    }
    this.#slotShard[slot] = shard;
    this.#moved.set(slot, { addr, at: performance.now() });
    this.requestRefresh();
    return node;
  }

  /** Asks for a refresh soon; many asks in a burst make one refresh. */
  requestRefresh(): void {
    if (this.#closed) return;
    if (this.#follower) {
      // The leader refreshes for every worker; asks are rate-limited like refreshes.
      const now = performance.now();
      if (now - this.#lastRefreshAt < MIN_REFRESH_GAP_MS) return;
      this.#lastRefreshAt = now;
      this.#options.sharing!.askLeader();
      return;
    }
    this.#wanted = true;
    if (this.#inFlight !== null || this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastRefreshAt + MIN_REFRESH_GAP_MS - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.refresh();
    }, wait);
  }

  /** Fetches the slot map now (or joins the refresh under way); a follower waits for one. */
  refresh(): Promise<void> {
    if (this.#follower) return this.#waitForShared();
    if (this.#inFlight !== null) return this.#inFlight;
    this.#wanted = false;
    this.#inFlight = this.#fetch().finally(() => {
      this.#inFlight = null;
      this.#lastRefreshAt = performance.now();
      if (this.#wanted) this.requestRefresh();
    });
    return this.#inFlight;
  }

  #waitForShared(): Promise<void> {
    if (this.ready) return Promise.resolve();
    // The leader fetches at its own start and the supervisor replays its latest map to a
    // restarted follower: asking would only cost one more fetch per follower.
    this.#mapArrived ??= Promise.withResolvers<void>();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, FOLLOWER_FIRST_MAP_MS));
    return Promise.race([this.#mapArrived.promise, timeout]);
  }

  /** Stops refreshing. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#freshWaiters]) waiter.done();
    clearTimeout(this.#replicaTimer);
    clearTimeout(this.#recheckTimer);
    clearInterval(this.#periodic);
    clearTimeout(this.#timer);
  }

  async #fetch(): Promise<void> {
    const errors: string[] = [];
    for (const addr of this.#candidates()) {
      if (this.#closed) return;
      const result = await this.#ask(addr);
      if (typeof result === "string") {
        errors.push(`${addr}: ${result}`);
        continue;
      }
      this.#apply(result, addr);
      this.#refreshed();
      this.#retryDelay = 0;
      this.#options.sharing?.publish(result);
      return;
    }
    // No node answered: keep trying with backoff; clients get CLUSTERDOWN meanwhile.
    this.#retryDelay = Math.min(
      RETRY_MAX_MS,
      this.#retryDelay === 0 ? RETRY_MIN_MS : this.#retryDelay * 2,
    );
    logWarn(`cluster topology: no node answered CLUSTER SLOTS (${errors.join("; ")})`);
    if (!this.#closed) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.refresh();
      }, this.#retryDelay);
    }
  }

  /** Known masters first (they hold the freshest map), then replicas, then the seeds. */
  #candidates(): string[] {
    const names = this.#pool.nodes.map((node) => node.name);
    const masters = this.#shards.map((shard) => names[shard.nodes[0]]);
    const replicas = this.#shards.flatMap((shard) => shard.nodes.slice(1).map((n) => names[n]));
    return [...new Set([...masters, ...replicas, ...this.#options.seeds])];
  }

  #ask(addr: string): Promise<SlotMap | string> {
    const node = this.nodeFor(addr);
    const host = this.#pool.nodes[node].host;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve("no reply in time"), FETCH_TIMEOUT_MS);
      this.#pool.connFor(node, 0).send(CLUSTER_SLOTS, {
        onReply: (reply) => {
          clearTimeout(timer);
          try {
            const map = parseClusterSlots(decodeReplyValue(reply).value, host);
            resolve(typeof map === "string" || map.shards.length > 0 ? map : "empty slot map");
          } catch (err) {
            resolve(err instanceof Error ? err.message : String(err));
          }
        },
        onError: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      });
    });
  }

  /** Takes `map` (fetched from `source`, named in logs). */
  #apply(map: SlotMap, source: string): void {
    const first = !this.ready;
    this.#keepRecentMoves(map);
    this.#keepOwners(map, source);
    this.#shards = map.shards.map((shard) => ({
      nodes: [shard.master, ...shard.replicas].map((addr) => this.nodeFor(addr)),
    }));
    this.#slotShard = map.slotShard;
    const inMap = new Set(this.#shards.flatMap((shard) => shard.nodes));
    for (let node = 0; node < this.#pool.nodes.length; node++) {
      if (!inMap.has(node) && this.#pool.isOpen(node) && !this.#leaving.has(node)) {
        this.#retire(node);
      }
    }
    this.#checkReplicas(map);
    const unowned = unownedSlots(map);
    if (first || unowned > 0) {
      logInfo(
        `cluster topology: ${map.shards.length} masters, ${unowned} slots unowned ` +
          `(map from ${source})`,
      );
    }
  }

  /**
   * A MOVED is the owner's own word; a map fetched just after a failover may come from a
   * node that has not heard of it yet (an old master still serving stale reads). For a
   * short while, a slot stays where a MOVED sent it, and another refresh is asked for.
   */
  #keepRecentMoves(map: SlotMap): void {
    const now = performance.now();
    let overruled = false;
    for (const [slot, move] of this.#moved) {
      if (now - move.at > MOVED_TRUST_MS) {
        this.#moved.delete(slot);
        continue;
      }
      const shard = map.slotShard[slot];
      if (shard >= 0 && map.shards[shard].master === move.addr) {
        this.#moved.delete(slot); // the map agrees now
        continue;
      }
      let target = map.shards.findIndex((s) => s.master === move.addr);
      if (target < 0) {
        target = map.shards.length;
        map.shards.push({ master: move.addr, replicas: [] });
      }
      map.slotShard[slot] = target;
      overruled = true;
    }
    if (overruled) {
      clearTimeout(this.#recheckTimer);
      this.#recheckTimer = setTimeout(() => this.requestRefresh(), MIN_REFRESH_GAP_MS * 2);
    }
  }

  /**
   * During a failover a node may list the old master's slots under nobody for a moment:
   * Redis 7.0 drops a master's slots when it hears that the master turned replica, before it
   * hears who took them (cluster.c, "Master turned into a slave"), so its CLUSTER SLOTS has a
   * hole. Such slots keep the owner they had (which redirects to the new one) and another
   * refresh is asked for; only when fetched maps keep them unowned for UNOWNED_DOUBT_MS are
   * they believed. Otherwise every request for them would get Aster's own CLUSTERDOWN.
   */
  #keepOwners(map: SlotMap, source: string): void {
    if (!this.ready) return;
    const now = performance.now();
    if (this.#unownedSince >= 0 && now - this.#unownedSince > UNOWNED_DOUBT_MS) {
      this.#unownedSince = -1; // unowned for that long: believed (and not kept again)
      return;
    }
    let kept = 0;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const had = this.#slotShard[slot];
      if (map.slotShard[slot] >= 0 || had < 0) continue;
      const owner = this.#pool.nodes[this.#shards[had].nodes[0]].name;
      let target = map.shards.findIndex((shard) => shard.master === owner);
      if (target < 0) {
        target = map.shards.length;
        map.shards.push({ master: owner, replicas: [] });
      }
      map.slotShard[slot] = target;
      kept++;
    }
    if (kept === 0) {
      this.#unownedSince = -1;
      return;
    }
    if (this.#unownedSince < 0) this.#unownedSince = now;
    logInfo(`cluster topology: the map from ${source} lists ${kept} slots under nobody: kept`);
    clearTimeout(this.#recheckTimer);
    this.#recheckTimer = setTimeout(() => this.requestRefresh(), MIN_REFRESH_GAP_MS * 2);
  }

  /**
   * A node that left the map gets no new requests; its requests in flight are answered
   * (often with a MOVED that is then followed) before its connections close, within a bound.
   */
  #retire(node: number): void {
    const name = this.#pool.nodes[node].name;
    logInfo(`cluster node ${name} left the slot map: closing once its requests are answered`);
    this.#leaving.add(node);
    const deadline = performance.now() + this.#options.retireAfterMs;
    const poll = setInterval(() => {
      const back = this.#shards.some((shard) => shard.nodes.includes(node));
      const idle = this.#pool.connsOf(node).every((conn) => conn.pendingCount === 0);
      if (!back && !idle && performance.now() < deadline && !this.#closed) return;
      clearInterval(poll);
      this.#leaving.delete(node);
      if (!back) this.#pool.closeNode(node);
    }, RETIRE_POLL_MS);
  }

  /**
   * Replicas appear in CLUSTER SLOTS only once the masters know their replication offset:
   * while reads may go to replicas and a shard has none, refresh sooner than `fetch`.
   */
  #checkReplicas(map: SlotMap): void {
    if (!this.#options.wantReplicas || map.shards.every((shard) => shard.replicas.length > 0)) {
      this.#replicaRetryMs = 0;
      return;
    }
    this.#replicaRetryMs = Math.min(
      this.#options.fetchIntervalS * 1000,
      this.#replicaRetryMs === 0 ? 1000 : this.#replicaRetryMs * 2,
    );
    clearTimeout(this.#replicaTimer);
    this.#replicaTimer = setTimeout(() => this.requestRefresh(), this.#replicaRetryMs);
  }

  /** The pool index of `addr`, connecting to it when new or closed. */
  nodeFor(addr: string): number {
    const known = this.#pool.indexOf(addr);
    if (known !== undefined && this.#pool.isOpen(known)) return known;
    const parts = splitAddr(addr);
    if (parts === null) throw new Error(`bad node address ${addr}`);
    return this.#pool.add({ name: addr, host: parts.host, port: parts.port });
  }
}
