import { pino } from "pino";

export type Logger = pino.Logger;

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export const logLevels: readonly LogLevel[] = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

/**
 * JSON lines on stdout, one object per event, ready for any log shipper.
 * The destination writes asynchronously so that a slow stdout reader never
 * blocks a request; `flushLogs` must run before the process exits.
 */
export function createLogger(service: string, level: LogLevel = "info"): Logger {
  return pino(
    { level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  );
}

export function flushLogs(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // Flushing a destination that is already closed is harmless.
  }
}
