import { readFile } from "node:fs/promises";
import { ConfigError, type EnvField, env } from "./config.js";
import { type Logger, type LogLevel, logLevels } from "./logger.js";
import { type ServerPath, serverPaths } from "./server.js";
import { importSigningKey, loadOrCreateDevelopmentKey, type SigningKey } from "./tokens.js";

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
    /** The deadline of a unary call that arrives without one (streams get none). */
    DEFAULT_DEADLINE_MS: env.int(10_000, { min: 1, max: 3_600_000 }),
    /** Longer unary deadlines are cut to this; streams are exempt. */
    MAX_DEADLINE_MS: env.int(60_000, { min: 1, max: 86_400_000 }),
    /** Kept back from the caller's remaining time when calling a neighbour. */
    DEADLINE_MARGIN_MS: env.int(10, { min: 0, max: 10_000 }),
    /**
     * "fast": unary gRPC calls with binary protobuf take the direct path
     * (grpc-fast-path.ts); "stock": Connect's node adapter serves every call.
     */
    SERVER_PATH: env.oneOf(serverPaths, "fast") as EnvField<ServerPath>,
    /** "production" makes a signing service's AUTH_SIGNING_KEY (or _FILE) mandatory. */
    NODE_ENV: env.string("development"),
  };
}

/** What a service that signs tokens (user-service, order-service) adds to its schema. */
export function signingKeyConfig() {
  return {
    /**
     * This service's Ed25519 private key, as a JWK (JSON), for the tokens it
     * signs. Required in production; unset elsewhere, a development key is
     * generated on first run and kept in DATA_DIR.
     */
    AUTH_SIGNING_KEY: env.optionalString(),
    /** A file holding that key instead (a mounted secret); set one or the other. */
    AUTH_SIGNING_KEY_FILE: env.optionalString(),
  };
}

/** Where a neighbour listens: an http:// URL (gRPC over cleartext HTTP/2), without a path. */
export function neighbourUrl(fallback: string): EnvField<string> {
  return (name, raw) => {
    const value = raw ?? fallback;
    if (!URL.canParse(value))
      throw new Error(`${name} must be a URL like http://host:port, got "${value}"`);
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`${name} must be an http:// or https:// URL, got "${value}"`);
    }
    if (url.pathname !== "/" || url.search !== "") {
      throw new Error(`${name} must not have a path or query, got "${value}"`);
    }
    return url.origin;
  };
}

/**
 * The key this service signs tokens with: AUTH_SIGNING_KEY, or the file
 * AUTH_SIGNING_KEY_FILE names; in development, without either, a key
 * generated on first run and kept in DATA_DIR; in production a ConfigError.
 */
export async function resolveSigningKey(
  config: {
    AUTH_SIGNING_KEY?: string;
    AUTH_SIGNING_KEY_FILE?: string;
    NODE_ENV: string;
    DATA_DIR: string;
  },
  logger: Logger,
): Promise<SigningKey> {
  const { AUTH_SIGNING_KEY: value, AUTH_SIGNING_KEY_FILE: file } = config;
  if (value !== undefined && file !== undefined) {
    throw new ConfigError(["set AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE, not both"]);
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      throw new ConfigError([
        `AUTH_SIGNING_KEY_FILE ${file} cannot be read: ${(error as Error).message}`,
      ]);
    }
    try {
      return await importSigningKey(text);
    } catch (error) {
      throw new ConfigError([`AUTH_SIGNING_KEY_FILE ${file} ${(error as Error).message}`]);
    }
  }
  if (value !== undefined) {
    try {
      return await importSigningKey(value);
    } catch (error) {
      throw new ConfigError([`AUTH_SIGNING_KEY ${(error as Error).message}`]);
    }
  }
  if (config.NODE_ENV === "production") {
    throw new ConfigError([
      "AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production (an Ed25519 private key as a JWK; `npm run keygen` prints one)",
    ]);
  }
  let key: SigningKey;
  try {
    key = await loadOrCreateDevelopmentKey(config.DATA_DIR);
  } catch (error) {
    throw new ConfigError([
      `the development signing key in DATA_DIR (${config.DATA_DIR}) is unusable: ${(error as Error).message}; delete it to have a new one made, or set AUTH_SIGNING_KEY`,
    ]);
  }
  logger.warn(
    { kid: key.kid, dataDir: config.DATA_DIR },
    "AUTH_SIGNING_KEY is not set: signing with a development key kept in DATA_DIR",
  );
  return key;
}
