/**
 * The Redis version Aster reports (INFO's `redis_version`, HELLO's `version`): the lowest
 * version among the backends, learned from their `INFO server`. Clients gate features on
 * it (BullMQ refuses < 5.0.0), so through Aster they see what every backend supports.
 */
import { encodeCommandText } from "../protocol/resp/encoder.ts";
import type { NodePool } from "./node_pool.ts";

/** Answered while no backend has told its version yet (`redis_version_source:default`). */
export const DEFAULT_REDIS_VERSION = "7.0.0";

/** Where the reported version comes from. */
export type VersionSource = "backends" | "some_backends" | "default";

/** What INFO and HELLO report. */
export interface ReportedVersion {
  version: string;
  source: VersionSource;
}

const INFO_SERVER = encodeCommandText("INFO", "server");
/** How often nodes whose version is unknown are asked again, ms. */
const RETRY_MS = 1000;
const decoder = new TextDecoder();

/** `redis_version:` of an INFO reply (the raw RESP bulk), or null. */
export function parseRedisVersion(reply: Uint8Array): string | null {
  if (reply[0] !== 0x24 /* "$" */) return null;
  const match = /(?:^|\n)redis_version:([0-9][0-9A-Za-z.\-]*)\r?\n/.exec(decoder.decode(reply));
  return match === null ? null : match[1];
}

/** Orders dotted versions numerically ("6.2.14" < "7.0.0" < "7.10.1"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((part) => parseInt(part, 10) || 0);
  const pb = b.split(".").map((part) => parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/**
 * Asks the open nodes of the current pool for `INFO server`: every node at start and on
 * reload, then a node whose version is unknown every second, a known one every
 * `intervalMs` (a restarted or upgraded node is noticed). Versions are kept by node name,
 * so a reload's new pool keeps what is known.
 */
export class BackendVersionProbe {
  readonly #pool: () => NodePool;
  readonly #intervalMs: number;
  readonly #versions = new Map<string, string>();
  /** When each node was last asked (performance.now()). */
  readonly #askedAt = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(pool: () => NodePool, intervalMs: number) {
    this.#pool = pool;
    this.#intervalMs = intervalMs;
  }

  /** Asks every node now (`all`) or those due, and schedules the next round. */
  probeNow(all = true): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const pool = this.#pool();
    const now = performance.now();
    pool.nodes.forEach((node, index) => {
      const conn = pool.connsOf(index)[0];
      if (conn === undefined || this.#inFlight.has(node.name)) return;
      const known = this.#versions.has(node.name);
      const due = now - (this.#askedAt.get(node.name) ?? -Infinity) >= this.#intervalMs;
      if (!all && known && !due) return;
      this.#inFlight.add(node.name);
      this.#askedAt.set(node.name, now);
      conn.send(INFO_SERVER, {
        onReply: (reply) => {
          this.#inFlight.delete(node.name);
          const version = parseRedisVersion(reply);
          if (version !== null) this.#versions.set(node.name, version);
        },
        onError: () => this.#inFlight.delete(node.name),
      });
    });
    const delay = Math.min(this.#intervalMs, RETRY_MS);
    this.#timer = setTimeout(() => this.probeNow(false), delay);
  }

  /** The lowest known version of the open nodes, and whether all of them told theirs. */
  current(): ReportedVersion {
    const pool = this.#pool();
    let lowest: string | null = null;
    let unknown = 0;
    pool.nodes.forEach((node, index) => {
      if (!pool.isOpen(index)) return;
      const version = this.#versions.get(node.name);
      if (version === undefined) unknown++;
      else if (lowest === null || compareVersions(version, lowest) < 0) lowest = version;
    });
    if (lowest === null) return { version: DEFAULT_REDIS_VERSION, source: "default" };
    return { version: lowest, source: unknown === 0 ? "backends" : "some_backends" };
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
