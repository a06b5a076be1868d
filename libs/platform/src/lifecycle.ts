import { flushLogs, type Logger } from "./logger.js";

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
