/** Starts Aster itself (main.ts, as users run it) on free ports for integration tests. */
import { stringify } from "smol-toml";
import { freePort } from "./servers.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** What `deno task build:bun` builds. */
export const BUN_BINARY = new URL("../../dist/aster-proxy", import.meta.url).pathname;

/** What runs Aster in the integration tests (docs/development.md, "Runtimes under test"). */
export type UnderTest = "deno" | "bun" | "binary";

/**
 * `ASTER_UNDER_TEST`: "deno" (the default) runs main.ts on Deno as `deno task start` does,
 * "bun" runs it on Bun (`bun run main.ts`), "binary" runs `dist/aster-proxy` (or the file
 * `ASTER_BINARY` names) as users run the download.
 */
export const UNDER_TEST: UnderTest = _underTest(Deno.env.get("ASTER_UNDER_TEST") ?? "deno");

function _underTest(value: string): UnderTest {
  if (value === "deno" || value === "bun" || value === "binary") return value;
  throw new Error(`ASTER_UNDER_TEST=${value}: expected deno, bun or binary`);
}

/** One `[[clusters]]` table; keys as in the TOML file. `listen_addr` is filled in when absent. */
export type ClusterToml = Record<string, string | number | boolean | string[]>;

/** A running aster-proxy process. */
export interface AsterProcess extends AsyncDisposable {
  /** The listen port of each cluster, in config order. */
  ports: number[];
  /** The config file it runs with (tests of reload rewrite it). */
  configPath: string;
  pid: number;
  /** What it printed to stderr so far (its log). */
  log(): string;
  /** Resolves with the exit code once the process exits on its own (nothing is sent to it). */
  exited: Promise<number>;
  /** Sends a signal to the process. */
  kill(signal: Deno.Signal): void;
  /** SIGTERM, then SIGKILL after a bound; resolves with the exit code. Idempotent. */
  stop(): Promise<number>;
}

/** Renders clusters (and a top-level `metrics_addr` when given) as TOML. */
export function renderToml(clusters: ClusterToml[], metricsAddr?: string): string {
  return stringify(
    metricsAddr === undefined ? { clusters } : { metrics_addr: metricsAddr, clusters },
  );
}

/**
 * V8 flags `deno task start` and `deno task compile` give Aster: a young generation of at
 * most 4 MiB per semi-space, so a burst of new connections does not grow every worker's
 * heap by tens of MiB of short-lived garbage (bench/README.md, idle-client memory); and
 * `gc` exposed, for the one full GC after a burst of clients left (`Runtime.releaseMemory`).
 */
export const ASTER_V8_FLAGS = "--v8-flags=--max-semi-space-size=4,--expose-gc";

/** Whether Aster runs sandboxed when a test does not say (set by `testBothIo`). */
let sandboxedByDefault = false;

/**
 * Registers a test twice: Aster as `deno task start` runs it (`io = "auto"` on raw sockets)
 * and as `deno task start:sandboxed` runs it (Deno's socket ops), so that both data paths
 * are held to it. Tests run one at a time within a file, so a module flag is enough.
 */
export function testBothIo(name: string, fn: () => Promise<void>): void {
  Deno.test(name, fn);
  // Bun has one socket path: the twin would run the same thing again.
  if (UNDER_TEST !== "deno") return;
  Deno.test(`${name} [io = deno]`, async () => {
    sandboxedByDefault = true;
    try {
      await fn();
    } finally {
      sandboxedByDefault = false;
    }
  });
}

/** Another checkout of Aster to run instead of this one (bench/baseline.ts extracts one). */
export interface AsterSource {
  /** Its main.ts. */
  main: string;
  /** Its deno.json (imports and lock file of that revision). */
  config: string;
}

