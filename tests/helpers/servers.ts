/**
 * Starts real redis-server, memcached and nutcracker processes on free 127.0.0.1
 * ports for integration tests, and stops them by PID.
 */

const HOST = "127.0.0.1";
/** How long stop() waits after SIGTERM before sending SIGKILL. */
const STOP_GRACE_MS = 3000;
/** How long stop() waits for the process to exit after SIGKILL. */
const KILL_WAIT_MS = 2000;
/** Pause between readiness probes. */
const PROBE_INTERVAL_MS = 20;

/** A started server process; `await using` stops it. */
export interface ServerProcess extends AsyncDisposable {
  /** The TCP port it listens on. */
  port: number;
  /** Its process id. */
  pid: number;
  /** SIGTERM, then SIGKILL after a bound; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
  /** Sends `signal` to the process; does nothing once it has exited. */
  kill(signal: Deno.Signal): void;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  // The kernel may hand the same ephemeral port out again once it is closed: a port this
  // process already handed out is skipped (two "free" ports for one test must differ).
  for (let attempt = 0; attempt < 100; attempt++) {
    const listener = Deno.listen({ hostname: HOST, port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (_handedOut.has(port)) continue;
    _handedOut.add(port);
    return Promise.resolve(port);
  }
  return Promise.reject(new Error("no free port not handed out before in 100 tries"));
}

/** Ports freePort() returned in this process. */
const _handedOut = new Set<number>();

/** Resolves once 127.0.0.1:`port` accepts a connection; throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  await _probeUntil(port, timeoutMs, null, () => _accepts(port));
}

/**
 * Starts `redis-server` on a free (or the given) port with persistence off, in a
 * temporary directory removed on stop; resolves once it answers INFO with its own pid.
 */
export async function startRedis(
  opts: { port?: number; args?: string[] } = {},
): Promise<ServerProcess> {
  const port = opts.port ?? await freePort();
  const dir = await Deno.makeTempDir({ prefix: "aster-redis-" });
  const args = ["--port", `${port}`, "--bind", HOST, "--save", "", "--appendonly", "no"];
  args.push("--daemonize", "no", "--dir", dir, ...(opts.args ?? []));
  const server = _spawn("redis-server", args, {
    port,
    dir,
    hint: "apt-get install -y redis-server",
  });
  const passwordAt = opts.args?.indexOf("--requirepass") ?? -1;
  const password = passwordAt >= 0 ? opts.args![passwordAt + 1] : null;
  return await _ready(server, () => _isRedis(port, server.pid, password));
}

/** Options for `startNutcracker`. */
export interface NutcrackerOptions {
  /** twemproxy `servers:` entries, `"host:port:weight [name]"`. */
  servers: string[];
  /** @default "fnv1a_64" */
  hash?: string;
  /** @default "ketama" */
  distribution?: string;
  /** Two characters, such as `"{}"`. */
  hashTag?: string;
  /** @default true */
  redis?: boolean;
  /** Ejects a server after one failure and retries it after 1 s. @default false */
  autoEject?: boolean;
}

/**
 * Starts `nutcracker` (twemproxy) with one pool listening on a free port, its stats
 * on another free port; resolves once the pool port accepts connections.
 */
export async function startNutcracker(opts: NutcrackerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const statsPort = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "aster-nutcracker-" });
  const lines = [
    "aster:",
    `  listen: ${HOST}:${port}`,
    `  hash: ${opts.hash ?? "fnv1a_64"}`,
    `  distribution: ${opts.distribution ?? "ketama"}`,
    `  redis: ${opts.redis ?? true}`,
    `  auto_eject_hosts: ${opts.autoEject ?? false}`,
  ];
  if (opts.autoEject) lines.push("  server_retry_timeout: 1000", "  server_failure_limit: 1");
  if (opts.hashTag !== undefined) lines.push(`  hash_tag: ${JSON.stringify(opts.hashTag)}`);
  lines.push("  servers:", ...opts.servers.map((server) => `    - ${server}`));
  const config = `${dir}/nutcracker.yml`;
  const log = `${dir}/nutcracker.log`;
  await Deno.writeTextFile(config, lines.join("\n") + "\n");
  const args = ["-c", config, "-s", `${statsPort}`, "-a", HOST, "-o", log];
  const server = _spawn("nutcracker", args, { port, dir, hint: "apt-get install -y nutcracker" });
  return await _ready(server, () => _accepts(port), log);
}

/** Starts nutcracker on a whole nutcracker.yml whose pools listen on 127.0.0.1 `ports`. */
export async function startNutcrackerYaml(yaml: string, ports: number[]): Promise<ServerProcess> {
  const statsPort = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "aster-nutcracker-" });
  const config = `${dir}/nutcracker.yml`;
  const log = `${dir}/nutcracker.log`;
  await Deno.writeTextFile(config, yaml);
  const args = ["-c", config, "-s", `${statsPort}`, "-a", HOST, "-o", log];
  const server = _spawn("nutcracker", args, {
    port: ports[0],
    dir,
    hint: "apt-get install -y nutcracker",
  });
  return await _ready(server, async () => {
    for (const port of ports) await _accepts(port);
    return true;
  }, log);
}

