/** Leveled logger: the only place in Aster that prints. One line per event, to stderr. */
import { runtime } from "./runtime/runtime.ts";

/** Log levels from quietest to loudest. */
export type LogLevel = "error" | "warn" | "info" | "debug";

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const encoder = new TextEncoder();
let threshold = RANK.info;
let prefix = "";

/** True when `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(RANK, value);
}

/** Sets the level below which events are dropped, and an optional tag (a worker's name). */
export function configureLog(level: LogLevel, tag = ""): void {
  threshold = RANK[level];
  prefix = tag ? ` [${tag}]` : "";
}

/** True when events of `level` are printed: lets callers skip building costly messages. */
export function logEnabled(level: LogLevel): boolean {
  return RANK[level] <= threshold;
}

function _write(level: LogLevel, message: string): void {
  if (RANK[level] > threshold) return;
  const line = `${new Date().toISOString()} ${level.toUpperCase()}${prefix} ${message}\n`;
  try {
    runtime.writeStderr(encoder.encode(line));
  } catch {
    // stderr closed: nothing left to tell.
  }
}

/** Logs an event that stops something from working. */
export function logError(message: string): void {
  _write("error", message);
}

/** Logs an event an operator should look at. */
export function logWarn(message: string): void {
  _write("warn", message);
}

/** Logs a normal lifecycle event. */
export function logInfo(message: string): void {
  _write("info", message);
}

/** Logs detail useful when debugging. */
export function logDebug(message: string): void {
  _write("debug", message);
}
