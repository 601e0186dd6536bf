/**
 * The few Bun globals the Bun runtime uses, typed here: Deno type-checks this folder
 * without Bun's type package. Read only when called, never at load (Deno loads this file
 * too when it type-checks, never when it runs).
 */

/** Callbacks Bun calls on a socket's events. */
export interface BunSocketHandler<T> {
  open?(socket: BunSocket<T>): void;
  data?(socket: BunSocket<T>, data: Uint8Array): void;
  drain?(socket: BunSocket<T>): void;
  end?(socket: BunSocket<T>): void;
  close?(socket: BunSocket<T>, error?: Error): void;
  error?(socket: BunSocket<T>, error: Error): void;
  connectError?(socket: BunSocket<T>, error: Error): void;
}

/** A TCP socket of Bun's: `write` takes what the kernel takes now and buffers nothing. */
export interface BunSocket<T> {
  data: T;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  write(data: Uint8Array): number;
  end(): void;
  /** Half-closes: FIN after what the kernel holds; reading goes on. */
  shutdown(): void;
  terminate(): void;
  setNoDelay(noDelay?: boolean): boolean;
  pause(): void;
  resume(): void;
}

/** A listening socket of Bun's. */
export interface BunTcpServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

/** A running `Bun.serve` server. */
export interface BunHttpServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
}

/** The `Bun` global, as far as Aster uses it. */
export interface BunGlobal {
  readonly version: string;
  listen<T>(options: {
    hostname: string;
    port: number;
    reusePort?: boolean;
    allowHalfOpen?: boolean;
    socket: BunSocketHandler<T>;
  }): BunTcpServer;
  connect<T>(options: {
    hostname: string;
    port: number;
    allowHalfOpen?: boolean;
    socket: BunSocketHandler<T>;
  }): Promise<BunSocket<T>>;
  serve(options: {
    hostname: string;
    port: number;
    development?: boolean;
    fetch(request: Request): Response | Promise<Response>;
  }): BunHttpServer;
}

/** The `Bun` global (call only on Bun). */
export function bunGlobal(): BunGlobal {
  return (globalThis as unknown as { Bun: BunGlobal }).Bun;
}

/** True when this process runs on Bun. */
export function onBun(): boolean {
  return "Bun" in globalThis;
}
