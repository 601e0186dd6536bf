/** aster-proxy entry: parse the command line, load the config, start the supervisor. */
import { EXIT_USAGE, HELP, parseCli } from "./src/cli.ts";
import { ConfigError, loadConfig } from "./src/config/load.ts";
import type { Config } from "./src/config/schema.ts";
import { importTwemproxy } from "./src/config/twemproxy_import.ts";
import { configureLog, isLogLevel, logError, logInfo, type LogLevel, logWarn } from "./src/log.ts";
import { Supervisor } from "./src/supervisor/supervisor.ts";
import { startMetricsServer } from "./src/supervisor/metrics_server.ts";
import { renderPrometheus, sumSnapshots } from "./src/metrics/prometheus.ts";
import { VERSION } from "./src/version.ts";
import { healthcheck } from "./src/supervisor/healthcheck.ts";
import { watchConfig } from "./src/supervisor/config_watch.ts";
import { type HttpServer, runtime } from "./src/runtime/runtime.ts";

function _summary(config: Config): string[] {
  return config.clusters.map((c) =>
    `${c.name}: ${c.cacheType} on ${c.listenAddr}, ${c.servers.length} servers, thread=${c.thread}` +
    _tlsSummary(c)
  );
}

/** ", TLS on ADDR (mutual), backend TLS" as far as the cluster uses TLS. */
function _tlsSummary(c: Config["clusters"][number]): string {
  let text = "";
  if (c.tlsCert !== null) {
    text += `, TLS on ${c.tlsListenAddr ?? c.listenAddr}${c.tlsCa !== null ? " (mutual)" : ""}`;
  }
  return c.backendTls ? `${text}, backend TLS` : text;
}

/**
 * Reloads one at a time: the file is read and validated first; an invalid one is logged
 * and the running config keeps serving.
 */
function _reloader(
  path: string,
  supervisor: Supervisor,
  metricsAddr: Config["metricsAddr"],
): (why: string) => void {
  let running: Promise<void> = Promise.resolve();
  return (why) => {
    running = running.then(async () => {
      logInfo(`${why}: reloading ${path}`);
      let config: Config;
      try {
        config = await loadConfig(path);
      } catch (err) {
        const message = err instanceof ConfigError ? err.message : String(err);
        logError(`reload rejected, the running config stays: ${message}`);
        return;
      }
      for (const warning of config.warnings ?? []) logWarn(warning);
      if (JSON.stringify(config.metricsAddr) !== JSON.stringify(metricsAddr)) {
        logWarn("metrics_addr changed: the metrics endpoint stays as it is until a restart");
      }
      try {
        const changes = await supervisor.reload(config);
        logInfo(`reloaded: ${changes.length === 0 ? "nothing changed" : changes.join(", ")}`);
      } catch (err) {
        logError(
          `reload failed, the running config stays: ${err instanceof Error ? err.message : err}`,
        );
      }
    });
  };
}

/**
 * `import-twemproxy FILE`: the TOML on stdout, notes and errors on stderr; exit 2 when the
 * file cannot be read or parsed or a pool could not be converted.
 */
async function _importTwemproxy(path: string): Promise<number> {
  let doc: unknown;
  try {
    // Loaded here only: the proxy itself never parses YAML.
    const { parse } = await import("yaml");
    doc = parse(await runtime.readTextFile(path));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    console.error(`aster-proxy: cannot read twemproxy config ${path}: ${why}`);
    return EXIT_USAGE;
  }
  const result = importTwemproxy(doc);
  if (result.toml !== "") console.log(result.toml.trimEnd());
  for (const note of result.notes) console.error(`aster-proxy: note: ${note}`);
  for (const error of result.errors) console.error(`aster-proxy: error: ${error}`);
  return result.errors.length > 0 ? EXIT_USAGE : 0;
}

