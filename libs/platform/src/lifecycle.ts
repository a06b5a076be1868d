import { ConfigError, describeConfig, type EnvField, loadConfig } from "./config.js";
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

type ConfigSchema = Record<string, EnvField<unknown>>;
type ConfigOf<S extends ConfigSchema> = ReturnType<typeof loadConfig<S>>;

export interface ServiceMain<S extends ConfigSchema> {
  name: string;
  /** The environment variables the service reads (its config schema). */
  config: S;
  logLevel: (config: ConfigOf<S>) => LogLevel;
  start: (config: ConfigOf<S>, logger: Logger) => Promise<{ stop: () => Promise<void> }>;
  /** Defaults to process.env (tests pass their own). */
  env?: Record<string, string | undefined>;
  /** Defaults to process.argv. */
  argv?: readonly string[];
}

/**
 * The whole of a service's main.ts: load and validate the configuration,
 * start, and run until signalled. Bad configuration (including what is only
 * found at start-up, such as a malformed key) exits 2 with every problem
 * named, before anything listens.
 *
 * `--help` lists the environment variables the service reads, with their
 * defaults; `--config-schema` prints the same as JSON, for tools (the
 * compose test checks docker-compose.yml against it).
 */
export async function runService<S extends ConfigSchema>({
  name,
  config: schema,
  logLevel,
  start,
  env = process.env,
  argv = process.argv,
}: ServiceMain<S>) {
  const variables = describeConfig(schema);
  if (argv.includes("--config-schema")) {
    process.stdout.write(`${JSON.stringify(variables, null, 2)}\n`);
    return;
  }
  if (argv.includes("--help")) {
    const lines = [`${name}: configured only by environment variables`, ""];
    const width = Math.max(...variables.map((v) => v.name.length)) + 2;
    for (const v of variables) {
      const note = v.required ? "required" : v.default === undefined ? "optional" : v.default;
      lines.push(`  ${v.name.padEnd(width)}${note}`);
    }
    process.stdout.write(`${lines.join("\n")}\n`);
    return;
  }
  let config: ConfigOf<S>;
  try {
    config = loadConfig(schema, env);
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
