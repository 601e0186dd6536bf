/** Auto-eject: pings every node and tells when one fails `limit` pings in a row or recovers. */
import { logInfo, logWarn } from "../log.ts";
import type { NodeConn } from "./node_conn.ts";

/** How the health checker reaches nodes and reports changes. */
export interface HealthOptions {
  /** Consecutive failed pings that eject a node (> 0). */
  failLimit: number;
  /** Time between pings, ms. */
  intervalMs: number;
  /** The encoded ping request. */
  ping: Uint8Array;
  /** True when a ping reply means healthy. */
  isHealthy: (reply: Uint8Array) => boolean;
  /** Called when a node is ejected (live = false) or rejoins (live = true). */
  onChange: (node: number, live: boolean) => void;
}

/** Pings each node on its own connection; one ping in flight per node at a time. */
export class HealthChecker {
  readonly #conns: readonly NodeConn[];
  readonly #names: readonly string[];
  readonly #options: HealthOptions;
  readonly #failures: number[];
  readonly #inFlight: boolean[];
  readonly #live: boolean[];
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(conns: readonly NodeConn[], names: readonly string[], options: HealthOptions) {
    this.#conns = conns;
    this.#names = names;
    this.#options = options;
    this.#failures = conns.map(() => 0);
    this.#inFlight = conns.map(() => false);
    this.#live = conns.map(() => true);
    this.#timer = setInterval(() => this.pingAll(), options.intervalMs);
  }

  /** Whether each node is in the ring. */
  get live(): readonly boolean[] {
    return this.#live;
  }

  /** Sends one ping to every node that has none in flight. */
  pingAll(): void {
    for (let node = 0; node < this.#conns.length; node++) {
      if (this.#inFlight[node]) continue;
      this.#inFlight[node] = true;
      this.#conns[node].send(this.#options.ping, {
        onReply: (reply) => this.#record(node, this.#options.isHealthy(reply), "bad ping reply"),
        onError: (message) => this.#record(node, false, message),
      });
    }
  }

  #record(node: number, ok: boolean, reason: string): void {
    this.#inFlight[node] = false;
    const name = this.#names[node];
    if (ok) {
      this.#failures[node] = 0;
      if (!this.#live[node]) {
        this.#live[node] = true;
        logInfo(`node ${name} answers pings again: rejoins the ring`);
        this.#options.onChange(node, true);
      }
      return;
    }
    this.#failures[node]++;
    if (this.#live[node] && this.#failures[node] >= this.#options.failLimit) {
      this.#live[node] = false;
      logWarn(`node ${name} failed ${this.#failures[node]} pings (${reason}): ejected`);
      this.#options.onChange(node, false);
    }
  }

  /** Stops pinging. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
