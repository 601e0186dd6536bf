/** Command-line flags, help text and exit codes. */
import { ipv4Octets } from "./net/ipv4.ts";
import { isIpv6 } from "./net/ipv6.ts";
import { parseArgs } from "node:util";
import { VERSION } from "./version.ts";

/** Exit code for bad usage, unreadable or invalid configuration. */
export const EXIT_USAGE = 2;

/** What the command line asks for. */
export type CliRequest =
  | { action: "help" }
  | { action: "version" }
  | {
    /** `--healthcheck`: ask the running proxy's /healthz (from the config's metrics endpoint). */
    action: "run" | "check" | "healthcheck";
    configPath: string;
    advertiseIp?: string;
    metricsPort?: number;
    /** Reload when the config file changes. */
    watch: boolean;
  }
  /** `import-twemproxy FILE`: print the Aster TOML for a nutcracker.yml. */
  | { action: "import-twemproxy"; path: string }
  | { action: "error"; message: string };

/** The --help text. */
export const HELP = `aster-proxy ${VERSION}: a fast Redis and memcached proxy

Usage: aster-proxy [options]
       aster-proxy import-twemproxy nutcracker.yml

import-twemproxy prints the Aster TOML equivalent to a twemproxy (nutcracker) config on
stdout and what has no equivalent on stderr; it exits 2 when a pool could not be converted.

Options:
  -c, --config FILE   config file (default: $AS_CFG, else ./default.toml)
  -i, --ip IP         IP that redis_cluster listeners advertise in CLUSTER SLOTS/NODES
                      (default: the listen host; 127.0.0.1 for a wildcard listen)
  -m, --metrics PORT   serve Prometheus /metrics and /healthz on 127.0.0.1:PORT
                      (overrides metrics_addr in the config)
  -r, --reload        reload the config when the file changes (SIGHUP always does)
      --check         validate the config, print one line per cluster, exit
                      (0 when valid, 2 with every error listed)
      --healthcheck   ask the proxy running with this config for /healthz on its
                      metrics endpoint (metrics_addr or --metrics): exit 0 when it
                      answers 200, 1 otherwise (for container HEALTHCHECKs)
  -V, --version       print the version and exit
  -h, --help          print this help and exit

Environment:
  AS_CFG              config file when --config is not given
  ASTER_LOG           log level: error, warn, info (default), debug

Logs go to stderr, one line per event.

Documentation, in Aster's repository:
  docs/configuration.md  every config key, flag and environment variable
  docs/commands.md       which commands are forwarded, answered or refused, and why
  docs/operations.md     signals, reload, metrics, INFO, SLOWLOG, AUTH, exit codes`;

/** Parses argv (without the program name); `env` supplies AS_CFG. */
export function parseCli(
  args: string[],
  env: { get(name: string): string | undefined },
): CliRequest {
  if (args[0] === "import-twemproxy") return _parseImport(args.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c" },
        check: { type: "boolean" },
        healthcheck: { type: "boolean" },
        ip: { type: "string", short: "i" },
        metrics: { type: "string", short: "m" },
        reload: { type: "boolean", short: "r" },
        version: { type: "boolean", short: "V" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { action: "error", message: `${message}\nTry 'aster-proxy --help'.` };
  }
  const { values } = parsed;
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  const configPath = values.config ?? env.get("AS_CFG") ?? "./default.toml";
  if (configPath === "") {
    const from = values.config === undefined ? "AS_CFG is empty" : "--config needs a file name";
    return { action: "error", message: from };
  }
  if (values.ip !== undefined && !_isIp(values.ip)) {
    return { action: "error", message: `--ip needs an IPv4 or IPv6 address, got "${values.ip}"` };
  }
  let metricsPort: number | undefined;
  if (values.metrics !== undefined) {
    metricsPort = Number(values.metrics);
    if (!/^\d+$/.test(values.metrics) || metricsPort < 1 || metricsPort > 65535) {
      return {
        action: "error",
        message: `--metrics needs a port 1..65535, got "${values.metrics}"`,
      };
    }
  }
  return {
    action: values.healthcheck ? "healthcheck" : values.check ? "check" : "run",
    configPath,
    advertiseIp: values.ip,
    metricsPort,
    watch: values.reload === true,
  };
}

function _parseImport(args: string[]): CliRequest {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { action: "error", message: `${message}\nTry 'aster-proxy --help'.` };
  }
  if (parsed.values.help) return { action: "help" };
  if (parsed.positionals.length !== 1 || parsed.positionals[0] === "") {
    return {
      action: "error",
      message:
        "import-twemproxy needs exactly one file: aster-proxy import-twemproxy nutcracker.yml",
    };
  }
  return { action: "import-twemproxy", path: parsed.positionals[0] };
}

function _isIp(text: string): boolean {
  // As the config reads addresses: a dotted quad without leading zeros, or RFC 4291 IPv6.
  return ipv4Octets(text) !== null || isIpv6(text);
}
