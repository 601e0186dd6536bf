/**
 * What a memcache load run does: its options, and the same with every default filled in and
 * checked (the settings every thread of the run shares).
 */

/** What a load run does. */
export interface LoadOptions {
  /** @default "127.0.0.1" */
  host?: string;
  port: number;
  /** @default "get" */
  op?: "get" | "set";
  /** @default 50 */
  connections?: number;
  /** @default 1 */
  pipeline?: number;
  /** Measured requests over all connections; ignored when `durationMs` is set. @default 100000 */
  requests?: number;
  /** Measure for this long instead of a request count. */
  durationMs?: number;
  /** @default 10000 */
  keys?: number;
  /** @default 32 */
  valueSize?: number;
  /** @default 1 */
  threads?: number;
  /** @default 300 */
  warmupMs?: number;
  /** Sets every key once before the run. @default false */
  populate?: boolean;
  /** Socket I/O: Deno's ops or raw sockets through FFI (`src/runtime/deno/ffi/`). @default "deno" */
  io?: "deno" | "ffi";
}

/** Options with every default filled in. */
export type Settings = Required<Omit<LoadOptions, "durationMs">> & { durationMs: number | null };

/** `opts` with every default filled in; throws a RangeError on a bad value. */
export function resolveSettings(opts: LoadOptions): Settings {
  const settings: Settings = {
    host: opts.host ?? "127.0.0.1",
    port: opts.port,
    op: opts.op ?? "get",
    connections: opts.connections ?? 50,
    pipeline: opts.pipeline ?? 1,
    requests: opts.requests ?? 100_000,
    durationMs: opts.durationMs ?? null,
    keys: opts.keys ?? 10_000,
    valueSize: opts.valueSize ?? 32,
    threads: opts.threads ?? 1,
    warmupMs: opts.warmupMs ?? 300,
    populate: opts.populate ?? false,
    io: opts.io ?? "deno",
  };
  if (settings.io !== "deno" && settings.io !== "ffi") {
    throw new RangeError(`io must be deno or ffi, got ${settings.io}`);
  }
  const positive = ["port", "connections", "pipeline", "requests", "keys", "valueSize", "threads"];
  for (const name of positive) {
    const value = settings[name as keyof Settings] as number;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (settings.port > 65535) throw new RangeError(`port out of range: ${settings.port}`);
  if (settings.threads > settings.connections) {
    throw new RangeError("threads must not exceed connections");
  }
  if (!Number.isFinite(settings.warmupMs) || settings.warmupMs < 0) {
    throw new RangeError(`warmupMs must be >= 0, got ${settings.warmupMs}`);
  }
  if (settings.durationMs !== null && !(settings.durationMs > 0)) {
    throw new RangeError(`durationMs must be > 0, got ${settings.durationMs}`);
  }
  if (settings.op !== "get" && settings.op !== "set") {
    throw new RangeError(`op must be get or set, got ${settings.op}`);
  }
  return settings;
}
