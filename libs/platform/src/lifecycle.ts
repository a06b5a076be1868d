import { ConfigError } from "./config.js";
import { createLogger, flushLogs, type Logger, type LogLevel } from "./logger.js";

/**
 * Runs a service until SIGTERM or SIGINT, then stops it gracefully and exits
 * 0. A second signal while stopping exits at once (1), for the impatient
 * operator pressing Ctrl-C twice.
 */
export function runUntilSignalled(stop: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting without waiting");
      flushLogs(logger);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping");
    stop().then(
      () => {
        logger.info("stopped");
        flushLogs(logger);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "failed to stop cleanly");
        flushLogs(logger);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

export interface ServiceMain<C> {
  name: string;
  loadConfig: () => C;
  logLevel: (config: C) => LogLevel;
  start: (config: C, logger: Logger) => Promise<{ stop: () => Promise<void> }>;
}

/**
 * The whole of a service's main.ts: load and validate the configuration,
 * start, and run until signalled. Bad configuration (including what is only
 * found at start-up, such as a malformed key) exits 2 with every problem
 * named, before anything listens.
 */
export async function runService<C>({ name, loadConfig, logLevel, start }: ServiceMain<C>) {
  let config: C;
  try {
    config = loadConfig();
  } catch (error) {
    exitOnConfigError(name, error);
  }
  const logger = createLogger(name, logLevel(config));
  try {
    const service = await start(config, logger);
    runUntilSignalled(service.stop, logger);
  } catch (error) {
    exitOnConfigError(name, error);
  }
}

function exitOnConfigError(name: string, error: unknown): never {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`${name}: ${error.message}`);
  process.exit(2);
}
