/** ioredis as the stateful-command tests use it: one try per command, no reconnects. */
import { Redis } from "ioredis";

/** An ioredis client for 127.0.0.1:`port`, connected by the caller (`connect()`). */
export function ioredisClient(port: number): Redis {
  return new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
}

/** Rejects when `promise` takes longer than `ms`: a hang is a failure, not a stuck test. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
