import { type EnvField, env } from "./config.js";
import { type LogLevel, logLevels } from "./logger.js";

/**
 * The environment variables every Meridian service reads. A service spreads
 * this into its own schema and adds what only it needs:
 *
 *   const schema = { ...serviceConfig({ port: 50051, dataDir: ".data/user-service" }), ... };
 */
export function serviceConfig(defaults: { port: number; dataDir: string }) {
  return {
    /** Interface to listen on; containers set 0.0.0.0. */
    HOST: env.string("127.0.0.1"),
    PORT: env.port(defaults.port),
    /** postgresql://user:pass@host:5432/db; unset runs the embedded PGlite database. */
    DATABASE_URL: env.postgresUrl(),
    /** Where the embedded database lives when DATABASE_URL is unset. */
    DATA_DIR: env.string(defaults.dataDir),
    DATABASE_POOL_SIZE: env.int(10, { min: 1, max: 200 }),
    LOG_LEVEL: env.oneOf(logLevels, "info") as EnvField<LogLevel>,
    /** Largest request message, in bytes (default 4 MiB, as gRPC's own default). */
    READ_MAX_BYTES: env.int(4 * 1024 * 1024, { min: 1024, max: 256 * 1024 * 1024 }),
    /** How long in-flight calls may run after SIGTERM before they are cancelled. */
    SHUTDOWN_GRACE_MS: env.int(10_000, { min: 0, max: 600_000 }),
    /** How often a quiet watch stream sends a heartbeat. */
    WATCH_HEARTBEAT_MS: env.int(15_000, { min: 100, max: 3_600_000 }),
  };
}
