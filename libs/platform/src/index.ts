export { observeCalls, peerAddressKey } from "./call-observer.js";
export { ConfigError, type EnvField, env, loadConfig } from "./config.js";
export {
  type Database,
  type DatabaseOptions,
  type OutboxTransaction,
  openDatabase,
  writeToOutbox,
} from "./database.js";
export { isDatabaseUnavailable, isUniqueViolation, sqlState } from "./database-errors.js";
export {
  AlreadyExistsError,
  DomainError,
  FailedPreconditionError,
  type FieldViolation,
  InvalidArgumentError,
  NotFoundError,
  toConnectError,
} from "./errors.js";
export {
  EventFeed,
  type EventFeedOptions,
  type EventSource,
  type FeedEvent,
  parseResumeCursor,
  type WatchItem,
  type WatchOptions,
  watchResponses,
} from "./event-feed.js";
export { createHealthService, type HealthOptions } from "./health.js";
export { runUntilSignalled } from "./lifecycle.js";
export { createLogger, flushLogs, type Logger, type LogLevel, logLevels } from "./logger.js";
export { decodePageToken, encodePageToken, parsePageSize } from "./paging.js";
export { type RunningServer, type ServerOptions, startServer } from "./server.js";
export { serviceConfig } from "./service-config.js";