/** Starts `memcached` on a free (or the given) port, UDP off; resolves once it listens. */
export async function startMemcached(
  opts: { port?: number; args?: string[] } = {},
): Promise<ServerProcess> {
  const port = opts.port ?? await freePort();
  const args = ["-l", HOST, "-p", `${port}`, "-U", "0", "-u", "root", ...(opts.args ?? [])];
  const server = _spawn("memcached", args, {
    port,
    dir: null,
    hint: "apt-get install -y memcached",
  });
  return await _ready(server, () => _accepts(port));
}

/**
 * Starts `command args`, which must listen on 127.0.0.1:`port`; resolves once the port
 * accepts connections (for tools with no starter of their own here).
 */
export async function startListeningProcess(
  command: string,
  args: string[],
  opts: { port: number; hint: string },
): Promise<ServerProcess> {
  const server = _spawn(command, args, { port: opts.port, dir: null, hint: opts.hint });
  return await _ready(server, () => _accepts(opts.port));
}

interface _Spawned extends ServerProcess {
  /** True once the process has exited. */
  readonly exited: boolean;
}

function _spawn(
  command: string,
  args: string[],
  opts: { port: number; dir: string | null; hint: string },
): _Spawned {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      cwd: opts.dir ?? undefined,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (error) {
    if (opts.dir) Deno.removeSync(opts.dir, { recursive: true });
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`${command} not found: install with ${opts.hint}`);
    }
    throw error;
  }
  let exited = false;
  const status = child.status.then(() => {
    exited = true;
  });
  let stopping: Promise<void> | null = null;
  const signal = (sig: Deno.Signal) => {
    if (exited) return;
    try {
      child.kill(sig);
    } catch {
      // Already gone between the check and the signal.
    }
  };
  const stop = () => {
    stopping ??= (async () => {
      signal("SIGTERM");
      if (!await _within(status, STOP_GRACE_MS)) {
        signal("SIGKILL");
        await _within(status, KILL_WAIT_MS);
      }
      if (opts.dir) await Deno.remove(opts.dir, { recursive: true }).catch(() => {});
    })();
    return stopping;
  };
  return {
    port: opts.port,
    pid: child.pid,
    get exited() {
      return exited;
    },
    stop,
    kill: signal,
    [Symbol.asyncDispose]: stop,
  };
}

/** Returns `server` once `probe` passes; stops it and throws if it never does. */
async function _ready(
  server: _Spawned,
  probe: () => Promise<boolean>,
  log?: string,
): Promise<ServerProcess> {
  try {
    await _probeUntil(server.port, 5000, server, probe, log);
    return server;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Resolves true if `promise` settles within `ms`, false otherwise. */
async function _within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `probe` until it resolves true; throws after `timeoutMs`, or at once when
 * `server` exits (with the tail of `log` when given).
 */
async function _probeUntil(
  port: number,
  timeoutMs: number,
  server: _Spawned | null,
  probe: () => Promise<boolean>,
  log?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const maxTries = Math.ceil(timeoutMs / PROBE_INTERVAL_MS) + 1;
  for (let i = 0; i < maxTries && Date.now() < deadline; i++) {
    if (server?.exited) {
      const tail = log ? await Deno.readTextFile(log).catch(() => "") : "";
      throw new Error(`server for port ${port} exited during startup\n${tail.slice(-2000)}`);
    }
    const ready = await probe().catch(() => false);
    if (ready && server === null) return;
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    // Still running after a pause: not some other process holding the port.
    if (ready && !server?.exited) return;
  }
  throw new Error(`nothing answered on ${HOST}:${port} within ${timeoutMs} ms`);
}

/** True when 127.0.0.1:`port` accepts a connection. */
async function _accepts(port: number): Promise<boolean> {
  const conn = await Deno.connect({ hostname: HOST, port });
  conn.close();
  return true;
}

/**
 * True when the redis-server on `port` is process `pid` (its INFO says so), so a
 * server that lost the port to another one is never taken for ready.
 */
async function _isRedis(port: number, pid: number, password: string | null): Promise<boolean> {
  const conn = await Deno.connect({ hostname: HOST, port });
  let closed = false;
  const close = () => {
    if (!closed) conn.close();
    closed = true;
  };
  const timer = setTimeout(close, 1000); // a silent server fails the read below
  try {
    const auth = password === null ? "" : `AUTH ${password}\r\n`;
    await conn.write(new TextEncoder().encode(`${auth}INFO server\r\n`));
    const buf = new Uint8Array(16384);
    let got = 0;
    for (let i = 0; i < 32 && got < buf.length; i++) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) break;
      got += n;
      const text = new TextDecoder().decode(buf.subarray(0, got));
      const match = /\r\nprocess_id:(\d+)\r\n/.exec(text);
      if (match) return Number(match[1]) === pid;
      if (text.startsWith("-")) return false; // -LOADING and the like: not ready yet
    }
    return false;
  } finally {
    clearTimeout(timer);
    close();
  }
}