async function main(): Promise<number> {
  const request = parseCli(runtime.args, runtime.env);
  switch (request.action) {
    case "help":
      console.log(HELP);
      return 0;
    case "version":
      // First line as before (scripts read it); then what runs it and for which machine.
      console.log(`aster-proxy ${VERSION}\n${runtime.name} ${runtime.version} ${runtime.target}`);
      return 0;
    case "error":
      console.error(`aster-proxy: ${request.message}`);
      return EXIT_USAGE;
    case "import-twemproxy":
      return await _importTwemproxy(request.path);
  }
  const levelName = runtime.env.get("ASTER_LOG") ?? "info";
  const level: LogLevel = isLogLevel(levelName) ? levelName : "info";
  configureLog(level);
  if (!isLogLevel(levelName)) logWarn(`ASTER_LOG=${levelName} is not a level; using info`);

  // SIGHUP's default action ends the process: until the workers run, a reload asked for
  // (a config tool firing right after start) is kept and done once they do.
  let reload: ((why: string) => void) | null = null;
  let reloadAsked = false;
  if (request.action === "run") {
    runtime.onSignal("SIGHUP", () => {
      if (reload !== null) reload("SIGHUP");
      else reloadAsked = true;
    });
  }

  let config: Config;
  try {
    config = await loadConfig(request.configPath);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`aster-proxy: ${err.message}`);
    return EXIT_USAGE;
  }
  if (request.action === "healthcheck") {
    return await healthcheck(request.metricsPort ?? null, config.metricsAddr);
  }
  for (const warning of config.warnings ?? []) {
    if (request.action === "check") console.error(`aster-proxy: warning: ${warning}`);
    else if (request.action === "run") logWarn(warning);
  }
  if (request.action === "check") {
    for (const line of _summary(config)) console.log(line);
    console.log(`${request.configPath}: ok`);
    return 0;
  }

  logInfo(`aster-proxy ${VERSION} starting with ${request.configPath}`);
  const supervisor = new Supervisor();
  const stopped = Promise.withResolvers<number>();
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    runtime.onSignal(signal, () => {
      if (stopping) {
        logWarn(`${signal} again: exiting now`);
        supervisor.kill();
        stopped.resolve(0);
        return;
      }
      stopping = true;
      logInfo(`${signal}: stopping (finishing requests in flight)`);
      supervisor.stop().then(() => stopped.resolve(0));
    });
  }
  // The endpoint comes up first: /healthz says 503 until every listener is up.
  const metricsAddr = request.metricsPort !== undefined
    ? { host: "127.0.0.1", port: request.metricsPort }
    : config.metricsAddr;
  let metricsServer: HttpServer | null = null;
  if (metricsAddr !== null) {
    try {
      metricsServer = await startMetricsServer(metricsAddr, {
        healthy: () => supervisor.healthy(),
        draining: () => supervisor.draining,
        render: async () =>
          renderPrometheus(sumSnapshots(await supervisor.collectMetrics()), {
            version: VERSION,
            deno: runtime.name === "deno" ? runtime.version : "",
            runtime: runtime.name,
            runtimeVersion: runtime.version,
            workerRestarts: supervisor.restarts,
          }),
      });
    } catch (err) {
      logError(`metrics: cannot listen on ${metricsAddr.host}:${metricsAddr.port}: ${err}`);
      return 1;
    }
  }
  if (runtime.env.get("ASTER_TEST_HOOKS") === "1") {
    // Tests of the restart path crash a worker on SIGUSR2.
    runtime.onSignal("SIGUSR2", () => supervisor.crashFirstWorkers());
  }
  try {
    await supervisor.start(config, { logLevel: level, advertiseIp: request.advertiseIp });
  } catch (err) {
    logError(err instanceof Error ? err.message : String(err));
    supervisor.kill();
    await metricsServer?.shutdown();
    return 1;
  }
  for (const line of _summary(config)) logInfo(`serving ${line}`);
  const reloadNow = reload = _reloader(request.configPath, supervisor, config.metricsAddr);
  if (reloadAsked) reloadNow("SIGHUP during start");
  if (request.watch) watchConfig(request.configPath, () => reloadNow("config file changed"));
  // One line on stdout once every worker listens, for scripts and process managers.
  console.log(`aster-proxy ${VERSION} ready`);
  const code = await stopped.promise;
  await metricsServer?.shutdown();
  return code;
}

if (import.meta.main) runtime.exit(await main());