/**
 * The command that runs Aster: from source on Deno, with the flags and permissions
 * `deno task start` grants (`deno task start:sandboxed`'s when `sandboxed`), this checkout
 * unless `source` names another; or, as `underTest` (default `ASTER_UNDER_TEST`) says, this
 * checkout on Bun or the Bun-built binary.
 */
export function asterCommand(
  args: string[],
  env: Record<string, string> = {},
  opts: { source?: AsterSource; sandboxed?: boolean; underTest?: UnderTest } = {},
): Deno.Command {
  const { source } = opts;
  const underTest = opts.underTest ?? UNDER_TEST;
  const io = {
    env: { ASTER_LOG: "warn", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  };
  // Another checkout (bench baselines) always runs on Deno.
  if (source === undefined && underTest === "bun") {
    return new Deno.Command("bun", { args: ["run", MAIN, ...args], ...io } as Deno.CommandOptions);
  }
  if (source === undefined && underTest === "binary") {
    const binary = Deno.env.get("ASTER_BINARY") ?? BUN_BINARY;
    return new Deno.Command(binary, { args, ...io } as Deno.CommandOptions);
  }
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ASTER_V8_FLAGS,
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      ...(opts.sandboxed ?? sandboxedByDefault ? [] : ["--allow-ffi"]),
      ...(source ? ["--config", source.config, source.main] : [MAIN]),
      ...args,
    ],
    env: { ASTER_LOG: "warn", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Starts Aster with `clusters`, waits until every listener accepts connections. */
export async function startAster(
  clusters: ClusterToml[],
  opts: {
    env?: Record<string, string>;
    args?: string[];
    source?: AsterSource;
    /** Without --allow-ffi, as `deno task start:sandboxed` runs it (io = "auto" is "deno"). */
    sandboxed?: boolean;
    /** What runs it, when not `ASTER_UNDER_TEST`'s choice (the bench runs all three). */
    underTest?: UnderTest;
    /** The top-level `metrics_addr` ("host:port"), for an endpoint off 127.0.0.1. */
    metricsAddr?: string;
  } = {},
): Promise<AsterProcess> {
  const filled: ClusterToml[] = [];
  const ports: number[] = [];
  for (const [index, cluster] of clusters.entries()) {
    const port = cluster.listen_addr
      ? Number(String(cluster.listen_addr).split(":").pop())
      : await freePort();
    ports.push(port);
    filled.push({
      name: `test-${index}`,
      cache_type: "redis",
      listen_addr: `127.0.0.1:${port}`,
      ...cluster,
    });
  }
  const dir = await Deno.makeTempDir({ prefix: "aster-test-" });
  const configPath = `${dir}/aster.toml`;
  await Deno.writeTextFile(configPath, renderToml(filled, opts.metricsAddr));
  const child = asterCommand(["--config", configPath, ...(opts.args ?? [])], opts.env, opts)
    .spawn();
  let log = "";
  const ready = Promise.withResolvers<void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      log += decoder.decode(chunk, { stream: true });
      // Every worker listens once this line is out (one port answering is not enough).
      if (/^aster-proxy \S+ ready$/m.test(log)) ready.resolve();
    }
  };
  const collecting = Promise.all([collect(child.stdout), collect(child.stderr)]);
  let exitCode: number | null = null;
  const exited = child.status.then((status) => {
    exitCode = status.code;
    return status.code;
  });
  let stopping: Promise<number> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      if (exitCode === null) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 5000);
        await exited;
        clearTimeout(timer);
      }
      await collecting;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      return exitCode ?? -1;
    })();
    return stopping;
  };
  const aster: AsterProcess = {
    ports,
    configPath,
    exited,
    pid: child.pid,
    log: () => log,
    kill: (signal) => {
      if (exitCode === null) child.kill(signal);
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      ready.promise,
      exited.then((code) => {
        throw new Error(`aster exited with ${code} before listening:\n${log}`);
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`aster not ready in 15 s:\n${log}`)), 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    await stop();
    throw err;
  }
  return aster;
}
